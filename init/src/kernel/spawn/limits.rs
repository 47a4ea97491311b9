//! colony-init's own capabilities and open-files limit, which its children start from.

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
pub(super) const CAP_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
pub(super) struct CapHeader {
    pub(super) version: u32,
    pub(super) pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct CapData {
    pub(super) effective: u32,
    pub(super) permitted: u32,
    pub(super) inheritable: u32,
}

/// The calling process's permitted capability set (capget; 0 if it fails). One syscall,
/// where /proc/self/status would be formatted and parsed at every start.
pub fn own_permitted_caps() -> u64 {
    let mut hdr = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: a v3 header makes capget fill exactly two CapData.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if r != 0 {
        return 0;
    }
    u64::from(data[0].permitted) | (u64::from(data[1].permitted) << 32)
}

/// The open-files limit every child gets once colony-init raised its own, `(soft, hard)`: the
/// soft limit colony-init was started with and its own hard limit. 0/0 while colony-init
/// runs with what it was given.
pub(super) static CHILD_NOFILE: [std::sync::atomic::AtomicU64; 2] = [
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
];

/// Every unit holds a pidfd, an output pipe and its log file: ten thousand units need far
/// more than the usual limit, so colony-init raises its own open-files limit as far as the
/// kernel lets it: to `fs.nr_open` where it may (PID 1 of a machine holds CAP_SYS_RESOURCE;
/// its inherited hard limit is only 4096), else to its hard limit. Its children get the soft
/// limit colony-init was started with (past 1024, select() breaks and programs that close
/// every possible fd slow down) and the raised hard limit, which a daemon that needs more
/// fds (redis, nginx) may take, as under systemd; a unit's `nofile` sets both.
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    use std::sync::atomic::Ordering::Relaxed;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(hard);
    let raised = [ceiling.max(hard), hard]
        .into_iter()
        .find(|&n| n > soft && setrlimit(Resource::RLIMIT_NOFILE, n, n).is_ok());
    match raised {
        Some(n) => {
            CHILD_NOFILE[0].store(soft, Relaxed);
            CHILD_NOFILE[1].store(n, Relaxed);
            tracing::debug!(limit = n, "open-files limit raised");
        }
        None if soft < hard => tracing::warn!("cannot raise the open-files limit"),
        None => {}
    }
}

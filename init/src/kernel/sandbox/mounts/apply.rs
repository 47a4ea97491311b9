//! The child's side of a [`MountPlan`]: raw syscalls on the prepared C strings only.

use std::ffi::CString;

use super::{MountPlan, Op};
use crate::kernel::sandbox::Failed;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}
const MOUNT_ATTR_RDONLY: u64 = 1;
const AT_NO_AUTOMOUNT: libc::c_int = 0x800;
const AT_RECURSIVE: libc::c_uint = 0x8000;

/// The loopback interface up, in a new network namespace.
///
/// # Safety
/// Async-signal-safe: for the child between clone and exec.
unsafe fn loopback_up() -> Result<(), Failed> {
    let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
    if fd < 0 {
        return Err(Failed);
    }
    let mut ifr: libc::ifreq = std::mem::zeroed();
    ifr.ifr_name[0] = b'l' as libc::c_char;
    ifr.ifr_name[1] = b'o' as libc::c_char;
    ifr.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // The request's type differs between glibc (c_ulong) and musl (c_int).
    let r = libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &ifr as *const libc::ifreq);
    libc::close(fd);
    if r < 0 {
        return Err(Failed);
    }
    Ok(())
}

/// One [`Op::ReadOnly`].
///
/// # Safety
/// As [`MountPlan::apply`].
unsafe fn read_only(
    path: &CString,
    flags: libc::c_ulong,
    below: &Option<Vec<(CString, libc::c_ulong)>>,
) -> Result<(), Failed> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let mut at = (libc::AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT) as libc::c_uint;
    if below.is_some() {
        at |= AT_RECURSIVE;
    }
    let r = libc::syscall(
        libc::SYS_mount_setattr,
        libc::AT_FDCWD,
        path.as_ptr(),
        at,
        &attr as *const MountAttr,
        std::mem::size_of::<MountAttr>(),
    );
    if r >= 0 {
        return Ok(());
    }
    match *libc::__errno_location() {
        // Gone since the table was read (the path, or the mount there: EINVAL; what covers
        // it now had its own rule): nothing to do.
        libc::ENOENT | libc::EINVAL => Ok(()),
        // Before Linux 5.12: the classic bind remount, one mount at a time, keeping flags.
        libc::ENOSYS => {
            remount_read_only(path, flags)?;
            for (p, f) in below.iter().flatten() {
                remount_read_only(p, *f)?;
            }
            Ok(())
        }
        _ => Err(Failed),
    }
}

/// # Safety
/// As [`MountPlan::apply`].
unsafe fn remount_read_only(path: &CString, flags: libc::c_ulong) -> Result<(), Failed> {
    let null = std::ptr::null::<libc::c_char>();
    let r = libc::mount(
        null,
        path.as_ptr(),
        null,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | flags,
        std::ptr::null(),
    );
    if r < 0 && !matches!(*libc::__errno_location(), libc::ENOENT | libc::EINVAL) {
        return Err(Failed);
    }
    Ok(())
}

impl MountPlan {
    /// Nothing to do (the namespaces are joined instead).
    pub fn none() -> MountPlan {
        MountPlan {
            mounts: false,
            network: false,
            uts: false,
            ops: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.mounts && !self.network && !self.uts
    }

    /// Carries the plan out. Only raw syscalls on the prepared strings; `Err` with errno set.
    ///
    /// # Safety
    /// Async-signal-safe: for the child between clone and exec, before its credentials change.
    pub unsafe fn apply(&self) -> Result<(), Failed> {
        let mut flags = 0;
        if self.mounts {
            flags |= libc::CLONE_NEWNS;
        }
        if self.network {
            flags |= libc::CLONE_NEWNET;
        }
        if self.uts {
            flags |= libc::CLONE_NEWUTS;
        }
        if flags == 0 {
            return Ok(());
        }
        if libc::unshare(flags) < 0 {
            return Err(Failed);
        }
        if self.network {
            loopback_up()?;
        }
        if !self.mounts {
            return Ok(());
        }
        let null = std::ptr::null::<libc::c_char>();
        // First of all: nothing below may propagate to the host's mounts.
        if libc::mount(
            null,
            c"/".as_ptr(),
            null,
            libc::MS_REC | libc::MS_SLAVE,
            std::ptr::null(),
        ) < 0
        {
            return Err(Failed);
        }
        let old = libc::umask(0);
        let r = self.run_ops();
        libc::umask(old);
        r
    }

    /// # Safety
    /// As [`MountPlan::apply`].
    unsafe fn run_ops(&self) -> Result<(), Failed> {
        let null = std::ptr::null::<libc::c_char>();
        let ok = |r: libc::c_int| if r < 0 { Err(Failed) } else { Ok(()) };
        for op in &self.ops {
            match op {
                Op::Bind { src, dst } => ok(libc::mount(
                    src.as_ptr(),
                    dst.as_ptr(),
                    null,
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ))?,
                Op::ReadOnly { path, flags, below } => read_only(path, *flags, below)?,
                Op::Tmpfs { dst, opts, flags } => ok(libc::mount(
                    c"tmpfs".as_ptr(),
                    dst.as_ptr(),
                    c"tmpfs".as_ptr(),
                    *flags,
                    opts.as_ptr().cast(),
                ))?,
                Op::Mknod { path, mode, dev } => ok(libc::mknod(path.as_ptr(), *mode, *dev))?,
                Op::Mkdir { path, mode } => ok(libc::mkdir(path.as_ptr(), *mode))?,
                Op::Symlink { target, path } => ok(libc::symlink(target.as_ptr(), path.as_ptr()))?,
                Op::Proc { opts } => ok(libc::mount(
                    c"proc".as_ptr(),
                    c"/proc".as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    opts.as_ptr().cast(),
                ))?,
            }
        }
        Ok(())
    }
}

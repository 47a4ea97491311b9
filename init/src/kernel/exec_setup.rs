//! The child's share of a unit's `exec_env` and `[socket]`: nice, OOM score, rlimits, an
//! optional working directory, and the listening sockets placed at fds 3.. (`LISTEN_FDS`).
//!
//! [`Extras`] is built in the parent before the clone; the child (spawn/child.rs) calls
//! [`apply_privileged`] before its credentials change (lowering nice or the OOM score and
//! raising a hard limit take privileges) and [`place_listen_fds`] after its stdio is in
//! place. Both make raw syscalls on memory prepared here: nothing is allocated.

use std::os::fd::RawFd;

use units::exec_env::ExecEnv;

/// Most fds passed as `LISTEN_FDS` (units::socket::MAX_LISTEN).
pub const MAX_LISTEN: usize = units::socket::MAX_LISTEN;

/// What the child applies, prepared by the parent.
#[derive(Debug, Default, Clone)]
pub struct Extras {
    pub nice: Option<i32>,
    /// The decimal text written to /proc/self/oom_score_adj.
    oom_text: Option<([u8; 8], usize)>,
    /// (RLIMIT_*, limit) for prlimit64.
    limits: Vec<(u32, libc::rlimit)>,
    /// chdir failing with ENOENT is not a failed start (`directory = "-/path"`).
    pub cwd_missing_ok: bool,
    /// The listening sockets, in `LISTEN_FDNAMES` order (colony-init's fds; placed at 3..).
    pub listen: Vec<RawFd>,
    /// `[tty]`: the terminal opened by `kernel::tty::open` (colony-init's fd, kept open by
    /// the caller until the spawn returns).
    pub tty: Option<TtyChild>,
}

/// What the child does with the unit's terminal.
#[derive(Debug, Clone, Copy)]
pub struct TtyChild {
    pub fd: RawFd,
    /// stdout and stderr on the terminal too.
    pub output: bool,
    /// `TIOCSCTTY` with 1: taken from another session that has it.
    pub force: bool,
}

/// A child setup step that failed (spawn/child.rs turns it into its `Step`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    Nice,
    OomScore,
    Rlimit,
    ListenFds,
}

impl Extras {
    /// From the unit's `exec_env` (the sockets are added by the caller).
    pub fn for_unit(e: &ExecEnv) -> Extras {
        let oom_text = e.oom_score_adj.map(|v| {
            let s = v.to_string();
            let mut buf = [0u8; 8];
            let n = s.len().min(buf.len());
            buf[..n].copy_from_slice(&s.as_bytes()[..n]);
            (buf, n)
        });
        let limits = e
            .limits
            .iter()
            .map(|l| {
                (
                    l.resource.number(),
                    libc::rlimit {
                        rlim_cur: l.soft,
                        rlim_max: l.hard,
                    },
                )
            })
            .collect();
        Extras {
            nice: e.nice,
            oom_text,
            limits,
            cwd_missing_ok: e.work_dir_missing == units::exec_env::IfMissing::Ignore,
            listen: Vec::new(),
            tty: None,
        }
    }
}

/// nice, OOM score and rlimits, while the child still has colony-init's privileges.
///
/// # Safety
/// Only in the child between clone and execve (async-signal-safe, nothing allocated), with
/// `x` prepared by the parent before clone.
pub unsafe fn apply_privileged(x: &Extras) -> Result<(), Failed> {
    for (res, lim) in &x.limits {
        let r = libc::syscall(
            libc::SYS_prlimit64,
            0,
            *res,
            lim as *const libc::rlimit,
            std::ptr::null_mut::<libc::rlimit>(),
        );
        if r < 0 {
            return Err(Failed::Rlimit);
        }
    }
    if let Some(n) = x.nice {
        if libc::setpriority(libc::PRIO_PROCESS, 0, n) < 0 {
            return Err(Failed::Nice);
        }
    }
    if let Some((buf, len)) = &x.oom_text {
        let fd = libc::open(
            c"/proc/self/oom_score_adj".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return Err(Failed::OomScore);
        }
        let w = libc::write(fd, buf.as_ptr().cast(), *len);
        libc::close(fd);
        if w < 0 {
            return Err(Failed::OomScore);
        }
    }
    Ok(())
}

/// Puts `listen` at fds 3, 4, ... without CLOEXEC; `keep` (the report pipe) is moved above
/// them if it is in the way, and its new number returned.
///
/// # Safety
/// Only in the child between clone and execve (async-signal-safe, nothing allocated).
pub unsafe fn place_listen_fds(listen: &[RawFd], keep: RawFd) -> Result<RawFd, (Failed, RawFd)> {
    let n = listen.len().min(MAX_LISTEN);
    if n == 0 {
        return Ok(keep);
    }
    let top = 3 + n as RawFd;
    let mut keep = keep;
    if keep < top {
        let k = libc::fcntl(keep, libc::F_DUPFD_CLOEXEC, top);
        if k < 0 {
            return Err((Failed::ListenFds, keep));
        }
        keep = k;
    }
    // Every source above the targets first, so no dup2 clobbers one not placed yet.
    let mut src = [-1 as RawFd; MAX_LISTEN];
    for i in 0..n {
        src[i] = listen[i];
        if src[i] < top {
            let m = libc::fcntl(src[i], libc::F_DUPFD_CLOEXEC, top);
            if m < 0 {
                return Err((Failed::ListenFds, keep));
            }
            src[i] = m;
        }
    }
    for (i, &fd) in src.iter().enumerate().take(n) {
        // dup2 leaves the new fd without CLOEXEC: it survives the exec.
        if libc::dup2(fd, 3 + i as RawFd) < 0 {
            return Err((Failed::ListenFds, keep));
        }
    }
    Ok(keep)
}

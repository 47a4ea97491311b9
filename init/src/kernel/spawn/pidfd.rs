//! Processes by pidfd: open, signal and reap without ever hitting a recycled pid.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::core::ExitStatus;

/// A pidfd (close-on-exec) for `pid`. Race-free only for a child not reaped yet, or a
/// process whose identity is checked through the pidfd afterwards.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid.max(0))
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    Ok(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)
}

/// pidfd_send_signal: never hits a recycled pid. Written out rather than rustix's, whose
/// `Signal` may not carry the real-time signals `colonyctl signal SIGRTMIN+N` sends.
pub fn send_signal(pidfd: BorrowedFd, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall with an fd we borrow and integers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn waitid(pidfd: BorrowedFd, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
    loop {
        // SAFETY: zeroed siginfo is a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid on a pidfd we borrow, writing into `info`.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | flags,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // SAFETY: waitid filled the SIGCHLD fields (or left them zero with WNOHANG).
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        return Ok(Some(match info.si_code {
            libc::CLD_EXITED => ExitStatus::Code(status),
            _ => ExitStatus::Signal(status),
        }));
    }
}

/// Reaps the process if it has ended (`None`: still running). ECHILD: someone else reaped it.
pub fn try_wait(pidfd: BorrowedFd) -> io::Result<Option<ExitStatus>> {
    waitid(pidfd, libc::WNOHANG)
}

/// Blocks until the process ends and reaps it (for shutdown paths and tests).
pub fn wait(pidfd: BorrowedFd) -> io::Result<ExitStatus> {
    waitid(pidfd, 0)?.ok_or_else(|| io::Error::other("waitid returned no child"))
}

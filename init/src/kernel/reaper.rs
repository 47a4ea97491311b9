//! Reaping: unit main processes are reaped through their pidfds (by the loop), every
//! other child (orphans handed to us as subreaper or PID 1) here by PID.

/// The PID of a child that has exited, left unreaped (WNOWAIT), so the loop can reap a
/// unit's main process through its pidfd and read its status there.
pub fn peek_exited() -> Option<i32> {
    // SAFETY: siginfo_t is plain data; waitid only writes into it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid, exclusively borrowed siginfo_t for the call; WNOWAIT leaves
    // the child unreaped, so no pidfd of ours is invalidated.
    let r = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if r != 0 {
        return None; // ECHILD: no children at all
    }
    // SAFETY: waitid filled a SIGCHLD siginfo; si_pid is valid for it.
    let pid = unsafe { info.si_pid() };
    (pid > 0).then_some(pid)
}

/// Reap one child by PID, discarding its status (an orphan that is none of ours).
pub fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: plain syscall.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
}

/// Whether any process of this process group is left (used where no cgroup tracks a unit).
pub fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let r = unsafe { libc::kill(-pgid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

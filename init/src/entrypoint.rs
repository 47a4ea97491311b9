//! Entrypoint mode (`colony-init -- CMD`): forward signals, reap, exit with CMD's status.
//!
//! tini's semantics in one small loop with no idle wakeups: every catchable signal is
//! blocked and read from a signalfd; SIGCHLD there means "reap"; everything else is
//! forwarded to CMD. When CMD exits, what is left gets SIGTERM, SIGKILL after the kill
//! timeout (a timerfd), and we exit the moment no child is left.
//!
//! CMD starts with the signal mask and ignored signals colony-init was started with: the
//! mask is restored in the child before exec, and ignored dispositions are never touched
//! here (they survive exec by themselves), except SIGPIPE, which Rust's runtime sets to
//! SIG_IGN before `main`; its original disposition is captured by an `.init_array` hook.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::pid1;

/// SIGPIPE's disposition before Rust's runtime changed it: 0 unknown, 1 ignored, 2 not.
static ORIG_SIGPIPE: AtomicU8 = AtomicU8::new(0);

extern "C" fn capture_sigpipe() {
    // SAFETY: sigaction with a null new action only reads the current disposition.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0 {
            let ign = old.sa_sigaction == libc::SIG_IGN;
            ORIG_SIGPIPE.store(if ign { 1 } else { 2 }, Ordering::Relaxed);
        }
    }
}

/// Runs before `main`, hence before Rust's runtime sets SIGPIPE to SIG_IGN.
#[used]
#[link_section = ".init_array"]
static CAPTURE_SIGPIPE: extern "C" fn() = capture_sigpipe;

#[derive(Debug, thiserror::Error)]
pub enum EntrypointError {
    #[error("{0}: {1}")]
    Setup(&'static str, Errno),
    #[error("cannot run {cmd}: {err}")]
    Spawn { cmd: String, err: io::Error },
}

impl EntrypointError {
    /// The shell's convention: 127 not found, 126 found but not runnable.
    fn exit_code(&self) -> i32 {
        match self {
            EntrypointError::Spawn { err, .. } if err.kind() == io::ErrorKind::NotFound => 127,
            EntrypointError::Spawn { .. } => 126,
            EntrypointError::Setup(..) => 1,
        }
    }
}

/// Run CMD as tini would; returns colony-init's exit code (CMD's code or 128+N). As PID 1
/// of a machine this does not return: after CMD and every other process are gone, it
/// powers the machine off (PID 1 of a machine must not exit).
pub fn run(cmd: Vec<OsString>, kill_timeout: Duration) -> i32 {
    let code = match Entrypoint::run(cmd, kill_timeout) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("colony-init: {e}");
            e.exit_code()
        }
    };
    if nix::unistd::getpid().as_raw() == 1 && pid1::detect_mode() == pid1::Mode::Machine {
        eprintln!("colony-init: command exited with status {code}; powering off");
        pid1::final_shutdown(pid1::PowerAction::PowerOff, kill_timeout);
    }
    code
}

/// Signals we never block: the kernel sends them for our own faults, and SIGKILL/SIGSTOP
/// cannot be blocked anyway.
const UNBLOCKABLE: [Signal; 9] = [
    Signal::SIGKILL,
    Signal::SIGSTOP,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGILL,
    Signal::SIGFPE,
    Signal::SIGTRAP,
    Signal::SIGSYS,
    Signal::SIGABRT,
];

fn raw_kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) with plain integers; errors (ESRCH) are harmless here.
    unsafe { libc::kill(pid, sig) };
}

/// The pids whose parent is us (by /proc; there is no syscall that lists children).
fn our_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for ent in dir.flatten() {
        let Some(pid) = ent.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the last ')' (comm may hold anything): state ppid ...
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(me) {
            out.push(pid);
        }
    }
    out
}

fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

struct Entrypoint {
    pid1: bool,
    cmd: Pid,
    /// CMD has its own process group and the terminal's foreground.
    tty: bool,
    cmd_code: Option<i32>,
    /// After CMD's exit: 1 leftovers got SIGTERM, 2 they got SIGKILL.
    phase: u8,
    /// Children already sent the current phase's signal (subreaper case).
    signalled: HashSet<i32>,
}

impl Entrypoint {
    fn run(cmd: Vec<OsString>, kill_timeout: Duration) -> Result<i32, EntrypointError> {
        // Keep the .init_array hook's object linked in.
        let _ = std::hint::black_box(&CAPTURE_SIGPIPE);
        let pid1 = nix::unistd::getpid().as_raw() == 1;
        if pid1 {
            let mode = pid1::detect_mode();
            // A container's runtime mounts what it needs; a bare machine has nothing yet.
            if mode == pid1::Mode::Machine {
                for w in pid1::early_setup(mode) {
                    eprintln!("colony-init: {w}");
                }
            }
        } else {
            nix::sys::prctl::set_child_subreaper(true)
                .map_err(|e| EntrypointError::Setup("cannot become a child subreaper", e))?;
        }

        let mut orig_mask = SigSet::empty();
        nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_BLOCK,
            None,
            Some(&mut orig_mask),
        )
        .map_err(|e| EntrypointError::Setup("cannot read the signal mask", e))?;
        let mut block = SigSet::all();
        for s in UNBLOCKABLE {
            block.remove(s);
        }
        block
            .thread_block()
            .map_err(|e| EntrypointError::Setup("cannot block signals", e))?;
        let sfd = SignalFd::with_flags(&block, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| EntrypointError::Setup("cannot create a signalfd", e))?;
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_CLOEXEC | TimerFlags::TFD_NONBLOCK,
        )
        .map_err(|e| EntrypointError::Setup("cannot create a timerfd", e))?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| EntrypointError::Setup("cannot create an epoll", e))?;
        epoll
            .add(sfd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, 0))
            .and_then(|_| epoll.add(timer.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, 1)))
            .map_err(|e| EntrypointError::Setup("cannot watch fds", e))?;

        let stdin = io::stdin();
        let tty = nix::unistd::isatty(stdin.as_fd()).unwrap_or(false)
            && nix::unistd::tcgetpgrp(stdin.as_fd()).ok() == Some(nix::unistd::getpgrp());
        let child = spawn(&cmd, *orig_mask.as_ref(), tty)?;
        let mut ep = Entrypoint {
            pid1,
            cmd: Pid::from_raw(child as i32),
            tty,
            cmd_code: None,
            phase: 0,
            signalled: HashSet::new(),
        };
        ep.event_loop(&epoll, &sfd, &timer, kill_timeout)
    }

    fn event_loop(
        &mut self,
        epoll: &Epoll,
        sfd: &SignalFd,
        timer: &TimerFd,
        kill_timeout: Duration,
    ) -> Result<i32, EntrypointError> {
        let mut events = [EpollEvent::empty(); 4];
        loop {
            if !self.reap() {
                // No child left at all: CMD has exited, and so has everything else.
                return Ok(self.cmd_code.unwrap_or(0));
            }
            if self.cmd_code.is_some() {
                if self.phase == 0 {
                    self.phase = 1;
                    if kill_timeout.is_zero() {
                        self.phase = 2;
                    } else {
                        timer
                            .set(
                                Expiration::OneShot(TimeSpec::from_duration(kill_timeout)),
                                TimerSetTimeFlags::empty(),
                            )
                            .map_err(|e| EntrypointError::Setup("cannot arm the timer", e))?;
                    }
                }
                self.signal_leftovers();
            }
            let n = match epoll.wait(&mut events, EpollTimeout::NONE) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(EntrypointError::Setup("epoll_wait failed", e)),
            };
            for ev in &events[..n] {
                if ev.data() == 1 {
                    let _ = timer.wait();
                    if self.phase == 1 {
                        self.phase = 2;
                        self.signalled.clear();
                    }
                    continue;
                }
                while let Ok(Some(info)) = sfd.read_signal() {
                    self.on_signal(info.ssi_signo as i32);
                }
            }
        }
    }

    /// Reap everything that has ended; false when there is no child left.
    fn reap(&mut self) -> bool {
        let flags = WaitPidFlag::WNOHANG | WaitPidFlag::WUNTRACED;
        loop {
            match waitpid(None::<Pid>, Some(flags)) {
                Ok(WaitStatus::StillAlive) => return true,
                Ok(WaitStatus::Stopped(pid, _)) => {
                    if pid == self.cmd {
                        self.cmd_stopped();
                    }
                }
                Ok(status) => {
                    if status.pid() == Some(self.cmd) {
                        if let Some(code) = exit_code(status) {
                            self.cmd_code = Some(code);
                        }
                    } else if let Some(pid) = status.pid() {
                        self.signalled.remove(&pid.as_raw());
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(_) => return false,
            }
        }
    }

    /// SIGTERM (phase 1) or SIGKILL (phase 2) to what CMD left behind.
    fn signal_leftovers(&mut self) {
        let sig = if self.phase >= 2 {
            libc::SIGKILL
        } else {
            libc::SIGTERM
        };
        if self.pid1 {
            // Only PID 1 of its own namespace may do this: everyone here is ours.
            if self.signalled.insert(-1) {
                raw_kill(-1, sig);
                raw_kill(-1, libc::SIGCONT);
            }
            return;
        }
        // As a subreaper only our own children: orphans reparented to us, each one signalled
        // once; their own children become ours as they die, and get theirs then.
        for pid in our_children() {
            if self.signalled.insert(pid) {
                raw_kill(pid, sig);
                raw_kill(pid, libc::SIGCONT);
            }
        }
    }

    fn on_signal(&mut self, sig: i32) {
        if sig == libc::SIGCHLD || self.cmd_code.is_some() {
            return;
        }
        if self.tty && sig == libc::SIGCONT {
            // Resume the whole job, as a shell's `fg` would.
            let _ = nix::unistd::tcsetpgrp(io::stdin().as_fd(), self.cmd);
            raw_kill(-self.cmd.as_raw(), sig);
            return;
        }
        raw_kill(self.cmd.as_raw(), sig);
    }

    /// CMD was stopped by job control (Ctrl-Z): stop ourselves too so the shell that started
    /// us sees the job stop, and hand CMD the terminal again when we are continued.
    fn cmd_stopped(&mut self) {
        if !self.tty || self.pid1 {
            return;
        }
        let stdin = io::stdin();
        let _ = nix::unistd::tcsetpgrp(stdin.as_fd(), nix::unistd::getpgrp());
        raw_kill(std::process::id() as i32, libc::SIGSTOP);
        // Continued (SIGCONT also waits in the signalfd and resumes the job there).
        let _ = nix::unistd::tcsetpgrp(stdin.as_fd(), self.cmd);
        raw_kill(-self.cmd.as_raw(), libc::SIGCONT);
    }
}

/// Start CMD (looked up in PATH) with the original signal mask and SIGPIPE disposition; in
/// its own process group in the terminal's foreground when `tty`.
fn spawn(cmd: &[OsString], orig_mask: libc::sigset_t, tty: bool) -> Result<u32, EntrypointError> {
    let Some((prog, args)) = cmd.split_first() else {
        return Err(EntrypointError::Spawn {
            cmd: String::new(),
            err: io::Error::new(io::ErrorKind::InvalidInput, "empty command"),
        });
    };
    let sigpipe_ignored = ORIG_SIGPIPE.load(Ordering::Relaxed) == 1;
    // SAFETY: an all-ones set built before fork; sigfillset only writes the struct.
    let full: libc::sigset_t = unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut s);
        s
    };
    let mut command = Command::new(prog);
    command.args(args);
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // syscalls on values prepared before the fork; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if tty {
                // Block SIGTTOU so tcsetpgrp from what is still a background group works.
                libc::pthread_sigmask(libc::SIG_SETMASK, &full, std::ptr::null_mut());
                libc::setpgid(0, 0);
                libc::tcsetpgrp(0, libc::getpid());
            }
            if sigpipe_ignored {
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            }
            libc::pthread_sigmask(libc::SIG_SETMASK, &orig_mask, std::ptr::null_mut());
            Ok(())
        });
    }
    let child = command.spawn().map_err(|err| EntrypointError::Spawn {
        cmd: prog.to_string_lossy().into_owned(),
        err,
    })?;
    let pid = child.id();
    // We reap it ourselves with waitpid(-1); std's handle only holds the pid.
    drop(child);
    Ok(pid)
}

//! Entrypoint mode (`colony-init -- CMD`): forward signals, reap, exit with CMD's status.
//!
//! tini's semantics in one small loop with no idle wakeups: every catchable signal is
//! blocked and read from a signalfd; SIGCHLD there means "reap"; everything else is
//! forwarded to CMD. When CMD exits, what is left gets SIGTERM, SIGKILL after the kill
//! timeout (a timerfd), and we exit the moment no child is left.
//!
//! The fault signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS, SIGABRT) cannot go
//! through the signalfd: the kernel raises them for a fault of our own, synchronously, and
//! a blocked one would kill us anyway. A handler tells the two apart by `si_code`: sent by
//! another process (`kill`, `sigqueue`, `tgkill`), the number goes through a pipe to the
//! loop and is forwarded like any other; our own fault gets the default action back and
//! ends colony-init as it would have.
//!
//! CMD starts with the signal mask and ignored signals colony-init was started with: the
//! mask is restored in the child before exec, and ignored dispositions are never touched
//! here (they survive exec by themselves), except SIGPIPE, which Rust's runtime sets to
//! SIG_IGN before `main`; its original disposition is captured by an `.init_array` hook.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::os::fd::AsFd;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::handover::{EntrypointSnap, Role, State};
use crate::kernel::pid1;

mod control;

use control::Control;

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
/// `control`: the run directory of a control FIFO for `version` and `reexec` (given with
/// `--run-dir` or `COLONY_RUN_DIR`); `handover`: a reexec's state (CMD runs already).
pub fn run(
    cmd: Vec<OsString>,
    kill_timeout: Duration,
    control: Option<std::path::PathBuf>,
    handover: Option<State>,
) -> i32 {
    let code = match Entrypoint::run(cmd, kill_timeout, control, handover) {
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

/// Signals the kernel also raises for our own faults: forwarded only when another process
/// sent them (see [`on_fault_signal`]).
const FAULTS: [i32; 7] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGTRAP,
    libc::SIGSYS,
    libc::SIGABRT,
];

/// The write end of the pipe from [`on_fault_signal`] to the loop (-1: none yet).
static FORWARD_PIPE: AtomicI32 = AtomicI32::new(-1);

/// The handler of the [`FAULTS`]. Only async-signal-safe calls: getpid, write, sigaction,
/// raise.
extern "C" fn on_fault_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: an SA_SIGINFO handler gets a valid siginfo from the kernel; si_pid is what
    // kill/sigqueue/tgkill (the codes checked first) fill in.
    let from_another = unsafe {
        matches!(
            (*info).si_code,
            libc::SI_USER | libc::SI_QUEUE | libc::SI_TKILL
        ) && (*info).si_pid() != libc::getpid()
    };
    let fd = FORWARD_PIPE.load(Ordering::Relaxed);
    if from_another && fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write(2) of one byte from the stack to our non-blocking pipe; a full pipe
        // drops it (that many signals pending already).
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
        return;
    }
    // Our own fault (or our own abort): the default action, then die of it. A fault
    // raised by an instruction (si_code > 0) happens again when we return; the others are
    // raised once more, pending until we return (the handler blocks every signal).
    // SAFETY: sigaction and raise are async-signal-safe; the struct is zeroed (SIG_DFL,
    // empty mask) on the stack.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &dfl, std::ptr::null_mut());
        let refaults = matches!(
            sig,
            libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE
        ) && (*info).si_code > 0;
        if !refaults {
            libc::raise(sig);
        }
    }
}

/// Catch the [`FAULTS`] that are not ignored (an ignored one stays so, for CMD too) with
/// [`on_fault_signal`]; the read end of the pipe it writes to. This replaces the handler
/// Rust's runtime puts on SIGSEGV/SIGBUS to name a stack overflow; such an overflow still
/// ends colony-init with SIGSEGV.
fn catch_faults() -> Result<OwnedFd, EntrypointError> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
        .map_err(|e| EntrypointError::Setup("cannot create a pipe", e))?;
    // The handler uses the write end for the rest of the process's life.
    FORWARD_PIPE.store(w.as_raw_fd(), Ordering::Relaxed);
    std::mem::forget(w);
    for sig in FAULTS {
        // SAFETY: sigaction reads and installs a handler that only makes async-signal-safe
        // calls; the structs are plain data on the stack.
        let r = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                -1
            } else if old.sa_sigaction == libc::SIG_IGN {
                0
            } else {
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = on_fault_signal as *const () as usize;
                act.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
                libc::sigfillset(&mut act.sa_mask);
                libc::sigaction(sig, &act, std::ptr::null_mut())
            }
        };
        if r != 0 {
            return Err(EntrypointError::Setup(
                "cannot catch fault signals",
                Errno::last(),
            ));
        }
    }
    Ok(r)
}

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
    fn run(
        cmd: Vec<OsString>,
        kill_timeout: Duration,
        control_dir: Option<std::path::PathBuf>,
        handover: Option<State>,
    ) -> Result<i32, EntrypointError> {
        // Keep the .init_array hook's object linked in.
        let _ = std::hint::black_box(&CAPTURE_SIGPIPE);
        let pid1 = nix::unistd::getpid().as_raw() == 1;
        let resumed = handover.as_ref().and_then(|s| s.entrypoint.clone());
        if resumed.is_some() {
            // Mounts and the subreaper bit were set by the first image (the bit survives
            // exec).
        } else if pid1 {
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
        let faults = catch_faults()?;
        epoll
            .add(sfd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, 0))
            .and_then(|_| epoll.add(timer.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, 1)))
            .and_then(|_| epoll.add(faults.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, 2)))
            .map_err(|e| EntrypointError::Setup("cannot watch fds", e))?;

        let kept = handover.as_ref().and_then(|s| {
            s.fds.iter().find(|f| f.role == Role::Control).map(|f| {
                // SAFETY: listed by the previous image as its control FIFO; nobody owns it.
                unsafe { crate::handover::adopt(f.fd) }
            })
        });
        let mut control = control_dir
            .as_deref()
            .and_then(|d| Control::open(d, kept, handover.as_ref()));
        if let Some(c) = &control {
            epoll
                .add(c.fd(), EpollEvent::new(EpollFlags::EPOLLIN, 3))
                .map_err(|e| EntrypointError::Setup("cannot watch fds", e))?;
        }
        let mut ep = match resumed {
            Some(snap) => Entrypoint {
                pid1,
                cmd: Pid::from_raw(snap.cmd),
                tty: snap.tty,
                cmd_code: snap.cmd_code,
                // SIGTERM's phase under way starts its timeout afresh; SIGKILL's goes on.
                phase: if snap.phase >= 2 { 2 } else { 0 },
                signalled: HashSet::new(),
            },
            None => {
                let stdin = io::stdin();
                let tty = nix::unistd::isatty(stdin.as_fd()).unwrap_or(false)
                    && nix::unistd::tcgetpgrp(stdin.as_fd()).ok() == Some(nix::unistd::getpgrp());
                let child = spawn(&cmd, *orig_mask.as_ref(), tty)?;
                Entrypoint {
                    pid1,
                    cmd: Pid::from_raw(child as i32),
                    tty,
                    cmd_code: None,
                    phase: 0,
                    signalled: HashSet::new(),
                }
            }
        };
        if let (Some(c), Some(st)) = (control.as_mut(), handover.as_ref()) {
            c.answer_reexec(st);
        }
        ep.event_loop(&epoll, &sfd, &timer, &faults, &mut control, kill_timeout)
    }

    fn snap(&self) -> EntrypointSnap {
        EntrypointSnap {
            cmd: self.cmd.as_raw(),
            tty: self.tty,
            cmd_code: self.cmd_code,
            phase: self.phase,
        }
    }

    fn event_loop(
        &mut self,
        epoll: &Epoll,
        sfd: &SignalFd,
        timer: &TimerFd,
        faults: &OwnedFd,
        control: &mut Option<Control>,
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
                if ev.data() == 3 {
                    if let Some(c) = control.as_mut() {
                        c.on_readable(|| self.snap());
                    }
                    continue;
                }
                if ev.data() == 2 {
                    // Fault signals other processes sent, one byte each.
                    let mut buf = [0u8; 64];
                    while let Ok(n @ 1..) = nix::unistd::read(faults, &mut buf) {
                        for &sig in &buf[..n] {
                            self.on_signal(i32::from(sig));
                        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// In a forked child: catch the fault signals as entrypoint mode does, then `fault`;
    /// how the child ended.
    fn child_after(fault: fn()) -> WaitStatus {
        // SAFETY: the child only makes async-signal-safe calls (pipe2, sigaction, alarm,
        // the fault, _exit) and never returns into the test harness.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                // SAFETY: plain syscalls; alarm ends a child that would loop on its fault.
                unsafe { libc::alarm(20) };
                if catch_faults().is_err() {
                    // SAFETY: _exit ends the child at once.
                    unsafe { libc::_exit(3) };
                }
                fault();
                // SAFETY: as above.
                unsafe { libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
        }
    }

    fn killed_by(st: WaitStatus) -> Option<Signal> {
        match st {
            WaitStatus::Signaled(_, s, _) => Some(s),
            _ => None,
        }
    }

    #[test]
    fn a_real_fault_still_ends_colony_init() {
        // SAFETY: ud2 raises SIGILL (ILL_ILLOPN) at this instruction; nothing else.
        let ill = || unsafe { std::arch::asm!("ud2") };
        assert_eq!(killed_by(child_after(ill)), Some(Signal::SIGILL));
        let segv = || {
            // SAFETY: no: a write to an address below mmap_min_addr faults (SEGV_MAPERR),
            // which is the point; the process dies of it.
            unsafe { std::ptr::write_volatile(0x10 as *mut u8, 1) }
        };
        assert_eq!(killed_by(child_after(segv)), Some(Signal::SIGSEGV));
        // abort() signals its own process (SI_TKILL from our own pid): not forwarded.
        assert_eq!(
            killed_by(child_after(|| std::process::abort())),
            Some(Signal::SIGABRT)
        );
    }
}

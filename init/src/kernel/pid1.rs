//! PID 1 duties: mounts, hostname, container or machine, the final kill, sync and reboot(2).
//!
//! Safety invariant: nothing here kills every process or calls reboot(2) unless
//! `getpid() == 1`, and reboot(2) only in [`Mode::Machine`], which needs proof (the PID
//! namespace inode of the initial namespace) that this is the machine's own init.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// The inode of the initial PID namespace (PROC_PID_INIT_INO in the kernel).
const INIT_PID_NS_INODE: u64 = 0xEFFF_FFFC;

/// Where colony-init runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// PID 1 of the machine (the initial PID namespace).
    Machine,
    /// PID 1 of a PID namespace (a container).
    Container,
    /// Any other PID: a supervisor among other processes.
    Plain,
}

/// `machine`, `container`, `plain`, as the log says it.
impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Machine => "machine",
            Mode::Container => "container",
            Mode::Plain => "plain",
        })
    }
}

/// What the machine does at the end of [`final_shutdown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    PowerOff,
    Reboot,
    Halt,
}

fn is_pid1() -> bool {
    nix::unistd::getpid().as_raw() == 1
}

/// The inode of our PID namespace, if /proc can tell.
fn pid_ns_inode() -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    // stat() of the nsfs link target gives the namespace inode; readlink as a fallback.
    if let Ok(m) = std::fs::metadata("/proc/self/ns/pid") {
        return Some(m.ino());
    }
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let s = link.to_str()?;
    s.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

pub(crate) fn container_hints() -> bool {
    std::env::var_os("container").is_some_and(|v| !v.is_empty())
        || Path::new("/run/.containerenv").exists()
        || Path::new("/.dockerenv").exists()
}

/// Tell a machine's init from a container's init from a plain process.
///
/// As PID 1 without /proc, this mounts /proc first (PID 1 wants it anyway). When the PID
/// namespace cannot be proven to be the initial one, the answer is `Container`: the
/// cautious side, which never reboots anything.
pub fn detect_mode() -> Mode {
    if !is_pid1() {
        return Mode::Plain;
    }
    if pid_ns_inode().is_none() {
        let _ = std::fs::create_dir_all("/proc");
        let _ = mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        );
    }
    match pid_ns_inode() {
        Some(INIT_PID_NS_INODE) if !container_hints() => Mode::Machine,
        _ => Mode::Container,
    }
}

/// Mount points in /proc/self/mountinfo.
fn mount_points() -> Vec<String> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .collect()
}

struct Want {
    target: &'static str,
    fstype: &'static str,
    source: &'static str,
    flags: MsFlags,
    data: Option<&'static str>,
}

/// As PID 1: mount what is missing and writable, and on a machine set the hostname, make
/// sure fds 0-2 are open on the console, and let Ctrl-Alt-Del send SIGINT. Returns
/// warnings for whatever could not be done; nothing here is fatal.
pub fn early_setup(mode: Mode) -> Vec<String> {
    let mut warnings = Vec::new();
    if mode == Mode::Plain || !is_pid1() {
        return warnings;
    }
    let nsd = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let wants = [
        Want {
            target: "/proc",
            fstype: "proc",
            source: "proc",
            flags: nsd | MsFlags::MS_NOEXEC,
            data: None,
        },
        Want {
            target: "/sys",
            fstype: "sysfs",
            source: "sysfs",
            flags: nsd | MsFlags::MS_NOEXEC,
            data: None,
        },
        Want {
            target: "/dev",
            fstype: "devtmpfs",
            source: "devtmpfs",
            flags: MsFlags::MS_NOSUID,
            data: Some("mode=0755"),
        },
        Want {
            target: "/dev/pts",
            fstype: "devpts",
            source: "devpts",
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            data: Some("mode=0620,ptmxmode=0666,newinstance"),
        },
        Want {
            target: "/dev/shm",
            fstype: "tmpfs",
            source: "shm",
            flags: nsd,
            data: Some("mode=1777"),
        },
        Want {
            target: "/run",
            fstype: "tmpfs",
            source: "run",
            flags: nsd,
            data: Some("mode=0755"),
        },
        Want {
            target: "/sys/fs/cgroup",
            fstype: "cgroup2",
            source: "cgroup2",
            flags: nsd | MsFlags::MS_NOEXEC,
            data: None,
        },
    ];
    for w in &wants {
        // Re-read each time: /proc itself may have just been mounted.
        if mount_points().iter().any(|p| p == w.target) {
            continue;
        }
        // In a container, never cover what is there: PID 1 of a PID namespace may share
        // its mount namespace with the host (`unshare --pid --fork` without --mount), and a
        // tmpfs over a populated /run would hide the host's. A machine's init owns its
        // mounts (and its initramfs /dev already holds a console node).
        if mode == Mode::Container && !dir_is_empty_or_absent(w.target) {
            continue;
        }
        if let Err(e) = std::fs::create_dir_all(w.target) {
            warnings.push(format!("cannot create {}: {e}", w.target));
            continue;
        }
        match mount(Some(w.source), w.target, Some(w.fstype), w.flags, w.data) {
            Ok(()) => {}
            // A default container may not mount (no CAP_SYS_ADMIN): its runtime chose the
            // mounts and the directory is there, so this is no fault worth a warning.
            Err(nix::errno::Errno::EPERM) if mode == Mode::Container => {
                tracing::debug!(target = w.target, "not mounting in this container: EPERM")
            }
            Err(e) => warnings.push(format!("cannot mount {} on {}: {e}", w.fstype, w.target)),
        }
    }
    if mode == Mode::Machine {
        console_on_closed_fds(&mut warnings);
        match std::fs::read_to_string("/etc/hostname") {
            Ok(name) => {
                let name = name.lines().next().unwrap_or("").trim();
                if !name.is_empty() {
                    if let Err(e) = nix::unistd::sethostname(name) {
                        warnings.push(format!("cannot set hostname {name:?}: {e}"));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => warnings.push(format!("cannot read /etc/hostname: {e}")),
        }
        // With CAD disabled, the kernel sends SIGINT to PID 1 on Ctrl-Alt-Del.
        if let Err(e) = nix::sys::reboot::set_cad_enabled(false) {
            warnings.push(format!("cannot disable Ctrl-Alt-Del: {e}"));
        }
    }
    warnings
}

fn dir_is_empty_or_absent(path: &str) -> bool {
    match std::fs::read_dir(path) {
        Ok(mut d) => d.next().is_none(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

fn fd_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

fn console_on_closed_fds(warnings: &mut Vec<String>) {
    if (0..3).all(fd_is_open) {
        return;
    }
    let Ok(path) = CString::new("/dev/console") else {
        return;
    };
    // SAFETY: a plain open(2) of a NUL-terminated path.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NOCTTY) };
    if fd < 0 {
        warnings.push(format!("cannot open /dev/console: {}", Errno::last()));
        return;
    }
    let mut keep = false;
    for target in 0..3 {
        if target == fd {
            keep = true;
        } else if !fd_is_open(target) {
            // SAFETY: dup2 onto a descriptor that is closed.
            unsafe { libc::dup2(fd, target) };
        }
    }
    if !keep {
        // SAFETY: fd is ours and not one of 0-2.
        unsafe { libc::close(fd) };
    }
}

/// Reap every child that has exited, without blocking. Returns false when no child is left.
fn reap_ready() -> bool {
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return true,
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(_) => return false, // ECHILD: nobody left
        }
    }
}

/// Reap until no child is left or `deadline` passes; true when none is left. Waits on a
/// signalfd for SIGCHLD with poll's timeout as the bound, never a fixed sleep.
fn reap_until(sfd: &SignalFd, deadline: Instant) -> bool {
    loop {
        if !reap_ready() {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        let mut pfd = libc::pollfd {
            fd: sfd.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, ms) };
        while let Ok(Some(_)) = sfd.read_signal() {}
    }
}

/// The end of a machine (or a container's init): SIGTERM to every process left, reap them
/// until none remain or `kill_timeout` passes, SIGKILL the rest; then on a machine turn off
/// swap, unmount every file system (`kernel::unmount`: reverse mount order, busy ones
/// retried, then remounted read-only and detached; the root remounted read-only), each
/// step a line on the console, sync and reboot(2) with `action`; as PID 1 of a container,
/// sync and exit 0. Refuses (exits 1 with a
/// message) when this process is not PID 1: the kill of every process and reboot(2) must
/// never run anywhere else.
pub fn final_shutdown(action: PowerAction, kill_timeout: Duration) -> ! {
    if !is_pid1() {
        eprintln!("colony-init: refusing {action:?}: not PID 1");
        std::process::exit(1);
    }
    let mode = detect_mode();
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    let _ = chld.thread_block();
    let sfd = match SignalFd::with_flags(&chld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("colony-init: no signalfd for shutdown ({e}); reaping forever");
            reap_forever();
        }
    };
    let all = Pid::from_raw(-1);
    // kill(-1) from PID 1 reaches every process but PID 1 itself (of this namespace).
    if reap_ready() {
        eprintln!("colony-init: sending SIGTERM to all processes");
        let _ = kill(all, Signal::SIGTERM);
        let _ = kill(all, Signal::SIGCONT);
        let deadline = Instant::now() + kill_timeout;
        if !reap_until(&sfd, deadline) {
            eprintln!("colony-init: sending SIGKILL to all processes");
            let _ = kill(all, Signal::SIGKILL);
            // SIGKILL cannot be refused; the bound only covers processes stuck in the kernel.
            reap_until(
                &sfd,
                Instant::now() + kill_timeout.max(Duration::from_secs(5)),
            );
        }
    }
    if mode != Mode::Machine {
        nix::unistd::sync();
        std::process::exit(0);
    }
    // Nothing of colony-init may keep a file open for writing: a remount read-only fails
    // while one is.
    crate::self_log::close();
    for line in super::unmount::swapoff_all() {
        eprintln!("colony-init: {line}");
    }
    for (_, line) in super::unmount::unmount_everything() {
        eprintln!("colony-init: {line}");
    }
    nix::unistd::sync();
    let how = match action {
        PowerAction::PowerOff => nix::sys::reboot::RebootMode::RB_POWER_OFF,
        PowerAction::Reboot => nix::sys::reboot::RebootMode::RB_AUTOBOOT,
        PowerAction::Halt => nix::sys::reboot::RebootMode::RB_HALT_SYSTEM,
    };
    let err = nix::sys::reboot::reboot(how).err();
    eprintln!("colony-init: reboot(2) {action:?} failed: {err:?}");
    reap_forever();
}

/// The last resort when the main loop cannot go on: say so on the console and reap
/// orphans forever, so the machine or container at least never fills with zombies.
pub fn reap_forever() -> ! {
    eprintln!("colony-init: the main loop cannot go on; reaping orphans forever");
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    let _ = chld.thread_block();
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(_) | Err(Errno::EINTR) => {}
            // No child at all: sleep until one exits (SIGCHLD stays pending while blocked).
            Err(_) => {
                let _ = chld.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_pid1_is_plain_and_does_nothing() {
        // The test process is never PID 1.
        assert_eq!(detect_mode(), Mode::Plain);
        assert!(early_setup(Mode::Plain).is_empty());
        assert!(early_setup(Mode::Machine).is_empty());
    }

    #[test]
    fn empty_or_absent_directories() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().to_str().unwrap().to_string();
        assert!(dir_is_empty_or_absent(&p));
        assert!(dir_is_empty_or_absent(&format!("{p}/missing")));
        std::fs::write(d.path().join("f"), "x").unwrap();
        assert!(!dir_is_empty_or_absent(&p));
    }

    #[test]
    fn mount_points_come_from_mountinfo() {
        // Every Linux test host has /proc mounted (the tests read it throughout).
        assert!(mount_points().iter().any(|m| m == "/proc"));
    }
}

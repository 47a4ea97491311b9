//! The handover state of `colonyctl reexec`: what the running image gives the new one
//! through exec. It is JSON in a sealed memfd whose fd number the new image finds in
//! [`ENV_FD`]; the kernel objects that must survive (the control FIFO, the notify socket,
//! every unit's pidfd and log pipe, the inotify instance with its watches) are kept open
//! across exec (`FD_CLOEXEC` cleared) and listed by fd number and role. Timerfds, the
//! signalfd and the epoll are made afresh by the new image. Keeping the inotify instance
//! loses no event during the exec, and spares the kernel tearing down its watches at exec
//! (an RCU grace period) and the new image making them again.
//!
//! [`run_check`] and [`exec_with_state`] are the running image's two steps (the engine's and
//! the entrypoint's alike).
//!
//! The format carries [`VERSION`]; an image reads every version from [`OLDEST_READ`] to its
//! own, and every field has a serde default, so a field added by a later release is read as
//! its default. `colony-init --check-handover FD` reads a state and checks it (version, every
//! listed fd open) without touching anything: the running image asks the new binary this
//! before it execs it.

use std::ffi::CString;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::core::{CoreSnap, DeadlineKind, MonoClock, Want};

/// The state format's version, written by this image. 2: the inotify instance, cgroup stat
/// files and log files are kept too (roles an image of version 1 cannot read, so such an
/// image fails its check on the state); a state of version 1 is taken over with those
/// made afresh.
pub const VERSION: u32 = 2;
/// The oldest version this image reads.
pub const OLDEST_READ: u32 = 1;
/// The environment variable naming the state's fd in the new image.
pub const ENV_FD: &str = "COLONY_HANDOVER_FD";
/// The option of the check mode: `colony-init --check-handover FD`.
pub const CHECK_OPTION: &str = "--check-handover";
/// A state larger than this is refused (bounded input even from ourselves).
const MAX_STATE: u64 = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error("handover state fd {0}: {1}")]
    Io(RawFd, #[source] std::io::Error),
    #[error("handover state is not readable: {0}")]
    Format(#[from] serde_json::Error),
    #[error("handover state version {found} is not one this colony-init reads ({OLDEST_READ} to {VERSION})")]
    Version { found: u32 },
    #[error("handover state: fd {fd} ({role}) is not open")]
    MissingFd { fd: RawFd, role: String },
    #[error("handover state is larger than {MAX_STATE} bytes")]
    TooLarge,
}

/// What a kept fd is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// `RUN/control`, open read-write.
    Control,
    /// `RUN/notify`.
    Notify,
    /// A unit's main process.
    Pidfd(String),
    /// The read end of a unit's output pipe.
    LogRead(String),
    /// The write end of a unit's output pipe (dup'ed into each start).
    LogWrite(String),
    /// A reply FIFO with a reply partly written.
    Reply(String),
    /// A listening socket of a unit's `[socket]` (kept open so no connection is lost).
    Listen(String),
    /// An event stream's reply FIFO (`subscribe`).
    Subscriber(String),
    /// The loop's inotify instance: its watches (the units directory, heartbeat
    /// directories, `cgroup.events` files) and the events queued during the exec go on.
    Inotify,
    /// A held stat file of a unit's cgroup.
    CgroupStat(String),
    /// A unit's open log file.
    LogFile(String),
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Control => f.write_str("control FIFO"),
            Role::Notify => f.write_str("notify socket"),
            Role::Pidfd(u) => write!(f, "pidfd of {u}"),
            Role::LogRead(u) => write!(f, "log pipe of {u}"),
            Role::LogWrite(u) => write!(f, "log pipe (write end) of {u}"),
            Role::Reply(n) => write!(f, "reply FIFO {n}"),
            Role::Listen(u) => write!(f, "listening socket of {u}"),
            Role::Subscriber(n) => write!(f, "event stream FIFO {n}"),
            Role::Inotify => f.write_str("inotify instance"),
            Role::CgroupStat(u) => write!(f, "cgroup stat file of {u}"),
            Role::LogFile(u) => write!(f, "log file of {u}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptFd {
    pub fd: RawFd,
    pub role: Role,
}

/// The loop's handles of one unit (fds by number, listed in [`State::fds`] too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UnitHandles {
    pub name: String,
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub main_pid: Option<i32>,
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub pidfd: Option<RawFd>,
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub pgid: Option<i32>,
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub log_read: Option<RawFd>,
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub log_write: Option<RawFd>,
    /// It had a cgroup (the new image opens the same directories again).
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub cgroup: bool,
    /// Its cgroup was killed (a new start makes it afresh).
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub cgroup_killed: bool,
    /// Its cgroup's directories and held stat files, taken over as they are (absent from
    /// an older state: the directories are looked up and the files opened again).
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub cgroup_kept: Option<crate::kernel::cgroup::CgroupKept>,
    /// Its open log file (absent from an older state: opened again).
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub log_kept: Option<crate::logs::LogKept>,
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub oom_seen: u64,
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub status_text: Option<String>,
    /// Escaped processes being killed (pidfds opened again by PID).
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub strays: Vec<i32>,
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub awaiting_empty: bool,
    /// Its `exec_env` and `[socket]` state.
    pub exec: ExecHandles,
}

/// What a unit's start made that its stop undoes, and its listening sockets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecHandles {
    /// The `[socket]` fds, in `listen` order (listed in [`State::fds`] too).
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub listen: Vec<RawFd>,
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub runtime_dirs: Vec<PathBuf>,
    /// The credentials directory and whether it is a mount of its own.
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub credentials: Option<(PathBuf, bool)>,
}

/// A deadline of a unit, at a CLOCK_MONOTONIC value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineAt {
    pub unit: String,
    pub kind: DeadlineKind,
    pub at_ns: u64,
}

/// A client waiting for a start or stop to be over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaiterSnap {
    pub reply: String,
    pub names: Vec<String>,
    pub want: Want,
}

/// A reply partly written: the rest goes to its client from the new image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplySnap {
    pub name: String,
    pub fd: RawFd,
    pub rest: Vec<u8>,
}

/// Entrypoint mode (`colony-init -- CMD`): CMD and how far its end got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EntrypointSnap {
    pub cmd: i32,
    pub tty: bool,
    pub cmd_code: Option<i32>,
    /// After CMD's exit: 1 leftovers got SIGTERM, 2 they got SIGKILL.
    pub phase: u8,
}

/// The whole handover.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub version: u32,
    /// The writing image's version.
    pub writer: String,
    /// When colony-init first started (kept across reexecs).
    pub started: Option<SystemTime>,
    /// When this reexec was asked.
    pub reexecuted: Option<SystemTime>,
    pub reexecs: u64,
    pub fds: Vec<KeptFd>,
    pub core: CoreSnap,
    pub units: Vec<UnitHandles>,
    pub deadlines: Vec<DeadlineAt>,
    pub waiters: Vec<WaiterSnap>,
    /// The reply FIFO of the `reexec` request: the new image answers it.
    pub reply: Option<String>,
    /// The start of a control request read but not ended yet.
    pub control_partial: Vec<u8>,
    /// Replies partly written.
    pub replies: Vec<ReplySnap>,
    /// Set in entrypoint mode (and nothing of the engine then).
    pub entrypoint: Option<EntrypointSnap>,
    /// Instances of templates started (`NAME@INST`), read with the directory.
    pub instances: Vec<String>,
    /// The event streams, going on from the new image.
    pub subscribers: crate::control::subscribers::SubscribersSnap,
    /// The health checks' counters and schedule.
    pub probes: crate::probe::ProbesSnap,
    /// colony-init's own log limits (what was suppressed, and since when).
    pub limits: crate::ratelimit::LimitsSnap,
}

#[derive(Deserialize)]
struct VersionOnly {
    #[serde(default)]
    version: u32,
}

static IMAGE_STARTED: std::sync::OnceLock<(Instant, SystemTime)> = std::sync::OnceLock::new();

/// When this image's `main` began (both clocks): marked first thing, read by the
/// handover's account of where its time went.
pub fn image_started() -> (Instant, SystemTime) {
    *IMAGE_STARTED.get_or_init(|| (Instant::now(), SystemTime::now()))
}

/// Read both clocks at once.
pub fn mono_clock() -> MonoClock {
    let at = Instant::now();
    let ns = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| (t.tv_sec() as u64).saturating_mul(1_000_000_000) + t.tv_nsec() as u64)
        .unwrap_or(0);
    MonoClock { at, ns }
}

/// Parse a state, its version first.
pub fn parse(bytes: &[u8]) -> Result<State, HandoverError> {
    // One pass over the whole state (it is most of a reexec's time with many units); the
    // version alone only when that pass fails, to say why.
    let version = |found: u32| {
        if (OLDEST_READ..=VERSION).contains(&found) {
            Ok(())
        } else {
            Err(HandoverError::Version { found })
        }
    };
    match serde_json::from_slice::<State>(bytes) {
        Ok(s) => version(s.version).map(|()| s),
        Err(e) => match serde_json::from_slice::<VersionOnly>(bytes) {
            Ok(v) => version(v.version).and(Err(HandoverError::Format(e))),
            Err(_) => Err(HandoverError::Format(e)),
        },
    }
}

/// Every listed fd is open here.
pub fn check_fds(state: &State) -> Result<(), HandoverError> {
    // One poll over them all (no events asked: a closed fd alone answers, POLLNVAL) instead
    // of a call per fd: thousands with many units.
    let mut pfds: Vec<libc::pollfd> = state
        .fds
        .iter()
        .map(|k| libc::pollfd {
            fd: k.fd,
            events: 0,
            revents: 0,
        })
        .collect();
    // SAFETY: poll reads and writes only the array given, of the length given.
    let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 0) };
    let closed = |k: &KeptFd| {
        // SAFETY: F_GETFD only reads the fd's flags; a closed fd gives EBADF.
        unsafe { libc::fcntl(k.fd, libc::F_GETFD) < 0 }
    };
    let missing = if r < 0 {
        // Too many for one poll (or interrupted): one by one.
        state.fds.iter().find(|k| closed(k))
    } else {
        state
            .fds
            .iter()
            .zip(&pfds)
            // poll skips a negative fd: never one of ours.
            .find(|(k, p)| k.fd < 0 || p.revents & libc::POLLNVAL != 0)
            .map(|(k, _)| k)
    };
    match missing {
        Some(k) => Err(HandoverError::MissingFd {
            fd: k.fd,
            role: k.role.to_string(),
        }),
        None => Ok(()),
    }
}

/// Write the state into a sealed memfd that stays open across exec.
pub fn to_memfd(state: &State) -> std::io::Result<OwnedFd> {
    let bytes = serde_json::to_vec(state).map_err(std::io::Error::other)?;
    let fd = nix::sys::memfd::memfd_create(
        c"colony-handover",
        nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(std::io::Error::from)?;
    let mut f = std::fs::File::from(fd);
    f.write_all(&bytes)?;
    f.seek(SeekFrom::Start(0))?;
    let fd = OwnedFd::from(f);
    let seals = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    // SAFETY: F_ADD_SEALS on a memfd we own.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// Read a state from fd `fd` (from its start; the fd stays open).
pub fn read_fd(fd: RawFd) -> Result<State, HandoverError> {
    // SAFETY: F_GETFD checks the fd is open before it is borrowed.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(HandoverError::Io(fd, std::io::Error::last_os_error()));
    }
    // SAFETY: the fd is open (checked above) and not closed while borrowed here.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    let own = b
        .try_clone_to_owned()
        .map_err(|e| HandoverError::Io(fd, e))?;
    let mut f = std::fs::File::from(own);
    let len = f.metadata().map_err(|e| HandoverError::Io(fd, e))?.len();
    if len > MAX_STATE {
        return Err(HandoverError::TooLarge);
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // pread from 0: the offset is shared with the writer's fd.
    f.seek(SeekFrom::Start(0))
        .map_err(|e| HandoverError::Io(fd, e))?;
    f.take(MAX_STATE)
        .read_to_end(&mut bytes)
        .map_err(|e| HandoverError::Io(fd, e))?;
    parse(&bytes)
}

/// Take the state's fd from the environment (and remove the variable, so no unit inherits
/// it). `None`: an ordinary start.
pub fn take_env_fd() -> Option<RawFd> {
    let v = std::env::var(ENV_FD).ok()?;
    std::env::remove_var(ENV_FD);
    // Every fd the previous image kept is close-on-exec again at once, instead of one
    // fcntl per fd as each is adopted (thousands with many units).
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC closes nothing; it only sets the flag.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    ALL_CLOEXEC.store(r == 0, std::sync::atomic::Ordering::Relaxed);
    v.parse().ok()
}

/// Every inherited fd was made close-on-exec at once (a kernel without
/// `CLOSE_RANGE_CLOEXEC`: each is marked as it is adopted).
static ALL_CLOEXEC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Keep (`true`) or close at exec (`false`) this fd.
pub fn set_keep(fd: BorrowedFd<'_>, keep: bool) -> std::io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let flags = if keep {
        FdFlag::empty()
    } else {
        FdFlag::FD_CLOEXEC
    };
    fcntl(fd, FcntlArg::F_SETFD(flags))
        .map(|_| ())
        .map_err(std::io::Error::from)
}

/// Take ownership of a kept fd by number, close-on-exec again ([`take_env_fd`] marked
/// every inherited fd so at once where the kernel can).
///
/// # Safety
/// `fd` must be open, owned by nobody else in this process.
pub unsafe fn adopt(fd: RawFd) -> OwnedFd {
    // SAFETY: by the caller's contract.
    let o = unsafe { OwnedFd::from_raw_fd(fd) };
    if !ALL_CLOEXEC.load(std::sync::atomic::Ordering::Relaxed) {
        let _ = set_keep(o.as_fd(), false);
    }
    o
}

/// `colony-init --check-handover FD`: 0 when the state reads and every fd it lists is here.
pub fn check_mode(arg: Option<&str>) -> i32 {
    let Some(fd) = arg.and_then(|a| a.parse::<RawFd>().ok()) else {
        eprintln!("colony-init: {CHECK_OPTION} needs an fd number");
        return 2;
    };
    match read_fd(fd).and_then(|s| check_fds(&s).map(|()| s)) {
        Ok(s) => {
            println!(
                "handover state version {} from colony-init {}: {} units, {} fds",
                s.version,
                s.writer,
                s.core.units.len(),
                s.fds.len()
            );
            0
        }
        Err(e) => {
            eprintln!("colony-init: {e}");
            1
        }
    }
}

/// The longest the new binary's check may take.
const CHECK_TIMEOUT_MS: u16 = 10_000;

/// The binary a reexec runs: `--binary PATH`, else our own executable as it is on disk now.
pub fn target(args: &[&str]) -> Result<PathBuf, String> {
    match args {
        [] => {
            let exe = std::fs::read_link("/proc/self/exe")
                .map_err(|e| format!("cannot find colony-init's own executable: {e}"))?;
            // Replaced on disk (a package upgrade): the path is still where the new one is.
            let s = exe.to_string_lossy();
            Ok(PathBuf::from(s.strip_suffix(" (deleted)").unwrap_or(&s)))
        }
        ["--binary", p] if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => Err("usage: reexec [--binary PATH]".into()),
    }
}

pub fn executable(path: &Path) -> Result<(), String> {
    let m = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !m.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    if m.permissions().mode() & 0o111 == 0
        || nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_err()
    {
        return Err(format!("{}: not executable", path.display()));
    }
    Ok(())
}

/// Run `binary --check-handover FD` and wait for it, bounded.
pub fn run_check(binary: &Path, fd: RawFd) -> Result<(), String> {
    start_check(binary, fd)?.finish()
}

/// The new binary's check, running: the caller does other work meanwhile (the check is
/// a process of its own: an exec and a parse of the whole state), then [`Check::finish`].
pub struct Check {
    binary: PathBuf,
    child: std::process::Child,
    pidfd: OwnedFd,
}

/// Start `binary --check-handover FD`.
pub fn start_check(binary: &Path, fd: RawFd) -> Result<Check, String> {
    let mut child = std::process::Command::new(binary)
        .arg(CHECK_OPTION)
        .arg(fd.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let pidfd = match crate::kernel::spawn::pidfd_open(child.id() as i32) {
        Ok(p) => p,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("pidfd of the check: {e}"));
        }
    };
    Ok(Check {
        binary: binary.to_path_buf(),
        child,
        pidfd,
    })
}

impl Check {
    /// Give up on it (the reexec is refused for another reason).
    pub fn abandon(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Wait for its answer, bounded.
    pub fn finish(self) -> Result<(), String> {
        let Check {
            binary,
            mut child,
            pidfd,
        } = self;
        let binary = binary.as_path();
        let mut pfd = [nix::poll::PollFd::new(
            pidfd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ready = loop {
            match nix::poll::poll(&mut pfd, CHECK_TIMEOUT_MS) {
                Err(nix::Error::EINTR) => continue,
                r => break r.unwrap_or(0),
            }
        };
        if ready == 0 {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{} --check-handover did not answer within {} s",
                binary.display(),
                CHECK_TIMEOUT_MS / 1000
            ));
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("waiting for the check: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let why = String::from_utf8_lossy(&out.stderr);
        let why = why
            .trim()
            .lines()
            .last()
            .unwrap_or("")
            .chars()
            .take(300)
            .collect::<String>();
        Err(format!(
            "{} failed the handover check ({}){}",
            binary.display(),
            out.status,
            if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            }
        ))
    }
}

/// exec `binary` with our own arguments and environment, and the state's fd in
/// [`ENV_FD`]. Returns only on failure. Signals stay blocked across it.
pub fn exec_with_state(binary: &Path, fd: RawFd) -> String {
    let c = |b: &[u8]| CString::new(b).map_err(|_| "NUL byte in an argument".to_string());
    let build = || -> Result<(CString, Vec<CString>, Vec<CString>), String> {
        let path = c(binary.as_os_str().as_bytes())?;
        let argv = std::env::args_os()
            .map(|a| c(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut envp = std::env::vars_os()
            .filter(|(k, _)| k != ENV_FD)
            .map(|(k, v)| {
                let mut b = k.as_bytes().to_vec();
                b.push(b'=');
                b.extend_from_slice(v.as_bytes());
                c(&b)
            })
            .collect::<Result<Vec<_>, _>>()?;
        envp.push(c(format!("{}={fd}", ENV_FD).as_bytes())?);
        Ok((path, argv, envp))
    };
    match build() {
        Ok((path, argv, envp)) => match nix::unistd::execve(&path, &argv, &envp) {
            Err(e) => e.to_string(),
            Ok(never) => match never {},
        },
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_round_trips_through_a_sealed_memfd() {
        let s = State {
            version: VERSION,
            writer: "test".into(),
            reexecs: 3,
            waiters: vec![WaiterSnap {
                reply: "r1".into(),
                names: vec!["a".into()],
                want: Want::Up,
            }],
            instances: vec!["getty@tty1".into()],
            ..State::default()
        };
        let fd = to_memfd(&s).expect("memfd");
        let back = read_fd(fd.as_raw_fd()).expect("reads");
        assert_eq!(back, s);
        // Sealed: nobody changes it after the check.
        let mut f = std::fs::File::from(fd.try_clone().expect("dup"));
        assert!(f.write_all(b"x").is_err());
        // Read twice (the check, then the new image): same state.
        assert_eq!(read_fd(fd.as_raw_fd()).expect("reads again"), s);
    }

    #[test]
    fn defaults_are_left_out_and_read_back() {
        let u = UnitHandles {
            name: "a".into(),
            pidfd: Some(7),
            cgroup: true,
            cgroup_kept: Some(crate::kernel::cgroup::CgroupKept {
                v2: true,
                memory: Some(9),
                ..Default::default()
            }),
            ..UnitHandles::default()
        };
        let text = serde_json::to_string(&u).expect("serializes");
        assert_eq!(
            text,
            r#"{"name":"a","pidfd":7,"cgroup":true,"cgroup_kept":{"v2":true,"memory":9},"exec":{}}"#
        );
        assert_eq!(
            serde_json::from_str::<UnitHandles>(&text).expect("reads"),
            u
        );
        let snap = crate::core::UnitSnap {
            name: "a".into(),
            ..Default::default()
        };
        let text = serde_json::to_string(&snap).expect("serializes");
        assert!(text.len() < 120, "{text}");
        assert_eq!(
            serde_json::from_str::<crate::core::UnitSnap>(&text).expect("reads"),
            snap
        );
    }

    #[test]
    fn other_versions_are_refused_by_number() {
        for v in [0, VERSION + 1] {
            let text = format!(r#"{{"version":{v}}}"#);
            match parse(text.as_bytes()) {
                Err(HandoverError::Version { found }) => assert_eq!(found, v),
                other => panic!("version {v}: {other:?}"),
            }
        }
        assert!(matches!(
            parse(b"{\"version\":"),
            Err(HandoverError::Format(_))
        ));
        let ok = parse(format!(r#"{{"version":{VERSION},"unknown_later":1}}"#).as_bytes());
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn a_listed_fd_that_is_not_open_fails_the_check() {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        let mut s = State {
            version: VERSION,
            fds: vec![KeptFd {
                fd: r.as_raw_fd(),
                role: Role::Control,
            }],
            ..State::default()
        };
        assert!(check_fds(&s).is_ok());
        s.fds.push(KeptFd {
            fd: w.as_raw_fd(),
            role: Role::Notify,
        });
        let closed = w.as_raw_fd();
        drop(w);
        match check_fds(&s) {
            Err(HandoverError::MissingFd { fd, .. }) => assert_eq!(fd, closed),
            other => panic!("{other:?}"),
        }
    }
}

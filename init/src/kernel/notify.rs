//! The sd_notify socket: one `SOCK_DGRAM` unix socket in RUN (`RUN/notify`), handed to
//! `[ready] type = "notify"` units as `NOTIFY_SOCKET`, read from the one event loop.
//!
//! Who sent a datagram is decided from what the kernel attached to it, never from its text:
//! - `SO_PASSPIDFD` (Linux 6.5+) gives a pidfd of the sender taken at send time, and
//!   `PIDFD_GET_INFO` (6.13+) its cgroup2 id even after the sender was reaped (a
//!   `systemd-notify` that exited at once). The id is the inode of the unit's v2 directory.
//! - Otherwise the `SCM_CREDENTIALS` pid is looked up while it lives: `/proc/PID/cgroup`
//!   against the unit's cgroup, or, where units have no cgroup, its session / parent chain
//!   against the unit's process group. A sender gone before its message is read is then
//!   not attributable and its message is dropped.
//!
//! A datagram is at most [`MAX_DATAGRAM`] bytes; a longer one, one with a NUL byte or one
//! with no known line is dropped whole. Lines that are not `KEY=VALUE` UTF-8 are skipped.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::ratelimit::{Kind, Limits, Source};

/// Datagrams longer than this are dropped (systemd's limit is the same page).
pub const MAX_DATAGRAM: usize = 4096;
/// `STATUS=` text kept for `status`, in bytes.
pub const MAX_STATUS: usize = 1024;

// Kernel constants libc 0.2 may lack (include/uapi/asm-generic/socket.h, linux/pidfd.h).
const SO_PASSPIDFD: libc::c_int = 76;
const SCM_PIDFD: libc::c_int = 4;
const PIDFD_INFO_CGROUPID: u64 = 4;
const PIDFD_INFO_EXIT: u64 = 8;
/// `_IOWR(0xFF, 11, struct pidfd_info)` with the 64-byte first version of the struct.
const PIDFD_GET_INFO: libc::c_ulong = 0xC040_FF0B;

#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ruid: u32,
    rgid: u32,
    euid: u32,
    egid: u32,
    suid: u32,
    sgid: u32,
    fsuid: u32,
    fsgid: u32,
    exit_code: i32,
    coredump_mask: u32,
    spare: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("socket path {0} is too long for a unix socket")]
    PathTooLong(PathBuf),
}

/// One message as the kernel vouched for it.
#[derive(Debug)]
pub struct Datagram {
    /// `SCM_CREDENTIALS` pid (0 if none came).
    pub pid: i32,
    pub uid: u32,
    /// The sender's cgroup2 id, from its pidfd (None where the kernel cannot tell).
    pub cgroup_id: Option<u64>,
    pub payload: Vec<u8>,
}

/// One understood line of a notify message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    Ready,
    Reloading,
    Stopping,
    Status(String),
    MainPid(i32),
    Watchdog,
    WatchdogTrigger,
    ExtendTimeout(Duration),
}

/// Parse a datagram into its understood lines. `None`: the datagram is malformed as a
/// whole (a NUL byte, oversize) and must be dropped.
pub fn parse(payload: &[u8]) -> Option<Vec<Msg>> {
    if payload.len() > MAX_DATAGRAM || payload.contains(&0) {
        return None;
    }
    let mut out = Vec::new();
    for line in payload.split(|b| *b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let m = match k {
            "READY" if v == "1" => Msg::Ready,
            "RELOADING" if v == "1" => Msg::Reloading,
            "STOPPING" if v == "1" => Msg::Stopping,
            "WATCHDOG" if v == "1" => Msg::Watchdog,
            "WATCHDOG" if v == "trigger" => Msg::WatchdogTrigger,
            "STATUS" => Msg::Status(truncate(v, MAX_STATUS).to_string()),
            "MAINPID" => match v.parse::<i32>() {
                Ok(p) if p > 0 => Msg::MainPid(p),
                _ => continue,
            },
            "EXTEND_TIMEOUT_USEC" => match v.parse::<u64>() {
                Ok(us) => Msg::ExtendTimeout(Duration::from_micros(us)),
                Err(_) => continue,
            },
            _ => continue,
        };
        out.push(m);
    }
    Some(out)
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Why a notify datagram was dropped.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum DropReason {
    Oversize,
    NoCredentials,
    /// The kernel's credentials name no unit's process.
    NoUnit,
    /// A NUL byte (or oversize, past the socket's own check).
    Malformed,
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DropReason::Oversize => "oversize datagram",
            DropReason::NoCredentials => "no credentials",
            DropReason::NoUnit => "sender is in no unit",
            DropReason::Malformed => "malformed datagram",
        })
    }
}

/// The socket itself.
pub struct NotifySocket {
    fd: OwnedFd,
    path: PathBuf,
    /// The kernel attaches a pidfd to each message.
    pidfds: bool,
    buf: Vec<u8>,
}

impl NotifySocket {
    /// Bind `RUN/notify` (a stale one is replaced), world-writable so units running as any
    /// user can reach it (the kernel's credentials, not the file mode, decide who counts).
    pub fn bind(run_dir: &Path) -> Result<NotifySocket, NotifyError> {
        let path = run_dir.join("notify");
        let err = |what, source| NotifyError::Io {
            what,
            path: path.clone(),
            source,
        };
        let bytes = path.as_os_str().as_bytes();
        // SAFETY: sockaddr_un is plain data.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        if bytes.len() >= addr.sun_path.len() {
            return Err(NotifyError::PathTooLong(path));
        }
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        // SAFETY: plain syscall; the fd is ours at once.
        let raw = unsafe {
            libc::socket(
                libc::AF_UNIX,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if raw < 0 {
            return Err(err("creating the socket", io::Error::last_os_error()));
        }
        // SAFETY: a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        setsockopt_int(fd.as_fd(), libc::SO_PASSCRED, 1).map_err(|e| err("SO_PASSCRED on", e))?;
        let pidfds = setsockopt_int(fd.as_fd(), SO_PASSPIDFD, 1).is_ok();
        // A generous receive buffer: 100 units pinging at once must not be dropped.
        let _ = setsockopt_int(fd.as_fd(), libc::SO_RCVBUF, 1 << 20);
        let _ = std::fs::remove_file(&path);
        // SAFETY: addr is a valid sockaddr_un of the given length.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &addr as *const libc::sockaddr_un as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(err("binding", io::Error::last_os_error()));
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))
            .map_err(|e| err("chmod", e))?;
        let how = match (pidfds, cgroup_id_supported()) {
            (true, true) => "pidfd cgroup ids (a reaped sender still counts)",
            (true, false) | (false, _) => "/proc of live senders",
        };
        info!(path = %path.display(), senders = how, "notify socket ready");
        Ok(NotifySocket {
            fd,
            path,
            pidfds,
            buf: vec![0u8; MAX_DATAGRAM + 1],
        })
    }

    /// The socket a previous image of colony-init handed over (`colonyctl reexec`):
    /// datagrams sent meanwhile wait in it.
    pub fn adopt(run_dir: &Path, fd: OwnedFd) -> NotifySocket {
        let pidfds = setsockopt_int(fd.as_fd(), SO_PASSPIDFD, 1).is_ok();
        NotifySocket {
            fd,
            path: run_dir.join("notify"),
            pidfds,
            buf: vec![0u8; MAX_DATAGRAM + 1],
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read up to `budget` datagrams (the rest waits for the next wakeup: epoll is
    /// level-triggered), handing each to `f`. Oversize ones are dropped here (said within
    /// `limits`).
    pub fn drain(
        &mut self,
        budget: usize,
        limits: &mut Limits,
        mut f: impl FnMut(Datagram, &mut Limits),
    ) -> usize {
        let mut n = 0;
        while n < budget {
            match self.recv_one(limits) {
                Ok(Some(dg)) => {
                    n += 1;
                    f(dg, limits);
                }
                Ok(None) => {
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!(error = %e, "reading the notify socket");
                    break;
                }
            }
        }
        n
    }

    /// One datagram; `Ok(None)`: read and dropped (oversize, no credentials).
    fn recv_one(&mut self, limits: &mut Limits) -> io::Result<Option<Datagram>> {
        // u64 alignment for cmsghdr.
        let mut cbuf = [0u64; 64];
        let mut iov = libc::iovec {
            iov_base: self.buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: self.buf.len(),
        };
        // SAFETY: msghdr is plain data; every pointer in it outlives the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
        // SAFETY: msg is set up above.
        let n = unsafe {
            libc::recvmsg(
                self.fd.as_raw_fd(),
                &mut msg,
                libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC | libc::MSG_TRUNC,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut cred: Option<libc::ucred> = None;
        let mut pidfd: Option<OwnedFd> = None;
        // Every fd that came along is closed (a sender may pass SCM_RIGHTS to fill our table).
        // SAFETY: walking the control buffer the kernel filled, with the libc macros.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                let h = &*c;
                let data = libc::CMSG_DATA(c);
                let len = (h.cmsg_len as usize).saturating_sub(data as usize - c as usize);
                if h.cmsg_level == libc::SOL_SOCKET {
                    if h.cmsg_type == libc::SCM_CREDENTIALS
                        && len >= std::mem::size_of::<libc::ucred>()
                    {
                        cred = Some(std::ptr::read_unaligned(data as *const libc::ucred));
                    } else if h.cmsg_type == SCM_PIDFD || h.cmsg_type == libc::SCM_RIGHTS {
                        let count = len / std::mem::size_of::<RawFd>();
                        for k in 0..count {
                            let fd = std::ptr::read_unaligned((data as *const RawFd).add(k));
                            if fd >= 0 {
                                let owned = OwnedFd::from_raw_fd(fd);
                                if h.cmsg_type == SCM_PIDFD && pidfd.is_none() {
                                    pidfd = Some(owned);
                                }
                            }
                        }
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        let n = n as usize;
        let now = Instant::now();
        if n > MAX_DATAGRAM || msg.msg_flags & libc::MSG_TRUNC != 0 {
            log_drop(
                limits,
                now,
                None,
                cred.map_or(0, |c| c.pid),
                DropReason::Oversize,
            );
            return Ok(None);
        }
        let Some(cred) = cred else {
            log_drop(limits, now, None, 0, DropReason::NoCredentials);
            return Ok(None);
        };
        let cgroup_id = if self.pidfds {
            pidfd.as_ref().and_then(|p| pidfd_cgroup_id(p.as_fd()))
        } else {
            None
        };
        Ok(Some(Datagram {
            pid: cred.pid,
            uid: cred.uid,
            cgroup_id,
            payload: self.buf[..n].to_vec(),
        }))
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Log a dropped message within the bound of its source: `unit` where the sender is
/// known, else every such sender together (a pid is free to change, so it names no source).
pub fn log_drop(limits: &mut Limits, now: Instant, unit: Option<&str>, pid: i32, why: DropReason) {
    let source = Source {
        kind: Kind::NotifyDropped(why),
        unit: unit.map(str::to_string),
    };
    if limits.allow(&source, now) {
        match unit {
            Some(unit) => warn!(unit = %unit, pid, %why, "notify message dropped"),
            None => warn!(pid, %why, "notify message dropped"),
        }
    }
}

fn setsockopt_int(fd: BorrowedFd, opt: libc::c_int, val: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall with a c_int option value.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            &val as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The cgroup2 id of the process behind a pidfd (alive or already reaped).
pub fn pidfd_cgroup_id(pidfd: BorrowedFd) -> Option<u64> {
    let mut info = PidfdInfo {
        // With EXIT asked for too, the kernel answers for a sender already reaped.
        mask: PIDFD_INFO_CGROUPID | PIDFD_INFO_EXIT,
        ..Default::default()
    };
    // SAFETY: the ioctl writes at most size_of::<PidfdInfo>() bytes (encoded in the number).
    let r = unsafe { libc::ioctl(pidfd.as_raw_fd(), PIDFD_GET_INFO as _, &mut info) };
    (r == 0 && info.mask & PIDFD_INFO_CGROUPID != 0 && info.cgroupid != 0).then_some(info.cgroupid)
}

/// Whether this kernel answers PIDFD_GET_INFO with a cgroup id (checked on ourselves).
fn cgroup_id_supported() -> bool {
    let Some(fd) = pidfd_open(std::process::id() as i32) else {
        return false;
    };
    pidfd_cgroup_id(fd.as_fd()).is_some()
}

/// What identifies one unit's processes.
#[derive(Debug, Clone, Default)]
struct Member {
    /// Inode of the unit's v2 cgroup directory (its cgroup2 id).
    cgroup_id: Option<u64>,
    /// The unit's cgroup as `/proc/PID/cgroup` shows it: `/rel` (v2) or `ctrl:/rel` (v1).
    cgroup_path: Option<String>,
    /// The process group (= session) the unit's main process leads.
    pgid: Option<i32>,
}

/// Which unit a process belongs to.
#[derive(Debug, Default)]
pub struct Members {
    units: HashMap<String, Member>,
    by_cgroup_id: HashMap<u64, String>,
}

impl Members {
    /// A unit was started: `v2_dir` its v2 cgroup directory, `cgroup_path` as
    /// [`crate::kernel::cgroup::UnitCgroup::path`] says it, `pgid` its new process group.
    pub fn set(
        &mut self,
        unit: &str,
        v2_dir: Option<&Path>,
        cgroup_path: Option<String>,
        pgid: i32,
    ) {
        self.remove(unit);
        let cgroup_id = v2_dir
            .and_then(|d| std::fs::metadata(d).ok())
            .map(|m| m.ino());
        if let Some(id) = cgroup_id {
            self.by_cgroup_id.insert(id, unit.to_string());
        }
        self.units.insert(
            unit.to_string(),
            Member {
                cgroup_id,
                cgroup_path: cgroup_path.filter(|p| !p.is_empty()),
                pgid: Some(pgid),
            },
        );
    }

    pub fn remove(&mut self, unit: &str) {
        if let Some(m) = self.units.remove(unit) {
            if let Some(id) = m.cgroup_id {
                self.by_cgroup_id.remove(&id);
            }
        }
    }

    /// The unit a datagram came from, if any.
    pub fn sender_unit(&self, dg: &Datagram) -> Option<&str> {
        if let Some(id) = dg.cgroup_id {
            if let Some(u) = self.by_cgroup_id.get(&id) {
                return Some(u);
            }
            // The kernel told us where the sender was: no unit's cgroup. Only a unit
            // without a cgroup id (process-group tracking) may still claim it below.
        }
        if dg.pid <= 0 {
            return None;
        }
        let proc_cg = read_proc_cgroup(dg.pid);
        self.units
            .iter()
            .find(|(_, m)| {
                if dg.cgroup_id.is_some() && m.cgroup_id.is_some() {
                    return false;
                }
                member_has(m, dg.pid, proc_cg.as_deref())
            })
            .map(|(u, _)| u.as_str())
    }

    /// Whether a live `pid` is one of `unit`'s processes (for `MAINPID=`).
    pub fn contains(&self, unit: &str, pid: i32) -> bool {
        let Some(m) = self.units.get(unit) else {
            return false;
        };
        if pid <= 0 {
            return false;
        }
        if let (Some(id), Some(pidfd)) = (m.cgroup_id, pidfd_open(pid)) {
            if let Some(got) = pidfd_cgroup_id(pidfd.as_fd()) {
                return got == id;
            }
        }
        member_has(m, pid, read_proc_cgroup(pid).as_deref())
    }
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    crate::kernel::spawn::pidfd_open(pid).ok()
}

fn read_proc_cgroup(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()
}

fn member_has(m: &Member, pid: i32, proc_cg: Option<&str>) -> bool {
    if let Some(path) = &m.cgroup_path {
        let Some(text) = proc_cg else { return false };
        return text.lines().any(|l| {
            // "0::/rel" for v2, "N:ctrl[,ctrl]:/rel" for v1; our path is "/rel" or "ctrl:rel".
            let mut parts = l.splitn(3, ':');
            let (_, ctrls, rel) = (parts.next(), parts.next(), parts.next());
            let (Some(ctrls), Some(rel)) = (ctrls, rel) else {
                return false;
            };
            if ctrls.is_empty() {
                rel == path || rel.starts_with(&format!("{path}/"))
            } else {
                match path.split_once(':') {
                    Some((c, p)) => {
                        ctrls.split(',').any(|x| x == c)
                            && (rel == p || rel.starts_with(&format!("{p}/")))
                    }
                    None => false,
                }
            }
        });
    }
    // No cgroup: the unit's session, or a descendant of its leader.
    let Some(pgid) = m.pgid else { return false };
    // SAFETY: getsid takes a pid by value and touches no memory of ours.
    let sid = unsafe { libc::getsid(pid) };
    // SAFETY: as getsid.
    if sid == pgid || unsafe { libc::getpgid(pid) } == pgid {
        return true;
    }
    let mut p = pid;
    for _ in 0..64 {
        if p == pgid {
            return true;
        }
        match parent_of(p) {
            Some(pp) if pp > 1 => p = pp,
            _ => return false,
        }
    }
    false
}

fn parent_of(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// What a unit's message asks of the loop.
#[derive(Debug, Clone)]
pub enum Order {
    /// Give the core this input.
    Feed(crate::core::Input),
    /// Show this `STATUS=` text.
    Status(String),
    /// `EXTEND_TIMEOUT_USEC=`: the running start/stop timeout now ends this far from now.
    Extend(Duration),
    /// `RELOADING=1` (true) / the `READY=1` that ends it (false).
    Reloading(bool),
}

/// Turn the understood lines of one message from `unit` into orders. `notify_type`: the
/// unit is `[ready] type = "notify"` (only then does `READY=1` make it up). What it logs
/// per message is bounded by `limits` (a unit may send these in a loop).
pub fn interpret(
    unit: &str,
    notify_type: bool,
    msgs: &[Msg],
    members: &Members,
    limits: &mut Limits,
    now: Instant,
) -> Vec<Order> {
    use crate::core::Input;
    let mut out = Vec::new();
    for m in msgs {
        match m {
            Msg::Ready => {
                out.push(Order::Reloading(false));
                if notify_type {
                    out.push(Order::Feed(Input::Ready {
                        unit: unit.to_string(),
                    }));
                }
            }
            Msg::Reloading => {
                if limits.allow(&Source::of_unit(unit, Kind::NotifyReloading), now) {
                    info!(unit, "notify: reloading");
                }
                out.push(Order::Reloading(true));
            }
            Msg::Stopping => {
                if limits.allow(&Source::of_unit(unit, Kind::NotifyStopping), now) {
                    info!(unit, "notify: stopping");
                }
                out.push(Order::Feed(Input::Stopping {
                    unit: unit.to_string(),
                }));
            }
            Msg::Status(t) => out.push(Order::Status(t.clone())),
            Msg::MainPid(pid) => {
                if members.contains(unit, *pid) {
                    out.push(Order::Feed(Input::MainPid {
                        unit: unit.to_string(),
                        pid: *pid,
                    }));
                } else if limits.allow(&Source::of_unit(unit, Kind::NotifyForeignMainPid), now) {
                    warn!(
                        unit,
                        pid, "notify: MAINPID= names a process outside the unit; ignored"
                    );
                }
            }
            Msg::Watchdog => out.push(Order::Feed(Input::Watchdog {
                unit: unit.to_string(),
            })),
            Msg::WatchdogTrigger => out.push(Order::Feed(Input::Fault {
                unit: unit.to_string(),
                reason: crate::core::Fault::Watchdog,
            })),
            Msg::ExtendTimeout(d) => out.push(Order::Extend(*d)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_known_line_and_skips_the_rest() {
        let m = parse(b"READY=1\nSTATUS=Loading 3/4\nMAINPID=42\nWATCHDOG=1\nFOO=bar\nnoequals\nWATCHDOG=trigger\nEXTEND_TIMEOUT_USEC=5000000\nRELOADING=1\nSTOPPING=1\nREADY=0\n")
            .unwrap();
        assert_eq!(
            m,
            vec![
                Msg::Ready,
                Msg::Status("Loading 3/4".into()),
                Msg::MainPid(42),
                Msg::Watchdog,
                Msg::WatchdogTrigger,
                Msg::ExtendTimeout(Duration::from_secs(5)),
                Msg::Reloading,
                Msg::Stopping,
            ]
        );
    }

    #[test]
    fn binary_and_oversize_datagrams_are_dropped_whole() {
        assert_eq!(parse(b"READY=1\0"), None);
        let mut big = b"READY=1\n".to_vec();
        big.resize(MAX_DATAGRAM + 1, b'x');
        assert_eq!(parse(&big), None);
        // Invalid UTF-8 on one line leaves the others.
        assert_eq!(parse(b"\xff\xfe=1\nREADY=1").unwrap(), vec![Msg::Ready]);
        assert_eq!(parse(b"MAINPID=-3\nMAINPID=x").unwrap(), vec![]);
        // Absurd but well-formed: parsed; the loop saturates the deadline.
        assert_eq!(
            parse(b"EXTEND_TIMEOUT_USEC=18446744073709551615").unwrap(),
            vec![Msg::ExtendTimeout(Duration::from_micros(u64::MAX))]
        );
    }

    #[test]
    fn status_is_truncated_on_a_char_boundary() {
        let s = "é".repeat(MAX_STATUS);
        let m = parse(format!("STATUS={s}").as_bytes()).unwrap();
        match &m[0] {
            Msg::Status(t) => assert!(t.len() <= MAX_STATUS && t.len() >= MAX_STATUS - 1),
            other => panic!("{other:?}"),
        }
    }

    /// A real socket: a reaped sender's message still carries what identifies it.
    #[test]
    fn a_reaped_senders_message_is_read_with_its_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = NotifySocket::bind(dir.path()).unwrap();
        let path = s.path().to_path_buf();
        // Send from a forked child that exits at once; reap it before reading.
        // SAFETY: the child only does raw syscalls and _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let sock = std::os::unix::net::UnixDatagram::unbound();
            if let Ok(sock) = sock {
                let _ = sock.send_to(b"READY=1\nSTATUS=hi", &path);
            }
            // SAFETY: _exit in the forked child: no destructor or atexit handler of the
            // parent's state runs twice.
            unsafe { libc::_exit(0) };
        }
        let mut st = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        let mut got = Vec::new();
        s.drain(16, &mut Limits::default(), |dg, _| got.push(dg));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].pid, pid);
        assert_eq!(
            parse(&got[0].payload).unwrap(),
            vec![Msg::Ready, Msg::Status("hi".into())]
        );
        if cgroup_id_supported() {
            // Our own cgroup id, taken at send time although the sender is gone.
            let me = pidfd_open(std::process::id() as i32).unwrap();
            assert_eq!(got[0].cgroup_id, pidfd_cgroup_id(me.as_fd()));
        }
    }
}

//! Readiness probes (`[ready] type = "tcp"` / `"file"`) and health checks (`[health]`),
//! all inside the one event loop: no thread, no blocking call, no polling interval.
//!
//! [`Probes`] owns one inner epoll (registered in the loop's epoll under one token), a
//! timerfd for its own deadlines, an inotify for `file` readiness, and the non-blocking
//! sockets of tcp/http checks. The loop calls [`Probes::on_event`] when the inner epoll is
//! readable and carries out the [`Action`]s that come back. `exec` checks are spawned by
//! the loop (they run like the unit's program: [`spawn_exec`]) and reaped through
//! [`Probes::child_exited`] from the loop's SIGCHLD handling.
//!
//! - tcp readiness: a connect attempt at once, then retries with a short doubling backoff
//!   (20ms..500ms), each attempt bounded by [`ATTEMPT_TIMEOUT`]; the unit's `[ready]
//!   timeout` itself is the core's deadline.
//! - file readiness: an inotify watch on the nearest existing ancestor of the path, the
//!   check right after adding it (no event can be missed between the two).
//! - health: first check `grace` after the unit is up, then one every `period` (counted
//!   from the start of the previous check); a check not done within `timeout` is bad;
//!   `max_bad` bad ones in a row give [`Action::Fault`].

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use nix::sys::socket::{self, sockopt, AddressFamily, MsgFlags, SockFlag, SockType};
use nix::sys::timerfd::{ClockId, TimerFd, TimerFlags};
use tracing::{debug, info, warn};
use units::model::{Health, HealthCheck, ReadyType, Unit};

use crate::deadlines::Deadlines;
use crate::spawn;

/// One tcp readiness attempt may take this long (a silent host) before the next one.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_millis(500);
/// An HTTP answer's head larger than this is bad.
const MAX_HTTP_HEAD: usize = 16 * 1024;

const TOK_TIMER: u64 = 1;
const TOK_INOTIFY: u64 = 2;
const TOK_FIRST_SOCKET: u64 = 16;

/// What the loop must do after probes ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The unit is up per `[ready]`: feed `Input::Ready`.
    Ready(String),
    /// `max_bad` bad health checks in a row: feed `Input::Fault { reason: "health" }`.
    Fault(String),
    /// Run this `exec` health check like the unit's program, then call
    /// [`Probes::exec_started`] or [`Probes::exec_failed`].
    Exec { unit: String, argv: Vec<String> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Slot {
    /// Next tcp readiness attempt.
    ReadyRetry,
    /// The current tcp readiness attempt took too long.
    ReadyAttempt,
    /// Next health check.
    HealthNext,
    /// The current health check took too long.
    HealthTimeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Ready,
    Health,
}

/// A non-blocking connection: connect, maybe send an HTTP request, read its answer head.
struct Conn {
    sock: OwnedFd,
    token: u64,
    connected: bool,
    /// `Some`: an HTTP check (the request to send); `None`: connecting is the whole check.
    request: Option<Vec<u8>>,
    sent: usize,
    answer: Vec<u8>,
}

enum ConnStep {
    Pending,
    Good,
    Bad(String),
}

struct ReadyProbe {
    kind: ReadyKind,
}

enum ReadyKind {
    Tcp {
        addr: String,
        backoff: Duration,
        conn: Option<Conn>,
    },
    File {
        path: PathBuf,
        watch: Option<WatchDescriptor>,
    },
}

enum Running {
    Conn(Conn),
    Child(i32),
}

struct HealthProbe {
    def: Health,
    /// Resolved once at start (a name is looked up then, not at every check).
    target: Result<Target, String>,
    bad: u32,
    checks: u64,
    text: Option<String>,
    running: Option<Running>,
    started: Option<Instant>,
}

#[derive(Clone)]
enum Target {
    Tcp(SocketAddr),
    Http { addr: SocketAddr, request: Vec<u8> },
    Exec(Vec<String>),
}

/// Every probe of every unit.
pub struct Probes {
    epoll: Epoll,
    timer: TimerFd,
    inotify: Inotify,
    deadlines: Deadlines<(String, Slot)>,
    ready: HashMap<String, ReadyProbe>,
    health: HashMap<String, HealthProbe>,
    tokens: HashMap<u64, (String, Role)>,
    dir_watches: HashMap<WatchDescriptor, Vec<String>>,
    /// exec checks running: pid -> unit (None: its unit stopped; reap silently).
    children: HashMap<i32, Option<String>>,
    /// Last health text of units whose checks stopped (shown until the next start).
    last_text: HashMap<String, String>,
    next_token: u64,
    armed_at: Option<Instant>,
}

impl Probes {
    pub fn new() -> io::Result<Probes> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        epoll.add(
            timer.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, TOK_TIMER),
        )?;
        epoll.add(
            inotify.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, TOK_INOTIFY),
        )?;
        Ok(Probes {
            epoll,
            timer,
            inotify,
            deadlines: Deadlines::default(),
            ready: HashMap::new(),
            health: HashMap::new(),
            tokens: HashMap::new(),
            dir_watches: HashMap::new(),
            children: HashMap::new(),
            last_text: HashMap::new(),
            next_token: TOK_FIRST_SOCKET,
            armed_at: None,
        })
    }

    /// The fd to register in the loop's epoll (readable: call [`Probes::on_event`]).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.epoll.0.as_fd()
    }

    /// `health` for `status`: `good`, `bad N`, or None (no check done yet / no `[health]`).
    pub fn health_text(&self, unit: &str) -> Option<String> {
        match self.health.get(unit) {
            Some(h) => h.text.clone(),
            None => self.last_text.get(unit).cloned(),
        }
    }

    /// Whether anything of the unit is being probed (for tests and `status`).
    pub fn is_probing(&self, unit: &str) -> bool {
        self.ready.contains_key(unit) || self.health.contains_key(unit)
    }

    /// The unit started and is `starting`: watch for it to be up per `[ready]`. Returns
    /// actions at once when it already is (the file exists).
    pub fn start_ready(&mut self, unit: &str, kind: &ReadyType) -> Vec<Action> {
        self.stop_ready(unit);
        let mut out = Vec::new();
        match kind {
            ReadyType::Tcp(addr) => {
                self.ready.insert(
                    unit.to_string(),
                    ReadyProbe {
                        kind: ReadyKind::Tcp {
                            addr: addr.clone(),
                            backoff: BACKOFF_MIN,
                            conn: None,
                        },
                    },
                );
                self.tcp_attempt(unit, &mut out);
            }
            ReadyType::File(path) => {
                self.ready.insert(
                    unit.to_string(),
                    ReadyProbe {
                        kind: ReadyKind::File {
                            path: path.clone(),
                            watch: None,
                        },
                    },
                );
                self.file_check(unit, &mut out);
            }
            ReadyType::Started | ReadyType::Notify => {}
        }
        self.rearm();
        out
    }

    /// The unit is up: start its `[health]` checks (first one after `grace`).
    pub fn start_health(&mut self, unit: &str, def: &Health) {
        self.stop_health(unit);
        self.last_text.remove(unit);
        let target = resolve_target(&def.check);
        if let Err(e) = &target {
            warn!(unit, error = %e, "health check target unusable: every check is bad");
        }
        self.health.insert(
            unit.to_string(),
            HealthProbe {
                def: def.clone(),
                target,
                bad: 0,
                checks: 0,
                text: None,
                running: None,
                started: None,
            },
        );
        self.deadlines.arm(
            (unit.to_string(), Slot::HealthNext),
            after(Instant::now(), def.grace),
        );
        self.rearm();
    }

    /// Match the probes to the unit's state (idempotent): a `starting` tcp/file unit is
    /// probed for readiness; an up unit with `[health]` is checked; anything else is not.
    pub fn sync(&mut self, unit: &str, starting: bool, up: bool, def: &Unit) -> Vec<Action> {
        if starting {
            self.stop_health(unit);
            if !self.ready.contains_key(unit)
                && matches!(def.ready.kind, ReadyType::Tcp(_) | ReadyType::File(_))
            {
                return self.start_ready(unit, &def.ready.kind);
            }
        } else if up {
            if self.ready.contains_key(unit) {
                self.stop_ready(unit);
            }
            if let Some(h) = &def.health {
                if !self.health.contains_key(unit) {
                    self.start_health(unit, h);
                }
            }
        } else if self.is_probing(unit) {
            self.stop(unit);
        }
        Vec::new()
    }

    /// Stop every probe of the unit (it exited, stopped or is forgotten).
    pub fn stop(&mut self, unit: &str) {
        self.stop_ready(unit);
        self.stop_health(unit);
    }

    /// Forget the unit altogether (also its last health text).
    pub fn forget(&mut self, unit: &str) {
        self.stop(unit);
        self.last_text.remove(unit);
    }

    pub fn stop_ready(&mut self, unit: &str) {
        if let Some(p) = self.ready.remove(unit) {
            match p.kind {
                ReadyKind::Tcp { conn, .. } => {
                    if let Some(c) = conn {
                        self.close(c);
                    }
                }
                ReadyKind::File { watch, .. } => {
                    if let Some(wd) = watch {
                        self.unwatch(wd, unit);
                    }
                }
            }
        }
        self.deadlines.disarm(&(unit.to_string(), Slot::ReadyRetry));
        self.deadlines
            .disarm(&(unit.to_string(), Slot::ReadyAttempt));
        self.rearm();
    }

    fn stop_health(&mut self, unit: &str) {
        if let Some(mut h) = self.health.remove(unit) {
            if let Some(t) = h.text.take() {
                self.last_text.insert(unit.to_string(), t);
            }
            match h.running.take() {
                Some(Running::Conn(c)) => self.close(c),
                Some(Running::Child(pid)) => {
                    self.children.insert(pid, None);
                    kill_pid(pid);
                }
                None => {}
            }
        }
        self.deadlines.disarm(&(unit.to_string(), Slot::HealthNext));
        self.deadlines
            .disarm(&(unit.to_string(), Slot::HealthTimeout));
        self.rearm();
    }

    /// The inner epoll is readable: do what is due.
    pub fn on_event(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        let mut events = [EpollEvent::empty(); 32];
        loop {
            let n = match self.epoll.wait(&mut events, EpollTimeout::ZERO) {
                Ok(n) => n,
                Err(nix::Error::EINTR) => continue,
                Err(e) => {
                    warn!(error = %e, "probe epoll");
                    break;
                }
            };
            for ev in &events[..n] {
                match ev.data() {
                    TOK_TIMER => self.on_timer(&mut out),
                    TOK_INOTIFY => self.on_inotify(&mut out),
                    t => self.on_socket(t, &mut out),
                }
            }
            if n < events.len() {
                break;
            }
        }
        self.rearm();
        out
    }

    /// The loop saw child `pid` exit: if it is an exec check, reap it and judge.
    /// `None`: not ours.
    pub fn child_exited(&mut self, pid: i32) -> Option<Vec<Action>> {
        let owner = self.children.remove(&pid)?;
        let mut status = 0;
        // SAFETY: reaping our own child by its pid (it is known to have exited).
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        let mut out = Vec::new();
        if let Some(unit) = owner {
            let good = r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
            let still = matches!(
                self.health.get(&unit).and_then(|h| h.running.as_ref()),
                Some(Running::Child(p)) if *p == pid
            );
            if still {
                if let Some(h) = self.health.get_mut(&unit) {
                    h.running = None;
                }
                let why = if good {
                    String::new()
                } else if libc::WIFEXITED(status) {
                    format!("exit code {}", libc::WEXITSTATUS(status))
                } else {
                    "killed".to_string()
                };
                self.health_result(&unit, good, &why, &mut out);
            }
        }
        self.rearm();
        Some(out)
    }

    /// The loop started the exec check of `unit`.
    pub fn exec_started(&mut self, unit: &str, pid: i32) {
        match self.health.get_mut(unit) {
            Some(h) => {
                h.running = Some(Running::Child(pid));
                self.children.insert(pid, Some(unit.to_string()));
            }
            None => {
                self.children.insert(pid, None);
                kill_pid(pid);
            }
        }
    }

    /// The loop could not start the exec check: a bad check.
    pub fn exec_failed(&mut self, unit: &str, error: &str) -> Vec<Action> {
        let mut out = Vec::new();
        if self.health.contains_key(unit) {
            self.health_result(unit, false, error, &mut out);
        }
        self.rearm();
        out
    }

    // ---- timers ------------------------------------------------------------------------

    fn rearm(&mut self) {
        let next = self.deadlines.next();
        if next == self.armed_at {
            return;
        }
        self.armed_at = next;
        if let Err(e) = crate::deadlines::arm_oneshot(&self.timer, next) {
            warn!(error = %e, "arming the probe timer");
        }
    }

    fn on_timer(&mut self, out: &mut Vec<Action>) {
        let _ = self.timer.wait();
        self.armed_at = None;
        for (unit, slot) in self.deadlines.take_due(Instant::now()) {
            match slot {
                Slot::ReadyRetry => self.tcp_attempt(&unit, out),
                Slot::ReadyAttempt => {
                    if let Some(c) = self.take_ready_conn(&unit) {
                        self.close(c);
                    }
                    self.tcp_retry_later(&unit);
                }
                Slot::HealthNext => self.health_begin(&unit, out),
                Slot::HealthTimeout => {
                    let running = self.health.get_mut(&unit).and_then(|h| h.running.take());
                    match running {
                        Some(Running::Conn(c)) => self.close(c),
                        Some(Running::Child(pid)) => {
                            // Reaped later through child_exited; its verdict is this one.
                            self.children.insert(pid, None);
                            kill_pid(pid);
                        }
                        None => continue,
                    }
                    self.health_result(&unit, false, "timed out", out);
                }
            }
        }
    }

    // ---- tcp readiness -----------------------------------------------------------------

    fn tcp_attempt(&mut self, unit: &str, out: &mut Vec<Action>) {
        let Some(ReadyProbe {
            kind: ReadyKind::Tcp { addr, .. },
        }) = self.ready.get(unit)
        else {
            return;
        };
        let addr = addr.clone();
        let target = match crate::hosts::resolve(&addr) {
            Ok(a) => a,
            Err(e) => {
                debug!(unit, error = %e, "tcp readiness: cannot resolve yet");
                self.tcp_retry_later(unit);
                return;
            }
        };
        match self.connect(target, None, unit, Role::Ready) {
            Ok(c) => {
                if let Some(ReadyProbe {
                    kind: ReadyKind::Tcp { conn, .. },
                }) = self.ready.get_mut(unit)
                {
                    *conn = Some(c);
                }
                self.deadlines.arm(
                    (unit.to_string(), Slot::ReadyAttempt),
                    Instant::now() + ATTEMPT_TIMEOUT,
                );
            }
            Err(e) => {
                debug!(unit, error = %e, "tcp readiness attempt failed");
                self.tcp_retry_later(unit);
            }
        }
        let _ = out;
    }

    fn tcp_retry_later(&mut self, unit: &str) {
        self.deadlines
            .disarm(&(unit.to_string(), Slot::ReadyAttempt));
        if let Some(ReadyProbe {
            kind: ReadyKind::Tcp { backoff, .. },
        }) = self.ready.get_mut(unit)
        {
            let d = *backoff;
            *backoff = (d * 2).min(BACKOFF_MAX);
            self.deadlines
                .arm((unit.to_string(), Slot::ReadyRetry), Instant::now() + d);
        }
    }

    fn take_ready_conn(&mut self, unit: &str) -> Option<Conn> {
        match self.ready.get_mut(unit) {
            Some(ReadyProbe {
                kind: ReadyKind::Tcp { conn, .. },
            }) => conn.take(),
            _ => None,
        }
    }

    // ---- file readiness ----------------------------------------------------------------

    fn file_check(&mut self, unit: &str, out: &mut Vec<Action>) {
        let Some(ReadyProbe {
            kind: ReadyKind::File { path, .. },
        }) = self.ready.get(unit)
        else {
            return;
        };
        let path = path.clone();
        // Watch first, then look: a file made in between is seen by the look. Likewise for
        // the directories on the way: if a deeper one appeared while the watch was being
        // added (its IN_CREATE came before the watch), watch that one instead.
        let mask = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_ATTRIB
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ONLYDIR;
        let mut dir = nearest_existing_dir(&path);
        loop {
            let wd = match self.inotify.add_watch(&dir, mask) {
                Ok(wd) => Some(wd),
                Err(e) => {
                    warn!(unit, dir = %dir.display(), error = %e, "cannot watch for the ready file");
                    None
                }
            };
            self.set_file_watch(unit, wd);
            let deeper = nearest_existing_dir(&path);
            if wd.is_none() || deeper == dir {
                break;
            }
            dir = deeper;
        }
        if path.exists() {
            info!(unit, path = %path.display(), "ready file exists");
            out.push(Action::Ready(unit.to_string()));
            self.stop_ready(unit);
        }
    }

    /// The unit's file probe now watches `wd`: the old watch is let go (if no other unit
    /// shares it) and the new one is recorded.
    fn set_file_watch(&mut self, unit: &str, wd: Option<WatchDescriptor>) {
        let old = match self.ready.get(unit) {
            Some(ReadyProbe {
                kind: ReadyKind::File { watch, .. },
            }) => *watch,
            _ => return,
        };
        if old == wd {
            return;
        }
        if let Some(o) = old {
            self.unwatch(o, unit);
        }
        if let Some(w) = wd {
            let list = self.dir_watches.entry(w).or_default();
            if !list.iter().any(|u| u == unit) {
                list.push(unit.to_string());
            }
        }
        if let Some(ReadyProbe {
            kind: ReadyKind::File { watch, .. },
        }) = self.ready.get_mut(unit)
        {
            *watch = wd;
        }
    }

    fn unwatch(&mut self, wd: WatchDescriptor, unit: &str) {
        if let Some(list) = self.dir_watches.get_mut(&wd) {
            list.retain(|u| u != unit);
            if list.is_empty() {
                self.dir_watches.remove(&wd);
                let _ = self.inotify.rm_watch(wd);
            }
        }
    }

    fn on_inotify(&mut self, out: &mut Vec<Action>) {
        let events = match self.inotify.read_events() {
            Ok(e) => e,
            Err(nix::Error::EAGAIN) => return,
            Err(e) => {
                warn!(error = %e, "reading the probe inotify");
                return;
            }
        };
        let mut units: Vec<String> = Vec::new();
        for ev in events {
            if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                units.extend(self.dir_watches.values().flatten().cloned());
                continue;
            }
            if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                // The directory went away: the kernel dropped the watch.
                if let Some(list) = self.dir_watches.remove(&ev.wd) {
                    for u in &list {
                        if let Some(ReadyProbe {
                            kind: ReadyKind::File { watch, .. },
                        }) = self.ready.get_mut(u)
                        {
                            *watch = None;
                        }
                    }
                    units.extend(list);
                }
                continue;
            }
            if let Some(list) = self.dir_watches.get(&ev.wd) {
                units.extend(list.iter().cloned());
            }
        }
        units.sort();
        units.dedup();
        for u in units {
            self.file_check(&u, out);
        }
    }

    // ---- health checks -----------------------------------------------------------------

    fn health_begin(&mut self, unit: &str, out: &mut Vec<Action>) {
        let Some(h) = self.health.get_mut(unit) else {
            return;
        };
        let now = Instant::now();
        h.started = Some(now);
        h.checks += 1;
        let timeout = h.def.timeout;
        // The next one, counted from this start (a check never overlaps the next: see
        // health_result).
        self.deadlines.arm(
            (unit.to_string(), Slot::HealthNext),
            after(now, h.def.period),
        );
        if h.running.is_some() {
            // Still going (timeout >= period): let it finish; its result counts.
            return;
        }
        let target = h.target.clone();
        match target {
            Err(e) => self.health_result(unit, false, &e, out),
            Ok(Target::Exec(argv)) => {
                self.deadlines
                    .arm((unit.to_string(), Slot::HealthTimeout), after(now, timeout));
                out.push(Action::Exec {
                    unit: unit.to_string(),
                    argv,
                });
            }
            Ok(Target::Tcp(addr)) => self.health_connect(unit, addr, None, timeout, out),
            Ok(Target::Http { addr, request }) => {
                self.health_connect(unit, addr, Some(request), timeout, out)
            }
        }
    }

    fn health_connect(
        &mut self,
        unit: &str,
        addr: SocketAddr,
        request: Option<Vec<u8>>,
        timeout: Duration,
        out: &mut Vec<Action>,
    ) {
        match self.connect(addr, request, unit, Role::Health) {
            Ok(c) => {
                if let Some(h) = self.health.get_mut(unit) {
                    h.running = Some(Running::Conn(c));
                }
                self.deadlines.arm(
                    (unit.to_string(), Slot::HealthTimeout),
                    after(Instant::now(), timeout),
                );
            }
            Err(e) => self.health_result(unit, false, &e.to_string(), out),
        }
    }

    fn health_result(&mut self, unit: &str, good: bool, why: &str, out: &mut Vec<Action>) {
        self.deadlines
            .disarm(&(unit.to_string(), Slot::HealthTimeout));
        let Some(h) = self.health.get_mut(unit) else {
            return;
        };
        if good {
            if h.bad > 0 {
                info!(unit, "health check good again");
            }
            h.bad = 0;
            h.text = Some("good".into());
        } else {
            h.bad += 1;
            h.text = Some(format!("bad {}", h.bad));
            warn!(
                unit,
                bad = h.bad,
                max_bad = h.def.max_bad,
                why,
                "health check bad"
            );
            if h.bad >= h.def.max_bad {
                out.push(Action::Fault(unit.to_string()));
                // Checks resume once the restarted unit is up again.
                self.stop_health(unit);
            }
        }
    }

    // ---- sockets -----------------------------------------------------------------------

    fn connect(
        &mut self,
        addr: SocketAddr,
        request: Option<Vec<u8>>,
        unit: &str,
        role: Role,
    ) -> io::Result<Conn> {
        let family = match addr {
            SocketAddr::V4(_) => AddressFamily::Inet,
            SocketAddr::V6(_) => AddressFamily::Inet6,
        };
        let sock = socket::socket(
            family,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        match connect_raw(sock.as_fd(), addr) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let token = self.next_token;
        self.next_token += 1;
        self.epoll
            .add(sock.as_fd(), EpollEvent::new(EpollFlags::EPOLLOUT, token))?;
        self.tokens.insert(token, (unit.to_string(), role));
        Ok(Conn {
            sock,
            token,
            connected: false,
            request,
            sent: 0,
            answer: Vec::new(),
        })
    }

    fn close(&mut self, c: Conn) {
        let _ = self.epoll.delete(c.sock.as_fd());
        self.tokens.remove(&c.token);
    }

    fn on_socket(&mut self, token: u64, out: &mut Vec<Action>) {
        let Some((unit, role)) = self.tokens.get(&token).cloned() else {
            return;
        };
        let conn = match role {
            Role::Ready => self.take_ready_conn(&unit),
            Role::Health => match self.health.get_mut(&unit).and_then(|h| h.running.take()) {
                Some(Running::Conn(c)) => Some(c),
                other => {
                    if let Some(h) = self.health.get_mut(&unit) {
                        h.running = other;
                    }
                    None
                }
            },
        };
        let Some(mut c) = conn.filter(|c| c.token == token) else {
            return;
        };
        let step = self.advance(&mut c);
        match (role, step) {
            (Role::Ready, ConnStep::Good) => {
                self.close(c);
                info!(unit, "tcp readiness: connected");
                out.push(Action::Ready(unit.clone()));
                self.stop_ready(&unit);
            }
            (Role::Ready, ConnStep::Bad(why)) => {
                self.close(c);
                debug!(unit, why, "tcp readiness attempt failed");
                self.tcp_retry_later(&unit);
            }
            (Role::Ready, ConnStep::Pending) => {
                if let Some(ReadyProbe {
                    kind: ReadyKind::Tcp { conn, .. },
                }) = self.ready.get_mut(&unit)
                {
                    *conn = Some(c);
                }
            }
            (Role::Health, ConnStep::Good) => {
                self.close(c);
                self.health_result(&unit, true, "", out);
            }
            (Role::Health, ConnStep::Bad(why)) => {
                self.close(c);
                self.health_result(&unit, false, &why, out);
            }
            (Role::Health, ConnStep::Pending) => {
                if let Some(h) = self.health.get_mut(&unit) {
                    h.running = Some(Running::Conn(c));
                }
            }
        }
    }

    /// Move a connection on as far as it goes without blocking.
    fn advance(&mut self, c: &mut Conn) -> ConnStep {
        if !c.connected {
            match socket::getsockopt(&c.sock, sockopt::SocketError) {
                Ok(0) => c.connected = true,
                Ok(e) => return ConnStep::Bad(nix::Error::from_raw(e).to_string()),
                Err(e) => return ConnStep::Bad(e.to_string()),
            }
            if c.request.is_none() {
                return ConnStep::Good;
            }
        }
        let Some(req) = c.request.as_ref() else {
            return ConnStep::Good;
        };
        while c.sent < req.len() {
            match socket::send(c.sock.as_raw_fd(), &req[c.sent..], MsgFlags::MSG_NOSIGNAL) {
                Ok(n) => c.sent += n,
                Err(nix::Error::EAGAIN) => return ConnStep::Pending,
                Err(nix::Error::EINTR) => continue,
                Err(e) => return ConnStep::Bad(format!("sending the request: {e}")),
            }
            if c.sent == req.len() {
                let mut ev = EpollEvent::new(EpollFlags::EPOLLIN, c.token);
                if let Err(e) = self.epoll.modify(c.sock.as_fd(), &mut ev) {
                    return ConnStep::Bad(e.to_string());
                }
                return ConnStep::Pending;
            }
        }
        let mut buf = [0u8; 4096];
        loop {
            match socket::recv(c.sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return http_verdict(&c.answer, true),
                Ok(n) => {
                    c.answer.extend_from_slice(&buf[..n]);
                    match http_verdict(&c.answer, false) {
                        ConnStep::Pending if c.answer.len() > MAX_HTTP_HEAD => {
                            return ConnStep::Bad("answer head too large".into())
                        }
                        ConnStep::Pending => continue,
                        done => return done,
                    }
                }
                Err(nix::Error::EAGAIN) => return ConnStep::Pending,
                Err(nix::Error::EINTR) => continue,
                Err(e) => return ConnStep::Bad(format!("reading the answer: {e}")),
            }
        }
    }
}

/// Judge an HTTP answer (head) so far: 2xx and 3xx are good. `eof`: no more will come.
fn http_verdict(answer: &[u8], eof: bool) -> ConnStep {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(answer) {
        Ok(httparse::Status::Complete(_)) => match resp.code {
            Some(c) if (200..400).contains(&c) => ConnStep::Good,
            Some(c) => ConnStep::Bad(format!("HTTP {c}")),
            None => ConnStep::Bad("no status".into()),
        },
        Ok(httparse::Status::Partial) if !eof => ConnStep::Pending,
        Ok(httparse::Status::Partial) => ConnStep::Bad("answer cut short".into()),
        Err(e) => ConnStep::Bad(format!("bad HTTP answer: {e}")),
    }
}

fn resolve_target(check: &HealthCheck) -> Result<Target, String> {
    match check {
        HealthCheck::Tcp(a) => crate::hosts::resolve(a).map(Target::Tcp),
        HealthCheck::Exec(argv) => Ok(Target::Exec(argv.clone())),
        HealthCheck::Http(url) => {
            let (hostport, path) = parse_http_url(url)?;
            let addr = crate::hosts::resolve(&hostport)?;
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: colony-health\r\nAccept: */*\r\nConnection: close\r\n\r\n"
            )
            .into_bytes();
            Ok(Target::Http { addr, request })
        }
    }
}

/// `http://HOST[:PORT][/PATH]` -> (`HOST:PORT`, `/PATH`).
pub fn parse_http_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs can be checked"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url}: no host"));
    }
    let has_port = match authority.rfind(':') {
        Some(i) => !authority[i..].contains(']'),
        None => false,
    };
    let hostport = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((hostport, path.to_string()))
}

/// connect(2) on a non-blocking socket (nix's inet addresses need its `net` feature).
fn connect_raw(sock: BorrowedFd, addr: SocketAddr) -> io::Result<()> {
    // SAFETY: the sockaddr structs are plain data, filled field by field, and passed with
    // their own size.
    let r = unsafe {
        match addr {
            SocketAddr::V4(a) => {
                let mut sa: libc::sockaddr_in = std::mem::zeroed();
                sa.sin_family = libc::AF_INET as libc::sa_family_t;
                sa.sin_port = a.port().to_be();
                sa.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
                libc::connect(
                    sock.as_raw_fd(),
                    &sa as *const libc::sockaddr_in as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
            SocketAddr::V6(a) => {
                let mut sa: libc::sockaddr_in6 = std::mem::zeroed();
                sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sa.sin6_port = a.port().to_be();
                sa.sin6_addr.s6_addr = a.ip().octets();
                sa.sin6_flowinfo = a.flowinfo();
                sa.sin6_scope_id = a.scope_id();
                libc::connect(
                    sock.as_raw_fd(),
                    &sa as *const libc::sockaddr_in6 as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn nearest_existing_dir(path: &Path) -> PathBuf {
    let mut dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    while !dir.is_dir() {
        match dir.parent() {
            Some(p) => dir = p.to_path_buf(),
            None => return PathBuf::from("/"),
        }
    }
    dir
}

/// `now + d`, for durations from unit files: a far-future one saturates, never panics.
pub fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86400)))
        .unwrap_or(now)
}

fn kill_pid(pid: i32) {
    // SAFETY: the exec check is our own unreaped child: its pid cannot be reused yet.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Start an `exec` health check like the unit's program: same user, groups, capabilities,
/// directory, environment and cgroup; output to /dev/null.
pub fn spawn_exec(
    def: &Unit,
    argv: &[String],
    env: &[(String, String)],
    placement: spawn::Placement,
) -> Result<spawn::Spawned, String> {
    let cstr =
        |s: &[u8]| CString::new(s).map_err(|_| "NUL byte in argv or environment".to_string());
    let argv = argv
        .iter()
        .map(|a| cstr(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = env
        .iter()
        .map(|(k, v)| cstr(format!("{k}={v}").as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let cwd = match &def.directory {
        Some(d) => Some(cstr(d.as_os_str().as_bytes())?),
        None => None,
    };
    let creds = crate::creds::Creds::for_unit(def).map_err(|e| e.to_string())?;
    let devnull = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("/dev/null: {e}"))?;
    let req = spawn::SpawnRequest {
        argv: &argv,
        envp: &envp,
        cwd: cwd.as_deref(),
        creds: &creds,
        stdout: Some(devnull.as_fd()),
        stderr: Some(devnull.as_fd()),
        placement,
        new_process_group: true,
    };
    spawn::spawn(&req).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_future_durations_saturate() {
        let now = Instant::now();
        assert!(after(now, Duration::MAX) > now + Duration::from_secs(86400));
        assert_eq!(
            after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
    }

    #[test]
    fn http_urls() {
        assert_eq!(
            parse_http_url("http://127.0.0.1:8080/healthz").unwrap(),
            ("127.0.0.1:8080".into(), "/healthz".into())
        );
        assert_eq!(
            parse_http_url("http://localhost").unwrap(),
            ("localhost:80".into(), "/".into())
        );
        assert_eq!(
            parse_http_url("http://[::1]:9/x?y=1").unwrap(),
            ("[::1]:9".into(), "/x?y=1".into())
        );
        assert!(parse_http_url("https://a/").is_err());
        assert!(parse_http_url("http:///x").is_err());
    }

    #[test]
    fn http_answers() {
        assert!(matches!(
            http_verdict(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false),
            ConnStep::Good
        ));
        assert!(matches!(
            http_verdict(b"HTTP/1.0 302 Found\r\nLocation: /\r\n\r\n", false),
            ConnStep::Good
        ));
        assert!(matches!(
            http_verdict(b"HTTP/1.1 500 Internal\r\n\r\n", false),
            ConnStep::Bad(_)
        ));
        assert!(matches!(
            http_verdict(b"HTTP/1.1 200 OK\r\n", false),
            ConnStep::Pending
        ));
        assert!(matches!(
            http_verdict(b"HTTP/1.1 200 OK\r\n", true),
            ConnStep::Bad(_)
        ));
        assert!(matches!(
            http_verdict(b"\x00\x01garbage\r\n\r\n", false),
            ConnStep::Bad(_)
        ));
    }

    fn wait_actions(p: &mut Probes, bound: Duration) -> Vec<Action> {
        let end = Instant::now() + bound;
        loop {
            if bound.is_zero() {
                let mut fds = [nix::poll::PollFd::new(p.fd(), nix::poll::PollFlags::POLLIN)];
                let _ = nix::poll::poll(&mut fds, 100u16);
                return p.on_event();
            }
            let mut fds = [nix::poll::PollFd::new(p.fd(), nix::poll::PollFlags::POLLIN)];
            let left = end.saturating_duration_since(Instant::now());
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let _ = nix::poll::poll(&mut fds, ms);
            let a = p.on_event();
            if !a.is_empty() || Instant::now() >= end {
                return a;
            }
        }
    }

    #[test]
    fn tcp_readiness_retries_until_a_listener_appears() {
        // A free port: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut p = Probes::new().unwrap();
        let a = p.start_ready("u", &ReadyType::Tcp(format!("127.0.0.1:{port}")));
        assert!(a.is_empty());
        // Some attempts fail (refused) and back off; nothing is ready.
        assert!(wait_actions(&mut p, Duration::from_millis(150)).is_empty());
        let _l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let a = wait_actions(&mut p, Duration::from_secs(5));
        assert_eq!(a, vec![Action::Ready("u".into())]);
        assert!(!p.is_probing("u"));
    }

    #[test]
    fn file_readiness_sees_a_file_made_in_a_new_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/deeper/ready");
        let mut p = Probes::new().unwrap();
        assert!(p
            .start_ready("u", &ReadyType::File(file.clone()))
            .is_empty());
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        assert!(wait_actions(&mut p, Duration::from_millis(100)).is_empty());
        std::fs::write(&file, b"").unwrap();
        let a = wait_actions(&mut p, Duration::from_secs(5));
        assert_eq!(a, vec![Action::Ready("u".into())]);
        // Already there: ready at once.
        assert_eq!(
            p.start_ready("v", &ReadyType::File(file)),
            vec![Action::Ready("v".into())]
        );
    }

    /// A real HTTP server on a thread answers 200 then 500: good, then bad twice, fault.
    #[test]
    fn http_health_good_then_bad_until_fault() {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for (i, s) in l.incoming().take(3).enumerate() {
                let mut s = s.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let code = if i == 0 { "200 OK" } else { "500 Oops" };
                let _ = write!(s, "HTTP/1.1 {code}\r\nContent-Length: 0\r\n\r\n");
            }
        });
        let mut p = Probes::new().unwrap();
        let h = Health {
            check: HealthCheck::Http(format!("http://127.0.0.1:{port}/healthz")),
            period: Duration::from_millis(50),
            timeout: Duration::from_secs(2),
            max_bad: 2,
            grace: Duration::from_millis(10),
        };
        p.start_health("u", &h);
        let mut seen = Vec::new();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            let a = wait_actions(&mut p, Duration::ZERO);
            if let Some(t) = p.health_text("u") {
                if seen.last() != Some(&t) {
                    seen.push(t);
                }
            }
            if !a.is_empty() {
                assert_eq!(a, vec![Action::Fault("u".into())]);
                break;
            }
        }
        assert_eq!(seen, vec!["good", "bad 1", "bad 2"]);
        assert!(!p.is_probing("u"));
        assert_eq!(p.health_text("u").as_deref(), Some("bad 2"));
        server.join().unwrap();
    }

    #[test]
    fn a_silent_server_times_out_as_bad() {
        // Accepts (the kernel's backlog does) but never answers.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut p = Probes::new().unwrap();
        let h = Health {
            check: HealthCheck::Http(format!("http://127.0.0.1:{port}/")),
            period: Duration::from_secs(60),
            timeout: Duration::from_millis(100),
            max_bad: 1,
            grace: Duration::ZERO,
        };
        p.start_health("u", &h);
        let a = wait_actions(&mut p, Duration::from_secs(5));
        assert_eq!(a, vec![Action::Fault("u".into())]);
        drop(l);
    }
}

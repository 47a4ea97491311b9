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
use crate::kernel::spawn;

mod conn;
mod handover;
mod health;
mod ready;

pub use conn::parse_http_url;
use conn::resolve_target;
pub use handover::{HealthSnap, ProbesSnap};
use health::kill_pid;
pub use health::spawn_exec;

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
    /// `max_bad` bad health checks in a row: feed `Input::Fault { reason: Fault::Health }`.
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
}

/// `now + d`, for durations from unit files: a far-future one saturates, never panics.
pub fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86400)))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests;

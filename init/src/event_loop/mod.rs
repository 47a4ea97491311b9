//! The one event loop: epoll over signalfd, timerfd, inotify, the control FIFO, log pipes
//! and reply FIFOs. It owns every fd and every kernel object of the supervisor; the core
//! ([`crate::core::Supervisor`]) owns every decision.
//!
//! One iteration: wait (no timeout: the timerfd carries the nearest deadline), turn what
//! happened into core inputs, carry out the effects that come back (feeding their results
//! back in), answer requests whose wait is over, re-arm the timerfd. A panic while handling
//! one event is caught and logged; the loop goes on. A panic while carrying out one effect
//! is caught apart: the effects after it are still carried out, and the core is told
//! (`Input::EffectFailed`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::inotify::{InitFlags, Inotify, WatchDescriptor};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::timerfd::{ClockId, TimerFd, TimerFlags};
use tracing::{debug, error, info, warn};
use units::model::Unit;
use units::proto::{self, Reply, Request};

use crate::config::Options;
use crate::control::pending::{self, Dropped, PendingReplies};
use crate::control::subscribers::Subscribers;
use crate::control::{ControlFifo, ReplyWriter};
use crate::core::{
    Command, DeadlineKind, Effect, EffectKind, ExitStatus, Input, Now, State, Supervisor, Want,
};
use crate::deadlines::Deadlines;
use crate::kernel::cgroup::{Cgroups, UnitCgroup};
use crate::kernel::notify::{self, NotifySocket};
use crate::kernel::pid1::{Mode, PowerAction};
use crate::kernel::{creds, dirsync, reaper, spawn};
use crate::logs::{Console, ConsoleCopy, LogFile};
use crate::probe::{self, Probes};
use crate::ratelimit::Limits;

mod events;
mod exec_env;
mod hooks;
mod log_home;
mod process;
mod ready;
mod reexec;
mod requests;
mod sandboxed;
mod sockets;
mod watches;

pub use reexec::{Kept, Lineage};

use watches::Watches;

#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("control FIFO: {0}")]
    Control(#[from] crate::control::ControlError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> LoopError {
    move |source| LoopError::Sys { what, source }
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub code: i32,
    /// The loop could not go on (not a requested exit): PID 1 falls back to reaping.
    pub broken: bool,
    /// Machine mode: what to do with the machine now.
    pub power: Option<PowerAction>,
}

const T_SIGNAL: u64 = 1;
const T_TIMER: u64 = 2;
const T_INOTIFY: u64 = 3;
const T_CONTROL: u64 = 4;
const T_NOTIFY: u64 = 5;
const T_PROBE: u64 = 6;
/// The CLOCK_REALTIME timerfd that reports a set of the wall clock.
const T_CLOCK: u64 = 7;
const T_LOG: u64 = 1 << 32;
const T_REPLY: u64 = 2 << 32;
/// A started child's exec report (readable once it exec'd or failed).
const T_EXEC: u64 = 5 << 32;
/// The pidfd of a process that escaped a unit without a cgroup (readable when it exits).
const T_STRAY: u64 = 9 << 32;
/// A subscriber's reply FIFO (the event stream).
const T_SUB: u64 = 10 << 32;
/// A listening socket of an on_demand unit (sockets.rs).
const T_SOCKET: u64 = 11 << 32;
const T_KIND: u64 = !0xffff_ffff;

/// Read at most this much of one unit's output per wakeup, so a flood cannot hold the loop.
const LOG_BUDGET: usize = 64 * 1024;
/// Notify datagrams read per wakeup (the rest on the next: epoll is level-triggered).
const NOTIFY_BUDGET: usize = 256;
/// Directory events are applied this long after the last one, so a burst is read once.
const RELOAD_SETTLE: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Unit(String, DeadlineKind),
    Reload,
    /// The end of a rate-limit window with suppressed messages to count.
    Suppressed,
    /// The nearest timeout of a waiting reply (see `PendingReplies`).
    Replies,
}

/// The unit's main process.
struct Proc {
    pidfd: OwnedFd,
}

/// What the loop holds for a unit: kernel objects, not decisions.
#[derive(Default)]
struct UnitRt {
    main: Option<Proc>,
    /// The hook command that runs now (`exec_start_pre`...).
    hook: Option<Proc>,
    /// Started, exec not confirmed yet: the child, its report pipe, the report's token.
    pending: Option<(spawn::Spawned, OwnedFd, u64)>,
    /// Process group of the last start: the cleanup handle where no cgroup tracks it.
    pgid: Option<i32>,
    cgroup: Option<UnitCgroup>,
    cgroup_watch: Option<WatchDescriptor>,
    warnings: Vec<String>,
    oom_seen: u64,
    log: Option<LogFile>,
    log_path: Option<PathBuf>,
    /// Read end (registered in epoll) and write end (dup'ed into each start) of its output pipe.
    log_pipe: Option<(OwnedFd, OwnedFd, u64)>,
    heartbeat: Option<PathBuf>,
    /// Its heartbeat file's share of a directory watch.
    heartbeat_watch: Option<watches::HeartbeatWatch>,
    /// A KillAll was done and the core waits for Empty.
    awaiting_empty: bool,
    /// Without a cgroup: processes that escaped the process group, killed at the last
    /// KillAll and not gone yet (each with its epoll token).
    strays: Vec<(crate::kernel::strays::Stray, u64)>,
    /// The last `STATUS=` of a notify unit.
    status_text: Option<String>,
    /// Its log file's writes fail (said once, not per line).
    log_failure: crate::ratelimit::Persistent,
    /// Runtime directories and credentials made for its start (exec_env.rs).
    exec: exec_env::ExecRt,
    /// Its `[socket]`'s open sockets (sockets.rs).
    sockets: sockets::UnitSockets,
}

struct Waiter {
    reply: String,
    names: Vec<String>,
    want: Want,
}

pub struct Engine {
    opts: Options,
    mode: Mode,
    core: Supervisor,
    epoll: Epoll,
    sigfd: SignalFd,
    timer: TimerFd,
    /// Readable when the wall clock is set (None: could not be made; calendar timers then
    /// notice a set clock only at their old deadline).
    clock: Option<TimerFd>,
    watches: Watches,
    deadlines: Deadlines<Key>,
    control: ControlFifo,
    /// `--control-group`'s gid: its members read the unit logs too.
    log_group: Option<nix::unistd::Gid>,
    /// Log and state directories not writable yet (a machine's read-only root).
    homes: log_home::Homes,
    replies: PendingReplies<ReplyWriter>,
    /// The event stream's subscribers (`subscribe`).
    subs: Subscribers,
    next_token: u64,
    log_tokens: HashMap<u64, String>,
    exec_tokens: HashMap<u64, String>,
    stray_tokens: HashMap<u64, String>,
    /// Watched sockets of on_demand units, by token.
    socket_tokens: HashMap<u64, String>,
    /// Units without a cgroup killed in this loop turn: their strays are looked for at its
    /// end, in one scan.
    hunts: BTreeSet<String>,
    units: BTreeMap<String, UnitRt>,
    pid_to_unit: HashMap<i32, String>,
    /// Hook commands that run, by pid.
    hook_pids: HashMap<i32, String>,
    /// Instances of templates started so far (`NAME@INST`): read with the directory.
    instances: BTreeSet<String>,
    cgroups: Option<Cgroups>,
    waiters: Vec<Waiter>,
    exit: Option<i32>,
    power: Option<PowerAction>,
    shutting_down: bool,
    path_env: String,
    /// `[sandbox]` seccomp programs, built once per unit definition.
    sandboxes: crate::kernel::sandbox::Cache,
    /// RUN/notify (None: could not be bound; notify units then fail to start).
    notify: Option<NotifySocket>,
    members: notify::Members,
    probes: Option<Probes>,
    /// Bounds on what units and FIFO writers can make colony-init log.
    limits: Limits,
    /// Unit output copied to our standard output (a container's own log), if on.
    console: Option<Console>,
    /// When colony-init started and was last re-executed.
    lineage: Lineage,
    /// A reexec's state, taken over at the start of `run`.
    handover: Option<crate::handover::State>,
}

/// The signals the loop takes through its signalfd (blocked for normal delivery).
pub fn handled_signals() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGPWR,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        s.add(sig);
    }
    s
}

fn now() -> Now {
    Now {
        mono: Instant::now(),
        wall: SystemTime::now(),
    }
}

/// The `[resources]` keys a unit sets (to name what is not enforced).
fn limit_keys(r: &units::model::Resources) -> Vec<&'static str> {
    [
        ("memory_max", r.memory_max.is_some()),
        ("memory_high", r.memory_high.is_some()),
        ("cpu_max", r.cpu_max.is_some()),
        ("cpu_weight", r.cpu_weight.is_some()),
        ("tasks_max", r.tasks_max.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, set)| set.then_some(k))
    .collect()
}

fn signal_name(sig: i32) -> String {
    units::values::signal_name(sig)
        .map(str::to_string)
        .unwrap_or_else(|| format!("SIG{sig}"))
}

impl Engine {
    pub fn new(opts: Options, mode: Mode) -> Result<Engine, LoopError> {
        Self::new_with(opts, mode, None)
    }

    /// The new image of a reexec: the engine takes over `state` (its control FIFO and
    /// notify socket are taken, not made).
    pub fn take_over_from(
        opts: Options,
        mode: Mode,
        state: crate::handover::State,
    ) -> Result<Engine, LoopError> {
        let kept = Kept::from_state(&state);
        let mut e = Self::new_with(opts, mode, Some(kept))?;
        e.handover = Some(state);
        Ok(e)
    }

    fn new_with(mut opts: Options, mode: Mode, kept: Option<Kept>) -> Result<Engine, LoopError> {
        let Kept {
            control: kept_control,
            notify: kept_notify,
            inotify: kept_inotify,
        } = kept.unwrap_or_default();
        spawn::raise_fd_limit();
        // Blocked so the signalfd gets them; children get an empty mask in spawn.
        handled_signals()
            .thread_block()
            .map_err(sys("blocking signals"))?;
        let sigfd = SignalFd::with_flags(
            &handled_signals(),
            SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
        )
        .map_err(sys("signalfd"))?;
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(sys("timerfd"))?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(sys("epoll"))?;
        for dir in [&opts.run_dir, &opts.units_dir] {
            std::fs::create_dir_all(dir).map_err(|source| LoopError::Io {
                what: "creating",
                path: dir.clone(),
                source,
            })?;
        }
        let inotify = match kept_inotify {
            // SAFETY: the previous image's inotify instance, kept for this; ours alone. Its
            // watches are asked for again below and by each unit's adoption, which gives
            // back the descriptors they have.
            Some(fd) => unsafe { Inotify::from_owned_fd(fd) },
            None => Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
                .map_err(sys("inotify"))?,
        };
        let watches =
            Watches::new(inotify, &opts.units_dir).map_err(sys("watching the units directory"))?;
        // Logs and state may live on a read-only root (a `--read-only` container without
        // tmpfs for them): they then go below the run directory rather than stop colony.
        let asked = (opts.log_dir.clone(), opts.state_dir.clone());
        opts.log_dir = writable_or(&opts.log_dir, opts.run_dir.join("log"), "logs")?;
        opts.state_dir = writable_or(&opts.state_dir, opts.run_dir.join("state"), "state")?;
        let homes = log_home::Homes {
            logs: (opts.log_dir != asked.0).then_some(asked.0),
            state: (opts.state_dir != asked.1).then_some(asked.1),
        };
        let control = match kept_control {
            Some(fd) => ControlFifo::adopt(&opts.run_dir, fd)?,
            None => ControlFifo::create(&opts.run_dir, opts.control_group.as_deref())?,
        };
        // The name was checked by ControlFifo::create.
        let log_group = opts.control_group.as_deref().and_then(|g| {
            units::userdb::group_by_name(Path::new(units::userdb::GROUP), g)
                .ok()
                .flatten()
                .map(nix::unistd::Gid::from_raw)
        });
        epoll
            .add(
                sigfd.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, T_SIGNAL),
            )
            .map_err(sys("epoll add"))?;
        epoll
            .add(timer.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, T_TIMER))
            .map_err(sys("epoll add"))?;
        epoll
            .add(
                watches.fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, T_INOTIFY),
            )
            .map_err(sys("epoll add"))?;
        epoll
            .add(
                control.fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, T_CONTROL),
            )
            .map_err(sys("epoll add"))?;

        let cgroups = match Cgroups::setup(&opts.cgroup_name) {
            Ok(Some(c)) => Some(c),
            Ok(None) => {
                info!("no writable cgroups here: units run in process groups, limits are not enforced");
                None
            }
            Err(e) => {
                warn!(error = %e, "cgroups unusable: units run in process groups, limits are not enforced");
                None
            }
        };
        let path_env = std::env::var("PATH")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| {
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
            });
        // Record where we are, for `colonyctl add/remove` and for `colonyctl logs` (which
        // reads the files even after colony-init is gone).
        let _ = std::fs::write(
            opts.run_dir.join("units-dir"),
            opts.units_dir.as_os_str().as_bytes(),
        );
        let _ = std::fs::write(
            opts.run_dir.join("log-dir"),
            opts.log_dir.as_os_str().as_bytes(),
        );
        if let Err(e) = crate::self_log::open(&opts.log_dir, log_group) {
            warn!(dir = %opts.log_dir.display(), error = %e, "cannot write colony-init's own log file");
        }
        let notify = match kept_notify {
            Some(fd) => Ok(NotifySocket::adopt(&opts.run_dir, fd)),
            None => NotifySocket::bind(&opts.run_dir),
        };
        let notify = match notify {
            Ok(n) => {
                epoll
                    .add(n.fd(), EpollEvent::new(EpollFlags::EPOLLIN, T_NOTIFY))
                    .map_err(sys("epoll add"))?;
                Some(n)
            }
            Err(e) => {
                warn!(error = %e, "no notify socket: notify units cannot start");
                None
            }
        };
        let probes = match Probes::new() {
            Ok(p) => {
                epoll
                    .add(p.fd(), EpollEvent::new(EpollFlags::EPOLLIN, T_PROBE))
                    .map_err(sys("epoll add"))?;
                Some(p)
            }
            Err(e) => {
                warn!(error = %e, "no probes: tcp/file readiness and health checks are off");
                None
            }
        };
        let clock = clock_watch()
            .and_then(|t| {
                epoll
                    .add(t.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, T_CLOCK))
                    .map(|()| t)
            })
            .map_err(|e| {
                warn!(error = %e, "cannot watch for clock changes: calendar timers are re-planned only at their old deadline")
            })
            .ok();
        let core = Supervisor::new(opts.defaults);
        // In a container, `podman logs` is where users look for their services.
        let console = opts
            .console_logs
            .unwrap_or(mode == Mode::Container)
            .then(Console::stdout)
            .flatten();
        Ok(Engine {
            opts,
            mode,
            core,
            epoll,
            sigfd,
            timer,
            clock,
            watches,
            deadlines: Deadlines::default(),
            control,
            log_group,
            homes,
            replies: PendingReplies::new(pending::LIMITS),
            subs: Subscribers::new(),
            next_token: 0,
            log_tokens: HashMap::new(),
            exec_tokens: HashMap::new(),
            stray_tokens: HashMap::new(),
            socket_tokens: HashMap::new(),
            hunts: BTreeSet::new(),
            units: BTreeMap::new(),
            pid_to_unit: HashMap::new(),
            hook_pids: HashMap::new(),
            instances: BTreeSet::new(),
            cgroups,
            waiters: Vec::new(),
            exit: None,
            power: None,
            shutting_down: false,
            path_env,
            sandboxes: Default::default(),
            notify,
            members: notify::Members::default(),
            probes,
            limits: Limits::default(),
            console,
            lineage: Lineage {
                started: SystemTime::now(),
                reexecuted: None,
                reexecs: 0,
            },
            handover: None,
        })
    }

    /// Load the units and run until shutdown.
    pub fn run(mut self) -> Outcome {
        match self.handover.take() {
            Some(state) => self.take_over(state),
            None => {
                self.restore_timers();
                self.reload();
            }
        }
        let mut events = vec![EpollEvent::empty(); 64];
        while self.exit.is_none() {
            self.arm_timer();
            let n = match self.epoll.wait(&mut events, EpollTimeout::NONE) {
                Ok(n) => n,
                Err(nix::Error::EINTR) => continue,
                Err(e) => {
                    error!(error = %e, "epoll_wait failed: the event loop cannot go on");
                    break;
                }
            };
            for ev in &events[..n] {
                let (token, flags) = (ev.data(), ev.events());
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.on_event(token, flags)
                }));
                if r.is_err() {
                    error!(
                        token,
                        "a panic while handling an event was caught; going on"
                    );
                }
            }
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run_hunts()));
            if r.is_err() {
                error!("a panic while looking for strays was caught; going on");
            }
            self.answer_waiters();
        }
        self.cleanup();
        Outcome {
            code: self.exit.unwrap_or(1),
            broken: self.exit.is_none(),
            power: self.power,
        }
    }

    fn on_event(&mut self, token: u64, flags: EpollFlags) {
        match token {
            T_SIGNAL => self.on_signals(),
            T_TIMER => self.on_timer(),
            T_CLOCK => self.on_clock(),
            T_INOTIFY => self.on_inotify(),
            T_CONTROL => self.on_control(),
            T_NOTIFY => self.on_notify(),
            T_PROBE => {
                let actions = self
                    .probes
                    .as_mut()
                    .map(|p| p.on_event())
                    .unwrap_or_default();
                let inputs = self.probe_actions(actions);
                for i in inputs {
                    self.feed(i);
                }
            }
            t if t & T_KIND == T_LOG => self.on_log(t),
            t if t & T_KIND == T_REPLY => self.on_reply_writable(t, flags),
            t if t & T_KIND == T_STRAY => self.on_stray_exit(t),
            t if t & T_KIND == T_SUB => self.on_subscriber(t, flags),
            t if t & T_KIND == T_SOCKET => self.on_socket(t),
            t if t & T_KIND == T_EXEC => {
                if let Some(name) = self.exec_tokens.get(&t).cloned() {
                    if let Some(input) = self.confirm_exec(&name) {
                        self.feed(input);
                    }
                }
            }
            _ => {}
        }
    }

    // ---- feeding the core ------------------------------------------------------------

    /// Give the core an input and carry out everything that follows from it.
    fn feed(&mut self, input: Input) {
        let mut queue = VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            let unit = probe_relevant(&input);
            let loaded = matches!(input, Input::Load(_));
            let effects = self.core.handle(input, now());
            let mut changed: BTreeSet<String> =
                self.core.changes().iter().map(|c| c.unit.clone()).collect();
            if loaded {
                // A new or changed [socket], or one removed: its sockets and watch follow.
                changed.extend(
                    self.units
                        .iter()
                        .filter(|(_, rt)| rt.sockets.open.is_some())
                        .map(|(n, _)| n.clone()),
                );
                changed.extend(
                    self.core
                        .units()
                        .filter(|r| r.def.as_ref().is_some_and(|d| d.socket.is_some()))
                        .map(|r| r.name.clone()),
                );
            }
            self.publish_changes();
            for effect in effects {
                queue.extend(self.apply_caught(effect));
            }
            for u in changed {
                self.sync_exec_env(&u);
                self.sync_sockets(&u);
            }
            if let Some(u) = unit {
                queue.extend(self.sync_probes(&u));
            }
        }
    }

    /// Carry out one effect; a panic in it is caught here, so the effects after it are
    /// still carried out, and the core hears of it (a lost `Spawn` would otherwise leave
    /// the unit `starting` for good).
    fn apply_caught(&mut self, effect: Effect) -> Vec<Input> {
        let (kind, unit) = (effect.kind(), effect.unit().map(str::to_string));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            #[cfg(debug_assertions)]
            test_panic_spawn(&effect);
            self.apply(effect)
        }));
        match r {
            Ok(next) => next.unwrap_or_default(),
            Err(_) => {
                error!(unit = ?unit, effect = ?kind, "a panic while carrying out an effect was caught; going on");
                let Some(unit) = unit else {
                    return Vec::new();
                };
                if kind == EffectKind::Spawn {
                    self.drop_attempt(&unit);
                }
                vec![Input::EffectFailed { unit, effect: kind }]
            }
        }
    }

    /// After a `Spawn` that panicked: end a child it may have forked (killed and reaped,
    /// as after a failed exec), so the core can count the start as failed.
    fn drop_attempt(&mut self, name: &str) {
        let Some(rt) = self.units.get_mut(name) else {
            return;
        };
        if let Some((child, report, token)) = rt.pending.take() {
            let _ = self.epoll.delete(report.as_fd());
            self.exec_tokens.remove(&token);
            let _ = spawn::send_signal(child.pidfd.as_fd(), libc::SIGKILL);
            let _ = spawn::wait(child.pidfd.as_fd());
            self.pid_to_unit.remove(&child.pid);
            self.members.remove(name);
            rt.pgid = None;
        }
    }

    fn apply(&mut self, effect: Effect) -> Option<Vec<Input>> {
        debug!(?effect, "effect");
        match effect {
            Effect::Spawn { unit } => self.spawn(&unit).map(|i| vec![i]),
            Effect::Signal { unit, signal } => {
                // A child whose exec is not confirmed yet is signalled too: a stop asked in
                // that moment must not wait for the stop timeout.
                let pidfd = self.units.get(&unit).and_then(|rt| {
                    rt.main
                        .as_ref()
                        .map(|p| p.pidfd.as_fd())
                        .or_else(|| rt.pending.as_ref().map(|(c, _, _)| c.pidfd.as_fd()))
                });
                if let Some(pidfd) = pidfd {
                    if let Err(e) = spawn::send_signal(pidfd, signal) {
                        debug!(unit = %unit, error = %e, "signal not delivered");
                    }
                }
                None
            }
            Effect::KillAll { unit } => Some(self.kill_all(&unit)),
            Effect::Arm { unit, kind, at } => {
                self.deadlines.arm(Key::Unit(unit, kind), at);
                None
            }
            Effect::Disarm { unit, kind } => {
                self.deadlines.disarm(&Key::Unit(unit, kind));
                None
            }
            Effect::Forget { unit } => {
                self.forget(&unit);
                None
            }
            Effect::PersistTimerRun { unit, at } => {
                self.persist_timer(&unit, at);
                None
            }
            Effect::RunHook { unit, kind, index } => Some(self.run_hook(&unit, kind, index)),
            Effect::CheckConditions { unit } => {
                let def = self.core.get(&unit).and_then(|r| r.active_def().cloned());
                let verdict = match def {
                    Some(d) => crate::kernel::conditions::check(&d),
                    None => return None,
                };
                if let (
                    crate::core::Verdict::Skip(why) | crate::core::Verdict::Fail(why),
                    Some(log),
                ) = (
                    &verdict,
                    self.units.get_mut(&unit).and_then(|rt| rt.log.as_mut()),
                ) {
                    let _ = log.write_note(&format!("colony: not started: {why}"));
                }
                Some(vec![Input::Conditions { unit, verdict }])
            }
            Effect::KillHook { unit } => {
                self.kill_hook(&unit);
                None
            }
            Effect::Exit { code } => {
                if self.exit.is_none() {
                    info!(code, "all units stopped");
                    self.exit = Some(code);
                    if self.mode == Mode::Machine && self.power.is_none() {
                        // An essential unit failed on a machine: reboot it.
                        self.power = Some(PowerAction::Reboot);
                    }
                }
                None
            }
        }
    }

    fn reload(&mut self) {
        match dirsync::read(&self.opts.units_dir, &self.instances) {
            Ok(input) => {
                // Before the starts it may bring: the room left for held stat files.
                if let Input::Load(units) = &input {
                    crate::kernel::cgroup::plan_fd_budget(units.len());
                }
                self.feed(input)
            }
            Err(e) => {
                warn!(dir = %self.opts.units_dir.display(), error = %e, "cannot read the units directory")
            }
        }
    }

    // ---- signals and reaping ---------------------------------------------------------

    fn on_signals(&mut self) {
        let mut chld = false;
        loop {
            match self.sigfd.read_signal() {
                Ok(Some(info)) => {
                    let signo = info.ssi_signo as i32;
                    match signo {
                        libc::SIGCHLD => chld = true,
                        libc::SIGHUP => {
                            info!("SIGHUP: re-reading the units directory");
                            self.reload();
                        }
                        libc::SIGTERM | libc::SIGINT | libc::SIGPWR | libc::SIGQUIT => {
                            let action = match (self.mode, signo) {
                                (Mode::Machine, libc::SIGINT) => Some(PowerAction::Reboot),
                                (Mode::Machine, _) => Some(PowerAction::PowerOff),
                                _ => None,
                            };
                            self.shutdown(action, &signal_name(signo));
                        }
                        _ => debug!(signo, "signal ignored"),
                    }
                }
                Ok(None) => break,
                Err(nix::Error::EINTR) => continue,
                Err(e) => {
                    warn!(error = %e, "reading signalfd");
                    break;
                }
            }
        }
        if chld {
            self.reap();
        }
    }

    fn shutdown(&mut self, action: Option<PowerAction>, why: &str) {
        if self.shutting_down {
            return;
        }
        info!(reason = why, "stopping every unit");
        self.shutting_down = true;
        self.power = action;
        self.feed(Input::Shutdown);
    }

    /// Reap every exited child: unit main processes through their pidfds (their status
    /// goes to the core), every other one (orphans) by PID.
    fn reap(&mut self) {
        while let Some(pid) = reaper::peek_exited() {
            // A child that died before its exec report was read: read it first (Spawned or
            // SpawnFailed, in that order before any Exited).
            if let Some(name) = self.pid_to_unit.get(&pid).cloned() {
                if self.units.get(&name).is_some_and(|rt| rt.pending.is_some()) {
                    if let Some(input) = self.confirm_exec(&name) {
                        let failed = matches!(input, Input::SpawnFailed { .. });
                        self.feed(input);
                        if failed {
                            continue; // reaped by finish()
                        }
                    }
                }
            }
            if let Some(input) = self.reap_hook(pid) {
                self.feed(input);
                continue;
            }
            match self.pid_to_unit.remove(&pid) {
                Some(name) => {
                    let status = self
                        .units
                        .get_mut(&name)
                        .and_then(|rt| rt.main.take())
                        .and_then(|p| spawn::try_wait(p.pidfd.as_fd()).ok().flatten());
                    let Some(status) = status else {
                        // Could not read it through the pidfd: reap by PID, report a kill.
                        reaper::reap(pid);
                        self.exited(&name, ExitStatus::Signal(libc::SIGKILL));
                        continue;
                    };
                    self.exited(&name, status);
                }
                None => match self.probes.as_mut().and_then(|p| p.child_exited(pid)) {
                    Some(actions) => {
                        for i in self.probe_actions(actions) {
                            self.feed(i);
                        }
                    }
                    None => reaper::reap(pid),
                },
            }
        }
        // A unit without a cgroup whose process group is gone: look once more for what
        // escaped it (at the end of this turn), and that look says it is empty.
        let ended: Vec<String> = self
            .units
            .iter()
            .filter(|(_, rt)| {
                rt.awaiting_empty
                    && rt.cgroup.is_none()
                    && rt.main.is_none()
                    && rt.pgid.is_none_or(|g| !reaper::group_alive(g))
            })
            .map(|(n, _)| n.clone())
            .collect();
        self.hunts.extend(ended);
    }

    fn exited(&mut self, name: &str, status: ExitStatus) {
        let mut oom = false;
        if let Some(rt) = self.units.get_mut(name) {
            if let Some(cg) = &rt.cgroup {
                let n = cg.oom_kills();
                oom = n > rt.oom_seen;
                rt.oom_seen = n;
            }
            drain_output(rt, &mut self.console, &self.core, name);
            if let Some(log) = rt.log.as_mut() {
                let _ = log.write_note(&format!(
                    "colony: {status}{}",
                    if oom { " (oom)" } else { "" }
                ));
            }
        }
        let oom_note = if oom { " (out of memory)" } else { "" };
        info!(unit = %name, "{name} {status}{oom_note}");
        self.feed(Input::Exited {
            unit: name.to_string(),
            status,
            oom,
        });
        // A boot task done may have made the root writable (see `log_home`).
        if self.homes.away()
            && self.core.get(name).map(|r| r.state) == Some(crate::core::State::Exited)
        {
            self.go_home();
        }
    }

    // ---- deadlines -------------------------------------------------------------------

    fn arm_timer(&mut self) {
        // Armed only while some message was suppressed: its count is said at the window's end.
        match self.limits.next_due() {
            Some(at) => self.deadlines.arm(Key::Suppressed, at),
            None => self.deadlines.disarm(&Key::Suppressed),
        }
        if let Err(e) = crate::deadlines::arm_oneshot(&self.timer, self.deadlines.next()) {
            error!(error = %e, "arming the timerfd failed");
        }
    }

    fn on_timer(&mut self) {
        let _ = self.timer.wait(); // non-blocking: just clears the expiration count
        for key in self.deadlines.take_due(Instant::now()) {
            match key {
                Key::Reload => self.reload(),
                Key::Suppressed => self.limits.flush_due(Instant::now()),
                Key::Replies => self.on_reply_deadline(),
                Key::Unit(unit, kind) => self.feed(Input::Deadline { unit, kind }),
            }
        }
    }

    /// The clock timerfd is readable: `ECANCELED` means the wall clock was set.
    fn on_clock(&mut self) {
        let Some(t) = self.clock.as_ref() else {
            return;
        };
        let mut buf = [0u8; 8];
        let set = loop {
            match nix::unistd::read(t.as_fd(), &mut buf) {
                Err(nix::Error::ECANCELED) => break true,
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::EAGAIN) => break false,
                Err(e) => {
                    warn!(error = %e, "reading the clock timerfd");
                    break false;
                }
                Ok(_) => {
                    // The far-future time came (the clock is past it): stop watching
                    // rather than wake up for ever.
                    warn!("the clock watch expired: clock changes are no longer noticed");
                    self.clock = None;
                    return;
                }
            }
        };
        if !set {
            return;
        }
        // Re-armed before the core reads the time, so a set from now on is noticed.
        if let Err(e) = arm_clock_watch(t) {
            warn!(error = %e, "re-arming the clock timerfd");
        }
        info!("the wall clock was set: timers are planned again");
        self.feed(Input::ClockChanged);
    }

    // ---- inotify: units dir, heartbeats, cgroup.events --------------------------------

    fn on_inotify(&mut self) {
        let seen = match self.watches.read() {
            Ok(seen) => seen,
            Err(nix::Error::EAGAIN) => return,
            Err(e) => {
                warn!(error = %e, "reading inotify");
                return;
            }
        };
        let reload = seen.reload;
        let mut beats = seen.beats;
        let mut emptied = seen.cgroup_events;
        if seen.overflow {
            emptied.extend(self.units.keys().cloned());
        }
        if reload {
            self.deadlines
                .arm(Key::Reload, Instant::now() + RELOAD_SETTLE);
        }
        beats.dedup();
        for unit in beats {
            self.feed(Input::Beat { unit });
        }
        emptied.sort();
        emptied.dedup();
        for unit in emptied {
            let empty = self.units.get(&unit).is_some_and(|rt| {
                rt.awaiting_empty && rt.cgroup.as_ref().is_some_and(|c| c.is_empty())
            });
            if empty {
                if let Some(rt) = self.units.get_mut(&unit) {
                    rt.awaiting_empty = false;
                }
                self.feed(Input::Empty { unit });
            }
        }
    }

    // ---- logs ------------------------------------------------------------------------

    fn on_log(&mut self, token: u64) {
        let Some(name) = self.log_tokens.get(&token).cloned() else {
            return;
        };
        let Some(rt) = self.units.get_mut(&name) else {
            return;
        };
        let Some((r, _, _)) = rt.log_pipe.as_ref() else {
            return;
        };
        match rt.log.as_mut() {
            Some(log) => {
                // A full disk fails every line: said when it starts, changes and ends.
                let copy = console_copy(&mut self.console, &self.core, &name);
                let r = log.drain(r.as_fd(), LOG_BUDGET, copy);
                crate::ratelimit::log_write_result(
                    &mut self.limits,
                    &mut rt.log_failure,
                    &name,
                    r.as_ref().map(|_| ()),
                    Instant::now(),
                );
            }
            None => drop_bytes(r.as_fd()),
        }
    }

    // ---- persistence of timer runs ---------------------------------------------------

    fn timer_state_file(&self, unit: &str) -> PathBuf {
        self.opts.state_dir.join("timers").join(unit)
    }

    fn persist_timer(&mut self, unit: &str, at: SystemTime) {
        let path = self.timer_state_file(unit);
        let secs = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let r = (|| {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            // `.NAME.tmp`: a unit name never starts with a dot, so no unit's record is
            // another's temporary file (`with_extension` made `x`'s the record of `x.tmp`).
            let tmp = path.with_file_name(format!(".{unit}.tmp"));
            std::fs::write(&tmp, format!("{secs}\n"))?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = r {
            warn!(unit, error = %e, "cannot record the timer's last run");
        }
    }

    fn restore_timers(&mut self) {
        let dir = self.opts.state_dir.join("timers");
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return;
        };
        for ent in rd.flatten() {
            let name = ent.file_name().to_string_lossy().into_owned();
            // Only a unit's record: not a temporary file (`.NAME.tmp`), yet `x.tmp` is a
            // unit name like any other.
            if !units::parse::valid_unit_name(&name) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(ent.path()) else {
                continue;
            };
            if let Ok(ms) = text.trim().parse::<u64>() {
                let last_run = SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
                self.feed(Input::RestoreTimer {
                    unit: name,
                    last_run,
                });
            }
        }
    }
}

/// A CLOCK_REALTIME timerfd that never expires but turns readable (its read failing with
/// ECANCELED) when the wall clock is set.
fn clock_watch() -> nix::Result<TimerFd> {
    let t = TimerFd::new(
        ClockId::CLOCK_REALTIME,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    )?;
    arm_clock_watch(&t)?;
    Ok(t)
}

fn arm_clock_watch(t: &TimerFd) -> nix::Result<()> {
    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{Expiration, TimerSetTimeFlags};
    // The kernel clamps this to its own end of time (year 2262), which the clock cannot be
    // set past: the timer never fires, so it costs no wakeup.
    t.set(
        Expiration::OneShot(TimeSpec::from_duration(Duration::from_secs(u64::MAX >> 1))),
        TimerSetTimeFlags::TFD_TIMER_ABSTIME | TimerSetTimeFlags::TFD_TIMER_CANCEL_ON_SET,
    )
}

/// The unit of an input after which readiness probes and health checks may need to start
/// or stop (not `Watchdog`/`Beat`: frequent, and they change no state).
fn probe_relevant(input: &Input) -> Option<String> {
    match input {
        Input::Spawned { unit, .. }
        | Input::SpawnFailed { unit, .. }
        | Input::Exited { unit, .. }
        | Input::Ready { unit }
        | Input::Reloading { unit, .. }
        | Input::Stopping { unit }
        | Input::Fault { unit, .. }
        | Input::Deadline { unit, .. } => Some(unit.clone()),
        Input::Command(Command::Stop(unit) | Command::Restart(unit)) => Some(unit.clone()),
        _ => None,
    }
}

/// Read and discard what is in a pipe (a unit whose log cannot be opened).
/// The console copy of `unit`'s lines, unless it is off (for all, or in the unit's file).
fn console_copy<'a>(
    console: &'a mut Option<Console>,
    core: &Supervisor,
    unit: &'a str,
) -> Option<ConsoleCopy<'a>> {
    let on = core
        .get(unit)
        .and_then(|r| r.def.as_ref())
        .is_some_and(|d| d.log.console);
    Some(ConsoleCopy {
        console: console.as_mut().filter(|_| on)?,
        unit,
    })
}

/// What a unit's process wrote before it died comes first, then its last unterminated
/// line (the pipe never reaches EOF: the loop holds its write end).
fn drain_output(rt: &mut UnitRt, console: &mut Option<Console>, core: &Supervisor, name: &str) {
    if let (Some(log), Some((r, _, _))) = (rt.log.as_mut(), rt.log_pipe.as_ref()) {
        let _ = log.drain(r.as_fd(), LOG_BUDGET, console_copy(console, core, name));
        let _ = log.flush_partial(console_copy(console, core, name));
    }
}

fn drop_bytes(fd: BorrowedFd) {
    let mut buf = [0u8; 8192];
    for _ in 0..8 {
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// `dir` if it can be created and written, else `fallback` (said in the log).
fn writable_or(dir: &Path, fallback: PathBuf, what: &str) -> Result<PathBuf, LoopError> {
    use nix::unistd::{access, AccessFlags};
    let usable = std::fs::create_dir_all(dir)
        .map_err(|e| e.to_string())
        .and_then(|()| access(dir, AccessFlags::W_OK).map_err(|e| e.to_string()));
    match usable {
        Ok(()) => Ok(dir.to_path_buf()),
        Err(error) => {
            std::fs::create_dir_all(&fallback).map_err(|source| LoopError::Io {
                what: "creating",
                path: fallback.clone(),
                source,
            })?;
            warn!(dir = %dir.display(), %error, instead = %fallback.display(),
                "cannot write {what} there; using the run directory");
            Ok(fallback)
        }
    }
}

/// Debug builds only: proves in a test that a `Spawn` that panics is caught and fails the
/// start. With `COLONY_TEST_PANIC_SPAWN` naming a file, the next spawn after the file is
/// created panics (once: the file is removed).
#[cfg(debug_assertions)]
fn test_panic_spawn(effect: &Effect) {
    if let Effect::Spawn { unit } = effect {
        if let Some(marker) = std::env::var_os("COLONY_TEST_PANIC_SPAWN") {
            if std::fs::remove_file(marker).is_ok() {
                panic!("a panic of the spawn of {unit} was asked for");
            }
        }
    }
}

//! The one event loop: epoll over signalfd, timerfd, inotify, the control FIFO, log pipes
//! and reply FIFOs. It owns every fd and every kernel object of the supervisor; the core
//! ([`crate::core::Supervisor`]) owns every decision.
//!
//! One iteration: wait (no timeout: the timerfd carries the nearest deadline), turn what
//! happened into core inputs, carry out the effects that come back (feeding their results
//! back in), answer requests whose wait is over, re-arm the timerfd. A panic while handling
//! one event is caught and logged; the loop goes on.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::timerfd::{ClockId, TimerFd, TimerFlags};
use tracing::{debug, error, info, warn};
use units::model::Unit;
use units::proto::{self, Reply, Request};

use crate::cgroup::{Cgroups, UnitCgroup};
use crate::config::Options;
use crate::control::{ControlFifo, ReplyWriter};
use crate::core::{Command, DeadlineKind, Effect, ExitStatus, Input, Now, State, Supervisor, Want};
use crate::deadlines::Deadlines;
use crate::logs::LogFile;
use crate::notify::{self, NotifySocket};
use crate::pid1::{Mode, PowerAction};
use crate::probe::{self, Probes};
use crate::{creds, dirsync, reaper, spawn};

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
const T_LOG: u64 = 1 << 32;
const T_REPLY: u64 = 2 << 32;
/// A started child's exec report (readable once it exec'd or failed).
const T_EXEC: u64 = 5 << 32;
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
}

#[derive(Debug, Clone)]
enum Watch {
    UnitsDir,
    /// A directory holding heartbeat files: file name -> unit.
    HeartbeatDir(HashMap<std::ffi::OsString, String>),
    CgroupEvents(String),
}

/// The unit's main process.
struct Proc {
    pidfd: OwnedFd,
}

/// What the loop holds for a unit: kernel objects, not decisions.
#[derive(Default)]
struct UnitRt {
    main: Option<Proc>,
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
    /// A KillAll was done and the core waits for Empty.
    awaiting_empty: bool,
    /// The last `STATUS=` of a notify unit.
    status_text: Option<String>,
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
    inotify: Inotify,
    watches: HashMap<WatchDescriptor, Watch>,
    deadlines: Deadlines<Key>,
    control: ControlFifo,
    replies: HashMap<u64, ReplyWriter>,
    next_token: u64,
    log_tokens: HashMap<u64, String>,
    exec_tokens: HashMap<u64, String>,
    units: BTreeMap<String, UnitRt>,
    pid_to_unit: HashMap<i32, String>,
    cgroups: Option<Cgroups>,
    waiters: Vec<Waiter>,
    exit: Option<i32>,
    power: Option<PowerAction>,
    shutting_down: bool,
    path_env: String,
    /// RUN/notify (None: could not be bound; notify units then fail to start).
    notify: Option<NotifySocket>,
    members: notify::Members,
    probes: Option<Probes>,
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
        raise_fd_limit();
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
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(sys("inotify"))?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(sys("epoll"))?;
        for dir in [
            &opts.run_dir,
            &opts.log_dir,
            &opts.state_dir,
            &opts.units_dir,
        ] {
            std::fs::create_dir_all(dir).map_err(|source| LoopError::Io {
                what: "creating",
                path: dir.clone(),
                source,
            })?;
        }
        let control = ControlFifo::create(&opts.run_dir, opts.control_group.as_deref())?;
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
                inotify.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, T_INOTIFY),
            )
            .map_err(sys("epoll add"))?;
        epoll
            .add(
                control.fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, T_CONTROL),
            )
            .map_err(sys("epoll add"))?;
        let mut watches = HashMap::new();
        let wd = inotify
            .add_watch(&opts.units_dir, dirsync::watch_mask())
            .map_err(sys("watching the units directory"))?;
        watches.insert(wd, Watch::UnitsDir);

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
        // Record where we are, for `colonyctl add/remove`.
        let _ = std::fs::write(
            opts.run_dir.join("units-dir"),
            opts.units_dir.as_os_str().as_bytes(),
        );
        let notify = match NotifySocket::bind(&opts.run_dir) {
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
        let core = Supervisor::new(opts.defaults);
        Ok(Engine {
            opts,
            mode,
            core,
            epoll,
            sigfd,
            timer,
            inotify,
            watches,
            deadlines: Deadlines::default(),
            control,
            replies: HashMap::new(),
            next_token: 0,
            log_tokens: HashMap::new(),
            exec_tokens: HashMap::new(),
            units: BTreeMap::new(),
            pid_to_unit: HashMap::new(),
            cgroups,
            waiters: Vec::new(),
            exit: None,
            power: None,
            shutting_down: false,
            path_env,
            notify,
            members: notify::Members::default(),
            probes,
        })
    }

    /// Load the units and run until shutdown.
    pub fn run(mut self) -> Outcome {
        self.restore_timers();
        self.reload();
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
            let effects = self.core.handle(input, now());
            for effect in effects {
                if let Some(next) = self.apply(effect) {
                    queue.extend(next);
                }
            }
            if let Some(u) = unit {
                queue.extend(self.sync_probes(&u));
            }
        }
    }

    fn apply(&mut self, effect: Effect) -> Option<Vec<Input>> {
        debug!(?effect, "effect");
        match effect {
            Effect::Spawn { unit } => self.spawn(&unit).map(|i| vec![i]),
            Effect::Signal { unit, signal } => {
                if let Some(p) = self.units.get(&unit).and_then(|rt| rt.main.as_ref()) {
                    if let Err(e) = spawn::send_signal(p.pidfd.as_fd(), signal) {
                        debug!(unit = %unit, error = %e, "signal not delivered");
                    }
                }
                None
            }
            Effect::KillAll { unit } => self.kill_all(&unit).map(|i| vec![i]),
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
        match dirsync::read(&self.opts.units_dir) {
            Ok(input) => self.feed(input),
            Err(e) => {
                warn!(dir = %self.opts.units_dir.display(), error = %e, "cannot read the units directory")
            }
        }
    }

    // ---- processes -------------------------------------------------------------------

    /// Start the unit's process. `None`: started, the exec report comes through the loop
    /// (so a thousand starts overlap instead of each waiting for its exec).
    fn spawn(&mut self, name: &str) -> Option<Input> {
        match self.try_spawn(name) {
            Ok(true) => None,
            // The report could not be waited on in the loop: read it now (serially).
            Ok(false) => self.confirm_exec(name),
            Err(error) => Some(self.spawn_failed(name, error)),
        }
    }

    fn spawn_failed(&mut self, name: &str, error: String) -> Input {
        warn!(unit = %name, %error, "start failed");
        if let Some(log) = self.units.get_mut(name).and_then(|rt| rt.log.as_mut()) {
            let _ = log.write_note(&format!("colony: start failed: {error}"));
        }
        Input::SpawnFailed {
            unit: name.to_string(),
            error,
        }
    }

    /// Read a started child's exec report: it runs (Spawned) or it failed (SpawnFailed, the
    /// child already reaped).
    fn confirm_exec(&mut self, name: &str) -> Option<Input> {
        let rt = self.units.get_mut(name)?;
        let (child, report, token) = rt.pending.take()?;
        let _ = self.epoll.delete(report.as_fd());
        self.exec_tokens.remove(&token);
        let pid = child.pid;
        match spawn::finish(child, &report) {
            Ok(child) => {
                rt.main = Some(Proc { pidfd: child.pidfd });
                self.members.set(
                    name,
                    rt.cgroup.as_ref().and_then(|c| c.dir("")),
                    rt.cgroup.as_ref().map(|c| c.path()),
                    pid,
                );
                if let Some(log) = rt.log.as_mut() {
                    let _ = log.write_note(&format!("colony: started pid {pid}"));
                }
                info!(unit = %name, pid, "started");
                Some(Input::Spawned {
                    unit: name.to_string(),
                    pid,
                })
            }
            Err(e) => {
                self.pid_to_unit.remove(&pid);
                rt.pgid = None;
                Some(self.spawn_failed(name, e.to_string()))
            }
        }
    }

    /// Ok(true): the exec report is awaited in the loop; Ok(false): read it at once.
    fn try_spawn(&mut self, name: &str) -> Result<bool, String> {
        let def: Arc<Unit> = self
            .core
            .get(name)
            .and_then(|r| r.def.clone())
            .ok_or_else(|| "no definition".to_string())?;
        self.ensure_log(name, &def)?;
        let heartbeat = self.ensure_heartbeat(name, &def)?;

        // Everything the child needs is prepared here, before the fork; spawn resolves a
        // bare exec[0] in the unit's PATH.
        let cstr =
            |s: &[u8]| CString::new(s).map_err(|_| "NUL byte in argv or environment".to_string());
        let argv = def
            .exec
            .iter()
            .map(|a| cstr(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut env: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "NOTIFY_SOCKET"
                        | "LISTEN_FDS"
                        | "LISTEN_PID"
                        | "WATCHDOG_USEC"
                        | "WATCHDOG_PID"
                )
            })
            .collect();
        env.insert("PATH".into(), self.path_env.clone());
        env.insert("COLONY_UNIT".into(), name.to_string());
        env.insert("COLONY_CONFIG".into(), def.extras_json.clone());
        env.insert(
            "COLONY_RUN_DIR".into(),
            self.opts.run_dir.to_string_lossy().into_owned(),
        );
        env.insert(
            "COLONY_UNITS_DIR".into(),
            self.opts.units_dir.to_string_lossy().into_owned(),
        );
        if let Some(hb) = &heartbeat {
            env.insert("COLONY_HEARTBEAT".into(), hb.to_string_lossy().into_owned());
        }
        if def.ready.kind == units::model::ReadyType::Notify {
            let sock = self
                .notify
                .as_ref()
                .ok_or("no notify socket (see colony-init's log)")?;
            env.insert(
                "NOTIFY_SOCKET".into(),
                sock.path().to_string_lossy().into_owned(),
            );
            if let Some(w) = def.ready.watchdog {
                env.insert("WATCHDOG_USEC".into(), w.as_micros().to_string());
            }
        }
        for (k, v) in &def.environment {
            env.insert(k.clone(), v.clone());
        }
        let envp = env
            .iter()
            .map(|(k, v)| cstr(format!("{k}={v}").as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let cwd = match &def.directory {
            Some(d) => Some(cstr(d.as_os_str().as_bytes())?),
            None => None,
        };
        let creds = creds::Creds::for_unit(&def).map_err(|e| e.to_string())?;

        // The unit's cgroup: (re)created with its current limits for every start.
        let rt = self.units.entry(name.to_string()).or_default();
        if let Some(cgs) = &self.cgroups {
            // The last start's cgroup (and its held stat files) goes before its directory is
            // made afresh.
            rt.cgroup = None;
            match cgs.unit(name, &def.resources) {
                Ok((cg, warnings)) => {
                    for w in &warnings {
                        warn!(unit = %name, "{w}");
                    }
                    rt.warnings = warnings;
                    rt.oom_seen = cg.oom_kills();
                    // The v2 directory may be new (see Cgroups::unit): watch it afresh.
                    if let Some(wd) = rt.cgroup_watch.take() {
                        let _ = self.inotify.rm_watch(wd);
                        self.watches.remove(&wd);
                    }
                    {
                        if let Some(ev) = cg.events_file() {
                            match self.inotify.add_watch(&ev, AddWatchFlags::IN_MODIFY) {
                                Ok(wd) => {
                                    self.watches
                                        .insert(wd, Watch::CgroupEvents(name.to_string()));
                                    rt.cgroup_watch = Some(wd);
                                }
                                Err(e) => {
                                    warn!(unit = %name, error = %e, "cannot watch cgroup.events")
                                }
                            }
                        }
                    }
                    rt.cgroup = Some(cg);
                }
                Err(e) => {
                    let w = format!("no cgroup ({e}): limits not enforced, process-group cleanup");
                    warn!(unit = %name, "{w}");
                    rt.warnings = vec![w];
                    rt.cgroup = None;
                }
            }
        } else if def.resources.any() {
            let w = format!(
                "{} not enforced: no usable cgroups here",
                limit_keys(&def.resources).join(", ")
            );
            // Once per change, not at every restart of a crash loop.
            if rt.warnings.first() != Some(&w) {
                warn!(unit = %name, "{w}");
            }
            rt.warnings = vec![w];
        } else {
            rt.warnings.clear();
        }
        let out = rt.log_pipe.as_ref().map(|(_, w, _)| w.as_fd());
        let fds = match &rt.cgroup {
            Some(cg) => Some(
                cg.open_placement()
                    .map_err(|e| format!("opening the unit's cgroup: {e}"))?,
            ),
            None => None,
        };
        let placement = fds
            .as_ref()
            .map(|f| f.placement())
            .unwrap_or(spawn::Placement::None);
        let req = spawn::SpawnRequest {
            argv: &argv,
            envp: &envp,
            cwd: cwd.as_deref(),
            creds: &creds,
            stdout: out,
            stderr: out,
            placement,
            new_process_group: true,
        };
        // A watchdog unit learns its own pid as WATCHDOG_PID (sd_watchdog_enabled checks it).
        let pid_var = (def.ready.kind == units::model::ReadyType::Notify
            && def.ready.watchdog.is_some())
        .then_some(c"WATCHDOG_PID");
        let (child, report) = spawn::spawn_nowait(&req, pid_var).map_err(|e| e.to_string())?;
        drop(fds);
        let pid = child.pid;
        self.next_token += 1;
        let token = T_EXEC | (self.next_token & 0xffff_ffff);
        let in_loop = match self
            .epoll
            .add(report.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))
        {
            Ok(()) => true,
            Err(e) => {
                warn!(unit = %name, error = %e, "epoll: reading the exec report in place");
                false
            }
        };
        rt.pgid = Some(pid);
        rt.awaiting_empty = false;
        rt.status_text = None;
        rt.pending = Some((child, report, token));
        self.exec_tokens.insert(token, name.to_string());
        self.pid_to_unit.insert(pid, name.to_string());
        Ok(in_loop)
    }

    fn ensure_log(&mut self, name: &str, def: &Unit) -> Result<(), String> {
        let path = def
            .log
            .file
            .clone()
            .unwrap_or_else(|| self.opts.log_dir.join(format!("{name}.log")));
        let rt = self.units.entry(name.to_string()).or_default();
        if rt.log.is_none() || rt.log_path.as_ref() != Some(&path) {
            match LogFile::open(&path, def.log.max_size, def.log.keep) {
                Ok(l) => {
                    rt.log = Some(l);
                    rt.log_path = Some(path);
                }
                Err(e) => {
                    warn!(unit = %name, path = %path.display(), error = %e, "cannot open the log file; output is dropped")
                }
            }
        }
        if rt.log_pipe.is_none() {
            let (r, w) =
                crate::logs::log_pipe().map_err(|e| format!("creating the output pipe: {e}"))?;
            self.next_token += 1;
            let token = T_LOG | (self.next_token & 0xffff_ffff);
            self.epoll
                .add(r.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))
                .map_err(|e| format!("epoll: {e}"))?;
            self.log_tokens.insert(token, name.to_string());
            rt.log_pipe = Some((r, w, token));
        }
        Ok(())
    }

    /// Create the heartbeat file (owned by the unit's user) and watch its directory.
    fn ensure_heartbeat(&mut self, name: &str, def: &Unit) -> Result<Option<PathBuf>, String> {
        let Some(hb) = &def.heartbeat else {
            return Ok(None);
        };
        let file = hb
            .file
            .clone()
            .unwrap_or_else(|| self.opts.run_dir.join("heartbeat").join(name));
        let dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("heartbeat directory {}: {e}", dir.display()))?;
        if !file.exists() {
            std::fs::write(&file, b"")
                .map_err(|e| format!("heartbeat file {}: {e}", file.display()))?;
        }
        if let Some(u) = &def.identity.user {
            let _ = nix::unistd::chown(
                &file,
                Some(nix::unistd::Uid::from_raw(u.uid)),
                def.identity.gid.map(nix::unistd::Gid::from_raw),
            );
        }
        // A beat is a `touch` (ATTRIB), a write (MODIFY) or an atomic replace (MOVED_TO).
        // Not CLOSE_WRITE or CREATE: a touch would then cost two wakeups instead of one.
        let mask = AddWatchFlags::IN_ATTRIB | AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_MOVED_TO;
        let wd = self
            .inotify
            .add_watch(&dir, mask)
            .map_err(|e| format!("watching {}: {e}", dir.display()))?;
        let fname = file
            .file_name()
            .map(|f| f.to_os_string())
            .unwrap_or_default();
        match self
            .watches
            .entry(wd)
            .or_insert_with(|| Watch::HeartbeatDir(HashMap::new()))
        {
            Watch::HeartbeatDir(m) => {
                m.insert(fname, name.to_string());
            }
            other => {
                // The same directory as the units dir or a cgroup: keep it simple, refuse.
                debug!(?other, "heartbeat directory shares a watch");
            }
        }
        if let Some(rt) = self.units.get_mut(name) {
            rt.heartbeat = Some(file.clone());
        }
        Ok(Some(file))
    }

    fn kill_all(&mut self, name: &str) -> Option<Input> {
        let rt = self.units.get_mut(name)?;
        if let Some(cg) = &rt.cgroup {
            if let Err(e) = cg.kill() {
                warn!(unit = %name, error = %e, "killing the cgroup failed");
            }
            if let Some(p) = &rt.main {
                let _ = spawn::send_signal(p.pidfd.as_fd(), libc::SIGKILL);
            }
            if cg.is_empty() {
                rt.awaiting_empty = false;
                return Some(Input::Empty {
                    unit: name.to_string(),
                });
            }
        } else {
            if let Some(p) = &rt.main {
                let _ = spawn::send_signal(p.pidfd.as_fd(), libc::SIGKILL);
            }
            if let Some(pgid) = rt.pgid {
                // SAFETY: a plain kill of the process group we created for this unit.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
                if rt.main.is_none() && !reaper::group_alive(pgid) {
                    rt.awaiting_empty = false;
                    return Some(Input::Empty {
                        unit: name.to_string(),
                    });
                }
            } else if rt.main.is_none() {
                return Some(Input::Empty {
                    unit: name.to_string(),
                });
            }
        }
        rt.awaiting_empty = true;
        None
    }

    fn forget(&mut self, name: &str) {
        self.members.remove(name);
        if let Some(p) = self.probes.as_mut() {
            p.forget(name);
        }
        if let Some(mut rt) = self.units.remove(name) {
            if let Some(wd) = rt.cgroup_watch.take() {
                let _ = self.inotify.rm_watch(wd);
                self.watches.remove(&wd);
            }
            if let Some(cg) = rt.cgroup.take() {
                if let Err(e) = cg.remove() {
                    debug!(unit = %name, error = %e, "cgroup not removed");
                }
            }
            if let Some((r, _, token)) = rt.log_pipe.take() {
                let _ = self.epoll.delete(r.as_fd());
                self.log_tokens.remove(&token);
            }
            if let Some((_, report, token)) = rt.pending.take() {
                let _ = self.epoll.delete(report.as_fd());
                self.exec_tokens.remove(&token);
            }
        }
        for w in self.watches.values_mut() {
            if let Watch::HeartbeatDir(m) = w {
                m.retain(|_, u| u != name);
            }
        }
        self.deadlines
            .retain(|k| !matches!(k, Key::Unit(u, _) if u == name));
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
        // Units without a cgroup are empty when their process group is gone.
        let empties: Vec<String> = self
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
        for name in empties {
            if let Some(rt) = self.units.get_mut(&name) {
                rt.awaiting_empty = false;
            }
            self.feed(Input::Empty { unit: name });
        }
    }

    fn exited(&mut self, name: &str, status: ExitStatus) {
        let mut oom = false;
        if let Some(rt) = self.units.get_mut(name) {
            if let Some(cg) = &rt.cgroup {
                let n = cg.oom_kills();
                oom = n > rt.oom_seen;
                rt.oom_seen = n;
            }
            if let (Some(log), Some((r, _, _))) = (rt.log.as_mut(), rt.log_pipe.as_ref()) {
                // What the program wrote before it died comes first, then its last
                // unterminated line (the pipe never reaches EOF: the loop holds its write end).
                let _ = log.drain(r.as_fd(), LOG_BUDGET);
                let _ = log.flush_partial();
            }
            if let Some(log) = rt.log.as_mut() {
                let what = match status {
                    ExitStatus::Code(c) => format!("exited with code {c}"),
                    ExitStatus::Signal(s) => format!("killed by {}", signal_name(s)),
                };
                let _ = log.write_note(&format!(
                    "colony: {what}{}",
                    if oom { " (oom)" } else { "" }
                ));
            }
        }
        info!(unit = %name, ?status, oom, "exited");
        self.feed(Input::Exited {
            unit: name.to_string(),
            status,
            oom,
        });
    }

    // ---- deadlines -------------------------------------------------------------------

    fn arm_timer(&mut self) {
        if let Err(e) = crate::deadlines::arm_oneshot(&self.timer, self.deadlines.next()) {
            error!(error = %e, "arming the timerfd failed");
        }
    }

    fn on_timer(&mut self) {
        let _ = self.timer.wait(); // non-blocking: just clears the expiration count
        for key in self.deadlines.take_due(Instant::now()) {
            match key {
                Key::Reload => self.reload(),
                Key::Unit(unit, kind) => self.feed(Input::Deadline { unit, kind }),
            }
        }
    }

    // ---- inotify: units dir, heartbeats, cgroup.events --------------------------------

    fn on_inotify(&mut self) {
        let events = match self.inotify.read_events() {
            Ok(e) => e,
            Err(nix::Error::EAGAIN) => return,
            Err(e) => {
                warn!(error = %e, "reading inotify");
                return;
            }
        };
        let mut beats = Vec::new();
        let mut emptied = Vec::new();
        let mut reload = false;
        for ev in events {
            if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                reload = true;
                emptied.extend(self.units.keys().cloned());
                continue;
            }
            match self.watches.get(&ev.wd) {
                Some(Watch::UnitsDir) if ev.name.as_deref().is_some_and(dirsync::is_unit_file) => {
                    reload = true;
                }
                Some(Watch::UnitsDir) => {}
                Some(Watch::HeartbeatDir(m)) => {
                    if let Some(u) = ev.name.as_ref().and_then(|n| m.get(n)) {
                        beats.push(u.clone());
                    }
                }
                Some(Watch::CgroupEvents(u)) => emptied.push(u.clone()),
                None => {}
            }
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

    // ---- readiness, notify, health (logic in notify.rs and probe.rs) --------------------

    fn on_notify(&mut self) {
        let mut got = Vec::new();
        let members = &self.members;
        if let Some(sock) = self.notify.as_mut() {
            sock.drain(NOTIFY_BUDGET, |dg, drops| {
                let t = Instant::now();
                let Some(unit) = members.sender_unit(&dg) else {
                    notify::log_drop(drops, t, dg.pid, "sender is in no unit");
                    return;
                };
                let Some(msgs) = notify::parse(&dg.payload) else {
                    notify::log_drop(drops, t, dg.pid, "malformed datagram");
                    return;
                };
                got.push((unit.to_string(), msgs));
            });
        }
        for (unit, msgs) in got {
            let notify_type = self
                .core
                .get(&unit)
                .and_then(|r| r.def.as_ref())
                .is_some_and(|d| d.ready.kind == units::model::ReadyType::Notify);
            for order in notify::interpret(&unit, notify_type, &msgs, &self.members) {
                match order {
                    notify::Order::Feed(input) => self.feed(input),
                    notify::Order::Status(t) => {
                        if let Some(rt) = self.units.get_mut(&unit) {
                            rt.status_text = Some(t);
                        }
                    }
                    notify::Order::Extend(d) => {
                        for kind in [DeadlineKind::ReadyTimeout, DeadlineKind::StopTimeout] {
                            let key = Key::Unit(unit.clone(), kind);
                            if self.deadlines.is_armed(&key) {
                                self.deadlines.arm(key, probe::after(Instant::now(), d));
                            }
                        }
                    }
                    notify::Order::Reloading(reloading) => {
                        let relevant =
                            reloading || self.core.get(&unit).is_some_and(|r| r.reloading);
                        if relevant {
                            self.feed(Input::Reloading {
                                unit: unit.clone(),
                                reloading,
                            });
                        }
                    }
                }
            }
        }
    }

    /// Start or stop the unit's readiness probe and health checks to match its state.
    fn sync_probes(&mut self, unit: &str) -> Vec<Input> {
        let Some(p) = self.probes.as_mut() else {
            return Vec::new();
        };
        let (state, up, def) = match self.core.get(unit) {
            Some(r) => (r.state, r.is_up(), r.def.clone()),
            None => (State::Stopped, false, None),
        };
        let actions = match def {
            Some(def) => p.sync(unit, state == State::Starting, up, &def),
            None => {
                p.stop(unit);
                Vec::new()
            }
        };
        self.probe_actions(actions)
    }

    /// Carry out what probes decided; the inputs for the core come back.
    fn probe_actions(&mut self, actions: Vec<probe::Action>) -> Vec<Input> {
        let mut inputs = Vec::new();
        let mut queue = VecDeque::from(actions);
        while let Some(a) = queue.pop_front() {
            match a {
                probe::Action::Ready(unit) => inputs.push(Input::Ready { unit }),
                probe::Action::Fault(unit) => inputs.push(Input::Fault {
                    unit,
                    reason: "health",
                }),
                probe::Action::Exec { unit, argv } => {
                    let r = self.spawn_check(&unit, &argv);
                    let Some(p) = self.probes.as_mut() else { break };
                    match r {
                        Ok(pid) => p.exec_started(&unit, pid),
                        Err(e) => queue.extend(p.exec_failed(&unit, &e)),
                    }
                }
            }
        }
        inputs
    }

    /// Start an `exec` health check in the unit's cgroup, as the unit's user.
    fn spawn_check(&mut self, unit: &str, argv: &[String]) -> Result<i32, String> {
        let def = self
            .core
            .get(unit)
            .and_then(|r| r.def.clone())
            .ok_or("no definition")?;
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), self.path_env.clone()),
            ("COLONY_UNIT".into(), unit.to_string()),
        ];
        env.extend(def.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
        let fds = match self.units.get(unit).and_then(|rt| rt.cgroup.as_ref()) {
            Some(cg) => Some(cg.open_placement().map_err(|e| e.to_string())?),
            None => None,
        };
        let placement = fds
            .as_ref()
            .map(|f| f.placement())
            .unwrap_or(spawn::Placement::None);
        let child = probe::spawn_exec(&def, argv, &env, placement)?;
        Ok(child.pid)
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
                if let Err(e) = log.drain(r.as_fd(), LOG_BUDGET) {
                    warn!(unit = %name, error = %e, "writing the log failed; output dropped");
                }
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
            let tmp = path.with_extension("tmp");
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
            if name.ends_with(".tmp") {
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

    // ---- the control FIFO ------------------------------------------------------------

    fn on_control(&mut self) {
        for req in self.control.read_requests() {
            match req {
                Ok(req) => {
                    debug!(verb = %req.verb, args = ?req.args, "request");
                    self.request(req);
                }
                Err(e) => warn!(error = %e, "control request dropped"),
            }
        }
    }

    fn request(&mut self, req: Request) {
        let reply = |code: i32, error: Option<String>, data: serde_json::Value| Reply {
            ok: code == 0,
            code,
            error,
            data,
        };
        let args: Vec<&str> = req.args.iter().map(String::as_str).collect();
        let answer = match req.verb.as_str() {
            "status" => {
                if let Some(name) = req.reply.as_deref() {
                    let bytes = self.status(&args);
                    self.send_bytes(name, bytes);
                }
                None
            }
            "timers" => Some(reply(0, None, self.timers())),
            "info" => Some(reply(0, None, self.info())),
            // Debug builds only: proves in a test that a panic while handling one event is
            // caught and the loop goes on (release builds have no such verb).
            "__panic" if cfg!(debug_assertions) => panic!("panic requested over the control FIFO"),
            "start" | "stop" | "restart" => self.start_stop(&req, &args),
            "restart-all" => {
                self.feed(Input::Command(Command::RestartAll));
                Some(reply(0, None, serde_json::Value::Null))
            }
            "reload" => {
                self.reload();
                Some(reply(0, None, serde_json::Value::Null))
            }
            "signal" => Some(self.signal(&args)),
            "poweroff" | "reboot" | "halt" => {
                if self.mode != Mode::Machine {
                    Some(reply(
                        proto::exit::FAILED,
                        Some(format!(
                            "colony-init is not PID 1 of a machine; refusing to {}",
                            req.verb
                        )),
                        serde_json::Value::Null,
                    ))
                } else {
                    let action = match req.verb.as_str() {
                        "reboot" => PowerAction::Reboot,
                        "halt" => PowerAction::Halt,
                        _ => PowerAction::PowerOff,
                    };
                    self.shutdown(Some(action), &req.verb);
                    Some(reply(0, None, serde_json::Value::Null))
                }
            }
            other => Some(reply(
                proto::exit::USAGE,
                Some(format!("unknown command {other:?}; see colonyctl --help")),
                serde_json::Value::Null,
            )),
        };
        if let (Some(answer), Some(name)) = (answer, req.reply.as_deref()) {
            self.send_reply(name, &answer);
        }
    }

    fn resolve_all(&self, targets: &[&str]) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        for t in targets {
            for n in self.core.resolve(t)? {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        Ok(names)
    }

    fn start_stop(&mut self, req: &Request, args: &[&str]) -> Option<Reply> {
        let no_block = args.contains(&"--no-block");
        let targets: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| *a != "--no-block")
            .collect();
        if targets.is_empty() {
            return Some(Reply {
                ok: false,
                code: proto::exit::USAGE,
                error: Some(format!("{} needs at least one unit or @tag", req.verb)),
                data: serde_json::Value::Null,
            });
        }
        let names = match self.resolve_all(&targets) {
            Ok(n) => n,
            Err(e) => {
                return Some(Reply {
                    ok: false,
                    code: proto::exit::NO_SUCH_UNIT,
                    error: Some(e),
                    data: serde_json::Value::Null,
                })
            }
        };
        let want = if req.verb == "stop" {
            Want::Down
        } else {
            Want::Up
        };
        for n in &names {
            let cmd = match req.verb.as_str() {
                "start" => Command::Start(n.clone()),
                "stop" => Command::Stop(n.clone()),
                _ => Command::Restart(n.clone()),
            };
            self.feed(Input::Command(cmd));
        }
        match (&req.reply, no_block) {
            (Some(reply), false) => {
                self.waiters.push(Waiter {
                    reply: reply.clone(),
                    names,
                    want,
                });
                None
            }
            _ => Some(Reply {
                ok: true,
                code: 0,
                error: None,
                data: serde_json::Value::Null,
            }),
        }
    }

    /// Answer every waiting start/stop whose units all reached (or can no longer reach)
    /// what was asked.
    fn answer_waiters(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
        let mut done = Vec::new();
        self.waiters.retain(|w| {
            let mut errors = Vec::new();
            for n in &w.names {
                match self.core.wait_result(n, w.want) {
                    None => return true,
                    Some(Ok(())) => {}
                    Some(Err(e)) => errors.push(format!("{n}: {e}")),
                }
            }
            done.push((w.reply.clone(), errors));
            false
        });
        for (name, errors) in done {
            let r = if errors.is_empty() {
                Reply {
                    ok: true,
                    code: 0,
                    error: None,
                    data: serde_json::Value::Null,
                }
            } else {
                Reply {
                    ok: false,
                    code: proto::exit::FAILED,
                    error: Some(errors.join("; ")),
                    data: serde_json::Value::Null,
                }
            };
            self.send_reply(&name, &r);
        }
    }

    fn signal(&mut self, args: &[&str]) -> Reply {
        let fail = |code, e: String| Reply {
            ok: false,
            code,
            error: Some(e),
            data: serde_json::Value::Null,
        };
        let Some((sig, targets)) = args.split_first() else {
            return fail(proto::exit::USAGE, "signal needs SIGNAL and a unit".into());
        };
        let sig = match units::values::parse_signal(sig) {
            Ok(s) => s,
            Err(e) => return fail(proto::exit::USAGE, e),
        };
        let names = match self.resolve_all(targets) {
            Ok(n) if !n.is_empty() => n,
            Ok(_) => return fail(proto::exit::USAGE, "signal needs a unit".into()),
            Err(e) => return fail(proto::exit::NO_SUCH_UNIT, e),
        };
        let mut not_running = Vec::new();
        for n in &names {
            match self.units.get(n).and_then(|rt| rt.main.as_ref()) {
                Some(p) => {
                    if let Err(e) = spawn::send_signal(p.pidfd.as_fd(), sig) {
                        not_running.push(format!("{n} ({e})"));
                    }
                }
                None => not_running.push(n.clone()),
            }
        }
        if not_running.is_empty() {
            Reply {
                ok: true,
                code: 0,
                error: None,
                data: serde_json::Value::Null,
            }
        } else {
            fail(
                proto::exit::NOT_RUNNING,
                format!("not running: {}", not_running.join(", ")),
            )
        }
    }

    /// The `status` answer, serialized: straight from the typed entries (no
    /// `serde_json::Value` of ~1000 objects in between).
    fn status(&self, targets: &[&str]) -> Vec<u8> {
        let names = if targets.is_empty() {
            self.core.units().map(|r| r.name.clone()).collect()
        } else {
            match self.resolve_all(targets) {
                Ok(n) => n,
                Err(e) => {
                    return Reply {
                        ok: false,
                        code: proto::exit::NO_SUCH_UNIT,
                        error: Some(e),
                        data: serde_json::Value::Null,
                    }
                    .to_bytes()
                }
            }
        };
        let now_wall = SystemTime::now();
        let mut out = Vec::with_capacity(names.len());
        let mut any_down = false;
        for n in &names {
            let Some(r) = self.core.get(n) else { continue };
            let rt = self.units.get(n);
            let mut s = r.to_status(now_wall);
            // What only the loop knows: warnings, where the log is, the cgroup's figures,
            // the heartbeat file it made.
            s.warnings = rt.map(|rt| rt.warnings.clone()).unwrap_or_default();
            s.log_file = rt
                .and_then(|rt| rt.log_path.as_ref())
                .map(|p| p.to_string_lossy().into_owned())
                .or_else(|| {
                    r.def.as_ref().map(|d| {
                        d.log
                            .file
                            .clone()
                            .unwrap_or_else(|| self.opts.log_dir.join(format!("{n}.log")))
                            .to_string_lossy()
                            .into_owned()
                    })
                });
            if let Some(cg) = rt.and_then(|rt| rt.cgroup.as_ref()) {
                let st = cg.stats();
                s.cgroup = Some(cg.path());
                s.memory_bytes = st.memory_bytes;
                s.cpu_usec = st.cpu_usec;
                s.tasks = st.tasks;
            }
            if let Some(hb) = s.heartbeat.as_mut() {
                if hb.file.is_empty() {
                    hb.file = self
                        .opts
                        .run_dir
                        .join("heartbeat")
                        .join(n)
                        .display()
                        .to_string();
                }
            }
            s.status_text = rt.and_then(|rt| rt.status_text.clone());
            s.health = self.probes.as_ref().and_then(|p| p.health_text(n));
            if !targets.is_empty() && !matches!(r.state, State::Running | State::Starting) {
                any_down = true;
            }
            out.push(s);
        }
        /// The shape of [`Reply`], with the entries in place of its `Value`.
        #[derive(serde::Serialize)]
        struct StatusReply<'a> {
            ok: bool,
            code: i32,
            data: &'a [proto::UnitStatus],
        }
        let r = StatusReply {
            ok: !any_down,
            code: if any_down {
                proto::exit::NOT_RUNNING
            } else {
                0
            },
            data: &out,
        };
        let mut b = Vec::with_capacity(out.len() * 400 + 64);
        match serde_json::to_writer(&mut b, &r) {
            Ok(()) => {
                b.push(b'\n');
                b
            }
            // Not reachable for these types; PID 1 still must not panic on it.
            Err(e) => Reply {
                ok: false,
                code: proto::exit::FAILED,
                error: Some(format!("cannot encode the reply: {e}")),
                data: serde_json::Value::Null,
            }
            .to_bytes(),
        }
    }

    fn timers(&self) -> serde_json::Value {
        let list: Vec<proto::TimerStatus> =
            self.core.units().filter_map(|r| r.timer_status()).collect();
        serde_json::to_value(list).unwrap_or_default()
    }

    fn info(&self) -> serde_json::Value {
        let i = proto::Info {
            pid: std::process::id() as i32,
            units_dir: self.opts.units_dir.to_string_lossy().into_owned(),
            run_dir: self.opts.run_dir.to_string_lossy().into_owned(),
            log_dir: self.opts.log_dir.to_string_lossy().into_owned(),
            state_dir: self.opts.state_dir.to_string_lossy().into_owned(),
            mode: match self.mode {
                Mode::Machine => "machine",
                Mode::Container => "container",
                Mode::Plain => "plain",
            }
            .into(),
        };
        serde_json::to_value(i).unwrap_or_default()
    }

    fn send_reply(&mut self, name: &str, reply: &Reply) {
        self.send_bytes(name, reply.to_bytes());
    }

    /// Send a serialized reply (a line of JSON).
    fn send_bytes(&mut self, name: &str, bytes: Vec<u8>) {
        let mut w = match self.control.open_reply(name) {
            Ok(w) => w,
            Err(e) => {
                warn!(reply = name, error = %e, "reply dropped");
                return;
            }
        };
        w.set_bytes(bytes);
        match w.write_some() {
            Ok(true) => {}
            Ok(false) => {
                self.next_token += 1;
                let token = T_REPLY | (self.next_token & 0xffff_ffff);
                if let Err(e) = self
                    .epoll
                    .add(w.fd(), EpollEvent::new(EpollFlags::EPOLLOUT, token))
                {
                    warn!(error = %e, "cannot wait on a reply FIFO; reply dropped");
                    return;
                }
                self.replies.insert(token, w);
            }
            Err(e) => debug!(reply = name, error = %e, "client gone"),
        }
    }

    fn on_reply_writable(&mut self, token: u64, _flags: EpollFlags) {
        let Some(w) = self.replies.get_mut(&token) else {
            return;
        };
        let finished = !matches!(w.write_some(), Ok(false));
        if finished {
            if let Some(w) = self.replies.remove(&token) {
                let _ = self.epoll.delete(w.fd());
            }
        }
    }

    fn cleanup(&mut self) {
        if let Some(cgs) = &self.cgroups {
            for rt in self.units.values() {
                if let Some(cg) = &rt.cgroup {
                    let _ = cg.remove();
                }
            }
            cgs.cleanup();
        }
        let _ = std::fs::remove_file(self.opts.run_dir.join("control"));
    }
}

/// Every unit holds a pidfd and an output pipe: a thousand units need more than the usual
/// soft limit of 1024 fds, so take the hard limit.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                warn!(error = %e, "cannot raise the open-files limit");
            }
        }
    }
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
fn drop_bytes(fd: BorrowedFd) {
    let mut buf = [0u8; 8192];
    for _ in 0..8 {
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

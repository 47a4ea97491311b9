//! What the core knows about one unit: the public view for `status`, and the private facts
//! the state machine works with.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use units::model::Unit;

use super::start::{Held, StartPhase};
use super::{DeadlineKind, ExitReason, ExitStatus, Fault, State};

/// How the last process of a unit ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastExit {
    /// `None`: there was no process to end (the spawn failed: see `detail`).
    pub status: Option<ExitStatus>,
    pub reason: Option<ExitReason>,
    /// Free text, e.g. the exec error.
    pub detail: Option<String>,
}

/// The outcome of one timer run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunResult {
    pub status: Option<ExitStatus>,
    pub reason: Option<ExitReason>,
    pub duration: Duration,
}

/// A timer unit's schedule, for `colonyctl timers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerStatus {
    /// When the next run is due (`None`: not scheduled, e.g. stopped).
    pub next: Option<SystemTime>,
    /// When the last run started (restored from STATE_DIR for persistent units).
    pub last_start: Option<SystemTime>,
    pub last_result: Option<RunResult>,
    /// Runs skipped because the previous one was still going.
    pub skipped: u64,
    pub last_skip: Option<SystemTime>,
    pub(crate) on_boot_done: bool,
    /// When the schedule was switched on: the base of `every` before any run.
    pub(crate) active_since: Option<SystemTime>,
    /// Monotonic start of the run in progress.
    pub(crate) run_started: Option<Instant>,
}

/// Pending work on a unit that waits for its turn in dependency order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Job {
    Start,
    Stop,
    /// Stop, then start.
    Restart,
}

/// Where a unit's processes are. The main process lives only inside its group (cgroup or
/// process group), so there is no main without a group to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Phase {
    /// Nothing of the unit runs (its strays aside: see `UnitRecord::strays`).
    Idle,
    /// `Spawn` sent, no `Spawned`/`SpawnFailed` yet; or its `exec_start_pre` hooks run
    /// (see `UnitRecord::hook`) and the `Spawn` follows them.
    Spawning,
    /// The main process lives; `stop`: it is being stopped, and why.
    Main { stop: Option<Stopping> },
    /// The main process is dead; something of its group may be left (until `Empty`).
    Leftovers,
}

/// Why a live main process is on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Stopping {
    /// A stop or restart sent the stop signal, or the unit announced `STOPPING=1`.
    Expected,
    /// The core stops it on its own: it is broken.
    Fault(Fault),
}

/// One unit as the core sees it. Read-only outside the core.
#[derive(Debug, Clone)]
pub struct UnitRecord {
    pub name: String,
    /// The last good definition (`None` only while the unit has never parsed: `invalid`).
    pub def: Option<Arc<Unit>>,
    /// The file's current error, if it does not parse now.
    pub error: Option<String>,
    pub state: State,
    pub pid: Option<i32>,
    /// Automatic restarts so far.
    pub restarts: u64,
    /// When the unit entered `state`.
    pub since: SystemTime,
    pub last_exit: Option<LastExit>,
    /// Up per `[ready]`.
    pub ready: bool,
    /// Between `RELOADING=1` and `READY=1` (while `running`; `ready` is false meanwhile).
    pub reloading: bool,
    /// The last touch of the heartbeat file.
    pub last_beat: Option<SystemTime>,
    /// Why the unit is in its state when no exit says it (e.g. "required unit db failed").
    pub note: Option<String>,
    /// `Some` for timer units.
    pub timer: Option<TimerStatus>,
    /// Processes that escaped the unit's process group (a unit without a cgroup: a `setsid`
    /// daemon), found and killed at its stop and not gone yet. The unit is not gone (not
    /// `stopped`, not started again) while any is left.
    pub strays: Vec<i32>,
    /// The hook command that runs now (`exec_start_pre`...). The unit is not gone while one runs.
    pub hook: Option<super::HookRun>,

    /// The definition the current process was started with.
    pub(crate) run_def: Option<Arc<Unit>>,
    /// The unit should be up (started by the directory or a command).
    pub(crate) want_up: bool,
    pub(crate) job: Option<Job>,
    pub(crate) phase: Phase,
    /// Monotonic time of `Spawned`, for the threshold.
    pub(crate) started: Option<Instant>,
    /// The last backoff delay of a run of instant deaths.
    pub(crate) backoff: Option<Duration>,
    /// Backoff over (or zero): spawn as soon as the unit is empty.
    pub(crate) restart_due: bool,
    /// Deadlines armed and not yet fired or disarmed (bit per kind).
    pub(crate) armed: u16,
    /// Its file is gone: forget it once stopped.
    pub(crate) removed: bool,
    /// The wall time the armed `TimerRun` stands for.
    pub(crate) timer_at: Option<SystemTime>,
    /// The `calendar` occurrence pending when the run was planned (whether or not it is the
    /// earliest): a clock set past it makes a run due at once.
    pub(crate) cal_at: Option<SystemTime>,
    /// A timer run came due while a unit it is ordered after was being started: it runs
    /// once they are up (as a systemd timer's service waits for its After=/Requires=).
    pub(crate) run_waiting: bool,
    /// Indices of units this one is ordered after (`after` and `requires`), earlier in order.
    pub(crate) deps: Vec<usize>,
    /// Indices of the units it requires (a subset of `deps`).
    pub(crate) requires: Vec<usize>,
    /// Indices of units ordered after this one.
    pub(crate) dependents: Vec<usize>,
    /// Indices of units that require this one.
    pub(crate) req_dependents: Vec<usize>,
    /// Why it does not start though wanted (`None`: nothing holds it).
    pub held: Option<Held>,
    /// Failed starts in a row (deaths before up), for `[restart] max_failures`.
    pub failed_starts: u32,
    /// How far the current run got towards up.
    pub(crate) start: StartPhase,
    /// Transitions (from, to, when) since the core last turned them into changes; `from`
    /// is `None` for a new record. See `change.rs`.
    pub(crate) transitions: Vec<(Option<State>, State, SystemTime)>,
}

fn bit(kind: DeadlineKind) -> u16 {
    1 << (kind as u8)
}

impl UnitRecord {
    pub(crate) fn new(
        name: String,
        def: Option<Arc<Unit>>,
        error: Option<String>,
        now: SystemTime,
    ) -> Self {
        let state = if def.is_some() {
            State::Stopped
        } else {
            State::Invalid
        };
        let timer = def
            .as_ref()
            .and_then(|d| d.timer.as_ref())
            .map(|_| TimerStatus::default());
        UnitRecord {
            name,
            def,
            error,
            state,
            pid: None,
            restarts: 0,
            since: now,
            last_exit: None,
            ready: false,
            reloading: false,
            last_beat: None,
            note: None,
            timer,
            strays: Vec::new(),
            hook: None,
            run_def: None,
            want_up: false,
            job: None,
            phase: Phase::Idle,
            started: None,
            backoff: None,
            restart_due: false,
            armed: 0,
            removed: false,
            timer_at: None,
            cal_at: None,
            run_waiting: false,
            deps: Vec::new(),
            requires: Vec::new(),
            dependents: Vec::new(),
            req_dependents: Vec::new(),
            held: None,
            failed_starts: 0,
            start: StartPhase::Pending,
            transitions: vec![(None, state, now)],
        }
    }

    /// Nothing of the unit runs or is being started: no main process, nothing in its
    /// cgroup / process group, no stray that escaped the group.
    pub fn is_gone(&self) -> bool {
        self.phase == Phase::Idle && self.strays.is_empty() && self.hook.is_none()
    }

    /// The main process lives.
    pub(crate) fn has_main(&self) -> bool {
        matches!(self.phase, Phase::Main { .. })
    }

    /// The main process lives and nothing stops it yet.
    pub(crate) fn main_unstopped(&self) -> bool {
        self.phase == Phase::Main { stop: None }
    }

    /// A timer unit (has `[timer]`).
    pub fn is_timer(&self) -> bool {
        self.def.as_ref().is_some_and(|d| d.timer.is_some())
    }

    /// Up: running and ready.
    pub fn is_up(&self) -> bool {
        self.state == State::Running && self.ready
    }

    pub(crate) fn is_armed(&self, kind: DeadlineKind) -> bool {
        self.armed & bit(kind) != 0
    }

    pub(crate) fn set_armed(&mut self, kind: DeadlineKind, on: bool) {
        if on {
            self.armed |= bit(kind);
        } else {
            self.armed &= !bit(kind);
        }
    }

    /// The definition that governs the running process (else the current one).
    pub(crate) fn active_def(&self) -> Option<&Arc<Unit>> {
        self.run_def.as_ref().or(self.def.as_ref())
    }

    pub(crate) fn set_state(&mut self, state: State, now: SystemTime) {
        if self.state != state {
            self.transitions.push((Some(self.state), state, now));
            self.state = state;
            self.since = now;
        }
    }
}

//! The supervisor core: every unit's lifecycle as pure state machines.
//!
//! No I/O, no clock, no kernel: the event loop feeds [`Input`]s with the time `now`,
//! and carries out the [`Effect`]s that come back, feeding their results back as inputs
//! (`Spawned`, `SpawnFailed`, `Exited`, `Empty`, `Deadline`). Every rule of restarts,
//! backoff, dependencies, stops, heartbeats and timers lives here and is tested with a
//! fake clock.
//!
//! # The contract with the event loop
//!
//! - [`Supervisor::handle`] is the only way state changes; carry out the returned effects
//!   in order, feeding results back as new inputs (`Spawn` -> `Spawned`/`SpawnFailed`).
//! - `[ready] type = "started"`: the core counts the unit up at `Spawned` (with `[ready]
//!   settle`, at its `Settle` deadline); send [`Input::Ready`] only for `notify`, `tcp` and
//!   `file` (with a settle, such a unit is up once both came).
//! - `SpawnFailed` means nothing of the attempt is left (the loop reaped its child): no
//!   `Exited` and no `Empty` follow it.
//! - `Exited` once per `Spawned`. Answer every `KillAll` with `Empty` as soon as the unit's
//!   cgroup / process group is empty (at once if it already is); for a unit without a
//!   cgroup, also with `Strays` (before `Empty`), and again whenever that set changes. `Empty` is only believed
//!   once the main process is known dead; the core asks again (a `KillAll` right after each
//!   `Exited`), so an `Empty` that came before the exit costs nothing.
//! - `Arm` replaces the (unit, kind) deadline; `Disarm` cancels it. A deadline delivered
//!   after it was disarmed or re-armed is ignored, so the loop need not be exact.
//! - `Exit` comes once, when shutdown (or an essential unit's failure) has stopped all.
//! - `RELOADING=1` (send [`Input::Reloading`]): a running unit stays `running` with
//!   `ready` false (the only time a running service is not ready; `status` shows it as
//!   reloading) until `READY=1` ends it. Nothing is done to its dependents; one starting
//!   meanwhile waits for the reload to end. A reload not over by `[ready] timeout` ends
//!   anyway, as systemd does: the unit counts as up again (logged). Ignored unless
//!   running and ready.
//! - `STOPPING=1` (send [`Input::Stopping`]): the unit (starting or running) goes
//!   `stopping` at once, not ready; no signal is sent, but `[stop] timeout` holds (then
//!   everything is killed). Its exit is expected: `last_exit.reason` is `stopped`, and
//!   then the restart policy applies as to any exit (so `policy = "always"` starts it
//!   again, `on-failure` not after a success code; a life shorter than `threshold` still
//!   counts as an instant death, so a program that quits at once cannot spin). A
//!   `stop`/`restart` meanwhile sends no second signal and waits for its exit.
//! - A panic while carrying out an effect: go on with the effects after it, and send
//!   [`Input::EffectFailed`] (a `Spawn` that panicked counts as a failed start, once the
//!   loop has ended what it may have forked).
//! - `EXTEND_TIMEOUT_USEC=`: send [`Input::ExtendTimeout`]; the core re-arms the deadline.
//! - Timer runs are planned in wall-clock time and armed as monotonic instants; when the
//!   wall clock is set (timerfd `TFD_TIMER_CANCEL_ON_SET`), send [`Input::ClockChanged`]
//!   and every waiting timer is planned again (a `calendar` run the clock was set past runs
//!   at once, once; `on_boot` keeps counting in monotonic time).

use std::time::{Duration, Instant, SystemTime};

mod calendar;
mod change;
pub mod conditions;
pub mod hooks;
mod record;
mod start;
mod supervisor;
#[cfg(test)]
mod tests;
pub mod unmount;
mod view;

pub use calendar::next_calendar;
pub use change::Change;
pub use conditions::Verdict;
pub use hooks::{HookEnd, HookKind, HookRun};
pub use record::{LastExit, RunResult, TimerStatus, UnitRecord};
pub use start::Held;
pub use supervisor::{is_default, CoreSnap, MonoClock, Supervisor, TimerSnap, UnitSnap, Want};
pub use view::{rfc3339, run_result_text};

/// The time, as the event loop read it once for this input.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Monotonic: for every deadline.
    pub mono: Instant,
    /// Wall clock: for `since`, calendar timers and persistence.
    pub wall: SystemTime,
}

/// colony-init's defaults for what a unit does not set (`--threshold` etc.).
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub threshold: Duration,
    pub kill_timeout: Duration,
    pub min_restart_delay: Duration,
    pub max_restart_delay: Duration,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            threshold: Duration::from_secs(1),
            kill_timeout: Duration::from_secs(5),
            min_restart_delay: Duration::from_secs(1),
            max_restart_delay: Duration::from_secs(3600),
        }
    }
}

/// How a process ended, as waitid reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

/// `exited with code 1`, `killed by SIGTERM`: log lines read as sentences.
impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            ExitStatus::Code(c) => write!(f, "exited with code {c}"),
            ExitStatus::Signal(s) => match units::values::signal_name(s) {
                Some(name) => write!(f, "killed by {name}"),
                None => write!(f, "killed by signal {s}"),
            },
        }
    }
}

/// A verdict that a running unit is broken: the core stops it on its own (and starts it
/// again, or ends the timer run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Fault {
    /// Not ready by `[ready] timeout`.
    ReadyTimeout,
    /// `[ready] watchdog` missed, or `WATCHDOG=trigger`.
    Watchdog,
    /// `[heartbeat]` missed.
    Heartbeat,
    /// `max_bad` bad health checks in a row.
    Health,
    /// A timer run past its `[timer] timeout`.
    Timeout,
    /// A hook failed (`exec_start_post`: the start failed).
    Hook(HookKind),
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        ExitReason::from(self).as_str()
    }

    /// A fault restarts the unit whatever its restart policy says.
    fn forces_restart(self) -> bool {
        matches!(self, Fault::Heartbeat | Fault::Watchdog | Fault::Health)
    }
}

/// Why a unit's last process ended, when more is known than its status (`last_exit.reason`
/// in `status --json`: the strings of [`ExitReason::as_str`] are a contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExitReason {
    /// It never ran: the spawn failed.
    Exec,
    /// The cgroup saw an OOM kill.
    Oom,
    /// A stop: asked for, or announced by the unit (`STOPPING=1`).
    Stopped,
    ReadyTimeout,
    Watchdog,
    Heartbeat,
    Health,
    Timeout,
    /// A hook failed: `exec_start_pre` (the main process never ran) or `exec_start_post`.
    Hook(HookKind),
    /// An `assert_*` did not hold: the start failed before anything ran.
    Assert,
}

impl ExitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Exec => "exec",
            ExitReason::Oom => "oom",
            ExitReason::Stopped => "stopped",
            ExitReason::ReadyTimeout => "ready_timeout",
            ExitReason::Watchdog => "watchdog",
            ExitReason::Heartbeat => "heartbeat",
            ExitReason::Health => "health",
            ExitReason::Timeout => "timeout",
            ExitReason::Hook(k) => k.key(),
            ExitReason::Assert => "assert",
        }
    }
}

impl From<Fault> for ExitReason {
    fn from(f: Fault) -> Self {
        match f {
            Fault::ReadyTimeout => ExitReason::ReadyTimeout,
            Fault::Watchdog => ExitReason::Watchdog,
            Fault::Heartbeat => ExitReason::Heartbeat,
            Fault::Health => ExitReason::Health,
            Fault::Timeout => ExitReason::Timeout,
            Fault::Hook(k) => ExitReason::Hook(k),
        }
    }
}

impl std::fmt::Display for ExitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Deadlines the core asks the loop to arm. At most one per (unit, kind): arming again
/// replaces, and the loop feeds [`Input::Deadline`] back when it passes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum DeadlineKind {
    /// Backoff over: start again.
    Restart,
    /// Stop signal sent this long ago: SIGKILL the unit.
    StopTimeout,
    /// `[ready] timeout`.
    ReadyTimeout,
    /// `[ready] settle`: the unit has lived long enough to be up.
    Settle,
    /// `[ready] watchdog`.
    Watchdog,
    /// `[heartbeat]`: grace after start, then period after each beat.
    Heartbeat,
    /// The next run of a timer unit.
    TimerRun,
    /// `[timer] timeout` of the current run.
    TimerTimeout,
    /// The hook command that runs now took too long (the start timeout for
    /// `exec_start_pre`/`exec_start_post`/`exec_reload`; `exec_stop` is under `StopTimeout`).
    Hook,
}

/// A user's or the directory's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Start(String),
    Stop(String),
    Restart(String),
    RestartAll,
    /// `colonyctl reload NAME`: run its `exec_reload`.
    Reload(String),
}

/// Facts the core reacts to.
#[derive(Debug, Clone)]
pub enum Input {
    /// The units directory as it now is (full set; the core diffs against what it has).
    /// `Err` carries the error text of a file that does not parse.
    Load(Vec<(String, Result<units::model::Unit, String>)>),
    Command(Command),
    /// The loop started the unit's process.
    Spawned {
        unit: String,
        pid: i32,
    },
    /// The loop could not start it (exec failure, cgroup failure...): text for status.
    SpawnFailed {
        unit: String,
        error: String,
    },
    /// The unit's main process ended. `oom`: the cgroup saw an OOM kill meanwhile.
    Exited {
        unit: String,
        status: ExitStatus,
        oom: bool,
    },
    /// The unit's cgroup is empty / its process group is gone.
    Empty {
        unit: String,
    },
    /// A unit without a cgroup: the processes attributed to it outside its process group
    /// (escaped with `setsid`) that are still alive, as the loop now sees them. Sent after
    /// each `KillAll` of such a unit and as they die; empty once none is left. The unit is
    /// gone only when it is empty too.
    Strays {
        unit: String,
        pids: Vec<i32>,
    },
    Deadline {
        unit: String,
        kind: DeadlineKind,
    },
    /// The heartbeat file was touched.
    Beat {
        unit: String,
    },
    /// The unit is up per `[ready]`.
    Ready {
        unit: String,
    },
    /// Stop everything in reverse dependency order, then [`Effect::Exit`].
    Shutdown,
    /// The time of a persistent timer unit's last run, read from STATE_DIR. Give it before
    /// the first `Load`: a run that was due between `last_run` and now happens at once.
    RestoreTimer {
        unit: String,
        last_run: SystemTime,
    },
    /// `WATCHDOG=1` from a notify unit: the watchdog deadline moves on.
    Watchdog {
        unit: String,
    },
    /// A verdict that the running unit is broken (`health` after `max_bad` bad checks,
    /// `watchdog` for `WATCHDOG=trigger`): stop it and start it again, with this reason.
    Fault {
        unit: String,
        reason: Fault,
    },
    /// The wall clock was set: plan every waiting timer unit again.
    ClockChanged,
    /// `MAINPID=N` from a notify unit: its main process is now N (for status).
    MainPid {
        unit: String,
        pid: i32,
    },
    /// `RELOADING=1` (`reloading: true`) from a running unit, and the `READY=1` that ends
    /// the reload (`false`; the loop may send it whenever `READY=1` comes).
    Reloading {
        unit: String,
        reloading: bool,
    },
    /// `STOPPING=1`: the unit announced that it is stopping on its own.
    Stopping {
        unit: String,
    },
    /// `EXTEND_TIMEOUT_USEC=`: the ready or stop timeout armed now (if any) passes `by` from
    /// now instead (sooner or later), as in systemd.
    ExtendTimeout {
        unit: String,
        by: Duration,
    },
    /// Carrying out this unit's effect panicked (caught by the loop, which went on with the
    /// effects after it). A `Spawn` counts as a failed start, as `SpawnFailed` would: the
    /// loop has cleared what it could of the attempt. Other kinds need nothing: what they
    /// would have done is covered by a deadline or asked again.
    EffectFailed {
        unit: String,
        effect: EffectKind,
    },
    /// The loop started the hook command of a `RunHook`.
    HookStarted {
        unit: String,
        pid: i32,
    },
    /// The hook command of a `RunHook` ended (or never started).
    HookEnded {
        unit: String,
        end: HookEnd,
    },
    /// The answer to `CheckConditions`.
    Conditions {
        unit: String,
        verdict: Verdict,
    },
}

/// Which [`Effect`] (without its data), for [`Input::EffectFailed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EffectKind {
    Spawn,
    Signal,
    KillAll,
    Arm,
    Disarm,
    Forget,
    PersistTimerRun,
    Exit,
    RunHook,
    KillHook,
    CheckConditions,
}

impl Effect {
    pub fn kind(&self) -> EffectKind {
        match self {
            Effect::Spawn { .. } => EffectKind::Spawn,
            Effect::Signal { .. } => EffectKind::Signal,
            Effect::KillAll { .. } => EffectKind::KillAll,
            Effect::Arm { .. } => EffectKind::Arm,
            Effect::Disarm { .. } => EffectKind::Disarm,
            Effect::Forget { .. } => EffectKind::Forget,
            Effect::PersistTimerRun { .. } => EffectKind::PersistTimerRun,
            Effect::Exit { .. } => EffectKind::Exit,
            Effect::RunHook { .. } => EffectKind::RunHook,
            Effect::KillHook { .. } => EffectKind::KillHook,
            Effect::CheckConditions { .. } => EffectKind::CheckConditions,
        }
    }

    /// The unit it is for (`None` for `Exit`).
    pub fn unit(&self) -> Option<&str> {
        match self {
            Effect::Spawn { unit }
            | Effect::Signal { unit, .. }
            | Effect::KillAll { unit }
            | Effect::Arm { unit, .. }
            | Effect::Disarm { unit, .. }
            | Effect::Forget { unit }
            | Effect::PersistTimerRun { unit, .. }
            | Effect::RunHook { unit, .. }
            | Effect::KillHook { unit }
            | Effect::CheckConditions { unit } => Some(unit),
            Effect::Exit { .. } => None,
        }
    }
}

/// Orders for the loop.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Start the unit's process (the loop answers with Spawned or SpawnFailed).
    Spawn {
        unit: String,
    },
    /// Send this signal to the main process (through its pidfd).
    Signal {
        unit: String,
        signal: i32,
    },
    /// SIGKILL everything in the unit (cgroup.kill, or the process group and its strays).
    KillAll {
        unit: String,
    },
    Arm {
        unit: String,
        kind: DeadlineKind,
        at: Instant,
    },
    Disarm {
        unit: String,
        kind: DeadlineKind,
    },
    /// The unit is gone from the directory and stopped: drop its cgroup, watches, logs.
    Forget {
        unit: String,
    },
    /// Persist the time of a timer unit's run (`persistent = true`).
    PersistTimerRun {
        unit: String,
        at: SystemTime,
    },
    /// colony-init should end with this code (shutdown done, or an essential unit failed).
    Exit {
        code: i32,
    },
    /// Start line `index` of the unit's `kind` hook list (of the definition it runs with),
    /// in its cgroup with its identity, sandbox and log; answer `HookStarted` then
    /// `HookEnded` (or `HookEnded` alone if it cannot start).
    RunHook {
        unit: String,
        kind: HookKind,
        index: usize,
    },
    /// SIGKILL the hook command that runs now (its timeout passed).
    KillHook {
        unit: String,
    },
    /// Check the conditions and asserts of the definition the unit is starting with;
    /// answer `Conditions` at once.
    CheckConditions {
        unit: String,
    },
}

/// A unit's lifecycle state, as `status` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum State {
    Stopped,
    Starting,
    Running,
    Stopping,
    Backoff,
    Exited,
    Failed,
    Waiting,
    Invalid,
    /// A condition (`condition_*`) did not hold when it was started: not run, not failed.
    Skipped,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Stopped => "stopped",
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Backoff => "backoff",
            State::Exited => "exited",
            State::Failed => "failed",
            State::Waiting => "waiting",
            State::Invalid => "invalid",
            State::Skipped => "skipped",
        }
    }
}

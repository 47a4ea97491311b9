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
//! - `[ready] type = "started"`: the core counts the unit up at `Spawned`; send
//!   [`Input::Ready`] only for `notify`, `tcp` and `file`.
//! - `SpawnFailed` means nothing of the attempt is left (the loop reaped its child): no
//!   `Exited` and no `Empty` follow it.
//! - `Exited` once per `Spawned`. Answer every `KillAll` with `Empty` as soon as the unit's
//!   cgroup / process group is empty (at once if it already is). `Empty` is only believed
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
//! - Timer runs are planned in wall-clock time and armed as monotonic instants; when the
//!   wall clock is set (timerfd `TFD_TIMER_CANCEL_ON_SET`), send [`Input::ClockChanged`]
//!   and every waiting timer is planned again (a `calendar` run the clock was set past runs
//!   at once, once; `on_boot` keeps counting in monotonic time).

use std::time::{Duration, Instant, SystemTime};

mod calendar;
mod record;
mod supervisor;
#[cfg(test)]
mod tests;
mod view;

pub use calendar::next_calendar;
pub use record::{LastExit, RunResult, TimerStatus, UnitRecord};
pub use supervisor::{Supervisor, Want};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

/// Deadlines the core asks the loop to arm. At most one per (unit, kind): arming again
/// replaces, and the loop feeds [`Input::Deadline`] back when it passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeadlineKind {
    /// Backoff over: start again.
    Restart,
    /// Stop signal sent this long ago: SIGKILL the unit.
    StopTimeout,
    /// `[ready] timeout`.
    ReadyTimeout,
    /// `[ready] watchdog`.
    Watchdog,
    /// `[heartbeat]`: grace after start, then period after each beat.
    Heartbeat,
    /// The next run of a timer unit.
    TimerRun,
    /// `[timer] timeout` of the current run.
    TimerTimeout,
}

/// A user's or the directory's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Start(String),
    Stop(String),
    Restart(String),
    RestartAll,
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
    /// Nothing of the unit is left (cgroup empty / process group gone).
    Empty {
        unit: String,
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
        reason: &'static str,
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
    /// SIGKILL everything in the unit (cgroup.kill, or the process group).
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
}

/// A unit's lifecycle state, as `status` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        }
    }
}

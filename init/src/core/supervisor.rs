//! The supervisor: every unit's state machine, dependency order, and shutdown. This file
//! holds its state, its queries and [`Supervisor::handle`]; the rules are in `supervisor/`,
//! one file per concern: `load`, `order` (jobs in dependency order), `commands`,
//! `process` (process facts and deadlines), `timers`.
//!
//! Model: each unit has a wish (`want_up`), maybe a pending [`Job`] that waits for its turn
//! in dependency order, and facts about its process (its [`Phase`]). Inputs
//! change facts; [`Supervisor::progress`] then moves every job that may move. Indices into
//! `units` follow a topological order of `after`/`requires` (cycles broken by name), so an
//! edge only ever points to an earlier unit and nothing can wait on itself.
//!
//! Decisions the unit format (colony.unit(5)) leaves open:
//! - Backoff (NColony): a death sooner than `threshold` after `Spawned` (or a failed spawn,
//!   or a `ready_timeout`) is instant, and so is any death within 100ms whatever the
//!   threshold: the delay is `delay_min`, then doubles up to `delay_max`; from the second
//!   instant death on it is at least 100ms. So `delay_min = "0s"` (with any `threshold` or
//!   `delay_max`, 0 too) restarts a crash at once but never spins: two restarts in a row are
//!   at least 100ms apart, a unit restarts at most 20 times a second. A longer life restarts
//!   after `delay_min` and starts the doubling afresh. `restarts` counts automatic
//!   restarts only (not `restart` commands).
//! - `after`/`requires` order starts (automatic restarts too): a unit starts once each of
//!   them that is being started
//!   (a start pending, starting, or in backoff) is up (running and ready, `exited`, or a
//!   waiting timer unit). A required unit that is stopped, failed or invalid fails the start
//!   (`failed`, with a note). One that does not exist (or is itself held so) holds the
//!   start ([`Held`]): the unit stays `stopped`, still wanted, and starts once the unit
//!   appears; so are the units that required a unit whose file is removed (they stop
//!   first). `after` a unit that does not exist orders nothing. A required unit that fails
//!   for good (no restart) or is stopped stops its dependents (they stop first); one in
//!   backoff leaves them running. A `restart` of a unit restarts the running units that
//!   require it.
//! - A death before up (before the ready condition, or `[ready] settle` after `Spawned`),
//!   a failed spawn or a `ready_timeout` is a failed start; `restart.max_failures` of them
//!   in a row make the unit `failed`, left alone until a start by hand (which, like any
//!   restart command, counts afresh). Coming up resets the count.
//! - Heartbeat, watchdog and `Fault` restarts happen whatever the policy, with the delay
//!   the unit's life earned (so no penalty for a long-lived unit).
//! - Timer units ignore the restart section; a run that comes due while a unit it is
//!   ordered after (`after`/`requires`) is being started waits until that unit is up, and
//!   one due while a required unit is down is skipped (counted, with a note). `every`
//!   counts from the previous start (or from when the schedule began), `on_boot` from the
//!   first input colony-init gave the core, once, and only if still ahead. `start` runs one
//!   now and switches the schedule on (even for `enabled = false`).
//! - An essential unit that ends `failed` shuts everything down; exit code: its code (1 if
//!   it was 0 or it never ran), 128+N for signal N.

mod commands;
mod conditions;
mod hooks;
mod load;
mod order;
mod process;
mod snapshot;
mod timers;

pub use snapshot::{is_default, CoreSnap, MonoClock, TimerSnap, UnitSnap};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use units::model::{ReadyType, RestartPolicy, Unit};
use units::parse::DEFAULT_READY_TIMEOUT;

use super::calendar::{every_next, later, mono_for, next_calendar};
use super::record::{Job, LastExit, Phase, RunResult, Stopping, UnitRecord};
use super::start::{Held, StartPhase};
use super::{
    Change, Command, DeadlineKind, Defaults, Effect, EffectKind, ExitReason, ExitStatus, Fault,
    HookEnd, HookKind, HookRun, Input, Now, State, Verdict,
};

/// The least delay of a second instant death in a row, so `delay_min = "0s"` restarts a
/// crash at once but never spins on a program that cannot start. A life shorter than this is
/// instant whatever `threshold` says (`threshold = "0s"` would otherwise let a crash loop
/// restart without any delay).
const MIN_REPEAT_DELAY: Duration = Duration::from_millis(100);

/// What a waiting `start`/`stop` request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Want {
    Up,
    Down,
}

type CalendarFn = Box<dyn Fn(&units::model::Calendar, SystemTime) -> Option<SystemTime>>;

/// Every unit's lifecycle. The only way in is [`Supervisor::handle`].
pub struct Supervisor {
    defaults: Defaults,
    units: Vec<UnitRecord>,
    index: HashMap<String, usize>,
    /// The time of the first input: colony-init's start, for `on_boot`.
    boot: Option<Now>,
    loaded: bool,
    shutting: bool,
    exit_code: i32,
    exit_sent: bool,
    /// Last runs of persistent timers, from STATE_DIR.
    restored: HashMap<String, SystemTime>,
    calendar: CalendarFn,
    /// State changes of the last input (see [`Supervisor::changes`]).
    changes: Vec<Change>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("units", &self.units.len())
            .field("shutting", &self.shutting)
            .finish()
    }
}

impl Supervisor {
    pub fn new(defaults: Defaults) -> Self {
        Self::with_calendar(defaults, |cal, after| {
            next_calendar(cal, after, &chrono::Local)
        })
    }

    /// As `new`, with the function that finds a calendar's next occurrence (tests use a
    /// fixed time zone here; `new` uses the local one).
    pub fn with_calendar(
        defaults: Defaults,
        calendar: impl Fn(&units::model::Calendar, SystemTime) -> Option<SystemTime> + 'static,
    ) -> Self {
        Supervisor {
            defaults,
            units: Vec::new(),
            index: HashMap::new(),
            boot: None,
            loaded: false,
            shutting: false,
            exit_code: 0,
            exit_sent: false,
            restored: HashMap::new(),
            calendar: Box::new(calendar),
            changes: Vec::new(),
        }
    }

    /// Every unit, in dependency order (a unit comes after what it is ordered after).
    pub fn units(&self) -> impl Iterator<Item = &UnitRecord> {
        self.units.iter()
    }

    pub fn get(&self, name: &str) -> Option<&UnitRecord> {
        self.index.get(name).and_then(|&i| self.units.get(i))
    }

    /// True once `Shutdown` (or an essential unit's failure) started the end.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting
    }

    /// `NAME`, `NAME.unit` or `@TAG` to unit names.
    pub fn resolve(&self, target: &str) -> Result<Vec<String>, String> {
        if let Some(tag) = target.strip_prefix('@') {
            let mut names: Vec<String> = self
                .units
                .iter()
                .filter(|u| {
                    u.def
                        .as_ref()
                        .is_some_and(|d| d.tags.iter().any(|t| t == tag))
                })
                .map(|u| u.name.clone())
                .collect();
            if names.is_empty() {
                return Err(format!("no unit has the tag @{tag}"));
            }
            names.sort();
            return Ok(names);
        }
        if self.index.contains_key(target) {
            return Ok(vec![target.to_string()]);
        }
        if let Some(base) = target.strip_suffix(".unit") {
            if self.index.contains_key(base) {
                return Ok(vec![base.to_string()]);
            }
        }
        Err(format!("no such unit: {target}"))
    }

    /// For a waiting `start`/`stop`: `Some(Ok)` reached, `Some(Err)` cannot be reached,
    /// `None` still under way. Up is reached by a running and ready service, an `exited`
    /// one (ended as it should), or a timer unit that is scheduled or running.
    pub fn wait_result(&self, name: &str, want: Want) -> Option<Result<(), String>> {
        let Some(u) = self.get(name) else {
            return Some(match want {
                Want::Up => Err(format!("no such unit: {name}")),
                Want::Down => Ok(()),
            });
        };
        match want {
            Want::Up => self.wait_up(u),
            Want::Down => wait_down(u),
        }
    }

    fn wait_up(&self, u: &UnitRecord) -> Option<Result<(), String>> {
        if u.def.is_none() {
            return Some(Err(u.error.clone().unwrap_or_else(|| "invalid".into())));
        }
        if self.shutting {
            return Some(Err("colony-init is shutting down".into()));
        }
        // A start by hand counts failed starts from zero: one is the answer, even when the
        // unit is already being started again (no waiting through backoff).
        if u.failed_starts > 0 && !u.is_up() && u.state != State::Exited && !u.is_timer() {
            return Some(Err(describe_down(u)));
        }
        if matches!(u.job, Some(Job::Start) | Some(Job::Restart)) || u.phase == Phase::Spawning {
            return None;
        }
        if u.is_timer() {
            return match u.state {
                State::Running | State::Waiting | State::Starting => Some(Ok(())),
                State::Stopping if u.want_up => None,
                _ => Some(Err(describe_down(u))),
            };
        }
        match u.state {
            State::Running if u.ready => Some(Ok(())),
            State::Exited | State::Skipped => Some(Ok(())),
            State::Starting | State::Running => None,
            State::Stopping if u.want_up => None,
            _ => Some(Err(describe_down(u))),
        }
    }

    // ----- the state machine -----

    /// Apply one input at time `now`; the effects are for the loop to carry out in order.
    /// The state changes it made are then in [`changes`](Self::changes).
    pub fn handle(&mut self, input: Input, now: Now) -> Vec<Effect> {
        self.changes.clear();
        let fx = self.handle_input(input, now);
        for u in &mut self.units {
            if !u.transitions.is_empty() {
                Change::drain(u, &mut self.changes);
            }
        }
        fx
    }

    /// The state changes of the last input, oldest first per unit (the event stream's
    /// source). Replaced by the next input's.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    fn handle_input(&mut self, input: Input, now: Now) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.boot.is_none() {
            self.boot = Some(now);
        }
        match input {
            Input::Load(set) => self.load(set, now, &mut fx),
            Input::Command(c) => self.command(c, now, &mut fx),
            Input::Spawned { unit, pid } => {
                if let Some(i) = self.idx(&unit) {
                    self.on_spawned(i, pid, now, &mut fx);
                }
            }
            Input::SpawnFailed { unit, error } => {
                if let Some(i) = self.idx(&unit) {
                    self.on_spawn_failed(i, error, now, &mut fx);
                }
            }
            Input::Exited { unit, status, oom } => {
                if let Some(i) = self.idx(&unit) {
                    self.on_exited(i, status, oom, now, &mut fx);
                }
            }
            Input::Empty { unit } => {
                if let Some(i) = self.idx(&unit) {
                    self.on_empty(i, now, &mut fx);
                }
            }
            Input::Strays { unit, pids } => {
                if let Some(i) = self.idx(&unit) {
                    self.on_strays(i, pids, now, &mut fx);
                }
            }
            Input::Deadline { unit, kind } => {
                if let Some(i) = self.idx(&unit) {
                    self.on_deadline(i, kind, now, &mut fx);
                }
            }
            Input::Beat { unit } => {
                // Frequent, and never moves a job: skip the rest.
                if let Some(i) = self.idx(&unit) {
                    self.on_beat(i, now, &mut fx);
                }
                return fx;
            }
            Input::Ready { unit } => {
                if let Some(i) = self.idx(&unit) {
                    self.on_ready(i, now, &mut fx);
                }
            }
            Input::Watchdog { unit } => {
                if let Some(i) = self.idx(&unit) {
                    self.on_watchdog_ping(i, now, &mut fx);
                }
                return fx;
            }
            Input::Fault { unit, reason } => {
                if let Some(i) = self.idx(&unit) {
                    self.fault(i, reason, now, &mut fx);
                }
            }
            Input::RestoreTimer { unit, last_run } => {
                self.restored.insert(unit.clone(), last_run);
                if let Some(i) = self.idx(&unit) {
                    self.apply_restore(i, now, &mut fx);
                }
            }
            Input::Shutdown => self.shutdown(0, now),
            Input::MainPid { unit, pid } => {
                if let Some(u) = self.idx(&unit).and_then(|i| self.units.get_mut(i)) {
                    if u.has_main() {
                        u.pid = Some(pid);
                    }
                }
                return fx;
            }
            Input::Reloading { unit, reloading } => {
                if let Some(i) = self.idx(&unit) {
                    self.on_reloading(i, reloading, now, &mut fx);
                }
            }
            Input::Stopping { unit } => {
                if let Some(i) = self.idx(&unit) {
                    self.on_stopping(i, now, &mut fx);
                }
            }
            Input::ClockChanged => self.clock_changed(now, &mut fx),
            Input::ExtendTimeout { unit, by } => {
                if let Some(i) = self.idx(&unit) {
                    self.extend_timeout(i, by, now, &mut fx);
                }
                return fx;
            }
            Input::EffectFailed { unit, effect } => match (self.idx(&unit), effect) {
                (Some(i), EffectKind::Spawn) => {
                    let error = "colony-init failed while starting it (internal error)";
                    self.on_spawn_failed(i, error.to_string(), now, &mut fx);
                }
                (Some(i), EffectKind::CheckConditions) => {
                    let v =
                        Verdict::Fail("colony-init failed checking them (internal error)".into());
                    self.on_conditions(i, v, now, &mut fx);
                }
                (Some(i), EffectKind::RunHook) => {
                    let end = HookEnd::NotStarted("internal error".into());
                    self.on_hook_ended(i, end, now, &mut fx);
                }
                _ => {}
            },
            Input::HookStarted { unit, pid } => {
                if let Some(u) = self.idx(&unit).and_then(|i| self.units.get_mut(i)) {
                    if let Some(h) = u.hook.as_mut() {
                        h.pid = Some(pid);
                    }
                }
                return fx;
            }
            Input::Conditions { unit, verdict } => {
                if let Some(i) = self.idx(&unit) {
                    self.on_conditions(i, verdict, now, &mut fx);
                }
            }
            Input::HookEnded { unit, end } => {
                if let Some(i) = self.idx(&unit) {
                    self.on_hook_ended(i, end, now, &mut fx);
                }
            }
        }
        self.release_held();
        self.progress(now, &mut fx);
        self.forget_removed(now.wall, &mut fx);
        self.check_exit(&mut fx);
        fx
    }

    fn idx(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    fn arm(&mut self, i: usize, kind: DeadlineKind, at: std::time::Instant, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        u.set_armed(kind, true);
        fx.push(Effect::Arm {
            unit: u.name.clone(),
            kind,
            at,
        });
    }

    fn disarm(&mut self, i: usize, kind: DeadlineKind, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        if u.is_armed(kind) {
            u.set_armed(kind, false);
            fx.push(Effect::Disarm {
                unit: u.name.clone(),
                kind,
            });
        }
    }
}

const ALL_KINDS: [DeadlineKind; 9] = [
    DeadlineKind::Restart,
    DeadlineKind::StopTimeout,
    DeadlineKind::ReadyTimeout,
    DeadlineKind::Settle,
    DeadlineKind::Watchdog,
    DeadlineKind::Heartbeat,
    DeadlineKind::TimerRun,
    DeadlineKind::TimerTimeout,
    DeadlineKind::Hook,
];

#[derive(Debug, PartialEq, Eq)]
enum Check {
    Go,
    Wait,
    Fail(String),
    /// Cannot start until something appears (see [`Held`]); not a failure.
    Hold(Held),
}

fn name_of(recs: &[Option<UnitRecord>], i: usize) -> &str {
    recs.get(i)
        .and_then(|r| r.as_ref())
        .map_or("", |r| r.name.as_str())
}

fn wait_down(u: &UnitRecord) -> Option<Result<(), String>> {
    match u.job {
        Some(Job::Stop) => return None,
        Some(Job::Start) | Some(Job::Restart) => {
            return Some(Err(format!("{} is being started again", u.name)))
        }
        None => {}
    }
    if !u.is_gone() {
        return if u.want_up && u.state != State::Stopping {
            Some(Err(format!("{} was started again", u.name)))
        } else {
            None
        };
    }
    match u.state {
        State::Stopped | State::Exited | State::Failed | State::Invalid | State::Skipped => {
            Some(Ok(()))
        }
        State::Stopping => None,
        _ => Some(Err(format!("{} is {}", u.name, u.state.as_str()))),
    }
}

/// One line on why a unit is not up.
fn describe_down(u: &UnitRecord) -> String {
    let mut s = if u.failed_starts > 0 && u.state != State::Stopped {
        format!("{} failed to start (now {})", u.name, u.state.as_str())
    } else {
        format!("{} is {}", u.name, u.state.as_str())
    };
    if let Some(h) = &u.held {
        s.push_str(&format!(": {h}"));
    } else if let Some(n) = &u.note {
        s.push_str(": ");
        s.push_str(n);
    } else if let Some(e) = &u.last_exit {
        match e.status {
            Some(ExitStatus::Code(c)) => s.push_str(&format!(": exited with code {c}")),
            Some(ExitStatus::Signal(n)) => s.push_str(&format!(": killed by signal {n}")),
            None => s.push_str(": did not start"),
        }
        if let Some(r) = e.reason {
            s.push_str(&format!(" ({r})"));
        }
        if let Some(d) = &e.detail {
            s.push_str(&format!(": {d}"));
        }
    }
    s
}

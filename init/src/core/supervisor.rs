//! The supervisor: every unit's state machine, dependency order, and shutdown.
//!
//! Model: each unit has a wish (`want_up`), maybe a pending [`Job`] that waits for its turn
//! in dependency order, and facts about its process (`spawning`, `main`, `group`). Inputs
//! change facts; [`Supervisor::progress`] then moves every job that may move. Indices into
//! `units` follow a topological order of `after`/`requires` (cycles broken by name), so an
//! edge only ever points to an earlier unit and nothing can wait on itself.
//!
//! Decisions where SPEC.md leaves room:
//! - Backoff (NColony): a death sooner than `threshold` after `Spawned` (or a failed spawn,
//!   or a `ready_timeout`) is instant: the delay is `delay_min`, then doubles up to
//!   `delay_max`; from the second instant death on it is at least 100ms, so
//!   `delay_min = "0s"` restarts a crash at once but never spins. A longer life restarts
//!   after `delay_min` and starts the doubling afresh. `restarts` counts automatic
//!   restarts only (not `restart` commands).
//! - `after`/`requires` order starts (automatic restarts too): a unit starts once each of
//!   them that is being started
//!   (a start pending, starting, or in backoff) is up (running and ready, `exited`, or a
//!   waiting timer unit). A required unit that is stopped, failed or invalid fails the start
//!   (`failed`, with a note). A required unit that fails for good (no restart) or is stopped
//!   stops its dependents (they stop first); one in backoff leaves them running. A
//!   `restart` of a unit restarts the running units that require it.
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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use units::model::{ReadyType, RestartPolicy, Unit};

use super::calendar::{every_next, later, mono_for, next_calendar};
use super::record::{Job, LastExit, RunResult, UnitRecord};
use super::{Command, DeadlineKind, Defaults, Effect, ExitStatus, Input, Now, State};

/// `[ready] timeout` when a unit does not set it.
const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(90);
/// The least delay of a second instant death in a row, so `delay_min = "0s"` restarts a
/// crash at once but never spins on a program that cannot start.
const MIN_REPEAT_DELAY: Duration = Duration::from_millis(100);

/// What a waiting `start`/`stop` request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        if matches!(u.job, Some(Job::Start) | Some(Job::Restart)) || u.spawning {
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
            State::Exited => Some(Ok(())),
            State::Starting | State::Running => None,
            State::Stopping if u.want_up => None,
            _ => Some(Err(describe_down(u))),
        }
    }

    // ----- the state machine -----

    /// Apply one input at time `now`; the effects are for the loop to carry out in order.
    pub fn handle(&mut self, input: Input, now: Now) -> Vec<Effect> {
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
                    if u.main {
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
        }
        self.progress(now, &mut fx);
        self.forget_removed(&mut fx);
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

    // ----- Load -----

    fn load(&mut self, set: Vec<(String, Result<Unit, String>)>, now: Now, fx: &mut Vec<Effect>) {
        if self.shutting {
            return;
        }
        self.loaded = true;
        let mut seen = HashSet::new();
        let mut fresh = Vec::new();
        let mut changed = Vec::new();
        for (name, res) in set {
            if !seen.insert(name.clone()) {
                continue;
            }
            match (self.idx(&name), res) {
                (None, Ok(unit)) => {
                    self.push(UnitRecord::new(
                        name.clone(),
                        Some(Arc::new(unit)),
                        None,
                        now.wall,
                    ));
                    fresh.push(name);
                }
                (None, Err(e)) => {
                    tracing::warn!(unit = %name, error = %e, "unit file is invalid");
                    self.push(UnitRecord::new(name, None, Some(e), now.wall));
                }
                (Some(i), Err(e)) => {
                    tracing::warn!(unit = %name, error = %e, "unit file is invalid; keeping the last good definition");
                    let u = &mut self.units[i];
                    u.error = Some(e);
                    if u.removed && u.def.is_some() {
                        // Back in the directory, though broken: keep it on its last good definition.
                        u.removed = false;
                    }
                }
                (Some(i), Ok(unit)) => {
                    let u = &mut self.units[i];
                    u.error = None;
                    let was_removed = std::mem::replace(&mut u.removed, false);
                    match &u.def {
                        None => {
                            u.def = Some(Arc::new(unit));
                            u.timer = u
                                .def
                                .as_ref()
                                .and_then(|d| d.timer.as_ref())
                                .map(|_| Default::default());
                            u.set_state(State::Stopped, now.wall);
                            fresh.push(name);
                        }
                        Some(old) if **old == unit && !was_removed => {}
                        Some(old) => {
                            let was_enabled = old.enabled;
                            let was_timer = old.timer.is_some();
                            u.def = Some(Arc::new(unit));
                            let is_timer = u.def.as_ref().is_some_and(|d| d.timer.is_some());
                            if is_timer && u.timer.is_none() {
                                u.timer = Some(Default::default());
                            }
                            changed.push((name, was_enabled, was_timer, was_removed));
                        }
                    }
                }
            }
        }
        let gone: Vec<String> = self
            .units
            .iter()
            .filter(|u| !seen.contains(&u.name) && !u.removed)
            .map(|u| u.name.clone())
            .collect();
        self.rebuild();
        for name in gone {
            if let Some(i) = self.idx(&name) {
                self.units[i].removed = true;
                tracing::info!(unit = %name, "unit file removed: stopping it");
                self.cmd_stop(i, Some("removed".into()), &mut HashSet::new());
            }
        }
        for name in fresh {
            if let Some(i) = self.idx(&name) {
                if self.units[i].def.as_ref().is_some_and(|d| d.enabled) {
                    self.cmd_start(i, false, now, fx, &mut HashSet::new());
                }
            }
        }
        for (name, was_enabled, was_timer, was_removed) in changed {
            let Some(i) = self.idx(&name) else { continue };
            if was_timer && !self.units[i].is_timer() {
                // No longer a timer unit: its schedule ends here.
                self.disarm(i, DeadlineKind::TimerRun, fx);
                let u = &mut self.units[i];
                u.timer = None;
                u.timer_at = None;
                u.cal_at = None;
                if u.state == State::Waiting {
                    u.set_state(State::Stopped, now.wall);
                }
            }
            let u = &self.units[i];
            let enabled = u.def.as_ref().is_some_and(|d| d.enabled);
            let active = u.want_up;
            if u.is_timer() && was_timer && u.is_gone() {
                // Same kind of unit, no run going: only the schedule changes.
                if u.want_up && u.state == State::Waiting {
                    self.disarm(i, DeadlineKind::TimerRun, fx);
                    self.schedule_next(i, now, fx);
                } else if enabled && !was_enabled {
                    self.cmd_start(i, false, now, fx, &mut HashSet::new());
                }
            } else if active && !was_removed {
                self.cmd_restart(i, false, now, fx, &mut HashSet::new());
            } else if enabled && (!was_enabled || was_removed) {
                self.cmd_start(i, false, now, fx, &mut HashSet::new());
            }
        }
    }

    fn push(&mut self, rec: UnitRecord) {
        self.index.insert(rec.name.clone(), self.units.len());
        self.units.push(rec);
    }

    /// Order units topologically by `after` and `requires` and recompute the edges.
    fn rebuild(&mut self) {
        let mut recs: Vec<Option<UnitRecord>> = std::mem::take(&mut self.units)
            .into_iter()
            .map(Some)
            .collect();
        let mut by_name: Vec<usize> = (0..recs.len()).collect();
        by_name.sort_by(|&a, &b| name_of(&recs, a).cmp(name_of(&recs, b)));
        let pos: HashMap<String, usize> = recs
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().map(|r| (r.name.clone(), i)))
            .collect();
        let edges = |r: &UnitRecord| -> Vec<usize> {
            let Some(d) = r.def.as_ref() else {
                return Vec::new();
            };
            let mut v: Vec<usize> = d
                .after
                .iter()
                .chain(d.requires.iter())
                .filter_map(|n| pos.get(n).copied())
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let deps_of: Vec<Vec<usize>> = recs
            .iter()
            .map(|r| r.as_ref().map(edges).unwrap_or_default())
            .collect();
        // Kahn's algorithm, always taking the smallest name that is free.
        let mut indeg: Vec<usize> = deps_of.iter().map(|d| d.len()).collect();
        let mut rdeps: Vec<Vec<usize>> = vec![Vec::new(); recs.len()];
        for (i, ds) in deps_of.iter().enumerate() {
            for &d in ds {
                rdeps[d].push(i);
            }
        }
        let mut order = Vec::with_capacity(recs.len());
        let mut placed = vec![false; recs.len()];
        let mut ready: std::collections::BTreeSet<(String, usize)> = by_name
            .iter()
            .filter(|&&i| indeg[i] == 0)
            .map(|&i| (name_of(&recs, i).to_string(), i))
            .collect();
        loop {
            while let Some((_, i)) = ready.pop_first() {
                placed[i] = true;
                order.push(i);
                for &r in &rdeps[i] {
                    indeg[r] = indeg[r].saturating_sub(1);
                    if indeg[r] == 0 && !placed[r] {
                        ready.insert((name_of(&recs, r).to_string(), r));
                    }
                }
            }
            // A cycle: break it at the smallest name left, and go on.
            match by_name.iter().find(|&&i| !placed[i]) {
                Some(&i) => {
                    indeg[i] = 0;
                    ready.insert((name_of(&recs, i).to_string(), i));
                }
                None => break,
            }
        }
        let mut rank = vec![0usize; recs.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r;
        }
        let mut units = Vec::with_capacity(recs.len());
        for &i in &order {
            if let Some(mut rec) = recs[i].take() {
                let me = rank[i];
                rec.deps = deps_of[i]
                    .iter()
                    .map(|&d| rank[d])
                    .filter(|&d| d < me)
                    .collect();
                rec.requires = rec
                    .def
                    .as_ref()
                    .map(|d| {
                        d.requires
                            .iter()
                            .filter_map(|n| pos.get(n).map(|&p| rank[p]))
                            .filter(|&p| p < me)
                            .collect()
                    })
                    .unwrap_or_default();
                rec.dependents.clear();
                rec.req_dependents.clear();
                units.push(rec);
            }
        }
        for i in 0..units.len() {
            for k in 0..units[i].deps.len() {
                let d = units[i].deps[k];
                units[d].dependents.push(i);
            }
            for k in 0..units[i].requires.len() {
                let d = units[i].requires[k];
                units[d].req_dependents.push(i);
            }
        }
        self.index = units
            .iter()
            .enumerate()
            .map(|(i, u)| (u.name.clone(), i))
            .collect();
        self.units = units;
    }

    fn forget_removed(&mut self, fx: &mut Vec<Effect>) {
        if !self
            .units
            .iter()
            .any(|u| u.removed && u.is_gone() && u.job.is_none())
        {
            return;
        }
        let before = self.units.len();
        let mut keep = Vec::with_capacity(before);
        for u in std::mem::take(&mut self.units) {
            if u.removed && u.is_gone() && u.job.is_none() {
                for kind in ALL_KINDS {
                    if u.is_armed(kind) {
                        fx.push(Effect::Disarm {
                            unit: u.name.clone(),
                            kind,
                        });
                    }
                }
                fx.push(Effect::Forget {
                    unit: u.name.clone(),
                });
            } else {
                keep.push(u);
            }
        }
        self.units = keep;
        if self.units.len() != before {
            self.rebuild();
        }
    }

    // ----- commands -----

    fn command(&mut self, c: Command, now: Now, fx: &mut Vec<Effect>) {
        match c {
            Command::Start(name) => {
                if let Some(i) = self.idx(&name) {
                    self.cmd_start(i, true, now, fx, &mut HashSet::new());
                }
            }
            Command::Stop(name) => {
                if let Some(i) = self.idx(&name) {
                    self.cmd_stop(i, None, &mut HashSet::new());
                }
            }
            Command::Restart(name) => {
                if let Some(i) = self.idx(&name) {
                    self.cmd_restart(i, true, now, fx, &mut HashSet::new());
                }
            }
            Command::RestartAll => {
                let mut seen = HashSet::new();
                for i in 0..self.units.len() {
                    let u = &self.units[i];
                    if u.want_up && u.def.is_some() && !u.is_timer() {
                        self.cmd_restart(i, true, now, fx, &mut seen);
                    }
                }
            }
        }
    }

    /// Start a unit and what it requires. `manual`: a user's order (resets the backoff; on
    /// a timer unit, runs it now).
    fn cmd_start(
        &mut self,
        i: usize,
        manual: bool,
        now: Now,
        fx: &mut Vec<Effect>,
        seen: &mut HashSet<usize>,
    ) {
        if self.shutting || !seen.insert(i) || self.units[i].def.is_none() || self.units[i].removed
        {
            return;
        }
        {
            let u = &mut self.units[i];
            u.want_up = true;
            u.note = None;
            if manual {
                u.backoff = None;
            }
        }
        for r in self.units[i].requires.clone() {
            self.cmd_start(r, false, now, fx, seen);
        }
        let u = &self.units[i];
        if u.is_timer() {
            let gone = u.is_gone();
            let draining = !gone && !u.main && !u.spawning;
            match u.job {
                // A stop begun (or a run's leftovers going) ends first; else it is cancelled.
                Some(Job::Stop) if u.stop_sent || draining => {
                    self.units[i].job = Some(Job::Restart)
                }
                Some(Job::Stop) => self.units[i].job = None,
                _ => {}
            }
            let u = &self.units[i];
            if u.job.is_none() {
                if gone && u.state != State::Waiting {
                    // Whatever it was (stopped, a service in backoff before a change): a schedule now.
                    self.disarm(i, DeadlineKind::Restart, fx);
                    self.activate_timer(i, now, fx);
                } else if !u.is_armed(DeadlineKind::TimerRun) {
                    // Its schedule lapsed while a stop was pending.
                    self.schedule_next(i, now, fx);
                }
            }
            if manual && self.units[i].is_gone() && self.units[i].job.is_none() {
                self.spawn(i, now, fx);
            }
            return;
        }
        match (u.job, u.state) {
            (Some(Job::Start) | Some(Job::Restart), _) => {}
            (Some(Job::Stop), _) => {
                // Cancel a stop not yet begun; after one begun, start again.
                let j = if u.stop_sent {
                    Some(Job::Restart)
                } else if u.spawning || u.main {
                    None
                } else if u.is_gone() {
                    Some(Job::Start)
                } else {
                    Some(Job::Restart) // leftovers still draining
                };
                self.units[i].job = j;
            }
            (None, State::Backoff) => {
                self.disarm(i, DeadlineKind::Restart, fx);
                let u = &mut self.units[i];
                u.restart_due = false;
                u.job = Some(Job::Start);
            }
            (None, State::Stopping) => self.units[i].job = Some(Job::Restart),
            (None, State::Stopped | State::Exited | State::Failed) => {
                self.units[i].job = Some(Job::Start)
            }
            (None, _) => {}
        }
    }

    /// Stop a unit and, first, the units that require it.
    fn cmd_stop(&mut self, i: usize, note: Option<String>, seen: &mut HashSet<usize>) {
        if !seen.insert(i) {
            return;
        }
        let name = self.units[i].name.clone();
        for d in self.units[i].req_dependents.clone() {
            let du = &self.units[d];
            if du.want_up || !du.is_gone() || du.job.is_some() {
                self.cmd_stop(d, Some(format!("required unit {name} stopped")), seen);
            }
        }
        let u = &mut self.units[i];
        u.want_up = false;
        u.note = note;
        let down = matches!(
            u.state,
            State::Stopped | State::Exited | State::Failed | State::Invalid
        );
        if u.is_gone() && down {
            u.job = None;
        } else {
            u.job = Some(Job::Stop);
        }
    }

    fn cmd_restart(
        &mut self,
        i: usize,
        manual: bool,
        now: Now,
        fx: &mut Vec<Effect>,
        seen: &mut HashSet<usize>,
    ) {
        if self.shutting || !seen.insert(i) || self.units[i].def.is_none() || self.units[i].removed
        {
            return;
        }
        if self.units[i].is_timer() {
            // Perhaps a new definition: schedule afresh; a run going goes on.
            seen.remove(&i);
            let u = &self.units[i];
            if u.want_up
                && u.job.is_none()
                && matches!(u.state, State::Waiting | State::Running | State::Starting)
            {
                self.disarm(i, DeadlineKind::TimerRun, fx);
                self.schedule_next(i, now, fx);
                if manual && self.units[i].is_gone() {
                    self.spawn(i, now, fx);
                }
            } else {
                self.cmd_start(i, manual, now, fx, seen);
            }
            return;
        }
        {
            let u = &mut self.units[i];
            u.want_up = true;
            u.note = None;
            if manual {
                u.backoff = None;
            }
        }
        for r in self.units[i].requires.clone() {
            let mut s = HashSet::new();
            self.cmd_start(r, false, now, fx, &mut s);
        }
        let u = &self.units[i];
        if u.state == State::Backoff {
            self.disarm(i, DeadlineKind::Restart, fx);
            self.units[i].restart_due = false;
        }
        let u = &mut self.units[i];
        u.job = if u.is_gone() {
            Some(Job::Start)
        } else {
            Some(Job::Restart)
        };
        for d in self.units[i].req_dependents.clone() {
            let du = &self.units[d];
            if du.want_up && (!du.is_gone() || du.state == State::Backoff) {
                self.cmd_restart(d, false, now, fx, seen);
            }
        }
    }

    fn shutdown(&mut self, code: i32, now: Now) {
        if self.shutting {
            return;
        }
        tracing::info!(code, "stopping every unit");
        self.shutting = true;
        self.exit_code = code;
        for u in &mut self.units {
            u.want_up = false;
            let down = matches!(
                u.state,
                State::Stopped | State::Exited | State::Failed | State::Invalid
            );
            u.job = if u.is_gone() && down {
                None
            } else {
                Some(Job::Stop)
            };
        }
        let _ = now;
    }

    fn check_exit(&mut self, fx: &mut Vec<Effect>) {
        if self.shutting
            && !self.exit_sent
            && self.units.iter().all(|u| u.job.is_none() && u.is_gone())
        {
            self.exit_sent = true;
            fx.push(Effect::Exit {
                code: self.exit_code,
            });
        }
    }

    // ----- moving jobs in dependency order -----

    fn progress(&mut self, now: Now, fx: &mut Vec<Effect>) {
        if self.units.iter().all(|u| u.job.is_none() && !u.run_waiting) {
            return;
        }
        // Each round settles at least one job, so this ends; the bound is a guard.
        for _ in 0..=self.units.len() + 1 {
            let mut changed = false;
            for i in (0..self.units.len()).rev() {
                let u = &self.units[i];
                match u.job {
                    Some(Job::Stop) | Some(Job::Restart) => {
                        if u.is_gone() {
                            if u.job == Some(Job::Stop) {
                                self.finish_stop(i, now, fx);
                            } else {
                                self.units[i].job = Some(Job::Start);
                                if self.units[i].state != State::Invalid {
                                    self.units[i].set_state(State::Stopped, now.wall);
                                }
                            }
                            changed = true;
                        } else if u.main && !u.stop_sent && !self.stop_blocked(i) {
                            self.begin_stop(i, now, fx);
                        } else if matches!(u.state, State::Backoff | State::Waiting) {
                            // Leftovers still draining: no restart or run after them.
                            self.disarm(i, DeadlineKind::Restart, fx);
                            self.disarm(i, DeadlineKind::TimerRun, fx);
                            let u = &mut self.units[i];
                            u.restart_due = false;
                            u.set_state(State::Stopping, now.wall);
                        }
                    }
                    _ => {}
                }
            }
            for i in 0..self.units.len() {
                let u = &self.units[i];
                if u.job != Some(Job::Start) || !u.is_gone() {
                    continue;
                }
                match self.start_check(i) {
                    Check::Wait => {}
                    Check::Go => {
                        self.units[i].job = None;
                        self.begin_start(i, now, fx);
                        changed = true;
                    }
                    Check::Fail(why) => {
                        let u = &mut self.units[i];
                        u.job = None;
                        u.note = Some(why);
                        u.set_state(State::Failed, now.wall);
                        self.on_failed(i, now);
                        changed = true;
                    }
                }
            }
            changed |= self.waiting_runs(now, fx);
            if !changed {
                break;
            }
        }
    }

    /// A unit stops only after the units ordered after it that are stopping too.
    fn stop_blocked(&self, i: usize) -> bool {
        self.units[i].dependents.iter().any(|&d| {
            let du = &self.units[d];
            matches!(du.job, Some(Job::Stop) | Some(Job::Restart)) && !du.is_gone()
        })
    }

    fn start_check(&self, i: usize) -> Check {
        let u = &self.units[i];
        if let Some(def) = u.def.as_ref() {
            for r in &def.requires {
                match self.get(r) {
                    None => return Check::Fail(format!("required unit {r} does not exist")),
                    Some(ru) if ru.def.is_none() => {
                        return Check::Fail(format!("required unit {r} is invalid"))
                    }
                    Some(_) => {}
                }
            }
        }
        for &d in &u.deps {
            let du = &self.units[d];
            let starting = matches!(du.job, Some(Job::Start) | Some(Job::Restart))
                || du.spawning
                || (du.state == State::Starting && du.main)
                || du.state == State::Backoff
                || (du.state == State::Stopping && du.want_up)
                || du.reloading;
            let satisfied = du.is_up() || du.state == State::Exited || du.state == State::Waiting;
            if satisfied {
                continue;
            }
            if starting {
                return Check::Wait;
            }
            if u.requires.contains(&d) {
                return Check::Fail(format!(
                    "required unit {} is {}",
                    du.name,
                    du.state.as_str()
                ));
            }
        }
        Check::Go
    }

    fn begin_start(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        if self.units[i].is_timer() {
            self.activate_timer(i, now, fx);
        } else {
            self.spawn(i, now, fx);
        }
    }

    fn spawn(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        let Some(def) = u.def.clone() else { return };
        u.run_def = Some(def.clone());
        u.run_waiting = false;
        if u.timer.is_some() {
            u.note = None; // a skipped run's reason is old news once one runs
        }
        u.spawning = true;
        u.group = true;
        u.ready = false;
        u.reloading = false;
        u.pid = None;
        u.restart_due = false;
        u.stop_sent = false;
        u.fault = None;
        u.set_state(State::Starting, now.wall);
        fx.push(Effect::Spawn {
            unit: u.name.clone(),
        });
        if let Some(t) = u.timer.as_mut() {
            t.last_start = Some(now.wall);
            t.run_started = Some(now.mono);
            if def.timer.as_ref().is_some_and(|t| t.persistent) {
                fx.push(Effect::PersistTimerRun {
                    unit: u.name.clone(),
                    at: now.wall,
                });
            }
        }
    }

    fn begin_stop(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let (signal, timeout) = match self.units[i].active_def() {
            Some(d) => (
                d.stop.signal,
                d.stop.timeout.unwrap_or(self.defaults.kill_timeout),
            ),
            None => (libc::SIGTERM, self.defaults.kill_timeout),
        };
        let u = &mut self.units[i];
        u.stop_sent = true;
        u.reloading = false;
        u.set_state(State::Stopping, now.wall);
        fx.push(Effect::Signal {
            unit: u.name.clone(),
            signal,
        });
        self.arm(i, DeadlineKind::StopTimeout, later(now.mono, timeout), fx);
    }

    fn finish_stop(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        self.disarm(i, DeadlineKind::Restart, fx);
        self.disarm(i, DeadlineKind::TimerRun, fx);
        let u = &mut self.units[i];
        u.job = None;
        u.restart_due = false;
        u.timer_at = None;
        u.cal_at = None;
        if let Some(t) = u.timer.as_mut() {
            t.next = None;
        }
        // A unit that already ended (exited, failed) keeps saying how.
        if u.def.is_some() && !matches!(u.state, State::Exited | State::Failed) {
            u.set_state(State::Stopped, now.wall);
        }
    }

    /// The unit failed for good: what requires it stops; an essential unit ends colony-init.
    fn on_failed(&mut self, i: usize, now: Now) {
        let name = self.units[i].name.clone();
        for d in self.units[i].req_dependents.clone() {
            let du = &self.units[d];
            if du.job == Some(Job::Start) {
                continue; // fails by itself in start_check
            }
            if du.want_up && (!du.is_gone() || matches!(du.state, State::Backoff | State::Waiting))
            {
                let mut seen = HashSet::new();
                self.cmd_stop(d, Some(format!("required unit {name} failed")), &mut seen);
            }
        }
        let u = &self.units[i];
        if u.def.as_ref().is_some_and(|d| d.essential) && !self.shutting {
            let code = match u.last_exit.as_ref().and_then(|e| e.status) {
                Some(ExitStatus::Code(0)) | None => 1,
                Some(ExitStatus::Code(c)) => c,
                Some(ExitStatus::Signal(n)) => n.saturating_add(128),
            };
            tracing::error!(unit = %name, code, "essential unit failed; stopping everything");
            self.shutdown(code, now);
        }
    }

    // ----- process facts -----

    fn on_spawned(&mut self, i: usize, pid: i32, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        if !u.spawning {
            return;
        }
        u.spawning = false;
        u.main = true;
        u.pid = Some(pid);
        u.started = Some(now.mono);
        let Some(def) = u.run_def.clone() else { return };
        if def.timer.is_some() {
            u.ready = true;
            u.set_state(State::Running, now.wall);
            if let Some(t) = def.timer.as_ref().and_then(|t| t.timeout) {
                self.arm(i, DeadlineKind::TimerTimeout, later(now.mono, t), fx);
            }
        } else {
            match def.ready.kind {
                ReadyType::Started => {
                    u.ready = true;
                    u.set_state(State::Running, now.wall);
                }
                ReadyType::Notify | ReadyType::Tcp(_) | ReadyType::File(_) => {
                    u.set_state(State::Starting, now.wall);
                    let t = def.ready.timeout.unwrap_or(DEFAULT_READY_TIMEOUT);
                    self.arm(i, DeadlineKind::ReadyTimeout, later(now.mono, t), fx);
                }
            }
            if let (ReadyType::Notify, Some(w)) = (&def.ready.kind, def.ready.watchdog) {
                self.arm(i, DeadlineKind::Watchdog, later(now.mono, w), fx);
            }
        }
        if let Some(hb) = def.heartbeat.as_ref() {
            self.arm(i, DeadlineKind::Heartbeat, later(now.mono, hb.grace), fx);
        }
    }

    fn on_spawn_failed(&mut self, i: usize, error: String, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        if !u.spawning {
            return;
        }
        tracing::warn!(unit = %u.name, %error, "could not start");
        u.spawning = false;
        // The loop reaped what it forked: nothing is left.
        u.group = false;
        u.started = None;
        self.on_died(i, None, Some("exec"), Some(error), now, fx);
        self.on_gone(i, now, fx);
    }

    fn on_exited(
        &mut self,
        i: usize,
        status: ExitStatus,
        oom: bool,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        if !self.units[i].main {
            return;
        }
        for k in [
            DeadlineKind::StopTimeout,
            DeadlineKind::ReadyTimeout,
            DeadlineKind::Watchdog,
            DeadlineKind::Heartbeat,
            DeadlineKind::TimerTimeout,
        ] {
            self.disarm(i, k, fx);
        }
        let u = &mut self.units[i];
        u.main = false;
        u.pid = None;
        // Always, even after a StopTimeout's KillAll: an Empty seen before this exit was
        // not believed, so the loop must be asked (and answer) again.
        if u.group {
            fx.push(Effect::KillAll {
                unit: u.name.clone(),
            });
        }
        let reason = if oom {
            Some("oom")
        } else if u.fault.is_some() {
            u.fault
        } else if u.stop_sent {
            Some("stopped")
        } else {
            None
        };
        self.on_died(i, Some(status), reason, None, now, fx);
    }

    /// The main process is over (or never was): record it and decide what comes next.
    fn on_died(
        &mut self,
        i: usize,
        status: Option<ExitStatus>,
        reason: Option<&'static str>,
        detail: Option<String>,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let shutting = self.shutting;
        let defaults = self.defaults;
        let u = &mut self.units[i];
        u.ready = false;
        u.reloading = false;
        let fault = u.fault.take();
        let lifetime = u
            .started
            .take()
            .map(|s| now.mono.saturating_duration_since(s));
        u.last_exit = Some(LastExit {
            status,
            reason,
            detail,
        });
        let Some(def) = u.def.clone().or_else(|| u.run_def.clone()) else {
            return;
        };
        if def.timer.is_some() {
            if let Some(t) = u.timer.as_mut() {
                let duration = t
                    .run_started
                    .take()
                    .map(|s| now.mono.saturating_duration_since(s))
                    .unwrap_or_default();
                t.last_result = Some(RunResult {
                    status,
                    reason,
                    duration,
                });
            }
            if u.job.is_some() || !u.want_up || shutting {
                u.set_state(State::Stopping, now.wall);
            } else {
                u.set_state(State::Waiting, now.wall);
            }
            return;
        }
        if matches!(u.job, Some(Job::Stop) | Some(Job::Restart)) || !u.want_up || shutting {
            u.set_state(State::Stopping, now.wall);
            return;
        }
        let success = fault.is_none()
            && matches!(status, Some(ExitStatus::Code(c)) if def.restart.success_codes.contains(&c));
        let forced = matches!(fault, Some("heartbeat") | Some("watchdog") | Some("health"));
        let restart = forced
            || match def.restart.policy {
                RestartPolicy::Always => true,
                RestartPolicy::OnFailure => !success,
                RestartPolicy::Never => false,
            };
        let threshold = def.restart.threshold.unwrap_or(defaults.threshold);
        let instant = fault == Some("ready_timeout") || lifetime.is_none_or(|l| l < threshold);
        let delay_min = def.restart.delay_min.unwrap_or(defaults.min_restart_delay);
        let delay_max = def.restart.delay_max.unwrap_or(defaults.max_restart_delay);
        if !restart {
            u.backoff = None;
            if success {
                u.set_state(State::Exited, now.wall);
            } else {
                u.set_state(State::Failed, now.wall);
                self.on_failed(i, now);
            }
            return;
        }
        let delay = if instant {
            let next = match u.backoff {
                None => delay_min.min(delay_max),
                Some(prev) => prev
                    .saturating_mul(2)
                    .max(MIN_REPEAT_DELAY)
                    .min(delay_max.max(MIN_REPEAT_DELAY)),
            };
            u.backoff = Some(next);
            next
        } else {
            u.backoff = None;
            delay_min.min(delay_max)
        };
        tracing::info!(unit = %u.name, ?status, ?reason, delay_ms = delay.as_millis() as u64, "will restart");
        u.set_state(State::Backoff, now.wall);
        if delay.is_zero() {
            u.restart_due = true;
        } else {
            self.arm(i, DeadlineKind::Restart, later(now.mono, delay), fx);
        }
    }

    fn on_empty(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        // Only after the main process is known dead: an earlier Empty may be stale.
        if u.spawning || u.main || !u.group {
            return;
        }
        u.group = false;
        self.on_gone(i, now, fx);
    }

    /// Nothing of the unit is left.
    fn on_gone(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        if u.job.is_some() {
            return; // progress() takes it on
        }
        match u.state {
            State::Backoff if u.restart_due => self.auto_restart(i, now, fx),
            State::Stopping => u.set_state(State::Stopped, now.wall),
            _ => {}
        }
    }

    fn auto_restart(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        if self.shutting || !self.units[i].want_up {
            return;
        }
        self.units[i].restarts += 1;
        // Like any start, it waits while a unit it is ordered after is being started (in
        // its own backoff, say): a unit must not come back before what it needs.
        if self.start_check(i) == Check::Wait {
            self.units[i].job = Some(Job::Start);
            return;
        }
        self.spawn(i, now, fx);
    }

    fn on_deadline(&mut self, i: usize, kind: DeadlineKind, now: Now, fx: &mut Vec<Effect>) {
        if !self.units[i].is_armed(kind) {
            return; // stale
        }
        self.units[i].set_armed(kind, false);
        let u = &self.units[i];
        match kind {
            DeadlineKind::Restart => {
                if u.state == State::Backoff {
                    self.units[i].restart_due = true;
                    if self.units[i].is_gone() && self.units[i].job.is_none() {
                        self.auto_restart(i, now, fx);
                    }
                }
            }
            DeadlineKind::StopTimeout => {
                if u.main || u.group {
                    tracing::warn!(unit = %u.name, "stop timeout: killing everything left");
                    let name = u.name.clone();
                    fx.push(Effect::KillAll { unit: name });
                }
            }
            DeadlineKind::ReadyTimeout => {
                if u.state == State::Starting {
                    self.fault(i, "ready_timeout", now, fx);
                } else if u.reloading {
                    tracing::warn!(unit = %u.name, "reload not over by the ready timeout: counted as up again");
                    self.end_reload(i, fx);
                }
            }
            DeadlineKind::Watchdog => self.fault(i, "watchdog", now, fx),
            DeadlineKind::Heartbeat => self.fault(i, "heartbeat", now, fx),
            DeadlineKind::TimerRun => self.timer_fire(i, now, fx),
            DeadlineKind::TimerTimeout => {
                if u.is_timer() {
                    self.fault(i, "timeout", now, fx);
                }
            }
        }
    }

    /// Stop the running process on our own, to restart it (or end a timer run).
    fn fault(&mut self, i: usize, reason: &'static str, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        if !u.main || u.stop_sent {
            return;
        }
        tracing::warn!(unit = %u.name, reason, "stopping the unit");
        u.fault = Some(reason);
        self.begin_stop(i, now, fx);
    }

    fn on_beat(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        u.last_beat = Some(now.wall);
        let period = u
            .run_def
            .as_ref()
            .and_then(|d| d.heartbeat.as_ref())
            .map(|h| h.period);
        if let Some(p) = period {
            if u.main && !u.stop_sent {
                self.arm(i, DeadlineKind::Heartbeat, later(now.mono, p), fx);
            }
        }
    }

    fn on_ready(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        if u.main && !u.stop_sent && u.state == State::Starting {
            u.ready = true;
            u.set_state(State::Running, now.wall);
            self.disarm(i, DeadlineKind::ReadyTimeout, fx);
        }
    }

    /// `RELOADING=1` / its end (see the contract in the module docs of `core`).
    fn on_reloading(&mut self, i: usize, reloading: bool, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        if reloading {
            if !(u.main && !u.stop_sent && u.state == State::Running && u.ready) || u.is_timer() {
                return;
            }
            u.ready = false;
            u.reloading = true;
            let t = u
                .run_def
                .as_ref()
                .and_then(|d| d.ready.timeout)
                .unwrap_or(DEFAULT_READY_TIMEOUT);
            self.arm(i, DeadlineKind::ReadyTimeout, later(now.mono, t), fx);
        } else if u.reloading {
            self.end_reload(i, fx);
        }
    }

    fn end_reload(&mut self, i: usize, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        u.reloading = false;
        if u.main && !u.stop_sent && u.state == State::Running {
            u.ready = true;
        }
        self.disarm(i, DeadlineKind::ReadyTimeout, fx);
    }

    /// `STOPPING=1`: a stop under way that colony did not ask for.
    fn on_stopping(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &self.units[i];
        if !u.main || u.stop_sent || !matches!(u.state, State::Starting | State::Running) {
            return;
        }
        tracing::info!(unit = %u.name, "the unit announced its stop");
        let timeout = u
            .active_def()
            .and_then(|d| d.stop.timeout)
            .unwrap_or(self.defaults.kill_timeout);
        for k in [
            DeadlineKind::ReadyTimeout,
            DeadlineKind::Watchdog,
            DeadlineKind::Heartbeat,
        ] {
            self.disarm(i, k, fx);
        }
        let u = &mut self.units[i];
        u.stop_sent = true;
        u.ready = false;
        u.reloading = false;
        u.set_state(State::Stopping, now.wall);
        self.arm(i, DeadlineKind::StopTimeout, later(now.mono, timeout), fx);
    }

    fn on_watchdog_ping(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &self.units[i];
        let period = u.run_def.as_ref().and_then(|d| d.ready.watchdog);
        if let Some(p) = period {
            if u.main && !u.stop_sent && u.is_armed(DeadlineKind::Watchdog) {
                self.arm(i, DeadlineKind::Watchdog, later(now.mono, p), fx);
            }
        }
    }

    // ----- timers -----

    fn activate_timer(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        u.set_state(State::Waiting, now.wall);
        if let Some(t) = u.timer.as_mut() {
            t.active_since = Some(now.wall);
        }
        self.disarm(i, DeadlineKind::TimerRun, fx);
        if !self.apply_restore(i, now, fx) {
            self.schedule_next(i, now, fx);
        }
    }

    /// A persistent unit's restored last run: shown, and a run missed since then is due now.
    /// True when it armed the catch-up run.
    fn apply_restore(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) -> bool {
        let u = &self.units[i];
        let Some(def) = u.def.clone() else {
            return false;
        };
        let Some(tdef) = def.timer.as_ref() else {
            return false;
        };
        let Some(&last_run) = self.restored.get(&u.name) else {
            return false;
        };
        if !tdef.persistent {
            return false;
        }
        let Some(t) = self.units[i].timer.as_mut() else {
            return false;
        };
        if t.last_start.is_some_and(|s| s >= last_run) {
            return false; // it ran here since
        }
        t.last_start = Some(last_run);
        if self.units[i].state != State::Waiting {
            return false;
        }
        let due_every = tdef
            .every
            .filter(|e| !e.is_zero())
            .and_then(|e| last_run.checked_add(e))
            .is_some_and(|at| at <= now.wall);
        let due_cal = tdef
            .calendar
            .as_ref()
            .and_then(|c| (self.calendar)(c, last_run))
            .is_some_and(|at| at <= now.wall);
        if due_every || due_cal {
            self.disarm(i, DeadlineKind::TimerRun, fx);
            self.run_now(i, now, fx);
            true
        } else {
            self.disarm(i, DeadlineKind::TimerRun, fx);
            self.schedule_next(i, now, fx);
            true
        }
    }

    /// The wall clock was set (forward, back, or a resume from suspend): plan every waiting
    /// timer again in the new time. A `calendar` occurrence the clock was set past runs at
    /// once (one run, however many were jumped over), as systemd re-evaluates `OnCalendar`;
    /// otherwise the next run is the first match after the new time. `every` counts in wall
    /// time from the previous start (missed steps are not made up); `on_boot` stays
    /// monotonic: the boot moment is restated in the new wall time.
    fn clock_changed(&mut self, now: Now, fx: &mut Vec<Effect>) {
        if let Some(b) = self.boot.as_mut() {
            let up = now.mono.saturating_duration_since(b.mono);
            if let Some(w) = now.wall.checked_sub(up) {
                b.wall = w;
            }
        }
        for i in 0..self.units.len() {
            let u = &self.units[i];
            if !(u.is_timer() && u.want_up && u.job.is_none() && u.is_armed(DeadlineKind::TimerRun))
            {
                continue;
            }
            let missed = u.cal_at.is_some_and(|c| c <= now.wall);
            self.disarm(i, DeadlineKind::TimerRun, fx);
            if missed {
                tracing::info!(unit = %self.units[i].name, "the clock was set past a calendar run: running it now");
                self.run_now(i, now, fx);
            } else {
                self.schedule_next(i, now, fx);
            }
        }
    }

    /// Arm a run due now.
    fn run_now(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        u.timer_at = Some(now.wall);
        u.cal_at = None;
        if let Some(t) = u.timer.as_mut() {
            t.next = Some(now.wall);
        }
        self.arm(i, DeadlineKind::TimerRun, now.mono, fx);
    }

    /// Arm the next run: the earliest of `every`, `calendar` and a pending `on_boot`.
    fn schedule_next(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        self.schedule_from(i, now, now.wall, fx);
    }

    /// Arm the next run after `from` (at least now).
    fn schedule_from(&mut self, i: usize, now: Now, from: SystemTime, fx: &mut Vec<Effect>) {
        let boot = self.boot.unwrap_or(now);
        let u = &self.units[i];
        let Some(def) = u.def.clone() else { return };
        let Some(tdef) = def.timer.as_ref() else {
            return;
        };
        let from = from.max(now.wall);
        let mut best: Option<SystemTime> = None;
        let mut consider = |t: Option<SystemTime>| {
            if let Some(t) = t {
                best = Some(best.map_or(t, |b| b.min(t)));
            }
        };
        if let (Some(every), Some(t)) = (tdef.every, u.timer.as_ref()) {
            // A last run "in the future" (the clock was set back) counts as now.
            let base = t
                .last_start
                .or(t.active_since)
                .unwrap_or(now.wall)
                .min(now.wall);
            consider(every_next(base, every, from));
        }
        let cal_at = tdef
            .calendar
            .as_ref()
            .and_then(|cal| (self.calendar)(cal, from));
        consider(cal_at);
        let mut boot_done = false;
        if let (Some(ob), Some(t)) = (tdef.on_boot, u.timer.as_ref()) {
            if !t.on_boot_done {
                match boot.wall.checked_add(ob) {
                    Some(at) if at > from => consider(Some(at)),
                    _ => boot_done = true,
                }
            }
        }
        let u = &mut self.units[i];
        if let Some(t) = u.timer.as_mut() {
            t.on_boot_done |= boot_done;
            t.next = best;
        }
        u.timer_at = best;
        u.cal_at = cal_at;
        if let Some(at) = best {
            self.arm(
                i,
                DeadlineKind::TimerRun,
                mono_for(now.mono, now.wall, at),
                fx,
            );
        }
    }

    fn timer_fire(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &self.units[i];
        if self.shutting || !u.want_up || !u.is_timer() {
            return;
        }
        if u.job.is_some() {
            // Being restarted: the run waits for the next time.
        } else if u.run_waiting {
            tracing::warn!(unit = %u.name, "previous run still waiting for its dependencies: run skipped");
            self.skip_run(i, now);
        } else if u.is_gone() {
            match self.start_check(i) {
                Check::Go => self.spawn(i, now, fx),
                Check::Wait => {
                    tracing::info!(unit = %u.name, "run waits for the units it is ordered after");
                    self.units[i].run_waiting = true;
                }
                Check::Fail(why) => {
                    tracing::warn!(unit = %u.name, %why, "run skipped");
                    self.units[i].note = Some(format!("run skipped: {why}"));
                    self.skip_run(i, now);
                }
            }
        } else {
            tracing::warn!(unit = %u.name, "previous run still going: run skipped");
            self.skip_run(i, now);
        }
        // Never before the run just due, so a deadline fired a hair early cannot run twice.
        let from = self.units[i].timer_at.unwrap_or(now.wall);
        self.schedule_from(i, now, from, fx);
    }

    fn skip_run(&mut self, i: usize, now: Now) {
        if let Some(t) = self.units[i].timer.as_mut() {
            t.skipped += 1;
            t.last_skip = Some(now.wall);
        }
    }

    /// Timer runs held by [`Self::timer_fire`] go once what they wait for is up.
    fn waiting_runs(&mut self, now: Now, fx: &mut Vec<Effect>) -> bool {
        let mut changed = false;
        for i in 0..self.units.len() {
            let u = &self.units[i];
            if !u.run_waiting {
                continue;
            }
            if self.shutting || !u.want_up || u.job.is_some() || !u.is_gone() {
                // Stopped or restarted meanwhile: the run is dropped.
                self.units[i].run_waiting = false;
                continue;
            }
            match self.start_check(i) {
                Check::Wait => {}
                Check::Go => {
                    self.units[i].run_waiting = false;
                    self.spawn(i, now, fx);
                    changed = true;
                }
                Check::Fail(why) => {
                    tracing::warn!(unit = %self.units[i].name, %why, "run skipped");
                    let u = &mut self.units[i];
                    u.run_waiting = false;
                    u.note = Some(format!("run skipped: {why}"));
                    self.skip_run(i, now);
                }
            }
        }
        changed
    }
}

const ALL_KINDS: [DeadlineKind; 7] = [
    DeadlineKind::Restart,
    DeadlineKind::StopTimeout,
    DeadlineKind::ReadyTimeout,
    DeadlineKind::Watchdog,
    DeadlineKind::Heartbeat,
    DeadlineKind::TimerRun,
    DeadlineKind::TimerTimeout,
];

#[derive(Debug, PartialEq, Eq)]
enum Check {
    Go,
    Wait,
    Fail(String),
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
        State::Stopped | State::Exited | State::Failed | State::Invalid => Some(Ok(())),
        State::Stopping => None,
        _ => Some(Err(format!("{} is {}", u.name, u.state.as_str()))),
    }
}

/// One line on why a unit is not up.
fn describe_down(u: &UnitRecord) -> String {
    let mut s = format!("{} is {}", u.name, u.state.as_str());
    if let Some(n) = &u.note {
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

//! Tests of the core with a fake clock and a fake loop.
//!
//! `Fake` plays the event loop: it keeps the armed deadlines, answers `Spawn` with
//! `Spawned` (or `SpawnFailed` for programs listed in `broken`), and `KillAll` with the
//! main process's death (if it still lived) and then `Empty`. Time only moves when a test
//! says so, and deadlines fire in order as it moves.

mod basic;
mod boot_task;
mod changes;
mod deps;
mod fuzz;
mod heartbeat;
mod hooks;
mod links;
mod load;
mod notify;
mod restart;
mod start;
mod stop;
mod timer;
mod timer_clock;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use units::model::{Heartbeat, Ready, ReadyType, RestartPolicy, Timer, Unit};

use super::*;

pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A unit with everything at its default, as the parser would make it.
pub(crate) fn unit(name: &str) -> Unit {
    Unit {
        name: name.to_string(),
        path: PathBuf::from(format!("/units/{name}.unit")),
        description: None,
        exec: vec!["/bin/sleep".into(), "1000".into()],
        directory: None,
        environment: Default::default(),
        identity: Default::default(),
        umask: None,
        nofile: None,
        capabilities: None,
        no_new_privileges: false,
        after: vec![],
        requires: vec![],
        tags: vec![],
        enabled: true,
        essential: false,
        extras_json: "{}".into(),
        restart: Default::default(),
        stop: Default::default(),
        ready: Default::default(),
        health: None,
        resources: Default::default(),
        heartbeat: None,
        timer: None,
        sandbox: None,
        exec_env: Default::default(),
        socket: None,
        tty: None,
        hooks: Default::default(),
        links: Default::default(),
        conditions: Vec::new(),
        instances: None,
        log: Default::default(),
    }
}

/// Small builder methods on `Unit` for tests.
pub(crate) trait UnitExt: Sized {
    fn with(self, f: impl FnOnce(&mut Unit)) -> Unit;
    fn after(self, names: &[&str]) -> Unit {
        self.with(|u| u.after = names.iter().map(|s| s.to_string()).collect())
    }
    fn requires(self, names: &[&str]) -> Unit {
        self.with(|u| u.requires = names.iter().map(|s| s.to_string()).collect())
    }
    fn policy(self, p: RestartPolicy) -> Unit {
        self.with(|u| u.restart.policy = p)
    }
    fn delays(self, min: Duration, max: Duration) -> Unit {
        self.with(|u| {
            u.restart.delay_min = Some(min);
            u.restart.delay_max = Some(max);
        })
    }
    fn disabled(self) -> Unit {
        self.with(|u| u.enabled = false)
    }
    fn notify(self, timeout: Option<Duration>) -> Unit {
        self.with(|u| {
            u.ready = Ready {
                kind: ReadyType::Notify,
                timeout,
                watchdog: None,
                ..Default::default()
            }
        })
    }
    fn settle(self, d: Duration) -> Unit {
        self.with(|u| u.ready.settle = d)
    }
    fn max_failures(self, n: u32) -> Unit {
        self.with(|u| u.restart.max_failures = Some(n))
    }
    fn heartbeat(self, period: Duration, grace: Duration) -> Unit {
        self.with(|u| {
            u.heartbeat = Some(Heartbeat {
                file: None,
                period,
                grace,
            })
        })
    }
    fn timer(self, t: Timer) -> Unit {
        self.with(|u| u.timer = Some(Box::new(t)))
    }
}

impl UnitExt for Unit {
    fn with(mut self, f: impl FnOnce(&mut Unit)) -> Unit {
        f(&mut self);
        self
    }
}

pub(crate) fn defaults() -> Defaults {
    Defaults {
        threshold: secs(1),
        kill_timeout: secs(5),
        min_restart_delay: secs(1),
        max_restart_delay: secs(60),
    }
}

/// 2026-06-15 12:00:00 UTC: a base wall time far from DST changes.
pub(crate) fn base_wall() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_781_524_800)
}

pub(crate) struct Fake {
    pub sup: Supervisor,
    base_mono: Instant,
    base_wall: SystemTime,
    /// Time since the base.
    pub t: Duration,
    pub deadlines: BTreeMap<(String, DeadlineKind), Instant>,
    /// Live main processes.
    pub alive: HashMap<String, i32>,
    next_pid: i32,
    /// Units whose spawn fails.
    pub broken: HashSet<String>,
    /// Units whose spawn panics in the loop (answered with `EffectFailed`).
    pub panicky: HashSet<String>,
    /// Units that die of a stop signal at once.
    pub obey: bool,
    /// Answer KillAll with Empty (else the test sends Empty).
    pub auto_empty: bool,
    /// Every effect, in order.
    pub log: Vec<Effect>,
    /// Units that may have processes (from Spawn until Empty).
    pub group: HashSet<String>,
    /// What escaped a unit's process group, as last sent in `Strays`.
    pub strays: HashMap<String, Vec<i32>>,
    /// Broken rules seen (a spawn over a live process...).
    pub violations: Vec<String>,
    /// Every state change the core reported, in order.
    pub changes: Vec<Change>,
    /// Hook commands that run (ended by `end_hook`, a `KillHook` or a `KillAll`).
    pub hooks: HashMap<String, i32>,
    /// The answer to `CheckConditions` per unit (else `Pass`).
    pub verdicts: HashMap<String, Verdict>,
}

impl Fake {
    pub fn new() -> Fake {
        Self::with(Supervisor::new(defaults()))
    }

    pub fn with(sup: Supervisor) -> Fake {
        Self::at(sup, base_wall())
    }

    /// A fake whose wall clock starts at `wall`.
    pub fn at(sup: Supervisor, wall: SystemTime) -> Fake {
        Fake {
            sup,
            base_mono: Instant::now(),
            base_wall: wall,
            t: Duration::ZERO,
            deadlines: BTreeMap::new(),
            alive: HashMap::new(),
            next_pid: 100,
            broken: HashSet::new(),
            panicky: HashSet::new(),
            obey: true,
            auto_empty: true,
            log: Vec::new(),
            group: HashSet::new(),
            strays: HashMap::new(),
            violations: Vec::new(),
            changes: Vec::new(),
            hooks: HashMap::new(),
            verdicts: HashMap::new(),
        }
    }

    pub fn now(&self) -> Now {
        Now {
            mono: self.base_mono + self.t,
            wall: self.base_wall + self.t,
        }
    }

    /// The wall clock is set forward by `d`; monotonic time does not move.
    pub fn jump_wall(&mut self, d: Duration) {
        self.base_wall += d;
    }

    /// The wall clock is set back by `d`; monotonic time does not move.
    pub fn jump_wall_back(&mut self, d: Duration) {
        self.base_wall -= d;
    }

    pub fn wall(&self, after: Duration) -> SystemTime {
        self.base_wall + after
    }

    pub fn mono(&self, after: Duration) -> Instant {
        self.base_mono + after
    }

    /// Feed one input, then everything the fake loop answers; returns all effects.
    pub fn send(&mut self, input: Input) -> Vec<Effect> {
        let mut out = Vec::new();
        let mut queue = VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            let now = self.now();
            let fx = self.sup.handle(input, now);
            self.changes.extend_from_slice(self.sup.changes());
            for e in fx {
                self.log.push(e.clone());
                out.push(e.clone());
                match e {
                    Effect::Spawn { unit } => {
                        if self.alive.contains_key(&unit)
                            || self.group.contains(&unit)
                            || self.strays.get(&unit).is_some_and(|s| !s.is_empty())
                        {
                            self.violations
                                .push(format!("spawn of {unit} over what is left of it"));
                        }
                        if self.panicky.contains(&unit) {
                            queue.push_back(Input::EffectFailed {
                                unit,
                                effect: EffectKind::Spawn,
                            });
                        } else if self.broken.contains(&unit) {
                            queue.push_back(Input::SpawnFailed {
                                unit,
                                error: "No such file or directory".into(),
                            });
                        } else {
                            let pid = self.next_pid;
                            self.next_pid += 1;
                            self.group.insert(unit.clone());
                            self.alive.insert(unit.clone(), pid);
                            queue.push_back(Input::Spawned { unit, pid });
                        }
                    }
                    Effect::Signal { unit, signal } => {
                        if self.obey && self.alive.remove(&unit).is_some() {
                            queue.push_back(Input::Exited {
                                unit,
                                status: ExitStatus::Signal(signal),
                                oom: false,
                            });
                        }
                    }
                    Effect::RunHook { unit, .. } => {
                        self.next_pid += 1;
                        self.hooks.insert(unit.clone(), self.next_pid);
                        let pid = self.next_pid;
                        queue.push_back(Input::HookStarted { unit, pid });
                    }
                    Effect::KillHook { unit } => queue.extend(self.hook_end(&unit, -9)),
                    Effect::CheckConditions { unit } => {
                        let verdict = self.verdicts.get(&unit).cloned().unwrap_or(Verdict::Pass);
                        queue.push_back(Input::Conditions { unit, verdict });
                    }
                    Effect::KillAll { unit } => {
                        queue.extend(self.hook_end(&unit, -9));
                        if self.alive.remove(&unit).is_some() {
                            queue.push_back(Input::Exited {
                                unit: unit.clone(),
                                status: ExitStatus::Signal(9),
                                oom: false,
                            });
                        }
                        if self.auto_empty {
                            self.group.remove(&unit);
                            queue.push_back(Input::Empty { unit });
                        }
                    }
                    Effect::Arm { unit, kind, at } => {
                        self.deadlines.insert((unit, kind), at);
                    }
                    Effect::Disarm { unit, kind } => {
                        self.deadlines.remove(&(unit, kind));
                    }
                    Effect::Forget { .. }
                    | Effect::PersistTimerRun { .. }
                    | Effect::Exit { .. } => {}
                }
            }
        }
        out
    }

    /// Move time on by `d`, firing every deadline due on the way, in order.
    pub fn advance(&mut self, d: Duration) -> Vec<Effect> {
        let end = self.t + d;
        let mut out = Vec::new();
        loop {
            let next = self
                .deadlines
                .iter()
                .map(|(k, at)| (*at, k.clone()))
                .filter(|(at, _)| *at <= self.base_mono + end)
                .min();
            let Some((at, (unit, kind))) = next else {
                break;
            };
            self.deadlines.remove(&(unit.clone(), kind));
            self.t = self.t.max(at - self.base_mono);
            out.extend(self.send(Input::Deadline { unit, kind }));
        }
        self.t = end;
        out
    }

    pub fn load(&mut self, units: Vec<Unit>) -> Vec<Effect> {
        self.send(Input::Load(
            units.into_iter().map(|u| (u.name.clone(), Ok(u))).collect(),
        ))
    }

    pub fn load_raw(&mut self, set: Vec<(&str, Result<Unit, String>)>) -> Vec<Effect> {
        self.send(Input::Load(
            set.into_iter().map(|(n, r)| (n.to_string(), r)).collect(),
        ))
    }

    pub fn cmd(&mut self, c: Command) -> Vec<Effect> {
        self.send(Input::Command(c))
    }

    /// The main process ends by itself with this code.
    pub fn exit(&mut self, name: &str, code: i32) -> Vec<Effect> {
        self.alive.remove(name);
        self.send(Input::Exited {
            unit: name.into(),
            status: ExitStatus::Code(code),
            oom: false,
        })
    }

    /// The running hook command ends: with a code, or killed by signal -`code`.
    fn hook_end(&mut self, name: &str, code: i32) -> Option<Input> {
        self.hooks.remove(name)?;
        let status = if code < 0 {
            ExitStatus::Signal(-code)
        } else {
            ExitStatus::Code(code)
        };
        Some(Input::HookEnded {
            unit: name.into(),
            end: HookEnd::Exited(status),
        })
    }

    /// The running hook command of `name` exits with `code`.
    pub fn end_hook(&mut self, name: &str, code: i32) -> Vec<Effect> {
        match self.hook_end(name, code) {
            Some(i) => self.send(i),
            None => panic!("no hook of {name} runs"),
        }
    }

    pub fn state(&self, name: &str) -> State {
        self.sup
            .get(name)
            .map(|u| u.state)
            .unwrap_or(State::Invalid)
    }

    pub fn rec(&self, name: &str) -> &UnitRecord {
        match self.sup.get(name) {
            Some(r) => r,
            None => panic!("no unit {name}"),
        }
    }

    pub fn deadline(&self, name: &str, kind: DeadlineKind) -> Option<Instant> {
        self.deadlines.get(&(name.to_string(), kind)).copied()
    }

    /// Names of spawned units, in order, in these effects.
    pub fn spawns(fx: &[Effect]) -> Vec<String> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Spawn { unit } => Some(unit.clone()),
                _ => None,
            })
            .collect()
    }

    /// Names of units signalled, in order.
    pub fn signals(fx: &[Effect]) -> Vec<String> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Signal { unit, .. } => Some(unit.clone()),
                _ => None,
            })
            .collect()
    }
}

pub(crate) fn has(fx: &[Effect], e: &Effect) -> bool {
    fx.contains(e)
}

pub(crate) fn spawn(name: &str) -> Effect {
    Effect::Spawn { unit: name.into() }
}

pub(crate) fn killall(name: &str) -> Effect {
    Effect::KillAll { unit: name.into() }
}

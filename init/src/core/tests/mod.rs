//! Tests of the core with a fake clock and a fake loop.
//!
//! `Fake` plays the event loop: it keeps the armed deadlines, answers `Spawn` with
//! `Spawned` (or `SpawnFailed` for programs listed in `broken`), and `KillAll` with the
//! main process's death (if it still lived) and then `Empty`. Time only moves when a test
//! says so, and deadlines fire in order as it moves.

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

// ----- basic API -----

#[test]
fn first_load_starts_enabled_units_and_started_type_is_up_at_spawn() {
    let mut f = Fake::new();
    let fx = f.load(vec![unit("a"), unit("b")]);
    assert_eq!(Fake::spawns(&fx), vec!["a", "b"]);
    let a = f.rec("a");
    assert_eq!(a.state, State::Running);
    assert!(a.ready);
    assert_eq!(a.pid, Some(100));
    assert_eq!(a.since, f.wall(Duration::ZERO));
    assert_eq!(f.sup.wait_result("a", Want::Up), Some(Ok(())));
}

#[test]
fn disabled_unit_is_loaded_but_only_a_command_starts_it() {
    let mut f = Fake::new();
    let fx = f.load(vec![unit("a").disabled()]);
    assert!(Fake::spawns(&fx).is_empty());
    assert_eq!(f.state("a"), State::Stopped);
    let fx = f.cmd(Command::Start("a".into()));
    assert_eq!(Fake::spawns(&fx), vec!["a"]);
    assert_eq!(f.state("a"), State::Running);
}

#[test]
fn resolve_names_dot_unit_and_tags() {
    let mut f = Fake::new();
    f.load(vec![
        unit("web").with(|u| u.tags = vec!["front".into()]),
        unit("api").with(|u| u.tags = vec!["front".into(), "x".into()]),
        unit("db"),
    ]);
    assert_eq!(f.sup.resolve("db"), Ok(vec!["db".to_string()]));
    assert_eq!(f.sup.resolve("db.unit"), Ok(vec!["db".to_string()]));
    assert_eq!(
        f.sup.resolve("@front"),
        Ok(vec!["api".to_string(), "web".to_string()])
    );
    assert!(f.sup.resolve("@none").is_err());
    assert!(f.sup.resolve("nope").is_err());
    assert!(f.sup.resolve("nope.unit").is_err());
}

#[test]
fn inputs_for_unknown_units_and_stale_facts_are_ignored() {
    let mut f = Fake::new();
    f.load(vec![unit("a")]);
    let now = f.now();
    for input in [
        Input::Exited {
            unit: "ghost".into(),
            status: ExitStatus::Code(1),
            oom: false,
        },
        Input::Empty {
            unit: "ghost".into(),
        },
        Input::Spawned {
            unit: "a".into(),
            pid: 5,
        },
        Input::SpawnFailed {
            unit: "a".into(),
            error: "x".into(),
        },
        Input::Empty { unit: "a".into() },
        Input::Deadline {
            unit: "a".into(),
            kind: DeadlineKind::Restart,
        },
        Input::Deadline {
            unit: "a".into(),
            kind: DeadlineKind::StopTimeout,
        },
        Input::Ready {
            unit: "ghost".into(),
        },
        Input::Beat { unit: "a".into() },
        Input::Command(Command::Stop("ghost".into())),
    ] {
        assert_eq!(f.sup.handle(input, now), vec![]);
    }
    assert_eq!(f.state("a"), State::Running);
    assert_eq!(f.rec("a").pid, Some(100));
}

#[test]
fn notify_unit_is_starting_until_ready() {
    let mut f = Fake::new();
    f.load(vec![unit("a").notify(Some(secs(10)))]);
    assert_eq!(f.state("a"), State::Starting);
    assert!(!f.rec("a").ready);
    assert_eq!(f.sup.wait_result("a", Want::Up), None);
    assert_eq!(
        f.deadline("a", DeadlineKind::ReadyTimeout),
        Some(f.mono(secs(10)))
    );
    let fx = f.send(Input::Ready { unit: "a".into() });
    assert!(has(
        &fx,
        &Effect::Disarm {
            unit: "a".into(),
            kind: DeadlineKind::ReadyTimeout
        }
    ));
    assert_eq!(f.state("a"), State::Running);
    assert_eq!(f.sup.wait_result("a", Want::Up), Some(Ok(())));
}

#[test]
fn ready_timeout_stops_the_unit_and_counts_as_a_failed_start() {
    let mut f = Fake::new();
    f.load(vec![unit("a")
        .notify(Some(secs(10)))
        .policy(RestartPolicy::Never)]);
    let fx = f.advance(secs(10));
    assert!(has(
        &fx,
        &Effect::Signal {
            unit: "a".into(),
            signal: libc::SIGTERM
        }
    ));
    assert_eq!(f.state("a"), State::Failed);
    let e = f.rec("a").last_exit.clone();
    assert_eq!(e.and_then(|e| e.reason), Some(ExitReason::ReadyTimeout));
    assert!(matches!(f.sup.wait_result("a", Want::Up), Some(Err(_))));
}

#[test]
fn ready_timeout_with_restart_goes_to_backoff() {
    let mut f = Fake::new();
    f.load(vec![unit("a").notify(Some(secs(10)))]);
    f.advance(secs(10));
    assert_eq!(f.state("a"), State::Backoff);
    assert!(matches!(f.sup.wait_result("a", Want::Up), Some(Err(_))));
}

#[test]
fn units_iterates_every_unit() {
    let mut f = Fake::new();
    f.load(vec![unit("b"), unit("a").after(&["b"]), unit("c")]);
    let names: Vec<&str> = f.sup.units().map(|u| u.name.as_str()).collect();
    assert_eq!(names.len(), 3);
    let pos = |n: &str| names.iter().position(|x| *x == n);
    assert!(pos("b") < pos("a"));
}

#[test]
fn status_views_carry_what_the_core_knows() {
    let mut f = Fake::new();
    f.broken.insert("bad".into());
    f.load(vec![
        unit("bad").policy(RestartPolicy::Never),
        unit("hb")
            .heartbeat(secs(30), secs(60))
            .with(|u| u.tags = vec!["x".into()]),
    ]);
    f.advance(secs(2));
    f.send(Input::Beat { unit: "hb".into() });
    f.advance(ms(1500));
    let s = f.rec("bad").to_status(f.now().wall);
    assert_eq!(s.state, "failed");
    let e = s.last_exit.unwrap_or_default();
    assert_eq!(e.reason.as_deref(), Some("exec"));
    assert_eq!(e.detail.as_deref(), Some("No such file or directory"));
    assert_eq!(e.code, None);
    let s = f.rec("hb").to_status(f.now().wall);
    assert_eq!(s.state, "running");
    assert_eq!(s.pid, Some(100));
    assert!(s.ready && s.enabled);
    assert_eq!(s.tags, vec!["x".to_string()]);
    assert_eq!(s.since, "2026-06-15T12:00:00.000Z");
    assert_eq!(s.heartbeat.and_then(|h| h.age_ms), Some(1500));
    assert!(f.rec("hb").timer_status().is_none());
}

#[test]
fn mainpid_changes_the_pid_shown_only_while_running() {
    let mut f = Fake::new();
    f.load(vec![unit("a").notify(None)]);
    f.send(Input::MainPid {
        unit: "a".into(),
        pid: 4242,
    });
    assert_eq!(f.rec("a").pid, Some(4242));
    f.cmd(Command::Stop("a".into()));
    f.send(Input::MainPid {
        unit: "a".into(),
        pid: 7,
    });
    assert_eq!(f.rec("a").pid, None);
}

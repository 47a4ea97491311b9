//! Random inputs in random order: the core never panics, never spawns over a live
//! process or its leftovers, keeps its pids in line with reality, and a shutdown ends.

use super::*;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const NAMES: [&str; 6] = ["a", "b", "c", "d", "e", "t"];

fn random_unit(r: &mut Rng, i: usize) -> Unit {
    let name = NAMES[i];
    let mut u = unit(name);
    // Dependencies only on other names; cycles are possible and must not hang anything.
    for other in NAMES.iter().filter(|n| **n != name) {
        if r.chance(15) {
            u.after.push(other.to_string());
        }
        if r.chance(10) {
            u.requires.push(other.to_string());
        }
    }
    u.restart.policy = match r.below(3) {
        0 => RestartPolicy::Always,
        1 => RestartPolicy::OnFailure,
        _ => RestartPolicy::Never,
    };
    u.restart.delay_min = Some(ms(r.below(3) as u64 * 500));
    u.restart.delay_max = Some(secs(4));
    u.enabled = r.chance(80);
    u.essential = r.chance(5);
    if r.chance(30) {
        u.ready.kind = units::model::ReadyType::Notify;
        u.ready.timeout = Some(secs(3));
    }
    if r.chance(20) {
        u.ready.settle = ms(r.below(3) as u64 * 700);
    }
    if r.chance(20) {
        u.restart.max_failures = Some(1 + r.below(3) as u32);
    }
    if r.chance(30) {
        u.heartbeat = Some(units::model::Heartbeat {
            file: None,
            period: secs(2),
            grace: secs(3),
        });
    }
    // Hooks, conditions, wants and conflicts (their effects answered by the fake loop).
    for kind in units::hooks::HookKind::ALL {
        if r.chance(20) {
            for _ in 0..1 + r.below(2) {
                let line = if r.chance(30) { "-/bin/h" } else { "/bin/h" };
                u.hooks
                    .get_mut(kind)
                    .push(units::hooks::parse_hook_line(line).unwrap());
            }
        }
    }
    if r.chance(15) {
        u.conditions.push(
            units::conditions::parse_condition(units::conditions::Check::Host, r.chance(30), "h")
                .unwrap(),
        );
    }
    for other in NAMES.iter().filter(|n| **n != name) {
        if r.chance(8) {
            u.links.wants.push(other.to_string());
        }
        if r.chance(4) {
            u.links.conflicts.push(other.to_string());
        }
        if r.chance(5) {
            u.links.before.push(other.to_string());
        }
    }
    if name == "t" || r.chance(10) {
        u.timer = Some(Box::new(Timer {
            every: Some(secs(1 + r.below(5) as u64)),
            timeout: if r.chance(50) { Some(secs(2)) } else { None },
            persistent: r.chance(50),
            ..Default::default()
        }));
    }
    u
}

fn random_set(r: &mut Rng) -> Vec<(String, Result<Unit, String>)> {
    let mut set = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        if r.chance(85) {
            let res = if r.chance(10) {
                Err("broken".to_string())
            } else {
                Ok(random_unit(r, i))
            };
            set.push((name.to_string(), res));
        }
    }
    set
}

fn check(f: &Fake, seed: u64, step: usize) {
    // FUZZ_DEBUG=NAME: that unit's record after each step.
    if let Some(u) = std::env::var("FUZZ_DEBUG").ok().and_then(|n| f.sup.get(&n)) {
        eprintln!(
            "   {}: {:?} want {} job {:?} phase {:?} hook {:?} armed {:b}",
            u.name, u.state, u.want_up, u.job, u.phase, u.hook, u.armed
        );
    }
    let step = format!("seed {seed} step {step}");
    assert!(f.violations.is_empty(), "step {step}: {:?}", f.violations);
    for u in f.sup.units() {
        assert_eq!(
            u.pid.is_some(),
            f.alive.contains_key(&u.name),
            "step {step}: {} pid {:?} vs alive {:?}",
            u.name,
            u.pid,
            f.alive.get(&u.name)
        );
        if u.state == State::Running && !u.is_timer() {
            assert!(
                u.pid.is_some(),
                "step {step}: {} running without a process",
                u.name
            );
        }
        if u.want_up && u.job.is_none() && u.def.is_some() && !f.sup.is_shutting_down() {
            assert!(
                u.state != State::Stopped || u.held.is_some(),
                "{step}: {} wanted up, stopped, and nothing will start it",
                u.name
            );
        }
        // Held only while its cause lasts: the load that ends it starts the unit.
        match &u.held {
            Some(Held::MissingRequired(r)) => {
                assert!(
                    f.sup.get(r).is_none_or(|r| r.removed),
                    "{step}: {} held by {r}, which is there",
                    u.name
                )
            }
            Some(Held::RequiredHeld(r)) => assert!(
                f.sup.get(r).is_some_and(|r| r.held.is_some() && r.want_up),
                "{step}: {} held by {r}, which is not held: {:?}",
                u.name,
                f.sup
                    .get(r)
                    .map(|r| (r.state, r.held.clone(), r.want_up, r.job))
            ),
            None => {}
        }
        // No state that waits for something that cannot come.
        match u.state {
            State::Stopping | State::Starting => {
                assert!(
                    !u.is_gone(),
                    "step {step}: {} {:?} with nothing left",
                    u.name,
                    u.state
                )
            }
            State::Backoff => assert!(
                u.is_armed(DeadlineKind::Restart)
                    || (u.restart_due && !u.is_gone())
                    || u.job.is_some(),
                "step {step}: {} in backoff with no restart coming",
                u.name
            ),
            State::Waiting => assert!(
                u.is_armed(DeadlineKind::TimerRun)
                    || u.timer.as_ref().is_some_and(|t| t.next.is_none()),
                "step {step}: {} waiting with no run armed",
                u.name
            ),
            _ => {}
        }
        for kind in [
            DeadlineKind::Restart,
            DeadlineKind::TimerRun,
            DeadlineKind::StopTimeout,
        ] {
            assert_eq!(
                u.is_armed(kind),
                f.deadline(&u.name, kind).is_some(),
                "step {step}: {} {kind:?} armed in the core and the loop differ",
                u.name
            );
        }
    }
}

fn run(seed: u64, steps: usize) {
    let mut r = Rng(seed);
    let mut f = Fake::new();
    f.load_raw(vec![]);
    let pick = |r: &mut Rng| NAMES[r.below(NAMES.len())].to_string();
    for step in 0..steps {
        f.obey = r.chance(70);
        f.auto_empty = r.chance(70);
        if r.chance(5) {
            if r.chance(50) {
                // A spawn that fails, or one that panics in the loop.
                if r.chance(50) {
                    f.broken.insert(pick(&mut r));
                } else {
                    f.panicky.insert(pick(&mut r));
                }
            } else {
                f.broken.clear();
                f.panicky.clear();
            }
        }
        let input = match r.below(14) {
            0 => Input::Load(random_set(&mut r)),
            1 => Input::Command(Command::Start(pick(&mut r))),
            2 => Input::Command(Command::Stop(pick(&mut r))),
            3 => Input::Command(Command::Restart(pick(&mut r))),
            4 if r.chance(20) => Input::Command(Command::RestartAll),
            5 => {
                let name = pick(&mut r);
                if f.alive.remove(&name).is_some() {
                    Input::Exited {
                        unit: name,
                        status: if r.chance(50) {
                            ExitStatus::Code(r.below(3) as i32)
                        } else {
                            ExitStatus::Signal(9)
                        },
                        oom: r.chance(10),
                    }
                } else {
                    Input::Beat { unit: name }
                }
            }
            6 if r.chance(50) => Input::Ready { unit: pick(&mut r) },
            6 => {
                // The unit empties (or, while its main process lives, a stale Empty).
                let name = pick(&mut r);
                if !f.alive.contains_key(&name) {
                    f.group.remove(&name);
                }
                Input::Empty { unit: name }
            }
            7 => Input::Beat { unit: pick(&mut r) },
            8 if r.chance(30) => Input::Fault {
                unit: pick(&mut r),
                reason: Fault::Health,
            },
            9 if r.chance(10) => Input::RestoreTimer {
                unit: pick(&mut r),
                last_run: f.now().wall - secs(r.below(100) as u64),
            },
            10 if r.chance(5) => Input::ClockChanged,
            11 if r.chance(70) => Input::Reloading {
                unit: pick(&mut r),
                reloading: r.chance(50),
            },
            11 => Input::Stopping { unit: pick(&mut r) },
            13 if r.chance(40) && !f.hooks.is_empty() => {
                // A hook command ends by itself.
                let names: Vec<String> = f.hooks.keys().cloned().collect();
                let name = names[r.below(names.len())].clone();
                let code = if r.chance(70) { 0 } else { 1 };
                f.end_hook(&name, code);
                check(&f, seed, step);
                continue;
            }
            13 if r.chance(30) => Input::Command(Command::Reload(pick(&mut r))),
            13 if r.chance(30) => {
                let name = pick(&mut r);
                match r.below(3) {
                    0 => f.verdicts.remove(&name),
                    1 => f.verdicts.insert(name, Verdict::Skip("no".into())),
                    _ => f.verdicts.insert(name, Verdict::Fail("no".into())),
                };
                continue;
            }
            12 if r.chance(50) => {
                // Strays of a unit without a cgroup: found while something of it may be
                // left (the loop looks at a KillAll), and gone at any time.
                let name = pick(&mut r);
                let pids = if f.group.contains(&name) && r.chance(50) {
                    vec![100_000 + step as i32]
                } else {
                    Vec::new()
                };
                f.strays.insert(name.clone(), pids.clone());
                Input::Strays { unit: name, pids }
            }
            _ => {
                let d = ms(r.below(3000) as u64);
                let fx = f.advance(d);
                if std::env::var_os("FUZZ_TRACE").is_some() {
                    eprintln!("{step}: advance {d:?} -> {fx:?}");
                }
                check(&f, seed, step);
                continue;
            }
        };
        let trace = std::env::var_os("FUZZ_TRACE").is_some();
        if trace {
            eprintln!("{step}: {input:?}");
        }
        let fx = f.send(input);
        if trace {
            eprintln!("   -> {fx:?}");
        }
        check(&f, seed, step);
    }
    // Whatever the state, a shutdown ends once processes obey or get killed.
    f.obey = r.chance(50);
    let mut fx = f.send(Input::Shutdown);
    for _ in 0..3 {
        let left: Vec<String> = f
            .group
            .iter()
            .filter(|n| !f.alive.contains_key(*n))
            .cloned()
            .collect();
        for name in left {
            f.group.remove(&name);
            fx.extend(f.send(Input::Empty { unit: name }));
        }
        let strayed: Vec<String> = f.strays.keys().cloned().collect();
        for name in strayed {
            f.strays.remove(&name);
            fx.extend(f.send(Input::Strays {
                unit: name,
                pids: Vec::new(),
            }));
        }
        f.auto_empty = true;
        fx.extend(f.advance(secs(60)));
    }
    check(&f, seed, steps);
    let exit_at = f.log.iter().position(|e| matches!(e, Effect::Exit { .. }));
    let late_spawn = exit_at.and_then(|at| {
        f.log[at..]
            .iter()
            .position(|e| matches!(e, Effect::Spawn { .. }))
    });
    assert_eq!(late_spawn, None, "seed {seed}: a spawn after Exit");
    let exits = f
        .log
        .iter()
        .filter(|e| matches!(e, Effect::Exit { .. }))
        .count();
    assert_eq!(exits, 1, "seed {seed}: one Exit");
    assert!(f.alive.is_empty(), "seed {seed}: left alive {:?}", f.alive);
    assert!(f.group.is_empty(), "seed {seed}: left over {:?}", f.group);
    let spawns = f
        .log
        .iter()
        .filter(|e| matches!(e, Effect::Spawn { .. }))
        .count();
    let kills = f
        .log
        .iter()
        .filter(|e| matches!(e, Effect::KillAll { .. }))
        .count();
    let forgets = f
        .log
        .iter()
        .filter(|e| matches!(e, Effect::Forget { .. }))
        .count();
    if std::env::var_os("FUZZ_STATS").is_some() {
        eprintln!(
            "seed {seed}: spawns {spawns} kills {kills} forgets {forgets} log {}",
            f.log.len()
        );
    }
}

#[test]
fn random_inputs_keep_the_rules() {
    // FUZZ_SEEDS=N runs more; FUZZ_SEED=S only that one (with FUZZ_TRACE=1 to see it).
    if let Some(seed) = std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()) {
        return run(seed, 400);
    }
    let n = std::env::var("FUZZ_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200u64);
    for seed in 1..=n {
        run(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15), 400);
    }
}

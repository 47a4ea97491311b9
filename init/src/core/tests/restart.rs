//! Restarts: NColony's backoff, policies, leftovers, exec failures.

use super::*;

fn restart_at(f: &Fake, name: &str) -> Option<Duration> {
    f.deadline(name, DeadlineKind::Restart)
        .map(|at| at - f.mono(Duration::ZERO))
}

#[test]
fn instant_deaths_double_the_delay_from_delay_min() {
    let mut f = Fake::new();
    f.load(vec![unit("a").delays(secs(1), secs(60))]);
    let mut expect = Vec::new();
    let mut got = Vec::new();
    for delay in [1, 2, 4, 8, 16] {
        f.advance(ms(100)); // dies 100ms after start: instant
        f.exit("a", 1);
        assert_eq!(f.state("a"), State::Backoff);
        got.push(restart_at(&f, "a").map(|d| d - f.t));
        expect.push(Some(secs(delay)));
        let fx = f.advance(secs(delay));
        assert_eq!(Fake::spawns(&fx), vec!["a"]);
        assert_eq!(f.state("a"), State::Running);
    }
    assert_eq!(got, expect);
    assert_eq!(f.rec("a").restarts, 5);
}

#[test]
fn backoff_is_capped_at_delay_max() {
    let mut f = Fake::new();
    f.load(vec![unit("a").delays(secs(1), secs(5))]);
    let mut delays = Vec::new();
    for _ in 0..6 {
        f.exit("a", 1);
        let d = restart_at(&f, "a").map(|d| d - f.t);
        delays.push(d);
        f.advance(d.unwrap_or_default());
    }
    assert_eq!(
        delays,
        [1, 2, 4, 5, 5, 5]
            .iter()
            .map(|&s| Some(secs(s)))
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_long_life_resets_the_backoff() {
    let mut f = Fake::new();
    f.load(vec![unit("a").delays(secs(1), secs(60))]);
    for d in [1, 2, 4] {
        f.exit("a", 1);
        f.advance(secs(d));
    }
    f.advance(secs(2)); // lives 2s > threshold 1s
    f.exit("a", 1);
    assert_eq!(restart_at(&f, "a").map(|d| d - f.t), Some(secs(1)));
    f.advance(secs(1));
    // And instant deaths start doubling afresh from delay_min.
    f.exit("a", 1);
    assert_eq!(restart_at(&f, "a").map(|d| d - f.t), Some(secs(1)));
    f.advance(secs(1));
    f.exit("a", 1);
    assert_eq!(restart_at(&f, "a").map(|d| d - f.t), Some(secs(2)));
}

#[test]
fn unit_threshold_overrides_the_default() {
    let mut f = Fake::new();
    f.load(vec![unit("a")
        .delays(secs(1), secs(60))
        .with(|u| u.restart.threshold = Some(secs(10)))]);
    f.exit("a", 1);
    f.advance(secs(1));
    f.advance(secs(5)); // 5s < 10s: still instant
    f.exit("a", 1);
    assert_eq!(restart_at(&f, "a").map(|d| d - f.t), Some(secs(2)));
}

#[test]
fn defaults_apply_when_the_unit_is_silent() {
    let mut f = Fake::with(Supervisor::new(Defaults {
        threshold: secs(1),
        kill_timeout: secs(5),
        min_restart_delay: secs(3),
        max_restart_delay: secs(4),
    }));
    f.load(vec![unit("a")]);
    f.exit("a", 1);
    assert_eq!(restart_at(&f, "a").map(|d| d - f.t), Some(secs(3)));
    f.advance(secs(3));
    f.exit("a", 1);
    assert_eq!(restart_at(&f, "a").map(|d| d - f.t), Some(secs(4)));
}

#[test]
fn zero_delay_min_restarts_a_crash_at_once_after_the_leftovers_are_gone() {
    let mut f = Fake::new();
    f.auto_empty = false;
    f.load(vec![unit("a").delays(Duration::ZERO, secs(60))]);
    f.advance(secs(5));
    let fx = f.exit("a", 1);
    assert_eq!(fx, vec![killall("a")]);
    assert_eq!(f.state("a"), State::Backoff);
    let fx = f.send(Input::Empty { unit: "a".into() });
    assert_eq!(fx, vec![spawn("a")]);
    assert_eq!(f.state("a"), State::Running);
    assert_eq!(f.rec("a").restarts, 1);
}

#[test]
fn zero_delay_min_never_spins_on_repeated_instant_deaths() {
    let mut f = Fake::new();
    f.load(vec![unit("a").delays(Duration::ZERO, secs(60))]);
    let fx = f.exit("a", 1);
    assert!(
        has(&fx, &spawn("a")),
        "first instant death restarts at once"
    );
    f.exit("a", 1);
    assert_eq!(f.state("a"), State::Backoff);
    assert!(restart_at(&f, "a").map(|d| d - f.t) >= Some(ms(100)));
}

#[test]
fn zero_threshold_still_spaces_a_crash_loop() {
    // threshold = "0s" counts no death as instant; a program that dies at once must still
    // not restart in a loop (it did, some 800 times a second).
    let mut f = Fake::new();
    f.load(vec![unit("a")
        .delays(Duration::ZERO, Duration::ZERO)
        .with(|u| u.restart.threshold = Some(Duration::ZERO))]);
    let mut delays = Vec::new();
    for _ in 0..5 {
        let fx = f.exit("a", 1);
        if has(&fx, &spawn("a")) {
            delays.push(Duration::ZERO);
        } else {
            let d = restart_at(&f, "a")
                .map(|d| d - f.t)
                .expect("a restart armed");
            delays.push(d);
            assert_eq!(Fake::spawns(&f.advance(d)), vec!["a"]);
        }
        assert_eq!(f.state("a"), State::Running);
    }
    assert_eq!(
        delays,
        [0, 100, 100, 100, 100].map(ms),
        "the first restart at once, then at least 100ms"
    );
}

#[test]
fn zero_option_defaults_still_space_a_crash_loop() {
    // colony-init --threshold 0s --min-restart-delay 0s --max-restart-delay 0s
    let mut f = Fake::with(Supervisor::new(Defaults {
        threshold: Duration::ZERO,
        kill_timeout: secs(5),
        min_restart_delay: Duration::ZERO,
        max_restart_delay: Duration::ZERO,
    }));
    f.load(vec![unit("a")]);
    assert!(has(&f.exit("a", 1), &spawn("a")));
    f.exit("a", 1);
    assert_eq!(f.state("a"), State::Backoff);
    assert_eq!(restart_at(&f, "a").map(|d| d - f.t), Some(ms(100)));
}

#[test]
fn zero_threshold_restarts_a_life_past_100ms_at_once() {
    let mut f = Fake::new();
    f.load(vec![unit("a")
        .delays(Duration::ZERO, secs(60))
        .with(|u| u.restart.threshold = Some(Duration::ZERO))]);
    for _ in 0..3 {
        f.advance(ms(150));
        let fx = f.exit("a", 1);
        assert!(has(&fx, &spawn("a")), "a life of 150ms is not instant");
    }
    assert_eq!(f.rec("a").restarts, 3);
}

#[test]
fn no_restart_settings_make_more_than_20_restarts_a_second() {
    // Mostly deaths at once, some lives around the 100ms line, with the settings that
    // restart soonest.
    let lives = [0, 0, 0, 1, 0, 99, 0, 0, 100, 0, 0, 0, 150, 0, 101, 0, 2, 0].map(ms);
    for threshold in [Duration::ZERO, Duration::from_nanos(1), ms(50), secs(1)] {
        for delay_max in [Duration::ZERO, ms(50), secs(3600)] {
            let mut f = Fake::new();
            f.load(vec![unit("a")
                .delays(Duration::ZERO, delay_max)
                .with(|u| u.restart.threshold = Some(threshold))]);
            let mut i = 0;
            while f.t < secs(10) && i < 100_000 {
                f.advance(lives[i % lives.len()]);
                i += 1;
                f.exit("a", 1);
                if let Some(d) = restart_at(&f, "a").filter(|_| f.state("a") == State::Backoff) {
                    f.advance(d - f.t);
                }
                assert_eq!(f.state("a"), State::Running);
            }
            let restarts = f.rec("a").restarts;
            let bound = 1 + 20 * f.t.as_millis() as u64 / 1000;
            assert!(
                restarts <= bound,
                "threshold {threshold:?}, delay_max {delay_max:?}: {restarts} restarts in {:?}",
                f.t
            );
        }
    }
}

#[test]
fn leftovers_are_killed_and_gone_before_a_restart() {
    let mut f = Fake::new();
    f.auto_empty = false;
    f.load(vec![unit("a").delays(secs(1), secs(60))]);
    let fx = f.exit("a", 1);
    assert_eq!(fx.first(), Some(&killall("a")));
    // The backoff passes but something of the unit is still there: no spawn yet.
    let fx = f.advance(secs(2));
    assert!(Fake::spawns(&fx).is_empty());
    assert_eq!(f.state("a"), State::Backoff);
    let fx = f.send(Input::Empty { unit: "a".into() });
    assert_eq!(Fake::spawns(&fx), vec!["a"]);
}

#[test]
fn empty_before_the_exit_is_not_trusted() {
    let mut f = Fake::new();
    f.auto_empty = false;
    f.load(vec![unit("a").delays(Duration::ZERO, secs(60))]);
    f.send(Input::Empty { unit: "a".into() });
    let fx = f.exit("a", 1);
    assert_eq!(
        fx,
        vec![killall("a")],
        "still waits for an Empty after KillAll"
    );
    let fx = f.send(Input::Empty { unit: "a".into() });
    assert_eq!(fx, vec![spawn("a")]);
}

#[test]
fn policy_never_exited_on_success_failed_otherwise() {
    let mut f = Fake::new();
    f.load(vec![
        unit("ok").policy(RestartPolicy::Never),
        unit("bad").policy(RestartPolicy::Never),
    ]);
    f.exit("ok", 0);
    f.exit("bad", 3);
    assert_eq!(f.state("ok"), State::Exited);
    assert_eq!(f.state("bad"), State::Failed);
    assert_eq!(
        f.rec("bad").last_exit.as_ref().and_then(|e| e.status),
        Some(ExitStatus::Code(3))
    );
    assert_eq!(f.sup.wait_result("ok", Want::Up), Some(Ok(())));
    assert!(matches!(f.sup.wait_result("bad", Want::Up), Some(Err(_))));
    assert_eq!(f.rec("bad").restarts, 0);
    assert!(f.deadlines.is_empty());
}

#[test]
fn on_failure_restarts_unless_a_success_code() {
    let mut f = Fake::new();
    f.load(vec![
        unit("a")
            .policy(RestartPolicy::OnFailure)
            .with(|u| u.restart.success_codes = vec![0, 42]),
        unit("b").policy(RestartPolicy::OnFailure),
        unit("c").policy(RestartPolicy::OnFailure),
    ]);
    f.exit("a", 42);
    f.exit("b", 1);
    f.alive.remove("c");
    f.send(Input::Exited {
        unit: "c".into(),
        status: ExitStatus::Signal(libc::SIGSEGV),
        oom: false,
    });
    assert_eq!(f.state("a"), State::Exited);
    assert_eq!(f.state("b"), State::Backoff);
    assert_eq!(f.state("c"), State::Backoff);
}

#[test]
fn always_restarts_even_a_success() {
    let mut f = Fake::new();
    f.load(vec![unit("a")]);
    f.exit("a", 0);
    assert_eq!(f.state("a"), State::Backoff);
    f.advance(secs(1));
    assert_eq!(f.state("a"), State::Running);
}

#[test]
fn exec_failure_backs_off_with_reason_exec() {
    let mut f = Fake::new();
    f.broken.insert("a".into());
    f.load(vec![unit("a").delays(secs(1), secs(60))]);
    assert_eq!(f.state("a"), State::Backoff);
    let e = f.rec("a").last_exit.clone();
    assert_eq!(
        e,
        Some(LastExit {
            status: None,
            reason: Some(ExitReason::Exec),
            detail: Some("No such file or directory".into())
        })
    );
    // Every retry is an instant death: the delay grows.
    f.advance(secs(1));
    assert_eq!(restart_at(&f, "a").map(|d| d - f.t), Some(secs(2)));
    f.advance(secs(2));
    assert_eq!(restart_at(&f, "a").map(|d| d - f.t), Some(secs(4)));
    assert_eq!(f.rec("a").restarts, 2);
    assert!(matches!(f.sup.wait_result("a", Want::Up), Some(Err(e)) if e.contains("No such file")));
}

#[test]
fn a_spawn_that_panicked_in_the_loop_fails_the_start_and_is_retried() {
    let mut f = Fake::new();
    f.panicky.insert("a".into());
    f.load(vec![unit("a").delays(secs(1), secs(60))]);
    // Not `starting` for good: a failed start, in backoff.
    assert_eq!(f.state("a"), State::Backoff);
    let e = f
        .rec("a")
        .last_exit
        .clone()
        .unwrap_or_else(|| panic!("no last exit"));
    assert_eq!((e.status, e.reason), (None, Some(ExitReason::Exec)));
    assert!(e.detail.is_some_and(|d| d.contains("internal error")));
    assert!(matches!(f.sup.wait_result("a", Want::Up), Some(Err(_))));
    f.panicky.clear();
    let fx = f.advance(secs(1));
    assert_eq!(Fake::spawns(&fx), vec!["a".to_string()]);
    assert_eq!(f.state("a"), State::Running);
}

#[test]
fn a_failed_effect_other_than_spawn_changes_nothing() {
    let mut f = Fake::new();
    f.load(vec![unit("a")]);
    let pid = f.rec("a").pid;
    for effect in [EffectKind::Signal, EffectKind::KillAll, EffectKind::Arm] {
        let fx = f.send(Input::EffectFailed {
            unit: "a".into(),
            effect,
        });
        assert_eq!(fx, vec![]);
    }
    assert_eq!((f.state("a"), f.rec("a").pid), (State::Running, pid));
    // A stale report of a failed spawn (the unit runs) is ignored too.
    f.send(Input::EffectFailed {
        unit: "a".into(),
        effect: EffectKind::Spawn,
    });
    assert_eq!((f.state("a"), f.rec("a").pid), (State::Running, pid));
}

#[test]
fn exec_failure_with_policy_never_fails() {
    let mut f = Fake::new();
    f.broken.insert("a".into());
    f.load(vec![unit("a").policy(RestartPolicy::Never)]);
    assert_eq!(f.state("a"), State::Failed);
}

#[test]
fn oom_is_the_reason() {
    let mut f = Fake::new();
    f.load(vec![unit("a")]);
    f.alive.remove("a");
    f.send(Input::Exited {
        unit: "a".into(),
        status: ExitStatus::Signal(9),
        oom: true,
    });
    assert_eq!(
        f.rec("a").last_exit.as_ref().and_then(|e| e.reason),
        Some(ExitReason::Oom)
    );
}

#[test]
fn start_in_backoff_starts_now() {
    let mut f = Fake::new();
    f.load(vec![unit("a").delays(secs(10), secs(60))]);
    f.exit("a", 1);
    assert_eq!(f.state("a"), State::Backoff);
    let fx = f.cmd(Command::Start("a".into()));
    assert_eq!(Fake::spawns(&fx), vec!["a"]);
    assert_eq!(f.deadline("a", DeadlineKind::Restart), None);
    assert_eq!(f.state("a"), State::Running);
}

#[test]
fn restart_command_stops_then_starts() {
    let mut f = Fake::new();
    f.load(vec![unit("a")]);
    let fx = f.cmd(Command::Restart("a".into()));
    assert_eq!(
        fx.iter()
            .filter(|e| matches!(
                e,
                Effect::Signal { .. } | Effect::KillAll { .. } | Effect::Spawn { .. }
            ))
            .cloned()
            .collect::<Vec<_>>(),
        vec![
            Effect::Signal {
                unit: "a".into(),
                signal: libc::SIGTERM
            },
            killall("a"),
            spawn("a")
        ]
    );
    assert_eq!(f.state("a"), State::Running);
    assert_eq!(f.rec("a").pid, Some(101));
    assert_eq!(f.rec("a").restarts, 0, "a user's restart is not counted");
    assert_eq!(f.sup.wait_result("a", Want::Up), Some(Ok(())));
}

#[test]
fn restart_all_restarts_every_running_unit() {
    let mut f = Fake::new();
    f.load(vec![unit("a"), unit("b"), unit("c").disabled()]);
    let fx = f.cmd(Command::RestartAll);
    let mut s = Fake::spawns(&fx);
    s.sort();
    assert_eq!(s, vec!["a", "b"]);
}

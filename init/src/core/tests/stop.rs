//! Stopping: signal, timeout, KillAll, Empty; shutdown; essential units.

use super::*;

#[test]
fn stop_signals_then_kills_the_rest_when_main_exits() {
    let mut f = Fake::new();
    f.auto_empty = false;
    f.load(vec![unit("a").with(|u| u.stop.signal = libc::SIGINT)]);
    let fx = f.cmd(Command::Stop("a".into()));
    assert!(has(
        &fx,
        &Effect::Signal {
            unit: "a".into(),
            signal: libc::SIGINT
        }
    ));
    assert!(
        has(&fx, &killall("a")),
        "main died of the signal: what is left is killed"
    );
    assert_eq!(f.state("a"), State::Stopping);
    assert_eq!(f.sup.wait_result("a", Want::Down), None);
    f.send(Input::Empty { unit: "a".into() });
    assert_eq!(f.state("a"), State::Stopped);
    assert_eq!(f.sup.wait_result("a", Want::Down), Some(Ok(())));
    assert_eq!(
        f.rec("a").last_exit.as_ref().and_then(|e| e.reason),
        Some(ExitReason::Stopped)
    );
    assert!(f.deadlines.is_empty());
}

#[test]
fn stop_timeout_kills_everything() {
    let mut f = Fake::new();
    f.obey = false; // ignores SIGTERM
    f.auto_empty = false;
    f.load(vec![unit("a").with(|u| u.stop.timeout = Some(secs(3)))]);
    f.cmd(Command::Stop("a".into()));
    assert_eq!(
        f.deadline("a", DeadlineKind::StopTimeout),
        Some(f.mono(secs(3)))
    );
    let fx = f.advance(secs(2));
    assert!(fx.is_empty());
    assert_eq!(f.state("a"), State::Stopping);
    let fx = f.advance(secs(1));
    assert_eq!(fx.first(), Some(&killall("a")));
    assert_eq!(f.state("a"), State::Stopping, "stopped only when empty");
    f.send(Input::Empty { unit: "a".into() });
    assert_eq!(f.state("a"), State::Stopped);
    assert_eq!(
        f.rec("a").last_exit.as_ref().and_then(|e| e.status),
        Some(ExitStatus::Signal(9))
    );
}

#[test]
fn stop_timeout_defaults_to_kill_timeout() {
    let mut f = Fake::new();
    f.obey = false;
    f.load(vec![unit("a")]);
    f.cmd(Command::Stop("a".into()));
    assert_eq!(
        f.deadline("a", DeadlineKind::StopTimeout),
        Some(f.mono(secs(5)))
    );
}

#[test]
fn stop_in_backoff_cancels_the_restart() {
    let mut f = Fake::new();
    f.load(vec![unit("a")]);
    f.exit("a", 1);
    assert_eq!(f.state("a"), State::Backoff);
    let fx = f.cmd(Command::Stop("a".into()));
    assert!(has(
        &fx,
        &Effect::Disarm {
            unit: "a".into(),
            kind: DeadlineKind::Restart
        }
    ));
    assert_eq!(f.state("a"), State::Stopped);
    let fx = f.advance(secs(100));
    assert!(fx.is_empty());
}

#[test]
fn a_stopped_unit_is_not_restarted_when_it_dies() {
    let mut f = Fake::new();
    f.load(vec![unit("a")]);
    f.cmd(Command::Stop("a".into()));
    let fx = f.advance(secs(100));
    assert!(Fake::spawns(&fx).is_empty());
    assert_eq!(f.state("a"), State::Stopped);
}

#[test]
fn stop_then_start_waits_for_the_stop() {
    let mut f = Fake::new();
    f.obey = false;
    f.auto_empty = false;
    f.load(vec![unit("a")]);
    f.cmd(Command::Stop("a".into()));
    let fx = f.cmd(Command::Start("a".into()));
    assert!(Fake::spawns(&fx).is_empty());
    assert_eq!(f.sup.wait_result("a", Want::Up), None);
    assert!(matches!(f.sup.wait_result("a", Want::Down), Some(Err(_))));
    f.exit("a", 0);
    let fx = f.send(Input::Empty { unit: "a".into() });
    assert_eq!(Fake::spawns(&fx), vec!["a"]);
    assert_eq!(f.sup.wait_result("a", Want::Up), Some(Ok(())));
}

#[test]
fn shutdown_stops_everything_in_reverse_order_then_exits_0() {
    let mut f = Fake::new();
    f.obey = false;
    f.auto_empty = false;
    f.load(vec![
        unit("db"),
        unit("app").after(&["db"]),
        unit("web").after(&["app"]),
    ]);
    let fx = f.send(Input::Shutdown);
    assert_eq!(Fake::signals(&fx), vec!["web"]);
    f.exit("web", 0);
    let fx = f.send(Input::Empty { unit: "web".into() });
    assert_eq!(Fake::signals(&fx), vec!["app"]);
    f.exit("app", 0);
    let fx = f.send(Input::Empty { unit: "app".into() });
    assert_eq!(Fake::signals(&fx), vec!["db"]);
    f.exit("db", 0);
    let fx = f.send(Input::Empty { unit: "db".into() });
    assert_eq!(fx, vec![Effect::Exit { code: 0 }]);
    for n in ["db", "app", "web"] {
        assert_eq!(f.state(n), State::Stopped);
    }
}

#[test]
fn shutdown_with_nothing_running_exits_at_once() {
    let mut f = Fake::new();
    f.load(vec![unit("a").disabled()]);
    let fx = f.send(Input::Shutdown);
    assert_eq!(fx, vec![Effect::Exit { code: 0 }]);
}

#[test]
fn shutdown_ignores_new_starts_and_restarts() {
    let mut f = Fake::new();
    f.obey = false;
    f.load(vec![unit("a"), unit("b").disabled()]);
    f.send(Input::Shutdown);
    let fx = f.cmd(Command::Start("b".into()));
    assert!(Fake::spawns(&fx).is_empty());
    let fx = f.exit("a", 1);
    assert!(Fake::spawns(&fx).is_empty());
    assert!(has(&fx, &Effect::Exit { code: 0 }));
}

#[test]
fn shutdown_kills_a_unit_that_ignores_the_signal() {
    let mut f = Fake::new();
    f.obey = false;
    f.load(vec![unit("a")]);
    f.send(Input::Shutdown);
    let fx = f.advance(secs(5));
    assert!(has(&fx, &killall("a")));
    assert!(has(&fx, &Effect::Exit { code: 0 }));
}

#[test]
fn essential_failure_stops_everything_and_exits_with_its_code() {
    let mut f = Fake::new();
    f.load(vec![
        unit("main")
            .policy(RestartPolicy::Never)
            .with(|u| u.essential = true),
        unit("side"),
    ]);
    let fx = f.exit("main", 7);
    assert_eq!(Fake::signals(&fx), vec!["side"]);
    assert_eq!(fx.last(), Some(&Effect::Exit { code: 7 }));
    assert_eq!(f.state("main"), State::Failed);
    assert_eq!(f.state("side"), State::Stopped);
}

#[test]
fn essential_killed_by_signal_exits_128_plus_n() {
    let mut f = Fake::new();
    f.load(vec![unit("main")
        .policy(RestartPolicy::Never)
        .with(|u| u.essential = true)]);
    f.alive.remove("main");
    let fx = f.send(Input::Exited {
        unit: "main".into(),
        status: ExitStatus::Signal(libc::SIGSEGV),
        oom: false,
    });
    assert_eq!(
        fx.last(),
        Some(&Effect::Exit {
            code: 128 + libc::SIGSEGV
        })
    );
}

#[test]
fn essential_that_is_restarted_does_not_end_colony() {
    let mut f = Fake::new();
    f.load(vec![unit("main").with(|u| u.essential = true)]);
    let fx = f.exit("main", 1);
    assert!(!fx.iter().any(|e| matches!(e, Effect::Exit { .. })));
    assert_eq!(f.state("main"), State::Backoff);
}

#[test]
fn essential_exited_successfully_is_not_a_failure() {
    let mut f = Fake::new();
    f.load(vec![unit("main")
        .policy(RestartPolicy::Never)
        .with(|u| u.essential = true)]);
    let fx = f.exit("main", 0);
    assert!(!fx.iter().any(|e| matches!(e, Effect::Exit { .. })));
    assert_eq!(f.state("main"), State::Exited);
}

#[test]
fn start_cancels_a_stop_that_waits_for_its_turn() {
    let mut f = Fake::new();
    f.obey = false;
    f.load(vec![unit("db"), unit("app").requires(&["db"])]);
    // Stopping db waits for app to stop first; a start of db meanwhile cancels db's stop.
    let fx = f.cmd(Command::Stop("db".into()));
    assert_eq!(Fake::signals(&fx), vec!["app"]);
    assert_eq!(f.sup.wait_result("db", Want::Down), None);
    let fx = f.cmd(Command::Start("db".into()));
    assert!(fx.is_empty());
    assert_eq!(f.state("db"), State::Running);
    assert_eq!(f.sup.wait_result("db", Want::Up), Some(Ok(())));
    f.exit("app", 0);
    assert_eq!(f.state("app"), State::Stopped);
    assert_eq!(f.state("db"), State::Running);
}

#[test]
fn wait_results_for_unknown_units() {
    let f = Fake::new();
    assert!(matches!(f.sup.wait_result("x", Want::Up), Some(Err(_))));
    assert_eq!(f.sup.wait_result("x", Want::Down), Some(Ok(())));
}

#[test]
fn stopping_a_stopped_or_failed_unit_is_done_at_once() {
    let mut f = Fake::new();
    f.load(vec![
        unit("a").disabled(),
        unit("b").policy(RestartPolicy::Never),
    ]);
    f.exit("b", 1);
    for n in ["a", "b"] {
        let fx = f.cmd(Command::Stop(n.into()));
        assert!(fx.is_empty());
        assert_eq!(f.sup.wait_result(n, Want::Down), Some(Ok(())));
    }
    assert_eq!(f.state("b"), State::Failed, "a failed unit keeps saying so");
}

#[test]
fn a_fault_for_a_unit_not_running_is_ignored() {
    let mut f = Fake::new();
    f.load(vec![unit("a").disabled()]);
    let fx = f.send(Input::Fault {
        unit: "a".into(),
        reason: Fault::Health,
    });
    assert!(fx.is_empty());
    assert_eq!(f.state("a"), State::Stopped);
}

#[test]
fn an_empty_seen_before_the_exit_is_asked_for_again() {
    // cgroup.events may say "empty" before the pidfd says the main process ended.
    let mut f = Fake::new();
    f.obey = false;
    f.auto_empty = false;
    f.load(vec![unit("a")]);
    f.cmd(Command::Stop("a".into()));
    let now = f.now();
    let fx = f.sup.handle(
        Input::Deadline {
            unit: "a".into(),
            kind: DeadlineKind::StopTimeout,
        },
        now,
    );
    assert_eq!(fx, vec![killall("a")]);
    // The loop saw the cgroup empty first: not believed yet.
    let fx = f.sup.handle(Input::Empty { unit: "a".into() }, now);
    assert!(fx.is_empty());
    assert_eq!(f.state("a"), State::Stopping);
    f.alive.remove("a");
    let fx = f.sup.handle(
        Input::Exited {
            unit: "a".into(),
            status: ExitStatus::Signal(9),
            oom: false,
        },
        now,
    );
    assert!(
        has(&fx, &killall("a")),
        "asks again, so the loop answers with Empty"
    );
    f.sup.handle(Input::Empty { unit: "a".into() }, now);
    assert_eq!(f.state("a"), State::Stopped);
}

fn strays(name: &str, pids: &[i32]) -> Input {
    Input::Strays {
        unit: name.into(),
        pids: pids.to_vec(),
    }
}

#[test]
fn a_unit_without_a_cgroup_is_stopped_only_when_its_strays_are_gone() {
    // The loop answers the KillAll with the processes that escaped the process group
    // (`setsid daemon &`), then Empty for the group: the unit stays stopping, with them
    // shown, until the last is gone.
    let mut f = Fake::new();
    f.auto_empty = false;
    f.load(vec![unit("a")]);
    let fx = f.cmd(Command::Stop("a".into()));
    assert!(has(&fx, &killall("a")));
    f.send(strays("a", &[100, 101]));
    f.send(Input::Empty { unit: "a".into() });
    assert_eq!(f.state("a"), State::Stopping, "two strays are left");
    assert_eq!(f.rec("a").to_status(f.now().wall).leftover_pids, [100, 101]);
    assert_eq!(f.sup.wait_result("a", Want::Down), None);
    f.send(strays("a", &[101]));
    assert_eq!(f.state("a"), State::Stopping);
    f.send(strays("a", &[]));
    assert_eq!(f.state("a"), State::Stopped);
    assert!(f.rec("a").to_status(f.now().wall).leftover_pids.is_empty());
    assert_eq!(f.sup.wait_result("a", Want::Down), Some(Ok(())));
}

#[test]
fn strays_gone_before_the_group_leave_the_decision_to_empty() {
    let mut f = Fake::new();
    f.auto_empty = false;
    f.load(vec![unit("a")]);
    f.cmd(Command::Stop("a".into()));
    f.send(strays("a", &[100]));
    f.send(strays("a", &[]));
    assert_eq!(
        f.state("a"),
        State::Stopping,
        "the process group is not empty yet"
    );
    f.send(Input::Empty { unit: "a".into() });
    assert_eq!(f.state("a"), State::Stopped);
}

#[test]
fn a_restart_waits_for_the_strays_of_the_last_run() {
    let mut f = Fake::new();
    f.auto_empty = false;
    f.load(vec![unit("a")]);
    f.cmd(Command::Restart("a".into()));
    f.send(strays("a", &[100]));
    let fx = f.send(Input::Empty { unit: "a".into() });
    assert!(
        Fake::spawns(&fx).is_empty(),
        "a stray of the last run lives"
    );
    let fx = f.send(strays("a", &[]));
    assert_eq!(Fake::spawns(&fx), vec!["a"]);
    assert_eq!(f.state("a"), State::Running);
}

#[test]
fn an_automatic_restart_waits_for_the_strays_too() {
    let mut f = Fake::new();
    f.auto_empty = false;
    f.load(vec![unit("a").delays(secs(1), secs(60))]);
    let fx = f.exit("a", 1);
    assert!(has(&fx, &killall("a")));
    f.send(strays("a", &[100]));
    f.send(Input::Empty { unit: "a".into() });
    let fx = f.advance(secs(1));
    assert!(Fake::spawns(&fx).is_empty(), "backoff over, a stray lives");
    assert_eq!(f.state("a"), State::Backoff);
    let fx = f.send(strays("a", &[]));
    assert_eq!(Fake::spawns(&fx), vec!["a"]);
}

#[test]
fn the_stop_timeout_kills_strays_left_after_the_group() {
    // Strays found at a KillAll while the main process still ran (it ignored the stop
    // signal): the timeout's KillAll is asked while any is left.
    let mut f = Fake::new();
    f.obey = false;
    f.auto_empty = false;
    f.load(vec![unit("a").with(|u| u.stop.timeout = Some(secs(3)))]);
    f.cmd(Command::Stop("a".into()));
    f.send(strays("a", &[100]));
    let fx = f.advance(secs(3));
    assert!(has(&fx, &killall("a")));
    f.send(Input::Empty { unit: "a".into() });
    assert_eq!(f.state("a"), State::Stopping);
    f.send(strays("a", &[]));
    assert_eq!(f.state("a"), State::Stopped);
}

#[test]
fn shutdown_waits_for_strays() {
    let mut f = Fake::new();
    f.auto_empty = false;
    f.load(vec![unit("a")]);
    f.send(Input::Shutdown);
    f.send(strays("a", &[100]));
    let fx = f.send(Input::Empty { unit: "a".into() });
    assert!(!fx.iter().any(|e| matches!(e, Effect::Exit { .. })));
    let fx = f.send(strays("a", &[]));
    assert!(has(&fx, &Effect::Exit { code: 0 }));
}

#[test]
fn sighup_follows_the_stop_signal_when_asked() {
    let signals = |fx: &[Effect]| -> Vec<i32> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Signal { signal, .. } => Some(*signal),
                _ => None,
            })
            .collect()
    };
    for (sighup, signal, want) in [
        (true, libc::SIGTERM, vec![libc::SIGTERM, libc::SIGHUP]),
        (false, libc::SIGTERM, vec![libc::SIGTERM]),
        (true, libc::SIGHUP, vec![libc::SIGHUP]),
    ] {
        let mut f = Fake::new();
        f.obey = false;
        f.auto_empty = false;
        f.load(vec![unit("a").with(|u| {
            u.stop.sighup = sighup;
            u.stop.signal = signal;
        })]);
        let fx = f.cmd(Command::Stop("a".into()));
        assert_eq!(signals(&fx), want, "sighup = {sighup}, signal {signal}");
    }
}

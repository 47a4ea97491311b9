//! `RELOADING=1` and `STOPPING=1` from notify units.

use super::*;

fn reloading(f: &mut Fake, name: &str, on: bool) -> Vec<Effect> {
    f.send(Input::Reloading {
        unit: name.into(),
        reloading: on,
    })
}

/// A notify unit `db` (up), and `app` that requires it (running).
fn db_and_app() -> Fake {
    let mut f = Fake::new();
    f.load(vec![
        unit("db").notify(Some(secs(10))),
        unit("app").requires(&["db"]),
    ]);
    f.send(Input::Ready { unit: "db".into() });
    assert!(f.rec("db").is_up());
    assert_eq!(f.state("app"), State::Running);
    f
}

#[test]
fn reloading_is_running_not_ready_until_ready_again_and_leaves_dependents_alone() {
    let mut f = db_and_app();
    let app_pid = f.rec("app").pid;
    f.advance(secs(3));
    let fx = reloading(&mut f, "db", true);
    let db = f.rec("db");
    assert_eq!(db.state, State::Running);
    assert!(!db.ready && db.reloading);
    assert_eq!(db.since, f.wall(Duration::ZERO), "still the same running");
    let s = db.to_status(f.now().wall);
    assert_eq!((s.state.as_str(), s.ready), ("running", false));
    // Nothing done to anyone: no signal, no spawn; only the reload's deadline.
    assert_eq!(
        fx,
        vec![Effect::Arm {
            unit: "db".into(),
            kind: DeadlineKind::ReadyTimeout,
            at: f.mono(secs(13)),
        }]
    );
    assert_eq!(f.state("app"), State::Running);
    assert_eq!(f.rec("app").pid, app_pid);
    // A `start` of db waits for the reload to end.
    assert_eq!(f.sup.wait_result("db", Want::Up), None);
    // A second RELOADING=1 changes nothing.
    reloading(&mut f, "db", true);
    assert_eq!(
        f.deadline("db", DeadlineKind::ReadyTimeout),
        Some(f.mono(secs(13)))
    );
    let fx = reloading(&mut f, "db", false);
    assert!(has(
        &fx,
        &Effect::Disarm {
            unit: "db".into(),
            kind: DeadlineKind::ReadyTimeout
        }
    ));
    let db = f.rec("db");
    assert!(db.ready && !db.reloading && db.is_up());
    assert_eq!(f.sup.wait_result("db", Want::Up), Some(Ok(())));
    assert_eq!(f.rec("app").pid, app_pid);
    assert_eq!(f.rec("db").restarts, 0);
}

#[test]
fn a_dependent_started_during_a_reload_waits_for_its_end() {
    let mut f = Fake::new();
    f.load(vec![
        unit("db").notify(Some(secs(10))),
        unit("late").requires(&["db"]).disabled(),
        unit("later").after(&["db"]).disabled(),
    ]);
    f.send(Input::Ready { unit: "db".into() });
    reloading(&mut f, "db", true);
    let mut fx = f.cmd(Command::Start("late".into()));
    fx.extend(f.cmd(Command::Start("later".into())));
    assert!(Fake::spawns(&fx).is_empty(), "{fx:?}");
    assert_eq!(f.sup.wait_result("late", Want::Up), None);
    let fx = reloading(&mut f, "db", false);
    let mut spawned = Fake::spawns(&fx);
    spawned.sort();
    assert_eq!(spawned, vec!["late", "later"]);
}

#[test]
fn a_reload_not_over_by_the_ready_timeout_counts_as_up_again() {
    let mut f = db_and_app();
    reloading(&mut f, "db", true);
    let fx = f.advance(secs(10));
    assert!(Fake::signals(&fx).is_empty() && Fake::spawns(&fx).is_empty());
    let db = f.rec("db");
    assert_eq!(db.state, State::Running);
    assert!(db.ready && !db.reloading);
    assert_eq!(db.pid, Some(100));
}

#[test]
fn reloading_is_ignored_before_the_unit_is_up_and_ends_with_a_restart() {
    let mut f = Fake::new();
    f.load(vec![unit("db").notify(Some(secs(10)))]);
    reloading(&mut f, "db", true);
    assert!(!f.rec("db").reloading);
    assert_eq!(f.state("db"), State::Starting);
    f.send(Input::Ready { unit: "db".into() });
    reloading(&mut f, "db", true);
    // `restart` works as ever: the new process starts afresh, not reloading.
    let fx = f.cmd(Command::Restart("db".into()));
    assert_eq!(Fake::signals(&fx), vec!["db"]);
    assert_eq!(Fake::spawns(&fx), vec!["db"]);
    let db = f.rec("db");
    assert_eq!(db.state, State::Starting);
    assert!(!db.reloading && !db.ready);
    f.send(Input::Ready { unit: "db".into() });
    assert!(f.rec("db").is_up());
    // A reload end that comes late is harmless.
    reloading(&mut f, "db", false);
    assert!(f.rec("db").is_up());
}

#[test]
fn stopping_is_an_expected_exit_then_the_policy_applies() {
    let mut f = Fake::new();
    f.load(vec![unit("db")
        .notify(Some(secs(10)))
        .with(|u| u.ready.watchdog = Some(secs(30)))
        .delays(secs(2), secs(60))]);
    f.send(Input::Ready { unit: "db".into() });
    f.advance(secs(5));
    let fx = f.send(Input::Stopping { unit: "db".into() });
    // No signal: it stops by itself; the stop timeout holds; no watchdog any more.
    assert!(Fake::signals(&fx).is_empty(), "{fx:?}");
    assert_eq!(f.state("db"), State::Stopping);
    assert!(!f.rec("db").ready);
    assert_eq!(f.rec("db").pid, Some(100));
    assert_eq!(
        f.deadline("db", DeadlineKind::StopTimeout),
        Some(f.mono(secs(10)))
    );
    assert_eq!(f.deadline("db", DeadlineKind::Watchdog), None);
    // A start waits for what comes after the exit.
    assert_eq!(f.sup.wait_result("db", Want::Up), None);
    f.advance(secs(1));
    f.exit("db", 0);
    let db = f.rec("db");
    let e = db.last_exit.clone();
    assert_eq!(e.as_ref().and_then(|e| e.reason), Some(ExitReason::Stopped));
    assert_eq!(e.and_then(|e| e.status), Some(ExitStatus::Code(0)));
    // A 6s life: the normal delay, not an instant death's.
    assert_eq!(db.state, State::Backoff);
    assert_eq!(
        f.deadline("db", DeadlineKind::Restart),
        Some(f.mono(secs(8)))
    );
    let fx = f.advance(secs(2));
    assert_eq!(Fake::spawns(&fx), vec!["db"]);
    assert_eq!(f.rec("db").restarts, 1);
}

#[test]
fn stopping_with_a_success_code_and_on_failure_is_exited_and_dependents_stay() {
    let mut f = Fake::new();
    f.load(vec![
        unit("db")
            .notify(Some(secs(10)))
            .policy(RestartPolicy::OnFailure),
        unit("app").after(&["db"]),
    ]);
    f.send(Input::Ready { unit: "db".into() });
    f.advance(secs(5));
    let fx = f.send(Input::Stopping { unit: "db".into() });
    assert!(!fx.iter().any(|e| matches!(e, Effect::Signal { .. })));
    assert_eq!(f.state("app"), State::Running);
    f.exit("db", 0);
    assert_eq!(f.state("db"), State::Exited);
    assert_eq!(f.state("app"), State::Running);
    assert_eq!(f.sup.wait_result("db", Want::Up), Some(Ok(())));
}

#[test]
fn a_unit_that_says_stopping_and_hangs_is_killed_at_the_stop_timeout() {
    let mut f = Fake::new();
    f.load(vec![unit("db").policy(RestartPolicy::Never)]);
    f.send(Input::Stopping { unit: "db".into() });
    let fx = f.advance(secs(4));
    assert!(fx.is_empty());
    let fx = f.advance(secs(1));
    assert!(has(&fx, &killall("db")));
    assert_eq!(f.state("db"), State::Failed);
    assert_eq!(
        f.rec("db").last_exit.as_ref().and_then(|e| e.reason),
        Some(ExitReason::Stopped)
    );
}

#[test]
fn stop_and_restart_during_an_announced_stop_send_no_second_signal() {
    let mut f = Fake::new();
    f.load(vec![unit("a"), unit("b")]);
    f.send(Input::Stopping { unit: "a".into() });
    f.send(Input::Stopping { unit: "b".into() });
    let fx = f.cmd(Command::Stop("a".into()));
    assert!(Fake::signals(&fx).is_empty());
    assert_eq!(f.sup.wait_result("a", Want::Down), None);
    f.exit("a", 0);
    assert_eq!(f.state("a"), State::Stopped);
    assert_eq!(f.sup.wait_result("a", Want::Down), Some(Ok(())));
    let fx = f.cmd(Command::Restart("b".into()));
    assert!(Fake::signals(&fx).is_empty() && Fake::spawns(&fx).is_empty());
    let fx = f.exit("b", 0);
    assert_eq!(Fake::spawns(&fx), vec!["b"]);
    assert_eq!(f.state("b"), State::Running);
    assert_eq!(f.rec("b").restarts, 0, "a restart command, not automatic");
}

#[test]
fn announced_stops_right_after_start_still_back_off() {
    let mut f = Fake::new();
    f.load(vec![unit("a").delays(secs(1), secs(60))]);
    f.send(Input::Stopping { unit: "a".into() });
    f.exit("a", 0);
    assert_eq!(
        f.deadline("a", DeadlineKind::Restart),
        Some(f.mono(secs(1)))
    );
    f.advance(secs(1));
    f.send(Input::Stopping { unit: "a".into() });
    f.exit("a", 0);
    assert_eq!(
        f.deadline("a", DeadlineKind::Restart),
        Some(f.mono(secs(3)))
    );
}

#[test]
fn stopping_is_ignored_once_colony_stops_the_unit_or_it_is_gone() {
    let mut f = Fake::new();
    f.obey = false;
    f.load(vec![unit("a")]);
    f.cmd(Command::Stop("a".into()));
    let at = f.deadline("a", DeadlineKind::StopTimeout);
    f.advance(secs(1));
    assert!(f.send(Input::Stopping { unit: "a".into() }).is_empty());
    assert_eq!(f.deadline("a", DeadlineKind::StopTimeout), at);
    f.advance(secs(4));
    assert_eq!(f.state("a"), State::Stopped);
    assert!(f.send(Input::Stopping { unit: "a".into() }).is_empty());
    assert_eq!(f.state("a"), State::Stopped);
}

fn extend(f: &mut Fake, name: &str, by: Duration) -> Vec<Effect> {
    f.send(Input::ExtendTimeout {
        unit: name.into(),
        by,
    })
}

#[test]
fn extend_timeout_moves_the_ready_timeout_from_now() {
    let mut f = Fake::new();
    f.load(vec![unit("a").notify(Some(secs(10)))]);
    f.advance(secs(8));
    let fx = extend(&mut f, "a", secs(5));
    assert_eq!(
        fx,
        vec![Effect::Arm {
            unit: "a".into(),
            kind: DeadlineKind::ReadyTimeout,
            at: f.mono(secs(13)),
        }]
    );
    f.advance(secs(4)); // past the first timeout (10s), before the new one
    assert_eq!(f.state("a"), State::Starting);
    f.advance(secs(1));
    let e = f.rec("a").last_exit.clone();
    assert_eq!(e.and_then(|e| e.reason), Some(ExitReason::ReadyTimeout));
}

#[test]
fn extend_timeout_moves_the_stop_timeout_and_arms_nothing_else() {
    let mut f = Fake::new();
    f.load(vec![unit("a").notify(Some(secs(10)))]);
    f.send(Input::Ready { unit: "a".into() });
    assert!(f.rec("a").is_up());
    // Nothing armed that it extends: no effect, no new deadline.
    assert_eq!(extend(&mut f, "a", secs(30)), vec![]);
    assert_eq!(f.deadline("a", DeadlineKind::ReadyTimeout), None);
    f.obey = false;
    f.cmd(Command::Stop("a".into()));
    assert_eq!(
        f.deadline("a", DeadlineKind::StopTimeout),
        Some(f.mono(secs(5)))
    );
    f.advance(secs(2));
    extend(&mut f, "a", secs(30));
    assert_eq!(
        f.deadline("a", DeadlineKind::StopTimeout),
        Some(f.mono(secs(32)))
    );
    f.advance(secs(29));
    assert_eq!(f.state("a"), State::Stopping);
    f.advance(secs(1));
    assert_eq!(f.state("a"), State::Stopped);
    // Unknown units are ignored.
    assert_eq!(extend(&mut f, "nope", secs(1)), vec![]);
}

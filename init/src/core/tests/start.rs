//! What keeps a wanted unit from starting (a missing required unit), `[ready] settle`,
//! failed starts and `[restart] max_failures`.

use super::*;

fn wait_err(f: &Fake, name: &str) -> String {
    match f.sup.wait_result(name, Want::Up) {
        Some(Err(e)) => e,
        other => panic!("{name}: expected a failed wait, got {other:?}"),
    }
}

// ----- dependencies on units that are not there -----

#[test]
fn requiring_a_missing_unit_holds_it_until_the_unit_appears() {
    let mut f = Fake::new();
    let fx = f.load(vec![unit("app").requires(&["db"])]);
    assert!(Fake::spawns(&fx).is_empty());
    let app = f.rec("app");
    assert_eq!(app.state, State::Stopped);
    assert_eq!(app.held, Some(Held::MissingRequired("db".into())));
    let st = app.to_status(f.wall(Duration::ZERO));
    assert_eq!(st.state, "stopped");
    assert!(
        st.error
            .as_deref()
            .is_some_and(|e| e.contains("required unit db does not exist")),
        "{st:?}"
    );
    assert!(wait_err(&f, "app").contains("required unit db does not exist"));
    assert_eq!(
        f.sup.dependency_warnings("app"),
        vec!["requires: no unit `db` (no file db.unit in this directory), so this unit cannot start until there is one"]
    );
    // Another load without db changes nothing.
    let fx = f.load(vec![unit("app").requires(&["db"])]);
    assert!(Fake::spawns(&fx).is_empty());
    // db.unit appears: db starts, then app (it is still wanted: enabled).
    let fx = f.load(vec![unit("app").requires(&["db"]), unit("db")]);
    assert_eq!(Fake::spawns(&fx), vec!["db", "app"]);
    assert_eq!(f.state("app"), State::Running);
    assert_eq!(f.rec("app").held, None);
    assert!(f.sup.dependency_warnings("app").is_empty());
    assert_eq!(f.rec("app").to_status(f.wall(Duration::ZERO)).error, None);
}

#[test]
fn a_unit_started_by_hand_is_held_too_and_a_stop_ends_the_wish() {
    let mut f = Fake::new();
    f.load(vec![unit("app").requires(&["db"]).disabled()]);
    assert_eq!(f.rec("app").held, None, "not wanted: nothing to hold");
    f.cmd(Command::Start("app".into()));
    assert_eq!(f.rec("app").held, Some(Held::MissingRequired("db".into())));
    assert!(wait_err(&f, "app").contains("db"));
    f.cmd(Command::Stop("app".into()));
    assert_eq!(f.rec("app").held, None);
    let fx = f.load(vec![unit("app").requires(&["db"]).disabled(), unit("db")]);
    assert_eq!(
        Fake::spawns(&fx),
        vec!["db"],
        "stopped by hand: stays stopped"
    );
}

#[test]
fn a_chain_held_by_a_missing_unit_starts_in_order_once_it_appears() {
    let mut f = Fake::new();
    let chain = || {
        vec![
            unit("api").requires(&["web"]),
            unit("web").requires(&["db"]),
        ]
    };
    f.load(chain());
    assert_eq!(f.rec("web").held, Some(Held::MissingRequired("db".into())));
    assert_eq!(f.rec("api").held, Some(Held::RequiredHeld("web".into())));
    assert_eq!(f.state("api"), State::Stopped, "held, not failed");
    let mut set = chain();
    set.push(unit("db"));
    let fx = f.load(set);
    assert_eq!(Fake::spawns(&fx), vec!["db", "web", "api"]);
    assert!(f.sup.units().all(|u| u.state == State::Running));
}

#[test]
fn removing_a_required_unit_stops_its_dependents_first_and_holds_them_until_it_is_back() {
    let mut f = Fake::new();
    let all = || {
        vec![
            unit("db"),
            unit("app").requires(&["db"]),
            unit("api").requires(&["app"]),
        ]
    };
    f.load(all());
    assert!(f.sup.units().all(|u| u.state == State::Running));
    let fx = f.load(vec![
        unit("app").requires(&["db"]),
        unit("api").requires(&["app"]),
    ]);
    assert_eq!(
        Fake::signals(&fx),
        vec!["api", "app", "db"],
        "dependents stop first"
    );
    assert!(Fake::spawns(&fx).is_empty());
    assert!(f.sup.get("db").is_none(), "forgotten once stopped");
    assert_eq!(f.state("app"), State::Stopped);
    assert_eq!(f.rec("app").held, Some(Held::MissingRequired("db".into())));
    assert_eq!(f.rec("api").held, Some(Held::RequiredHeld("app".into())));
    let fx = f.load(all());
    assert_eq!(Fake::spawns(&fx), vec!["db", "app", "api"]);
    assert!(f.sup.units().all(|u| u.state == State::Running));
}

#[test]
fn a_unit_stopped_by_hand_is_not_held_when_what_it_requires_goes() {
    let mut f = Fake::new();
    f.load(vec![unit("db"), unit("app").requires(&["db"])]);
    f.cmd(Command::Stop("app".into()));
    f.load(vec![unit("app").requires(&["db"])]);
    assert_eq!(f.rec("app").held, None);
    let fx = f.load(vec![unit("db"), unit("app").requires(&["db"])]);
    assert_eq!(Fake::spawns(&fx), vec!["db"]);
}

#[test]
fn after_a_missing_unit_is_only_a_warning() {
    let mut f = Fake::new();
    let fx = f.load(vec![unit("web").after(&["db"])]);
    assert_eq!(Fake::spawns(&fx), vec!["web"]);
    assert_eq!(f.state("web"), State::Running);
    assert_eq!(
        f.sup.dependency_warnings("web"),
        vec!["after: no unit `db` (no file db.unit in this directory), so ordering after it is ignored"]
    );
}

// ----- [ready] settle -----

#[test]
fn settle_is_a_deadline_and_the_unit_is_up_only_when_it_passes() {
    let mut f = Fake::new();
    let fx = f.load(vec![unit("a").settle(secs(1)), unit("b").after(&["a"])]);
    assert_eq!(Fake::spawns(&fx), vec!["a"], "b waits for a to be up");
    assert_eq!(f.state("a"), State::Starting);
    assert!(!f.rec("a").ready);
    assert_eq!(f.deadline("a", DeadlineKind::Settle), Some(f.mono(secs(1))));
    assert_eq!(f.sup.wait_result("a", Want::Up), None);
    let fx = f.advance(ms(999));
    assert!(fx.is_empty(), "{fx:?}");
    let fx = f.advance(ms(1));
    assert_eq!(Fake::spawns(&fx), vec!["b"]);
    assert_eq!(f.state("a"), State::Running);
    assert!(f.rec("a").ready);
    assert_eq!(f.sup.wait_result("a", Want::Up), Some(Ok(())));
}

#[test]
fn a_death_before_settle_is_a_failed_start_whatever_its_code() {
    for code in [1, 0] {
        let mut f = Fake::new();
        f.load(vec![unit("a")
            .settle(secs(1))
            .policy(RestartPolicy::OnFailure)]);
        f.advance(ms(500));
        f.exit("a", code);
        let a = f.rec("a");
        assert_eq!(a.state, State::Backoff, "exit {code}");
        assert_eq!(a.failed_starts, 1);
        assert_eq!(f.deadline("a", DeadlineKind::Settle), None);
        let e = wait_err(&f, "a");
        assert!(e.contains("a failed to start"), "{e}");
        assert!(e.contains(&format!("exited with code {code}")), "{e}");
    }
}

#[test]
fn a_notify_unit_with_settle_needs_both() {
    // READY=1 first: up when settle passes.
    let mut f = Fake::new();
    f.load(vec![unit("a").notify(Some(secs(10))).settle(secs(2))]);
    f.advance(secs(1));
    f.send(Input::Ready { unit: "a".into() });
    assert_eq!(f.state("a"), State::Starting);
    assert_eq!(f.deadline("a", DeadlineKind::ReadyTimeout), None);
    f.advance(secs(1));
    assert_eq!(f.state("a"), State::Running);
    // Settle first: up at READY=1.
    let mut f = Fake::new();
    f.load(vec![unit("a").notify(Some(secs(10))).settle(secs(1))]);
    f.advance(secs(3));
    assert_eq!(f.state("a"), State::Starting);
    f.send(Input::Ready { unit: "a".into() });
    assert_eq!(f.state("a"), State::Running);
    assert!(f.rec("a").ready);
}

#[test]
fn a_unit_up_at_exec_that_dies_at_once_was_started() {
    // settle 0 (the default), ready at exec: `start` is done at exec, as systemd's
    // Type=simple; its death is a crash, not a failed start.
    let mut f = Fake::new();
    f.load(vec![unit("a").max_failures(1)]);
    assert_eq!(f.sup.wait_result("a", Want::Up), Some(Ok(())));
    f.exit("a", 1);
    assert_eq!(f.state("a"), State::Backoff);
    assert_eq!(f.rec("a").failed_starts, 0);
}

// ----- [restart] max_failures -----

/// Fail `n` starts of `a` in a row (each dies before its settle), going through backoff.
fn fail_starts(f: &mut Fake, n: usize) {
    for _ in 0..n {
        assert!(
            f.alive.contains_key("a"),
            "a should be running: {:?}",
            f.state("a")
        );
        f.advance(ms(100));
        f.exit("a", 1);
        f.advance(secs(1)); // delay_min
    }
}

#[test]
fn max_failures_makes_it_failed_and_stops_restarting() {
    let mut f = Fake::new();
    f.load(vec![unit("a")
        .settle(secs(1))
        .max_failures(3)
        .delays(ms(500), ms(500))]);
    fail_starts(&mut f, 3);
    let a = f.rec("a");
    assert_eq!(a.state, State::Failed);
    assert_eq!(a.failed_starts, 3);
    assert!(a
        .note
        .as_deref()
        .is_some_and(|n| n.contains("3 failed starts in a row")));
    assert_eq!(f.deadline("a", DeadlineKind::Restart), None);
    let fx = f.advance(secs(3600));
    assert!(Fake::spawns(&fx).is_empty(), "left alone: {fx:?}");
    assert_eq!(f.state("a"), State::Failed);
}

#[test]
fn a_manual_start_resets_the_count() {
    let mut f = Fake::new();
    f.load(vec![unit("a")
        .settle(secs(1))
        .max_failures(2)
        .delays(ms(500), ms(500))]);
    fail_starts(&mut f, 2);
    assert_eq!(f.state("a"), State::Failed);
    let fx = f.cmd(Command::Start("a".into()));
    assert_eq!(Fake::spawns(&fx), vec!["a"]);
    assert_eq!(f.rec("a").failed_starts, 0);
    assert_eq!(f.sup.wait_result("a", Want::Up), None);
    fail_starts(&mut f, 1);
    assert_eq!(
        f.state("a"),
        State::Starting,
        "one failure of two: restarted"
    );
    fail_starts(&mut f, 1);
    assert_eq!(f.state("a"), State::Failed);
}

#[test]
fn coming_up_resets_the_count() {
    let mut f = Fake::new();
    f.load(vec![unit("a")
        .settle(secs(1))
        .max_failures(2)
        .delays(ms(500), ms(500))]);
    fail_starts(&mut f, 1);
    assert_eq!(f.rec("a").failed_starts, 1);
    f.advance(secs(2)); // lives past settle: up
    assert_eq!(f.state("a"), State::Running);
    assert_eq!(f.rec("a").failed_starts, 0);
    fail_starts(&mut f, 1);
    assert_eq!(
        f.state("a"),
        State::Starting,
        "a crash after up starts the count afresh"
    );
}

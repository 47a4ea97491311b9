//! `after` and `requires`: start order, stop order, propagation of stops and failures.

use super::*;

#[test]
fn after_waits_until_the_unit_is_up() {
    let mut f = Fake::new();
    let fx = f.load(vec![
        unit("app").after(&["db"]),
        unit("db").notify(None),
        unit("web").after(&["app"]),
    ]);
    assert_eq!(Fake::spawns(&fx), vec!["db"]);
    assert_eq!(f.state("app"), State::Stopped);
    assert_eq!(f.sup.wait_result("app", Want::Up), None);
    let fx = f.send(Input::Ready { unit: "db".into() });
    // app is up at exec, so web follows in the same step.
    assert_eq!(Fake::spawns(&fx), vec!["app", "web"]);
}

#[test]
fn after_a_oneshot_waits_for_it_to_end() {
    let mut f = Fake::new();
    let fx = f.load(vec![
        unit("migrate").policy(RestartPolicy::Never).notify(None),
        unit("app").after(&["migrate"]),
    ]);
    assert_eq!(Fake::spawns(&fx), vec!["migrate"]);
    let fx = f.exit("migrate", 0);
    assert_eq!(Fake::spawns(&fx), vec!["app"]);
}

#[test]
fn after_alone_does_not_start_the_other_unit() {
    let mut f = Fake::new();
    let fx = f.load(vec![unit("db").disabled(), unit("app").after(&["db"])]);
    assert_eq!(Fake::spawns(&fx), vec!["app"]);
    assert_eq!(f.state("db"), State::Stopped);
}

#[test]
fn after_a_failed_unit_still_starts() {
    let mut f = Fake::new();
    f.broken.insert("db".into());
    let fx = f.load(vec![
        unit("db").policy(RestartPolicy::Never),
        unit("app").after(&["db"]),
    ]);
    assert_eq!(Fake::spawns(&fx), vec!["db", "app"]);
    assert_eq!(f.state("app"), State::Running);
}

#[test]
fn requires_starts_the_required_units_transitively() {
    let mut f = Fake::new();
    let fx = f.load(vec![
        unit("a").disabled(),
        unit("b").disabled().requires(&["a"]),
        unit("c").disabled().requires(&["b"]),
    ]);
    assert!(fx.is_empty());
    let fx = f.cmd(Command::Start("c".into()));
    assert_eq!(Fake::spawns(&fx), vec!["a", "b", "c"]);
}

#[test]
fn requires_waits_for_up_too() {
    let mut f = Fake::new();
    let fx = f.load(vec![unit("db").notify(None), unit("app").requires(&["db"])]);
    assert_eq!(Fake::spawns(&fx), vec!["db"]);
    let fx = f.send(Input::Ready { unit: "db".into() });
    assert_eq!(Fake::spawns(&fx), vec!["app"]);
}

#[test]
fn a_failed_required_unit_fails_the_start_of_dependents() {
    let mut f = Fake::new();
    f.broken.insert("db".into());
    f.load(vec![
        unit("db").policy(RestartPolicy::Never),
        unit("app").requires(&["db"]),
        unit("web").requires(&["app"]),
    ]);
    assert_eq!(f.state("db"), State::Failed);
    assert_eq!(f.state("app"), State::Failed);
    assert_eq!(f.state("web"), State::Failed);
    let w = f.sup.wait_result("app", Want::Up);
    assert!(matches!(&w, Some(Err(e)) if e.contains("db")), "{w:?}");
}

#[test]
fn requires_a_unit_in_backoff_keeps_waiting() {
    let mut f = Fake::new();
    f.broken.insert("db".into());
    let fx = f.load(vec![unit("db"), unit("app").requires(&["db"])]);
    assert_eq!(Fake::spawns(&fx), vec!["db"]);
    assert_eq!(f.state("db"), State::Backoff);
    assert_eq!(f.state("app"), State::Stopped);
    f.broken.clear();
    let fx = f.advance(secs(1));
    assert_eq!(Fake::spawns(&fx), vec!["db", "app"]);
}

#[test]
fn a_required_unit_that_fails_stops_its_dependents() {
    let mut f = Fake::new();
    f.load(vec![
        unit("db").policy(RestartPolicy::Never),
        unit("app").requires(&["db"]),
        unit("other").after(&["db"]),
    ]);
    let fx = f.exit("db", 1);
    assert_eq!(Fake::signals(&fx), vec!["app"]);
    assert_eq!(f.state("app"), State::Stopped);
    assert_eq!(
        f.rec("app").note.as_deref(),
        Some("required unit db failed")
    );
    assert_eq!(
        f.state("other"),
        State::Running,
        "after alone does not stop"
    );
}

/// An automatic restart is a start like any other: while a unit it is ordered after is
/// being restarted itself, it waits, and follows once that one is up (the fleet's movable
/// units must not come back while their agent is down).
#[test]
fn an_automatic_restart_waits_for_a_unit_it_is_after_that_is_in_backoff() {
    let mut f = Fake::new();
    f.load(vec![
        unit("agent").notify(None),
        unit("app").after(&["agent"]),
    ]);
    f.send(Input::Ready {
        unit: "agent".into(),
    });
    assert_eq!(f.state("app"), State::Running);
    f.broken.insert("agent".into());
    f.exit("agent", 1);
    assert_eq!(f.state("agent"), State::Backoff);
    f.exit("app", 1);
    assert_eq!(f.state("app"), State::Backoff);
    // app's delay is over first (1s), the agent's second try fails too (it is broken).
    let fx = f.advance(secs(1));
    assert_eq!(Fake::spawns(&fx), vec!["agent"], "app waits");
    assert_eq!(f.state("app"), State::Backoff);
    assert_eq!(f.state("agent"), State::Backoff);
    f.broken.clear();
    let fx = f.advance(secs(2));
    assert_eq!(Fake::spawns(&fx), vec!["agent"]);
    let fx = f.send(Input::Ready {
        unit: "agent".into(),
    });
    assert_eq!(Fake::spawns(&fx), vec!["app"]);
    assert_eq!(f.rec("app").restarts, 1);
}

#[test]
fn a_required_unit_in_backoff_leaves_dependents_running() {
    let mut f = Fake::new();
    f.load(vec![unit("db"), unit("app").requires(&["db"])]);
    f.exit("db", 1);
    assert_eq!(f.state("db"), State::Backoff);
    assert_eq!(f.state("app"), State::Running);
}

#[test]
fn stopping_a_required_unit_stops_dependents_first() {
    let mut f = Fake::new();
    f.obey = false;
    f.auto_empty = false;
    f.load(vec![
        unit("db"),
        unit("app").requires(&["db"]),
        unit("web").requires(&["app"]),
    ]);
    let fx = f.cmd(Command::Stop("db".into()));
    assert_eq!(Fake::signals(&fx), vec!["web"]);
    f.exit("web", 0);
    let fx = f.send(Input::Empty { unit: "web".into() });
    assert_eq!(Fake::signals(&fx), vec!["app"]);
    f.exit("app", 0);
    let fx = f.send(Input::Empty { unit: "app".into() });
    assert_eq!(Fake::signals(&fx), vec!["db"]);
    assert_eq!(f.sup.wait_result("db", Want::Down), None);
    f.exit("db", 0);
    f.send(Input::Empty { unit: "db".into() });
    for n in ["db", "app", "web"] {
        assert_eq!(f.state(n), State::Stopped, "{n}");
    }
    assert_eq!(f.sup.wait_result("db", Want::Down), Some(Ok(())));
}

#[test]
fn stopping_a_unit_leaves_units_only_after_it() {
    let mut f = Fake::new();
    f.load(vec![unit("db"), unit("app").after(&["db"])]);
    let fx = f.cmd(Command::Stop("db".into()));
    assert_eq!(Fake::signals(&fx), vec!["db"]);
    assert_eq!(f.state("app"), State::Running);
}

#[test]
fn restarting_a_required_unit_restarts_running_dependents() {
    let mut f = Fake::new();
    f.load(vec![unit("db"), unit("app").requires(&["db"])]);
    let fx = f.cmd(Command::Restart("db".into()));
    assert_eq!(Fake::signals(&fx), vec!["app", "db"]);
    assert_eq!(Fake::spawns(&fx), vec!["db", "app"]);
}

#[test]
fn a_dependency_cycle_does_not_deadlock() {
    let mut f = Fake::new();
    let fx = f.load(vec![unit("a").after(&["b"]), unit("b").after(&["a"])]);
    let mut s = Fake::spawns(&fx);
    s.sort();
    assert_eq!(s, vec!["a", "b"]);
    let fx = f.send(Input::Shutdown);
    assert!(has(&fx, &Effect::Exit { code: 0 }));
}

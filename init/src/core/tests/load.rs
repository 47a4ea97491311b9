//! The directory as it changes: new, removed, changed, unchanged, invalid.

use super::*;

#[test]
fn new_unit_starts_if_enabled() {
    let mut f = Fake::new();
    f.load(vec![unit("a")]);
    let fx = f.load(vec![unit("a"), unit("b"), unit("c").disabled()]);
    assert_eq!(Fake::spawns(&fx), vec!["b"]);
    assert_eq!(f.state("c"), State::Stopped);
}

/// `[socket] on_demand`: loaded but not started (the loop starts it at a connection, as
/// `colonyctl start` would).
#[test]
fn an_on_demand_unit_is_not_started_when_loaded() {
    let on_demand = |u: Unit| {
        u.with(|u| {
            u.socket = Some(Box::new(units::socket::Socket {
                on_demand: true,
                ..Default::default()
            }))
        })
    };
    let mut f = Fake::new();
    let fx = f.load(vec![unit("a"), on_demand(unit("b"))]);
    assert_eq!(Fake::spawns(&fx), vec!["a"]);
    assert_eq!(f.state("b"), State::Stopped);
    let fx = f.cmd(Command::Start("b".into()));
    assert_eq!(Fake::spawns(&fx), vec!["b"]);
}

#[test]
fn unchanged_rewrite_does_nothing() {
    let mut f = Fake::new();
    f.load(vec![unit("a")]);
    let fx = f.load(vec![unit("a")]);
    assert!(fx.is_empty());
}

#[test]
fn changed_unit_restarts_with_the_new_definition() {
    let mut f = Fake::new();
    f.load(vec![unit("a")]);
    let fx = f.load(vec![unit("a").with(|u| u.exec = vec!["/bin/other".into()])]);
    assert_eq!(Fake::signals(&fx), vec!["a"]);
    assert_eq!(Fake::spawns(&fx), vec!["a"]);
    let def = f.rec("a").def.clone();
    assert_eq!(
        def.map(|d| d.exec.clone()),
        Some(vec!["/bin/other".to_string()])
    );
}

#[test]
fn changed_stop_signal_applies_to_the_next_process_only() {
    let mut f = Fake::new();
    f.load(vec![unit("a")]);
    let fx = f.load(vec![unit("a").with(|u| u.stop.signal = libc::SIGINT)]);
    assert!(has(
        &fx,
        &Effect::Signal {
            unit: "a".into(),
            signal: libc::SIGTERM
        }
    ));
    let fx = f.cmd(Command::Stop("a".into()));
    assert!(has(
        &fx,
        &Effect::Signal {
            unit: "a".into(),
            signal: libc::SIGINT
        }
    ));
}

#[test]
fn changed_but_stopped_unit_stays_stopped() {
    let mut f = Fake::new();
    f.load(vec![unit("a")]);
    f.cmd(Command::Stop("a".into()));
    let fx = f.load(vec![unit("a").with(|u| u.exec = vec!["/bin/other".into()])]);
    assert!(fx.is_empty());
    assert_eq!(f.state("a"), State::Stopped);
}

#[test]
fn removed_unit_is_stopped_then_forgotten() {
    let mut f = Fake::new();
    f.obey = false;
    f.auto_empty = false;
    f.load(vec![unit("a"), unit("b")]);
    let fx = f.load(vec![unit("b")]);
    assert_eq!(Fake::signals(&fx), vec!["a"]);
    assert!(f.sup.get("a").is_some());
    f.exit("a", 0);
    let fx = f.send(Input::Empty { unit: "a".into() });
    assert!(has(&fx, &Effect::Forget { unit: "a".into() }));
    assert!(f.sup.get("a").is_none());
    assert_eq!(f.sup.wait_result("a", Want::Down), Some(Ok(())));
    assert_eq!(f.state("b"), State::Running);
}

#[test]
fn removed_unit_in_backoff_is_forgotten_at_once() {
    let mut f = Fake::new();
    f.load(vec![unit("a")]);
    f.exit("a", 1);
    let fx = f.load(vec![]);
    assert!(has(
        &fx,
        &Effect::Disarm {
            unit: "a".into(),
            kind: DeadlineKind::Restart
        }
    ));
    assert!(has(&fx, &Effect::Forget { unit: "a".into() }));
    assert!(f.deadlines.is_empty());
}

#[test]
fn new_invalid_unit_is_invalid_with_its_error() {
    let mut f = Fake::new();
    let fx = f.load_raw(vec![("a", Err("a.unit:3:1: exec: missing".into()))]);
    assert!(fx.is_empty());
    let a = f.rec("a");
    assert_eq!(a.state, State::Invalid);
    assert_eq!(a.error.as_deref(), Some("a.unit:3:1: exec: missing"));
    assert!(a.def.is_none());
    assert!(matches!(f.sup.wait_result("a", Want::Up), Some(Err(e)) if e.contains("missing")));
    assert_eq!(f.sup.resolve("a"), Ok(vec!["a".to_string()]));
    let fx = f.cmd(Command::Start("a".into()));
    assert!(fx.is_empty());
}

#[test]
fn invalid_file_keeps_the_unit_running_on_its_last_good_definition() {
    let mut f = Fake::new();
    f.load(vec![unit("a")]);
    let fx = f.load_raw(vec![("a", Err("bad".into()))]);
    assert!(fx.is_empty());
    let a = f.rec("a");
    assert_eq!(a.state, State::Running);
    assert_eq!(a.error.as_deref(), Some("bad"));
    assert!(a.def.is_some());
    // It still restarts on that definition.
    f.exit("a", 1);
    let fx = f.advance(secs(1));
    assert_eq!(Fake::spawns(&fx), vec!["a"]);
    // Fixed again, unchanged: the error goes, nothing restarts.
    let fx = f.load(vec![unit("a")]);
    assert!(fx.is_empty());
    assert_eq!(f.rec("a").error, None);
}

#[test]
fn invalid_unit_that_becomes_valid_starts() {
    let mut f = Fake::new();
    f.load_raw(vec![("a", Err("bad".into()))]);
    let fx = f.load(vec![unit("a")]);
    assert_eq!(Fake::spawns(&fx), vec!["a"]);
    assert_eq!(f.rec("a").error, None);
}

#[test]
fn removed_invalid_unit_is_forgotten() {
    let mut f = Fake::new();
    f.load_raw(vec![("a", Err("bad".into()))]);
    let fx = f.load(vec![]);
    assert_eq!(fx, vec![Effect::Forget { unit: "a".into() }]);
    assert!(f.sup.get("a").is_none());
}

#[test]
fn changed_failed_unit_starts_again() {
    let mut f = Fake::new();
    f.broken.insert("a".into());
    f.load(vec![unit("a").policy(RestartPolicy::Never)]);
    assert_eq!(f.state("a"), State::Failed);
    f.broken.clear();
    let fx = f.load(vec![unit("a")
        .policy(RestartPolicy::Never)
        .with(|u| u.exec = vec!["/bin/x".into()])]);
    assert_eq!(Fake::spawns(&fx), vec!["a"]);
}

#[test]
fn a_unit_that_comes_back_while_stopping_starts_again() {
    let mut f = Fake::new();
    f.obey = false;
    f.load(vec![unit("a")]);
    f.load(vec![]);
    assert_eq!(f.state("a"), State::Stopping);
    f.load(vec![unit("a")]);
    let fx = f.exit("a", 0);
    assert!(!has(&fx, &Effect::Forget { unit: "a".into() }));
    assert_eq!(Fake::spawns(&fx), vec!["a"]);
}

#[test]
fn a_change_while_the_unit_is_being_stopped_does_not_start_it() {
    let mut f = Fake::new();
    f.obey = false;
    f.load(vec![unit("a")]);
    f.cmd(Command::Stop("a".into()));
    let fx = f.load(vec![unit("a").with(|u| u.exec = vec!["/bin/x".into()])]);
    assert!(fx.is_empty());
    f.exit("a", 0);
    assert_eq!(f.state("a"), State::Stopped);
}

#[test]
fn a_changed_dependency_list_reorders_starts() {
    let mut f = Fake::new();
    f.load(vec![unit("a").disabled(), unit("b").disabled()]);
    f.load(vec![
        unit("a").disabled().after(&["b"]),
        unit("b").disabled().notify(None),
    ]);
    let fx = f.cmd(Command::Start("b".into()));
    assert_eq!(Fake::spawns(&fx), vec!["b"]);
    let fx = f.cmd(Command::Start("a".into()));
    assert!(Fake::spawns(&fx).is_empty(), "a waits for b to be up");
    let fx = f.send(Input::Ready { unit: "b".into() });
    assert_eq!(Fake::spawns(&fx), vec!["a"]);
}

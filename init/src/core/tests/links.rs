//! `wants`, `before`, `conflicts`, and conditions and asserts.

use super::*;

use units::conditions::{parse_condition, Check};

fn wants(names: &[&str]) -> impl FnOnce(&mut Unit) {
    let v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    move |u: &mut Unit| u.links.wants = v
}

fn condition(u: &mut Unit) {
    u.conditions
        .push(parse_condition(Check::PathExists, false, "/etc/app.conf").unwrap());
}

#[test]
fn wants_starts_the_other_unit_and_its_failure_does_not_matter() {
    let mut f = Fake::new();
    f.broken.insert("metrics".into());
    let metrics = unit("metrics").disabled().policy(RestartPolicy::Never);
    let fx = f.load(vec![
        unit("app").with(wants(&["metrics", "nothere"])),
        metrics,
    ]);
    assert_eq!(Fake::spawns(&fx).len(), 2);
    assert_eq!(f.state("metrics"), State::Failed);
    assert!(f.rec("app").is_up());
    assert!(f
        .sup
        .dependency_warnings("app")
        .iter()
        .any(|w| w.starts_with("wants: no unit `nothere`")));
    // Stopping the wanted unit leaves the other alone.
    f.cmd(Command::Stop("metrics".into()));
    assert!(f.rec("app").is_up());
}

#[test]
fn before_orders_the_other_unit_after_this_one() {
    let mut f = Fake::new();
    let db = unit("db")
        .notify(Some(secs(30)))
        .with(|u| u.links.before = vec!["web".into()]);
    let fx = f.load(vec![unit("web"), db]);
    assert_eq!(Fake::spawns(&fx), ["db"], "web waits for db");
    let fx = f.send(Input::Ready { unit: "db".into() });
    assert_eq!(Fake::spawns(&fx), ["web"]);
}

#[test]
fn starting_one_of_two_conflicting_units_stops_the_other() {
    let mut f = Fake::new();
    let old = unit("redis-old");
    let new = unit("redis")
        .disabled()
        .with(|u| u.links.conflicts = vec!["redis-old".into()]);
    f.load(vec![old.clone(), new]);
    assert!(f.rec("redis-old").is_up());
    let fx = f.cmd(Command::Start("redis".into()));
    assert_eq!(Fake::signals(&fx), ["redis-old"]);
    assert_eq!(f.state("redis-old"), State::Stopped);
    assert_eq!(
        f.rec("redis-old").note.as_deref(),
        Some("conflicts with redis")
    );
    assert!(f.rec("redis").is_up());
    // The other way round: only redis names the conflict.
    let fx = f.cmd(Command::Start("redis-old".into()));
    assert_eq!(Fake::signals(&fx), ["redis"]);
    assert!(f.rec("redis-old").is_up());
    assert_eq!(f.state("redis"), State::Stopped);
}

#[test]
fn a_failed_condition_skips_the_unit_and_what_is_after_it_starts() {
    let mut f = Fake::new();
    f.verdicts.insert(
        "app".into(),
        Verdict::Skip("condition not met: condition_path_exists = \"/etc/app.conf\"".into()),
    );
    let fx = f.load(vec![
        unit("app").with(condition),
        unit("web").after(&["app"]),
    ]);
    assert!(has(&fx, &Effect::CheckConditions { unit: "app".into() }));
    assert_eq!(Fake::spawns(&fx), ["web"]);
    assert_eq!(f.state("app"), State::Skipped);
    assert_eq!(State::Skipped.as_str(), "skipped");
    assert!(f
        .rec("app")
        .note
        .as_deref()
        .unwrap()
        .contains("/etc/app.conf"));
    assert!(
        f.rec("app").last_exit.is_none(),
        "nothing ran, nothing failed"
    );
    assert_eq!(f.sup.wait_result("app", Want::Up), Some(Ok(())));
    assert_eq!(f.sup.wait_result("app", Want::Down), Some(Ok(())));
    // Checked again at the next start.
    f.verdicts.remove("app");
    let fx = f.cmd(Command::Start("app".into()));
    assert_eq!(Fake::spawns(&fx), ["app"]);
    assert!(f.rec("app").is_up());
    assert!(f.deadlines.is_empty());
}

#[test]
fn a_failed_assert_fails_the_start_with_its_reason() {
    let mut f = Fake::new();
    f.verdicts
        .insert("app".into(), Verdict::Fail("assert failed: x".into()));
    let fx = f.load(vec![unit("app").with(condition)]);
    assert!(Fake::spawns(&fx).is_empty());
    assert_eq!(f.state("app"), State::Failed);
    let e = f.rec("app").last_exit.clone().unwrap();
    assert_eq!(e.reason, Some(ExitReason::Assert));
    assert_eq!(e.detail.as_deref(), Some("assert failed: x"));
    assert!(matches!(f.sup.wait_result("app", Want::Up), Some(Err(_))));
}

#[test]
fn the_skipped_state_is_carried_across_a_handover() {
    let mut f = Fake::new();
    f.verdicts.insert("app".into(), Verdict::Skip("no".into()));
    let app = unit("app").with(condition);
    f.load(vec![app.clone()]);
    let set = vec![("app".to_string(), Ok(app))];
    assert!(f.sup.handover_blockers().is_empty());
    let clock = MonoClock {
        at: f.now().mono,
        ns: 5,
    };
    let json = serde_json::to_string(&f.sup.snapshot(&clock)).unwrap();
    let sup = Supervisor::restore(
        defaults(),
        serde_json::from_str(&json).unwrap(),
        &set,
        &clock,
    );
    let r = sup.get("app").unwrap();
    assert_eq!(r.state, State::Skipped);
    assert_eq!(r.note.as_deref(), Some("no"));
}

#[test]
fn a_timer_run_whose_condition_fails_is_skipped_and_the_next_is_planned() {
    let mut f = Fake::new();
    f.verdicts.insert("job".into(), Verdict::Skip("no".into()));
    let job = unit("job").with(condition).timer(Timer {
        every: Some(secs(60)),
        ..Default::default()
    });
    f.load(vec![job]);
    f.cmd(Command::Start("job".into()));
    assert_eq!(f.state("job"), State::Waiting);
    assert!(f.rec("job").is_gone());
    assert!(f.deadline("job", DeadlineKind::TimerRun).is_some());
    f.verdicts.remove("job");
    let fx = f.advance(secs(60));
    assert_eq!(Fake::spawns(&fx), ["job"]);
    assert_eq!(f.state("job"), State::Running);
}

#[test]
fn a_unit_that_wants_what_conflicts_with_it_is_not_left_half_started() {
    let mut f = Fake::new();
    let a = unit("a")
        .disabled()
        .with(|u| u.links.wants = vec!["b".into()]);
    let b = unit("b")
        .disabled()
        .with(|u| u.links.conflicts = vec!["a".into()]);
    f.load(vec![a, b]);
    f.cmd(Command::Start("a".into()));
    // A wanted unit that conflicts is not started.
    assert!(f.rec("a").is_up());
    assert_eq!(f.state("b"), State::Stopped);
    assert!(f.violations.is_empty());
}

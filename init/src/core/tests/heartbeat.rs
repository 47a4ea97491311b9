//! Heartbeats (and the notify watchdog, and outside fault verdicts).

use super::*;

#[test]
fn heartbeat_is_due_grace_after_start_then_period_after_each_beat() {
    let mut f = Fake::new();
    f.load(vec![unit("a").heartbeat(secs(30), secs(60))]);
    assert_eq!(
        f.deadline("a", DeadlineKind::Heartbeat),
        Some(f.mono(secs(60)))
    );
    f.advance(secs(10));
    f.send(Input::Beat { unit: "a".into() });
    assert_eq!(
        f.deadline("a", DeadlineKind::Heartbeat),
        Some(f.mono(secs(40)))
    );
    assert_eq!(f.rec("a").last_beat, Some(f.wall(secs(10))));
}

#[test]
fn beats_keep_the_unit_alive() {
    let mut f = Fake::new();
    f.load(vec![unit("a").heartbeat(secs(30), secs(60))]);
    for _ in 0..100 {
        let fx = f.advance(secs(25));
        assert!(fx.is_empty());
        f.send(Input::Beat { unit: "a".into() });
    }
    assert_eq!(f.state("a"), State::Running);
    assert_eq!(f.rec("a").pid, Some(100));
}

#[test]
fn a_missed_beat_restarts_the_unit_with_reason_heartbeat() {
    let mut f = Fake::new();
    f.load(vec![unit("a")
        .heartbeat(secs(30), secs(60))
        .delays(Duration::ZERO, secs(60))]);
    f.advance(secs(50));
    f.send(Input::Beat { unit: "a".into() });
    let fx = f.advance(secs(30));
    assert_eq!(Fake::signals(&fx), vec!["a"]);
    assert!(has(&fx, &killall("a")));
    assert_eq!(Fake::spawns(&fx), vec!["a"]);
    let a = f.rec("a");
    assert_eq!(
        a.last_exit.as_ref().and_then(|e| e.reason),
        Some(ExitReason::Heartbeat)
    );
    assert_eq!(a.restarts, 1);
    assert_eq!(a.state, State::Running);
    // A fresh grace period for the new process.
    assert_eq!(
        f.deadline("a", DeadlineKind::Heartbeat),
        Some(f.mono(secs(80 + 60)))
    );
}

#[test]
fn a_heartbeat_restart_uses_the_normal_delay_and_restarts_even_with_policy_never() {
    let mut f = Fake::new();
    f.load(vec![unit("a")
        .heartbeat(secs(30), secs(60))
        .policy(RestartPolicy::Never)
        .delays(secs(2), secs(60))]);
    f.advance(secs(60));
    assert_eq!(f.state("a"), State::Backoff);
    let fx = f.advance(secs(2));
    assert_eq!(Fake::spawns(&fx), vec!["a"]);
}

#[test]
fn a_hung_unit_that_ignores_the_stop_signal_is_killed() {
    let mut f = Fake::new();
    f.obey = false;
    f.load(vec![unit("a").heartbeat(secs(30), secs(10))]);
    let fx = f.advance(secs(10));
    assert_eq!(Fake::signals(&fx), vec!["a"]);
    assert_eq!(f.state("a"), State::Stopping);
    let fx = f.advance(secs(5));
    assert!(has(&fx, &killall("a")));
    assert_eq!(
        f.rec("a").last_exit.as_ref().and_then(|e| e.reason),
        Some(ExitReason::Heartbeat)
    );
    assert_eq!(f.state("a"), State::Backoff);
}

#[test]
fn no_heartbeat_deadline_after_a_stop() {
    let mut f = Fake::new();
    f.load(vec![unit("a").heartbeat(secs(30), secs(60))]);
    f.cmd(Command::Stop("a".into()));
    assert_eq!(f.deadline("a", DeadlineKind::Heartbeat), None);
    let fx = f.send(Input::Beat { unit: "a".into() });
    assert!(fx.is_empty());
}

#[test]
fn watchdog_pings_keep_it_and_a_miss_restarts_with_reason_watchdog() {
    let mut f = Fake::new();
    f.load(vec![unit("a")
        .notify(None)
        .with(|u| u.ready.watchdog = Some(secs(10)))
        .delays(Duration::ZERO, secs(1))]);
    f.send(Input::Ready { unit: "a".into() });
    for _ in 0..5 {
        f.advance(secs(9));
        f.send(Input::Watchdog { unit: "a".into() });
    }
    assert_eq!(f.rec("a").pid, Some(100));
    let fx = f.advance(secs(10));
    assert_eq!(Fake::spawns(&fx), vec!["a"]);
    assert_eq!(
        f.rec("a").last_exit.as_ref().and_then(|e| e.reason),
        Some(ExitReason::Watchdog)
    );
}

#[test]
fn a_fault_verdict_restarts_with_its_reason() {
    let mut f = Fake::new();
    f.load(vec![unit("a").delays(Duration::ZERO, secs(1))]);
    f.advance(secs(5));
    let fx = f.send(Input::Fault {
        unit: "a".into(),
        reason: Fault::Health,
    });
    assert_eq!(Fake::spawns(&fx), vec!["a"]);
    assert_eq!(
        f.rec("a").last_exit.as_ref().and_then(|e| e.reason),
        Some(ExitReason::Health)
    );
}

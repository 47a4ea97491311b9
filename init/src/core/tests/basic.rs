//! The basic API: loading, resolving names, stale inputs, readiness, status views.

use super::*;

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

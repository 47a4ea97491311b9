//! Hooks: `exec_start_pre`, `exec_start_post`, `exec_stop`, `exec_reload` as phases of a run.

use super::*;

use units::hooks::{parse_hook_line, HookKind};

fn hooks(kind: HookKind, lines: &[&str]) -> impl FnOnce(&mut Unit) {
    let cmds: Vec<_> = lines.iter().map(|l| parse_hook_line(l).unwrap()).collect();
    move |u: &mut Unit| *u.hooks.get_mut(kind) = cmds
}

fn run_hook(name: &str, kind: HookKind, index: usize) -> Effect {
    Effect::RunHook {
        unit: name.into(),
        kind,
        index,
    }
}

#[test]
fn start_pre_lines_run_in_order_before_the_main_process() {
    let mut f = Fake::new();
    let a = unit("a").with(hooks(HookKind::StartPre, &["/bin/check", "-/bin/may-fail"]));
    let fx = f.load(vec![a]);
    assert_eq!(fx.first(), Some(&run_hook("a", HookKind::StartPre, 0)));
    assert!(
        Fake::spawns(&fx).is_empty(),
        "no main process before the hooks"
    );
    assert_eq!(f.state("a"), State::Starting);
    assert_eq!(f.sup.wait_result("a", Want::Up), None);
    let fx = f.end_hook("a", 0);
    assert!(has(&fx, &run_hook("a", HookKind::StartPre, 1)));
    // `-`: its failure is ignored.
    let fx = f.end_hook("a", 3);
    assert_eq!(Fake::spawns(&fx), ["a"]);
    assert!(f.rec("a").is_up());
    assert!(f.deadline("a", DeadlineKind::Hook).is_none());
}

#[test]
fn a_failing_start_pre_fails_the_start_with_its_reason() {
    let mut f = Fake::new();
    let a = unit("a")
        .policy(RestartPolicy::Never)
        .with(hooks(HookKind::StartPre, &["/bin/check", "/bin/never"]));
    f.load(vec![a]);
    let fx = f.end_hook("a", 2);
    assert!(Fake::spawns(&fx).is_empty());
    assert!(!fx.contains(&run_hook("a", HookKind::StartPre, 1)));
    assert_eq!(f.state("a"), State::Failed);
    let e = f.rec("a").last_exit.clone().unwrap();
    assert_eq!(e.status, Some(ExitStatus::Code(2)));
    assert_eq!(e.reason, Some(ExitReason::Hook(HookKind::StartPre)));
    assert_eq!(e.reason.unwrap().as_str(), "exec_start_pre");
    assert!(e.detail.unwrap().contains("/bin/check"));
    assert!(matches!(f.sup.wait_result("a", Want::Up), Some(Err(_))));
    assert!(f.violations.is_empty(), "{:?}", f.violations);
}

#[test]
fn a_start_pre_past_the_start_timeout_is_killed_even_with_a_dash() {
    let mut f = Fake::new();
    let a = unit("a")
        .policy(RestartPolicy::Never)
        .with(|u| u.ready.timeout = Some(secs(10)))
        .with(hooks(HookKind::StartPre, &["-/bin/slow"]));
    f.load(vec![a]);
    assert_eq!(f.deadline("a", DeadlineKind::Hook), Some(f.mono(secs(10))));
    let fx = f.advance(secs(10));
    assert!(has(&fx, &Effect::KillHook { unit: "a".into() }));
    assert!(Fake::spawns(&fx).is_empty());
    assert_eq!(f.state("a"), State::Failed);
    assert_eq!(
        f.rec("a").last_exit.as_ref().and_then(|e| e.status),
        Some(ExitStatus::Signal(9))
    );
}

#[test]
fn a_stop_during_start_pre_kills_it_and_starts_nothing() {
    let mut f = Fake::new();
    f.load(vec![
        unit("a").with(hooks(HookKind::StartPre, &["/bin/slow"]))
    ]);
    let fx = f.cmd(Command::Stop("a".into()));
    assert!(has(&fx, &Effect::KillHook { unit: "a".into() }));
    assert!(Fake::spawns(&fx).is_empty());
    assert_eq!(f.state("a"), State::Stopped);
    assert_eq!(f.sup.wait_result("a", Want::Down), Some(Ok(())));
}

#[test]
fn start_post_runs_once_ready_and_the_unit_is_up_after_it() {
    let mut f = Fake::new();
    let a = unit("a")
        .notify(Some(secs(30)))
        .with(hooks(HookKind::StartPost, &["/bin/post"]));
    let b = unit("b").after(&["a"]);
    f.load(vec![a, b]);
    assert!(f.hooks.is_empty(), "not before ready");
    let fx = f.send(Input::Ready { unit: "a".into() });
    assert!(has(&fx, &run_hook("a", HookKind::StartPost, 0)));
    assert_eq!(f.state("a"), State::Starting);
    assert_eq!(f.state("b"), State::Stopped, "b waits for a's start_post");
    // A second READY=1 changes nothing.
    f.send(Input::Ready { unit: "a".into() });
    assert_eq!(f.state("a"), State::Starting);
    let fx = f.end_hook("a", 0);
    assert!(f.rec("a").is_up());
    assert_eq!(Fake::spawns(&fx), ["b"]);
}

#[test]
fn a_failing_start_post_stops_the_unit_as_a_failed_start() {
    let mut f = Fake::new();
    let a = unit("a")
        .policy(RestartPolicy::Never)
        .with(hooks(HookKind::StartPost, &["/bin/post"]));
    f.load(vec![a]);
    assert_eq!(f.state("a"), State::Starting);
    let fx = f.end_hook("a", 1);
    assert_eq!(Fake::signals(&fx), ["a"]);
    assert_eq!(f.state("a"), State::Failed);
    assert_eq!(f.rec("a").failed_starts, 1);
    assert_eq!(
        f.rec("a").last_exit.as_ref().and_then(|e| e.reason),
        Some(ExitReason::Hook(HookKind::StartPost))
    );
}

#[test]
fn exec_stop_runs_before_the_stop_signal() {
    let mut f = Fake::new();
    let a = unit("a")
        .with(|u| u.stop.timeout = Some(secs(7)))
        .with(hooks(HookKind::Stop, &["/bin/stop1", "/bin/stop2"]));
    f.load(vec![a]);
    let fx = f.cmd(Command::Stop("a".into()));
    assert_eq!(Fake::signals(&fx), Vec::<String>::new());
    assert!(has(&fx, &run_hook("a", HookKind::Stop, 0)));
    assert_eq!(f.state("a"), State::Stopping);
    assert_eq!(
        f.deadline("a", DeadlineKind::StopTimeout),
        Some(f.mono(secs(7)))
    );
    let fx = f.end_hook("a", 0);
    assert!(has(&fx, &run_hook("a", HookKind::Stop, 1)));
    assert!(Fake::signals(&fx).is_empty());
    let fx = f.end_hook("a", 0);
    assert_eq!(Fake::signals(&fx), ["a"]);
    assert_eq!(f.state("a"), State::Stopped);
}

#[test]
fn main_ending_during_exec_stop_waits_for_it_then_kills_the_rest() {
    let mut f = Fake::new();
    let a = unit("a").with(hooks(HookKind::Stop, &["/usr/bin/app-cli shutdown"]));
    f.load(vec![a]);
    f.cmd(Command::Stop("a".into()));
    // The hook made the main process exit.
    let fx = f.exit("a", 0);
    assert!(!has(&fx, &killall("a")), "the hook is not killed under it");
    assert_eq!(f.state("a"), State::Stopping);
    let fx = f.end_hook("a", 0);
    assert!(has(&fx, &killall("a")));
    assert!(Fake::signals(&fx).is_empty());
    assert_eq!(f.state("a"), State::Stopped);
}

#[test]
fn exec_stop_past_the_stop_timeout_is_killed_with_the_unit() {
    let mut f = Fake::new();
    f.obey = false;
    let a = unit("a")
        .with(|u| u.stop.timeout = Some(secs(2)))
        .with(hooks(HookKind::Stop, &["/bin/hang"]));
    f.load(vec![a]);
    f.cmd(Command::Stop("a".into()));
    let fx = f.advance(secs(2));
    assert!(has(&fx, &killall("a")));
    assert!(f.hooks.is_empty());
    assert_eq!(f.state("a"), State::Stopped);
}

#[test]
fn reload_runs_exec_reload_and_the_unit_is_ready_after_it() {
    let mut f = Fake::new();
    let a = unit("a").with(hooks(HookKind::Reload, &["/bin/kill -HUP $MAINPID"]));
    f.load(vec![a, unit("b")]);
    let fx = f.cmd(Command::Reload("a".into()));
    assert_eq!(fx.first(), Some(&run_hook("a", HookKind::Reload, 0)));
    let r = f.rec("a");
    assert!(r.reloading && !r.ready && r.state == State::Running);
    assert_eq!(f.sup.wait_result("a", Want::Up), None);
    // A unit without exec_reload: nothing.
    assert!(f.cmd(Command::Reload("b".into())).is_empty());
    f.end_hook("a", 1);
    let r = f.rec("a");
    assert!(!r.reloading && r.ready && r.state == State::Running);
    assert!(r.note.as_deref().unwrap().starts_with("reload failed"));
    assert_eq!(f.sup.wait_result("a", Want::Up), Some(Ok(())));
}

#[test]
fn a_running_hook_blocks_a_handover_and_is_in_the_snapshot() {
    let mut f = Fake::new();
    let a = unit("a").with(hooks(HookKind::StartPre, &["/bin/slow"]));
    f.load(vec![a.clone()]);
    let set = vec![("a".to_string(), Ok(a))];
    let blockers = f.sup.handover_blockers();
    assert!(blockers[0].contains("exec_start_pre"), "{blockers:?}");
    let clock = MonoClock {
        at: f.now().mono,
        ns: 1_000_000,
    };
    let snap = f.sup.snapshot(&clock);
    let json = serde_json::to_string(&snap).unwrap();
    let back: CoreSnap = serde_json::from_str(&json).unwrap();
    let sup = Supervisor::restore(defaults(), back, &set, &clock);
    let h = sup.get("a").and_then(|r| r.hook).unwrap();
    assert_eq!((h.kind, h.index), (HookKind::StartPre, 0));
    assert!(h.pid.is_some());
}

#[test]
fn exec_stop_going_on_after_the_main_process_is_still_bounded() {
    let mut f = Fake::new();
    f.auto_empty = true;
    let a = unit("a")
        .with(|u| u.stop.timeout = Some(secs(4)))
        .with(hooks(HookKind::Stop, &["/bin/hang"]));
    f.load(vec![a]);
    f.cmd(Command::Stop("a".into()));
    f.exit("a", 0);
    assert!(f.deadline("a", DeadlineKind::StopTimeout).is_some());
    let fx = f.advance(secs(4));
    assert!(has(&fx, &Effect::KillHook { unit: "a".into() }) || f.hooks.is_empty());
    assert!(f.hooks.is_empty());
    assert_eq!(f.state("a"), State::Stopped);
}

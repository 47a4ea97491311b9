//! Boot tasks (`[ready] type = "exited"`): up when the program exits with a success code;
//! what is ordered after one starts only then, and not at all when it fails.

use super::*;

/// A boot task as the parser makes it: `[ready] type = "exited"`, `[restart] policy =
/// "never"` unless the file says otherwise.
fn task(name: &str) -> Unit {
    unit(name).policy(RestartPolicy::Never).with(|u| {
        u.ready.kind = ReadyType::Exited;
        u.exec = vec!["/sbin/fsck".into(), "-a".into()];
    })
}

#[test]
fn dependents_start_only_once_the_task_exited_with_success() {
    let mut f = Fake::new();
    let fx = f.load(vec![
        task("fsck"),
        task("mount").after(&["fsck"]),
        unit("sshd").requires(&["mount"]),
    ]);
    assert_eq!(Fake::spawns(&fx), vec!["fsck"]);
    assert_eq!(f.state("fsck"), State::Starting);
    assert!(!f.rec("fsck").is_up());
    // Time alone changes nothing: a boot task has no ready timeout unless it sets one.
    let fx = f.advance(secs(600));
    assert!(Fake::spawns(&fx).is_empty());
    assert_eq!(f.state("fsck"), State::Starting);
    assert_eq!(f.deadline("fsck", DeadlineKind::ReadyTimeout), None);

    let fx = f.exit("fsck", 0);
    assert_eq!(Fake::spawns(&fx), vec!["mount"]);
    assert_eq!(f.state("fsck"), State::Exited);
    assert_eq!(f.rec("fsck").since, f.now().wall);
    assert_eq!(f.state("sshd"), State::Stopped);
    f.advance(secs(1));
    let fx = f.exit("mount", 0);
    assert_eq!(Fake::spawns(&fx), vec!["sshd"]);
    assert_eq!(f.state("mount"), State::Exited);
    assert_eq!(f.rec("mount").since, f.now().wall);
    assert_eq!(f.state("sshd"), State::Running);
    // Done for good: no restart, whatever time passes.
    let fx = f.advance(secs(3600));
    assert!(Fake::spawns(&fx).is_empty());
    assert_eq!(f.state("fsck"), State::Exited);
    assert_eq!(f.rec("fsck").restarts, 0);
    assert_eq!(f.sup.wait_result("fsck", Want::Up), Some(Ok(())));
}

#[test]
fn a_success_code_other_than_zero_counts() {
    let mut f = Fake::new();
    f.load(vec![
        task("fsck").with(|u| u.restart.success_codes = vec![0, 1]),
        unit("app").after(&["fsck"]),
    ]);
    let fx = f.exit("fsck", 1);
    assert_eq!(Fake::spawns(&fx), vec!["app"]);
    assert_eq!(f.state("fsck"), State::Exited);
}

#[test]
fn a_failed_task_keeps_after_and_requires_dependents_down_and_says_why() {
    let mut f = Fake::new();
    f.load(vec![
        task("fsck"),
        unit("mount").after(&["fsck"]),
        unit("sshd").requires(&["fsck"]),
        unit("free"),
    ]);
    assert_eq!(f.state("free"), State::Running);
    let fx = f.exit("fsck", 8);
    assert!(Fake::spawns(&fx).is_empty());
    assert_eq!(f.state("fsck"), State::Failed);
    for dep in ["mount", "sshd"] {
        assert_eq!(f.state(dep), State::Failed, "{dep}");
        assert_eq!(
            f.rec(dep).note.as_deref(),
            Some("boot task fsck failed: exited with code 8"),
            "{dep}"
        );
    }
    let err = f.sup.wait_result("mount", Want::Up);
    assert!(
        matches!(&err, Some(Err(e)) if e.contains("boot task fsck failed: exited with code 8")),
        "{err:?}"
    );
    assert!(matches!(f.sup.wait_result("fsck", Want::Up), Some(Err(_))));
    assert_eq!(f.state("free"), State::Running);
}

#[test]
fn a_task_killed_by_a_signal_or_not_started_says_so() {
    let mut f = Fake::new();
    f.broken.insert("fsck".into());
    f.load(vec![task("fsck"), unit("app").after(&["fsck"])]);
    assert_eq!(f.state("app"), State::Failed);
    let note = f.rec("app").note.clone().unwrap_or_default();
    assert!(
        note.starts_with("boot task fsck failed: did not start (exec)"),
        "{note}"
    );

    let mut f = Fake::new();
    f.load(vec![task("sysctl"), unit("app").after(&["sysctl"])]);
    f.alive.remove("sysctl");
    f.send(Input::Exited {
        unit: "sysctl".into(),
        status: ExitStatus::Signal(libc::SIGKILL),
        oom: false,
    });
    assert_eq!(
        f.rec("app").note.as_deref(),
        Some("boot task sysctl failed: killed by SIGKILL")
    );
}

#[test]
fn a_ready_timeout_fails_the_task() {
    let mut f = Fake::new();
    f.load(vec![
        task("migrate").with(|u| u.ready.timeout = Some(secs(30))),
        unit("app").after(&["migrate"]),
    ]);
    assert_eq!(
        f.deadline("migrate", DeadlineKind::ReadyTimeout),
        Some(f.mono(secs(30)))
    );
    let fx = f.advance(secs(30));
    assert!(Fake::spawns(&fx).is_empty());
    assert_eq!(f.state("migrate"), State::Failed);
    assert_eq!(f.state("app"), State::Failed);
    assert_eq!(
        f.rec("app").note.as_deref(),
        Some("boot task migrate failed: killed by SIGTERM (ready_timeout)")
    );
}

#[test]
fn start_runs_the_task_again_and_answers_at_its_exit() {
    let mut f = Fake::new();
    f.load(vec![task("fsck")]);
    f.exit("fsck", 0);
    assert_eq!(f.state("fsck"), State::Exited);
    f.advance(secs(5));
    let fx = f.cmd(Command::Start("fsck".into()));
    assert_eq!(Fake::spawns(&fx), vec!["fsck"]);
    assert_eq!(f.state("fsck"), State::Starting);
    assert_eq!(f.sup.wait_result("fsck", Want::Up), None);
    f.advance(secs(2));
    f.exit("fsck", 0);
    assert_eq!(f.state("fsck"), State::Exited);
    assert_eq!(f.rec("fsck").since, f.now().wall);
    assert_eq!(f.sup.wait_result("fsck", Want::Up), Some(Ok(())));

    // Run by hand after a failure: the answer is the new run's.
    f.cmd(Command::Start("fsck".into()));
    f.exit("fsck", 4);
    assert_eq!(f.state("fsck"), State::Failed);
    let r = f.sup.wait_result("fsck", Want::Up);
    assert!(
        matches!(&r, Some(Err(e)) if e.contains("exited with code 4")),
        "{r:?}"
    );
}

#[test]
fn a_failed_task_started_again_by_hand_lets_new_dependents_start() {
    let mut f = Fake::new();
    f.load(vec![task("mount"), unit("app").after(&["mount"])]);
    f.exit("mount", 32);
    assert_eq!(f.state("app"), State::Failed);
    f.cmd(Command::Start("mount".into()));
    f.exit("mount", 0);
    let fx = f.cmd(Command::Start("app".into()));
    assert_eq!(Fake::spawns(&fx), vec!["app"]);
    assert_eq!(f.state("app"), State::Running);
}

#[test]
fn an_on_failure_policy_retries_and_dependents_wait_through_it() {
    let mut f = Fake::new();
    f.load(vec![
        task("net")
            .policy(RestartPolicy::OnFailure)
            .delays(secs(1), secs(1))
            .max_failures(3),
        unit("app").after(&["net"]),
    ]);
    f.exit("net", 1);
    assert_eq!(f.state("net"), State::Backoff);
    assert_eq!(f.state("app"), State::Stopped);
    let fx = f.advance(secs(1));
    assert_eq!(Fake::spawns(&fx), vec!["net"]);
    let fx = f.exit("net", 0);
    assert_eq!(Fake::spawns(&fx), vec!["app"]);
    assert_eq!(f.state("net"), State::Exited);
    assert_eq!(f.rec("net").failed_starts, 0);
}

#[test]
fn a_running_task_is_stopped_at_shutdown_and_a_done_one_needs_nothing() {
    let mut f = Fake::new();
    f.load(vec![
        task("done"),
        task("slow"),
        unit("app").after(&["done"]),
    ]);
    f.exit("done", 0);
    let fx = f.send(Input::Shutdown);
    let mut signalled = Fake::signals(&fx);
    signalled.sort();
    // The done task has nothing left to signal.
    assert_eq!(signalled, vec!["app", "slow"]);
    assert!(f.log.iter().any(|e| matches!(e, Effect::Exit { code: 0 })));
}

//! Hooks with real processes: `exec_start_pre`, `exec_start_post`, `exec_reload` and
//! `exec_stop` run in order, with the unit's identity, their output in the unit's log; a
//! failing `exec_start_pre` fails the start and the main process never runs.

use std::os::unix::fs::PermissionsExt;

use colony_integration::{text, wait_for, Colony};

fn lines(p: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn hooks_run_in_order_as_the_units_user_and_write_to_its_log() {
    let c = Colony::new();
    let d = tempfile::tempdir().unwrap();
    // The unit's user (nobody) writes the trace.
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let dir = d.path().display().to_string();
    let trace = d.path().join("trace");
    c.write_unit(
        "app",
        &format!(
            r#"user = "nobody"
exec = ["/bin/sh", "-c", "trap 'echo term >> {dir}/trace; exit 0' TERM; echo main $$ >> {dir}/trace; sleep 300 & wait"]
exec_start_pre = ["/bin/sh -c 'echo pre1 $(id -u) >> {dir}/trace; echo said-by-pre'", "-/bin/false", "/bin/sh -c 'echo pre2 $COLONY_UNIT >> {dir}/trace'"]
exec_start_post = ["/bin/sh -c 'echo post >> {dir}/trace'"]
exec_reload = ["/bin/sh -c 'echo reload $MAINPID >> {dir}/trace'"]
exec_stop = ["/bin/sh -c 'echo stop >> {dir}/trace'"]
"#
        ),
    );
    let o = c.ctl(&["check", c.units.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let c = c.start();
    let app = c.wait_state("app", "running");
    let pid = app["pid"].as_i64().expect("pid");
    let nobody = units::values::resolve_user("nobody").expect("nobody").uid;
    assert_eq!(
        lines(&trace),
        [
            format!("pre1 {nobody}"),
            "pre2 app".to_string(),
            format!("main {pid}"),
            "post".to_string()
        ]
    );

    let o = c.ctl(&["reload", "app"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(lines(&trace).last(), Some(&format!("reload {pid}")));
    c.wait_state("app", "running");

    let o = c.ctl(&["stop", "app"]);
    assert!(o.status.success(), "{}", text(&o));
    let t = lines(&trace);
    assert_eq!(
        t[t.len() - 2..],
        ["stop", "term"],
        "exec_stop before the signal"
    );

    let log = std::fs::read_to_string(c.logs.join("app.log")).unwrap();
    assert!(log.contains("said-by-pre"), "{log}");
    assert!(log.contains("exec_start_pre"), "{log}");
    assert!(log.contains("exec_stop"), "{log}");
}

#[test]
fn a_failing_start_pre_fails_the_start_and_the_program_never_runs() {
    let c = Colony::new();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().display().to_string();
    c.write_unit(
        "app",
        &format!(
            r#"exec = ["/bin/sh", "-c", "touch {dir}/main.ran; exec sleep 300"]
exec_start_pre = ["/bin/sh -c 'echo checking; exit 4'"]
enabled = false
[restart]
policy = "never"
"#
        ),
    );
    let c = c.start();
    let o = c.ctl(&["start", "app"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("exec_start_pre"),
        "{}",
        text(&o)
    );
    let app = c.wait_state("app", "failed");
    assert_eq!(app["last_exit"]["code"], 4, "{app}");
    assert_eq!(app["last_exit"]["reason"], "exec_start_pre", "{app}");
    assert!(!d.path().join("main.ran").exists());
    // `reload` of a unit without exec_reload, or not running, says why.
    let o = c.ctl(&["reload", "app"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let log = wait_for(
        "the hook's output in the log",
        std::time::Duration::from_secs(5),
        || {
            let l = std::fs::read_to_string(c.logs.join("app.log")).ok()?;
            l.contains("checking").then_some(l)
        },
    );
    assert!(log.contains("exited with code 4"), "{log}");
}

#[test]
fn hooks_run_in_the_units_sandbox() {
    if !nix::unistd::geteuid().is_root() {
        return; // a mount namespace per unit needs root
    }
    let c = Colony::new();
    let ro = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (o, w) = (ro.path().display(), out.path().display());
    // The hook writes into a read-only path of the sandbox: it must fail (and says so).
    c.write_unit(
        "boxed",
        &format!(
            r#"exec = ["/bin/sleep", "300"]
exec_start_pre = ["-/bin/sh -c 'echo x > {o}/f; echo $? > {w}/status'"]
[sandbox]
read_only_paths = ["{o}"]
"#
        ),
    );
    let c = c.start();
    c.wait_state("boxed", "running");
    let status = std::fs::read_to_string(out.path().join("status")).unwrap();
    assert_ne!(status.trim(), "0", "the hook wrote into a read-only path");
    assert!(!ro.path().join("f").exists());
}

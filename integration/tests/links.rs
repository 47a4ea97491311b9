//! `wants`, `before`, `conflicts`, conditions and asserts with real processes and files.

use colony_integration::{text, Colony};

#[test]
fn a_failed_condition_skips_the_unit_and_a_failed_assert_fails_it() {
    let c = Colony::new();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().display().to_string();
    c.write_unit(
        "app",
        &format!(
            "exec = [\"/bin/sh\", \"-c\", \"touch {dir}/app.ran; exec sleep 300\"]\n\
             condition_path_exists = \"{dir}/app.conf\"\n\
             condition_kernel_command_line = \"!colony.no-such-word\"\n"
        ),
    );
    c.write_unit(
        "web",
        "exec = [\"/bin/sleep\", \"300\"]\nafter = [\"app\"]\nrequires = [\"app\"]\n",
    );
    c.write_unit(
        "strict",
        &format!(
            "exec = [\"/bin/sh\", \"-c\", \"touch {dir}/strict.ran; exec sleep 300\"]\n\
             assert_path_is_directory = \"{dir}/app.conf\"\n"
        ),
    );
    let o = c.ctl(&["check", c.units.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let c = c.start();
    let app = c.wait_state("app", "skipped");
    assert!(
        app["error"]
            .as_str()
            .unwrap_or_default()
            .contains("app.conf")
            || app.to_string().contains("app.conf"),
        "{app}"
    );
    assert!(app["last_exit"].is_null(), "{app}");
    c.wait_state("web", "running");
    let strict = c.wait_state("strict", "failed");
    assert_eq!(strict["last_exit"]["reason"], "assert", "{strict}");
    assert!(!d.path().join("app.ran").exists());
    assert!(!d.path().join("strict.ran").exists());
    let human = c.ctl(&["status", "app"]);
    assert!(
        String::from_utf8_lossy(&human.stdout).contains("skipped"),
        "{}",
        text(&human)
    );

    // The condition holds now: a start runs it.
    std::fs::write(d.path().join("app.conf"), "x").unwrap();
    let o = c.ctl(&["start", "app"]);
    assert!(o.status.success(), "{}", text(&o));
    c.wait_state("app", "running");
    colony_integration::wait_for("app to run", std::time::Duration::from_secs(10), || {
        d.path().join("app.ran").exists().then_some(())
    });
    let o = c.ctl(&["start", "strict"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("assert"),
        "{}",
        text(&o)
    );
}

#[test]
fn wants_before_and_conflicts() {
    let c = Colony::new();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().display().to_string();
    // wants: helper is not enabled, main starts it; its failure would not matter.
    c.write_unit(
        "main",
        "exec = [\"/bin/sleep\", \"300\"]\nwants = [\"helper\", \"broken\"]\n",
    );
    c.write_unit(
        "helper",
        "exec = [\"/bin/sleep\", \"300\"]\nenabled = false\n",
    );
    c.write_unit(
        "broken",
        "exec = [\"/bin/false\"]\nenabled = false\n[restart]\npolicy = \"never\"\n",
    );
    // before: late is ordered after db, which is up only once its file exists.
    c.write_unit(
        "db",
        &format!(
            "exec = [\"/bin/sleep\", \"300\"]\nbefore = [\"late\"]\n\
             [ready]\ntype = \"file\"\npath = \"{dir}/db.ready\"\n"
        ),
    );
    c.write_unit(
        "late",
        &format!("exec = [\"/bin/sh\", \"-c\", \"test -e {dir}/db.ready && exec sleep 300\"]\n[restart]\npolicy = \"never\"\n"),
    );
    // conflicts: starting new stops old.
    c.write_unit("old", "exec = [\"/bin/sleep\", \"300\"]\n");
    c.write_unit(
        "new",
        "exec = [\"/bin/sleep\", \"300\"]\nenabled = false\nconflicts = [\"old\"]\n",
    );
    let c = c.start();
    c.wait_state("main", "running");
    c.wait_state("helper", "running");
    c.wait_state("broken", "failed");
    c.wait_state("main", "running");
    c.wait_state("db", "starting");
    assert_eq!(c.unit("late").expect("late")["state"], "stopped");
    std::fs::write(d.path().join("db.ready"), "").unwrap();
    c.wait_state("db", "running");
    c.wait_state("late", "running");

    c.wait_state("old", "running");
    let o = c.ctl(&["start", "new"]);
    assert!(o.status.success(), "{}", text(&o));
    let old = c.wait_state("old", "stopped");
    assert!(old.to_string().contains("conflicts with new"), "{old}");
    c.wait_state("new", "running");
}

#[test]
fn check_reports_bad_conditions_and_links() {
    let c = Colony::new();
    c.write_unit(
        "a",
        "exec = [\"/bin/true\"]\ncondition_path_exists = \"relative\"\nbefore = [\"a\"]\nassert_virtualization = \"kvm\"\n",
    );
    let o = c.ctl(&["check", c.units.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
    for k in ["condition_path_exists", "before", "assert_virtualization"] {
        assert!(err.contains(k), "{k}: {err}");
    }
}

/// `condition_capability` reads colony-init's bounding set (here without CAP_SYS_RESOURCE),
/// and `condition_ac_power` true and false never agree.
#[test]
fn capability_and_ac_power_conditions() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let mut c = Colony::new();
    c.fixed_nofile = true;
    let unit = |cond: &str| format!("exec = [\"/bin/sleep\", \"300\"]\n{cond}\n");
    c.write_unit("chown", &unit("condition_capability = \"CAP_CHOWN\""));
    c.write_unit(
        "resource",
        &unit("condition_capability = \"CAP_SYS_RESOURCE\""),
    );
    c.write_unit(
        "not-resource",
        &unit("condition_capability = \"!sys_resource\""),
    );
    c.write_unit("mains", &unit("condition_ac_power = \"true\""));
    c.write_unit("battery", &unit("condition_ac_power = \"false\""));
    let o = c.ctl(&["check", c.units.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let c = c.start();
    c.wait_state("chown", "running");
    c.wait_state("resource", "skipped");
    c.wait_state("not-resource", "running");
    let settled = |n: &str| {
        colony_integration::wait_for(&format!("{n} to settle"), colony_integration::SOON, || {
            let u = c.unit(n)?;
            let s = u["state"].as_str().unwrap_or_default().to_string();
            matches!(s.as_str(), "running" | "skipped").then_some(s)
        })
    };
    let (mains, battery) = (settled("mains"), settled("battery"));
    assert_ne!(
        mains, battery,
        "ac_power true and false: {mains} and {battery}"
    );
}

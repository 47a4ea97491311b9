//! Templates (`NAME@.unit`, `colonyctl start NAME@INST`) and `instances = N`, with real
//! processes: specifiers filled in, instances kept across a reexec.

use colony_integration::{text, wait_for, Colony};

fn read_soon(p: &std::path::Path) -> String {
    wait_for(
        &format!("{} to be written", p.display()),
        std::time::Duration::from_secs(10),
        || {
            std::fs::read_to_string(p)
                .ok()
                .filter(|t| t.ends_with('\n'))
        },
    )
}

#[test]
fn a_template_runs_instances_started_by_name_and_keeps_them_across_a_reexec() {
    let c = Colony::new();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().display().to_string();
    std::fs::write(
        c.units.join("worker@.unit"),
        format!(
            "description = \"worker %i\"\n\
             exec = [\"/bin/sh\", \"-c\", \"echo %i %n %p 100%% > {dir}/%i.out; exec sleep 300\"]\n"
        ),
    )
    .unwrap();
    // An instance file (a link to the template) is an instance from the start, as
    // systemd's enabled instances.
    std::os::unix::fs::symlink("worker@.unit", c.units.join("worker@boot.unit")).unwrap();
    let o = c.ctl(&["check", c.units.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let c = c.start();
    assert!(c.unit("worker@").is_none(), "a template runs nothing");
    c.wait_state("worker@boot", "running");
    assert_eq!(
        read_soon(&d.path().join("boot.out")),
        "boot worker@boot worker 100%\n"
    );
    for i in ["a", "b"] {
        let o = c.ctl(&["start", &format!("worker@{i}")]);
        assert!(o.status.success(), "{}", text(&o));
    }
    assert_eq!(
        read_soon(&d.path().join("a.out")),
        "a worker@a worker 100%\n"
    );
    read_soon(&d.path().join("b.out"));
    let a = c.wait_state("worker@a", "running");
    let pid = a["pid"].clone();
    // An instance of no template, or a bad instance name: no such unit.
    let o = c.ctl(&["start", "nothing@a"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));

    // Other changes to the directory leave the instances loaded.
    std::fs::write(
        c.units.join("other.unit"),
        "exec = [\"/bin/sleep\", \"300\"]\n",
    )
    .unwrap();
    c.wait_state("other", "running");
    assert_eq!(c.wait_state("worker@a", "running")["pid"], pid);

    let o = c.ctl(&["reexec"]);
    assert!(o.status.success(), "{}", text(&o));
    let a = c.wait_state("worker@a", "running");
    assert_eq!(a["pid"], pid, "{a}");
    c.wait_state("worker@b", "running");
    let o = c.ctl(&["stop", "worker@b"]);
    assert!(o.status.success(), "{}", text(&o));
    c.wait_state("worker@b", "stopped");
}

#[test]
fn instances_makes_numbered_units() {
    let c = Colony::new();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().display().to_string();
    c.write_unit(
        "pool",
        &format!(
            "instances = 3\nexec = [\"/bin/sh\", \"-c\", \"echo %n > {dir}/pool-%i; exec sleep 300\"]\n"
        ),
    );
    c.write_unit(
        "front",
        "exec = [\"/bin/sleep\", \"300\"]\nafter = [\"pool-2\"]\n",
    );
    let o = c.ctl(&["check", c.units.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let c = c.start();
    for k in 0..3 {
        c.wait_state(&format!("pool-{k}"), "running");
        assert_eq!(
            read_soon(&d.path().join(format!("pool-{k}"))),
            format!("pool-{k}\n")
        );
    }
    assert!(c.unit("pool").is_none());
    assert!(c.unit("pool-3").is_none());
    c.wait_state("front", "running");
}

//! `colonyctl reexec` through `podman exec`: colony-init as PID 1 of a real container, as
//! supervisor of a units directory and in entrypoint mode, re-executes with every process
//! running on; the container still stops as before afterwards.

use std::time::Duration;

use colony_integration::container::Container;
use colony_integration::{wait_for, SOON};
use serde_json::Value;

fn status(c: &Container) -> Option<Vec<Value>> {
    let o = c.exec(&["colonyctl", "--json", "status"]);
    serde_json::from_slice(&o.stdout).ok()
}

/// name -> (pid, restarts, state).
fn facts(c: &Container) -> Vec<(String, Value, Value, Value)> {
    let mut v: Vec<_> = status(c)
        .unwrap_or_default()
        .into_iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap_or("").to_string(),
                u["pid"].clone(),
                u["restarts"].clone(),
                u["state"].clone(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn reexecs(c: &Container) -> Value {
    let o = c.exec(&["colonyctl", "version", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    v["init"]["reexecs"].clone()
}

#[test]
fn supervisor_in_a_container_reexecs_through_podman_exec() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let units = tmp.path().join("units");
    std::fs::create_dir(&units).expect("mkdir");
    std::fs::write(units.join("a.unit"), "exec = [\"sleep\", \"1000\"]\n").expect("unit");
    std::fs::write(
        units.join("b.unit"),
        "exec = [\"sh\", \"-c\", \"while :; do sleep 1000 & wait $!; done\"]\n",
    )
    .expect("unit");
    let mount = format!("{}:/etc/colony/units:ro", units.display());
    let c = Container::start("reexec-sup", &["-v", &mount], &[]);
    let before = wait_for("both units running", SOON, || {
        let f = facts(&c);
        (f.len() == 2 && f.iter().all(|u| u.3 == "running")).then_some(f)
    });
    for _ in 0..3 {
        let o = c.exec(&["colonyctl", "reexec"]);
        assert_eq!(o.status.code(), Some(0), "{o:?}\n{}", c.all_logs());
        assert_eq!(facts(&c), before, "{}", c.all_logs());
    }
    assert_eq!(reexecs(&c), 3);
    let o = c.exec(&["colonyctl", "reexec", "--binary", "/bin/false"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(facts(&c), before);
    // Still PID 1 of the container, and it stops as it did.
    let init = c
        .procs()
        .into_iter()
        .find(|p| p.0 == 1)
        .map(|p| p.3)
        .unwrap_or_default();
    assert_eq!(init, "colony-init");
    c.stop(30);
    assert_eq!(c.wait_exit(Duration::from_secs(60)), 0, "{}", c.all_logs());
}

#[test]
fn entrypoint_in_a_container_reexecs_with_cmd_running_on() {
    let c = Container::start(
        "reexec-ep",
        &[],
        &[
            "colony-init",
            "--run-dir",
            "/run/colony",
            "--",
            "sh",
            "-c",
            "trap 'exit 7' TERM; while :; do sleep 1000 & wait $!; done",
        ],
    );
    wait_for("colony-init answering", SOON, || {
        c.exec(&["colonyctl", "version"])
            .status
            .success()
            .then_some(())
    });
    let sh = |c: &Container| {
        c.procs()
            .into_iter()
            .find(|p| p.1 == 1 && p.3 == "sh")
            .map(|p| p.0)
    };
    let cmd = wait_for("CMD running", SOON, || sh(&c));
    for _ in 0..3 {
        let o = c.exec(&["colonyctl", "reexec"]);
        assert_eq!(o.status.code(), Some(0), "{o:?}\n{}", c.all_logs());
    }
    assert_eq!(reexecs(&c), 3);
    assert_eq!(sh(&c), Some(cmd), "CMD is not the same process");
    c.kill("TERM");
    assert_eq!(c.wait_exit(Duration::from_secs(60)), 7, "{}", c.all_logs());
}

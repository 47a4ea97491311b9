//! Boot tasks (`[ready] type = "exited"`) with real processes: what is ordered after one
//! starts only once it exited with success, not at all when it failed (and its status says
//! why), and `colonyctl start` runs a done task again.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use colony_integration::{wait_for, Colony, SOON};

fn text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn dependents_start_after_the_task_exits_and_start_runs_it_again() {
    let c = Colony::new();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().display().to_string();
    let gate = d.path().join("gate");
    nix_mkfifo(&gate);
    // The task blocks on a FIFO until the test lets it go, then records that it ran.
    c.write_unit(
        "fsck",
        &format!(
            "exec = [\"/bin/sh\", \"-c\", \"read x < {dir}/gate; echo run >> {dir}/fsck.runs\"]\n\
             [ready]\ntype = \"exited\"\n"
        ),
    );
    // Ordered after it: copies what the task left at its own start.
    c.write_unit(
        "app",
        &format!(
            "exec = [\"/bin/sh\", \"-c\", \"cp {dir}/fsck.runs {dir}/app.saw; exec sleep 300\"]\n\
             after = [\"fsck\"]\n"
        ),
    );
    let o = c.ctl(&["check", c.units.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let c = c.start();
    c.wait_state("fsck", "starting");
    assert_eq!(c.unit("app").expect("app")["state"], "stopped");
    assert!(!d.path().join("app.saw").exists());

    open_gate(&gate);
    let fsck = c.wait_state("fsck", "exited");
    assert_eq!(fsck["last_exit"]["code"], 0, "{fsck}");
    c.wait_state("app", "running");
    // Running means exec'd, not that the shell got to its cp yet: wait for what it copied.
    let saw = wait_for("app to copy what fsck left", SOON, || {
        std::fs::read_to_string(d.path().join("app.saw"))
            .ok()
            .filter(|s| s.ends_with('\n'))
    });
    assert_eq!(saw, "run\n");
    let since = fsck["since"].clone();

    // Run by hand: colonyctl start returns once it exited again.
    let waiter = std::thread::spawn({
        let gate = gate.clone();
        move || open_gate(&gate)
    });
    let o = c.ctl(&["start", "fsck"]);
    waiter.join().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let runs = std::fs::read_to_string(d.path().join("fsck.runs")).unwrap();
    assert_eq!(runs, "run\nrun\n");
    let fsck = c.wait_state("fsck", "exited");
    assert_ne!(fsck["since"], since, "{fsck}");
    let human = c.ctl(&["status", "fsck"]);
    assert!(
        String::from_utf8_lossy(&human.stdout).contains("exited"),
        "{}",
        text(&human)
    );
}

#[test]
fn a_failed_task_keeps_its_dependents_down_and_status_says_why() {
    let c = Colony::new();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().display().to_string();
    c.write_unit(
        "mount",
        "exec = [\"/bin/sh\", \"-c\", \"exit 32\"]\n[ready]\ntype = \"exited\"\n",
    );
    for (name, key) in [("web", "after"), ("db", "requires")] {
        c.write_unit(
            name,
            &format!(
                "exec = [\"/bin/sh\", \"-c\", \"touch {dir}/{name}.ran; exec sleep 300\"]\n\
                 {key} = [\"mount\"]\n"
            ),
        );
    }
    c.write_unit("free", "exec = [\"/bin/sleep\", \"300\"]\n");
    let c = c.start();
    let m = c.wait_state("mount", "failed");
    assert_eq!(m["last_exit"]["code"], 32, "{m}");
    for name in ["web", "db"] {
        let u = c.wait_state(name, "failed");
        assert_eq!(
            u["error"], "boot task mount failed: exited with code 32",
            "{u}"
        );
        assert!(!d.path().join(format!("{name}.ran")).exists());
    }
    c.wait_state("free", "running");
    let o = c.ctl(&["start", "web"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("boot task mount failed: exited with code 32"),
        "{}",
        text(&o)
    );
    assert!(!d.path().join("web.ran").exists());
}

fn nix_mkfifo(p: &std::path::Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .expect("mkfifo");
    assert!(st.success());
}

/// Open the FIFO for writing (blocks until the task opens it for reading) and let it go.
fn open_gate(p: &std::path::Path) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(0)
        .open(p)
        .expect("open gate");
    f.write_all(b"go\n").expect("write gate");
}

//! colony-init as PID 1 of a container (a PID namespace of its own, with a private mount
//! namespace): it knows it is a container, mounts what is missing, covers nothing that is
//! there, and exits 0 on SIGTERM.

use std::process::{Command, Stdio};
use std::time::Duration;

use colony_integration::bin;
use colony_integration::ns::{child_named, pid_exists, pid_ns_available, wait_for};

use colony_integration::skip_or_fail;

/// Mount points (and types) as the process `pid` sees them.
fn mounts_of(pid: i32) -> Vec<(String, String)> {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            Some((f.get(4)?.to_string(), f.get(sep + 1)?.to_string()))
        })
        .collect()
}

#[test]
fn container_pid1_mounts_what_is_missing_and_covers_nothing() {
    if !pid_ns_available() {
        skip_or_fail!("skipped: no PID namespaces here");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::create_dir_all(d.join("units")).expect("units");
    let run_was_populated = std::fs::read_dir("/run").is_ok_and(|mut r| r.next().is_some());
    // In the namespace's private mount table: take /dev/shm away (its directory below is
    // empty), then become colony-init as PID 1.
    let script = format!(
        "umount /dev/shm || exit 90; [ -z \"$(ls -A /dev/shm)\" ] || exit 91; \
         exec {} --units {u}/units --run-dir {u}/run --log-dir {u}/log --state-dir {u}/state \
         --cgroup-name colony-pid1-test-{pid}",
        bin("colony-init").display(),
        u = d.display(),
        pid = std::process::id(),
    );
    let log = std::fs::File::create(d.join("init.log")).expect("log");
    let mut unshare = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "sh",
            "-c",
            &script,
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("unshare");
    let mut init = None;
    let found = wait_for(Duration::from_secs(30), || {
        init = child_named(unshare.id(), "colony-init");
        init.is_some_and(|p| {
            mounts_of(p)
                .iter()
                .any(|(m, t)| m == "/dev/shm" && t == "tmpfs")
        })
    });
    let text = || std::fs::read_to_string(d.join("init.log")).unwrap_or_default();
    let Some(pid) = init else {
        let _ = unshare.kill();
        let _ = unshare.wait();
        panic!("colony-init did not start: {}", text());
    };
    let mounts = mounts_of(pid);
    // A container is no machine: poweroff is refused, and colony-init goes on.
    let ctl = |args: &[&str]| {
        Command::new(bin("colonyctl"))
            .arg("--run-dir")
            .arg(d.join("run"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("colonyctl")
    };
    let answers = wait_for(Duration::from_secs(30), || {
        ctl(&["status"]).status.code() == Some(0)
    });
    let refused = ctl(&["poweroff"]);
    let still = ctl(&["status"]);
    // SIGTERM first, so nothing is left behind whatever the asserts say.
    // SAFETY: the colony-init this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let ended = wait_for(Duration::from_secs(60), || {
        matches!(unshare.try_wait(), Ok(Some(_)))
    });
    if !ended {
        let _ = unshare.kill();
    }
    let status = unshare.wait().expect("wait");
    assert!(found, "no tmpfs on /dev/shm: {mounts:?}\n{}", text());
    assert!(answers, "colonyctl status never answered: {}", text());
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not PID 1 of a machine"),
        "{refused:?}"
    );
    assert_eq!(still.status.code(), Some(0), "{still:?}");
    assert!(text().contains("mode=container"), "{}", text());
    if run_was_populated {
        assert!(
            !mounts.iter().any(|(m, _)| m == "/run"),
            "a populated /run was covered: {mounts:?}"
        );
    }
    assert!(ended, "colony-init did not exit on SIGTERM: {}", text());
    assert_eq!(status.code(), Some(0), "{}", text());
    assert!(!pid_exists(pid));
}

#[test]
fn a_plain_colony_init_refuses_poweroff_reboot_and_halt() {
    let colony = colony_integration::Colony::new().start();
    for verb in ["poweroff", "reboot", "halt"] {
        let o = colony.ctl(&[verb]);
        assert_eq!(o.status.code(), Some(1), "{verb}: {o:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("not PID 1 of a machine"),
            "{verb}: {o:?}"
        );
    }
    assert_eq!(colony.ctl(&["status"]).status.code(), Some(0));
}

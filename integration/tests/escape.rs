//! Nothing escapes a stop without cgroups: colony-init runs in a mount namespace of its
//! own with no cgroup mounted (as in a container whose /sys/fs/cgroup is unusable), so
//! its units live in process groups, and a unit whose processes leave the group with
//! `setsid` (one directly, one double-forked) is stopped only when they are gone too.

use std::path::{Path, PathBuf};
use std::process::Command;

use colony_integration::{alive, wait_for, Colony, SOON};

const UNIT: &str = "escapee";
/// Processes of each start that leave its process group.
const DAEMONS: usize = 3;

/// `WRAPPER colony-init ARGS`: colony-init in a private mount namespace where the cgroup
/// mounts are detached (the host's stay as they are).
fn no_cgroups_wrapper(dir: &Path) -> PathBuf {
    let path = dir.join("no-cgroups");
    std::fs::write(
        &path,
        "#!/bin/sh\nexec unshare --mount --propagation private /bin/sh -c 'umount -l /sys/fs/cgroup && exec \"$@\"' no-cgroups \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn mount_ns_available() -> bool {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Alive (not a zombie) and still the unit's (its environment names it): a pid reused by
/// something else does not count.
fn of_unit_alive(pid: i32) -> bool {
    let needle = format!("COLONY_UNIT={UNIT}");
    alive(pid)
        && std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|b| *b == 0).any(|e| e == needle.as_bytes()))
}

/// The escaped pids the unit wrote so far.
fn escaped(file: &Path) -> Vec<i32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Whatever happens, no sleep of this test outlives it.
struct KillLeft(PathBuf);

impl Drop for KillLeft {
    fn drop(&mut self) {
        for pid in escaped(&self.0) {
            if of_unit_alive(pid) {
                // SAFETY: a process this test's unit started (its environment says so).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

#[test]
fn setsid_daemons_of_a_unit_without_cgroups_die_at_its_stop() {
    if !mount_ns_available() {
        eprintln!("skipped: no mount namespaces here");
        return;
    }
    let mut c = Colony::new();
    c.wrapper = Some(no_cgroups_wrapper(c.dir.path()));
    let file = c.dir.path().join("escaped");
    // One leaves the session at once (setsid(1) in a background child), one double-forks
    // first (its parent exits, so it is re-parented to colony-init), one is the child of a
    // process that stays in the group (and dies with it).
    let daemon = format!(
        "sh -c \"echo \\$\\$ >> {}; exec sleep 1000\"",
        file.display()
    );
    c.write_unit(
        UNIT,
        &format!(
            "exec = [\"/bin/sh\", \"-c\", '''setsid {daemon} & ( setsid {daemon} & ) ; ( setsid {daemon} & wait ) & exec sleep 1000''']\n"
        ),
    );
    let mut c = c.start();
    // Dropped before `c`, while the file is there.
    let _guard = KillLeft(file.clone());
    for round in 1..=3 {
        let u = c.wait_state(UNIT, "running");
        assert_eq!(u["cgroup"], serde_json::Value::Null, "{u}");
        let pids = wait_for("the daemons of this start", SOON, || {
            let p = escaped(&file);
            (p.len() == DAEMONS * round).then_some(p)
        });
        let new = &pids[pids.len() - DAEMONS..];
        wait_for("the daemons to run as the unit's", SOON, || {
            new.iter().all(|p| of_unit_alive(*p)).then_some(())
        });
        let live: Vec<i32> = pids.iter().copied().filter(|p| of_unit_alive(*p)).collect();
        let mut new = new.to_vec();
        new.sort();
        let mut live = live;
        live.sort();
        assert_eq!(live, new, "only this start's daemons run");
        if round == 3 {
            break;
        }
        let o = c.ctl(&["stop", UNIT]);
        assert!(o.status.success(), "{o:?}\n{}", c.init_log());
        let u = c.wait_state(UNIT, "stopped");
        // Stopped means nothing of it is left: checked once, right after it said so.
        let left: Vec<i32> = pids.iter().copied().filter(|p| of_unit_alive(*p)).collect();
        assert!(left.is_empty(), "stopped, yet {left:?} of it live: {u}");
        let o = c.ctl(&["start", UNIT]);
        assert!(o.status.success(), "{o:?}\n{}", c.init_log());
    }
    assert!(
        c.init_log().contains("no writable cgroups here"),
        "colony-init had cgroups: {}",
        c.init_log()
    );
    // Its own end stops the unit the same way before it exits.
    assert_eq!(c.stop(), Some(0));
    let left: Vec<i32> = escaped(&file)
        .into_iter()
        .filter(|p| of_unit_alive(*p))
        .collect();
    assert!(left.is_empty(), "colony-init exited, yet {left:?} live");
}

//! Bugs found in passing (issue 17): a heartbeat file in the units directory, heartbeat
//! directory watches left behind, the timer record of a unit named `x.tmp`, and user names
//! resolved without NSS.

use colony_integration::{wait_for, Colony, SOON};
use serde_json::Value;

fn sh(script: &str) -> String {
    format!("exec = [\"/bin/sh\", \"-c\", '''{script}''']\n")
}

fn timers(c: &Colony) -> Vec<Value> {
    let o = c.ctl(&["--json", "timers"]);
    assert!(o.status.success(), "{o:?}");
    serde_json::from_slice(&o.stdout).expect("timers --json")
}

fn timer(c: &Colony, name: &str) -> Option<Value> {
    timers(c).into_iter().find(|t| t["name"] == name)
}

#[test]
fn a_persistent_timer_named_like_a_temporary_file_keeps_its_last_run() {
    let mut c = Colony::new();
    // `x`'s temporary record used to be `x.tmp`, the record of the unit `x.tmp`, and a
    // record named `*.tmp` was skipped as a temporary file when read back.
    for name in ["x.tmp", "x"] {
        c.write_unit(
            name,
            &format!("{}[timer]\nevery = \"1h\"\npersistent = true\n", sh("true")),
        );
    }
    c = c.start();
    for name in ["x.tmp", "x"] {
        let o = c.ctl(&["start", name]);
        assert!(o.status.success(), "{o:?}");
        wait_for(&format!("{name}'s run"), SOON, || {
            timer(&c, name).filter(|t| t["last_result"].is_string())
        });
    }
    let before: Vec<Value> = ["x.tmp", "x"]
        .iter()
        .map(|n| timer(&c, n).unwrap()["last"].clone())
        .collect();
    assert_eq!(c.stop(), Some(0));

    let c = c.start();
    for (name, last) in ["x.tmp", "x"].iter().zip(&before) {
        let t = timer(&c, name).unwrap_or_else(|| panic!("no timer {name}"));
        assert!(last.is_string(), "{name}: {last}");
        assert_eq!(&t["last"], last, "{name} after a restart: {t}");
    }
}

/// Every inotify watch of process `pid`: (inode, mask), from `/proc/PID/fdinfo`.
fn inotify_watches(pid: i32) -> Vec<(u64, u32)> {
    let mut out = Vec::new();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return out;
    };
    for fd in fds.flatten() {
        let is_inotify = std::fs::read_link(fd.path())
            .is_ok_and(|l| l.to_string_lossy() == "anon_inode:inotify");
        if !is_inotify {
            continue;
        }
        let info = std::fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        ))
        .unwrap_or_default();
        for line in info.lines().filter(|l| l.starts_with("inotify wd:")) {
            let field = |key: &str| {
                line.split_whitespace()
                    .find_map(|f| f.strip_prefix(key))
                    .and_then(|v| u64::from_str_radix(v, 16).ok())
            };
            if let (Some(ino), Some(mask)) = (field("ino:"), field("mask:")) {
                out.push((ino, mask as u32));
            }
        }
    }
    out
}

fn inode(p: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).expect("stat").ino()
}

fn watched(c: &Colony, dir: &std::path::Path) -> bool {
    let ino = inode(dir);
    inotify_watches(c.pid()).iter().any(|&(i, _)| i == ino)
}

fn beating(file: &std::path::Path) -> String {
    format!(
        "{}[heartbeat]\nfile = \"{}\"\nperiod = \"500ms\"\ngrace = \"3s\"\n",
        sh("while true; do touch \"$COLONY_HEARTBEAT\"; sleep 0.1; done"),
        file.display()
    )
}

#[test]
fn a_heartbeat_file_in_the_units_directory_leaves_the_directory_watched() {
    let c = Colony::new();
    c.write_unit("beat", &beating(&c.units.join("beat.hb")));
    c.write_unit("gone", "exec = [\"sleep\", \"1000\"]\n");
    let c = c.start();
    c.wait_state("beat", "running");
    c.wait_state("gone", "running");
    // The units directory's own events are still asked for, beside the heartbeat's.
    let ino = inode(&c.units);
    let mask = wait_for("the units directory's heartbeat watch", SOON, || {
        inotify_watches(c.pid())
            .into_iter()
            .find(|&(i, m)| i == ino && m & libc::IN_ATTRIB != 0)
            .map(|(_, m)| m)
    });
    let units_mask = libc::IN_CLOSE_WRITE | libc::IN_MOVED_FROM | libc::IN_DELETE;
    assert_eq!(mask & units_mask, units_mask, "mask {mask:#x}");

    // A unit file deleted is seen (IN_DELETE)...
    c.remove_unit("gone");
    wait_for("the removed unit to go", SOON, || {
        c.unit("gone").is_none().then_some(())
    });
    // ...and so is one written in place (IN_CLOSE_WRITE).
    std::fs::write(c.units.join("late.unit"), "exec = [\"sleep\", \"1000\"]\n").unwrap();
    c.wait_state("late", "running");
    // The beats in the units directory count: never restarted for a missed one.
    let u = c.unit("beat").unwrap();
    assert_eq!(u["state"], "running", "{u}");
    assert!(u["last_exit"].is_null(), "{u}");
}

#[test]
fn a_heartbeat_directory_is_unwatched_once_no_unit_uses_it() {
    let c = Colony::new();
    let dirs: Vec<_> = ["d1", "d2", "d3"]
        .iter()
        .map(|d| {
            let p = c.dir.path().join(d);
            std::fs::create_dir(&p).unwrap();
            p
        })
        .collect();
    let (d1, d2, d3) = (&dirs[0], &dirs[1], &dirs[2]);
    c.write_unit("a", &beating(&d1.join("a")));
    c.write_unit("a2", &beating(&d1.join("a2")));
    c.write_unit("b", &beating(&d2.join("b")));
    let c = c.start();
    for u in ["a", "a2", "b"] {
        c.wait_state(u, "running");
    }
    wait_for("d1 and d2 watched", SOON, || {
        (watched(&c, d1) && watched(&c, d2)).then_some(())
    });

    // A unit removed: its directory's watch goes...
    c.remove_unit("b");
    wait_for("b to go", SOON, || c.unit("b").is_none().then_some(()));
    wait_for("d2 unwatched", SOON, || (!watched(&c, d2)).then_some(()));
    // ...but not while another unit's heartbeat is there.
    c.remove_unit("a");
    wait_for("a to go", SOON, || c.unit("a").is_none().then_some(()));
    assert!(watched(&c, d1));

    // A heartbeat moved to another directory: the old one is unwatched at the next start.
    c.write_unit("a2", &beating(&d3.join("a2")));
    let want = d3.join("a2").display().to_string();
    c.wait_unit("a2", "given its new heartbeat file", |u| {
        u["heartbeat"]["file"] == want.as_str()
    });
    let o = c.ctl(&["restart", "a2"]);
    assert!(o.status.success(), "{o:?}");
    wait_for("d3 watched and d1 not", SOON, || {
        (watched(&c, d3) && !watched(&c, d1)).then_some(())
    });

    // No heartbeat any more: nothing of it is watched after the next start.
    c.write_unit("a2", "exec = [\"sleep\", \"1000\"]\n");
    c.wait_unit("a2", "without a heartbeat", |u| u["heartbeat"].is_null());
    let o = c.ctl(&["restart", "a2"]);
    assert!(o.status.success(), "{o:?}");
    wait_for("d3 unwatched", SOON, || (!watched(&c, d3)).then_some(()));
    // The units directory keeps its watch throughout.
    assert!(watched(&c, &c.units));
}

/// uid and gid of a live process, from `/proc/PID/status`.
fn ids_of(pid: i64) -> (u32, u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |key: &str| -> u32 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {status}"))
    };
    (field("Uid:"), field("Gid:"))
}

/// A unit run as `nobody` (from /etc/passwd) gets nobody's uid and primary gid.
fn check_runs_as_nobody(c: &Colony) {
    let u = c.wait_state("nob", "running");
    let pid = u["pid"].as_i64().unwrap_or_else(|| panic!("no pid: {u}"));
    assert_eq!(ids_of(pid), (65534, 65534), "{u}");
}

fn nobody_unit(c: &Colony) {
    c.write_unit(
        "nob",
        "exec = [\"sleep\", \"1000\"]\nuser = \"nobody\"\ngroup = \"nogroup\"\n",
    );
}

#[test]
fn a_user_name_resolves_from_etc_passwd() {
    let c = Colony::new();
    nobody_unit(&c);
    let c = c.start();
    check_runs_as_nobody(&c);
}

#[test]
fn user_names_resolve_without_nss() {
    // colony-init in a mount namespace whose nsswitch.conf names only a module that does
    // not exist: every NSS lookup of a user or group finds nothing there.
    if !std::process::Command::new("unshare")
        .args(["--mount", "true"])
        .status()
        .is_ok_and(|s| s.success())
    {
        colony_integration::skip_or_fail!("skipped: cannot unshare a mount namespace here");
        return;
    }
    let mut c = Colony::new();
    let nss = c.dir.path().join("nsswitch.conf");
    std::fs::write(
        &nss,
        "passwd: colonynosuchmodule\ngroup: colonynosuchmodule\nshadow: colonynosuchmodule\n",
    )
    .unwrap();
    let wrapper = c.dir.path().join("no-nss");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec unshare --mount --propagation private sh -c 'mount --bind {} /etc/nsswitch.conf && exec \"$@\"' sh \"$@\"\n",
            nss.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    c.wrapper = Some(wrapper);
    nobody_unit(&c);
    let c = c.start();
    check_runs_as_nobody(&c);
    // Its groups came from /etc/group too: only its own.
    let u = c.unit("nob").unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", u["pid"])).unwrap();
    let groups = status.lines().find_map(|l| l.strip_prefix("Groups:"));
    assert_eq!(groups.map(str::trim), Some("65534"), "{status}");
}

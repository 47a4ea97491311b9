//! A unit's user against colony-init (root): the files colony-init opens, creates or
//! chowns on a unit's behalf (heartbeat files, log files) must never be reached through a
//! link or a directory another user controls. Every test here plays the attack for real, as
//! `nobody`, in the test's own temporary directory.

use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use colony_integration::{bin, skip_or_fail, wait_for, Colony, SOON};
use serde_json::Value;

const NOBODY: u32 = 65534;

fn sh(script: &str) -> String {
    // A TOML literal string cannot hold a single quote; the scripts avoid them.
    format!("exec = [\"/bin/sh\", \"-c\", '''{script}''']\n")
}

fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        skip_or_fail!("skipped: needs root (units run as nobody, files are chowned)");
        return false;
    }
    true
}

/// Open the test's directory to others (a unit running as nobody must reach its files)
/// and make `DIR/app`, owned by nobody: the directory the unit's user may write.
fn app_dir(c: &Colony) -> PathBuf {
    std::fs::set_permissions(c.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let app = c.dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    chown(&app, Some(NOBODY), Some(NOBODY)).unwrap();
    app
}

/// A file of root's with `mode`: what the attacker aims at.
fn root_file(c: &Colony, name: &str, mode: u32) -> PathBuf {
    let p = c.dir.path().join(name);
    std::fs::write(&p, "root's own content\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

/// (uid, gid, mode, content) of a file.
fn fingerprint(p: &Path) -> (u32, u32, u32, String) {
    let m = std::fs::metadata(p).unwrap();
    (
        m.uid(),
        m.gid(),
        m.mode() & 0o7777,
        std::fs::read_to_string(p).unwrap(),
    )
}

/// Why the last start failed, as `status` shows it.
fn error_of(u: &Value) -> &str {
    if u["last_exit"]["reason"] != "exec" {
        return "";
    }
    u["last_exit"]["detail"].as_str().unwrap_or("")
}

#[test]
fn a_heartbeat_file_replaced_by_a_link_is_not_chowned_through_it() {
    if !can_run() {
        return;
    }
    let c = Colony::new();
    let app = app_dir(&c);
    let secret = root_file(&c, "secret", 0o600);
    let before = fingerprint(&secret);
    let beat = app.join("beat");
    c.write_unit(
        "beater",
        &format!(
            "{}user = \"nobody\"\n[heartbeat]\nfile = \"{}\"\nperiod = \"1h\"\n",
            sh(&format!(
                "ln -sf {} {}; exit 1",
                secret.display(),
                beat.display()
            )),
            beat.display()
        ),
    );
    let c = c.start();
    // At the restart colony-init meets the link: it refuses, or (the old failure) chowns
    // the root file to nobody.
    let u = c.wait_unit("beater", "refused at its restart", |u| {
        error_of(u).contains("symbolic link") || fingerprint(&secret) != before
    });
    assert_eq!(
        fingerprint(&secret),
        before,
        "the link's target was changed"
    );
    assert_eq!(
        error_of(&u),
        format!(
            "heartbeat file {b}: {b} is a symbolic link (colony-init does not follow links on a unit's behalf)",
            b = beat.display()
        )
    );
    // colonyctl status shows it too.
    let o = c.ctl(&["status", "beater"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("symbolic link"), "{text}");
}

#[test]
fn a_dangling_heartbeat_link_creates_nothing() {
    if !can_run() {
        return;
    }
    let c = Colony::new();
    let app = app_dir(&c);
    let rootonly = c.dir.path().join("rootonly");
    std::fs::create_dir(&rootonly).unwrap();
    std::fs::set_permissions(&rootonly, std::fs::Permissions::from_mode(0o700)).unwrap();
    let planted = rootonly.join("created");
    let beat = app.join("beat");
    c.write_unit(
        "beater",
        &format!(
            "{}user = \"nobody\"\n[heartbeat]\nfile = \"{}\"\nperiod = \"1h\"\n",
            sh(&format!(
                "ln -sf {} {}; exit 1",
                planted.display(),
                beat.display()
            )),
            beat.display()
        ),
    );
    let c = c.start();
    let u = c.wait_unit("beater", "refused at its restart", |u| {
        error_of(u).contains("symbolic link") || planted.exists()
    });
    assert!(
        !planted.exists(),
        "a file was created in a root-only directory"
    );
    assert!(error_of(&u).contains("symbolic link"), "{u}");
}

#[test]
fn a_log_file_replaced_by_a_link_is_not_written_through_at_the_next_start() {
    if !can_run() {
        return;
    }
    let mut c = Colony::new();
    let app = app_dir(&c);
    let target = root_file(&c, "target", 0o644);
    let before = fingerprint(&target);
    let log = app.join("app.log");
    c.write_unit(
        "logger",
        &format!(
            "{}user = \"nobody\"\n[log]\nfile = \"{}\"\n",
            sh(&format!(
                "ln -sf {} {}; echo attacker line; exec sleep 1000",
                target.display(),
                log.display()
            )),
            log.display()
        ),
    );
    c = c.start();
    c.wait_state("logger", "running");
    wait_for("the unit to plant its link", SOON, || {
        std::fs::symlink_metadata(&log)
            .ok()
            .filter(|m| m.file_type().is_symlink())
    });
    assert_eq!(c.stop(), Some(0));
    // colony-init's next start opens the unit's log file afresh.
    let c = c.start();
    let u = c.wait_unit("logger", "refused at the next start", |u| {
        error_of(u).contains("symbolic link") || fingerprint(&target) != before
    });
    assert_eq!(fingerprint(&target), before, "written through the link");
    assert_eq!(
        error_of(&u),
        format!(
            "log file {l}: {l} is a symbolic link (colony-init does not follow links on a unit's behalf)",
            l = log.display()
        )
    );
}

#[test]
fn a_directory_of_another_user_on_the_way_is_refused() {
    if !can_run() {
        return;
    }
    let c = Colony::new();
    let app = app_dir(&c);
    // Below nobody's directory, one of another (non-root) user: nobody could swap it.
    let other = app.join("other");
    std::fs::create_dir(&other).unwrap();
    chown(&other, Some(1001), Some(1001)).unwrap();
    let beat = other.join("beat");
    c.write_unit(
        "beater",
        &format!(
            "exec = [\"sleep\", \"1000\"]\nuser = \"nobody\"\n[heartbeat]\nfile = \"{}\"\nperiod = \"1h\"\n",
            beat.display()
        ),
    );
    let c = c.start();
    let u = c.wait_unit("beater", "refused or running", |u| {
        !error_of(u).is_empty() || u["state"] == "running"
    });
    assert_eq!(
        error_of(&u),
        format!(
            "heartbeat file {}: unsafe path: {} is owned by uid {NOBODY}, {} by uid 1001",
            beat.display(),
            app.display(),
            other.display()
        ),
        "{u}"
    );
    assert!(!beat.exists());
}

#[test]
fn members_of_the_control_group_read_the_logs() {
    if !can_run() {
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        skip_or_fail!("skipped: no setpriv");
        return;
    }
    // The `users` group of Debian and most distributions: nobody is no member of it.
    let Ok(Some(users)) = nix::unistd::Group::from_name("users") else {
        skip_or_fail!("skipped: no group `users`");
        return;
    };
    let gid = users.gid.as_raw();
    let mut c = Colony::new();
    std::fs::set_permissions(c.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    c.extra_args = vec!["--control-group".into(), "users".into()];
    c.write_unit("chatty", &sh("echo hello from chatty; exec sleep 1000"));
    let c = c.start();
    c.wait_state("chatty", "running");
    let log = c.logs.join("chatty.log");
    wait_for("the unit's line in its log", SOON, || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.contains("hello from chatty"))
    });
    // nobody, in the control group only: `logs` works as `status` does.
    let o = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={gid}"),
            "--clear-groups",
            "--",
        ])
        .arg(bin("colonyctl"))
        .arg("--run-dir")
        .arg(&c.run)
        .args(["logs", "chatty"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("hello from chatty"),
        "colonyctl logs as a member of the control group: {o:?}"
    );
    let m = std::fs::metadata(&log).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, gid, 0o640));
}

//! colonyctl against the real colony-init: what a user types and sees.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use colony_integration::{bin, wait_for, Colony, SOON};
use serde_json::Value;

fn pid_of(u: &Value) -> i32 {
    u["pid"].as_i64().unwrap_or(0) as i32
}

fn sh(script: &str) -> String {
    // A TOML literal string cannot hold a single quote; the scripts avoid them.
    format!("exec = [\"/bin/sh\", \"-c\", '''{script}''']\n")
}

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn status_table_and_json_have_the_spec_fields() {
    let c = Colony::new();
    c.write_unit("web", &sh("exec sleep 1000"));
    c.write_unit(
        "idle",
        &format!("{}enabled = false\n", sh("exec sleep 1000")),
    );
    let c = c.start();
    let pid = pid_of(&c.wait_state("web", "running"));
    let o = c.ctl(&["status"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    for col in [
        "NAME",
        "STATE",
        "PID",
        "RESTARTS",
        "SINCE",
        "LAST EXIT",
        "MEMORY",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let web = text.lines().find(|l| l.starts_with("web ")).unwrap();
    assert!(
        web.contains("running") && web.contains(&pid.to_string()),
        "{web}"
    );
    let idle = text.lines().find(|l| l.starts_with("idle ")).unwrap();
    assert!(idle.contains("stopped"), "{idle}");

    let o = c.ctl(&["--json", "status", "web.unit"]);
    assert_eq!(o.status.code(), Some(0));
    let v: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.len(), 1);
    let u = v[0].as_object().unwrap();
    for key in [
        "name",
        "state",
        "pid",
        "restarts",
        "since",
        "last_exit",
        "ready",
        "health",
        "status_text",
        "cgroup",
        "memory_bytes",
        "cpu_usec",
        "tasks",
        "error",
    ] {
        assert!(u.contains_key(key), "status --json lacks {key}: {u:?}");
    }
    assert!(
        chrono_like(u["since"].as_str().unwrap()),
        "{:?}",
        u["since"]
    );
    // A named unit that is not running: exit 3, the table still shows it.
    let o = c.ctl(&["status", "idle"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(out(&o).contains("idle"));
}

/// `2026-11-23T12:00:00.123Z` or with an offset.
fn chrono_like(s: &str) -> bool {
    s.len() >= 20 && s.as_bytes()[4] == b'-' && s.as_bytes()[10] == b'T'
}

#[test]
fn start_stop_restart_return_when_done() {
    let c = Colony::new();
    c.write_unit(
        "job",
        &format!("{}enabled = false\n", sh("exec sleep 1000")),
    );
    let c = c.start();
    c.wait_state("job", "stopped");
    let o = c.ctl(&["start", "job"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    // start waited: the unit is up now, without waiting here.
    let u = c.unit_typed("job").unwrap();
    assert_eq!(u.state, "running", "{u:?}");
    let pid = u.pid.expect("a running unit has a pid");
    let o = c.ctl(&["restart", "job.unit"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", err(&o), c.init_log());
    let u = c.unit_typed("job").unwrap();
    assert_eq!(u.state, "running", "{u:?}");
    assert_ne!(u.pid, Some(pid));
    let o = c.ctl(&["stop", "job"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(c.unit_typed("job").unwrap().state, "stopped");
    // --no-block returns at once; the result comes.
    let o = c.ctl(&["start", "--no-block", "job"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    c.wait_state("job", "running");
    let o = c.ctl(&["restart-all"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(c.ctl(&["reload"]).status.code(), Some(0));
}

#[test]
fn add_and_remove_write_the_units_directory_of_colony_init() {
    let c = Colony::new().start();
    let o = c.ctl(&[
        "add",
        "added",
        "--cmd",
        "sleep",
        "--arg",
        "1000",
        "--env",
        "GREETING=hi there",
        "--extras",
        r#"{"shard": 3}"#,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let file = c.units.join("added.unit");
    assert!(file.exists());
    // Nothing else (no temporary file) was left in the directory.
    let names: Vec<String> = std::fs::read_dir(&c.units)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["added.unit"]);
    let u = c.wait_state("added", "running");
    let env = std::fs::read(format!("/proc/{}/environ", pid_of(&u))).unwrap();
    let env = String::from_utf8_lossy(&env);
    assert!(env.split('\0').any(|e| e == "GREETING=hi there"), "{env}");
    assert!(
        env.split('\0').any(|e| e == r#"COLONY_CONFIG={"shard":3}"#),
        "{env}"
    );
    let o = c.ctl(&["remove", "added"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(!file.exists());
    wait_for("the removed unit to go", SOON, || {
        c.unit("added").is_none().then_some(())
    });
    assert_eq!(c.ctl(&["remove", "added"]).status.code(), Some(4));
}

#[test]
fn logs_follow_shows_new_lines() {
    let c = Colony::new();
    c.write_unit(
        "talker",
        &sh("trap \"echo got-usr1\" USR1; echo first; while :; do sleep 1000 & wait $!; done"),
    );
    let c = c.start();
    c.wait_state("talker", "running");
    wait_for("the first line in the log", SOON, || {
        let o = c.ctl(&["logs", "talker", "-n", "5"]);
        out(&o).contains("first").then_some(())
    });
    let mut child = Command::new(bin("colonyctl"))
        .arg("--run-dir")
        .arg(&c.run)
        // Two lines: colony's "started pid" note may come after "first" (the exec report
        // and the unit's first output race), so the last line alone may not be "first".
        .args(["logs", "talker", "-n", "2", "-f"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut text = String::new();
    let mut read_until = |want: &str| {
        let deadline = std::time::Instant::now() + SOON;
        while !text.contains(want) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => text.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => panic!("logs -f did not show {want:?}; it showed {text:?}"),
            }
        }
        text.clone()
    };
    // The follower prints the last lines first...
    read_until("first");
    // ...then what is written after.
    let o = c.ctl(&["signal", "SIGUSR1", "talker"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = read_until("got-usr1");
    let _ = child.kill();
    let _ = child.wait();
    let line = text.lines().find(|l| l.contains("got-usr1")).unwrap();
    assert!(chrono_like(line), "time-stamped: {line}");
    assert_eq!(c.ctl(&["logs", "nosuch"]).status.code(), Some(4));
}

#[test]
fn timers_table_and_json() {
    let c = Colony::new();
    c.write_unit(
        "tick",
        &format!("{}[timer]\nevery = \"1h\"\n", sh("echo tick")),
    );
    let c = c.start();
    let o = wait_for("timers to list tick", SOON, || {
        let o = c.ctl(&["timers"]);
        out(&o).contains("tick").then_some(o)
    });
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    let header = text.lines().next().unwrap();
    for col in [
        "UNIT", "SCHEDULE", "NEXT", "LEFT", "LAST", "RESULT", "SKIPPED",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let o = c.ctl(&["--json", "timers"]);
    let v: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    let t = v
        .iter()
        .find(|t| t["name"] == "tick")
        .unwrap()
        .as_object()
        .unwrap();
    for key in ["name", "schedule", "next", "last", "last_result", "skipped"] {
        assert!(t.contains_key(key), "timers --json lacks {key}: {t:?}");
    }
}

#[test]
fn power_verbs_are_refused_outside_a_machine() {
    let c = Colony::new().start();
    for verb in ["poweroff", "reboot", "halt"] {
        let o = c.ctl(&[verb]);
        assert_eq!(o.status.code(), Some(1), "{verb}: {}", err(&o));
        assert_eq!(err(&o).trim().lines().count(), 1);
        assert!(err(&o).contains("PID 1"), "{}", err(&o));
    }
    // And colony-init is still there.
    assert_eq!(c.ctl(&["status"]).status.code(), Some(0));
}

#[test]
fn colony_init_gone_is_exit_5() {
    let mut c = Colony::new().start();
    assert_eq!(c.ctl(&["status"]).status.code(), Some(0));
    assert_eq!(c.stop(), Some(0));
    let t = std::time::Instant::now();
    let o = c.ctl(&["status"]);
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
    assert!(err(&o).contains("not running"), "{}", err(&o));
    assert!(t.elapsed() < Duration::from_secs(5));
}

/// A request line whose verb is misspelt is answered on its reply FIFO (exit code 2, the
/// word named), and colony-init goes on answering.
#[test]
fn a_misspelt_verb_is_answered_as_a_usage_error() {
    use nix::fcntl::{open, OFlag};
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::stat::Mode;
    use std::io::Write;
    use std::os::fd::AsFd;

    let c = Colony::new();
    c.write_unit("web", &sh("exec sleep 1000"));
    let c = c.start();
    c.wait_state("web", "running");
    let fifo = c.run.join("reply").join("typo-1");
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
    let reader = open(
        &fifo,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(c.run.join("control"))
        .unwrap()
        .write_all(b"reply=typo-1 stpo web\nrestrat web\n")
        .unwrap();
    // Nothing is readable before colony-init opens the FIFO; then read to its EOF.
    let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
    let n = poll(&mut fds, PollTimeout::from(30_000u16)).unwrap();
    assert_eq!(n, 1, "no answer within 30s:\n{}", c.init_log());
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + SOON;
    loop {
        let mut buf = [0u8; 4096];
        match nix::unistd::read(&reader, &mut buf) {
            Ok(0) => break,
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(nix::errno::Errno::EAGAIN) => {
                assert!(std::time::Instant::now() < deadline, "reply never ended");
                let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
                poll(&mut fds, PollTimeout::from(1000u16)).unwrap();
            }
            Err(e) => panic!("reading the reply: {e}"),
        }
    }
    let r: units::proto::Reply = serde_json::from_slice(&got)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&got)));
    assert!(!r.ok, "{r:?}");
    assert_eq!(r.code, units::proto::exit::USAGE, "{r:?}");
    assert!(
        r.error.as_deref().unwrap_or("").contains("\"stpo\""),
        "{r:?}"
    );
    // Neither misspelt line did anything, and colony-init still answers.
    let u = c.unit_typed("web").unwrap();
    assert_eq!(u.state, "running", "{u:?}");
}

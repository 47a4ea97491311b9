//! The event stream (`subscribe` on the control FIFO) with real processes: the status
//! first, then one line per state change; a subscriber that does not read is dropped (and
//! told what it lost when it comes back), never blocking colony-init; an idle colony-init
//! with a subscriber still makes no wakeups.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;
use std::time::Duration;

use colony_integration::{wait_for, Colony, SOON};
use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use serde_json::Value;
use std::io::Write;

/// A reply FIFO `name` in RUN/reply, opened for reading (non-blocking, so before any
/// writer), and the request `reply=NAME subscribe` sent.
fn subscribe(c: &Colony, name: &str) -> OwnedFd {
    let fifo = c.run.join("reply").join(name);
    let _ = std::fs::remove_file(&fifo);
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
    let r = open(
        &fifo,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    send(c, &format!("reply={name} subscribe\n"));
    r
}

fn send(c: &Colony, line: &str) {
    let mut control = std::fs::OpenOptions::new()
        .write(true)
        .open(c.run.join("control"))
        .unwrap();
    control.write_all(line.as_bytes()).unwrap();
}

/// Lines as they come, from a thread; the channel closes at EOF (colony-init closed it).
fn lines(fd: OwnedFd) -> mpsc::Receiver<Value> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 65536];
        loop {
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::from(1000u16)).unwrap_or(0) == 0 {
                continue;
            }
            match nix::unistd::read(&fd, &mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(nix::errno::Errno::EAGAIN) => continue,
                Err(_) => return,
            }
            while let Some(i) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=i).collect();
                let v = serde_json::from_slice(&line).expect("a JSON line");
                if tx.send(v).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Events until one matches `f` (the ones before it included), within `SOON`.
fn until(rx: &mpsc::Receiver<Value>, what: &str, f: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + SOON;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) => {
                let hit = f(&v);
                seen.push(v);
                if hit {
                    return seen;
                }
            }
            Err(e) => panic!("waiting for {what}: {e}; seen: {seen:#?}"),
        }
    }
}

#[test]
fn status_first_then_each_change_of_a_unit_killed_from_outside() {
    let c = Colony::new();
    c.write_unit(
        "a",
        "exec = [\"sleep\", \"100000\"]\ntags = [\"t\"]\n[restart]\ndelay_min = \"0s\"\n",
    );
    let c = c.start();
    let a = c.wait_state("a", "running");
    let old_pid = a["pid"].as_i64().unwrap();

    let rx = lines(subscribe(&c, "sub-1"));
    let first = rx.recv_timeout(SOON).expect("the first line");
    assert_eq!(first["ok"], true);
    assert_eq!(first["lost"], 0);
    let units = first["data"].as_array().expect("status entries");
    assert_eq!(units.len(), 1);
    assert_eq!(units[0]["name"], "a");
    assert_eq!(units[0]["state"], "running");
    assert_eq!(units[0]["tags"][0], "t");

    // SAFETY: kill(2) on the unit's process, which this test's colony-init started.
    assert_eq!(unsafe { libc::kill(old_pid as i32, libc::SIGKILL) }, 0);
    let seen = until(&rx, "a running again", |e| e["to"] == "running");
    let first = &seen[0];
    assert_eq!(first["unit"], "a");
    assert_eq!(first["from"], "running");
    assert_eq!(first["to"], "backoff");
    assert_eq!(first["reason"], "killed by SIGKILL");
    assert!(first["time"].as_str().is_some_and(|t| t.contains('T')));
    let last = seen.last().unwrap();
    assert_eq!(last["restarts"], 1);
    let new_pid = last["pid"].as_i64().expect("a pid");
    assert_ne!(new_pid, old_pid);
    assert_eq!(c.unit("a").unwrap()["pid"].as_i64(), Some(new_pid));
    let moves: Vec<(String, String)> = seen
        .iter()
        .map(|e| (e["from"].to_string(), e["to"].to_string()))
        .collect();
    assert_eq!(
        moves,
        vec![
            ("\"running\"".into(), "\"backoff\"".into()),
            ("\"backoff\"".into(), "\"starting\"".into()),
            ("\"starting\"".into(), "\"running\"".into()),
        ]
    );

    // A stop by request, a new unit and a removed one are events too.
    assert!(c.ctl(&["stop", "a"]).status.success());
    until(&rx, "a stopped", |e| e["to"] == "stopped");
    c.write_unit("b", "exec = [\"sleep\", \"100000\"]\n");
    let seen = until(&rx, "b new", |e| e["unit"] == "b");
    assert_eq!(seen.last().unwrap()["from"], Value::Null);
    c.remove_unit("b");
    until(&rx, "b removed", |e| e["unit"] == "b" && e["to"].is_null());
}

#[test]
fn a_subscriber_that_does_not_read_is_dropped_and_told_what_it_lost() {
    let c = Colony::new();
    for i in 0..100 {
        c.write_unit(
            &format!("u{i:03}"),
            "exec = [\"sleep\", \"100000\"]\ntags = [\"many\"]\n",
        );
    }
    let c = c.start();
    wait_for("100 units running", SOON, || {
        (c.status()
            .iter()
            .filter(|u| u["state"] == "running")
            .count()
            == 100)
            .then_some(())
    });
    // Subscribed and never read.
    let silent = subscribe(&c, "silent");
    // A live subscriber sees everything the silent one misses.
    let rx = lines(subscribe(&c, "live"));
    rx.recv_timeout(SOON).expect("the first line");
    // Each round is some 400 events of ~150 bytes: the silent pipe (64 KiB) and its backlog
    // (256 KiB) overflow within a few rounds.
    let mut rounds = 0;
    let log_says_dropped = || c.init_log().contains("subscriber dropped");
    while !log_says_dropped() {
        rounds += 1;
        assert!(rounds <= 40, "never dropped:\n{}", c.init_log());
        let o = c.ctl(&["restart", "@many"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // colony-init answered every restart meanwhile: it never blocked on the silent one.
    // The silent subscriber's FIFO was closed: what it holds ends with EOF.
    let silent = lines(silent);
    let mut got = 0;
    while silent.recv_timeout(SOON).is_ok() {
        got += 1;
    }
    assert!(got > 0, "it had its first line at least");
    // The live one has seen every change of the last round.
    until(&rx, "the last start", |_| {
        c.status().iter().all(|u| u["state"] == "running")
    });

    // Back under the same name: told how many events it lost.
    let again = lines(subscribe(&c, "silent"));
    let first = again.recv_timeout(SOON).expect("the first line");
    let lost = first["lost"].as_u64().expect("lost");
    assert!(lost > 100, "lost {lost}");
    assert_eq!(first["data"].as_array().map(|a| a.len()), Some(100));
    // Told once.
    drop(again);
    let third = lines(subscribe(&c, "silent-2"));
    assert_eq!(third.recv_timeout(SOON).expect("first")["lost"], 0);
}

#[test]
fn idle_with_a_subscriber_makes_no_wakeups() {
    let c = Colony::new();
    c.write_unit("a", "exec = [\"sleep\", \"100000\"]\n");
    let c = c.start();
    c.wait_state("a", "running");
    let rx = lines(subscribe(&c, "idle"));
    rx.recv_timeout(SOON).expect("the first line");
    let pid = c.pid();
    let switches = || -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("voluntary_ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum()
    };
    // Settled: colony-init sleeps (state S) with nothing left to do.
    wait_for("colony-init asleep", SOON, || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('S'))
            })
            .then_some(())
    });
    let before = switches();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let mut moved = false;
    while std::time::Instant::now() < deadline && !moved {
        // A condition that must stay false: the count must not move.
        moved = rx.recv_timeout(Duration::from_millis(100)).is_ok() || switches() != before;
    }
    assert!(!moved, "colony-init woke up while idle with a subscriber");
}

/// The example unit that acts on crashes (examples/units/on-crash.unit) runs its hook with
/// the event of a unit killed from outside; `colonyctl events` prints it as a line too.
#[test]
fn the_on_crash_example_unit_runs_its_hook_on_a_crash() {
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/units/on-crash.unit"),
    )
    .unwrap();
    let ctl = colony_integration::bin("colonyctl");
    let c = Colony::new();
    c.write_unit(
        "on-crash",
        &example.replace("colonyctl events", &format!("{} events", ctl.display())),
    );
    c.write_unit("victim", "exec = [\"sleep\", \"100000\"]\n");
    let c = c.start();
    let pid = c.wait_state("victim", "running")["pid"].as_i64().unwrap();
    c.wait_state("on-crash", "running");
    // Its subscription is in place once colony-init holds a second FIFO of RUN/reply open.
    let mut events = std::process::Command::new(&ctl)
        .arg("--run-dir")
        .arg(&c.run)
        .args(["events", "victim"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("two subscribers", SOON, || {
        let fds = std::fs::read_dir(format!("/proc/{}/fd", c.pid())).ok()?;
        let n = fds
            .flatten()
            .filter(|e| {
                std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().contains("/reply/"))
            })
            .count();
        (n >= 2).then_some(())
    });
    // SAFETY: kill(2) on the unit's process, which this test's colony-init started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let log = c.logs.join("on-crash.log");
    let line = wait_for("the hook's output", SOON, || {
        let text = std::fs::read_to_string(&log).ok()?;
        text.lines()
            .find(|l| l.contains("\"unit\":\"victim\""))
            .map(str::to_string)
    });
    let v: Value = serde_json::from_str(line.trim_start_matches(|c| c != '{')).unwrap();
    assert_eq!(v["to"], "backoff");
    assert_eq!(v["reason"], "killed by SIGKILL");

    let mut out = std::io::BufReader::new(events.stdout.take().unwrap());
    let mut text = String::new();
    std::io::BufRead::read_line(&mut out, &mut text).unwrap();
    assert!(
        text.contains(" victim running -> backoff") && text.contains("(killed by SIGKILL)"),
        "{text}"
    );
    // SAFETY: kill(2) on the colonyctl this test started; SIGINT ends it quietly.
    unsafe { libc::kill(events.id() as i32, libc::SIGINT) };
    let st = events.wait().unwrap();
    assert_eq!(st.code(), Some(0));
    assert!(
        std::fs::read_dir(c.run.join("reply")).unwrap().count() <= 1,
        "colonyctl removed its reply FIFO"
    );
}

//! What a `colonyctl reexec` carries besides the units themselves: the event streams (a
//! subscriber keeps its reply FIFO and reads on, with no EOF and no event lost) and
//! the health checks' counters and schedule (bad checks in a row are not forgiven), and a
//! unit's line begun before the exec and ended after it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::mpsc;
use std::time::Duration;

use colony_integration::{wait_for, Colony, SOON};

/// A subscriber of the raw protocol: its reply FIFO, read line by line in a thread; "EOF"
/// when colony-init closes it.
fn subscribe(c: &Colony) -> mpsc::Receiver<String> {
    let name = format!("carried-{}", std::process::id());
    let fifo = c.run.join(units::proto::REPLY_DIR).join(&name);
    nix::unistd::mkfifo(
        &fifo,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .expect("mkfifo");
    // Read-write: the open does not wait for colony-init, and reads block until it writes.
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .write(false)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("open the reply FIFO");
    let line = format!("reply={name} subscribe\n");
    let mut control = std::fs::OpenOptions::new()
        .write(true)
        .open(c.run.join(units::proto::CONTROL_FIFO))
        .expect("control FIFO");
    control.write_all(line.as_bytes()).expect("request");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        // Once colony-init answered (it holds the writing end then), blocking reads: EOF
        // only when it closes the FIFO.
        let mut pfd = [libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&reader),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: one pollfd of an fd this thread owns; then its flags, cleared.
        unsafe {
            libc::poll(pfd.as_mut_ptr(), 1, -1);
            libc::fcntl(pfd[0].fd, libc::F_SETFL, 0);
        }
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                return;
            }
        }
        let _ = tx.send("EOF".into());
    });
    rx
}

#[test]
fn an_event_stream_goes_on_across_reexecs() {
    let c = Colony::new();
    c.write_unit("a", "exec = [\"/bin/sleep\", \"1000\"]\n");
    let c = c.start();
    c.wait_state("a", "running");
    let rx = subscribe(&c);
    let next = |what: &str| {
        rx.recv_timeout(SOON)
            .unwrap_or_else(|e| panic!("no {what}: {e}\n{}", c.init_log()))
    };
    let first = next("first line");
    assert!(first.contains("\"ok\":true"), "{first}");
    let ctl_ok = |args: &[&str]| {
        let o = c.ctl(args);
        assert!(o.status.success(), "{args:?}: {o:?}\n{}", c.init_log());
    };
    let change_to = |state: &str| {
        let want = format!("\"to\":\"{state}\"");
        loop {
            let l = next(state);
            assert_ne!(l, "EOF", "the stream ended\n{}", c.init_log());
            if l.contains("\"unit\":\"a\"") && l.contains(&want) {
                return;
            }
        }
    };
    ctl_ok(&["stop", "a"]);
    change_to("stopped");
    for _ in 0..3 {
        ctl_ok(&["reexec"]);
    }
    ctl_ok(&["start", "a"]);
    change_to("running");
    ctl_ok(&["reexec"]);
    ctl_ok(&["restart", "a"]);
    change_to("stopped");
    change_to("running");
}

#[test]
fn bad_health_checks_in_a_row_are_not_forgiven_by_a_reexec() {
    let c = Colony::new();
    c.write_unit(
        "sick",
        "exec = [\"/bin/sleep\", \"1000\"]\n[health]\nexec = [\"/bin/false\"]\n\
         period = \"300ms\"\ngrace = \"0s\"\nmax_bad = 1000\n",
    );
    let c = c.start();
    let bad = |u: &serde_json::Value| -> Option<u64> {
        u["health"].as_str()?.strip_prefix("bad ")?.parse().ok()
    };
    let before = wait_for("three bad checks", SOON, || {
        let u = c.unit("sick")?;
        bad(&u).filter(|n| *n >= 3)
    });
    let o = c.ctl(&["reexec"]);
    assert!(o.status.success(), "{o:?}\n{}", c.init_log());
    // Without the counters, `health` would be empty until a first check, then "bad 1".
    let u = c.unit("sick").expect("sick");
    let after = bad(&u).unwrap_or_else(|| panic!("{u}\n{}", c.init_log()));
    assert!(after >= before, "bad {before} before, bad {after} after");
    // And the checks go on from there.
    wait_for("a check after the reexec", Duration::from_secs(10), || {
        let u = c.unit("sick")?;
        bad(&u).filter(|n| *n > after)
    });
    assert_eq!(c.unit("sick").expect("sick")["restarts"], 0);
}

/// A line the unit had begun but not ended at the reexec is written whole by the new image
/// (the old one held its start in memory: it went to the new image with the log file).
#[test]
fn a_line_begun_before_a_reexec_is_ended_after_it() {
    let c = Colony::new();
    let flag = c.dir.path().join("go-on");
    c.write_unit(
        "p",
        &format!(
            "exec = [\"/bin/sh\", \"-c\", '''printf 'before\\nhalf '; while [ ! -e {} ]; do sleep 0.05; done; echo line; exec sleep 1000''']\n",
            flag.display()
        ),
    );
    let c = c.start();
    let log = c.logs.join("p.log");
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    // One write: once its first line is in the file, its start of a line was read too.
    wait_for("the first line", SOON, || {
        text().contains("before").then_some(())
    });
    let o = c.ctl(&["reexec"]);
    assert!(o.status.success(), "{o:?}\n{}", c.init_log());
    std::fs::write(&flag, "").expect("flag");
    wait_for("the line ended", SOON, || {
        text().contains("line").then_some(())
    });
    assert!(text().contains("half line"), "{}", text());
}

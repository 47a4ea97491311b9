//! The control path against hostile or starved conditions: clients that never read their
//! replies, and a colony-init whose units hold every fd it may open.

use colony_integration::{wait_for, Colony, SOON};
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use std::io::Write;

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// VmRSS in KiB.
fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// 10,000 `status` requests naming one reply FIFO whose reader never reads: colony-init
/// keeps a few replies waiting (not 10,000 fds and their bytes), drops the rest with a few
/// log lines, still answers `colonyctl status`, and lets go of what waits once it times out.
/// Before the bounds, every reply waited: ~10,000 fds and their bytes, for as long as the
/// reader lived.
#[test]
fn replies_nobody_reads_are_bounded_and_time_out() {
    let c = Colony::new();
    // Some 20 KB of status per reply.
    let description = "x".repeat(500);
    for i in 0..20 {
        c.write_unit(
            &format!("u{i:02}"),
            &format!("description = \"{description}\"\nexec = [\"sleep\", \"100000\"]\n"),
        );
    }
    let c = c.start();
    wait_for("20 units running", SOON, || {
        let all = c.status();
        (all.iter().filter(|u| u["state"] == "running").count() == 20).then_some(())
    });
    let pid = c.pid();
    let fds_before = fd_count(pid);
    let rss_before = rss_kib(pid);

    // A reply FIFO made as colonyctl makes it, opened for reading and never read.
    let fifo = c.run.join("reply").join("never-read");
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
    let _reader = open(
        &fifo,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    let mut control = std::fs::OpenOptions::new()
        .write(true)
        .open(c.run.join("control"))
        .unwrap();
    let lines = "reply=never-read status\n".repeat(100);
    for _ in 0..100 {
        // Blocks while the control FIFO is full: colony-init reads it as it goes.
        control.write_all(lines.as_bytes()).unwrap();
    }
    drop(control);

    // Answered after every request before it (one FIFO, read in order), within colonyctl's
    // default timeout: once the reader's FIFO is full, no status is made for it any more.
    let o = c.ctl(&["status"]);
    assert!(
        o.status.success(),
        "status after the flood: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let fds = fd_count(pid);
    let rss = rss_kib(pid);
    eprintln!("fds {fds_before} -> {fds}, RSS {rss_before} -> {rss} KiB");
    assert!(
        fds <= fds_before + 64,
        "{fds} fds after 10,000 replies nobody reads ({fds_before} before)"
    );
    assert!(
        rss <= rss_before + 64 * 1024,
        "RSS {rss} KiB after 10,000 replies nobody reads ({rss_before} KiB before)"
    );
    // What still waits times out (the reader is still open, and never reads).
    wait_for("the waiting replies to time out", SOON, || {
        (fd_count(pid) <= fds_before).then_some(())
    });
    let o = c.ctl(&["status"]);
    assert!(o.status.success());
    let log = c.init_log();
    let said = log.lines().filter(|l| l.contains("dropped")).count();
    assert!(
        (1..=40).contains(&said),
        "{said} log lines about dropped replies"
    );
}

/// Under an open-files limit colony-init cannot raise (a container without
/// CAP_SYS_RESOURCE), 150 units take every fd: their starts fail, but `status` still
/// answers, and a unit that could not start says it was for lack of fds and names the
/// limit. Before the reserve, every reply FIFO failed to open with EMFILE: no answer.
#[test]
fn status_answers_and_names_the_limit_when_units_take_every_fd() {
    let mut c = Colony::new();
    c.nofile = Some((256, 256));
    c.fixed_nofile = true;
    for i in 0..150 {
        c.write_unit(&format!("u{i:03}"), "exec = [\"sleep\", \"100000\"]\n");
    }
    // Waits for a first answer to `status`.
    let c = c.start();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", c.pid())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    assert!(
        open_files
            .split_whitespace()
            .filter(|w| *w == "256")
            .count()
            == 2,
        "colony-init raised its limit, the test shows nothing: {open_files}"
    );
    let starved = wait_for("a unit that could not start for lack of fds", SOON, || {
        c.try_status()?.into_iter().find(|u| {
            u["last_exit"]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("EMFILE") && d.contains("open-files limit is 256"))
        })
    });
    eprintln!("{starved}");
    assert_ne!(starved["state"], "running");
    // Once every fd is taken (failed starts keep retrying and take what frees up), answers
    // still come.
    let pid = c.pid();
    wait_for("colony-init's fd table to be full", SOON, || {
        (fd_count(pid) >= 255).then_some(())
    });
    let status_answers = |when: &str| {
        for _ in 0..5 {
            let o = c.ctl(&["status"]);
            assert!(
                o.status.success(),
                "status {when}, with {} fds open: {:?} {}",
                fd_count(pid),
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(String::from_utf8_lossy(&o.stdout).contains("u149"));
        }
    };
    status_answers("once the units took every fd");
    // Clients that never read their replies hold what fds were left (before the bounds,
    // every one of them): replies waiting for them give way to new ones.
    let reply_dir = c.run.join("reply");
    let mut readers = Vec::new();
    let mut requests = String::new();
    for i in 0..100 {
        let fifo = reply_dir.join(format!("h{i}"));
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        readers.push(
            open(
                &fifo,
                OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .unwrap(),
        );
        // The first status may fit the pipe whole; the next ones wait.
        requests.push_str(&format!("reply=h{i} status\n").repeat(3));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(c.run.join("control"))
        .unwrap()
        .write_all(requests.as_bytes())
        .unwrap();
    status_answers("with replies waiting for 100 clients that never read");
}

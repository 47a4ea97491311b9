//! Floods of colony-init's own log: a unit or a FIFO writer decides how often something
//! happens, never how much colony-init writes about it. Each source (a unit and a kind of
//! message, a kind of bad request) gets a few lines per window, then a count of what it
//! suppressed; the counts add up to every message sent.

use std::io::Write;
use std::time::Duration;

use colony_integration::{wait_for, Colony};

/// Long enough for a flood to be read on a loaded machine and for a rate-limit window
/// (30 s) to end and be counted.
const FLOOD: Duration = Duration::from_secs(120);

/// colony-init's own log may hold this many lines, whatever the flood.
const MAX_LINES: usize = 200;

fn sh(script: &str) -> String {
    format!("exec = [\"/bin/sh\", \"-c\", '''{script}''']\n")
}

/// Sends `READY=1`, then argv[1] argv[2] times (blocking: nothing is lost), then
/// `READY=1\nSTATUS=done`, and waits.
const NOTIFY_FLOOD_C: &str = r#"
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(int argc, char **argv) {
    const char *p = getenv("NOTIFY_SOCKET");
    if (!p || argc < 3) return 3;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strncpy(a.sun_path, p, sizeof a.sun_path - 1);
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    const struct sockaddr *to = (const struct sockaddr *)&a;
    if (sendto(s, "READY=1", 7, 0, to, sizeof a) != 7) return 4;
    const char *m = argv[1];
    long n = atol(argv[2]);
    for (long i = 0; i < n; i++)
        if (sendto(s, m, strlen(m), 0, to, sizeof a) < 0) return 5;
    const char *done = "READY=1\nSTATUS=done";
    if (sendto(s, done, strlen(done), 0, to, sizeof a) < 0) return 6;
    for (;;) pause();
}
"#;

/// How many times colony-init said `shown` (its own lines) and how many more it counted
/// as suppressed under `what` ("N messages suppressed ... what=WHAT").
fn said_and_suppressed(log: &str, shown: &str, what: &str) -> (u64, u64) {
    let what = format!("what={what}");
    let mut said = 0;
    let mut suppressed = 0;
    for line in log.lines() {
        if let Some((head, _)) = line.split_once(" messages suppressed") {
            if line.contains(&what) {
                suppressed += head
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("no count in {line:?}"));
            }
        } else if line.contains(shown) {
            said += 1;
        }
    }
    (said, suppressed)
}

fn assert_bounded(c: &Colony) {
    let log = c.init_log();
    let n = log.lines().count();
    assert!(
        n < MAX_LINES,
        "colony-init wrote {n} lines of its own log; the first 40:\n{}",
        log.lines().take(40).collect::<Vec<_>>().join("\n")
    );
}

/// Wait until every one of `sent` messages was either said or counted as suppressed.
fn wait_accounted(c: &Colony, sent: u64, shown: &str, what: &str) {
    let got = wait_for("every message said or counted as suppressed", FLOOD, || {
        let (said, suppressed) = said_and_suppressed(&c.init_log(), shown, what);
        (said + suppressed >= sent).then_some((said, suppressed))
    });
    assert_eq!(got.0 + got.1, sent, "said {} + suppressed {}", got.0, got.1);
    assert!(got.1 > 0, "nothing was suppressed: {got:?}");
}

/// A notify unit that sends `msg` 100,000 times: colony-init's log stays small, and says
/// how many it suppressed.
fn notify_flood(msg: &str, shown: &str, what: &str) {
    const N: u64 = 100_000;
    let c = Colony::new();
    let Some(bin) = colony_integration::compile_c(c.dir.path(), "notify_flood", NOTIFY_FLOOD_C)
    else {
        return;
    };
    c.write_unit(
        "flood",
        &format!(
            "exec = [\"{}\", \"{msg}\", \"{N}\"]\n[ready]\ntype = \"notify\"\ntimeout = \"300s\"\n",
            bin.display()
        ),
    );
    let c = c.start();
    // Datagrams are read in order: once STATUS=done shows, all the flood was read.
    wait_for("the flood to be read", FLOOD, || {
        c.try_status()?
            .into_iter()
            .find(|u| u["name"] == "flood" && u["status_text"] == "done")
    });
    assert_bounded(&c);
    wait_accounted(&c, N, shown, what);
    assert_bounded(&c);
}

#[test]
fn a_unit_sending_mainpid_in_a_loop_cannot_flood_the_log() {
    notify_flood(
        "MAINPID=1",
        "MAINPID= names a process outside the unit",
        "notify: MAINPID= outside the unit",
    );
}

#[test]
fn a_unit_sending_reloading_in_a_loop_cannot_flood_the_log() {
    notify_flood("RELOADING=1", "notify: reloading", "notify: reloading");
}

#[test]
fn forged_notify_messages_from_outside_every_unit_cannot_flood_the_log() {
    const N: u64 = 20_000;
    let c = Colony::new().start();
    // The test process is in no unit: every message is dropped, whatever pid sends it.
    let sock = std::os::unix::net::UnixDatagram::unbound().unwrap();
    let path = c.run.join("notify");
    for _ in 0..N {
        sock.send_to(b"READY=1", &path).unwrap();
    }
    wait_accounted(
        &c,
        N,
        "notify message dropped",
        "notify message dropped: sender is in no unit",
    );
    assert_bounded(&c);
}

#[test]
fn fifty_writers_of_bad_requests_leave_a_bounded_log_and_status_answers() {
    const WRITERS: usize = 50;
    const EACH: usize = 400;
    let c = Colony::new();
    c.write_unit("svc", &sh("exec sleep 1000"));
    let c = c.start();
    c.wait_state("svc", "running");
    let control = c.run.join("control");
    // Three kinds of unparsable request, each line one write (under PIPE_BUF: whole).
    let bad: [&[u8]; 3] = [
        b"\xff\xfe status\n",
        b"st\x01atus\n",
        b"reply=../../etc/passwd status\n",
    ];
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let control = &control;
                s.spawn(move || {
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .open(control)
                        .unwrap();
                    for i in 0..EACH {
                        f.write_all(bad[(w + i) % bad.len()]).unwrap();
                    }
                })
            })
            .collect();
        // Asked while the flood goes on.
        let all = c.status();
        assert!(all.iter().any(|u| u["name"] == "svc"), "{all:?}");
        for w in writers {
            w.join().unwrap();
        }
    });
    let all = c.status();
    assert_eq!(all[0]["state"], "running", "{all:?}");
    assert_bounded(&c);
    let sent = (WRITERS * EACH) as u64;
    let got = wait_for("every bad request said or counted", FLOOD, || {
        let log = c.init_log();
        let (said, suppressed) =
            said_and_suppressed(&log, "control request dropped", "control request dropped");
        (said + suppressed >= sent).then_some((said, suppressed))
    });
    assert_eq!(got.0 + got.1, sent, "{got:?}");
    assert_bounded(&c);
}

#[test]
fn a_log_on_a_full_disk_is_said_to_fail_once_not_per_line() {
    let c = Colony::new();
    // Every write to /dev/full fails with ENOSPC: a log on a full disk. Each line from
    // its own process, so they come one by one, each a wakeup of colony-init.
    c.write_unit(
        "full",
        &format!(
            "{}[restart]\npolicy = \"never\"\n[log]\nfile = \"/dev/full\"\n",
            sh("i=0; while [ $i -lt 2000 ]; do /bin/echo line $i; i=$((i+1)); done")
        ),
    );
    let c = c.start();
    c.wait_state("full", "exited");
    let log = c.init_log();
    let failed = log
        .lines()
        .filter(|l| l.contains("writing the log failed"))
        .count();
    assert!(
        (1..=3).contains(&failed),
        "said {failed} times that writing the log failed:\n{}",
        log.lines().take(40).collect::<Vec<_>>().join("\n")
    );
    assert_bounded(&c);
}

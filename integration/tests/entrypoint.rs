//! Entrypoint mode (`colony-init -- CMD`) against real processes, the way tini's
//! `run_inner_tests.py` and dumb-init's `tests/` check their binaries: exit codes, 128+N,
//! signal forwarding, orphan bursts, inherited signal mask and ignores, leftovers.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use colony_integration::bin;
use colony_integration::ns::{
    children_of, comm, in_pid_ns, pid_exists, pid_ns_available, wait_for,
};

use colony_integration::skip_or_fail;

fn init() -> Command {
    let mut c = Command::new(bin("colony-init"));
    c.stdin(Stdio::null());
    c
}

fn output_with_limit(mut cmd: Command, limit: Duration) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn colony-init");
    let id = child.id() as i32;
    if !wait_for(limit, || matches!(child.try_wait(), Ok(Some(_)))) {
        // SAFETY: a pid we started and have not reaped.
        unsafe { libc::kill(id, libc::SIGKILL) };
        let _ = child.wait();
        panic!("colony-init did not exit within {limit:?}");
    }
    let elapsed = start.elapsed();
    (child.wait_with_output().expect("output"), elapsed)
}

#[test]
fn every_exit_code_passes_through() {
    for code in 0..=255 {
        let st = init()
            .args(["--", "sh", "-c", &format!("exit {code}")])
            .status()
            .expect("run");
        assert_eq!(st.code(), Some(code), "exit {code}");
    }
}

#[test]
fn death_by_signal_is_128_plus_n() {
    for (name, n) in [("TERM", 15), ("HUP", 1), ("QUIT", 3), ("KILL", 9)] {
        let st = init()
            .args(["--", "sh", "-c", &format!("kill -{name} $$")])
            .status()
            .expect("run");
        assert_eq!(st.code(), Some(128 + n), "SIG{name}");
    }
}

#[test]
fn signals_sent_to_colony_init_kill_cmd_with_128_plus_n() {
    // CMD keeps default dispositions (tini's test/signals): colony-init forwards, CMD dies.
    for (sig, n) in [
        (libc::SIGTERM, 15),
        (libc::SIGHUP, 1),
        (libc::SIGQUIT, 3),
        (libc::SIGINT, 2),
        (libc::SIGUSR1, libc::SIGUSR1),
        (libc::SIGUSR2, libc::SIGUSR2),
    ] {
        let mut child = init()
            .args(["--", "sh", "-c", "echo up; exec sleep 100"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line, "up\n");
        // `exec sleep` replaces the shell: wait until CMD is sleep, whose SIGINT/SIGQUIT
        // are not ignored the way a non-interactive shell's may be.
        let init_pid = child.id();
        assert!(wait_for(Duration::from_secs(10), || {
            children_of(init_pid).iter().any(|p| comm(*p) == "sleep")
        }));
        // SAFETY: a pid we started.
        unsafe { libc::kill(init_pid as i32, sig) };
        let st = child.wait().expect("wait");
        assert_eq!(st.code(), Some(128 + n), "signal {sig}");
    }
}

// os.write, not sys.stdout: a signal landing while "ready" is still being flushed would
// re-enter the buffered writer and kill Python (RuntimeError: reentrant call).
// PR_SET_PDEATHSIG: if colony-init dies, so does CMD, and the test reads EOF, not forever.
const PRINT_SIGNALS: &str = r#"
import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(1, signal.SIGKILL)
def h(n, f):
    os.write(1, b"got %d\n" % n)
skip = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}
for n in list(range(1, 32)) + [signal.SIGRTMIN + 2, signal.SIGRTMAX]:
    if n not in skip:
        signal.signal(n, h)
os.write(1, b"ready\n")
while True:
    signal.pause()
"#;

/// Signals the kernel raises for a process's own faults.
const FAULT_SIGNALS: [i32; 7] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGTRAP,
    libc::SIGSYS,
    libc::SIGABRT,
];

#[test]
fn every_catchable_signal_is_forwarded() {
    let mut child = init()
        .args(["--", "python3", "-c", PRINT_SIGNALS])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    assert_eq!(line, "ready\n");
    let rtmin = libc::SIGRTMIN();
    let rtmax = libc::SIGRTMAX();
    // The fault signals too (SIGSEGV, SIGABRT, ...), as dumb-init's suite sends them: sent
    // with kill they are no fault of colony-init's, which forwards them and goes on.
    let mut sigs: Vec<i32> = (1..32)
        .filter(|s| ![libc::SIGKILL, libc::SIGSTOP, libc::SIGCHLD].contains(s))
        .collect();
    sigs.push(rtmin + 2);
    sigs.push(rtmax);
    for sig in sigs {
        // SAFETY: a pid we started.
        unsafe { libc::kill(child.id() as i32, sig) };
        line.clear();
        out.read_line(&mut line).expect("read");
        assert_eq!(line, format!("got {sig}\n"), "signal {sig}");
    }
    // The fault signals sent with sigqueue (SI_QUEUE) and tgkill (SI_TKILL) too.
    let pid = child.id() as i32;
    for sig in FAULT_SIGNALS {
        // SAFETY: sigqueue and tgkill to a pid we started, with a plain value.
        unsafe {
            libc::sigqueue(
                pid,
                sig,
                libc::sigval {
                    sival_ptr: std::ptr::null_mut(),
                },
            )
        };
        line.clear();
        out.read_line(&mut line).expect("read");
        assert_eq!(line, format!("got {sig}\n"), "sigqueue {sig}");
        // SAFETY: as above; colony-init's main thread has the process's id.
        unsafe { libc::syscall(libc::SYS_tgkill, pid, pid, sig) };
        line.clear();
        out.read_line(&mut line).expect("read");
        assert_eq!(line, format!("got {sig}\n"), "tgkill {sig}");
    }
    // SIGKILL cannot be forwarded: end CMD itself, which ends colony-init with 128+9.
    let cmd_pid = children_of(child.id());
    assert_eq!(cmd_pid.len(), 1);
    // SAFETY: CMD, a process this test started (through colony-init).
    unsafe { libc::kill(cmd_pid[0], libc::SIGKILL) };
    assert_eq!(child.wait().expect("wait").code(), Some(137));
}

const LAUNCH_WITH_MASK: &str = r#"
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGWINCH})
signal.signal(signal.SIGUSR2, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
for l in open("/proc/self/status"):
    if l.startswith(("SigBlk", "SigIgn")):
        sys.stdout.write("parent " + l)
sys.stdout.flush()
os.execv(sys.argv[1], ["colony-init", "--", "sh", "-c", "grep -E '^Sig(Blk|Ign)' /proc/self/status | sed 's/^/child /'"])
"#;

#[test]
fn cmd_inherits_the_original_signal_mask_and_ignored_signals() {
    let out = Command::new("python3")
        .args(["-c", LAUNCH_WITH_MASK])
        .arg(bin("colony-init"))
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |who: &str, name: &str| -> u64 {
        let l = text
            .lines()
            .find(|l| l.starts_with(&format!("{who} {name}:")))
            .unwrap_or_else(|| panic!("no {who} {name} in {text}"));
        u64::from_str_radix(l.rsplit('\t').next().unwrap_or("").trim(), 16).expect("hex")
    };
    let bit = |s: i32| 1u64 << (s - 1);
    let blk = field("parent", "SigBlk");
    assert_eq!(blk, bit(libc::SIGUSR1) | bit(libc::SIGWINCH));
    assert_eq!(field("child", "SigBlk"), blk);
    let ign = field("parent", "SigIgn");
    // python also ignores SIGPIPE, which Rust's runtime would otherwise reset for CMD.
    assert_ne!(ign & bit(libc::SIGPIPE), 0);
    assert_ne!(ign & bit(libc::SIGUSR2), 0);
    assert_eq!(field("child", "SigIgn"), ign);
}

#[test]
fn cmd_of_a_plain_start_gets_what_colony_init_got() {
    // CMD reads its own status and colony-init's ($PPID): same ignored signals (but
    // SIGPIPE, which Rust's runtime ignores in colony-init and which was at default when
    // this test started it), and none of colony-init's blocked signals.
    let out = init()
        .args([
            "--",
            "sh",
            "-c",
            "grep -E '^Sig(Blk|Ign)' /proc/self/status /proc/$PPID/status",
        ])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |of_self: bool, name: &str| -> u64 {
        let l = text
            .lines()
            .find(|l| l.contains("/proc/self/") == of_self && l.contains(name))
            .unwrap_or_else(|| panic!("no {name} in {text}"));
        u64::from_str_radix(l.rsplit('\t').next().unwrap_or("").trim(), 16).expect("hex")
    };
    let pipe = 1u64 << (libc::SIGPIPE - 1);
    let init_ign = field(false, "SigIgn");
    assert_eq!(field(true, "SigBlk"), 0, "{text}");
    assert_ne!(field(false, "SigBlk"), 0, "{text}");
    assert_eq!(field(true, "SigIgn"), init_ign & !pipe, "{text}");
}

/// CMD makes `n` orphans (double fork: the middle process exits at once), each of which
/// lives `life` seconds, prints their pids, and exits 0.
fn orphan_script(n: usize, life: f64) -> String {
    format!(
        r#"
import os, sys, time
pids = []
for i in range({n}):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        g = os.fork()
        if g == 0:
            os.close(w)
            time.sleep({life})
            os._exit(0)
        os.write(w, str(g).encode())
        os._exit(0)
    os.close(w)
    pids.append(os.read(r, 32).decode())
    os.close(r)
    os.waitpid(pid, 0)
print(" ".join(pids)); sys.stdout.flush()
"#
    )
}

/// CMD makes orphans, then waits (bounded) until every one of them has been reaped (gone
/// from /proc: a zombie would stay) and reports how many remain.
fn orphan_check_script(n: usize) -> String {
    format!(
        r#"{}
deadline = time.time() + 60
left = pids
while left and time.time() < deadline:
    left = [p for p in left if os.path.exists("/proc/" + p)]
    time.sleep(0.05)
zombies = [l for p in os.listdir("/proc") if p.isdigit()
           for l in [open("/proc/%s/stat" % p).read() if os.path.exists("/proc/%s/stat" % p) else ""]
           if l and l.rsplit(")", 1)[1].split()[0] == "Z"]
print("left %d zombies %d" % (len(left), len(zombies)))
sys.exit(0 if not left else 1)
"#,
        orphan_script(n, 0.0)
    )
}

fn orphan_burst(n: usize) {
    if !pid_ns_available() {
        skip_or_fail!("skipped: no PID namespaces here");
        return;
    }
    let mut cmd = in_pid_ns(&bin("colony-init"));
    cmd.args(["--", "python3", "-c", &orphan_check_script(n)])
        .stdin(Stdio::null());
    let (out, _) = output_with_limit(cmd, Duration::from_secs(240));
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or("");
    assert!(out.status.success(), "{last} {:?}", out.stderr);
    // Everything in the namespace: only colony-init and CMD itself; no zombie anywhere.
    assert_eq!(last, "left 0 zombies 0");
}

#[test]
fn burst_of_100_orphans_leaves_no_zombie_as_pid1() {
    orphan_burst(100);
}

#[test]
fn burst_of_5000_orphans_leaves_no_zombie_as_pid1() {
    orphan_burst(5000);
}

#[test]
fn orphans_are_reaped_as_subreaper_too() {
    let (out, _) = output_with_limit(
        {
            let mut c = init();
            c.args(["--", "python3", "-c", &orphan_check_script(100)]);
            c
        },
        Duration::from_secs(120),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines().last().unwrap_or("").starts_with("left 0 "),
        "{text}"
    );
}

/// CMD leaves a background process behind and exits 5.
fn leftovers(ns: bool, leftover: &str, kill_timeout: &str) -> (Output, Duration) {
    let script = format!("{leftover} & echo $!; exit 5");
    let mut cmd = if ns {
        in_pid_ns(&bin("colony-init"))
    } else {
        Command::new(bin("colony-init"))
    };
    cmd.args(["--kill-timeout", kill_timeout, "--", "sh", "-c", &script])
        .stdin(Stdio::null());
    output_with_limit(cmd, Duration::from_secs(120))
}

fn leftover_pid(out: &Output) -> i32 {
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("leftover pid")
}

#[test]
fn leftovers_get_sigterm_and_colony_init_exits_when_they_are_gone() {
    for ns in [false, true] {
        if ns && !pid_ns_available() {
            continue;
        }
        // A kill timeout far beyond the limit: exiting in time proves SIGTERM did it and
        // nothing waited for the timeout.
        let (out, took) = leftovers(ns, "sleep 1000", "300s");
        assert_eq!(out.status.code(), Some(5), "ns={ns} {out:?}");
        assert!(took < Duration::from_secs(60), "ns={ns}: took {took:?}");
        if !ns {
            let pid = leftover_pid(&out);
            assert!(!pid_exists(pid), "leftover {pid} still there");
        }
    }
}

#[test]
fn a_leftover_that_ignores_sigterm_is_killed_after_the_kill_timeout() {
    for ns in [false, true] {
        if ns && !pid_ns_available() {
            continue;
        }
        // The ignore is inherited by sleep; only SIGKILL ends it.
        let (out, took) = leftovers(ns, "trap '' TERM; sleep 1000", "1500ms");
        assert_eq!(out.status.code(), Some(5), "ns={ns} {out:?}");
        assert!(
            took >= Duration::from_millis(1400),
            "ns={ns}: took {took:?}"
        );
        if !ns {
            let pid = leftover_pid(&out);
            assert!(!pid_exists(pid), "leftover {pid} still there");
        }
    }
}

#[test]
fn grandchildren_left_behind_are_stopped_too_as_subreaper() {
    // A leftover whose own child ignores SIGTERM: it becomes ours when its parent dies,
    // and must still be ended (SIGKILL after the timeout).
    // The grandchild's pid comes through a FIFO once its trap is set: CMD exits only then.
    let script = "f=$(mktemp -u); mkfifo $f; \
        sh -c 'trap \"\" TERM; sleep 1000 & echo $! > '$f'; wait' & \
        read p < $f; rm $f; echo $p; exit 6";
    let mut cmd = init();
    cmd.args(["--kill-timeout", "1s", "--", "sh", "-c", script]);
    let (out, _) = output_with_limit(cmd, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    let pid: i32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("pid");
    assert!(!pid_exists(pid));
}

#[test]
fn a_missing_command_is_127() {
    let out = init()
        .args(["--", "/nonexistent/colony-test-cmd"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot run"));
}

#[test]
fn idle_entrypoint_makes_no_wakeups() {
    // No polling: while CMD sleeps, colony-init does not run at all.
    let mut child = init().args(["--", "sleep", "100"]).spawn().expect("spawn");
    let pid = child.id();
    let switches = || -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        s.lines()
            .filter(|l| l.contains("voluntary_ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum()
    };
    // Settled: CMD runs and colony-init sleeps in epoll_wait.
    assert!(wait_for(Duration::from_secs(10), || {
        children_of(pid).iter().any(|p| comm(*p) == "sleep")
            && std::fs::read_to_string(format!("/proc/{pid}/wchan"))
                .is_ok_and(|w| w.contains("epoll") || w.trim() == "0")
            // Where wchan is hidden ("0"), the state tells a sleeper from a loop still busy
            // with CMD's start (seen on a loaded CI machine).
            && std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('S')))
    }));
    let before = switches();
    // Waiting on a condition that must stay false: the count must not move.
    let moved = wait_for(Duration::from_secs(2), || switches() != before);
    // SAFETY: a pid we started.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let st = child.wait().expect("wait");
    assert!(!moved, "colony-init woke up while idle");
    assert_eq!(st.code(), Some(143));
}

/// `script` (util-linux) runs its command on a new pty: a terminal session as in `docker -t`.
fn on_a_pty(inner: &str) -> Command {
    let mut c = Command::new("script");
    c.args(["-qec", inner, "/dev/null"]);
    // script runs `$SHELL -c`; dash does not exec the last command, bash does. Pin the shell
    // so the process tree is the same here and in CI (script -> sh -> colony-init -> ...).
    c.env("SHELL", "/bin/sh");
    c
}

/// The first descendant of `root` named `name` (whose parent is named `parent_name`, if given).
fn descendant(root: u32, name: &str, parent_name: Option<&str>) -> Option<i32> {
    let mut todo = vec![root as i32];
    while let Some(p) = todo.pop() {
        for c in children_of(p as u32) {
            if comm(c) == name && parent_name.is_none_or(|pn| comm(p) == pn) {
                return Some(c);
            }
            todo.push(c);
        }
    }
    None
}

fn script_available() -> bool {
    Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn on_a_terminal_cmd_gets_its_own_foreground_process_group() {
    if !script_available() {
        skip_or_fail!("skipped: no script(1)");
        return;
    }
    let inner = format!(
        "{} -- python3 -c 'import os; print(os.getpgrp() == os.tcgetpgrp(0), os.getpgrp() == os.getpid())'",
        bin("colony-init").display()
    );
    let (out, _) = output_with_limit(
        {
            let mut c = on_a_pty(&inner);
            c.stdin(Stdio::null());
            c
        },
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "True True");
}

/// colony-init running `sleep` (after a shell said "ready") on a new pty; the pty's output
/// is returned so it stays open.
fn sleep_on_a_pty() -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let inner = format!(
        "{} -- sh -c 'echo ready; exec sleep 100'",
        bin("colony-init").display()
    );
    let mut child = on_a_pty(&inner)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn script");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "ready");
    (child, out)
}

#[test]
fn ctrl_c_on_the_terminal_reaches_cmd() {
    if !script_available() {
        skip_or_fail!("skipped: no script(1)");
        return;
    }
    use std::io::Write;
    let (mut child, _out) = sleep_on_a_pty();
    let script_pid = child.id();
    // Ctrl-C once `sleep` runs (the shell may still be between echo and exec otherwise).
    assert!(wait_for(Duration::from_secs(10), || {
        descendant(script_pid, "sleep", Some("colony-init")).is_some()
    }));
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"\x03").expect("write ^C");
    stdin.flush().expect("flush");
    let id = child.id() as i32;
    if !wait_for(Duration::from_secs(30), || {
        matches!(child.try_wait(), Ok(Some(_)))
    }) {
        // SAFETY: a pid we started.
        unsafe { libc::kill(id, libc::SIGKILL) };
        panic!("Ctrl-C did not end the command");
    }
    assert_eq!(child.wait().expect("wait").code(), Some(130));
}

fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

#[test]
fn ctrl_z_stops_cmd_and_colony_init_and_sigcont_resumes_both() {
    if !script_available() {
        skip_or_fail!("skipped: no script(1)");
        return;
    }
    use std::io::Write;
    let (mut child, _out) = sleep_on_a_pty();
    let find = |name: &str, parent_name: Option<&str>| descendant(child.id(), name, parent_name);
    let mut ids = None;
    assert!(wait_for(Duration::from_secs(10), || {
        ids = find("colony-init", None).zip(find("sleep", Some("colony-init")));
        ids.is_some()
    }));
    let (init_pid, sleep_pid) = ids.expect("pids");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"\x1a").expect("write ^Z");
    stdin.flush().expect("flush");
    let stopped = wait_for(Duration::from_secs(30), || {
        state(sleep_pid) == Some('T') && state(init_pid) == Some('T')
    });
    // `fg` of the job: script(1) stops itself when its child stops, so it is continued too.
    // SAFETY: processes this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGCONT);
        libc::kill(init_pid, libc::SIGCONT);
    }
    let resumed = wait_for(Duration::from_secs(30), || {
        state(sleep_pid) == Some('S') && state(init_pid) == Some('S')
    });
    // The terminal is CMD's again: ^C reaches it.
    stdin.write_all(b"\x03").expect("write ^C");
    stdin.flush().expect("flush");
    let id = child.id() as i32;
    let ended = wait_for(Duration::from_secs(30), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !ended {
        // SAFETY: pids this test started.
        unsafe {
            libc::kill(sleep_pid, libc::SIGKILL);
            libc::kill(id, libc::SIGKILL);
        }
    }
    let code = child.wait().expect("wait").code();
    assert!(stopped, "^Z did not stop CMD and colony-init");
    assert!(resumed, "SIGCONT did not resume both");
    assert!(ended, "^C after resuming did not end CMD");
    assert_eq!(code, Some(130));
}

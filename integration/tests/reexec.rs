//! `colonyctl reexec`: colony-init, PID 1 of a PID namespace, hands everything to a new
//! image of itself twenty times in a row while units of every kind run, and nothing of
//! theirs changes; a broken binary is refused and nothing changes either.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use colony_integration::bin;
use colony_integration::ns::{child_named, pid_exists, pid_ns_available, wait_for};
use colony_integration::skip_or_fail;
use serde_json::Value;

const PY: &str = "/usr/bin/python3";
const SOON: Duration = Duration::from_secs(30);
const PLAIN: usize = 42;

fn sh(script: &str) -> String {
    format!("exec = [\"/bin/sh\", \"-c\", '''{script}''']\n")
}

fn py(script: &str) -> String {
    format!("exec = [\"{PY}\", \"-c\", '''{script}''']\n")
}

/// A notify unit: READY=1, then WATCHDOG=1 every 100ms (watchdog 1s).
const WATCHDOG_PY: &str = "import os, socket, time\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\np = os.environ[\"NOTIFY_SOCKET\"]\ns.sendto(b\"READY=1\", p)\nwhile True:\n    time.sleep(0.1)\n    s.sendto(b\"WATCHDOG=1\", p)\n";

struct Init {
    dir: tempfile::TempDir,
    unshare: Child,
    pid: i32,
}

impl Init {
    fn d(&self) -> &Path {
        self.dir.path()
    }

    fn ctl(&self, args: &[&str]) -> Output {
        Command::new(bin("colonyctl"))
            .arg("--run-dir")
            .arg(self.d().join("run"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("colonyctl")
    }

    fn status(&self) -> BTreeMap<String, Value> {
        let o = self.ctl(&["status", "--json"]);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|u| (u["name"].as_str().unwrap_or("").to_string(), u.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.d().join("init.log")).unwrap_or_default()
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        // SAFETY: the colony-init this test started (PID 1 of its namespace).
        unsafe { libc::kill(self.pid, libc::SIGTERM) };
        let ended = wait_for(Duration::from_secs(60), || {
            matches!(self.unshare.try_wait(), Ok(Some(_)))
        });
        if !ended {
            let _ = self.unshare.kill();
        }
        let _ = self.unshare.wait();
    }
}

/// colony-init as PID 1 of a new PID namespace, on `units`.
fn start(units: &[(String, String)], tag: &str) -> Option<Init> {
    if !pid_ns_available() {
        skip_or_fail!("skipped: no PID namespaces here");
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_path_buf();
    std::fs::create_dir_all(d.join("units")).expect("units");
    for (name, text) in units {
        std::fs::write(d.join("units").join(format!("{name}.unit")), text).expect("unit");
    }
    let script = format!(
        "exec {} --units {u}/units --run-dir {u}/run --log-dir {u}/log --state-dir {u}/state \
         --cgroup-name colony-reexec-{tag}-{pid}",
        bin("colony-init").display(),
        u = d.display(),
        pid = std::process::id(),
    );
    let log = std::fs::File::create(d.join("init.log")).expect("log");
    let unshare = Command::new("unshare")
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
    let mut pid = None;
    wait_for(SOON, || {
        pid = child_named(unshare.id(), "colony-init");
        pid.is_some()
    });
    let mut init = Init {
        dir,
        unshare,
        pid: pid.unwrap_or(0),
    };
    if init.pid == 0 {
        let _ = init.unshare.kill();
        panic!("colony-init did not start: {}", init.log());
    }
    let answers = wait_for(SOON, || {
        init.ctl(&["status"])
            .status
            .code()
            .is_some_and(|c| c == 0 || c == 3)
    });
    assert!(answers, "colony-init does not answer: {}", init.log());
    Some(init)
}

/// Numbered lines of a file (`[TIME] n N`), in order.
fn numbers(log: &Path) -> Vec<u64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w[..] {
                [.., "n", n] => n.parse().ok(),
                _ => None,
            }
        })
        .collect()
}

fn pid_of(u: &Value) -> Option<i64> {
    u["pid"].as_i64()
}

/// What must not change across a reexec, per unit.
fn facts(s: &BTreeMap<String, Value>) -> BTreeMap<String, (Option<i64>, u64, String)> {
    s.iter()
        .map(|(n, u)| {
            (
                n.clone(),
                (
                    pid_of(u),
                    u["restarts"].as_u64().unwrap_or(u64::MAX),
                    u["state"].as_str().unwrap_or("").to_string(),
                ),
            )
        })
        .collect()
}

#[test]
fn twenty_reexecs_change_nothing_of_the_units() {
    let mut units: Vec<(String, String)> = (0..PLAIN)
        .map(|i| (format!("p{i:02}"), sh("exec sleep 1000")))
        .collect();
    units.push((
        "wd".into(),
        format!(
            "{}[ready]\ntype = \"notify\"\nwatchdog = \"1s\"\n",
            py(WATCHDOG_PY)
        ),
    ));
    units.push((
        "hb".into(),
        format!(
            "{}[heartbeat]\nperiod = \"1s\"\ngrace = \"5s\"\n",
            sh("while true; do touch \"$COLONY_HEARTBEAT\"; sleep 0.1; done")
        ),
    ));
    units.push((
        "tm".into(),
        "exec = [\"/bin/true\"]\n[timer]\nevery = \"1h\"\n".into(),
    ));
    // Never ready: `starting` throughout.
    units.push((
        "midstart".into(),
        format!(
            "{}[ready]\ntype = \"notify\"\ntimeout = \"1h\"\n",
            sh("exec sleep 1000")
        ),
    ));
    // Ignores SIGTERM: `stopping` throughout once stopped.
    units.push((
        "midstop".into(),
        format!(
            "{}[stop]\ntimeout = \"1h\"\n",
            sh("trap \"\" TERM; while true; do sleep 0.1; done")
        ),
    ));
    units.push((
        "crash".into(),
        format!(
            "{}[restart]\ndelay_min = \"1h\"\ndelay_max = \"1h\"\n",
            sh("exit 3")
        ),
    ));
    units.push((
        "writer".into(),
        sh("i=0; while true; do i=$((i+1)); echo \"n $i\"; sleep 0.002; done"),
    ));
    let Some(init) = start(&units, "many") else {
        return;
    };
    let total = units.len();
    let settled = wait_for(SOON, || {
        let s = init.status();
        s.len() == total
            && s.iter().all(|(n, u)| {
                let st = u["state"].as_str().unwrap_or("");
                match n.as_str() {
                    "tm" => st == "waiting",
                    "midstart" => st == "starting",
                    "crash" => st == "backoff" && u["restarts"].as_u64() == Some(0),
                    _ => st == "running",
                }
            })
    });
    assert!(settled, "{:#?}\n{}", init.status(), init.log());
    assert_eq!(
        init.ctl(&["stop", "--no-block", "midstop"]).status.code(),
        Some(0)
    );
    assert!(wait_for(SOON, || init.status()["midstop"]["state"] == "stopping"));
    let before = facts(&init.status());
    let timers = |i: &Init| -> Value {
        serde_json::from_slice(&i.ctl(&["timers", "--json"]).stdout).unwrap_or(Value::Null)
    };
    let tm_next = timers(&init)[0]["next"].clone();
    assert!(tm_next.is_string(), "{}", timers(&init));

    let mut restart_answer = None;
    for round in 0..20 {
        // In the middle of the run, a restart races the reexec: it waits in the FIFO or is
        // handed over as a waiting client, and is answered either way.
        let restart = (round == 10).then(|| {
            Command::new(bin("colonyctl"))
                .arg("--run-dir")
                .arg(init.d().join("run"))
                .args(["restart", "p00"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("restart")
        });
        let o = init.ctl(&["reexec"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "round {round}: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            init.log()
        );
        if let Some(r) = restart {
            restart_answer = Some(r.wait_with_output().expect("restart answer"));
        }
        let now = facts(&init.status());
        for (name, f) in &before {
            if name == "p00" && round >= 10 {
                continue;
            }
            assert_eq!(
                now.get(name),
                Some(f),
                "round {round}: {name}\n{}",
                init.log()
            );
        }
        assert!(pid_exists(init.pid), "colony-init's PID changed");
    }
    let r = restart_answer.expect("restart ran");
    assert_eq!(r.status.code(), Some(0), "{r:?}");
    let after = init.status();
    assert_eq!(after["p00"]["state"], "running");
    assert_ne!(
        pid_of(&after["p00"]),
        before["p00"].0,
        "p00 was not restarted"
    );
    // The watchdog never fired, the timer's schedule did not move.
    assert!(after["wd"]["last_exit"].is_null(), "{}", after["wd"]);
    assert_eq!(timers(&init)[0]["next"], tm_next);
    let v: Value =
        serde_json::from_slice(&init.ctl(&["version", "--json"]).stdout).expect("version");
    assert_eq!(v["init"]["reexecs"], 20, "{v}");
    assert!(v["init"]["reexecuted"].is_string(), "{v}");
    // Every line of the writer once, in order: none lost, none twice.
    let log = init.d().join("log/writer.log");
    let seen_more = {
        let n0 = numbers(&log).len();
        wait_for(SOON, || numbers(&log).len() > n0 + 10)
    };
    assert!(seen_more, "the writer's lines stopped flowing");
    let n = numbers(&log);
    assert!(n.len() > 100, "{}", n.len());
    for (i, x) in n.iter().enumerate() {
        assert_eq!(*x, i as u64 + 1, "line {} of writer.log", i + 1);
    }
    // Still under control after all that: the stop under way finishes under the last image
    // (its main process killed by hand), and a killed unit is restarted by it.
    assert_eq!(
        init.ctl(&["signal", "SIGKILL", "midstop"]).status.code(),
        Some(0)
    );
    assert!(
        wait_for(SOON, || init.status()["midstop"]["state"] == "stopped"),
        "{}",
        init.status()["midstop"]
    );
    let p01 = pid_of(&after["p01"]).expect("p01 pid");
    let k = init.ctl(&["signal", "SIGKILL", "p01"]);
    assert_eq!(k.status.code(), Some(0), "{k:?}");
    assert!(
        wait_for(SOON, || init.status()["p01"]["restarts"] == 1
            && pid_of(&init.status()["p01"]).is_some_and(|p| p != p01)),
        "{}",
        init.status()["p01"]
    );
}

#[test]
fn a_broken_binary_is_refused_and_nothing_changes() {
    let units = vec![
        ("a".to_string(), sh("exec sleep 1000")),
        ("b".to_string(), sh("exec sleep 1000")),
    ];
    let Some(init) = start(&units, "broken") else {
        return;
    };
    assert!(wait_for(SOON, || init
        .status()
        .values()
        .all(|u| u["state"] == "running")));
    let before = facts(&init.status());
    let d = init.d().to_path_buf();
    let failing = d.join("fails.sh");
    std::fs::write(&failing, "#!/bin/sh\nexit 1\n").expect("script");
    let truncated = d.join("truncated");
    let whole = std::fs::read(bin("colony-init")).expect("colony-init");
    std::fs::write(&truncated, &whole[..64 * 1024]).expect("truncated");
    let not_exec = d.join("not-exec");
    std::fs::write(&not_exec, &whole[..1000]).expect("copy");
    use std::os::unix::fs::PermissionsExt;
    for p in [&failing, &truncated] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::set_permissions(&not_exec, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let missing = d.join("missing");
    let cases: [(&PathBuf, &str); 4] = [
        (&failing, "failed the handover check"),
        (&truncated, "failed the handover check"),
        (&not_exec, "not executable"),
        (&missing, "No such file"),
    ];
    for (p, why) in cases {
        let o = init.ctl(&["reexec", "--binary", &p.to_string_lossy()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{}: {err}", p.display());
        assert!(
            err.contains("reexec refused") && err.contains(why),
            "{}: {err}",
            p.display()
        );
        assert_eq!(facts(&init.status()), before, "{}", p.display());
    }
    let v: Value =
        serde_json::from_slice(&init.ctl(&["version", "--json"]).stdout).expect("version");
    assert!(v["init"]["reexecuted"].is_null(), "{v}");
    assert_eq!(v["colonyctl"], env!("CARGO_PKG_VERSION"));
    // And colony-init still works: a good reexec goes through after the refusals.
    let o = init.ctl(&["reexec"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}\n{}", init.log());
    assert_eq!(facts(&init.status()), before);
}

#[test]
fn a_reply_half_written_is_finished_by_the_new_image() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let units: Vec<(String, String)> = (0..PLAIN)
        .map(|i| {
            (
                format!("unit-with-a-long-name-{i:03}"),
                sh("exec sleep 1000"),
            )
        })
        .collect();
    let Some(init) = start(&units, "reply") else {
        return;
    };
    assert!(wait_for(SOON, || init.status().len() == PLAIN
        && init.status().values().all(|u| u["state"] == "running")));
    // A client that asks for status through a small pipe and reads none of it yet.
    let fifo = init.d().join("run/reply/slow");
    let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).expect("path");
    // SAFETY: plain syscalls on a path and fds of this test.
    let fd = unsafe {
        assert_eq!(libc::mkfifo(c.as_ptr(), 0o600), 0);
        let fd = libc::open(
            c.as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        );
        assert!(fd >= 0);
        libc::fcntl(fd, libc::F_SETPIPE_SZ, 4096);
        OwnedFd::from_raw_fd(fd)
    };
    std::fs::write(init.d().join("run/control"), "reply=slow status\n").expect("request");
    let queued = || {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD into an int of ours.
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
        n
    };
    assert!(wait_for(SOON, || queued() > 0), "no reply began");
    let o = init.ctl(&["reexec"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}\n{}", init.log());
    let mut got = Vec::new();
    let whole = wait_for(SOON, || {
        let mut buf = [0u8; 65536];
        // SAFETY: a read into a buffer of ours.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            got.extend_from_slice(&buf[..n as usize]);
        }
        got.ends_with(b"\n")
    });
    assert!(whole, "reply cut at {} bytes\n{}", got.len(), init.log());
    assert!(
        got.len() > 4096,
        "the reply fit the pipe: {} bytes",
        got.len()
    );
    let v: Value = serde_json::from_slice(&got).expect("one whole JSON reply");
    assert_eq!(v["ok"], true);
    assert_eq!(v["data"].as_array().map(Vec::len), Some(PLAIN));
}

/// Entrypoint mode (`colony-init --run-dir RUN -- CMD`), PID 1 of a PID namespace as in a
/// container: reexecs keep CMD running (same PID, its output uninterrupted), and CMD's exit
/// status is still colony-init's.
#[test]
fn entrypoint_mode_reexecs_with_cmd_running_on() {
    if !pid_ns_available() {
        skip_or_fail!("skipped: no PID namespaces here");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let out = d.join("cmd.out");
    let script = format!(
        "exec {} --run-dir {}/run -- /bin/sh -c 'trap \"exit 7\" TERM; i=0; while :; do i=$((i+1)); echo \"n $i\" >> {}; sleep 0.01; done'",
        bin("colony-init").display(),
        d.display(),
        out.display()
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
    let ctl = |args: &[&str]| {
        Command::new(bin("colonyctl"))
            .arg("--run-dir")
            .arg(d.join("run"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("colonyctl")
    };
    let mut init = None;
    let mut cmd = None;
    let started = wait_for(SOON, || {
        init = child_named(unshare.id(), "colony-init");
        cmd = init.and_then(|p| child_named(p as u32, "sh"));
        cmd.is_some() && ctl(&["version"]).status.success()
    });
    let text = || std::fs::read_to_string(d.join("init.log")).unwrap_or_default();
    if !started {
        let _ = unshare.kill();
        let _ = unshare.wait();
        panic!("entrypoint did not start: {}", text());
    }
    let (init, cmd) = (init.expect("init"), cmd.expect("cmd"));
    let mut results = Vec::new();
    for _ in 0..5 {
        results.push(ctl(&["reexec"]));
    }
    let refused = ctl(&["reexec", "--binary", "/bin/false"]);
    let status = ctl(&["status"]);
    let v: Value =
        serde_json::from_slice(&ctl(&["version", "--json"]).stdout).unwrap_or(Value::Null);
    let cmd_after = child_named(init as u32, "sh");
    let n0 = numbers(&out).len();
    let flowing = wait_for(SOON, || numbers(&out).len() > n0 + 5);
    // SAFETY: the colony-init this test started; it forwards SIGTERM to CMD.
    unsafe { libc::kill(init, libc::SIGTERM) };
    let ended = wait_for(SOON, || matches!(unshare.try_wait(), Ok(Some(_))));
    if !ended {
        let _ = unshare.kill();
    }
    let code = unshare.wait().expect("wait").code();
    for r in &results {
        assert_eq!(r.status.code(), Some(0), "{r:?}\n{}", text());
    }
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert_eq!(status.status.code(), Some(1), "{status:?}");
    assert!(String::from_utf8_lossy(&status.stderr).contains("entrypoint mode"));
    assert_eq!(v["init"]["reexecs"], 5, "{v}");
    assert_eq!(cmd_after, Some(cmd), "CMD is not the same process");
    assert!(flowing, "CMD's output stopped");
    assert!(ended, "colony-init did not end on SIGTERM: {}", text());
    assert_eq!(
        code,
        Some(7),
        "CMD's exit status is not colony-init's: {}",
        text()
    );
    let n = numbers(&out);
    for (i, x) in n.iter().enumerate() {
        assert_eq!(*x, i as u64 + 1);
    }
}

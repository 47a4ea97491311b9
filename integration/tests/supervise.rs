//! colony-init supervising real processes as a plain process (any PID): lifecycle,
//! restarts, stops, dependencies, directory sync, logs, the control FIFO.

use std::time::Duration;

use colony_integration::{alive, wait_for, Colony, SOON};
use serde_json::Value;

fn pid_of(u: &Value) -> i32 {
    u["pid"].as_i64().unwrap_or(0) as i32
}

fn sh(script: &str) -> String {
    // A TOML literal string cannot hold a single quote; the scripts avoid them.
    format!("exec = [\"/bin/sh\", \"-c\", '''{script}''']\n")
}

#[test]
fn starts_units_with_the_spec_environment() {
    let c = Colony::new();
    let out = c.dir.path().join("env.out");
    let work = c.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    c.write_unit(
        "envy",
        &format!(
            "{}directory = \"{}\"\nenvironment = {{ GREETING = \"hi there\" }}\nextras = {{ shard = 3 }}\n",
            sh(&format!(
                "{{ echo unit=$COLONY_UNIT; echo config=$COLONY_CONFIG; echo greeting=$GREETING; echo cwd=$(pwd); echo run=$COLONY_RUN_DIR; echo units=$COLONY_UNITS_DIR; echo path=$PATH; grep -E \"^(SigBlk|SigIgn)\" /proc/self/status; ls -l /proc/self/fd/0; }} > {} ; exec sleep 1000",
                out.display()
            )),
            work.display()
        ),
    );
    let c = c.start();
    let u = c.wait_state("envy", "running");
    assert!(pid_of(&u) > 0);
    let text = wait_for("the unit's env file", SOON, || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|t| t.contains("/proc/self/fd/0"))
    });
    assert!(text.contains("unit=envy"), "{text}");
    assert!(text.contains("config={\"shard\":3}"), "{text}");
    assert!(text.contains("greeting=hi there"), "{text}");
    assert!(text.contains(&format!("cwd={}", work.display())), "{text}");
    assert!(text.contains(&format!("run={}", c.run.display())), "{text}");
    assert!(
        text.contains(&format!("units={}", c.units.display())),
        "{text}"
    );
    assert!(text.contains("path=/"), "{text}");
    assert!(text.contains("SigBlk:\t0000000000000000"), "{text}");
    assert!(text.contains("SigIgn:\t0000000000000000"), "{text}");
    assert!(text.contains("/dev/null"), "stdin is /dev/null: {text}");
}

#[test]
fn crash_restarts_with_backoff_and_counts() {
    let c = Colony::new();
    c.write_unit(
        "crashy",
        &format!(
            "{}[restart]\ndelay_min = \"0s\"\ndelay_max = \"200ms\"\nthreshold = \"10s\"\n",
            sh("exit 3")
        ),
    );
    let c = c.start();
    let u = c.wait_unit("crashy", "restarted 3 times", |u| {
        u["restarts"].as_u64() >= Some(3)
    });
    assert_eq!(u["last_exit"]["code"], 3, "{u}");
}

#[test]
fn policy_never_and_on_failure_end_in_exited_or_failed() {
    let c = Colony::new();
    c.write_unit(
        "once",
        &format!("{}[restart]\npolicy = \"never\"\n", sh("exit 0")),
    );
    c.write_unit(
        "okcode",
        &format!(
            "{}[restart]\npolicy = \"on-failure\"\nsuccess_codes = [0, 7]\n",
            sh("exit 7")
        ),
    );
    c.write_unit(
        "bad",
        &format!("{}[restart]\npolicy = \"never\"\n", sh("exit 9")),
    );
    let c = c.start();
    c.wait_state("once", "exited");
    let u = c.wait_state("okcode", "exited");
    assert_eq!(u["restarts"], 0);
    let u = c.wait_state("bad", "failed");
    assert_eq!(u["last_exit"]["code"], 9);
}

#[test]
fn exec_failure_is_reported_not_looped() {
    let c = Colony::new();
    c.write_unit("ghost", "exec = [\"/nonexistent/program\"]\n");
    let c = c.start();
    let u = c.wait_unit("ghost", "showing the exec error", |u| {
        u["last_exit"]["reason"] == "exec"
    });
    let detail = u["last_exit"]["detail"]
        .as_str()
        .unwrap_or("")
        .to_lowercase();
    assert!(
        detail.contains("no such file") || detail.contains("not found"),
        "{u}"
    );
    // Backoff starts at 1s and doubles: never a hot loop.
    assert!(u["restarts"].as_u64().unwrap_or(0) < 3, "{u}");
}

#[test]
fn stop_escalates_to_sigkill_and_kills_leftovers() {
    let c = Colony::new();
    let kid = c.dir.path().join("kid.pid");
    c.write_unit(
        "stubborn",
        &format!(
            "{}[stop]\ntimeout = \"300ms\"\n",
            sh(&format!(
                "trap \"\" TERM; sleep 1000 & echo $! > {}; while true; do sleep 1; done",
                kid.display()
            ))
        ),
    );
    let c = c.start();
    let u = c.wait_state("stubborn", "running");
    let main = pid_of(&u);
    let kid: i32 = wait_for("the leftover's pid", SOON, || {
        std::fs::read_to_string(&kid).ok()?.trim().parse().ok()
    });
    let o = c.ctl(&["stop", "stubborn"]);
    assert!(o.status.success(), "{o:?}\n{}", c.init_log());
    let u = c.wait_state("stubborn", "stopped");
    assert_eq!(u["pid"], Value::Null);
    wait_for("main and leftover to be gone", SOON, || {
        (!alive(main) && !alive(kid)).then_some(())
    });
    // A stop with reason `stopped` after a SIGKILL.
    assert_eq!(u["last_exit"]["signal"], "SIGKILL", "{u}");
}

#[test]
fn leftovers_of_an_exited_main_are_killed_before_restart() {
    let c = Colony::new();
    let kids = c.dir.path().join("kids");
    c.write_unit(
        "parent",
        &format!(
            "{}[restart]\ndelay_min = \"0s\"\n",
            sh(&format!(
                "sleep 1000 & echo $! >> {}; sleep 0.2; exit 1",
                kids.display()
            ))
        ),
    );
    let c = c.start();
    c.wait_unit("parent", "restarted twice", |u| {
        u["restarts"].as_u64() >= Some(2)
    });
    let first: i32 = std::fs::read_to_string(&kids)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    wait_for("the first leftover to be killed", SOON, || {
        (!alive(first)).then_some(())
    });
}

/// colony-init raises its own open-files limit (a pidfd, a pipe and a log file per unit);
/// its units get the soft limit it was started with and its raised hard limit, and a unit's
/// `nofile` sets both.
#[test]
fn units_get_the_soft_open_files_limit_colony_init_was_started_with_or_their_nofile() {
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let soft = 256.min(hard / 2);
    let mut c = Colony::new();
    c.nofile = Some((soft, hard));
    let script = "echo \"limits $(ulimit -Sn) $(ulimit -Hn)\"; exec sleep 100000";
    c.write_unit("limits", &sh(script));
    c.write_unit("more", &format!("nofile = 300\n{}", sh(script)));
    let c = c.start();
    let limits_of = |unit: &str| {
        let log = c.logs.join(format!("{unit}.log"));
        wait_for("the unit's limits in its log", SOON, || {
            let text = std::fs::read_to_string(&log).ok()?;
            text.lines()
                .find_map(|l| l.split_once("limits ").map(|(_, v)| v.to_string()))
        })
    };
    let own = std::fs::read_to_string(format!("/proc/{}/limits", c.pid())).unwrap();
    let open_files: Vec<u64> = own
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        open_files[0] >= hard && open_files[1] >= hard,
        "colony-init's own limit was not raised: {open_files:?}"
    );
    assert_eq!(limits_of("limits"), format!("{soft} {}", open_files[1]));
    assert_eq!(limits_of("more"), "300 300");
}

/// Held cgroup stat files never take the fds units need to start: under a limit of 400,
/// 60 units (a pidfd, a pipe, a log file and its directory each) all start. With half the table for stat
/// files, the last ones failed with EMFILE.
#[test]
fn held_stat_files_leave_room_for_units_under_a_low_fd_limit() {
    let mut c = Colony::new();
    c.nofile = Some((400, 400));
    for i in 0..60 {
        c.write_unit(&format!("u{i}"), "exec = [\"sleep\", \"100000\"]\n");
    }
    let c = c.start();
    let states = wait_for("60 units running", SOON * 3, || {
        let all = c.status();
        let running = all.iter().filter(|u| u["state"] == "running").count();
        (running == 60 || all.iter().any(|u| u["restarts"].as_u64() > Some(0))).then_some(all)
    });
    let not_running: Vec<_> = states
        .iter()
        .filter(|u| u["state"] != "running")
        .map(|u| format!("{} {}", u["name"], u["state"]))
        .collect();
    assert!(
        not_running.is_empty(),
        "not running: {not_running:?}\n{}",
        c.init_log()
    );
}

#[test]
fn orphans_are_reaped() {
    let c = Colony::new();
    // Each start double-forks 20 short-lived orphans that colony-init inherits.
    c.write_unit(
        "forker",
        &sh("for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do (sleep 0.1 &) ; done; exec sleep 1000"),
    );
    let mut c = c.start();
    c.wait_state("forker", "running");
    let init = c.pid();
    wait_for("no zombie children of colony-init", SOON, || {
        let zombies = zombie_children(init);
        let kids = children(init);
        (zombies == 0 && kids.len() == 1).then_some(())
    });
    assert_eq!(c.stop(), Some(0));
}

fn children(ppid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            if let Some((_, rest)) = stat.rsplit_once(')') {
                let f: Vec<&str> = rest.split_whitespace().collect();
                if f.get(1).and_then(|p| p.parse::<i32>().ok()) == Some(ppid) {
                    out.push(pid);
                }
            }
        }
    }
    out
}

fn zombie_children(ppid: i32) -> usize {
    children(ppid)
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .map(|(_, r)| r.trim_start().starts_with('Z'))
                })
                .unwrap_or(false)
        })
        .count()
}

#[test]
fn dependencies_order_starts_and_reverse_stops() {
    let c = Colony::new();
    let trace = c.dir.path().join("trace");
    let t = trace.display();
    // Each is up once it wrote its line (a ready file), so the order of lines is the order
    // of starts, not a race between shells.
    let up = c.dir.path().join("up");
    std::fs::create_dir_all(&up).unwrap();
    let u = up.display();
    let svc = |name: &str| {
        format!(
            "{}[ready]\ntype = \"file\"\npath = \"{u}/{name}\"\ntimeout = \"20s\"\n",
            sh(&format!(
                "echo start-{name} >> {t}; touch {u}/{name}; trap \"echo stop-{name} >> {t}; exit 0\" TERM; while true; do sleep 0.05; done"
            ))
        )
    };
    c.write_unit("db", &svc("db"));
    c.write_unit(
        "app",
        &format!("after = [\"db\"]\nrequires = [\"db\"]\n{}", svc("app")),
    );
    c.write_unit("web", &format!("after = [\"app\"]\n{}", svc("web")));
    let mut c = c.start();
    for u in ["db", "app", "web"] {
        c.wait_state(u, "running");
    }
    assert_eq!(c.stop(), Some(0), "{}", c.init_log());
    let text = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        vec![
            "start-db",
            "start-app",
            "start-web",
            "stop-web",
            "stop-app",
            "stop-db"
        ],
        "{text}"
    );
}

#[test]
fn requires_pulls_in_and_stopping_a_requirement_stops_dependents() {
    let c = Colony::new();
    c.write_unit(
        "base",
        &format!("{}enabled = false\n", sh("exec sleep 1000")),
    );
    c.write_unit(
        "top",
        &format!(
            "{}enabled = false\nrequires = [\"base\"]\nafter = [\"base\"]\ntags = [\"grp\"]\n",
            sh("exec sleep 1000")
        ),
    );
    let c = c.start();
    assert_eq!(c.unit("base").unwrap()["state"], "stopped");
    assert_eq!(c.unit("top").unwrap()["state"], "stopped");
    let o = c.ctl(&["start", "@grp"]);
    assert!(o.status.success(), "{o:?}\n{}", c.init_log());
    // start returns when the unit is up: no wait needed.
    assert_eq!(c.unit("top").unwrap()["state"], "running");
    assert_eq!(c.unit("base").unwrap()["state"], "running");
    let o = c.ctl(&["stop", "base"]);
    assert!(o.status.success(), "{o:?}");
    c.wait_state("top", "stopped");
}

#[test]
fn essential_unit_failure_ends_colony_with_its_code() {
    let c = Colony::new();
    c.write_unit("other", &sh("exec sleep 1000"));
    c.write_unit(
        "vital",
        &format!(
            "{}essential = true\n[restart]\npolicy = \"never\"\n",
            sh("sleep 0.3; exit 42")
        ),
    );
    let mut c = c.start();
    let mut child = c.child.take().unwrap();
    let st = wait_for("colony-init to exit", SOON, || {
        child.try_wait().ok().flatten()
    });
    assert_eq!(st.code(), Some(42), "{}", c.init_log());
}

#[test]
fn directory_changes_apply_without_reload() {
    let c = Colony::new();
    c.write_unit("a", &sh("exec sleep 1000"));
    let c = c.start();
    let pid_a = pid_of(&c.wait_state("a", "running"));

    // New file: starts.
    c.write_unit("b", &sh("exec sleep 1001"));
    let pid_b = pid_of(&c.wait_state("b", "running"));

    // Unchanged rewrite: nothing happens (checked after a later change is applied).
    c.write_unit("b", &sh("exec sleep 1001"));
    // Changed file: restarted with the new definition.
    c.write_unit("a", &sh("exec sleep 1002"));
    let u = c.wait_unit("a", "restarted", |u| {
        u["state"] == "running" && pid_of(u) != pid_a
    });
    let pid_a2 = pid_of(&u);
    assert!(pid_a2 > 0);
    assert_eq!(
        pid_of(&c.unit("b").unwrap()),
        pid_b,
        "unchanged rewrite restarted b"
    );

    // Editors' temporary files never start anything.
    std::fs::write(c.units.join(".c.unit.swp"), sh("exec sleep 1")).unwrap();
    std::fs::write(c.units.join("c.unit~"), sh("exec sleep 1")).unwrap();
    // Invalid change: keeps running on the last good definition, error shown.
    c.write_unit("b", "exec = [\"/bin/sleep\", \"1001\"]\nrestrat = 1\n");
    let u = c.wait_unit("b", "showing the error", |u| !u["error"].is_null());
    assert_eq!(u["state"], "running");
    assert_eq!(pid_of(&u), pid_b);
    assert!(u["error"].as_str().unwrap().contains("restart"), "{u}");
    assert!(c.unit("c").is_none());

    // Removed file: stopped and gone.
    c.remove_unit("a");
    wait_for("a to be removed", SOON, || {
        c.unit("a").is_none().then_some(())
    });
    wait_for("a's process to end", SOON, || {
        (!alive(pid_a2)).then_some(())
    });
}

#[test]
fn logs_are_time_stamped_rotated_and_shown() {
    let c = Colony::new();
    c.write_unit(
        "talker",
        &format!(
            "{}[log]\nmax_size = \"16K\"\nkeep = 2\n",
            sh("i=0; while [ $i -lt 1500 ]; do echo line-$i; echo err-$i >&2; i=$((i+1)); done; exec sleep 1000")
        ),
    );
    let c = c.start();
    c.wait_state("talker", "running");
    let log = c.logs.join("talker.log");
    wait_for("rotated logs", SOON, || {
        c.logs.join("talker.log.2").exists().then_some(())
    });
    assert!(!c.logs.join("talker.log.3").exists());
    let o = c.ctl(&["logs", "talker", "-n", "3"]);
    assert!(o.status.success(), "{o:?}");
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.lines().count(), 3, "{text}");
    let all = std::fs::read_to_string(&log).unwrap();
    let line = all.lines().find(|l| l.contains("line-")).unwrap();
    // 2026-11-23T12:00:00.123Z line-199
    assert!(
        line.len() > 20 && line.as_bytes()[4] == b'-' && line.contains('T'),
        "{line}"
    );
}

/// New `[log]` limits in a changed unit file apply to the log file kept open across the
/// restart: the unit's next output is rotated at the new size.
#[test]
fn changed_log_limits_apply_at_the_next_start() {
    let c = Colony::new();
    let talker =
        sh("i=0; while [ $i -lt 1500 ]; do echo line-$i; i=$((i+1)); done; exec sleep 1000");
    c.write_unit("talker", &talker);
    let c = c.start();
    let log = c.logs.join("talker.log");
    wait_for("the first run's output", SOON, || {
        std::fs::read_to_string(&log)
            .ok()?
            .contains("line-1499")
            .then_some(())
    });
    assert!(
        !c.logs.join("talker.log.1").exists(),
        "rotated at the default size"
    );
    c.write_unit(
        "talker",
        &format!("{talker}[log]\nmax_size = \"16K\"\nkeep = 1\n"),
    );
    wait_for("the log rotated at the new size", SOON, || {
        c.logs.join("talker.log.1").exists().then_some(())
    });
    assert!(!c.logs.join("talker.log.2").exists());
}

#[test]
fn control_fifo_from_a_shell_and_hostile_input() {
    let c = Colony::new();
    c.write_unit("svc", &sh("exec sleep 1000"));
    let c = c.start();
    let pid = pid_of(&c.wait_state("svc", "running"));
    let control = c.run.join("control");
    // Garbage, binary, oversize and hostile reply names are dropped...
    let mut junk = vec![0xffu8, 0xfe, 0, 1, b'\n'];
    junk.extend(std::iter::repeat_n(b'x', 10_000));
    junk.push(b'\n');
    junk.extend_from_slice(b"reply=../../etc/passwd status\nreply=/tmp/x status\n");
    std::fs::write(&control, &junk).unwrap();
    // ...and a plain shell request still works.
    let st = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("echo 'restart svc' > {}", control.display()))
        .status()
        .unwrap();
    assert!(st.success());
    let u = c.wait_unit("svc", "restarted", |u| {
        u["state"] == "running" && pid_of(u) != pid
    });
    assert_eq!(
        u["restarts"], 0,
        "a requested restart is not a crash restart: {u}"
    );
}

#[test]
fn many_clients_at_once_each_get_a_whole_answer() {
    let c = Colony::new();
    for i in 0..30 {
        c.write_unit(&format!("u{i}"), &sh("exec sleep 1000"));
    }
    let c = c.start();
    for i in 0..30 {
        c.wait_state(&format!("u{i}"), "running");
    }
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..16).map(|_| s.spawn(|| c.status().len())).collect();
        for h in hs {
            assert_eq!(h.join().unwrap(), 30);
        }
    });
}

#[test]
fn colonyctl_exit_codes() {
    let c = Colony::new();
    c.write_unit("up", &sh("exec sleep 1000"));
    c.write_unit(
        "down",
        &format!("{}enabled = false\n", sh("exec sleep 1000")),
    );
    let c = c.start();
    c.wait_state("up", "running");
    assert_eq!(c.ctl(&["status", "up"]).status.code(), Some(0));
    assert_eq!(c.ctl(&["status", "down"]).status.code(), Some(3));
    assert_eq!(c.ctl(&["status", "nosuch"]).status.code(), Some(4));
    assert_eq!(c.ctl(&["start", "nosuch"]).status.code(), Some(4));
    assert_eq!(c.ctl(&["frobnicate"]).status.code(), Some(2));
    let o = c.ctl(&["signal", "SIGUSR1", "down"]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    // With nothing listening: exit 5 at once.
    let empty = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(colony_integration::bin("colonyctl"))
        .arg("--run-dir")
        .arg(empty.path())
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn sigterm_in_a_pid_namespace_stops_units_and_exits_zero() {
    // colony-init as PID 1 of its own PID namespace (container mode).
    let c = Colony::new();
    c.write_unit("svc", &sh("exec sleep 1000"));
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--"])
        .arg(colony_integration::bin("colony-init"))
        .args(["--units"])
        .arg(&c.units)
        .arg("--run-dir")
        .arg(&c.run)
        .arg("--log-dir")
        .arg(&c.logs)
        .arg("--state-dir")
        .arg(&c.state)
        .arg("--cgroup-name")
        .arg(&c.cgroup_name)
        .stdin(std::process::Stdio::null());
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    c.wait_state("svc", "running");
    // unshare --fork forwards nothing: signal colony-init (ns PID 1) by its host PID.
    let init_pid = wait_for("colony-init's host pid", SOON, || {
        children(child.0.id() as i32).first().copied()
    });
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init_pid),
        nix::sys::signal::Signal::SIGTERM,
    );
    let st = wait_for("unshare to exit", SOON, || {
        child.0.try_wait().ok().flatten()
    });
    assert_eq!(st.code(), Some(0));
}

#[test]
fn restart_with_zero_delay_is_fast_enough_to_not_need_sleeping() {
    // `restart` waits until the unit runs again; the pid changes.
    let c = Colony::new();
    c.write_unit("r", &sh("exec sleep 1000"));
    let c = c.start();
    let p1 = pid_of(&c.wait_state("r", "running"));
    let o = c.ctl(&["restart", "r"]);
    assert!(o.status.success(), "{o:?}");
    let u = c.unit("r").unwrap();
    assert_eq!(u["state"], "running");
    assert_ne!(pid_of(&u), p1);
    let _ = Duration::ZERO;
}

/// A child that is SIGKILLed (by its PID) if the test fails before it exits.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // unshare --fork: killing unshare alone would leave its child; kill both by PID.
            for kid in children(self.0.id() as i32) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(kid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn non_root_uses_the_xdg_paths() {
    // colony-init and colonyctl as nobody, with nothing but the XDG environment.
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    std::fs::set_permissions(base, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    for d in ["config/colony/units", "runtime", "state"] {
        std::fs::create_dir_all(base.join(d)).unwrap();
    }
    std::fs::write(
        base.join("config/colony/units/hello.unit"),
        "exec = [\"sleep\", \"1000\"]\n",
    )
    .unwrap();
    let chown = std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(base)
        .status()
        .unwrap();
    assert!(chown.success());
    let as_nobody = |prog: &std::path::Path| {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg("env")
            .arg("-i")
            .arg(format!("HOME={}", base.display()))
            .arg(format!("XDG_CONFIG_HOME={}/config", base.display()))
            .arg(format!("XDG_RUNTIME_DIR={}/runtime", base.display()))
            .arg(format!("XDG_STATE_HOME={}/state", base.display()))
            .arg("PATH=/usr/bin:/bin")
            .arg(prog)
            .stdin(std::process::Stdio::null());
        c
    };
    let init = as_nobody(&colony_integration::bin("colony-init"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut init = KillOnDrop(init);
    let control = base.join("runtime/colony/control");
    let status = wait_for("hello running under the XDG paths", SOON, || {
        let o = as_nobody(&colony_integration::bin("colonyctl"))
            .args(["--json", "status"])
            .output()
            .ok()?;
        let v: Vec<Value> = serde_json::from_slice(&o.stdout).ok()?;
        v.into_iter()
            .find(|u| u["name"] == "hello" && u["state"] == "running")
    });
    assert!(control.exists());
    assert_eq!(
        status["log_file"].as_str().unwrap(),
        format!("{}/state/colony/log/hello.log", base.display())
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let st = wait_for("colony-init to exit", SOON, || {
        init.0.try_wait().ok().flatten()
    });
    assert_eq!(st.code(), Some(0));
}

#[test]
fn a_flooding_unit_does_not_stall_the_loop() {
    let c = Colony::new();
    c.write_unit(
        "flood",
        "exec = [\"yes\", \"flooding the log as fast as a pipe goes\"]\n[log]\nmax_size = \"1M\"\nkeep = 1\n",
    );
    c.write_unit("quiet", &sh("exec sleep 1000"));
    let c = c.start();
    c.wait_state("flood", "running");
    // While it floods, requests keep being answered and other units keep being managed.
    for _ in 0..5 {
        let o = c.ctl(&["restart", "quiet"]);
        assert!(o.status.success(), "{o:?}");
        assert_eq!(c.unit("quiet").unwrap()["state"], "running");
    }
    wait_for("the flood log to rotate", SOON, || {
        c.logs.join("flood.log.1").exists().then_some(())
    });
}

#[test]
fn restart_all_signal_and_reload() {
    let c = Colony::new();
    let got = c.dir.path().join("got-hup");
    c.write_unit(
        "one",
        &sh(&format!(
            "trap \"echo hup > {}\" HUP; while true; do sleep 0.05; done",
            got.display()
        )),
    );
    c.write_unit("two", &sh("exec sleep 1000"));
    let c = c.start();
    let p1 = pid_of(&c.wait_state("one", "running"));
    let p2 = pid_of(&c.wait_state("two", "running"));
    let o = c.ctl(&["signal", "HUP", "one"]);
    assert!(o.status.success(), "{o:?}");
    wait_for("one to get SIGHUP", SOON, || got.exists().then_some(()));
    let o = c.ctl(&["restart-all"]);
    assert!(o.status.success(), "{o:?}");
    c.wait_unit("one", "restarted", |u| {
        u["state"] == "running" && pid_of(u) != p1
    });
    c.wait_unit("two", "restarted", |u| {
        u["state"] == "running" && pid_of(u) != p2
    });
    // reload applies a change at once (the watch would too; reload is the explicit path).
    c.write_unit("three", &sh("exec sleep 1000"));
    let o = c.ctl(&["reload"]);
    assert!(o.status.success(), "{o:?}");
    c.wait_state("three", "running");
}

#[test]
fn last_words_without_a_newline_reach_the_log_before_the_exit_note() {
    let c = Colony::new();
    c.write_unit(
        "brief",
        &format!(
            "{}[restart]\npolicy = \"never\"\n",
            sh("printf last-words; exit 4")
        ),
    );
    let c = c.start();
    c.wait_state("brief", "failed");
    let log = std::fs::read_to_string(c.logs.join("brief.log")).unwrap();
    let words = log
        .find("last-words")
        .expect("the unterminated line is in the log");
    let note = log.find("exited with code 4").expect("the exit note");
    assert!(words < note, "{log}");
}

#[test]
fn a_panic_while_handling_an_event_is_caught_and_the_loop_goes_on() {
    let c = Colony::new();
    c.write_unit("svc", &sh("exec sleep 1000"));
    let c = c.start();
    let pid = pid_of(&c.wait_state("svc", "running"));
    // Debug builds (the tests') panic on this verb; colony-init must catch it.
    std::fs::write(c.run.join("control"), "__panic\n").unwrap();
    wait_for("the panic to be logged as caught", SOON, || {
        c.init_log().contains("caught").then_some(())
    });
    let u = c.unit("svc").unwrap();
    assert_eq!(u["state"], "running");
    assert_eq!(pid_of(&u), pid);
    let o = c.ctl(&["restart", "svc"]);
    assert!(o.status.success(), "{o:?}");
    assert!(alive(c.pid()));
}

#[test]
fn a_panic_while_spawning_fails_the_start_and_the_unit_is_started_again() {
    let mut c = Colony::new();
    // Debug builds (the tests') panic at the spawn after this file is made, once.
    let marker = c.dir.path().join("panic-spawn");
    let wrapper = c.dir.path().join("panic-env");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nCOLONY_TEST_PANIC_SPAWN={} exec \"$@\"\n",
            marker.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    c.wrapper = Some(wrapper);
    let c = c.start();
    // Loaded from inotify, in the loop: the spawn's panic is caught there.
    std::fs::write(&marker, "").unwrap();
    c.write_unit(
        "svc",
        &format!("{}\n[restart]\ndelay_min = \"0s\"\n", sh("exec sleep 1000")),
    );
    // Not left `starting` for good: a failed start, then a start that works.
    let u = c.wait_unit("svc", "running after a failed start", |u| {
        u["state"] == "running" && u["restarts"].as_u64().is_some_and(|n| n >= 1)
    });
    assert!(!marker.exists());
    assert!(c.init_log().contains("carrying out an effect was caught"));
    assert!(alive(pid_of(&u)));
    assert!(alive(c.pid()));
}

/// Installs a seccomp filter that refuses close_range and unshare (as an old container
/// runtime's profile does), then execs its arguments.
const NO_UNSHARE_C: &str = r#"
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 436 /* close_range */, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unshare, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
    };
    struct sock_fprog p = {sizeof f / sizeof f[0], f};
    if (argc < 2 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p)) {
        perror("seccomp");
        return 100;
    }
    execvp(argv[1], argv + 1);
    perror("exec");
    return 101;
}
"#;

/// Where close_range and unshare are refused, a child cannot leave colony-init's fd table
/// (child_fds.rs): colony-init clones it again with a copy of the table, as fork does, says
/// so once, and every unit runs.
#[test]
fn units_run_where_seccomp_refuses_close_range_and_unshare() {
    if !cfg!(target_arch = "x86_64") {
        return; // the filter names x86_64's syscall numbers
    }
    let mut c = Colony::new();
    let Some(wrapper) = colony_integration::compile_c(c.dir.path(), "no_unshare", NO_UNSHARE_C)
    else {
        return;
    };
    c.wrapper = Some(wrapper);
    for name in ["one", "two"] {
        c.write_unit(name, &sh("echo ran; exec sleep 100000"));
    }
    let c = c.start();
    for name in ["one", "two"] {
        c.wait_state(name, "running");
        let log = c.logs.join(format!("{name}.log"));
        wait_for("the unit's output", SOON, || {
            std::fs::read_to_string(&log)
                .ok()?
                .contains("ran")
                .then_some(())
        });
    }
    let init_log = c.init_log();
    assert_eq!(init_log.matches("cannot leave").count(), 1, "{init_log}");
}

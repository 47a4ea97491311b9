//! colony-init as PID 1 of real OCI containers (podman on runc), in both modes: entrypoint
//! (`colony-init -- CMD`) and supervisor of a bind-mounted units directory. The image is built
//! from freshly built static binaries by `container/build-image` (see
//! `colony_integration::container`); every container is removed when its test ends.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use colony_integration::container::{image, podman_out, Container};
use colony_integration::{wait_for, SOON};
use serde_json::Value;

/// `podman run --rm IMAGE colony-init -- sh -c SCRIPT`, in the foreground.
fn run_sh(script: &str) -> std::process::Output {
    let c = Container::named("ep");
    c.run_command(&["--rm"], &["colony-init", "--", "sh", "-c", script])
        .output()
        .expect("podman run")
}

#[test]
fn entrypoint_passes_stdout_and_stderr_through() {
    let o = run_sh("echo to-stdout; echo to-stderr >&2");
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "to-stdout\n");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("to-stderr\n"),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn entrypoint_exit_codes_mirror_cmd() {
    for code in [0, 1, 2, 42, 126, 127, 128, 200, 255] {
        let o = run_sh(&format!("exit {code}"));
        assert_eq!(
            o.status.code(),
            Some(code),
            "exit {code}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    for (sig, n) in [("HUP", 1), ("USR1", 10), ("KILL", 9), ("TERM", 15)] {
        let o = run_sh(&format!("kill -{sig} $$"));
        assert_eq!(o.status.code(), Some(128 + n), "death by SIG{sig}");
    }
}

#[test]
fn podman_stop_is_fast_and_cmd_dies_of_term_with_143() {
    let c = Container::start("stop", &[], &["colony-init", "--", "sleep", "1000"]);
    wait_for("sleep to run as CMD", SOON, || {
        c.procs()
            .iter()
            .any(|p| p.3 == "sleep" && p.1 == 1)
            .then_some(())
    });
    // The stop timeout is 30 s: a stop that only ends by SIGKILL would take that long.
    let took = c.stop(30);
    assert!(took < Duration::from_secs(8), "podman stop took {took:?}");
    assert_eq!(c.wait_exit(SOON), 143, "logs: {}", c.all_logs());
}

#[test]
fn podman_stop_of_a_cmd_that_handles_term_exits_with_its_code() {
    let c = Container::start(
        "stop0",
        &[],
        &[
            "colony-init",
            "--",
            "sh",
            "-c",
            "trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 1000 & wait $!; done",
        ],
    );
    c.wait_log("ready");
    let took = c.stop(30);
    assert!(took < Duration::from_secs(8), "podman stop took {took:?}");
    assert_eq!(c.wait_exit(SOON), 0);
    assert!(c.logs().0.contains("bye"), "logs: {}", c.all_logs());
}

#[test]
fn podman_kill_signals_reach_cmd() {
    let script = "for s in HUP USR1 INT; do trap \"echo got-$s\" $s; done; echo ready; \
                  while :; do sleep 1000 & p=$!; wait $p; kill $p 2>/dev/null; done";
    let c = Container::start("kill", &[], &["colony-init", "--", "sh", "-c", script]);
    c.wait_log("ready");
    for sig in ["HUP", "USR1", "INT"] {
        c.kill(sig);
        c.wait_log(&format!("got-{sig}"));
    }
    // Still running: the trapped signals did not end CMD or colony-init.
    let o = podman_out(&["inspect", "--format", "{{.State.Status}}", &c.name]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "running");
}

#[test]
fn orphans_are_reaped_inside_the_container() {
    // Two grandchildren are orphaned at once (their parents, the subshells, exit) and are
    // reparented to PID 1, which must reap them when they exit.
    let c = Container::start(
        "orphans",
        &[],
        &[
            "colony-init",
            "--",
            "sh",
            "-c",
            "(sleep 2 &); (sleep 2 &); echo made; exec sleep 1000",
        ],
    );
    c.wait_log("made");
    let orphans = |ps: &[(i32, i32, char, String)]| {
        ps.iter()
            .filter(|p| p.3 == "sleep" && p.1 == 1 && p.0 != cmd_pid(ps))
            .count()
    };
    let ps = c.procs();
    assert_eq!(
        orphans(&ps),
        2,
        "two orphaned sleeps should be children of PID 1: {ps:?}"
    );
    wait_for("the orphans to exit and be reaped", SOON, || {
        let ps = c.procs();
        (orphans(&ps) == 0 && !ps.iter().any(|p| p.2 == 'Z')).then_some(())
    });
    let ps = c.procs();
    assert!(ps.iter().any(|p| p.0 == 1), "{ps:?}");
    assert!(!ps.iter().any(|p| p.2 == 'Z'), "zombie left: {ps:?}");
}

/// The PID of CMD: the oldest `sleep` child of PID 1 (`exec sleep 1000`, started first).
fn cmd_pid(ps: &[(i32, i32, char, String)]) -> i32 {
    ps.iter()
        .filter(|p| p.1 == 1 && p.3 == "sleep")
        .map(|p| p.0)
        .min()
        .unwrap_or(0)
}

// ---- interactive: a shell on a pty ----

struct Pty {
    master: std::fs::File,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    fn send(&mut self, s: &str) {
        self.master.write_all(s.as_bytes()).expect("write pty");
    }

    /// Wait until `text` appears after byte offset `from`; the offset after it.
    fn expect_after(&self, from: usize, text: &str, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            let all = self.out.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some(i) = find(&all[from.min(all.len())..], text.as_bytes()) {
                return from + i + text.len();
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {limit:?} waiting for {text:?}; terminal so far:\n{}",
                    String::from_utf8_lossy(&all)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Start `cmd` with a new session whose controlling terminal is a fresh pty.
fn spawn_on_pty(mut cmd: std::process::Command) -> (std::process::Child, Pty) {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave: OwnedFd = pty.slave;
    let slave_fd = slave.as_raw_fd();
    cmd.stdin(Stdio::from(slave.try_clone().expect("dup")))
        .stdout(Stdio::from(slave.try_clone().expect("dup")))
        .stderr(Stdio::from(slave.try_clone().expect("dup")));
    // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn on pty");
    drop(slave);
    let master = std::fs::File::from(pty.master);
    let mut reader = master.try_clone().expect("dup master");
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Ends with EIO once every slave fd is closed.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(&buf[..n]);
        }
    });
    (child, Pty { master, out })
}

#[test]
fn interactive_shell_gets_the_terminal_ctrl_c_and_job_control() {
    let c = Container::named("tty");
    let mut cmd = c.run_command(&["--rm", "-it"], &["colony-init", "--", "sh"]);
    cmd.env("TERM", "dumb");
    let (mut child, mut pty) = spawn_on_pty(cmd);
    let long = Duration::from_secs(30);

    // A typed command runs (the quotes keep the echo of the input from matching).
    pty.send("echo typed-'works'\r");
    let mut at = pty.expect_after(0, "typed-works", long);

    // Ctrl-C reaches the foreground job: sleep dies of SIGINT (130), the shell survives.
    pty.send("echo sleep-'started'; sleep 100\r");
    at = pty.expect_after(at, "sleep-started", long);
    // Let the shell fork and exec sleep (^C before then would only cancel a line).
    wait_for("sleep 100 to run in the container", SOON, || {
        let o = c.exec(&["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"]);
        String::from_utf8_lossy(&o.stdout)
            .contains("sleep 100")
            .then_some(())
    });
    let t = Instant::now();
    pty.send("\x03");
    pty.send("echo rc-$?-'after'\r");
    at = pty.expect_after(at, "rc-130-after", long);
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "Ctrl-C took {:?}",
        t.elapsed()
    );

    // Job control: Ctrl-Z stops the foreground job, `jobs` lists it, `fg` resumes it.
    pty.send("sleep 200\r");
    wait_for("sleep 200 to run in the container", SOON, || {
        let o = c.exec(&["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"]);
        String::from_utf8_lossy(&o.stdout)
            .contains("sleep 200")
            .then_some(())
    });
    pty.send("\x1a");
    at = pty.expect_after(at, "Stopped", long);
    pty.send("jobs; echo jobs-'listed'\r");
    at = pty.expect_after(at, "jobs-listed", long);
    // `fg` gives it the terminal again (tcsetpgrp, then SIGCONT): Ctrl-C then reaches it.
    pty.send("fg\r");
    wait_for("sleep 200 to be continued by fg", SOON, || {
        c.procs()
            .iter()
            .any(|p| p.3 == "sleep" && p.2 == 'S')
            .then_some(())
    });
    pty.send("\x03");
    pty.send("echo fg-rc-$?-'after'\r");
    at = pty.expect_after(at, "fg-rc-130-after", long);
    let _ = at;
    let text = pty.text();
    assert!(
        !text.contains("job control turned off") && !text.contains("can't access tty"),
        "the shell has no job control:\n{text}"
    );

    // The shell's exit status is the container's.
    pty.send("exit 3\r");
    let deadline = Instant::now() + SOON;
    let st = loop {
        if let Some(st) = child.try_wait().ok().flatten() {
            break st;
        }
        if Instant::now() >= deadline {
            let ps = c.procs();
            let _ = child.kill();
            panic!(
                "podman run -it did not exit after `exit 3`; processes: {ps:?}\nlogs: {}\nterminal:\n{}",
                c.all_logs(),
                pty.text()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(st.code(), Some(3), "terminal:\n{}", pty.text());
}

// ---- supervisor mode ----

/// A units directory and an output directory on the host, mounted into the container.
struct Dirs {
    _tmp: tempfile::TempDir,
    units: PathBuf,
    out: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        let tmp = tempfile::tempdir().expect("tempdir");
        let units = tmp.path().join("units");
        let out = tmp.path().join("out");
        std::fs::create_dir(&units).expect("mkdir");
        std::fs::create_dir(&out).expect("mkdir");
        // The container's root writes here.
        std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .expect("chmod");
        Dirs {
            _tmp: tmp,
            units,
            out,
        }
    }

    /// Write NAME.unit atomically (a hidden temporary file, then rename).
    fn unit(&self, name: &str, toml: &str) {
        let tmp = self.units.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, toml).expect("write unit");
        std::fs::rename(&tmp, self.units.join(format!("{name}.unit"))).expect("rename");
    }

    fn mounts(&self) -> Vec<String> {
        vec![
            "-v".into(),
            format!("{}:/etc/colony/units:ro", self.units.display()),
            "-v".into(),
            format!("{}:/out", self.out.display()),
        ]
    }

    fn start(&self, prefix: &str, extra: &[&str]) -> Container {
        let m = self.mounts();
        let mut opts: Vec<&str> = m.iter().map(|s| s.as_str()).collect();
        opts.extend_from_slice(extra);
        // The image's CMD: colony-init supervising /etc/colony/units.
        Container::start(prefix, &opts, &[])
    }
}

fn status(c: &Container) -> Option<Vec<Value>> {
    let o = c.exec(&["colonyctl", "--json", "status"]);
    serde_json::from_slice(&o.stdout).ok()
}

fn wait_unit(c: &Container, name: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + SOON;
    loop {
        let u = status(c).and_then(|all| all.into_iter().find(|u| u["name"] == name));
        if let Some(u) = u.as_ref().filter(|u| f(u)) {
            return u.clone();
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out waiting for unit {name} to be {what}; last: {u:?}\nlogs:\n{}",
                c.all_logs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn running(c: &Container, name: &str) -> Value {
    wait_unit(c, name, "running", |u| u["state"] == "running")
}

/// A unit whose shell notes its stop in /out/order.
fn stopping_unit(name: &str, deps: &str) -> String {
    format!(
        "{deps}\nexec = [\"sh\", \"-c\", \"trap 'echo {name} >> /out/order; exit 0' TERM; echo {name}-up; \
         while :; do sleep 1000 & wait $!; done\"]\n"
    )
}

#[test]
fn supervisor_colonyctl_status_restart_logs_through_podman_exec() {
    let d = Dirs::new();
    d.unit(
        "hello",
        "exec = [\"sh\", \"-c\", \"echo hello-from-unit; exec sleep 1000\"]\n",
    );
    let c = d.start("sup", &[]);
    let before = running(&c, "hello");

    let o = c.exec(&["colonyctl", "status"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("hello") && text.contains("running"), "{text}");

    let o = c.exec(&["colonyctl", "restart", "hello"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let after = running(&c, "hello");
    assert_ne!(before["pid"], after["pid"], "restart gave the same pid");

    let o = c.exec(&["colonyctl", "logs", "hello"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let logs = String::from_utf8_lossy(&o.stdout);
    assert!(
        logs.matches("hello-from-unit").count() >= 2,
        "both runs' output in the unit log: {logs}"
    );
}

#[test]
fn podman_stop_stops_units_in_reverse_dependency_order_and_exits_0() {
    let d = Dirs::new();
    d.unit("db", &stopping_unit("db", ""));
    d.unit(
        "app",
        &stopping_unit("app", "after = [\"db\"]\nrequires = [\"db\"]"),
    );
    d.unit("web", &stopping_unit("web", "after = [\"app\"]"));
    let c = d.start("order", &[]);
    for u in ["db", "app", "web"] {
        running(&c, u);
    }
    // Each shell has set its trap once it printed NAME-up into its unit log.
    for u in ["db", "app", "web"] {
        wait_for("the unit's trap to be set", SOON, || {
            let o = c.exec(&["colonyctl", "logs", u]);
            String::from_utf8_lossy(&o.stdout)
                .contains(&format!("{u}-up"))
                .then_some(())
        });
    }
    let took = c.stop(30);
    assert!(took < Duration::from_secs(10), "podman stop took {took:?}");
    assert_eq!(c.wait_exit(SOON), 0, "logs:\n{}", c.all_logs());
    let order = std::fs::read_to_string(d.out.join("order")).unwrap_or_default();
    assert_eq!(
        order.lines().collect::<Vec<_>>(),
        ["web", "app", "db"],
        "stop order; logs:\n{}",
        c.all_logs()
    );
}

#[test]
fn a_failing_essential_unit_ends_the_container_with_its_code() {
    let d = Dirs::new();
    d.unit("keeper", "exec = [\"sleep\", \"1000\"]\n");
    d.unit(
        "vital",
        "exec = [\"sh\", \"-c\", \"sleep 0.5; exit 7\"]\nessential = true\n[restart]\npolicy = \"never\"\n",
    );
    let c = d.start("essential", &[]);
    assert_eq!(c.wait_exit(SOON), 7, "logs:\n{}", c.all_logs());
}

#[test]
fn a_unit_file_added_on_the_host_starts_inside_within_a_second() {
    let d = Dirs::new();
    d.unit("base", "exec = [\"sleep\", \"1000\"]\n");
    let c = d.start("add", &[]);
    running(&c, "base");
    let marker = d.out.join("late-started");
    let t = Instant::now();
    d.unit(
        "late",
        "exec = [\"sh\", \"-c\", \"touch /out/late-started; exec sleep 1000\"]\n",
    );
    wait_for("the new unit to start", SOON, || {
        marker.exists().then_some(())
    });
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "the new unit started after {took:?}"
    );
    running(&c, "late");
}

// ---- cgroups ----

const LIMITED: &str = "exec = [\"sh\", \"-c\", \"sleep 1001 & exec sleep 1000\"]\n\
                       [resources]\nmemory_max = \"64M\"\ntasks_max = 16\n";

fn cmdlines(c: &Container) -> String {
    let o = c.exec(&[
        "sh",
        "-c",
        "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done 2>/dev/null",
    ]);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn default_container_runs_units_without_cgroups_and_says_which_limits_are_not_enforced() {
    let d = Dirs::new();
    d.unit("limited", LIMITED);
    d.unit("plain", "exec = [\"sleep\", \"1000\"]\n");
    let c = d.start("nocg", &[]);
    let u = running(&c, "limited");
    running(&c, "plain");

    assert!(u["cgroup"].is_null(), "{u}");
    let warnings = u["warnings"].to_string();
    assert!(
        warnings.contains("memory_max") && warnings.contains("tasks_max"),
        "the warnings name the limits not enforced: {u}"
    );
    let plain = running(&c, "plain");
    assert_eq!(plain["warnings"], serde_json::json!([]), "{plain}");
    let o = c.exec(&["colonyctl", "status", "limited"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("memory_max"),
        "colonyctl status shows the warning: {o:?}"
    );

    // Noticed once, at start; each unit's limits are named in the log.
    let logs = c.all_logs();
    assert_eq!(
        logs.matches("no writable cgroups").count(),
        1,
        "logs:\n{logs}"
    );
    assert!(
        logs.lines()
            .any(|l| l.contains("limited") && l.contains("memory_max")),
        "logs:\n{logs}"
    );
    // No noise (about what the runtime does not allow a container to mount, say).
    assert!(
        !logs
            .lines()
            .any(|l| l.contains("WARN") && !l.contains("not enforced")),
        "logs:\n{logs}"
    );

    // Process-group cleanup: stopping the unit ends its background child too.
    assert!(cmdlines(&c).contains("sleep 1001"));
    let o = c.exec(&["colonyctl", "stop", "limited"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    wait_for("the unit's background child to be gone", SOON, || {
        (!cmdlines(&c).contains("sleep 1001")).then_some(())
    });
}

/// The limits a unit's cgroup has, read inside the container: (memory limit, pids limit).
const READ_LIMITS: &str = r#"pid=$1
rel() { own=$(grep "$1" /proc/1/cgroup | head -1 | cut -d: -f3); [ "$own" = / ] && own=
        p=$(grep "$1" /proc/$pid/cgroup | head -1 | cut -d: -f3); echo "${p#$own}"; }
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  d=/sys/fs/cgroup$(rel '^0::'); echo "$(cat $d/memory.max) $(cat $d/pids.max)"
else
  echo "$(cat /sys/fs/cgroup/memory$(rel ':memory:')/memory.limit_in_bytes) $(cat /sys/fs/cgroup/pids$(rel ':pids:')/pids.max)"
fi"#;

#[test]
fn privileged_container_enforces_limits_and_status_shows_the_cgroup() {
    limits_enforced(&["--privileged"]);
}

#[test]
fn a_private_cgroup_namespace_is_used_too() {
    // The container sees its own cgroup as the root ("/" in /proc/1/cgroup).
    limits_enforced(&["--privileged", "--cgroupns=private"]);
}

fn limits_enforced(opts: &[&str]) {
    let d = Dirs::new();
    d.unit("limited", LIMITED);
    let c = d.start("cg", opts);
    let u = wait_unit(&c, "limited", "running with stats", |u| {
        u["state"] == "running" && u["memory_bytes"].as_u64().is_some_and(|m| m > 0)
    });
    assert!(u["cgroup"].as_str().is_some_and(|s| !s.is_empty()), "{u}");
    assert!(u["tasks"].as_u64().is_some_and(|t| t >= 2), "{u}");
    assert_eq!(u["warnings"], serde_json::json!([]), "{u}");
    let pid = u["pid"].as_i64().expect("pid").to_string();
    let o = c.exec(&["sh", "-c", READ_LIMITS, "sh", &pid]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "67108864 16",
        "limits of the unit's cgroup; stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn the_test_image_is_small_and_static() {
    let o = podman_out(&["image", "inspect", "--format", "{{.Size}}", &image()]);
    let size: u64 = String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .expect("image size");
    assert!(size < 20 << 20, "image is {size} bytes");
}

#[test]
fn a_restarted_container_supervises_again() {
    // `podman restart` keeps the container's files: colony-init starts over a used RUN dir.
    let d = Dirs::new();
    d.unit("app", "exec = [\"sleep\", \"1000\"]\n");
    let c = d.start("restart", &[]);
    let before = running(&c, "app");
    let o = podman_out(&["restart", "-t", "30", &c.name]);
    assert!(o.status.success(), "podman restart: {o:?}");
    let after = wait_unit(&c, "app", "running after the restart", |u| {
        u["state"] == "running" && u["since"] != before["since"]
    });
    assert!(after["pid"].as_i64().is_some(), "{after}");
}

#[test]
fn a_read_only_container_with_tmpfs_log_and_state_dirs_supervises() {
    // The README's recipe for `--read-only`.
    let d = Dirs::new();
    d.unit(
        "app",
        "exec = [\"sh\", \"-c\", \"echo ro-ok; exec sleep 1000\"]\n",
    );
    let c = d.start(
        "ro",
        &[
            "--read-only",
            "--tmpfs",
            "/var/log/colony",
            "--tmpfs",
            "/var/lib/colony",
        ],
    );
    running(&c, "app");
    wait_for("the unit's output in its log", SOON, || {
        let o = c.exec(&["colonyctl", "logs", "app"]);
        String::from_utf8_lossy(&o.stdout)
            .contains("ro-ok")
            .then_some(())
    });
}

#[test]
fn a_read_only_container_without_tmpfs_keeps_logs_in_the_run_directory() {
    // `--read-only` alone (podman mounts a tmpfs on /run): /var/log/colony cannot be made,
    // so logs and state go below /run/colony, and units still run with their logs.
    let d = Dirs::new();
    d.unit(
        "app",
        "exec = [\"sh\", \"-c\", \"echo ro-bare-ok; exec sleep 1000\"]\n",
    );
    let c = d.start("robare", &["--read-only"]);
    let app = running(&c, "app");
    assert!(
        app["log_file"]
            .as_str()
            .is_some_and(|f| f.starts_with("/run/colony/log/")),
        "{app}"
    );
    wait_for("the unit's output in its log", SOON, || {
        let o = c.exec(&["colonyctl", "logs", "app"]);
        String::from_utf8_lossy(&o.stdout)
            .contains("ro-bare-ok")
            .then_some(())
    });
}

// ---- unit output on colony-init's standard output (`podman logs`) ----

const WEB: &str = "exec = [\"sh\", \"-c\", \"echo hello; echo to-stderr >&2; exec sleep 1000\"]\n";
const QUIET: &str = "exec = [\"sh\", \"-c\", \"echo quiet-secret; exec sleep 1000\"]\n\
                     [log]\nconsole = false\n";

/// Wait until `colonyctl logs NAME` inside the container shows `text`: the line was read, so
/// its console copy (written before the log file) was made or skipped.
fn wait_unit_log(c: &Container, name: &str, text: &str) {
    wait_for(&format!("{text:?} in the log of {name}"), SOON, || {
        let o = c.exec(&["colonyctl", "logs", name]);
        String::from_utf8_lossy(&o.stdout)
            .contains(text)
            .then_some(())
    });
}

/// Write `marker` to colony-init's standard output from inside and wait for it in `podman
/// logs`: what colony-init wrote there before is in the logs by then (one pipe, in order).
fn sync_stdout(c: &Container, marker: &str) -> String {
    let o = c.exec(&["sh", "-c", &format!("echo {marker} > /proc/1/fd/1")]);
    assert!(o.status.success(), "{o:?}");
    c.wait_log(marker);
    c.logs().0
}

#[test]
fn unit_output_is_in_podman_logs_with_the_unit_name_unless_console_is_off() {
    let d = Dirs::new();
    d.unit("web", WEB);
    d.unit("quiet", QUIET);
    let c = d.start("conlog", &[]);
    c.wait_log("web| hello");
    c.wait_log("web| to-stderr");
    wait_unit_log(&c, "quiet", "quiet-secret");
    let out = sync_stdout(&c, "sync-marker");
    assert!(
        out.contains("web| hello\n"),
        "stdout of the container:\n{out}"
    );
    // No time stamp: podman adds its own.
    assert!(
        out.lines().any(|l| l == "web| hello"),
        "a bare line:\n{out}"
    );
    assert!(!out.contains("quiet-secret"), "console = false:\n{out}");
    // Still in its own log file.
    wait_unit_log(&c, "web", "hello");
}

#[test]
fn no_console_logs_keeps_unit_output_out_of_podman_logs() {
    let d = Dirs::new();
    d.unit("web", WEB);
    let m = d.mounts();
    let opts: Vec<&str> = m.iter().map(|s| s.as_str()).collect();
    let c = Container::start(
        "noconlog",
        &opts,
        &["/sbin/colony-init", "--no-console-logs"],
    );
    running(&c, "web");
    wait_unit_log(&c, "web", "hello");
    let out = sync_stdout(&c, "sync-marker");
    assert!(!out.contains("web| "), "--no-console-logs:\n{out}");
}

/// Outside a container the copy is off unless `--console-logs` asks for it; there, too,
/// `[log] console = false` keeps a unit out.
#[test]
fn console_logs_flag_copies_unit_output_in_plain_mode_too() {
    use colony_integration::Colony;
    for flag in [false, true] {
        let mut c = Colony::new();
        if flag {
            c.extra_args.push("--console-logs".into());
        }
        c.write_unit("web", WEB);
        c.write_unit("quiet", QUIET);
        let c = c.start();
        for (unit, text) in [("web", "to-stderr"), ("quiet", "quiet-secret")] {
            // The copy is written before the log file: once the file has the line, stdout
            // has its copy (or never will).
            let path = c.logs.join(format!("{unit}.log"));
            wait_for(&format!("{text} in {}", path.display()), SOON, || {
                let t = std::fs::read_to_string(&path).unwrap_or_default();
                t.contains(text).then_some(())
            });
        }
        let out = c.init_log();
        assert_eq!(
            out.contains("web| hello\n") && out.contains("web| to-stderr\n"),
            flag,
            "--console-logs {flag}:\n{out}"
        );
        assert!(!out.contains("quiet-secret"), "console = false:\n{out}");
    }
}

/// Standard output nobody reads (a stopped `podman logs -f`, a full pipe) never holds
/// colony-init up: the unit's lines all reach its log file, requests are answered, and the
/// copy says how many lines it dropped once there is room again.
#[test]
fn a_full_standard_output_never_blocks_colony_init() {
    use colony_integration::Colony;
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::io::BufRead;
    let mut c = Colony::new();
    c.extra_args.push("--console-logs".into());
    let go = c.dir.path().join("go");
    nix::unistd::mkfifo(&go, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    // 20,000 lines, far more than a pipe holds; then, once the test says so, one more.
    c.write_unit(
        "flood",
        &format!(
            "exec = [\"sh\", \"-c\", \"i=0; while [ $i -lt 20000 ]; do echo flood-line-$i; i=$((i+1)); done; \
             echo flood-done; read x < {}; echo after; exec sleep 1000\"]\n",
            go.display()
        ),
    );
    let (r, w) = std::io::pipe().expect("pipe");
    let err = std::fs::File::create(c.dir.path().join("colony-init.log")).expect("log");
    c.child = Some(c.command().stdout(w).stderr(err).spawn().expect("spawn"));
    let path = c.logs.join("flood.log");
    wait_for("every line in flood.log", SOON, || {
        let t = std::fs::read_to_string(&path).unwrap_or_default();
        t.contains("flood-done").then_some(())
    });
    // Nobody read the pipe, and colony-init still answers: lines were dropped, not waited for.
    let o = c.ctl(&["status"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let (mut copied, mut counted) = (0u64, 0u64);
    let mut tally = |line: &str| {
        if line.starts_with("flood| flood-") {
            copied += 1;
        } else if let Some(note) = line.strip_prefix("colony-init| ") {
            counted += note
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("a count: {line}"));
        }
        line == "flood| after\n"
    };
    // Empty the pipe (what it held), so that the drop count and the last line find room.
    let flags = fcntl(&r, FcntlArg::F_GETFL).expect("getfl");
    let nonblocking = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(&r, FcntlArg::F_SETFL(nonblocking)).expect("setfl");
    let mut r = std::io::BufReader::new(r);
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => panic!("EOF"),
            Ok(_) if line.ends_with('\n') => assert!(!tally(&line), "{line}"),
            Ok(_) => break, // a line cut by the end of what the pipe held: read on below
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("read: {e}"),
        }
    }
    fcntl(
        r.get_ref(),
        FcntlArg::F_SETFL(nonblocking - OFlag::O_NONBLOCK),
    )
    .expect("setfl");
    std::fs::write(&go, "go\n").expect("write go");
    loop {
        let n = r.read_line(&mut line).expect("read");
        assert!(n > 0, "EOF");
        let done = tally(&line);
        line.clear();
        if done {
            break;
        }
    }
    // Every line was written whole or counted as dropped, and some were dropped.
    assert!(
        counted > 0 && copied > 0,
        "{copied} copied, {counted} dropped"
    );
    assert_eq!(
        copied + counted,
        20_001,
        "{copied} copied, {counted} dropped"
    );
}

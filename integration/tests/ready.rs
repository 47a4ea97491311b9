//! Readiness (`[ready]`: notify, tcp, file, timeout), the sd_notify protocol, the watchdog
//! and `[health]` checks, with real daemons (redis-server, PostgreSQL) and real servers.
//!
//! Needs the Debian packages `redis-server`, `postgresql` (15) and `python3`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use colony_integration::{wait_for, Colony, SOON};
use serde_json::Value;

const PY: &str = "/usr/bin/python3";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `exec = [python3, -c, SCRIPT]` (the scripts use no single quotes).
fn py(script: &str) -> String {
    assert!(!script.contains("'''"));
    format!("exec = [\"{PY}\", \"-c\", '''{script}''']\n")
}

fn sh(script: &str) -> String {
    format!("exec = [\"/bin/sh\", \"-c\", '''{script}''']\n")
}

/// Python that sends its argument to NOTIFY_SOCKET.
const SEND: &str = "import os, socket\ndef send(m):\n    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n    s.sendto(m if isinstance(m, bytes) else m.encode(), os.environ[\"NOTIFY_SOCKET\"])\n    s.close()\n";

fn read_when(path: &Path, what: &str) -> String {
    wait_for(what, SOON, || {
        std::fs::read_to_string(path)
            .ok()
            .filter(|t| t.ends_with('\n'))
    })
}

fn rfc3339_ms(v: &Value) -> i64 {
    // "2026-11-23T13:45:01.123Z" -> milliseconds of the day, enough to order two events.
    let s = v.as_str().unwrap_or_default();
    let t = s
        .split('T')
        .nth(1)
        .unwrap_or_default()
        .trim_end_matches('Z');
    let mut parts = t.split(':');
    let h: i64 = parts.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    let m: i64 = parts.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    let sec: f64 = parts.next().and_then(|x| x.parse().ok()).unwrap_or(0.0);
    (h * 3600 + m * 60) * 1000 + (sec * 1000.0) as i64
}

/// The units run as other users too: let them reach RUN/notify and their files.
fn open_up(c: &Colony) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(c.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn redis_as_a_notify_unit_gates_its_dependent() {
    let c = Colony::new();
    let port = free_port();
    let data = c.dir.path().join("redis");
    std::fs::create_dir_all(&data).unwrap();
    let out = c.dir.path().join("dep.out");
    c.write_unit(
        "redis",
        &format!(
            "exec = [\"/usr/bin/redis-server\", \"--port\", \"{port}\", \"--bind\", \"127.0.0.1\", \"--supervised\", \"systemd\", \"--daemonize\", \"no\", \"--save\", \"\", \"--appendonly\", \"no\", \"--dir\", \"{}\"]\n[ready]\ntype = \"notify\"\ntimeout = \"30s\"\n",
            data.display()
        ),
    );
    // Asks redis itself at its start: only an accepting redis answers PONG.
    c.write_unit(
        "app",
        &format!(
            "after = [\"redis\"]\n{}",
            py(&format!(
                "import socket, time\ntry:\n    s = socket.create_connection((\"127.0.0.1\", {port}), 2)\n    s.sendall(b\"PING\\r\\n\")\n    r = s.recv(64).decode().strip()\nexcept Exception as e:\n    r = \"error \" + type(e).__name__\nopen(\"{}\", \"w\").write(r + \"\\n\")\ntime.sleep(1000)\n",
                out.display()
            ))
        ),
    );
    let c = c.start();
    let r = c.wait_unit("redis", "up", |u| {
        u["state"] == "running" && u["ready"] == true
    });
    let text = r["status_text"].as_str().unwrap_or_default().to_string();
    assert!(text.contains("Ready to accept connections"), "{r}");
    assert_eq!(read_when(&out, "the dependent's PING"), "+PONG\n");
    let a = c.wait_state("app", "running");
    assert!(
        rfc3339_ms(&a["since"]) >= rfc3339_ms(&r["since"]),
        "{a} {r}"
    );
    // colonyctl shows the status text.
    let o = c.ctl(&["status", "redis"]);
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(shown.contains("Ready to accept connections"), "{shown}");
}

#[test]
fn postgresql_as_user_postgres_is_a_notify_unit() {
    let c = Colony::new();
    open_up(&c);
    let port = free_port();
    let pg = c.dir.path().join("pg");
    let sock = c.dir.path().join("pgsock");
    for d in [&pg, &sock] {
        std::fs::create_dir_all(d).unwrap();
        let st = Command::new("chown")
            .arg("postgres:postgres")
            .arg(d)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let st = Command::new("runuser")
        .args(["-u", "postgres", "--", "/usr/lib/postgresql/15/bin/initdb"])
        .args(["-A", "trust", "-U", "postgres", "-D"])
        .arg(pg.join("data"))
        .stdout(std::process::Stdio::null())
        .status()
        .expect("initdb");
    assert!(st.success(), "initdb failed");
    let out = c.dir.path().join("psql.out");
    c.write_unit(
        "db",
        &format!(
            "exec = [\"/usr/lib/postgresql/15/bin/postgres\", \"-D\", \"{}\", \"-p\", \"{port}\", \"-k\", \"{}\", \"-c\", \"listen_addresses=127.0.0.1\"]\nuser = \"postgres\"\n[ready]\ntype = \"notify\"\ntimeout = \"60s\"\n[stop]\nsignal = \"SIGINT\"\n",
            pg.join("data").display(),
            sock.display()
        ),
    );
    c.write_unit(
        "client",
        &format!(
            "after = [\"db\"]\n{}",
            sh(&format!(
                "/usr/lib/postgresql/15/bin/psql -h 127.0.0.1 -p {port} -U postgres -tAc \"select 40+2\" > {out}.tmp 2>&1; mv {out}.tmp {out}; exec sleep 1000",
                out = out.display()
            ))
        ),
    );
    let c = c.start();
    c.wait_unit("db", "up", |u| {
        u["state"] == "running" && u["ready"] == true
    });
    let got = read_when(&out, "psql's answer");
    assert_eq!(got, "42\n", "{}", c.init_log());
}

#[test]
fn a_forged_ready_from_outside_the_unit_is_ignored() {
    let c = Colony::new();
    c.write_unit(
        "slow",
        &format!(
            "{}[ready]\ntype = \"notify\"\ntimeout = \"60s\"\n",
            sh("exec sleep 1000")
        ),
    );
    let c = c.start();
    c.wait_state("slow", "starting");
    // The test process is in no unit: its READY=1 must not count.
    let st = Command::new(PY)
        .arg("-c")
        .arg(format!(
            "import socket\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.sendto(b\"READY=1\\nSTATUS=forged\", \"{}\")",
            c.run.join("notify").display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    wait_for("colony-init to log the dropped message", SOON, || {
        c.init_log().contains("sender is in no unit").then_some(())
    });
    let u = c.unit_typed("slow").unwrap();
    assert_eq!(u.state, "starting", "{u:?}");
    assert!(!u.ready, "{u:?}");
    assert_eq!(u.status_text, None, "{u:?}");
}

#[test]
fn a_short_lived_sender_inside_the_unit_counts_and_junk_is_harmless() {
    let c = Colony::new();
    let out = c.dir.path().join("dep.out");
    // Each message from its own python process that exits at once (as systemd-notify
    // does), so it is often gone before colony-init reads it.
    let sender = c.dir.path().join("send.py");
    std::fs::write(
        &sender,
        format!(
            "{SEND}import sys\nm = sys.argv[1]\nif m == \"binary\":\n    send(b\"\\x00\\xff\\x01READY=1\")\nelif m == \"oversize\":\n    send(b\"READY=1\\n\" + b\"x\" * 70000)\nelif m == \"outside\":\n    send(\"STATUS=one\\nMAINPID=1\\n\")\nelse:\n    send(\"STATUS=all good\\nREADY=1\")\n"
        ),
    )
    .unwrap();
    let run = |m: &str| format!("{PY} {} {m}", sender.display());
    let script = format!(
        "{}; {}; {}; {}; exec sleep 1000",
        run("binary"),
        run("oversize"),
        run("outside"),
        run("ready")
    );
    c.write_unit(
        "multi",
        &format!(
            "{}[ready]\ntype = \"notify\"\ntimeout = \"60s\"\n",
            sh(&script)
        ),
    );
    c.write_unit(
        "after-multi",
        &format!(
            "after = [\"multi\"]\n{}",
            sh(&format!(
                "echo started > {}; exec sleep 1000",
                out.display()
            ))
        ),
    );
    let c = c.start();
    let u = c.wait_unit("multi", "up", |u| u["ready"] == true);
    assert_eq!(u["status_text"], "all good", "{u}");
    assert_ne!(u["pid"], 1, "MAINPID=1 is outside the unit: {u}");
    assert_eq!(read_when(&out, "the dependent"), "started\n");
    let log = c.init_log();
    assert!(log.contains("oversize datagram"), "{log}");
    assert!(log.contains("malformed datagram"), "{log}");
    assert!(log.contains("outside the unit"), "{log}");
}

#[test]
fn a_hung_start_hits_ready_timeout_and_start_fails() {
    let c = Colony::new();
    c.write_unit(
        "hung",
        &format!(
            "{}enabled = false\n[ready]\ntype = \"notify\"\ntimeout = \"500ms\"\n[restart]\npolicy = \"never\"\n",
            sh("exec sleep 1000")
        ),
    );
    let c = c.start();
    let t0 = Instant::now();
    let o = c.ctl(&["start", "hung"]);
    assert_ne!(o.status.code(), Some(0), "start of a hung unit must fail");
    assert!(t0.elapsed() >= Duration::from_millis(450));
    let err = String::from_utf8_lossy(&o.stderr);
    let u = c.wait_unit("hung", "failed", |u| u["state"] == "failed");
    assert_eq!(u["last_exit"]["reason"], "ready_timeout", "{u} {err}");
}

#[test]
fn colonyctl_start_returns_when_up() {
    let c = Colony::new();
    c.write_unit(
        "later",
        &format!(
            "{}enabled = false\n[ready]\ntype = \"notify\"\n",
            py(&format!(
                "{SEND}import time\ntime.sleep(0.7)\nsend(\"READY=1\")\ntime.sleep(1000)\n"
            ))
        ),
    );
    let c = c.start();
    let t0 = Instant::now();
    let o = c.ctl(&["start", "later"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(650),
        "{:?}",
        t0.elapsed()
    );
    let u = c.unit_typed("later").unwrap();
    assert_eq!(u.state, "running", "{u:?}");
    assert!(u.ready, "{u:?}");
}

#[test]
fn the_watchdog_restarts_a_unit_that_stops_pinging() {
    let c = Colony::new();
    let env_out = c.dir.path().join("env.out");
    // Pings 5 times every 100ms, then hangs.
    c.write_unit(
        "dog",
        &format!(
            "{}[ready]\ntype = \"notify\"\nwatchdog = \"500ms\"\n[restart]\ndelay_min = \"100ms\"\n",
            py(&format!(
                "{SEND}import os, time\nopen(\"{}\", \"w\").write(os.environ.get(\"WATCHDOG_USEC\", \"-\") + \" \" + str(os.environ.get(\"WATCHDOG_PID\") == str(os.getpid())) + \"\\n\")\nsend(\"READY=1\")\nfor i in range(5):\n    send(\"WATCHDOG=1\")\n    time.sleep(0.1)\ntime.sleep(1000)\n",
                env_out.display()
            ))
        ),
    );
    // Pings forever: never restarted.
    c.write_unit(
        "good-dog",
        &format!(
            "{}[ready]\ntype = \"notify\"\nwatchdog = \"500ms\"\n",
            py(&format!("{SEND}import time\nsend(\"READY=1\")\nwhile True:\n    send(\"WATCHDOG=1\")\n    time.sleep(0.1)\n"))
        ),
    );
    // Asks to be restarted.
    c.write_unit(
        "trigger",
        &format!(
            "{}[ready]\ntype = \"notify\"\nwatchdog = \"60s\"\n[restart]\ndelay_min = \"100ms\"\n",
            py(&format!("{SEND}import time\nsend(\"READY=1\")\ntime.sleep(0.3)\nsend(\"WATCHDOG=trigger\")\ntime.sleep(1000)\n"))
        ),
    );
    let c = c.start();
    // WATCHDOG_PID is the program's own pid (exec keeps the pid).
    assert_eq!(read_when(&env_out, "WATCHDOG_USEC"), "500000 True\n");
    let u = c.wait_unit("dog", "restarted by the watchdog", |u| {
        u["restarts"].as_u64() >= Some(1)
    });
    assert_eq!(u["last_exit"]["reason"], "watchdog", "{u}");
    let t = c.wait_unit("trigger", "restarted on WATCHDOG=trigger", |u| {
        u["restarts"].as_u64() >= Some(1)
    });
    assert_eq!(t["last_exit"]["reason"], "watchdog", "{t}");
    let g = c.unit("good-dog").unwrap();
    assert_eq!(g["restarts"], 0, "{g}");
    assert_eq!(g["state"], "running", "{g}");
}

/// A tiny HTTP server: /healthz answers 200, or 500 once FLAG exists.
fn web_unit(port: u16, flag: &Path, extra: &str) -> String {
    format!(
        "{}{extra}",
        py(&format!(
            "import http.server, os\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        bad = os.path.exists(\"{}\")\n        self.send_response(500 if bad else 200)\n        self.send_header(\"Content-Length\", \"0\")\n        self.end_headers()\n    def log_message(self, *a):\n        pass\nhttp.server.HTTPServer((\"127.0.0.1\", {port}), H).serve_forever()\n",
            flag.display()
        ))
    )
}

#[test]
fn a_failing_http_health_check_restarts_after_max_bad_and_a_good_one_is_left_alone() {
    let c = Colony::new();
    let (p1, p2) = (free_port(), free_port());
    let flag = c.dir.path().join("break-it");
    let never = c.dir.path().join("never");
    let health = |p: u16| {
        format!("[ready]\ntype = \"tcp\"\naddress = \"127.0.0.1:{p}\"\n[health]\nhttp = \"http://127.0.0.1:{p}/healthz\"\nperiod = \"200ms\"\ntimeout = \"1s\"\nmax_bad = 3\ngrace = \"0s\"\n[restart]\ndelay_min = \"100ms\"\n")
    };
    c.write_unit("web", &web_unit(p1, &flag, &health(p1)));
    c.write_unit("steady", &web_unit(p2, &never, &health(p2)));
    let c = c.start();
    c.wait_unit("web", "healthy", |u| u["health"] == "good");
    c.wait_unit("steady", "healthy", |u| u["health"] == "good");
    let pid0 = c.unit("web").unwrap()["pid"].clone();
    std::fs::write(&flag, b"").unwrap();
    let u = c.wait_unit("web", "restarted for health", |u| {
        u["restarts"].as_u64() >= Some(1)
    });
    assert_eq!(u["last_exit"]["reason"], "health", "{u}");
    // It went through "bad 1".."bad 3" (the last check before the restart).
    assert!(
        c.init_log().contains("health check bad"),
        "{}",
        c.init_log()
    );
    // Fix it: the restarted one comes up healthy again.
    std::fs::remove_file(&flag).unwrap();
    let u = c.wait_unit("web", "healthy again", |u| u["health"] == "good");
    assert_ne!(u["pid"], pid0);
    let s = c.unit("steady").unwrap();
    assert_eq!(s["restarts"], 0, "{s}");
    assert_eq!(s["health"], "good", "{s}");
}

#[test]
fn exec_and_tcp_health_checks() {
    let c = Colony::new();
    let port = free_port();
    let flag = c.dir.path().join("bad");
    c.write_unit(
        "ex",
        &format!(
            "{}[health]\nexec = [\"/bin/sh\", \"-c\", \"test ! -e {}\"]\nperiod = \"200ms\"\ntimeout = \"2s\"\nmax_bad = 2\ngrace = \"0s\"\n",
            sh("exec sleep 1000"),
            flag.display()
        ),
    );
    c.write_unit(
        "tcpcheck",
        &format!(
            "{}[health]\ntcp = \"127.0.0.1:{port}\"\nperiod = \"200ms\"\ntimeout = \"1s\"\nmax_bad = 1000\ngrace = \"0s\"\n",
            sh("exec sleep 1000")
        ),
    );
    let c = c.start();
    c.wait_unit("ex", "healthy", |u| u["health"] == "good");
    // Nothing listens on the port: bad, counting up.
    c.wait_unit("tcpcheck", "bad", |u| u["health"] == "bad 2");
    std::fs::write(&flag, b"").unwrap();
    let u = c.wait_unit("ex", "restarted", |u| u["restarts"].as_u64() >= Some(1));
    assert_eq!(u["last_exit"]["reason"], "health", "{u}");
}

/// A check's host is an IP address or a name in /etc/hosts (`localhost` here); any other name
/// is a bad check that says why, and colony-init never blocks on a DNS lookup.
#[test]
fn health_check_names_come_from_etc_hosts_never_from_dns() {
    let c = Colony::new();
    let port = free_port();
    let never = c.dir.path().join("never");
    c.write_unit(
        "local",
        &web_unit(
            port,
            &never,
            &format!("[health]\nhttp = \"http://localhost:{port}/healthz\"\nperiod = \"200ms\"\ntimeout = \"1s\"\ngrace = \"0s\"\n"),
        ),
    );
    c.write_unit(
        "remote",
        &format!(
            "{}[health]\ntcp = \"colony-test.invalid:80\"\nperiod = \"200ms\"\ntimeout = \"1s\"\nmax_bad = 1000\ngrace = \"0s\"\n",
            sh("exec sleep 1000")
        ),
    );
    let c = c.start();
    c.wait_unit("local", "healthy", |u| u["health"] == "good");
    c.wait_unit("remote", "bad", |u| u["health"] == "bad 2");
    let log = c.init_log();
    assert!(log.contains("never waits on DNS"), "{log}");
}

#[test]
fn tcp_readiness_gates_the_dependent() {
    let c = Colony::new();
    let port = free_port();
    let out = c.dir.path().join("dep.out");
    c.write_unit(
        "listener",
        &format!(
            "{}[ready]\ntype = \"tcp\"\naddress = \"127.0.0.1:{port}\"\ntimeout = \"30s\"\n",
            py(&format!("import socket, time\ntime.sleep(0.5)\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind((\"127.0.0.1\", {port}))\ns.listen(16)\nwhile True:\n    c, _ = s.accept()\n    c.close()\n"))
        ),
    );
    c.write_unit(
        "user",
        &format!(
            "after = [\"listener\"]\n{}",
            py(&format!(
                "import socket, time\ntry:\n    socket.create_connection((\"127.0.0.1\", {port}), 2).close()\n    r = \"connected\"\nexcept Exception as e:\n    r = type(e).__name__\nopen(\"{}\", \"w\").write(r + \"\\n\")\ntime.sleep(1000)\n",
                out.display()
            ))
        ),
    );
    let c = c.start();
    let l = c.wait_unit("listener", "up", |u| u["ready"] == true);
    assert_eq!(l["state"], "running");
    assert_eq!(read_when(&out, "the dependent"), "connected\n");
}

#[test]
fn file_readiness_gates_the_dependent() {
    let c = Colony::new();
    let ready = c.dir.path().join("made/later/ready");
    let out = c.dir.path().join("dep.out");
    c.write_unit(
        "maker",
        &format!(
            "{}[ready]\ntype = \"file\"\npath = \"{}\"\ntimeout = \"30s\"\n",
            sh(&format!(
                "sleep 0.4; mkdir -p {d}; touch {f}; exec sleep 1000",
                d = ready.parent().unwrap().display(),
                f = ready.display()
            )),
            ready.display()
        ),
    );
    c.write_unit(
        "reader",
        &format!(
            "after = [\"maker\"]\n{}",
            sh(&format!(
                "if test -e {}; then echo there; else echo missing; fi > {}; exec sleep 1000",
                ready.display(),
                out.display()
            ))
        ),
    );
    let c = c.start();
    assert_eq!(read_when(&out, "the dependent"), "there\n");
    let m = c.unit("maker").unwrap();
    assert_eq!(m["ready"], true, "{m}");
}

#[test]
fn extend_timeout_and_mainpid_inside_the_unit() {
    let c = Colony::new();
    let child_out = c.dir.path().join("child.pid");
    // Asks for more time than `[ready] timeout`, is up later than that, then names a
    // child of its own as the main process.
    c.write_unit(
        "slowstart",
        &format!(
            "{}[ready]\ntype = \"notify\"\ntimeout = \"500ms\"\n[restart]\npolicy = \"never\"\n",
            py(&format!(
                "{SEND}import subprocess, time\nsend(\"EXTEND_TIMEOUT_USEC=5000000\")\ntime.sleep(1.2)\np = subprocess.Popen([\"sleep\", \"1000\"])\nsend(\"MAINPID=%d\\nREADY=1\" % p.pid)\nopen(\"{}\", \"w\").write(\"%d\\n\" % p.pid)\ntime.sleep(1000)\n",
                child_out.display()
            ))
        ),
    );
    let c = c.start();
    let child: i64 = read_when(&child_out, "the child's pid")
        .trim()
        .parse()
        .unwrap();
    let u = c.wait_unit("slowstart", "up", |u| u["ready"] == true);
    assert_eq!(u["state"], "running", "{u}");
    assert_eq!(u["restarts"], 0, "{u}");
    assert!(u["last_exit"].is_null(), "{u}");
    let u = c.wait_unit("slowstart", "showing MAINPID", |u| u["pid"] == child);
    assert_eq!(u["pid"], child);
}

/// Where units get no cgroup (no cgroupfs: a tmpfs over /sys/fs/cgroup in a mount namespace
/// of colony-init's own), a live sender counts by its session; a forged one still does not.
#[test]
fn without_cgroups_a_live_sender_counts_by_its_session() {
    let mut c = Colony::new();
    let out = c.dir.path().join("dep.out");
    c.write_unit(
        "nocg",
        &format!(
            "{}[ready]\ntype = \"notify\"\ntimeout = \"30s\"\n",
            // A grandchild of the main process sends, and lives on.
            sh(&format!(
                "{PY} -c \"import os, socket, time; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b\\\"STATUS=no cgroups\\\\nREADY=1\\\", os.environ[\\\"NOTIFY_SOCKET\\\"]); time.sleep(1000)\" & exec sleep 1000"
            ))
        ),
    );
    c.write_unit(
        "dep",
        &format!(
            "after = [\"nocg\"]\n{}",
            sh(&format!(
                "echo started > {}; exec sleep 1000",
                out.display()
            ))
        ),
    );
    let inner = c.command();
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
        .arg("mount -t tmpfs none /sys/fs/cgroup && exec \"$0\" \"$@\"")
        .arg(inner.get_program())
        .args(inner.get_args())
        .stdin(std::process::Stdio::null());
    let log = std::fs::File::create(c.dir.path().join("colony-init.log")).unwrap();
    cmd.stdout(log.try_clone().unwrap()).stderr(log);
    c.child = Some(cmd.spawn().expect("unshare colony-init"));
    wait_for("colony-init to answer", SOON, || {
        (c.ctl(&["status"]).status.code() != Some(5)).then_some(())
    });
    let u = c.wait_unit("nocg", "up", |u| u["ready"] == true);
    assert_eq!(u["status_text"], "no cgroups", "{u}");
    assert!(u["cgroup"].is_null(), "no cgroup expected: {u}");
    assert_eq!(read_when(&out, "the dependent"), "started\n");
    // The test process is in no unit's session.
    let st = Command::new(PY)
        .arg("-c")
        .arg(format!(
            "import socket\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.sendto(b\"STATUS=forged\", \"{}\")",
            c.run.join("notify").display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    wait_for("the forged message to be dropped", SOON, || {
        c.init_log().contains("sender is in no unit").then_some(())
    });
    assert_eq!(c.unit("nocg").unwrap()["status_text"], "no cgroups");
}

/// Write one command line into a unit's FIFO (once the unit reads it).
fn tell(fifo: &Path, line: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = wait_for("the unit to read its FIFO", SOON, || {
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
            .ok()
    });
    f.write_all(format!("{line}\n").as_bytes()).unwrap();
}

/// A notify unit that sends what the test tells it through a FIFO: `RELOADING=1` makes it
/// running but not ready (its dependent left alone, a new one waits), `READY=1` ends that;
/// `STOPPING=1` makes it `stopping` with no signal sent, and its exit is expected.
#[test]
fn reloading_and_stopping_from_a_notify_unit() {
    let c = Colony::new();
    let fifo = c.dir.path().join("rl.fifo");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let term = c.dir.path().join("rl.term");
    let again = c.dir.path().join("rl.again");
    let late_out = c.dir.path().join("late.out");
    c.write_unit(
        "rl",
        &format!(
            "{}[ready]\ntype = \"notify\"\ntimeout = \"30s\"\n[restart]\npolicy = \"on-failure\"\n",
            py(&format!(
                "{SEND}import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: open(\"{term}\", \"w\").write(\"term\\n\"))\nsend(\"READY=1\")\nwhile True:\n    for line in open(\"{fifo}\"):\n        c = line.strip()\n        if c == \"reload\":\n            send(\"RELOADING=1\\nSTATUS=reloading\")\n        elif c == \"ready\":\n            open(\"{again}\", \"w\").write(repr(time.time()) + \"\\n\")\n            send(\"STATUS=up\\nREADY=1\")\n        elif c == \"stop\":\n            send(\"STOPPING=1\")\n        elif c == \"exit\":\n            sys.exit(0)\n",
                term = term.display(),
                fifo = fifo.display(),
                again = again.display(),
            ))
        ),
    );
    c.write_unit(
        "app",
        &format!("after = [\"rl\"]\n{}", sh("exec sleep 1000")),
    );
    c.write_unit(
        "late",
        &format!(
            "requires = [\"rl\"]\nenabled = false\n{}",
            py(&format!(
                "import time\nopen(\"{}\", \"w\").write(repr(time.time()) + \"\\n\")\ntime.sleep(1000)\n",
                late_out.display()
            ))
        ),
    );
    let c = c.start();
    c.wait_unit("rl", "up", |u| u["ready"] == true);
    let app = c.wait_state("app", "running");

    tell(&fifo, "reload");
    let u = c.wait_unit("rl", "reloading", |u| u["ready"] == false);
    assert_eq!(u["state"], "running", "{u}");
    assert_eq!(u["status_text"], "reloading", "{u}");
    assert_eq!(u["restarts"], 0, "{u}");
    let o = c.ctl(&["status", "rl"]);
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(shown.contains("running (reloading)"), "{shown}");
    // A dependent started now waits for the reload to end.
    let mut start = Command::new(colony_integration::bin("colonyctl"))
        .arg("--run-dir")
        .arg(&c.run)
        .args(["start", "late"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("colonyctl start late");
    let l = c.wait_unit("late", "waiting for rl", |u| u["state"] == "stopped");
    assert!(l["pid"].is_null(), "{l}");
    assert!(start.try_wait().unwrap().is_none(), "start returned early");
    tell(&fifo, "ready");
    let st = start.wait().unwrap();
    assert!(st.success(), "start late failed");
    let again: f64 = read_when(&again, "the reload's end")
        .trim()
        .parse()
        .unwrap();
    let late: f64 = read_when(&late_out, "late's start").trim().parse().unwrap();
    assert!(
        late >= again,
        "late started at {late}, before rl was up at {again}"
    );
    let u = c.wait_unit("rl", "up again", |u| u["ready"] == true);
    assert_eq!(u["state"], "running", "{u}");
    assert_eq!(u["status_text"], "up", "{u}");
    let a = c.unit("app").unwrap();
    assert_eq!(a["pid"], app["pid"], "the dependent was left alone: {a}");
    assert_eq!(a["state"], "running", "{a}");

    tell(&fifo, "stop");
    let u = c.wait_unit("rl", "stopping", |u| u["state"] == "stopping");
    assert_eq!(u["ready"], false, "{u}");
    assert!(!u["pid"].is_null(), "still running: {u}");
    tell(&fifo, "exit");
    let u = c.wait_unit_typed("rl", "exited", |u| u.state == "exited");
    let last = u.last_exit.clone().unwrap_or_default();
    assert_eq!(last.code, Some(0), "{u:?}");
    assert_eq!(last.reason.as_deref(), Some("stopped"), "{u:?}");
    assert_eq!(u.restarts, 0, "{u:?}");
    assert!(!term.exists(), "no stop signal was sent to it");
    let a = c.unit("app").unwrap();
    assert_eq!(a["pid"], app["pid"], "{a}");
}

/// A program that sends READY=1 as its very first act: a static C binary built here (no
/// interpreter start-up to hide the race between its datagram and its exec report).
const FAST_READY_C: &str = r#"
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(void) {
    const char *p = getenv("NOTIFY_SOCKET");
    if (!p) return 3;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strncpy(a.sun_path, p, sizeof a.sun_path - 1);
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (sendto(s, "READY=1", 7, 0, (struct sockaddr *)&a, sizeof a) != 7) return 4;
    for (;;) pause();
}
"#;

#[test]
fn ready_sent_at_once_after_exec_is_never_lost() {
    let c = Colony::new();
    let Some(bin) = colony_integration::compile_c(c.dir.path(), "fast_ready", FAST_READY_C) else {
        return;
    };
    // Many at once: the loop is busy starting them while the first ones already send
    // READY=1, so datagrams and exec reports land in the same turns in any order.
    let n = 40;
    for i in 0..n {
        c.write_unit(
            &format!("fast{i}"),
            &format!(
                "exec = [\"{}\"]\n[ready]\ntype = \"notify\"\ntimeout = \"60s\"\n",
                bin.display()
            ),
        );
    }
    let c = c.start();
    let all = wait_for("every unit ready", SOON, || {
        let all = c.status();
        let ready = all
            .iter()
            .filter(|u| u["state"] == "running" && u["ready"] == true)
            .count();
        (all.len() == n && ready == n).then_some(all)
    });
    assert!(all.iter().all(|u| u["restarts"] == 0), "{all:?}");
    assert!(
        !c.init_log().contains("sender is in no unit"),
        "a READY=1 was dropped"
    );
}

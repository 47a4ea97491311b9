//! `[socket]` with a real server that takes its socket from `LISTEN_FDS`: no connection is
//! lost across restarts, and an `on_demand` unit starts at its first connection.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use colony_integration::{wait_for, Colony, SOON};
use serde_json::Value;

/// A server of fd 3 (checked against LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES): each
/// connection gets "ok PID NAMES". SIGTERM only sets a flag, seen between two connections,
/// so a stop never ends one half served; waiting ones stay in the backlog.
const SERVER: &str = r#"
import os, select, signal, socket
assert os.environ["LISTEN_PID"] == str(os.getpid()), "LISTEN_PID"
assert os.environ["LISTEN_FDS"] == "1", "LISTEN_FDS"
names = os.environ["LISTEN_FDNAMES"]
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
r, w = os.pipe()
os.set_blocking(w, False)
signal.set_wakeup_fd(w)
s = socket.socket(fileno=3)
while not stop:
    ready, _, _ = select.select([s, r], [], [])
    if s in ready:
        conn, _ = s.accept()
        with conn:
            conn.makefile().readline()
            conn.sendall(("ok %d %s\n" % (os.getpid(), names)).encode())
"#;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unit_text(c: &Colony, port: u16, on_demand: bool) -> String {
    let script = c.dir.path().join("server.py");
    std::fs::write(&script, SERVER).unwrap();
    format!(
        "exec = [\"/usr/bin/python3\", \"{}\"]\n[socket]\nlisten = [\"tcp:127.0.0.1:{port}\"]\non_demand = {on_demand}\n",
        script.display()
    )
}

/// One request: the server's answer line.
fn ask(port: u16) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"hi\n").map_err(|e| format!("write: {e}"))?;
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .map_err(|e| format!("read: {e}"))?;
    if line.starts_with("ok ") {
        Ok(line)
    } else {
        Err(format!("answer {line:?}"))
    }
}

fn pid_of(u: &Value) -> i64 {
    u["pid"].as_i64().unwrap_or(0)
}

#[test]
fn no_connection_is_lost_across_twenty_restarts() {
    let c = Colony::new();
    let port = free_port();
    c.write_unit("web", &unit_text(&c, port, false));
    let c = c.start();
    let first = c.wait_unit("web", "running", |u| u["state"] == "running");
    let answer = ask(port).unwrap();
    assert!(
        answer.ends_with(&format!(" tcp_127.0.0.1_{port}\n")),
        "{answer}"
    );

    // A steady stream of clients, bounded in count and time.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU32::new(0));
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            let served = served.clone();
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0u32, Vec::new());
                let since = Instant::now();
                while !stop.load(Ordering::Relaxed)
                    && ok < 20_000
                    && since.elapsed() < Duration::from_secs(120)
                {
                    match ask(port) {
                        Ok(_) => {
                            ok += 1;
                            served.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => failed.push(e),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let mut pid = pid_of(&first);
    let mut pids = vec![pid];
    for i in 0..20 {
        let o = c.ctl(&["restart", "web"]);
        assert!(o.status.success(), "restart {i}: {o:?}");
        let u = c.wait_unit("web", "a new pid", |u| {
            u["state"] == "running" && pid_of(u) != pid && pid_of(u) != 0
        });
        pid = pid_of(&u);
        pids.push(pid);
        // Clients are served by this run before the next restart.
        let n = served.load(Ordering::SeqCst);
        wait_for("a request served by the new run", SOON, || {
            (served.load(Ordering::SeqCst) > n + 2).then_some(())
        });
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for t in clients {
        let (ok, failed) = t.join().unwrap();
        assert!(
            failed.is_empty(),
            "{} failed: {:?}",
            failed.len(),
            &failed[..failed.len().min(5)]
        );
        total += ok;
    }
    assert!(total > 60, "only {total} requests were made");
    assert_eq!(pids.len(), 21);
    eprintln!("{total} requests over 20 restarts, none lost");
}

#[test]
fn an_on_demand_unit_starts_at_its_first_connection() {
    let c = Colony::new();
    let port = free_port();
    c.write_unit("lazy", &unit_text(&c, port, true));
    let c = c.start();
    // Loaded, its socket listening (seen in /proc, as a connection would start it), but
    // not started.
    let hex = format!(":{port:04X} ");
    wait_for("the socket to listen", SOON, || {
        let t = std::fs::read_to_string("/proc/net/tcp").ok()?;
        t.lines()
            .any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && format!("{} ", f[1]).ends_with(&hex) && f[3] == "0A"
            })
            .then_some(())
    });
    let u = c.unit("lazy").unwrap();
    assert_eq!(u["state"], "stopped", "{u}");
    assert_eq!(pid_of(&u), 0, "{u}");
    let answer = ask(port).unwrap();
    let u = c.wait_state("lazy", "running");
    assert!(
        answer.starts_with(&format!("ok {} ", pid_of(&u))),
        "{answer} {u}"
    );
}

/// The inode of each socket colony-init (`pid`) holds, from its fd table.
fn socket_inodes(pid: i32) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .filter(|l| l.starts_with("socket:"))
        .collect();
    v.sort();
    v
}

#[test]
fn listening_sockets_are_kept_across_a_reexec() {
    let c = Colony::new();
    let (port, lazy_port) = (free_port(), free_port());
    c.write_unit("web", &unit_text(&c, port, false));
    c.write_unit("lazy", &unit_text(&c, lazy_port, true));
    let c = c.start();
    let u = c.wait_state("web", "running");
    ask(port).unwrap();
    let before = socket_inodes(c.pid());
    // Connections go on while colony-init re-executes itself.
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u32, Vec::new());
            let since = Instant::now();
            while !stop.load(Ordering::Relaxed) && since.elapsed() < Duration::from_secs(60) {
                match ask(port) {
                    Ok(_) => ok += 1,
                    Err(e) => failed.push(e),
                }
            }
            (ok, failed)
        })
    };
    let o = c.ctl(&["reexec"]);
    assert!(o.status.success(), "{o:?}\n{}", c.init_log());
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = client.join().unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(ok > 0);
    // The same sockets (by inode), the same server.
    let after = socket_inodes(c.pid());
    for s in &before {
        assert!(after.contains(s), "{s} not kept: {before:?} -> {after:?}");
    }
    assert_eq!(pid_of(&c.unit("web").unwrap()), pid_of(&u));
    // The on_demand unit is still waiting, and its socket still watched.
    assert_eq!(c.unit("lazy").unwrap()["state"], "stopped");
    ask(lazy_port).unwrap();
    c.wait_state("lazy", "running");
}

#[test]
fn a_unix_socket_is_made_with_its_mode_and_served() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream;
    let c = Colony::new();
    let path = c.dir.path().join("sock").join("app.sock");
    let script = c.dir.path().join("server.py");
    std::fs::write(&script, SERVER).unwrap();
    c.write_unit(
        "unixy",
        &format!(
            "exec = [\"/usr/bin/python3\", \"{}\"]\n[socket]\nlisten = [\"unix:{}\"]\nmode = \"0600\"\n",
            script.display(),
            path.display()
        ),
    );
    let c = c.start();
    c.wait_state("unixy", "running");
    let m = std::fs::symlink_metadata(&path).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o600);
    let mut s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"hi\n").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    assert!(line.starts_with("ok "), "{line}");
    // Gone with the unit.
    c.remove_unit("unixy");
    wait_for("the socket file removed with its unit", SOON, || {
        (!path.exists()).then_some(())
    });
}

/// More sockets than the child's spare fd slots (it then gets a copy of colony-init's fd
/// table): all of them still arrive at 3.., in order, and nothing else does.
#[test]
fn many_sockets_arrive_in_order_at_fd_3_and_up() {
    let c = Colony::new();
    let ports: Vec<u16> = (0..12).map(|_| free_port()).collect();
    let out = c.dir.path().join("fds.out");
    let script = c.dir.path().join("fds.py");
    std::fs::write(
        &script,
        format!(
            "import os, socket, time\nn = int(os.environ[\"LISTEN_FDS\"])\nsocks = [socket.socket(fileno=fd) for fd in range(3, 3 + n)]\nports = [s.getsockname()[1] for s in socks]\nopen(\"{}\", \"w\").write(\",\".join(map(str, ports)) + \"\\n\")\ntime.sleep(100000)\n",
            out.display()
        ),
    )
    .unwrap();
    let listen: Vec<String> = ports
        .iter()
        .map(|p| format!("\"tcp:127.0.0.1:{p}\""))
        .collect();
    c.write_unit(
        "many",
        &format!(
            "exec = [\"/usr/bin/python3\", \"{}\"]\n[socket]\nlisten = [{}]\n",
            script.display(),
            listen.join(", ")
        ),
    );
    let c = c.start();
    let u = c.wait_state("many", "running");
    let line = wait_for("the unit's report", SOON, || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|s| s.ends_with('\n'))
    });
    let want: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
    assert_eq!(line.trim(), want.join(","));
    // Its fd table, seen from outside: stdio and the sockets, nothing of colony-init's.
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{}/fd", pid_of(&u)))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort();
    let expected: Vec<i32> = (0..3 + ports.len() as i32).collect();
    assert_eq!(fds, expected);
}

/// An on_demand unit that exits after its work is watched again: the next connection
/// starts it anew.
#[test]
fn an_on_demand_unit_that_exits_is_started_again_by_the_next_connection() {
    let c = Colony::new();
    let port = free_port();
    let script = c.dir.path().join("once.py");
    std::fs::write(
        &script,
        "import os, socket\ns = socket.socket(fileno=3)\nconn, _ = s.accept()\nconn.makefile().readline()\nconn.sendall((\"ok %d\\n\" % os.getpid()).encode())\nconn.close()\n",
    )
    .unwrap();
    c.write_unit(
        "once",
        &format!(
            "exec = [\"/usr/bin/python3\", \"{}\"]\n[restart]\npolicy = \"on-failure\"\n[socket]\nlisten = [\"tcp:127.0.0.1:{port}\"]\non_demand = true\n",
            script.display()
        ),
    );
    let c = c.start();
    let first = ask(port).unwrap();
    c.wait_unit("once", "exited after its connection", |u| {
        u["state"] == "exited" || u["state"] == "stopped"
    });
    let second = ask(port).unwrap();
    assert_ne!(first, second, "the same process answered twice");
}

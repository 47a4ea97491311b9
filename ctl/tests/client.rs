//! The real colonyctl binary against colony-init's real control FIFO server module
//! (`colony_init::control`), answering from a test thread: the protocol end to end, without
//! needing the event loop. Tests against the whole colony-init live in integration/.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use colony_init::control::{ControlFifo, ReplyWriter};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use units::proto::{Info, Reply, Request, UnitStatus, Verb};

type Handler = Box<dyn Fn(&Request) -> Option<Reply> + Send>;

/// A control FIFO served by a thread until dropped.
struct Server {
    tmp: tempfile::TempDir,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(handler: impl Fn(&Request) -> Option<Reply> + Send + 'static) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let mut fifo = ControlFifo::create(&tmp.path().join("run"), None).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (requests.clone(), stop.clone());
        let handler: Handler = Box::new(handler);
        let thread = std::thread::spawn(move || {
            let mut writers: Vec<ReplyWriter> = Vec::new();
            while !s.load(Ordering::SeqCst) {
                let mut fds = vec![PollFd::new(fifo.fd(), PollFlags::POLLIN)];
                fds.extend(
                    writers
                        .iter()
                        .map(|w| PollFd::new(w.fd(), PollFlags::POLLOUT)),
                );
                // A short timeout only to notice `stop`.
                poll(&mut fds, PollTimeout::from(50u16)).unwrap();
                drop(fds);
                writers.retain_mut(|w| matches!(w.write_some(), Ok(false)));
                for req in fifo.read_requests() {
                    let Ok(req) = req else { continue };
                    r.lock().unwrap().push(req.clone());
                    let (Some(name), Some(reply)) = (req.reply.as_deref(), handler(&req)) else {
                        continue;
                    };
                    let Ok(mut w) = fifo.open_reply(name) else {
                        continue;
                    };
                    w.set_reply(&reply);
                    if let Ok(false) = w.write_some() {
                        writers.push(w);
                    }
                }
            }
        });
        Server {
            tmp,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn run_dir(&self) -> PathBuf {
        self.tmp.path().join("run")
    }

    fn ctl(&self, args: &[&str]) -> Output {
        colonyctl(&self.run_dir(), args)
    }

    fn lines(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.reply = None;
                r.to_line().trim_end().to_string()
            })
            .collect()
    }

    /// Reply FIFOs left in RUN/reply.
    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.run_dir().join("reply"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn colonyctl(run: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_colonyctl"))
        .arg("--run-dir")
        .arg(run)
        .args(args)
        .env_remove("COLONY_RUN_DIR")
        .output()
        .unwrap()
}

fn ok(data: serde_json::Value) -> Reply {
    Reply {
        ok: true,
        code: 0,
        error: None,
        data,
    }
}

fn err(code: i32, msg: &str) -> Reply {
    Reply {
        ok: false,
        code,
        error: Some(msg.into()),
        data: serde_json::Value::Null,
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn unit(name: &str, state: &str) -> UnitStatus {
    UnitStatus {
        name: name.into(),
        state: state.into(),
        pid: (state == "running").then_some(4242),
        since: chrono::Utc::now().to_rfc3339(),
        enabled: true,
        ..Default::default()
    }
}

#[test]
fn no_colony_init_is_exit_5_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    // Never created.
    let t = Instant::now();
    let o = colonyctl(&tmp.path().join("nothing"), &["status"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("colony-init is not running"));
    assert_eq!(stderr(&o).lines().count(), 1);
    // A stale RUN: the FIFO is there, nobody reads it.
    let run = tmp.path().join("stale");
    drop(ControlFifo::create(&run, None).unwrap());
    let o = colonyctl(&run, &["status"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("start it with `colony-init`"));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // Its reply FIFO was cleaned up.
    assert_eq!(std::fs::read_dir(run.join("reply")).unwrap().count(), 0);
}

#[test]
fn status_table_json_and_exit_codes() {
    let s = Server::start(|req| {
        Some(match req.args.first().map(String::as_str) {
            None => ok(
                serde_json::to_value(vec![unit("web", "running"), unit("db", "failed")]).unwrap(),
            ),
            Some("db") => Reply {
                ok: true,
                code: 3,
                error: None,
                data: serde_json::to_value(vec![unit("db", "failed")]).unwrap(),
            },
            Some(_) => err(4, "no such unit nope; see `colonyctl status`"),
        })
    });
    let o = s.ctl(&["status"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("NAME "), "{out}");
    assert!(out.contains("web ") && out.contains("running") && out.contains("4242"));
    let o = s.ctl(&["--json", "status"]);
    let units: Vec<UnitStatus> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(units.len(), 2);
    assert_eq!(units[1].state, "failed");
    let o = s.ctl(&["status", "db.unit"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stdout(&o).contains("failed"));
    let o = s.ctl(&["status", "nope"]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(
        stderr(&o),
        "colonyctl: no such unit nope; see `colonyctl status`\n"
    );
    assert_eq!(
        s.lines(),
        vec!["status", "status", "status db", "status nope"]
    );
    assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
}

#[test]
fn commands_send_their_request_lines() {
    let s = Server::start(|req| {
        Some(match req.verb {
            Verb::Poweroff => err(1, "poweroff: colony-init is not PID 1 of a machine"),
            _ => ok(serde_json::Value::Null),
        })
    });
    for args in [
        &["start", "web.unit", "@db"][..],
        &["stop", "--no-block", "web"],
        &["restart", "a", "b"],
        &["restart-all"],
        &["reload"],
        &["signal", "HUP", "@web"],
    ] {
        let o = s.ctl(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    }
    let o = s.ctl(&["poweroff"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not PID 1"));
    assert_eq!(
        s.lines(),
        vec![
            "start web @db",
            "stop --no-block web",
            "restart a b",
            "restart-all",
            "reload",
            "signal HUP @web",
            "poweroff",
        ]
    );
}

#[test]
fn a_big_reply_arrives_whole() {
    let many: Vec<UnitStatus> = (0..1000)
        .map(|i| {
            let mut u = unit(&format!("unit-{i:04}"), "running");
            u.description = Some("x".repeat(300));
            u
        })
        .collect();
    let data = serde_json::to_value(&many).unwrap();
    let s = Server::start(move |_| Some(ok(data.clone())));
    let o = s.ctl(&["--json", "status"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.len() > 400_000);
    let got: Vec<UnitStatus> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(got, many);
    let t = Instant::now();
    let o = s.ctl(&["status"]);
    eprintln!("status of 1000 units (table): {:?}", t.elapsed());
    assert_eq!(stdout(&o).lines().count(), 1001);
}

#[test]
fn no_answer_times_out_with_exit_5_and_cleans_up() {
    let s = Server::start(|_| None);
    let t = Instant::now();
    let o = s.ctl(&["--timeout", "300ms", "status"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("did not answer within"),
        "{}",
        stderr(&o)
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(s.leftovers().is_empty());
}

#[test]
fn interrupted_while_waiting_removes_its_fifo() {
    let s = Server::start(|_| None);
    let mut child = Command::new(env!("CARGO_BIN_EXE_colonyctl"))
        .arg("--run-dir")
        .arg(s.run_dir())
        .args(["--timeout", "60s", "stop", "web"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until its request arrived (so it waits for the answer).
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.lines().is_empty() {
        assert!(Instant::now() < deadline, "no request came");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(s.leftovers().len(), 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
}

#[test]
fn add_and_remove_use_the_units_dir_of_info_and_wait_for_colony_init() {
    let units = tempfile::tempdir().unwrap();
    let dir = units.path().to_str().unwrap().to_string();
    // As colony-init: `reload` reads the directory, `status` answers from what it read.
    let s = Server::start(move |req| {
        let known = |n: &str| Path::new(&dir).join(format!("{n}.unit")).exists();
        Some(match (req.verb, req.args.first()) {
            (Verb::Info, _) => ok(serde_json::to_value(Info {
                pid: 1,
                units_dir: dir.clone(),
                ..Default::default()
            })
            .unwrap()),
            (Verb::Reload | Verb::Stop, _) => ok(serde_json::Value::Null),
            (Verb::Status, Some(n)) if known(n) => {
                ok(serde_json::to_value(vec![unit(n, "stopped")]).unwrap())
            }
            _ => err(4, "no such unit"),
        })
    });
    let o = s.ctl(&[
        "add",
        "web",
        "--cmd",
        "/bin/sleep",
        "--arg",
        "100",
        "--env",
        "A=b c",
        "--extras",
        r#"{"shard": 3}"#,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let path = units.path().join("web.unit");
    let text = std::fs::read_to_string(&path).unwrap();
    let t: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(t["exec"].as_array().unwrap().len(), 2);
    assert_eq!(t["environment"]["A"].as_str(), Some("b c"));
    assert_eq!(t["extras"]["shard"].as_integer(), Some(3));
    let o = s.ctl(&["remove", "web.unit"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!path.exists());
    let o = s.ctl(&["remove", "web"]);
    assert_eq!(o.status.code(), Some(4));
    // add returns once colony-init has read the directory and knows the unit; remove stops
    // the unit first and returns once colony-init no longer knows it.
    assert_eq!(
        s.lines(),
        vec![
            "info",
            "reload",
            "status web",
            "info",
            "stop web",
            "reload",
            "status web",
            "info"
        ]
    );
    // With --units, colony-init is not needed at all.
    let o = colonyctl(
        Path::new("/nonexistent"),
        &[
            "add",
            "x",
            "--cmd",
            "true",
            "--units",
            units.path().to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(units.path().join("x.unit").exists());
    let o = colonyctl(Path::new("/nonexistent"), &["add", "x", "--cmd", "true"]);
    assert_eq!(o.status.code(), Some(5));
    assert!(stderr(&o).contains("--units DIR"));
    let o = colonyctl(Path::new("/nonexistent"), &["add", "../x", "--cmd", "true"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn logs_tail_and_follow_across_rotation() {
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("web.log");
    {
        let mut f = std::fs::File::create(&log).unwrap();
        for i in 0..30 {
            writeln!(f, "old {i}").unwrap();
        }
    }
    // logs asks colony-init nothing: it reads LOG_DIR as recorded in RUN.
    let s = Server::start(|_| None);
    std::fs::write(
        s.run_dir().join("log-dir"),
        logdir.path().as_os_str().as_encoded_bytes(),
    )
    .unwrap();
    let o = s.ctl(&["logs", "web", "-n", "3"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "old 27\nold 28\nold 29\n");
    assert_eq!(s.ctl(&["logs", "nope"]).status.code(), Some(4));

    let out_path = logdir.path().join("followed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_colonyctl"))
        .arg("--run-dir")
        .arg(s.run_dir())
        .args(["logs", "web.unit", "-n", "1", "-f"])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .spawn()
        .unwrap();
    let wait_for = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = std::fs::read_to_string(&out_path).unwrap();
            if got == want {
                return;
            }
            assert!(Instant::now() < deadline, "got {got:?}, want {want:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for("old 29\n");
    let append = |text: &str| {
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    append("new 1\n");
    wait_for("old 29\nnew 1\n");
    // Rotation as colony-init does it: rename, then a new file.
    append("last before rotation\n");
    std::fs::rename(&log, logdir.path().join("web.log.1")).unwrap();
    std::fs::write(&log, "first after rotation\n").unwrap();
    wait_for("old 29\nnew 1\nlast before rotation\nfirst after rotation\n");
    append("more\n");
    wait_for("old 29\nnew 1\nlast before rotation\nfirst after rotation\nmore\n");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(s.lines().is_empty(), "{:?}", s.lines());
}

#[test]
fn completions_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let o = colonyctl(Path::new("/nonexistent"), &["completions", shell]);
        assert_eq!(o.status.code(), Some(0));
        assert!(stdout(&o).contains("restart-all"), "{shell}");
    }
}

#[test]
fn a_closed_stdout_is_no_panic() {
    // `colonyctl ... | head -1`: the reader is gone before colonyctl writes.
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r);
    let many: Vec<UnitStatus> = (0..2000)
        .map(|i| unit(&format!("u{i}"), "running"))
        .collect();
    let data = serde_json::to_value(&many).unwrap();
    let s = Server::start(move |_| Some(ok(data.clone())));
    for args in [&["completions", "bash"][..], &["status"]] {
        let o = Command::new(env!("CARGO_BIN_EXE_colonyctl"))
            .arg("--run-dir")
            .arg(s.run_dir())
            .args(args)
            .stdout(w.try_clone().unwrap())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            o.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {:?}",
            o.status
        );
    }
}

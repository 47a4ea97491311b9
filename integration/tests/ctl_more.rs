//! colonyctl against the real colony-init, second part: `logs` (stopping, pipes, reading the
//! files without colony-init, several units, filters), `add`/`remove` returning once
//! colony-init has the change, `enable`/`disable`/`cat`/`show`, `status --state`.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Instant;

use colony_integration::{bin, wait_for, Colony, SOON};
use serde_json::Value;

fn sh(script: &str) -> String {
    // A TOML literal string cannot hold a single quote; the scripts avoid them.
    format!("exec = [\"/bin/sh\", \"-c\", '''{script}''']\n")
}

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// colonyctl with these arguments against `c`, stdout piped into a reader thread.
fn spawn_ctl(c: &Colony, args: &[&str]) -> (Child, Receiver<Vec<u8>>) {
    let mut child = Command::new(bin("colonyctl"))
        .arg("--run-dir")
        .arg(&c.run)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run colonyctl");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Read from `rx` until the text holds `want` (bounded).
fn read_until(rx: &Receiver<Vec<u8>>, text: &mut String, want: &str) {
    let deadline = Instant::now() + SOON;
    while !text.contains(want) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Err(_) => panic!("did not see {want:?}; saw {text:?}"),
        }
    }
}

/// Wait (bounded) for `child` to exit; kill it and fail when it does not.
fn wait_exit(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + SOON;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("colonyctl did not exit within {SOON:?} after {what}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

/// A colony with `talker`, which wrote `first` and then waits for ever.
fn talker() -> Colony {
    let c = Colony::new();
    c.write_unit(
        "talker",
        &sh("echo first; while :; do sleep 1000 & wait $!; done"),
    );
    let c = c.start();
    wait_for("the first line in the log", SOON, || {
        out(&c.ctl(&["logs", "talker"]))
            .contains("first")
            .then_some(())
    });
    c
}

#[test]
fn logs_follow_ends_on_ctrl_c_and_sigterm() {
    let c = talker();
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        let (mut child, rx) = spawn_ctl(&c, &["logs", "talker", "-f"]);
        let mut text = String::new();
        // It printed the last lines, so it is following now.
        read_until(&rx, &mut text, "first");
        // SAFETY: signalling the child we started, by its PID.
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = wait_exit(&mut child, &format!("signal {sig}"));
        assert_eq!(status.code(), Some(0), "signal {sig}: {status:?}");
        assert_eq!(stderr_of(&mut child), "", "signal {sig}: quietly");
    }
}

#[test]
fn logs_follow_into_head_ends_quietly_when_head_is_done() {
    let c = Colony::new();
    // Five lines, then nothing more: the follower must notice head's end without a write.
    c.write_unit(
        "five",
        &sh("for i in 1 2 3 4 5; do echo line-$i; done; while :; do sleep 1000 & wait $!; done"),
    );
    let c = c.start();
    wait_for("five lines in the log", SOON, || {
        out(&c.ctl(&["logs", "five"]))
            .contains("line-5")
            .then_some(())
    });
    let mut ctl = Command::new(bin("colonyctl"))
        .arg("--run-dir")
        .arg(&c.run)
        .args(["logs", "five", "-f"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run colonyctl");
    let pipe = ctl.stdout.take().expect("stdout");
    let head = Command::new("head")
        .arg("-3")
        .stdin(Stdio::from(pipe))
        .stdout(Stdio::piped())
        .output()
        .expect("run head");
    assert_eq!(
        String::from_utf8_lossy(&head.stdout).lines().count(),
        3,
        "{head:?}"
    );
    let status = wait_exit(&mut ctl, "head -3 ended");
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(stderr_of(&mut ctl), "", "quietly");
}

#[test]
fn logs_read_the_files_when_colony_init_is_gone() {
    let c = Colony::new();
    c.write_unit(
        "web",
        &sh("echo web-says-hello; echo web-error-42; exec sleep 1000"),
    );
    c.write_unit("db", &sh("echo db-says-hello; exec sleep 1000"));
    let mut c = c.start();
    for (unit, want) in [("web", "web-error-42"), ("db", "db-says-hello")] {
        wait_for("the lines in the logs", SOON, || {
            out(&c.ctl(&["logs", unit])).contains(want).then_some(())
        });
    }
    assert_eq!(c.stop(), Some(0));
    // Nothing reads the control FIFO now.
    assert_eq!(c.ctl(&["status"]).status.code(), Some(5));

    let o = c.ctl(&["logs", "web"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.contains("web-says-hello") && text.contains("web-error-42"),
        "{text}"
    );
    assert!(!text.contains("web| "), "one unit: no prefix: {text}");

    // Several: merged, each line prefixed.
    let o = c.ctl(&["logs", "web", "db.unit"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.lines()
            .any(|l| l.starts_with("web| ") && l.contains("web-says-hello")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("db| ") && l.contains("db-says-hello")),
        "{text}"
    );
    // All of them when none is named, colony-init's own log too.
    let text = out(&c.ctl(&["logs", "-n", "1000"]));
    assert!(text.contains("web| ") && text.contains("db| "), "{text}");
    assert!(text.contains("colony-init| "), "{text}");
    // colony-init's own log by its name: what it said about the units, time-stamped.
    let o = c.ctl(&["logs", "colony-init", "-n", "1000"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.lines()
            .any(|l| l.contains("web") && l.starts_with("20")),
        "{text}"
    );

    // --grep and --since.
    let o = c.ctl(&["logs", "web", "--grep", "error-[0-9]+"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.contains("web-error-42") && !text.contains("web-says-hello"),
        "{text}"
    );
    let text = out(&c.ctl(&["logs", "web", "--since", "1h"]));
    assert!(text.contains("web-says-hello"), "{text}");
    let text = out(&c.ctl(&["logs", "web", "--since", "0s"]));
    assert!(
        !text.contains("web-says-hello"),
        "nothing is that recent: {text}"
    );
    assert_eq!(
        c.ctl(&["logs", "web", "--grep", "("]).status.code(),
        Some(2)
    );

    // --log-dir names the directory outright; an unknown unit is exit 4.
    let o = Command::new(bin("colonyctl"))
        .args(["--run-dir", "/nonexistent/run", "logs", "db", "--log-dir"])
        .arg(&c.logs)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(out(&o).contains("db-says-hello"));
    assert_eq!(c.ctl(&["logs", "nosuch"]).status.code(), Some(4));
}

#[test]
fn logs_follow_merges_several_units() {
    let c = Colony::new();
    c.write_unit(
        "a",
        &sh("trap \"echo a-got-usr1\" USR1; echo a-first; while :; do sleep 1000 & wait $!; done"),
    );
    c.write_unit(
        "b",
        &sh("trap \"echo b-got-usr1\" USR1; echo b-first; while :; do sleep 1000 & wait $!; done"),
    );
    let c = c.start();
    for u in ["a", "b"] {
        wait_for("the first lines", SOON, || {
            out(&c.ctl(&["logs", u])).contains("first").then_some(())
        });
    }
    // No unit named: every log.
    let (mut child, rx) = spawn_ctl(&c, &["logs", "-f"]);
    let mut text = String::new();
    read_until(&rx, &mut text, "a| ");
    read_until(&rx, &mut text, "b| ");
    for u in ["a", "b"] {
        let o = c.ctl(&["signal", "USR1", u]);
        assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    }
    read_until(&rx, &mut text, "a-got-usr1");
    read_until(&rx, &mut text, "b-got-usr1");
    for u in ["a", "b"] {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("{u}-got-usr1")))
            .unwrap();
        assert!(line.starts_with(&format!("{u}| ")), "{line}");
    }
    // SAFETY: signalling the child we started, by its PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(wait_exit(&mut child, "SIGINT").code(), Some(0));
}

#[test]
fn add_then_start_at_once_and_remove_then_status() {
    let c = Colony::new().start();
    for i in 0..10 {
        let name = format!("x{i}");
        let o = c.ctl(&["add", &name, "--cmd", "sleep", "--arg", "300"]);
        assert_eq!(o.status.code(), Some(0), "add: {}", err(&o));
        // Right away: colony-init has it.
        let o = c.ctl(&["start", &name]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "start {name} right after add: {}",
            err(&o)
        );
        let o = c.ctl(&["remove", &name]);
        assert_eq!(o.status.code(), Some(0), "remove: {}", err(&o));
        // Right away: colony-init has dropped it.
        let o = c.ctl(&["status", &name]);
        assert_eq!(
            o.status.code(),
            Some(4),
            "status {name} right after remove: {}",
            out(&o)
        );
    }
}

#[test]
fn add_and_remove_without_colony_init_write_the_file_and_say_so() {
    let c = Colony::new();
    let units = c.units.to_string_lossy().into_owned();
    let o = c.ctl(&[
        "add", "lone", "--cmd", "sleep", "--arg", "1", "--units", &units,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(out(&o).contains("not running"), "{}", out(&o));
    assert!(c.units.join("lone.unit").exists());
    let o = c.ctl(&["remove", "lone", "--units", &units]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(!c.units.join("lone.unit").exists());
}

#[test]
fn enable_disable_cat_show_and_status_state() {
    let c = Colony::new();
    let text = format!(
        "# the web server\n{}tags = [\"front\"]   # keep\n\n[restart]\n# be gentle\ndelay_min = \"2s\"\n",
        sh("exec sleep 1000")
    );
    c.write_unit("web", &text);
    c.write_unit("other", &sh("exec sleep 1000"));
    let c = c.start();
    c.wait_state("web", "running");
    c.wait_state("other", "running");

    let o = c.ctl(&["cat", "web.unit"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), text);

    let o = c.ctl(&["disable", "web", "--now"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let file = std::fs::read_to_string(c.units.join("web.unit")).unwrap();
    assert!(file.contains("enabled = false"), "{file}");
    assert_eq!(
        file.replace("enabled = false\n", ""),
        text,
        "the rest is as written"
    );
    // colony-init has read it when disable returns, and --now stopped it.
    let web = c.unit("web").unwrap();
    assert_eq!(web["enabled"], false, "{web}");
    assert_eq!(web["state"], "stopped", "{web}");

    // status --state
    let o = c.ctl(&["--json", "status", "--state", "stopped"]);
    let v: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v.iter().filter_map(|u| u["name"].as_str()).collect();
    assert_eq!(names, vec!["web"]);
    let o = c.ctl(&["status", "--state", "running,failed"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        out(&o).contains("other") && !out(&o).contains("web"),
        "{}",
        out(&o)
    );

    let o = c.ctl(&["enable", "web", "--now"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(c.unit("web").unwrap()["enabled"], true);
    assert_eq!(c.unit("web").unwrap()["state"], "running");
    let file = std::fs::read_to_string(c.units.join("web.unit")).unwrap();
    assert!(
        file.starts_with("# the web server\n") && file.contains("# be gentle\n"),
        "{file}"
    );

    let o = c.ctl(&["show", "web"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let shown = out(&o);
    for want in [
        "enabled = true",
        "[restart]",
        "policy = \"always\"",
        "delay_min = \"2s\"",
        "[stop]",
        "signal = \"SIGTERM\"",
        "[log]",
        "keep = 5",
    ] {
        assert!(shown.contains(want), "{want}: {shown}");
    }
    assert_eq!(c.ctl(&["cat", "nosuch"]).status.code(), Some(4));
    assert_eq!(c.ctl(&["enable", "nosuch"]).status.code(), Some(4));
}

#[test]
fn colony_init_version_ends_its_line() {
    let o = Command::new(bin("colony-init"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let text = out(&o);
    assert!(
        text.starts_with("colony-init ") && text.ends_with('\n'),
        "{text:?}"
    );
    assert_eq!(text.lines().count(), 1);
}

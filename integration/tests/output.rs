//! colonyctl's output as systemctl users expect it, against a real colony-init: colour only on a
//! terminal (a real pty) and never with NO_COLOR, the status table fitted to the terminal's
//! width (TIOCGWINSZ or COLUMNS), whole lines into a pipe, no pager, and `--json` from every
//! command that prints data.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use colony_integration::{bin, Colony};
use serde_json::Value;

/// Runs the command with stdout (and stdin) on a new pty of `cols` columns; returns its output.
const PTY: &str = r#"
import fcntl, os, pty, struct, subprocess, sys, termios
cols = int(sys.argv[1])
m, s = pty.openpty()
fcntl.ioctl(s, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
p = subprocess.Popen(sys.argv[2:], stdin=s, stdout=s)
os.close(s)
out = b""
while True:
    try:
        d = os.read(m, 65536)
    except OSError:
        break
    if not d:
        break
    out += d
sys.stdout.buffer.write(out.replace(b"\r\n", b"\n"))
sys.exit(p.wait())
"#;

fn on_pty(cols: u16, env: &[(&str, &str)], args: &[&str], run: &Path) -> String {
    let mut c = Command::new("python3");
    c.arg("-c")
        .arg(PTY)
        .arg(cols.to_string())
        .arg(bin("colonyctl"))
        .arg("--run-dir")
        .arg(run)
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS")
        .env("TERM", "xterm");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("python3");
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn piped(env: &[(&str, &str)], args: &[&str], run: &Path) -> Output {
    let mut c = Command::new(bin("colonyctl"));
    c.arg("--run-dir")
        .arg(run)
        .args(args)
        .stdin(Stdio::null())
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS")
        .env("TERM", "xterm");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("colonyctl")
}

fn text(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Characters a terminal shows (colour sequences take no room).
fn visible(line: &str) -> usize {
    let (mut n, mut esc) = (0, false);
    for ch in line.chars() {
        match (esc, ch) {
            (false, '\x1b') => esc = true,
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

const LONG: &str =
    "A web server whose description is far longer than any terminal is wide, on purpose";

#[test]
fn colour_only_on_a_terminal_and_the_table_fits_its_width() {
    let c = Colony::new();
    c.write_unit(
        "web",
        &format!("description = \"{LONG}\"\nexec = [\"/bin/sleep\", \"1000\"]\n"),
    );
    c.write_unit(
        "broken",
        "exec = [\"/bin/sh\", \"-c\", \"exit 3\"]\n[restart]\npolicy = \"never\"\n",
    );
    let c = c.start();
    c.wait_state("web", "running");
    let broken = c.wait_unit("broken", "ended", |u| {
        u["state"] == "failed" || u["state"] == "exited"
    });
    let run = c.run.clone();

    // A pipe without COLUMNS: no colour, whole lines.
    let out = text(&piped(&[], &["status"], &run));
    assert!(!out.contains('\x1b'), "{out:?}");
    assert!(out.contains(LONG), "{out}");

    // A terminal: the state coloured (green running, red failed), the table cut to its width.
    let out = on_pty(200, &[], &["status"], &run);
    assert!(out.contains("\x1b[32mrunning\x1b[0m"), "{out:?}");
    if broken["state"] == "failed" {
        assert!(out.contains("\x1b[31mfailed\x1b[0m"), "{out:?}");
    }
    for width in [200u16, 80, 60] {
        let out = on_pty(width, &[], &["status"], &run);
        for l in out.lines().filter(|l| !l.starts_with("    ")) {
            assert!(visible(l) <= width as usize, "{width}: {l:?}\n{out}");
        }
        if width < 150 {
            assert!(out.contains('…') && !out.contains(LONG), "{out}");
        }
        assert!(out.lines().any(|l| l.starts_with("web ")), "{out}");
    }
    // --full (-l) keeps whole lines on a terminal too.
    let out = on_pty(60, &[], &["status", "-l"], &run);
    assert!(out.contains(LONG), "{out}");

    // NO_COLOR (any non-empty value) and TERM=dumb: no escape codes even on a terminal.
    let out = on_pty(200, &[("NO_COLOR", "1")], &["status"], &run);
    assert!(!out.contains('\x1b') && out.contains("running"), "{out:?}");
    let out = on_pty(200, &[("TERM", "dumb")], &["status"], &run);
    assert!(!out.contains('\x1b'), "{out:?}");

    // COLUMNS wins over the terminal's width, and cuts piped output too.
    let out = on_pty(200, &[("COLUMNS", "70")], &["status"], &run);
    assert!(out.lines().all(|l| visible(l) <= 70), "{out}");
    let out = text(&piped(&[("COLUMNS", "70")], &["status"], &run));
    assert!(out.lines().all(|l| l.chars().count() <= 70), "{out}");

    // No pager, whatever PAGER says: the output comes straight to the terminal.
    let mark = c.dir.path().join("pager-ran");
    let pager = c.dir.path().join("pager");
    std::fs::write(
        &pager,
        format!("#!/bin/sh\ntouch {}\ncat\n", mark.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pager, std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = pager.to_str().unwrap();
    let out = on_pty(80, &[("PAGER", p), ("SYSTEMD_PAGER", p)], &["status"], &run);
    assert!(out.contains("web "), "{out}");
    assert!(!mark.exists(), "a pager was started");
}

#[test]
fn json_from_every_command_that_prints_data() {
    let c = Colony::new();
    c.write_unit(
        "web",
        "exec = [\"/bin/sh\", \"-c\", \"echo hello; echo world; exec sleep 1000\"]\n",
    );
    c.write_unit(
        "tick",
        "exec = [\"/bin/true\"]\n[timer]\nschedule = \"0 3 * * *\"\n",
    );
    let c = c.start();
    c.wait_state("web", "running");
    let run = c.run.clone();
    let json = |args: &[&str]| -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = text(&piped(&[], &a, &run));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    };

    let st = json(&["status"]);
    assert!(
        st.as_array().unwrap().iter().any(|u| u["name"] == "web"),
        "{st}"
    );
    let timers = json(&["timers"]);
    assert!(timers.is_array(), "{timers}");
    json(&["restart", "web"]);
    c.wait_state("web", "running");

    // check: the errors as objects.
    let dir = c.dir.path().join("check");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bad.unit"), "exec = 3\n").unwrap();
    let o = piped(&[], &["--json", "check", dir.to_str().unwrap()], &run);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["invalid"], 1, "{v}");
    assert_eq!(v["errors"][0]["key"], "exec", "{v}");
    assert!(v["errors"][0]["line"].as_u64().is_some(), "{v}");

    // add / remove: the file written and removed.
    let units = c.dir.path().join("other-units");
    std::fs::create_dir_all(&units).unwrap();
    let u = units.to_str().unwrap();
    let v = json(&["add", "extra", "--cmd", "/bin/true", "--units", u]);
    assert_eq!(v["replaced"], false, "{v}");
    assert!(v["path"].as_str().unwrap().ends_with("extra.unit"), "{v}");
    let v = json(&["remove", "extra", "--units", u]);
    assert_eq!(v["removed"], true, "{v}");

    // import: every key's fate and the totals.
    let svc = c.dir.path().join("hello.service");
    std::fs::write(
        &svc,
        "[Service]\nExecStart=/bin/sleep 100\nRestart=always\nPrivateTmp=yes\n",
    )
    .unwrap();
    let o = piped(
        &[],
        &[
            "--json",
            "import",
            "--dry-run",
            "--out",
            u,
            svc.to_str().unwrap(),
        ],
        &run,
    );
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    assert_eq!(v["units"][0]["name"], "hello", "{v}");
    let fates: Vec<&str> = v["units"][0]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["fate"].as_str())
        .collect();
    assert!(fates.contains(&"carried"), "{v}");
    assert!(v["translated_pct"].as_f64().is_some(), "{v}");

    // logs: one JSON object a line.
    colony_integration::wait_for("web's log", colony_integration::SOON, || {
        let o = piped(&[], &["--json", "logs", "web", "-n", "5"], &run);
        let lines: Vec<Value> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (lines.len() >= 2).then_some(lines)
    })
    .iter()
    .for_each(|l| {
        assert_eq!(l["unit"], "web", "{l}");
        assert!(l["line"].is_string(), "{l}");
    });
}

//! What keeps a unit from starting and when a start counts as done: a dependency on a unit
//! that is not there (a warning for `after`, a hold for `requires`), `[ready] settle`, and
//! `[restart] max_failures`.

use colony_integration::Colony;
use serde_json::Value;

fn text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn warnings(u: &Value) -> Vec<String> {
    u["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn after_a_missing_unit_runs_with_a_warning_in_status() {
    let c = Colony::new();
    c.write_unit(
        "web",
        "exec = [\"/bin/sleep\", \"300\"]\nafter = [\"db\"]\n",
    );
    let c = c.start();
    let web = c.wait_state("web", "running");
    assert_eq!(
        warnings(&web),
        ["after: no unit `db` (no file db.unit in this directory), so ordering after it is ignored"],
        "{web}"
    );
    assert!(web["error"].is_null(), "{web}");
}

#[test]
fn a_unit_requiring_a_missing_one_says_why_and_starts_once_it_is_added() {
    let c = Colony::new();
    c.write_unit(
        "app",
        "exec = [\"/bin/sleep\", \"300\"]\nrequires = [\"db\"]\n",
    );
    let c = c.start();
    let app = c.wait_unit("app", "held back by db", |u| {
        u["state"] == "stopped"
            && u["error"]
                .as_str()
                .is_some_and(|e| e.contains("required unit db does not exist"))
    });
    assert!(
        warnings(&app)
            .iter()
            .any(|w| w.starts_with("requires: no unit `db`")),
        "{app}"
    );
    // A start by hand says why it cannot.
    let o = c.ctl(&["start", "app"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("required unit db does not exist"),
        "{}",
        text(&o)
    );
    // db.unit appears: db starts, then app.
    c.write_unit("db", "exec = [\"/bin/sleep\", \"300\"]\n");
    let app = c.wait_state("app", "running");
    assert!(app["error"].is_null(), "{app}");
    assert!(warnings(&app).is_empty(), "{app}");
    assert_eq!(c.unit("db").expect("db")["state"], "running");
}

const BOOM: &str = "exec = [\"sh\", \"-c\", \"echo boom; exit 1\"]\nenabled = false\n";

#[test]
fn start_of_a_unit_that_dies_before_settle_fails_with_its_status_and_last_lines() {
    let c = Colony::new();
    c.write_unit(
        "boom",
        &format!("{BOOM}[ready]\nsettle = \"1s\"\n[restart]\ndelay_min = \"100ms\"\n"),
    );
    let c = c.start();
    let o = c.ctl(&["start", "boom"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("exited with code 1"), "{}", text(&o));
    assert!(err.contains("boom\n"), "the last log lines: {}", text(&o));
}

#[test]
fn a_start_that_lives_past_settle_succeeds() {
    let c = Colony::new();
    c.write_unit(
        "calm",
        "exec = [\"/bin/sleep\", \"300\"]\nenabled = false\n[ready]\nsettle = \"1s\"\n",
    );
    let c = c.start();
    let o = c.ctl(&["start", "calm"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let u = c.unit("calm").expect("calm");
    assert_eq!(
        (u["state"].as_str(), u["ready"].as_bool()),
        (Some("running"), Some(true)),
        "{u}"
    );
}

#[test]
fn max_failures_leaves_the_unit_failed_after_that_many_failed_starts() {
    let c = Colony::new();
    c.write_unit(
        "boom",
        &format!(
            "{BOOM}[ready]\nsettle = \"1s\"\n[restart]\ndelay_min = \"100ms\"\nmax_failures = 3\n"
        ),
    );
    let c = c.start();
    // `start` answers at the first failed start; the unit goes on until the third.
    let o = c.ctl(&["start", "boom"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let u = c.wait_state("boom", "failed");
    assert_eq!(
        u["restarts"], 2,
        "three starts: one by hand, two restarts: {u}"
    );
    assert!(
        u["error"]
            .as_str()
            .is_some_and(|e| e.contains("3 failed starts in a row")),
        "{u}"
    );
    let log = std::fs::read_to_string(u["log_file"].as_str().expect("log_file")).expect("log");
    assert_eq!(
        log.lines().filter(|l| l.ends_with(" boom")).count(),
        3,
        "{log}"
    );
    // Left alone until started by hand: a start runs it again (and it fails again).
    let o = c.ctl(&["start", "boom"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

/// A readiness probe that succeeded during `settle` is not run again and again: the unit
/// waits out its settle time without colony-init spinning on the probe.
#[test]
fn a_probe_ready_unit_waits_out_its_settle_without_probing_again() {
    let c = Colony::new();
    let ready = c.dir.path().join("ready-file");
    std::fs::write(&ready, "").expect("ready file");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    c.write_unit(
        "file",
        &format!(
            "exec = [\"/bin/sleep\", \"300\"]\nenabled = false\n[ready]\ntype = \"file\"\npath = \"{}\"\nsettle = \"1s\"\n",
            ready.display()
        ),
    );
    // Counts the connections it accepts, one line each.
    let server = format!(
        "import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind((\"127.0.0.1\", {port}))\ns.listen(64)\nn = 0\nwhile True:\n    a, _ = s.accept()\n    n += 1\n    print(\"accepted\", n, flush=True)\n    a.close()\n"
    );
    c.write_unit(
        "tcp",
        &format!(
            "exec = [\"/usr/bin/python3\", \"-c\", '''{server}''']\nenabled = false\n[ready]\ntype = \"tcp\"\naddress = \"127.0.0.1:{port}\"\nsettle = \"1s\"\n"
        ),
    );
    let c = c.start();
    for unit in ["file", "tcp"] {
        let o = c.ctl(&["--timeout", "40s", "start", unit]);
        assert_eq!(o.status.code(), Some(0), "{unit}: {}", text(&o));
        assert_eq!(c.unit(unit).expect("unit")["state"], "running");
    }
    let log = std::fs::read_to_string(c.logs.join("tcp.log")).expect("tcp log");
    let accepted = log.lines().filter(|l| l.contains(" accepted ")).count();
    assert!(
        (1..=3).contains(&accepted),
        "one readiness connection, not a probe loop: {accepted} accepted\n{log}"
    );
}

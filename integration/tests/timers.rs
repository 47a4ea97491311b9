//! Heartbeats and timer units with real processes and short periods (issue #5).

use std::time::Duration;

use colony_integration::{wait_for, Colony, SOON};
use serde_json::Value;

fn sh(script: &str) -> String {
    format!("exec = [\"/bin/sh\", \"-c\", '''{script}''']\n")
}

fn timer<'a>(timers: &'a [Value], name: &str) -> Option<&'a Value> {
    timers.iter().find(|t| t["name"] == name)
}

fn timers(c: &Colony) -> Vec<Value> {
    let o = c.ctl(&["--json", "timers"]);
    assert!(o.status.success(), "{o:?}");
    serde_json::from_slice(&o.stdout).expect("timers --json")
}

#[test]
fn a_unit_that_stops_beating_is_restarted_with_reason_heartbeat() {
    let c = Colony::new();
    let starts = c.dir.path().join("starts");
    // Beats 3 times, 100ms apart, then hangs without beating.
    c.write_unit(
        "beater",
        &format!(
            "{}[heartbeat]\nperiod = \"500ms\"\ngrace = \"2s\"\n[restart]\ndelay_min = \"0s\"\n",
            sh(&format!(
                "echo $$ >> {}; for i in 1 2 3; do touch \"$COLONY_HEARTBEAT\"; sleep 0.1; done; exec sleep 1000",
                starts.display()
            ))
        ),
    );
    let c = c.start();
    let u = c.wait_unit("beater", "restarted for its heartbeat", |u| {
        u["last_exit"]["reason"] == "heartbeat" && u["state"] == "running"
    });
    let hb = &u["heartbeat"];
    assert_eq!(
        hb["file"].as_str().unwrap(),
        c.run.join("heartbeat/beater").to_str().unwrap(),
        "{u}"
    );
    let n = std::fs::read_to_string(&starts).unwrap().lines().count();
    assert!(n >= 2, "started {n} times");
}

#[test]
fn a_unit_that_keeps_beating_is_left_alone() {
    let c = Colony::new();
    c.write_unit(
        "steady",
        &format!(
            "{}[heartbeat]\nperiod = \"400ms\"\ngrace = \"1s\"\n",
            sh("while true; do touch \"$COLONY_HEARTBEAT\"; sleep 0.05; done")
        ),
    );
    let c = c.start();
    let u = c.wait_state("steady", "running");
    let pid = u["pid"].clone();
    // Over several periods (each beat is observed), the unit keeps its process.
    let mut beats_seen = 0;
    wait_for(
        "a dozen periods with fresh beats",
        Duration::from_secs(30),
        || {
            let u = c.unit("steady")?;
            assert_eq!(u["pid"], pid, "restarted although it beats: {u}");
            assert_eq!(u["restarts"], 0);
            if u["heartbeat"]["age_ms"].as_u64().is_some_and(|a| a < 400) {
                beats_seen += 1;
            }
            std::thread::sleep(Duration::from_millis(200));
            (beats_seen >= 12).then_some(())
        },
    );
}

#[test]
fn timer_runs_every_period_and_shows_in_timers() {
    let c = Colony::new();
    let runs = c.dir.path().join("runs");
    c.write_unit(
        "tick",
        &format!(
            "{}[timer]\nevery = \"1s\"\non_boot = \"0s\"\n",
            sh(&format!("echo run >> {}; echo ticked", runs.display()))
        ),
    );
    let c = c.start();
    wait_for("three runs", SOON, || {
        let n = std::fs::read_to_string(&runs).ok()?.lines().count();
        (n >= 3).then_some(())
    });
    let all = timers(&c);
    let t = timer(&all, "tick").expect("tick in timers");
    assert!(t["schedule"].as_str().unwrap().contains("1s"), "{t}");
    assert!(t["next"].is_string() && t["last"].is_string(), "{t}");
    assert!(
        t["last_result"].as_str().unwrap().starts_with("exit 0"),
        "{t}"
    );
    assert_eq!(t["skipped"], 0);
    let u = c.unit("tick").unwrap();
    assert!(
        matches!(u["state"].as_str(), Some("waiting" | "running")),
        "{u}"
    );
    // Its output went to its log.
    let log = std::fs::read_to_string(c.logs.join("tick.log")).unwrap();
    assert!(log.contains("ticked"), "{log}");
    // The table form.
    let o = c.ctl(&["timers"]);
    let table = String::from_utf8_lossy(&o.stdout);
    for col in [
        "UNIT", "SCHEDULE", "NEXT", "LEFT", "LAST", "RESULT", "SKIPPED",
    ] {
        assert!(table.contains(col), "{table}");
    }
}

#[test]
fn overlapping_runs_are_skipped_and_counted() {
    let c = Colony::new();
    c.write_unit(
        "slow",
        &format!(
            "{}[timer]\nevery = \"1s\"\non_boot = \"0s\"\n",
            sh("sleep 10")
        ),
    );
    let c = c.start();
    let t = wait_for("a skipped run", SOON, || {
        let all = timers(&c);
        let t = timer(&all, "slow")?.clone();
        (t["skipped"].as_u64()? >= 2).then_some(t)
    });
    assert!(t["last_skip"].is_string(), "{t}");
}

#[test]
fn timer_timeout_stops_a_run_and_start_runs_now() {
    let c = Colony::new();
    let runs = c.dir.path().join("runs");
    c.write_unit(
        "hang",
        &format!(
            "{}[timer]\nevery = \"1h\"\ntimeout = \"300ms\"\n[stop]\ntimeout = \"200ms\"\n",
            sh(&format!(
                "echo run >> {}; trap \"\" TERM; sleep 1000",
                runs.display()
            ))
        ),
    );
    let c = c.start();
    c.wait_state("hang", "waiting");
    assert!(!runs.exists(), "ran before it was due");
    let o = c.ctl(&["start", "hang"]);
    assert!(o.status.success(), "{o:?}");
    wait_for("the run to start", SOON, || runs.exists().then_some(()));
    let t = wait_for("the run to be stopped by its timeout", SOON, || {
        let all = timers(&c);
        let t = timer(&all, "hang")?.clone();
        t["last_result"].as_str()?.contains("SIGKILL").then_some(t)
    });
    assert!(
        t["last_result"].as_str().unwrap().contains("timeout"),
        "{t}"
    );
    c.wait_state("hang", "waiting");
}

#[test]
fn persistent_timer_catches_up_a_missed_run_once() {
    let mut c = Colony::new();
    let runs = c.dir.path().join("runs");
    c.write_unit(
        "daily",
        &format!(
            "{}[timer]\nevery = \"1h\"\npersistent = true\n",
            sh(&format!("echo run >> {}", runs.display()))
        ),
    );
    // A last run two hours ago, recorded as colony-init records it.
    std::fs::create_dir_all(c.state.join("timers")).unwrap();
    let two_hours_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 2 * 3600 * 1000;
    std::fs::write(c.state.join("timers/daily"), format!("{two_hours_ago}\n")).unwrap();
    c = c.start();
    wait_for("the catch-up run", SOON, || runs.exists().then_some(()));
    let t = wait_for("the run recorded", SOON, || {
        let all = timers(&c);
        let t = timer(&all, "daily")?.clone();
        t["last_result"].is_string().then_some(t)
    });
    // Once, not once per missed hour; the next is an hour away.
    assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 1);
    assert!(t["next"].is_string(), "{t}");
    // And the run time was persisted for the next colony-init.
    let recorded: u128 = std::fs::read_to_string(c.state.join("timers/daily"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(recorded > two_hours_ago + 3600 * 1000);
    assert_eq!(c.stop(), Some(0));
}

#[test]
fn colony_watches_for_a_set_clock_with_a_timer_that_never_fires() {
    // The clock itself may not be set here (that is the VM suite's `clock` boot); this
    // checks the watch is in place: a CLOCK_REALTIME timerfd armed absolute with
    // TFD_TIMER_CANCEL_ON_SET (settime flags 3), far ahead, that has not expired.
    let c = Colony::new();
    c.write_unit(
        "daily",
        &format!("{}[timer]\ncalendar = \"0 3 * * *\"\n", sh("true")),
    );
    let c = c.start();
    c.wait_state("daily", "waiting");
    let dir = format!("/proc/{}/fdinfo", c.pid());
    let found = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .find(|info| {
            info.lines().any(|l| l.trim() == "clockid: 0")
                && info.lines().any(|l| l.trim() == "settime flags: 03")
        });
    let info = found.unwrap_or_else(|| panic!("no clock watch among {dir}"));
    assert!(info.lines().any(|l| l.trim() == "ticks: 0"), "{info}");
    let it_value_secs: u64 = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("it_value: ("))
        .and_then(|v| v.split(',').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no it_value in {info}"));
    assert!(
        it_value_secs > 100 * 365 * 86_400,
        "the watch would fire within a century: {info}"
    );
    assert!(!c.init_log().contains("clock changes"), "{}", c.init_log());
}

#[test]
fn a_run_waits_for_a_required_unit_that_is_still_starting() {
    let c = Colony::new();
    let ready = c.dir.path().join("db-ready");
    let ran = c.dir.path().join("job-ran");
    // db is up only once the test creates its readiness file.
    c.write_unit(
        "db",
        &format!(
            "exec = [\"sleep\", \"1000\"]\n[ready]\ntype = \"file\"\npath = \"{}\"\ntimeout = \"120s\"\n",
            ready.display()
        ),
    );
    c.write_unit(
        "job",
        &format!(
            "{}requires = [\"db\"]\n[timer]\nevery = \"1s\"\n",
            sh(&format!("echo run >> {}", ran.display()))
        ),
    );
    let c = c.start();
    // Due runs come and go while db starts: the first waits, the next ones are skipped.
    wait_for("a due run to be skipped", SOON, || {
        let t = timers(&c);
        (timer(&t, "job")?["skipped"].as_u64()? >= 1).then_some(())
    });
    assert!(!ran.exists(), "the job ran before db was up");
    std::fs::write(&ready, "").unwrap();
    wait_for("the waiting run once db is up", SOON, || {
        ran.exists().then_some(())
    });
    assert_eq!(c.unit("db").unwrap()["state"], "running");
}

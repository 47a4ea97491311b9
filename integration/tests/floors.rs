//! No unit setting makes colony-init spin: periods below their floor make a unit invalid
//! (with the floor in the error), and a program that dies at once restarts at a bounded
//! rate whatever its restart settings.

use std::time::Instant;

use colony_integration::Colony;

/// Restarts allowed per second (the core spaces two restarts in a row by 100ms at least, so
/// it makes at most 20 a second; a crash loop of /bin/false makes 10).
const MAX_RATE: f64 = 20.0;

#[test]
fn a_crash_loop_with_zero_delays_restarts_at_a_bounded_rate() {
    let c = Colony::new();
    // The settings that restart soonest: no delay, no growth, no death counted as instant
    // (this one restarted some 800 times a second).
    c.write_unit(
        "crash",
        "exec = [\"/bin/false\"]\n[restart]\ndelay_min = \"0s\"\ndelay_max = \"0s\"\nthreshold = \"0s\"\n",
    );
    // As the issue had it: delay_min alone.
    c.write_unit(
        "crash2",
        "exec = [\"/bin/false\"]\n[restart]\ndelay_min = \"0s\"\n",
    );
    // Built before the clock starts.
    colony_integration::bin("colony-init");
    colony_integration::bin("colonyctl");
    let t0 = Instant::now();
    let c = c.start();
    let u = c.wait_unit_typed("crash", "restarted 30 times", |u| u.restarts >= 30);
    let elapsed = t0.elapsed().as_secs_f64();
    let bound = (1.0 + elapsed * MAX_RATE) as u64;
    let restarts = u.restarts;
    assert!(
        restarts <= bound,
        "crash: {restarts} restarts in {elapsed:.2}s (at most {bound}): {u:?}"
    );
    let u2 = c.unit_typed("crash2").expect("crash2 in status");
    let elapsed = t0.elapsed().as_secs_f64();
    let bound = (1.0 + elapsed * MAX_RATE) as u64;
    let restarts2 = u2.restarts;
    assert!(
        (1..=bound).contains(&restarts2),
        "crash2: {restarts2} restarts in {elapsed:.2}s (at most {bound}): {u2:?}"
    );
}

#[test]
fn periods_under_their_floor_make_the_unit_invalid_and_say_the_floor() {
    let c = Colony::new();
    let sleep = "exec = [\"/bin/sleep\", \"1000\"]\n";
    let cases = [
        (
            "tick",
            "exec = [\"/bin/true\"]\n[timer]\nevery = \"1ns\"\n".to_string(),
            "timer.every: must be at least 1s",
        ),
        (
            "checked",
            format!("{sleep}[health]\ntcp = \"127.0.0.1:1\"\nperiod = \"1ns\"\n"),
            "health.period: must be at least 100ms",
        ),
        (
            "hasty",
            format!("{sleep}[health]\ntcp = \"127.0.0.1:1\"\ntimeout = \"1ns\"\n"),
            "health.timeout: must be at least 100ms",
        ),
        (
            "beating",
            format!("{sleep}[heartbeat]\nperiod = \"1ns\"\n"),
            "heartbeat.period: must be at least 100ms",
        ),
        (
            "watched",
            format!("{sleep}[ready]\ntype = \"notify\"\nwatchdog = \"1ns\"\n"),
            "ready.watchdog: must be at least 100ms",
        ),
        (
            "tiny",
            format!("{sleep}[log]\nmax_size = \"1\"\n"),
            "log.max_size: must be at least 16K",
        ),
        (
            "hoarder",
            format!("{sleep}[log]\nkeep = 1000\n"),
            "log.keep: must be at most 100",
        ),
    ];
    for (name, text, _) in &cases {
        c.write_unit(name, text);
    }
    c.write_unit("fine", sleep);
    let c = c.start();
    for (name, _, want) in &cases {
        let u = c.wait_state(name, "invalid");
        let err = u["error"].as_str().unwrap_or_default();
        assert!(err.contains(want), "{name}: {err:?} lacks {want:?}: {u}");
        assert_eq!(u["restarts"], 0, "{u}");
    }
    c.wait_state("fine", "running");
}

//! Figures for issue #3, printed beside their floors: mass start of N `sleep` units vs a
//! plain fork+exec loop, colony-init's RSS, wakeups over 10 s idle, `colonyctl status` of
//! all, restart latency with `delay_min = "0s"`.
//!
//! `cargo bench -p colony-integration --bench supervise` (N from env BENCH_N, default 1000;
//! BENCH_IDLE_SECS, default 10). Build first: `cargo build --release --workspace`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use colony_integration::{wait_for, Colony};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn proc_status(pid: i32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)
                .map(|v| v.trim().trim_end_matches(" kB").to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn wakeups(pid: i32) -> u64 {
    proc_status(pid, "voluntary_ctxt_switches:") + proc_status(pid, "nonvoluntary_ctxt_switches:")
}

fn main() {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let idle: u64 = std::env::var("BENCH_IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    println!("colony supervise benchmark, N = {n}");

    // Floor: fork+exec N sleeps from one process, then reap them.
    let t = Instant::now();
    let mut kids: Vec<_> = (0..n)
        .map(|_| {
            Command::new("sleep")
                .arg("1000")
                .stdin(Stdio::null())
                .spawn()
                .expect("sleep")
        })
        .collect();
    let floor_start = t.elapsed();
    for k in &mut kids {
        let _ = k.kill();
        let _ = k.wait();
    }

    // colony: N units of sleep.
    let c = Colony::new();
    for i in 0..n {
        c.write_unit(&format!("s{i}"), "exec = [\"sleep\", \"1000\"]\n");
    }
    let t = Instant::now();
    let c = c.start();
    wait_for("all units running", Duration::from_secs(600), || {
        let all = c.status();
        (all.len() == n && all.iter().all(|u| u["state"] == "running")).then_some(())
    });
    let colony_start = t.elapsed();
    let pid = c.pid();
    let rss_kb = proc_status(pid, "VmRSS:");

    // Idle wakeups.
    let w0 = wakeups(pid);
    std::thread::sleep(Duration::from_secs(idle));
    let idle_wakeups = wakeups(pid) - w0;

    // status of all.
    let mut st = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let o = c.ctl(&["--json", "status"]);
        assert!(o.status.success());
        st.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut floor_exec = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        Command::new("true").status().expect("true");
        floor_exec.push(t.elapsed().as_secs_f64() * 1e3);
    }
    drop(c);

    // Restart latency: colony-init's own log times the reap and the next start. The unit
    // lives past 100ms, so its deaths are not instant and it restarts at once (a program
    // that dies sooner waits 100ms from its second restart on).
    let mut r = Colony::new();
    r.write_unit(
        "crash",
        "exec = [\"/bin/sleep\", \"0.15\"]\n[restart]\ndelay_min = \"0s\"\nthreshold = \"0s\"\n",
    );
    r.extra_args = vec!["-v".into()];
    let r = r.start();
    wait_for("50 restarts", Duration::from_secs(120), || {
        (r.unit("crash")?["restarts"].as_u64()? >= 50).then_some(())
    });
    let log = r.init_log();
    drop(r);
    let lat = restart_latencies(&log);

    println!();
    println!("| metric | colony | floor / target |");
    println!("|---|---|---|");
    println!(
        "| start {n} sleeps | {:.0} ms | fork+exec loop {:.0} ms (target ≤ 1.5x: {:.2}x) |",
        colony_start.as_secs_f64() * 1e3,
        floor_start.as_secs_f64() * 1e3,
        colony_start.as_secs_f64() / floor_start.as_secs_f64()
    );
    println!(
        "| colony-init RSS with {n} units | {:.1} MB | target < 8 MB |",
        rss_kb as f64 / 1024.0
    );
    println!("| wakeups in {idle} s idle | {idle_wakeups} | target 0 |");
    println!(
        "| colonyctl status of {n} (median) | {:.1} ms | exec of `true` {:.1} ms; target < 10 ms |",
        median(st),
        median(floor_exec)
    );
    println!(
        "| restart latency, reap to next start (p50 of {}) | {:.3} ms | target < 2 ms |",
        lat.len(),
        median(lat)
    );
}

/// Pairs of "exited" then "started" lines of the unit in colony-init's debug log.
fn restart_latencies(log: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let mut exited: Option<chrono_like::Ts> = None;
    for line in log.lines() {
        let Some(ts) = chrono_like::parse(line) else {
            continue;
        };
        if line.contains("exited") && line.contains("crash") {
            exited = Some(ts);
        } else if line.contains(" started") && line.contains("crash") {
            if let Some(e) = exited.take() {
                out.push((ts - e) * 1e3);
            }
        }
    }
    out
}

/// Seconds-of-day from tracing's RFC 3339 time stamp at the start of a line.
mod chrono_like {
    pub type Ts = f64;
    pub fn parse(line: &str) -> Option<Ts> {
        let t = line.get(11..26)?; // HH:MM:SS.ffffff
        let h: f64 = t.get(0..2)?.parse().ok()?;
        let m: f64 = t.get(3..5)?.parse().ok()?;
        let s: f64 = t.get(6..)?.trim_end_matches('Z').parse().ok()?;
        Some(h * 3600.0 + m * 60.0 + s)
    }
}

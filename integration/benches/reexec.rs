//! Figures for issue #22: one `colonyctl reexec` of colony-init with N running units, from
//! the request to the new image's answer to `status` (a second `colonyctl`), target under
//! 50 ms with 1000 units. Prints every round, then the median and the worst, and colony-init's
//! own account of the last round (its log's `re-executing` and `took over` lines: where the
//! time went on each side of the exec).
//!
//! `cargo bench -p colony-integration --bench reexec` (BENCH_N, default 1000; BENCH_REEXECS,
//! default 10). Set COLONY_BIN_DIR to measure release builds of colony-init/colonyctl
//! (`COLONY_BIN_DIR=target/release`). A plain supervisor in a temporary directory, with
//! cgroups; after the rounds every unit must have the PID, state and restart count it had.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use colony_integration::{text, wait_for, Colony};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn worst(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What a reexec must not change, per unit: PID, state, restarts.
fn facts(c: &Colony) -> BTreeMap<String, (Option<i64>, String, u64)> {
    c.status()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap_or("").to_string(),
                (
                    u["pid"].as_i64(),
                    u["state"].as_str().unwrap_or("").to_string(),
                    u["restarts"].as_u64().unwrap_or(u64::MAX),
                ),
            )
        })
        .collect()
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    let n = env("BENCH_N", 1000);
    let rounds = env("BENCH_REEXECS", 10).max(1);
    println!(
        "colony reexec benchmark, N = {n}, {rounds} reexecs, load average {}",
        load()
    );
    let c = Colony::new();
    for i in 0..n {
        c.write_unit(&format!("r{i:04}"), "exec = [\"sleep\", \"100000\"]\n");
    }
    let c = c.start();
    wait_for("all units running", Duration::from_secs(600), || {
        let all = c.status();
        (all.len() == n && all.iter().all(|u| u["state"] == "running")).then_some(())
    });
    let before = facts(&c);
    let pid = c.pid();
    let (mut answered, mut totals) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let t0 = Instant::now();
        let o = c.ctl(&["reexec"]);
        let a = t0.elapsed();
        let s = c.ctl(&["status"]);
        let t = t0.elapsed();
        assert_eq!(o.status.code(), Some(0), "reexec: {}", text(&o));
        assert_eq!(s.status.code(), Some(0), "status: {}", text(&s));
        println!(
            "  round {round}: reexec answered after {:.1} ms, status answered after {:.1} ms",
            ms(a),
            ms(t)
        );
        answered.push(ms(a));
        totals.push(ms(t));
    }
    assert_eq!(c.pid(), pid, "colony-init's PID changed");
    assert_eq!(facts(&c), before, "a unit changed across the reexecs");
    println!(
        "reexec with {n} units, request to reexec answered: median {:.1} ms, worst {:.1} ms",
        median(answered.clone()),
        worst(&answered)
    );
    println!(
        "reexec with {n} units, request to status answered: median {:.1} ms, worst {:.1} ms (target < 50 ms)",
        median(totals.clone()),
        worst(&totals)
    );
    let log = c.init_log();
    let last = |what: &str| {
        log.lines()
            .rev()
            .find(|l| l.contains(what))
            .unwrap_or("")
            .to_string()
    };
    println!("last round, old image: {}", last("re-executing"));
    println!("last round, new image: {}", last("took over from"));
    println!("load average after: {}", load());
}

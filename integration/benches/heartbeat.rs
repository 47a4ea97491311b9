//! Heartbeat units cost no wakeups beyond their beats (issue #5): N units with a
//! `[heartbeat]`, then colony-init's context switches while nothing beats, and while B
//! beats are made one by one.
//!
//! `cargo bench -p colony-integration --bench heartbeat` (BENCH_N, default 10,000, or as many
//! as the hard open-files limit allows at 5 fds a unit; BENCH_BEATS, default 200). Where that
//! limit is too low for 10,000 (20000 on the development host, whose root lacks
//! CAP_SYS_RESOURCE), `vm-tests/run heartbeat` measures 10,000 with colony-init as PID 1 of
//! a VM, which raises its own limit.

use std::time::{Duration, Instant};

use colony_integration::{wait_for, Colony};

fn ctxt(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("ctxt_switches"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

fn main() {
    // Each unit holds a pidfd, both ends of its output pipe, its log file and its directory (5 fds); its
    // cgroup's stat files are held open only in the room left. Without CAP_SYS_RESOURCE
    // colony-init can raise its limit only to the hard limit, which bounds N.
    let fits = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, hard)| (hard.saturating_sub(200) / 5) as usize)
        .unwrap_or(10_000);
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000.min(fits));
    if n < 10_000 {
        println!(
            "N = {n}: 10,000 units need about 50,000 fds, over this host's hard limit; \
             `vm-tests/run heartbeat` measures 10,000 in a VM"
        );
    }
    let beats: usize = std::env::var("BENCH_BEATS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let c = Colony::new();
    for i in 0..n {
        c.write_unit(
            &format!("hb{i}"),
            "exec = [\"sleep\", \"100000\"]\n[heartbeat]\nperiod = \"1h\"\ngrace = \"1h\"\n",
        );
    }
    let t = Instant::now();
    let c = c.start();
    wait_for("all units running", Duration::from_secs(900), || {
        let all = c.status();
        (all.len() == n && all.iter().all(|u| u["state"] == "running")).then_some(())
    });
    let started = t.elapsed();
    let pid = c.pid();

    let w0 = ctxt(pid);
    std::thread::sleep(Duration::from_secs(10));
    let idle = ctxt(pid) - w0;

    let w0 = ctxt(pid);
    for i in 0..beats {
        let f = c.run.join(format!("heartbeat/hb{}", i % n));
        let now = std::fs::File::options()
            .write(true)
            .open(&f)
            .expect("heartbeat file");
        now.set_modified(std::time::SystemTime::now())
            .expect("touch");
        // One beat at a time, so each is its own event.
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    let during = ctxt(pid) - w0;

    println!(
        "| heartbeat units | {n} (all running after {:.1} s) |",
        started.as_secs_f64()
    );
    println!("|---|---|");
    println!("| wakeups in 10 s with no beat | {idle} (target 0) |");
    println!(
        "| wakeups for {beats} beats, one at a time | {during} (target ≈ {beats}: one per beat) |"
    );
}

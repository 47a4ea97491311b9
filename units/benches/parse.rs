//! `cargo bench -p colony-units`: parse and validate a directory of 1000 unit files.
//!
//! Prints the time of `load_dir` (read + parse + whole-set validation) for 1000 varied units,
//! best and median of several runs, against the target of 50 ms. Run without `--bench`
//! (as `cargo test --benches` does), it only checks that a small directory loads.

use std::time::{Duration, Instant};

const TARGET: Duration = Duration::from_millis(50);

fn unit_text(i: usize) -> String {
    let mut s = format!(
        "description = \"bench unit {i}\"\nexec = [\"/usr/bin/env\", \"sleep\", \"{i}\"]\nenvironment = {{ LANG = \"C.UTF-8\", N = \"{i}\" }}\ntags = [\"bench\", \"g{}\"]\n",
        i % 10
    );
    if i > 0 {
        s.push_str(&format!("after = [\"u{:04}\"]\n", i - 1));
    }
    if i > 1 && i.is_multiple_of(3) {
        s.push_str(&format!("requires = [\"u{:04}\"]\n", i - 2));
    }
    match i % 5 {
        0 => s.push_str("user = \"root\"\numask = \"0027\"\ncapabilities = [\"CAP_NET_BIND_SERVICE\"]\n\n[restart]\npolicy = \"on-failure\"\nsuccess_codes = [0, 143]\ndelay_min = \"500ms\"\ndelay_max = \"1h\"\n\n[stop]\nsignal = \"SIGINT\"\ntimeout = \"10s\"\n"),
        1 => s.push_str("[ready]\ntype = \"tcp\"\naddress = \"127.0.0.1:8080\"\n\n[health]\nhttp = \"http://127.0.0.1:8080/healthz\"\nperiod = \"5s\"\n"),
        2 => s.push_str("[timer]\ncalendar = \"*/5 * * * *\"\npersistent = true\ntimeout = \"1h\"\n"),
        3 => s.push_str("[heartbeat]\nperiod = \"30s\"\n\n[resources]\nmemory_max = \"256M\"\ncpu_max = \"50%\"\ntasks_max = 64\n\n[log]\nmax_size = \"10M\"\nkeep = 3\n"),
        _ => s.push_str("extras = { shard = 3, name = \"x\", nested = { list = [1, 2, 3] } }\n\n[ready]\ntype = \"notify\"\nwatchdog = \"30s\"\n"),
    }
    s
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n = if bench { 1000 } else { 50 };
    let dir = tempfile::tempdir().expect("temp dir");
    for i in 0..n {
        std::fs::write(dir.path().join(format!("u{i:04}.unit")), unit_text(i)).expect("write");
    }
    let mut times = Vec::new();
    let runs = if bench { 15 } else { 1 };
    for _ in 0..runs {
        let t = Instant::now();
        let set = units::validate::load_dir(dir.path()).expect("load_dir");
        times.push(t.elapsed());
        assert_eq!(set.len(), n);
        if let Some((name, Err(e))) = set.iter().find(|(_, r)| r.is_err()) {
            panic!("{name}: {}", units::diag::render(e));
        }
    }
    if !bench {
        return;
    }
    times.sort();
    let best = times[0];
    let median = times[times.len() / 2];
    println!("units: load_dir + validate of {n} unit files ({runs} runs)");
    println!("  {:<8} {:>10}", "best", format!("{:.2?}", best));
    println!("  {:<8} {:>10}", "median", format!("{:.2?}", median));
    println!("  {:<8} {:>10}", "target", format!("< {:?}", TARGET));
    println!(
        "  {}",
        if median < TARGET {
            "OK: median under target"
        } else {
            "OVER TARGET"
        }
    );
}

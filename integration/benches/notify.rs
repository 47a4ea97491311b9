//! Figures for issue #10: the latency from a `READY=1` datagram to the start of a unit
//! ordered after the sender (median of BENCH_READY_N rounds, default 30), beside its floor
//! (the same stamp program fork+exec'ed directly), and the notify socket's cost: 100 units
//! (BENCH_PINGERS) each sending `WATCHDOG=1` every 100 ms for BENCH_PING_SECS (default 10),
//! colony-init's CPU time per ping.
//!
//! `cargo bench -p colony-integration --bench notify`. The binary is also the unit's
//! program: `notify.rs ready FILE` (stamps, sends READY=1), `stamp FILE`, `pinger`.
//! Set COLONY_BIN_DIR to measure release builds of colony-init/colonyctl.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use colony_integration::{wait_for, Colony};

fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: plain syscall writing into ts.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn notify(msg: &[u8]) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        eprintln!("no NOTIFY_SOCKET");
        std::process::exit(2);
    };
    let s = UnixDatagram::unbound().expect("socket");
    let _ = s.send_to(msg, path);
}

fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// The unit programs.
fn child(mode: &str, arg: Option<String>) -> ! {
    match mode {
        "ready" => {
            // Let colony-init settle after the spawn, then stamp and send.
            std::thread::sleep(Duration::from_millis(30));
            let t0 = mono_ns();
            notify(b"READY=1");
            if let Some(f) = arg {
                write_atomic(Path::new(&f), &t0.to_string());
            }
            loop {
                std::thread::sleep(Duration::from_secs(1000));
            }
        }
        "stamp" => {
            let t1 = mono_ns();
            if let Some(f) = arg {
                write_atomic(Path::new(&f), &t1.to_string());
            }
            loop {
                std::thread::sleep(Duration::from_secs(1000));
            }
        }
        "stamp-exit" => {
            let t1 = mono_ns();
            if let Some(f) = arg {
                write_atomic(Path::new(&f), &t1.to_string());
            }
            std::process::exit(0);
        }
        "pinger" => {
            notify(b"READY=1");
            let s = UnixDatagram::unbound().expect("socket");
            let path = std::env::var_os("NOTIFY_SOCKET").expect("NOTIFY_SOCKET");
            loop {
                let _ = s.send_to(b"WATCHDOG=1", &path);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        _ => {
            eprintln!("unknown mode {mode}");
            std::process::exit(2)
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn cpu_ticks(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; after ")" they are 11th and 12th.
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

fn read_ns(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Start colony-init, in a mount namespace without cgroupfs when `no_cgroups`.
fn start(mut c: Colony, no_cgroups: bool) -> Colony {
    if !no_cgroups {
        return c.start();
    }
    let inner = c.command();
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
        .arg("mount -t tmpfs none /sys/fs/cgroup && exec \"$0\" \"$@\"")
        .arg(inner.get_program())
        .args(inner.get_args())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c.child = Some(cmd.spawn().expect("unshare colony-init"));
    wait_for("colony-init to answer", Duration::from_secs(30), || {
        (c.ctl(&["status"]).status.code() != Some(5)).then_some(())
    });
    c
}

/// Microseconds from READY=1 (stamped by the sender) to the dependent's first stamp.
fn latency(me: &Path, rounds: usize, no_cgroups: bool) -> Vec<f64> {
    let c = Colony::new();
    let t0f = c.dir.path().join("t0");
    let t1f = c.dir.path().join("t1");
    c.write_unit(
        "src",
        &format!(
            "exec = [\"{}\", \"ready\", \"{}\"]\n[ready]\ntype = \"notify\"\n",
            me.display(),
            t0f.display()
        ),
    );
    c.write_unit(
        "dep",
        &format!(
            "exec = [\"{}\", \"stamp\", \"{}\"]\nrequires = [\"src\"]\n",
            me.display(),
            t1f.display()
        ),
    );
    let c = start(c, no_cgroups);
    let mut lat = Vec::new();
    for round in 0..=rounds {
        if round > 0 {
            let _ = std::fs::remove_file(&t0f);
            let _ = std::fs::remove_file(&t1f);
            // Restarting src restarts dep (it requires src): dep starts after READY=1.
            let o = c.ctl(&["restart", "src"]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        let (t0, t1) = wait_for("both stamps", Duration::from_secs(60), || {
            Some((read_ns(&t0f)?, read_ns(&t1f)?))
        });
        if round > 0 {
            lat.push(t1.saturating_sub(t0) as f64 / 1000.0);
        }
    }
    lat
}

fn main() {
    let mut args = std::env::args().skip(1);
    if let Some(mode) = args.next().filter(|m| !m.starts_with('-')) {
        child(&mode, args.next());
    }
    let rounds: usize = std::env::var("BENCH_READY_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let pingers: usize = std::env::var("BENCH_PINGERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let secs: u64 = std::env::var("BENCH_PING_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let me = std::env::current_exe().expect("current_exe");
    println!("colony notify benchmark");

    // Floor: fork+exec of the stamp program, from the moment before the fork.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut floor = Vec::new();
    for i in 0..rounds {
        let f = dir.path().join(format!("floor{i}"));
        let t0 = mono_ns();
        let st = Command::new(&me)
            .arg("stamp-exit")
            .arg(&f)
            .status()
            .expect("stamp");
        assert!(st.success());
        let t1 = read_ns(&f).expect("stamp file");
        floor.push((t1.saturating_sub(t0)) as f64 / 1000.0);
    }

    // READY=1 -> dependent's first instruction of main: with the unit cgroups of this
    // host, and without cgroups (process groups; a tmpfs over /sys/fs/cgroup in a mount
    // namespace of colony-init's own), which leaves colony-init's own share.
    let lat = latency(&me, rounds, false);
    let lat_nocg = latency(&me, rounds, true);
    // 100 units pinging their watchdog every 100 ms.
    let c = Colony::new();
    for i in 0..pingers {
        c.write_unit(
            &format!("p{i}"),
            &format!(
                "exec = [\"{}\", \"pinger\"]\n[ready]\ntype = \"notify\"\nwatchdog = \"2s\"\n",
                me.display()
            ),
        );
    }
    let c = c.start();
    wait_for("all pingers up", Duration::from_secs(300), || {
        let all = c.status();
        (all.len() == pingers && all.iter().all(|u| u["ready"] == true)).then_some(())
    });
    let pid = c.pid();
    // SAFETY: sysconf is a plain query.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let c0 = cpu_ticks(pid);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let cpu_s = (cpu_ticks(pid) - c0) as f64 / hz;
    let wall = t.elapsed().as_secs_f64();
    let pings = pingers as f64 * wall * 10.0;
    let restarts: u64 = c
        .status()
        .iter()
        .map(|u| u["restarts"].as_u64().unwrap_or(0))
        .sum();

    println!();
    println!("| metric | colony | floor / target |");
    println!("|---|---|---|");
    println!(
        "| READY=1 -> dependent started (median of {rounds}) | {:.0} µs | fork+exec of the same program {:.0} µs; target < 1000 µs |",
        median(lat.clone()),
        median(floor)
    );
    println!(
        "| same, slowest | {:.0} µs | |",
        lat.iter().cloned().fold(0.0, f64::max)
    );
    println!(
        "| same without cgroups (median) | {:.0} µs | the difference is creating the unit's cgroups and joining them |",
        median(lat_nocg)
    );
    println!(
        "| {pingers} units x WATCHDOG=1 every 100 ms, {wall:.1} s | {:.0} datagrams/s, colony-init CPU {:.1}% | |",
        pings / wall,
        cpu_s / wall * 100.0
    );
    println!(
        "| colony-init CPU per ping | {:.1} µs | (CPU read in clock ticks of {:.0} ms) |",
        cpu_s * 1e6 / pings,
        1e3 / hz
    );
    println!("| watchdog restarts meanwhile | {restarts} | 0 |");
}

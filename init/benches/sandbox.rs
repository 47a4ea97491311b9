//! Start latency of a unit with the full `[sandbox]` against the same unit without it:
//! clone to exec of `/bin/true` through colony-init's own spawn path (the parent's
//! preparation included: the mount plan reads the mount table at every start, the seccomp
//! programs come from the per-unit cache), p50 and p90 printed, and the same without one
//! part at a time (the network namespace, the syscall list, every filter) to show where it
//! goes. Root only.
//!
//! `cargo bench -p colony-init --bench sandbox` (BENCH_N starts each, default 300).

use std::ffi::CString;
use std::path::Path;
use std::time::Instant;

use colony_init::kernel::creds::Creds;
use colony_init::kernel::sandbox::{prepare, Cache, Join};
use colony_init::kernel::spawn::{self, Placement, SpawnRequest};

const FULL: &str = r#"exec = ["/bin/true"]
[sandbox]
protect_system = "strict"
protect_home = true
private_tmp = true
private_devices = true
private_network = true
read_write_paths = ["/var/tmp"]
protect_kernel_tunables = true
protect_kernel_modules = true
protect_kernel_logs = true
protect_control_groups = true
system_call_filter = ["@system-service", "~@privileged"]
system_call_error_number = "EPERM"
restrict_address_families = ["AF_UNIX", "AF_INET", "AF_INET6"]
memory_deny_write_execute = true
restrict_namespaces = true
restrict_realtime = true
restrict_suid_sgid = true
lock_personality = true
"#;

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p) as usize]
}

/// Start-to-exec times (ms) and, apart, the parent's preparation alone.
fn run(text: &str, n: usize, run_dir: &Path) -> (Vec<f64>, Vec<f64>) {
    let unit = units::parse::parse_unit(Path::new("/bench/b.unit"), text).expect("unit");
    let creds = Creds::for_unit(&unit).expect("creds");
    let argv = [CString::new("/bin/true").unwrap()];
    let envp = [CString::new("PATH=/usr/bin:/bin").unwrap()];
    let mut cache = Cache::default();
    let mut out = Vec::with_capacity(n);
    let mut prep = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let sb = prepare(&mut cache, &unit, &creds, run_dir, Join::Fresh).expect("prepare");
        prep.push(t.elapsed().as_secs_f64() * 1e3);
        let req = SpawnRequest {
            argv: &argv,
            envp: &envp,
            cwd: None,
            creds: &creds,
            stdout: None,
            stderr: None,
            placement: Placement::None,
            new_process_group: false,
            sandbox: sb.as_ref(),
            extras: None,
        };
        let child = spawn::spawn(&req).expect("spawn");
        out.push(t.elapsed().as_secs_f64() * 1e3);
        spawn::wait(std::os::fd::AsFd::as_fd(&child.pidfd)).expect("wait");
    }
    (out, prep)
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("sandbox bench: needs root (mount namespaces)");
        return;
    }
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut plain, _) = run("exec = [\"/bin/true\"]\n", n, dir.path());
    let (mut full, mut prep) = run(FULL, n, dir.path());
    // Where it goes: the same without one part at a time.
    let parts = [
        ("no netns", FULL.replace("private_network = true\n", "")),
        (
            "no syscall list",
            FULL.replace(
                "system_call_filter = [\"@system-service\", \"~@privileged\"]\n",
                "",
            ),
        ),
        ("mounts only", {
            let cut = FULL.find("system_call_filter").unwrap_or(FULL.len());
            FULL[..cut].replace("private_network = true\n", "")
        }),
    ];
    let (p50, f50) = (percentile(&mut plain, 0.5), percentile(&mut full, 0.5));
    println!("start to exec, {n} starts each (ms)");
    println!(
        "  no sandbox       p50 {p50:.3}  p90 {:.3}",
        percentile(&mut plain, 0.9)
    );
    println!(
        "  full sandbox     p50 {f50:.3}  p90 {:.3}",
        percentile(&mut full, 0.9)
    );
    for (name, text) in parts {
        let (mut t, _) = run(&text, n, dir.path());
        println!(
            "  {name:<16} p50 {:.3}  p90 {:.3}",
            percentile(&mut t, 0.5),
            percentile(&mut t, 0.9)
        );
    }
    println!(
        "  of which the parent's preparation p50 {:.3}",
        percentile(&mut prep, 0.5)
    );
    println!(
        "  sandbox cost     p50 +{:.3} ms (target: under 2 ms)",
        f50 - p50
    );
}

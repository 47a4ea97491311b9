//! Start latency of a unit with the full `[sandbox]` against the same unit without it:
//! clone to exec of `/bin/true` through colony-init's own spawn path (the parent's
//! preparation included: the mount plan reads the mount table at every start, the seccomp
//! programs come from the per-unit cache), p50 and p90 printed, and the same without one
//! part at a time (the network namespace, the syscall list, every filter) to show where it
//! goes. The variants take turns start by start. Root only.
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

/// One variant: its unit and what its starts took (ms), the parent's preparation apart.
struct Variant {
    name: &'static str,
    unit: units::model::Unit,
    creds: Creds,
    cache: Cache,
    starts: Vec<f64>,
    prep: Vec<f64>,
}

impl Variant {
    fn new(name: &'static str, text: &str) -> Variant {
        let unit = units::parse::parse_unit(Path::new("/bench/b.unit"), text).expect("unit");
        let creds = Creds::for_unit(&unit).expect("creds");
        Variant {
            name,
            unit,
            creds,
            cache: Cache::default(),
            starts: Vec::new(),
            prep: Vec::new(),
        }
    }

    /// One start to exec, then waits for the exit.
    fn start(&mut self, run_dir: &Path) {
        let argv = [CString::new("/bin/true").unwrap()];
        let envp = [CString::new("PATH=/usr/bin:/bin").unwrap()];
        let t = Instant::now();
        let sb = prepare(
            &mut self.cache,
            &self.unit,
            &self.creds,
            run_dir,
            Join::Fresh,
        )
        .expect("prepare");
        self.prep.push(t.elapsed().as_secs_f64() * 1e3);
        let req = SpawnRequest {
            argv: &argv,
            envp: &envp,
            cwd: None,
            creds: &self.creds,
            stdout: None,
            stderr: None,
            placement: Placement::None,
            new_process_group: false,
            sandbox: sb.as_ref(),
            extras: None,
        };
        let child = spawn::spawn(&req).expect("spawn");
        self.starts.push(t.elapsed().as_secs_f64() * 1e3);
        spawn::wait(std::os::fd::AsFd::as_fd(&child.pidfd)).expect("wait");
    }
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
    // Where it goes: the same without one part at a time. The variants take turns, one
    // start each, so the machine's load (shared, changing) weighs on all of them alike.
    let mut variants = [
        Variant::new("no sandbox", "exec = [\"/bin/true\"]\n"),
        Variant::new("full sandbox", FULL),
        Variant::new("no netns", &FULL.replace("private_network = true\n", "")),
        Variant::new(
            "no syscall list",
            &FULL.replace(
                "system_call_filter = [\"@system-service\", \"~@privileged\"]\n",
                "",
            ),
        ),
        Variant::new("mounts only", &{
            let cut = FULL.find("system_call_filter").unwrap_or(FULL.len());
            FULL[..cut].replace("private_network = true\n", "")
        }),
    ];
    for _ in 0..n {
        for v in variants.iter_mut() {
            v.start(dir.path());
        }
    }
    println!("start to exec, {n} starts each, taking turns (ms)");
    for v in variants.iter_mut() {
        println!(
            "  {:<16} p50 {:.3}  p90 {:.3}",
            v.name,
            percentile(&mut v.starts, 0.5),
            percentile(&mut v.starts, 0.9)
        );
    }
    let p50 = percentile(&mut variants[0].starts, 0.5);
    let f50 = percentile(&mut variants[1].starts, 0.5);
    println!(
        "  of which the parent's preparation p50 {:.3}",
        percentile(&mut variants[1].prep, 0.5)
    );
    println!(
        "  sandbox cost     p50 +{:.3} ms (target: under 2 ms)",
        f50 - p50
    );
}

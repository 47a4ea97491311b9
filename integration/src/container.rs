//! Real OCI containers with podman: the image under test and containers that clean up.
//!
//! [`image`] builds (once per test process, and once per binary hash across processes and
//! runs) a minimal image from freshly built static (musl) colony-init and colonyctl with
//! `container/build-image`, the script users copy. [`podman`] is a podman command on runc (crun
//! fails on cgroup-v1/hybrid hosts) and [`Container`] a uniquely named container that is
//! removed, with its anonymous volumes, when dropped.
//!
//! When podman is missing and we are root on Debian, [`require_podman`] installs `podman runc
//! busybox-static` (under a file lock, so parallel tests do not race apt); otherwise it fails
//! with what to install.
//!
//! Environment: `COLONY_PODMAN_RUNTIME` (default `/usr/sbin/runc` when present),
//! `COLONY_MUSL_BIN_DIR` (take static binaries from there, no build).

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::bins::workspace_root;
use crate::{unique_name, wait_for, SOON};

/// Every `podman run` needs these here: podman's default nofile and nproc limits are above
/// this host's hard limits, which cannot be raised without CAP_SYS_RESOURCE.
pub const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

/// The repository of the test images; one tag per hash of what went in.
pub const TEST_REPO: &str = "localhost/colony-test";

fn runtime() -> Option<String> {
    match std::env::var("COLONY_PODMAN_RUNTIME") {
        Ok(r) if !r.is_empty() => Some(r),
        _ => Path::new("/usr/sbin/runc")
            .exists()
            .then(|| "/usr/sbin/runc".to_string()),
    }
}

/// `podman --runtime RUNC`.
pub fn podman() -> Command {
    let mut c = Command::new("podman");
    if let Some(r) = runtime() {
        c.arg("--runtime").arg(r);
    }
    c.stdin(Stdio::null());
    c
}

/// Run a podman command to its end; its output.
pub fn podman_out(args: &[&str]) -> Output {
    podman().args(args).output().expect("run podman")
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// An exclusive lock on a file in the temp dir, held until dropped (flock, released on exit).
struct FileLock(#[allow(dead_code)] std::fs::File);

impl FileLock {
    fn take(name: &str) -> FileLock {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(std::env::temp_dir().join(name))
            .expect("open lock file");
        // SAFETY: flock on an fd we own.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
        FileLock(f)
    }
}

/// Make sure podman, runc and a static busybox are here: install them as root on Debian,
/// else fail saying what is missing.
pub fn require_podman() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let _lock = FileLock::take("colony-container-install.lock");
        let missing = |p: &str| match p {
            "podman" => !have("podman"),
            "runc" => !Path::new("/usr/sbin/runc").exists() && !have("runc"),
            "busybox-static" => !Path::new("/bin/busybox").exists(),
            _ => false,
        };
        let need: Vec<&str> = ["podman", "runc", "busybox-static"]
            .into_iter()
            .filter(|p| missing(p))
            .collect();
        if need.is_empty() {
            return;
        }
        // SAFETY: getuid has no preconditions.
        let root = unsafe { libc::getuid() } == 0;
        if root && have("apt-get") {
            eprintln!("container tests: installing {need:?}");
            let ok = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {}",
                    need.join(" ")
                ))
                .stdin(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "container tests: apt-get install {} failed", need.join(" "));
        }
        let still: Vec<&str> = need.iter().copied().filter(|p| missing(p)).collect();
        assert!(
            still.is_empty(),
            "container tests need {still:?}: apt-get install -y podman runc busybox-static (./test-all does it as root)"
        );
    });
}

fn sha256(paths: &[PathBuf]) -> String {
    let o = Command::new("sha256sum")
        .args(paths)
        .output()
        .expect("run sha256sum");
    assert!(o.status.success(), "sha256sum {paths:?} failed");
    // Hash of the hashes (names differ between machines, contents do not).
    let sums: String = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect::<Vec<_>>()
        .join("\n");
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run sha256sum");
    use std::io::Write;
    c.stdin
        .take()
        .expect("stdin")
        .write_all(sums.as_bytes())
        .expect("write");
    let o = c.wait_with_output().expect("sha256sum");
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("0")
        .chars()
        .take(16)
        .collect()
}

/// The directory of the static colony-init and colonyctl, built now (release, musl).
pub fn musl_bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("COLONY_MUSL_BIN_DIR") {
        return PathBuf::from(d);
    }
    let root = workspace_root();
    let _ = Command::new("rustup")
        .args(["target", "add", "x86_64-unknown-linux-musl"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let st = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--quiet",
            "--release",
            "--target",
            "x86_64-unknown-linux-musl",
            "-p",
            "colony-init",
            "-p",
            "colonyctl",
        ])
        .status()
        .expect("run cargo build");
    assert!(
        st.success(),
        "cargo build (musl) of colony-init/colonyctl failed"
    );
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                root.join(d)
            }
        }
        _ => root.join("target"),
    };
    target.join("x86_64-unknown-linux-musl").join("release")
}

/// The test image (`localhost/colony-test:HASH`), built if it does not exist yet.
/// Test images older than two hours are removed when a new one is built.
pub fn image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            require_podman();
            let bins = musl_bin_dir();
            let root = workspace_root();
            let busybox = PathBuf::from("/bin/busybox");
            let inputs = [
                bins.join("colony-init"),
                bins.join("colonyctl"),
                busybox.clone(),
                root.join("container/build-image"),
                root.join("container/Containerfile"),
            ];
            let tag = format!("{TEST_REPO}:{}", sha256(&inputs));
            let _lock = FileLock::take("colony-container-image.lock");
            let exists = podman_out(&["image", "exists", &tag]).status.success();
            if !exists {
                let o = Command::new(root.join("container/build-image"))
                    .arg("-t")
                    .arg(&tag)
                    .arg("--bin-dir")
                    .arg(&bins)
                    .arg("--busybox")
                    .arg(&busybox)
                    .stdin(Stdio::null())
                    .output()
                    .expect("run container/build-image");
                assert!(
                    o.status.success(),
                    "container/build-image failed: {}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                // Test images of other builds: remove those older than two hours (a test run of
                // another checkout may be using a recent one). Only our repository's tags: a
                // filter on the reference lists every name of a matching image.
                let list = podman_out(&[
                    "images",
                    "--filter",
                    &format!("reference={TEST_REPO}"),
                    "--filter",
                    "until=2h",
                    "--format",
                    "{{.Repository}}:{{.Tag}}",
                ]);
                for old in String::from_utf8_lossy(&list.stdout).lines() {
                    let old = old.trim();
                    if old != tag && old.starts_with(&format!("{TEST_REPO}:")) {
                        let _ = podman_out(&["rmi", old]);
                    }
                }
            }
            tag
        })
        .clone()
}

/// A container named uniquely; `podman rm -f` when dropped.
pub struct Container {
    pub name: String,
}

impl Container {
    /// A fresh name, nothing started yet (for `podman run` in the foreground).
    pub fn named(prefix: &str) -> Container {
        Container {
            name: unique_name(&format!("colony-{prefix}")),
        }
    }

    /// `podman run -d --name NAME ULIMITS OPTS IMAGE CMD...`.
    pub fn start(prefix: &str, opts: &[&str], cmd: &[&str]) -> Container {
        let c = Container::named(prefix);
        let mut all = vec!["-d"];
        all.extend_from_slice(opts);
        let o = c.run_command(&all, cmd).output().expect("podman run");
        assert!(
            o.status.success(),
            "podman run -d {opts:?} {cmd:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        c
    }

    /// `podman run --name NAME ULIMITS OPTS IMAGE CMD...` (no -d; add flags through opts).
    pub fn run_command(&self, opts: &[&str], cmd: &[&str]) -> Command {
        let mut c = podman();
        c.args(["run", "--name", &self.name])
            .args(ULIMITS)
            .args(opts)
            .arg(image())
            .args(cmd);
        c
    }

    /// The container's exit code once it has exited (`podman wait`, bounded).
    pub fn wait_exit(&self, limit: Duration) -> i32 {
        wait_for("the container to exit", limit, || {
            let o = podman_out(&[
                "inspect",
                "--format",
                "{{.State.Status}} {{.State.ExitCode}}",
                &self.name,
            ]);
            let s = String::from_utf8_lossy(&o.stdout).to_string();
            let mut it = s.split_whitespace();
            match (it.next(), it.next()) {
                (Some("exited" | "stopped"), Some(code)) => code.parse::<i32>().ok(),
                _ => None,
            }
        })
    }

    /// `podman exec NAME ARGS...`.
    pub fn exec(&self, args: &[&str]) -> Output {
        podman()
            .arg("exec")
            .arg(&self.name)
            .args(args)
            .output()
            .expect("podman exec")
    }

    /// `podman logs NAME`: (stdout, stderr).
    pub fn logs(&self) -> (String, String) {
        let o = podman_out(&["logs", &self.name]);
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// stdout and stderr of `podman logs`, together.
    pub fn all_logs(&self) -> String {
        let (o, e) = self.logs();
        format!("{o}{e}")
    }

    /// Wait until the container's logs contain `text`.
    pub fn wait_log(&self, text: &str) {
        let deadline = Instant::now() + SOON;
        loop {
            let l = self.all_logs();
            if l.contains(text) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out waiting for {text:?} in the logs of {}:\n{l}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// `podman kill -s SIG NAME`.
    pub fn kill(&self, sig: &str) {
        let o = podman_out(&["kill", "-s", sig, &self.name]);
        assert!(
            o.status.success(),
            "podman kill -s {sig}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// `podman stop -t TIMEOUT NAME`; how long it took.
    pub fn stop(&self, timeout_s: u32) -> Duration {
        let t = Instant::now();
        let o = podman_out(&["stop", "-t", &timeout_s.to_string(), &self.name]);
        let took = t.elapsed();
        assert!(
            o.status.success(),
            "podman stop: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        took
    }

    /// Every process in the container from /proc: (pid, ppid, state, comm).
    pub fn procs(&self) -> Vec<(i32, i32, char, String)> {
        let o = self.exec(&["sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null"]);
        parse_stats(&String::from_utf8_lossy(&o.stdout))
    }
}

/// Parse `/proc/PID/stat` lines: (pid, ppid, state, comm).
pub fn parse_stats(text: &str) -> Vec<(i32, i32, char, String)> {
    text.lines()
        .filter_map(|l| {
            let (head, rest) = l.rsplit_once(')')?;
            let (pid, comm) = head.split_once(" (")?;
            let mut f = rest.split_whitespace();
            let state = f.next()?.chars().next()?;
            let ppid = f.next()?.parse().ok()?;
            Some((pid.trim().parse().ok()?, ppid, state, comm.to_string()))
        })
        .collect()
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman()
            .args(["rm", "-f", "-v", "-t", "0", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

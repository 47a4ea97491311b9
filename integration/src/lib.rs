//! Helpers shared by the integration tests: the built binaries, a colony-init in a
//! temporary directory, bounded waits on conditions.
//!
//! [`bin`] finds (and builds once) the binaries under test. Tests never sleep to let things happen:
//! they wait for a condition, with a bound, and fail with what they waited for.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
pub use units::proto::UnitStatus;

pub mod bins;
pub mod container;
pub mod fleet;
pub mod ns;
pub mod web;
pub mod webdriver;

pub use bins::bin;

/// A test that cannot run here says why; in CI (env `CI` set) that is a failure, since CI
/// installs everything the tests need.
#[macro_export]
macro_rules! skip_or_fail {
    ($($t:tt)*) => {{
        let why = format!($($t)*);
        if std::env::var_os("CI").is_some() {
            panic!("{why} (CI must run every test)");
        }
        eprintln!("{why}");
    }};
}

/// Compile the C program `src` into `dir/name` with `cc -O2`; None (after skip_or_fail!)
/// where there is no C compiler.
pub fn compile_c(dir: &std::path::Path, name: &str, src: &str) -> Option<PathBuf> {
    let file = dir.join(format!("{name}.c"));
    let exe = dir.join(name);
    std::fs::write(&file, src).expect("write C");
    match Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(&exe)
        .arg(&file)
        .status()
    {
        Ok(s) if s.success() => Some(exe),
        other => {
            skip_or_fail!("skipped: no C compiler ({other:?})");
            None
        }
    }
}

/// A free TCP port on loopback (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Wait until `f` returns Some, at most `timeout`; panic naming `what` otherwise.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The bound for things that should happen "at once": generous, because the machine may be
/// loaded by parallel builds; a passing test never waits for it.
pub const SOON: Duration = Duration::from_secs(45);

static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A unique name for this test's cgroup below colony-init's own.
pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    )
}

/// A command's exit code, stdout and stderr, for an assertion's message.
pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A colony-init supervising a temporary units directory.
pub struct Colony {
    pub dir: tempfile::TempDir,
    pub units: PathBuf,
    pub run: PathBuf,
    pub logs: PathBuf,
    pub state: PathBuf,
    pub child: Option<Child>,
    pub extra_args: Vec<String>,
    /// The open-files limit colony-init is started with, `(soft, hard)` (default: ours).
    pub nofile: Option<(u64, u64)>,
    /// colony-init cannot raise its open-files limit (CAP_SYS_RESOURCE is dropped from its
    /// bounding set, as in a default container), so `nofile` is what it gets.
    pub fixed_nofile: bool,
    /// A program that colony-init is started through (`WRAPPER colony-init ARGS`), which
    /// must exec it.
    pub wrapper: Option<PathBuf>,
    /// The cgroup colony-init creates below its own (removed on drop if it was left).
    pub cgroup_name: String,
}

impl Colony {
    /// Directories only; write units, then [`Colony::start`].
    pub fn new() -> Colony {
        let dir = tempfile::tempdir().expect("tempdir");
        let units = dir.path().join("units");
        std::fs::create_dir_all(&units).expect("units dir");
        Colony {
            units,
            run: dir.path().join("run"),
            logs: dir.path().join("log"),
            state: dir.path().join("state"),
            dir,
            child: None,
            extra_args: Vec::new(),
            nofile: None,
            fixed_nofile: false,
            wrapper: None,
            cgroup_name: unique_name("colony-test"),
        }
    }

    /// Write `NAME.unit` atomically (temp file + rename, as an editor's save would).
    pub fn write_unit(&self, name: &str, text: &str) {
        let tmp = self.units.join(format!(".{name}.unit.tmp"));
        std::fs::write(&tmp, text).expect("write unit");
        std::fs::rename(&tmp, self.units.join(format!("{name}.unit"))).expect("rename unit");
    }

    pub fn remove_unit(&self, name: &str) {
        std::fs::remove_file(self.units.join(format!("{name}.unit"))).expect("remove unit");
    }

    pub fn command(&self) -> Command {
        let mut c = match &self.wrapper {
            Some(w) => {
                let mut c = Command::new(w);
                c.arg(bin("colony-init"));
                c
            }
            None => Command::new(bin("colony-init")),
        };
        c.arg("--units")
            .arg(&self.units)
            .arg("--run-dir")
            .arg(&self.run)
            .arg("--log-dir")
            .arg(&self.logs)
            .arg("--state-dir")
            .arg(&self.state)
            .arg("--cgroup-name")
            .arg(&self.cgroup_name)
            .args(&self.extra_args)
            .stdin(Stdio::null());
        if let Some((soft, hard)) = self.nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and touches no memory of ours.
            unsafe {
                c.pre_exec(move || {
                    nix::sys::resource::setrlimit(
                        nix::sys::resource::Resource::RLIMIT_NOFILE,
                        soft,
                        hard,
                    )
                    .map_err(std::io::Error::from)
                });
            }
        }
        if self.fixed_nofile {
            use std::os::unix::process::CommandExt;
            /// CAP_SYS_RESOURCE (linux/capability.h): raising a hard limit needs it.
            const CAP_SYS_RESOURCE: libc::c_ulong = 24;
            // SAFETY: prctl is a plain syscall (async-signal-safe) on our own bounding set.
            unsafe {
                c.pre_exec(|| {
                    if libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        c
    }

    /// Start colony-init and wait until it answers `status`.
    pub fn start(mut self) -> Colony {
        let log = std::fs::File::create(self.dir.path().join("colony-init.log")).expect("log");
        let child = self
            .command()
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start colony-init");
        self.child = Some(child);
        let deadline = Instant::now() + SOON;
        loop {
            let o = self.ctl(&["status"]);
            if o.status.code() != Some(5) {
                break;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {SOON:?} waiting for colony-init to answer status: {}\ncolony-init log:\n{}",
                    String::from_utf8_lossy(&o.stderr),
                    self.init_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self
    }

    /// colony-init's own log so far (for failure messages).
    pub fn init_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("colony-init.log")).unwrap_or_default()
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(bin("colonyctl"))
            .arg("--run-dir")
            .arg(&self.run)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run colonyctl")
    }

    /// `status --json` of every unit.
    pub fn status(&self) -> Vec<Value> {
        let o = self.ctl(&["--json", "status"]);
        serde_json::from_slice::<Vec<Value>>(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "status --json: {e}: {}{}\ncolony-init log:\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr),
                self.init_log()
            )
        })
    }

    pub fn unit(&self, name: &str) -> Option<Value> {
        self.status().into_iter().find(|u| u["name"] == name)
    }

    /// `status --json` of every unit, read as the protocol's own type: a field renamed or
    /// retyped in colony-init fails here instead of comparing `null` with something.
    pub fn status_typed(&self) -> Vec<UnitStatus> {
        let o = self.ctl(&["--json", "status"]);
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "status --json: {e}: {}{}\ncolony-init log:\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr),
                self.init_log()
            )
        })
    }

    /// One unit of [`Colony::status_typed`].
    pub fn unit_typed(&self, name: &str) -> Option<UnitStatus> {
        self.status_typed().into_iter().find(|u| u.name == name)
    }

    /// As [`Colony::wait_unit`], on the typed status.
    pub fn wait_unit_typed(
        &self,
        name: &str,
        what: &str,
        f: impl Fn(&UnitStatus) -> bool,
    ) -> UnitStatus {
        let v = self.wait_unit(name, what, |u| {
            serde_json::from_value::<UnitStatus>(u.clone()).is_ok_and(|u| f(&u))
        });
        serde_json::from_value(v).expect("a status entry read once already")
    }

    /// `status --json`, or None while colony-init does not answer (yet).
    pub fn try_status(&self) -> Option<Vec<Value>> {
        let o = self.ctl(&["--json", "status"]);
        serde_json::from_slice::<Vec<Value>>(&o.stdout).ok()
    }

    /// Wait until the unit's status satisfies `f`; return that status.
    pub fn wait_unit(&self, name: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + SOON;
        loop {
            let u = self
                .try_status()
                .and_then(|all| all.into_iter().find(|u| u["name"] == name));
            if let Some(u) = u.as_ref().filter(|u| f(u)) {
                return u.clone();
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out waiting for {name} to be {what}; last status: {u:?}\ncolony-init log:\n{}",
                    self.init_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_state(&self, name: &str, state: &str) -> Value {
        self.wait_unit(name, state, |u| u["state"] == state)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// SIGTERM colony-init and wait (bounded) for it to exit; its exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        // SAFETY: signalling the child we started, by its PID.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = wait_for("colony-init to exit after SIGTERM", SOON, || {
            child.try_wait().ok().flatten()
        });
        status.code()
    }
}

impl Default for Colony {
    fn default() -> Self {
        Colony::new()
    }
}

impl Drop for Colony {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A failed test shows what colony-init saw (CI keeps nothing else).
            let log = self.init_log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(300)..];
            eprintln!(
                "--- colony-init log (last {} lines) ---\n{}\n--- end ---",
                tail.len(),
                tail.join("\n")
            );
        }
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill takes plain integers; the PID is our own unreaped child's.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        remove_cgroups(&self.cgroup_name);
    }
}

/// Remove what is left of a test's cgroup `name` in every hierarchy (a colony-init that
/// exits cleanly removes its own; one that was killed cannot). Processes still inside are
/// SIGKILLed first: they are the test's own units.
pub fn remove_cgroups(name: &str) {
    fn find(dir: &std::path::Path, name: &str, depth: u32, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name() == name {
                out.push(e.path());
            } else if depth > 0 {
                find(&e.path(), name, depth - 1, out);
            }
        }
    }
    fn remove_tree(dir: &std::path::Path) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    remove_tree(&e.path());
                }
            }
        }
        if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::remove_dir(dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let mut found = Vec::new();
    find(std::path::Path::new("/sys/fs/cgroup"), name, 3, &mut found);
    for d in found {
        remove_tree(&d);
    }
}

/// Whether a process exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// COMPREPLY after completing the last word of `words` (bash, the completion script sourced).
pub fn bash_complete(
    script: &std::path::Path,
    words: &[&str],
    run_env: Option<&std::path::Path>,
) -> Vec<String> {
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect();
    let prog = format!(
        "source {script}\n\
         COMP_WORDS=({words})\n\
         COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n\
         COMP_LINE=\"${{COMP_WORDS[*]}}\"\n\
         COMP_POINT=${{#COMP_LINE}}\n\
         fn=$(complete -p colonyctl | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p')\n\
         \"$fn\" colonyctl \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script = script.display(),
        words = quoted.join(" "),
    );
    let ctl_dir = bin("colonyctl").parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        ctl_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new("bash");
    c.args(["--norc", "--noprofile", "-c", &prog])
        .env("PATH", path)
        .env_remove("COLONY_RUN_DIR");
    if let Some(r) = run_env {
        c.env("COLONY_RUN_DIR", r);
    }
    let o = c.output().expect("run bash");
    assert!(
        o.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

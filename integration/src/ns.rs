//! Running colony-init in a PID namespace of its own, where it is PID 1 and may kill(-1)
//! safely, and helpers for looking at processes.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// `unshare --pid --fork --mount-proc PROG`: PROG runs as PID 1 of a new PID namespace
/// with its own /proc (and a private mount namespace, so its mounts stay there).
pub fn in_pid_ns(prog: &Path) -> Command {
    let mut c = Command::new("unshare");
    c.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(prog);
    c
}

/// True if unshare works here (root, namespaces allowed).
pub fn pid_ns_available() -> bool {
    Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Whether `pid` still exists (a zombie counts as existing: it has not been reaped).
pub fn pid_exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Wait until `cond` holds or `limit` passes; returns whether it held.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

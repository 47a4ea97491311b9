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

/// The processes whose parent is `pid` (read from /proc).
pub fn children_of(pid: u32) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|ent| ent.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|stat| {
                    // The command name may hold spaces and parentheses: fields follow the last ')'.
                    let (_, rest) = stat.rsplit_once(')')?;
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// The command name of `pid` (`/proc/PID/comm`), empty once it is gone.
pub fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A child of `parent` whose command name is `name`.
pub fn child_named(parent: u32, name: &str) -> Option<i32> {
    children_of(parent).into_iter().find(|p| comm(*p) == name)
}

//! Killing a unit under cgroup v1 only (no cgroup.kill): SIGKILL over cgroup.procs until it
//! is empty, frozen first where the freezer is mounted.

use super::*;

fn read_pids(procs: &Path) -> io::Result<Vec<i32>> {
    Ok(read_file(procs)?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect())
}

pub(super) fn procs_empty(procs: &Path) -> bool {
    read_pids(procs).map(|p| p.is_empty()).unwrap_or(true)
}

/// SIGKILL over cgroup.procs until it is empty. With a v1 freezer, the first round runs
/// frozen (nothing can fork in between), then thaws so the kills are delivered.
pub(super) fn kill_loop(procs: &Path, freezer: Option<&Path>) -> io::Result<()> {
    let frozen = freezer.is_some_and(|f| write_file(f, "FROZEN").is_ok());
    let end = Instant::now() + V1_KILL_BOUND;
    let mut first = true;
    loop {
        let pids = match read_pids(procs) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                if let (true, Some(f)) = (frozen, freezer) {
                    let _ = write_file(f, "THAWED");
                }
                return Err(e);
            }
        };
        for &pid in &pids {
            // SAFETY: plain syscall; these pids are in our unit's cgroup right now.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if first {
            first = false;
            if let (true, Some(f)) = (frozen, freezer) {
                // Frozen v1 tasks only die once thawed.
                write_file(f, "THAWED")?;
            }
        }
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() >= end {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{} still has {} processes", procs.display(), pids.len()),
            ));
        }
        // SAFETY: plain syscall.
        unsafe { libc::sched_yield() };
    }
}

//! Processes that escaped a unit without a cgroup.
//!
//! Where no cgroup tracks a unit, its process group is the cleanup handle, and a program
//! that runs `setsid daemon &` (or double-forks) leaves it. colony-init is PID 1 or a child
//! subreaper, so such a process stays among colony-init's descendants (re-parented to it
//! when its parent dies). At a stop of such a unit (any `KillAll`), the loop looks for them
//! here: among colony-init's descendants only (never anything outside its own tree), a
//! process belongs to the unit if it is in the unit's session (it changed only its process
//! group), or if its environment carries the unit's `COLONY_UNIT` (it made a new session).
//! The environment is a best effort, as for s6 and tini: a process may rewrite or clear
//! it, and only the first [`ENVIRON_MAX`] bytes are read.
//!
//! The scan is one [`Snapshot`] for all units stopped in a loop turn, walked down the
//! kernel's children lists from colony-init (past the main processes of units that run on),
//! or from all of /proc where the kernel has no such lists. A process found is held through
//! a pidfd opened after the scan and checked against it (same start time, still the
//! unit's), so a PID reused meanwhile is never signalled. This runs only when a unit
//! without a cgroup is killed (its stop, or the end of its main process), never on a hot
//! path.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::fd::OwnedFd;

/// How much of a process's environment is read (it is unbounded otherwise).
pub const ENVIRON_MAX: usize = 64 * 1024;
/// `/proc/PID/stat` is well under this (the command name is at most 64 bytes).
const STAT_MAX: u64 = 4096;
/// A children list: room for a million pids.
const CHILDREN_MAX: u64 = 8 << 20;

/// What `/proc/PID/stat` says of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// Clock ticks after boot: with the pid, it names one process for good.
    pub start: u64,
    /// Exited, not reaped yet: nothing is left to kill.
    pub zombie: bool,
}

/// A unit as the scan matches processes to it.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// The unit's name (its `COLONY_UNIT`).
    pub name: &'a str,
    /// The process group (and session) of its last start: handled by `kill(-pgid)`, and a
    /// process left in its session but in another group is a stray.
    pub pgid: Option<i32>,
}

/// A stray held by a pidfd (readable when it exits).
#[derive(Debug)]
pub struct Stray {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

/// Parse `/proc/PID/stat`. The command name (in parentheses) may hold anything, so the
/// fields are taken after its last `)`.
pub fn parse_stat(pid: i32, text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // f[0] is field 3 (state); the start time is field 22.
    Some(ProcStat {
        pid,
        zombie: matches!(*f.first()?, "Z" | "X"),
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        session: f.get(3)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

fn read_stat(pid: i32) -> Option<ProcStat> {
    let mut text = String::new();
    std::fs::File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .take(STAT_MAX)
        .read_to_string(&mut text)
        .ok()?;
    parse_stat(pid, &text)
}

fn environ_of(pid: i32) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    std::fs::File::open(format!("/proc/{pid}/environ"))
        .ok()?
        .take(ENVIRON_MAX as u64)
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}

/// The children of `pid`, from every thread's `/proc/PID/task/TID/children` (`None` where
/// the kernel has no such file).
fn children_of(pid: i32) -> Option<Vec<i32>> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let mut text = String::new();
        std::fs::File::open(task.ok()?.path().join("children"))
            .ok()?
            .take(CHILDREN_MAX)
            .read_to_string(&mut text)
            .ok()?;
        out.extend(
            text.split_ascii_whitespace()
                .filter_map(|w| w.parse::<i32>().ok()),
        );
    }
    Some(out)
}

/// The live descendants of `root` below its children that are not in `skip`, walked down
/// the kernel's children lists (so a scan costs what is below colony-init, not what runs
/// on the machine). `None`: the kernel lists no children here.
fn tree(root: i32, skip: &HashSet<i32>) -> Option<Vec<ProcStat>> {
    let mut todo = children_of(root)?;
    todo.retain(|p| !skip.contains(p));
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    while let Some(pid) = todo.pop() {
        if pid == root || !seen.insert(pid) {
            continue;
        }
        if let Some(st) = read_stat(pid) {
            out.push(st);
        }
        todo.extend(children_of(pid).unwrap_or_default());
    }
    out.retain(|p| !p.zombie);
    Some(out)
}

/// Every process in /proc (a snapshot: processes come and go meanwhile).
fn all_processes() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(read_stat)
        .collect()
}

/// The live descendants of `root` (not `root` itself), from a snapshot of processes.
pub fn descendants(root: i32, procs: &[ProcStat]) -> Vec<ProcStat> {
    let mut children: HashMap<i32, Vec<&ProcStat>> = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        for c in children.get(&pid).into_iter().flatten() {
            // A pid cannot be its own ancestor, but a torn snapshot could make a loop.
            if c.pid != root && out.len() < procs.len() {
                todo.push(c.pid);
                out.push(**c);
            }
        }
    }
    out.retain(|p| !p.zombie);
    out
}

/// colony-init's live descendants at one moment, with what each says of its unit: taken
/// once for every unit being stopped in a loop turn, so a shutdown of many units scans
/// /proc a few times, not once per unit.
#[derive(Debug, Default)]
pub struct Snapshot {
    procs: Vec<(ProcStat, Option<Vec<u8>>)>,
}

impl Snapshot {
    /// The descendants of `root`. `settled`: process groups of units that run on (not
    /// being stopped), each led by the unit's main process: what is below it, in it, or in
    /// its session is that unit's, and is not looked into.
    pub fn take(root: i32, settled: &HashSet<i32>) -> Snapshot {
        let procs = tree(root, settled)
            .unwrap_or_else(|| descendants(root, &all_processes()))
            .into_iter()
            .map(|p| {
                let known = settled.contains(&p.pgrp) || settled.contains(&p.session);
                let unit = if known { None } else { unit_of(p.pid) };
                (p, unit)
            })
            .collect();
        Snapshot { procs }
    }

    /// The processes of `owner` outside its process group, leaving out `skip` (already
    /// held). Each is opened as a pidfd and checked again after the open.
    pub fn strays(&self, owner: Owner, skip: &[i32]) -> Vec<Stray> {
        self.procs
            .iter()
            .filter(|(p, unit)| !skip.contains(&p.pid) && belongs(p, unit.as_deref(), owner))
            .filter_map(|(p, _)| {
                let pidfd = pidfd_open(p.pid)?;
                // The pidfd names whatever has this pid now: the same process only if it
                // started at the same time, and it must still be the unit's.
                let now = read_stat(p.pid)?;
                let still = now.start == p.start
                    && !now.zombie
                    && belongs(&now, unit_of(p.pid).as_deref(), owner);
                still.then_some(Stray { pid: p.pid, pidfd })
            })
            .collect()
    }
}

/// The `COLONY_UNIT` of a process, from the first [`ENVIRON_MAX`] bytes of its environment.
fn unit_of(pid: i32) -> Option<Vec<u8>> {
    environ_unit(&environ_of(pid)?).map(<[u8]>::to_vec)
}

/// The value of `COLONY_UNIT=` in a NUL-separated environment block (the first one).
pub fn environ_unit(environ: &[u8]) -> Option<&[u8]> {
    environ
        .split(|b| *b == 0)
        .find_map(|entry| entry.strip_prefix(b"COLONY_UNIT="))
}

/// Whether a process (carrying `unit` as its `COLONY_UNIT`) is a stray of `owner`: outside
/// its process group (killed as a group), in its session or naming it.
fn belongs(p: &ProcStat, unit: Option<&[u8]>, owner: Owner) -> bool {
    if owner.pgid.is_some_and(|g| p.pgrp == g) {
        return false;
    }
    // A session id is not reused while a process is in the session, so this is the unit's.
    owner.pgid.is_some_and(|g| p.session == g) || unit == Some(owner.name.as_bytes())
}

/// None: gone already (ESRCH), or no pidfds: nothing we may signal.
fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    crate::kernel::spawn::pidfd_open(pid).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn stat(pid: i32, ppid: i32) -> ProcStat {
        ProcStat {
            pid,
            ppid,
            pgrp: pid,
            session: pid,
            start: 1,
            zombie: false,
        }
    }

    #[test]
    fn stat_fields_come_after_the_last_parenthesis() {
        let text = "42 (a) b) (c) S 7 40 30 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        let s = parse_stat(42, text).unwrap();
        assert_eq!((s.ppid, s.pgrp, s.session, s.start), (7, 40, 30, 12345));
        assert!(!s.zombie);
        let z = parse_stat(42, "42 (x) Z 7 40 30 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 0 0").unwrap();
        assert!(z.zombie);
        assert_eq!(parse_stat(1, "1 (init"), None);
        assert_eq!(parse_stat(1, "1 (init) S 0 1"), None);
    }

    #[test]
    fn environ_unit_is_the_value_of_a_whole_entry() {
        let u = |e: &[u8]| environ_unit(e).map(|v| String::from_utf8_lossy(v).into_owned());
        assert_eq!(u(b"A=1\0COLONY_UNIT=web\0B=2\0").as_deref(), Some("web"));
        assert_eq!(u(b"COLONY_UNIT=web").as_deref(), Some("web"));
        assert_eq!(u(b"COLONY_UNIT=webapp\0").as_deref(), Some("webapp"));
        assert_eq!(u(b"XCOLONY_UNIT=web\0"), None);
        assert_eq!(u(b"A=COLONY_UNIT=web\0"), None);
        assert_eq!(u(b""), None);
    }

    #[test]
    fn descendants_are_the_tree_below_root_and_nothing_else() {
        let procs = [
            stat(1, 0),
            stat(10, 1), // root
            stat(11, 10),
            stat(12, 11),
            stat(13, 12),
            stat(20, 1), // outside
            stat(21, 20),
        ];
        let mut d: Vec<i32> = descendants(10, &procs).iter().map(|p| p.pid).collect();
        d.sort();
        assert_eq!(d, vec![11, 12, 13]);
        // A torn snapshot with a cycle ends.
        let cyc = [stat(2, 3), stat(3, 2), stat(4, 10)];
        assert_eq!(descendants(10, &cyc).len(), 1);
    }

    #[test]
    fn the_tree_walk_sees_what_the_full_scan_sees() {
        // Our own descendants: a child with a grandchild.
        let mut c = Command::new("sh")
            .args(["-c", "sleep 100 & wait"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let me = std::process::id() as i32;
        let pid = c.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let grandchild = || {
            descendants(me, &all_processes())
                .iter()
                .any(|p| p.ppid == pid)
        };
        while !grandchild() && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        let ours = |v: Vec<ProcStat>| {
            let mut v: Vec<i32> = v
                .iter()
                .filter(|p| p.pid == pid || p.ppid == pid)
                .map(|p| p.pid)
                .collect();
            v.sort();
            v
        };
        let full = ours(descendants(me, &all_processes()));
        assert_eq!(full.len(), 2, "{full:?}");
        assert_eq!(ours(tree(me, &HashSet::new()).unwrap()), full);
        assert!(ours(tree(me, &HashSet::from([pid])).unwrap()).is_empty());
        for p in full.iter().filter(|p| **p != pid) {
            // SAFETY: our own grandchild, not reaped by its live parent yet.
            unsafe { libc::kill(*p, libc::SIGKILL) };
        }
        let _ = c.wait();
    }

    /// Real processes: a child of this test that made its own session and carries
    /// `COLONY_UNIT` is found (and only for its unit); one that carries another is not.
    #[test]
    fn finds_a_setsid_child_by_its_colony_unit() {
        let spawn = |unit: &str| {
            Command::new("setsid")
                .args(["sleep", "100"])
                .env("COLONY_UNIT", unit)
                .stdin(Stdio::null())
                .spawn()
                .unwrap()
        };
        let mut ours = spawn("escape-test-ours");
        let mut other = spawn("escape-test-other");
        let (pid, opid) = (ours.id() as i32, other.id() as i32);
        // setsid(1) runs the program in the same process; wait until it made the session
        // and its exec of sleep is through (mid-exec, /proc/PID/environ reads empty).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let settled = |p: i32| {
            read_stat(p).is_some_and(|s| s.session == p)
                && std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "sleep")
                && unit_of(p).is_some()
        };
        while !(settled(pid) && settled(opid)) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        let me = std::process::id() as i32;
        let owner = Owner {
            name: "escape-test-ours",
            pgid: None,
        };
        let snap = Snapshot::take(me, &HashSet::new());
        let found: Vec<i32> = snap.strays(owner, &[]).iter().map(|s| s.pid).collect();
        assert_eq!(found, vec![pid]);
        assert!(
            snap.strays(owner, &[pid]).is_empty(),
            "skipped: already held"
        );
        assert!(!found.contains(&opid));
        // A settled unit's session is not looked into.
        let settled = HashSet::from([pid]);
        assert!(Snapshot::take(me, &settled).strays(owner, &[]).is_empty());
        // From another root (outside which it runs) nothing is found, even by its name.
        let other_root = Snapshot::take(opid, &HashSet::new());
        assert!(other_root.strays(owner, &[]).is_empty());
        for c in [&mut ours, &mut other] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

//! cgroupfs of our own: layout detection (v2, hybrid, v1), a cgroup per unit, limits, kill, stats.
//!
//! Layouts:
//! - pure v2: one hierarchy does tracking (CLONE_INTO_CGROUP, cgroup.kill, cgroup.events)
//!   and limits (controllers enabled in subtree_control);
//! - hybrid: a controller-less v2 tree (e.g. /sys/fs/cgroup/unified) for tracking, v1
//!   controller hierarchies for limits and stats;
//! - v1 only: per-controller directories; kill by freezing and SIGKILL over cgroup.procs.
//!
//! colony-init creates its cgroups below its own cgroup in each hierarchy (delegation).
//! Nothing here panics or sleeps; every failure is an error or a returned warning.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use units::model::Resources;

use crate::kernel::spawn::Placement;

mod detect;
mod handover;
mod limits;
mod stats;
mod v1_kill;

pub use detect::{detect, Detected, Hier, Hierarchies, Layout};
pub use handover::CgroupKept;
pub use stats::{plan_fd_budget, CgroupStats};
use stats::{StatFds, StatKind};
use v1_kill::{kill_loop, procs_empty};

/// Controllers whose limits colony applies (v2's io for a unit's `io_weight`).
const LIMIT_CONTROLLERS: [&str; 4] = ["memory", "pids", "cpu", "io"];
/// v1 hierarchies colony uses: limits, cpu accounting, and the freezer for v1 kills.
const V1_CONTROLLERS: [&str; 5] = ["memory", "pids", "cpu", "cpuacct", "freezer"];
/// cpu.max / cfs period: 100 ms, the kernel default.
const CPU_PERIOD_US: u64 = 100_000;
/// The leaf colony-init moves itself into under pure v2 (no-internal-process rule).
const SELF_LEAF: &str = "init";
/// Bound of the v1 kill loop (a spin with sched_yield, never a sleep).
const V1_KILL_BOUND: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("bad cgroup name {0:?}")]
    BadName(String),
}

fn io_err(path: &Path, source: io::Error) -> CgroupError {
    CgroupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// colony-init's cgroups: one directory `name` below its own cgroup in each hierarchy used.
#[derive(Debug)]
pub struct Cgroups {
    name: String,
    layout: Layout,
    v2: Option<V2Base>,
    /// v1 controller -> `<own>/<name>` in its hierarchy.
    v1: BTreeMap<&'static str, V1Base>,
}

#[derive(Debug, Clone)]
struct V2Base {
    dir: PathBuf,
    rel: String,
    /// Controllers enabled for the units (subtree_control of `<own>/<name>`).
    controllers: BTreeSet<&'static str>,
    /// What setup changed in our own cgroup, undone by [`Cgroups::cleanup`].
    undo: Option<SelfLeaf>,
}

/// colony-init moved itself from its own cgroup `own` into the leaf `own/init` and enabled
/// `enabled` in `own`'s subtree_control (a delegated cgroup, such as a container's cgroup
/// namespace root, where colony-init starts as the only process).
#[derive(Debug, Clone)]
struct SelfLeaf {
    own: PathBuf,
    leaf: PathBuf,
    enabled: Vec<&'static str>,
}

#[derive(Debug, Clone)]
struct V1Base {
    dir: PathBuf,
    rel: String,
}

/// A new image of colony-init (`colonyctl reexec`) that an earlier one moved into the leaf
/// `own/init` of a delegated cgroup: its own cgroup is `own` again (with `own/NAME` there),
/// not the leaf. The controllers it enabled stay enabled at exit (that list went with the
/// earlier image).
fn reenter_own(h: &mut Hier, name: &str) {
    let Some(parent) = h.dir.parent() else { return };
    if h.dir.file_name() != Some(std::ffi::OsStr::new(SELF_LEAF)) || !parent.join(name).is_dir() {
        return;
    }
    if let Some(rel) = h.rel.strip_suffix(&format!("/{SELF_LEAF}")) {
        h.rel = if rel.is_empty() {
            "/".into()
        } else {
            rel.into()
        };
        h.dir = parent.to_path_buf();
    }
}

/// mkdir that accepts an existing directory.
fn mkdir(p: &Path) -> io::Result<()> {
    match std::fs::create_dir(p) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    }
}

/// A fresh directory at `p` when the old one is empty (removed first), else the old one.
/// Returns whether it is fresh: a fresh cgroup holds the kernel's defaults, so limits the
/// unit does not set need no write (a thousand starts save thousands of writes).
fn fresh_dir(p: &Path) -> io::Result<bool> {
    let _ = std::fs::remove_dir(p);
    match std::fs::create_dir(p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// One write(2) of `val` to an existing cgroup file.
fn write_file(p: &Path, val: &str) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(p)?;
    f.write_all(val.as_bytes())
}

/// A cgroup file's text. cgroupfs files report size 0, so std's size probe (a statx per
/// read) buys nothing: one open, reads into a growing buffer, close. `status` of a thousand
/// units reads three thousand of these.
fn read_file(p: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(p)?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 4096];
    loop {
        match f.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// `key value` lines (cgroup.events, memory.events, cpu.stat, memory.oom_control).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key))
            .then(|| it.next().and_then(|v| v.parse().ok()))
            .flatten()
    })
}

/// O_RDONLY|O_CLOEXEC.
fn open_ro(p: &Path) -> io::Result<OwnedFd> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(p)
        .map(OwnedFd::from)
}

/// Errors meaning "no usable cgroup here": fall back to process groups.
fn unusable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EROFS | libc::EACCES | libc::EPERM | libc::ENOENT | libc::ENOTDIR)
    )
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

impl Cgroups {
    /// Detects the layout and creates `name` below our own cgroup in each hierarchy used.
    /// `Ok(None)`: no usable writable cgroupfs (units then run in process groups).
    pub fn setup(name: &str) -> Result<Option<Cgroups>, CgroupError> {
        Self::setup_with(name, Hierarchies::Auto)
    }

    /// As [`Cgroups::setup`], restricted to some hierarchies (to exercise the v1-only and
    /// controller-less v2 layouts on a hybrid host, or to avoid a broken hierarchy).
    pub fn setup_with(name: &str, which: Hierarchies) -> Result<Option<Cgroups>, CgroupError> {
        let use_v2 = which != Hierarchies::V1Only;
        let use_v1 = which != Hierarchies::V2Only;
        if !valid_name(name) {
            return Err(CgroupError::BadName(name.to_owned()));
        }
        let (Ok(mi), Ok(pc)) = (
            read_file(Path::new("/proc/self/mountinfo")),
            read_file(Path::new("/proc/self/cgroup")),
        ) else {
            tracing::info!("no /proc/self/mountinfo or /proc/self/cgroup: no cgroups");
            return Ok(None);
        };
        let mut det = detect(&mi, &pc);
        if let Some(h) = det.v2.as_mut() {
            reenter_own(h, name);
        }

        let v2 = match det.v2.filter(|h| use_v2 && !h.read_only) {
            Some(h) => Self::setup_v2(name, &h)?,
            None => None,
        };
        let in_v2: BTreeSet<&str> = v2
            .as_ref()
            .map(|b| b.controllers.iter().copied().collect())
            .unwrap_or_default();

        let mut v1 = BTreeMap::new();
        for (ctrl, h) in det.v1 {
            // With v2 tracking, v1 is only for limits and memory stats (v2 has cpu.stat and
            // cgroup.kill): no cpuacct or freezer directories to keep.
            let v2_tracks = v2.is_some() && matches!(ctrl, "cpuacct" | "freezer");
            if !use_v1 || v2_tracks || in_v2.contains(ctrl) || h.read_only {
                continue;
            }
            let dir = h.dir.join(name);
            match mkdir(&dir) {
                Ok(()) => {
                    let rel = format!("{}/{}", h.rel.trim_end_matches('/'), name);
                    v1.insert(ctrl, V1Base { dir, rel });
                }
                Err(e) if unusable(&e) => {
                    tracing::info!(controller = ctrl, error = %e, "v1 cgroup not writable");
                }
                Err(e) => return Err(io_err(&dir, e)),
            }
        }
        let layout = match (&v2, v1.is_empty()) {
            (None, true) => return Ok(None),
            (Some(_), true) => Layout::V2,
            (Some(_), false) => Layout::Hybrid,
            (None, false) => Layout::V1,
        };
        let cg = Cgroups {
            name: name.to_owned(),
            layout,
            v2,
            v1,
        };
        tracing::info!(layout = layout.as_str(), cgroups = %cg.describe(), "cgroups ready");
        Ok(Some(cg))
    }

    fn setup_v2(name: &str, h: &Hier) -> Result<Option<V2Base>, CgroupError> {
        let own = &h.dir;
        let avail: BTreeSet<&'static str> = read_file(&own.join("cgroup.controllers"))
            .map(|s| {
                LIMIT_CONTROLLERS
                    .iter()
                    .copied()
                    .filter(|c| s.split_whitespace().any(|w| w == *c))
                    .collect()
            })
            .unwrap_or_default();
        // Only the real root has no cgroup.events. A cgroup namespace's root shows "/" in
        // /proc/self/cgroup too, but it is an ordinary cgroup (it has cgroup.events): PID 1
        // of a container sits there and must move into a leaf like anyone else.
        let is_root = !own.join("cgroup.events").exists();
        let subtree = own.join("cgroup.subtree_control");
        let on = |c: &str| read_file(&subtree).is_ok_and(|t| t.split_whitespace().any(|w| w == c));
        let missing: Vec<&'static str> = avail.iter().copied().filter(|c| !on(c)).collect();
        let mut leaf = None;
        if !missing.is_empty() && !is_root {
            // No-internal-process rule: a non-root cgroup with processes cannot hand
            // controllers to its children, so move ourselves into a leaf first.
            let dir = own.join(SELF_LEAF);
            let moved = mkdir(&dir).and_then(|_| {
                write_file(&dir.join("cgroup.procs"), &std::process::id().to_string())
            });
            match moved {
                Ok(()) => {
                    tracing::info!(leaf = %dir.display(), "colony-init moved into a leaf of its cgroup");
                    leaf = Some(dir);
                }
                Err(e) => tracing::warn!(error = %e, dir = %dir.display(),
                    "cannot move colony-init into a leaf cgroup"),
            }
        }
        let mut enabled_here = Vec::new();
        for c in missing {
            match write_file(&subtree, &format!("+{c}")) {
                Ok(()) => enabled_here.push(c),
                // EBUSY: other processes share our cgroup (delegate a cgroup of its own).
                Err(e) => tracing::warn!(controller = c, error = %e, dir = %own.display(),
                    "cannot enable v2 controller"),
            }
        }
        let undo = leaf.map(|leaf| SelfLeaf {
            own: own.clone(),
            leaf,
            enabled: enabled_here,
        });
        let mut enabled: BTreeSet<&'static str> = avail.iter().copied().filter(|c| on(c)).collect();
        let dir = own.join(name);
        match mkdir(&dir) {
            Ok(()) => {}
            Err(e) if unusable(&e) => {
                tracing::info!(error = %e, dir = %dir.display(), "v2 cgroup not writable");
                if let Some(u) = &undo {
                    u.restore();
                }
                return Ok(None);
            }
            Err(e) => {
                if let Some(u) = &undo {
                    u.restore();
                }
                return Err(io_err(&dir, e));
            }
        }
        enabled.retain(|c| {
            match write_file(&dir.join("cgroup.subtree_control"), &format!("+{c}")) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(controller = c, error = %e, "cannot enable v2 controller");
                    false
                }
            }
        });
        let rel = format!("{}/{}", h.rel.trim_end_matches('/'), name);
        Ok(Some(V2Base {
            dir,
            rel,
            controllers: enabled,
            undo,
        }))
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One line for the log: where each hierarchy's directory is.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v2) = &self.v2 {
            let c: Vec<&str> = v2.controllers.iter().copied().collect();
            parts.push(format!("v2 {} [{}]", v2.dir.display(), c.join(" ")));
        }
        for (c, b) in &self.v1 {
            parts.push(format!("{c} {}", b.dir.display()));
        }
        parts.join(", ")
    }

    /// Creates the unit's cgroup(s) and writes its limits (every limit is written, unset ones
    /// back to the kernel default, so a reused directory never keeps an old limit).
    /// The warnings name the requested limits that cannot be enforced here.
    pub fn unit(
        &self,
        unit: &str,
        res: &Resources,
    ) -> Result<(UnitCgroup, Vec<String>), CgroupError> {
        if !valid_name(unit) {
            return Err(CgroupError::BadName(unit.to_owned()));
        }
        let mut fresh = true;
        let v2 = match &self.v2 {
            Some(b) => {
                let dir = b.dir.join(unit);
                // A fresh directory for every start: on Linux 6.18 (this host) a cgroup once
                // killed through cgroup.kill SIGKILLs every process later cloned into it with
                // CLONE_INTO_CGROUP (its kill sequence is compared with the parent's). An
                // empty old directory is removed; a populated one (EBUSY) is reused. (A
                // cgroup never killed is kept across restarts: `UnitCgroup::reusable`.)
                fresh &= fresh_dir(&dir).map_err(|e| io_err(&dir, e))?;
                Some(V2Unit {
                    rel: format!("{}/{}", b.rel, unit),
                    dir,
                    controllers: b.controllers.clone(),
                })
            }
            None => None,
        };
        let mut v1 = Vec::new();
        for (c, b) in &self.v1 {
            // With v2 tracking, CPU time comes from v2's cpu.stat: a v1 cpu directory only
            // carries limits, so a unit without any skips its mkdir, migration and rmdir.
            // Likewise pids: the v2 directory's cgroup.threads counts the tasks. Each v1
            // directory skipped is one migration less in the child, and a lone migration
            // waits for an RCU grace period (cgroup_threadgroup_rwsem), milliseconds.
            let no_cpu = *c == "cpu" && res.cpu_max.is_none() && res.cpu_weight.is_none();
            let no_pids = *c == "pids" && res.tasks_max.is_none();
            if v2.is_some() && (no_cpu || no_pids) {
                // One left by an earlier start with limits goes (empty by now).
                let _ = std::fs::remove_dir(b.dir.join(unit));
                continue;
            }
            let dir = b.dir.join(unit);
            fresh &= fresh_dir(&dir).map_err(|e| io_err(&dir, e))?;
            v1.push(V1Unit {
                controller: c,
                rel: format!("{}/{}", b.rel, unit),
                dir,
            });
        }
        let mut ucg = UnitCgroup {
            unit: unit.to_owned(),
            v2,
            v1,
            stat_fds: StatFds::default(),
            res: res.clone(),
            killed: std::cell::Cell::new(false),
            cpu_base: 0,
        };
        ucg.stat_fds = ucg.open_stat_fds();
        let warnings = ucg.apply_limits(self, res, fresh);
        for w in &warnings {
            tracing::warn!(unit, "{w}");
        }
        Ok((ucg, warnings))
    }

    /// The unit's directories as an earlier image of colony-init made them (`colonyctl
    /// reexec`): nothing is made or written, the limits are the ones `res` says (they were
    /// written at its start). `None` when its directories are not there.
    pub fn reopen(&self, unit: &str, res: &Resources, killed: bool) -> Option<UnitCgroup> {
        if !valid_name(unit) {
            return None;
        }
        let v2_there = self.v2.as_ref().is_some_and(|b| b.dir.join(unit).is_dir());
        if self.v2.is_some() && !v2_there {
            return None;
        }
        let (v2, v1) = self.unit_dirs(unit, v2_there, |_, dir| dir.is_dir());
        if v2.is_none() && v1.is_empty() {
            return None;
        }
        let mut ucg = UnitCgroup {
            unit: unit.to_owned(),
            v2,
            v1,
            stat_fds: StatFds::default(),
            res: res.clone(),
            killed: std::cell::Cell::new(killed),
            cpu_base: 0,
        };
        ucg.stat_fds = ucg.open_stat_fds();
        Some(ucg)
    }

    /// A unit's directories: in the v2 hierarchy if `v2`, in each v1 one `v1` says.
    fn unit_dirs(
        &self,
        unit: &str,
        v2: bool,
        v1: impl Fn(&str, &Path) -> bool,
    ) -> (Option<V2Unit>, Vec<V1Unit>) {
        let v2 = self.v2.as_ref().filter(|_| v2).map(|b| V2Unit {
            rel: format!("{}/{}", b.rel, unit),
            dir: b.dir.join(unit),
            controllers: b.controllers.clone(),
        });
        let v1 = self
            .v1
            .iter()
            .map(|(c, b)| (*c, b, b.dir.join(unit)))
            .filter(|(c, _, dir)| v1(c, dir))
            .map(|(c, b, dir)| V1Unit {
                controller: c,
                rel: format!("{}/{}", b.rel, unit),
                dir,
            })
            .collect();
        (v2, v1)
    }

    /// Removes the unit directories left below `name` and `name` itself, then undoes what
    /// setup did to our own cgroup (the leaf colony-init moved into, the controllers it
    /// enabled), so a delegated cgroup is left as it was handed over (at exit; best effort,
    /// failures are logged).
    pub fn cleanup(&self) {
        let bases = self
            .v2
            .iter()
            .map(|b| (b.dir.clone(), b.undo.as_ref()))
            .chain(self.v1.values().map(|b| (b.dir.clone(), None)));
        for (base, undo) in bases {
            if let Ok(rd) = std::fs::read_dir(&base) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        if let Err(err) = std::fs::remove_dir(e.path()) {
                            tracing::warn!(dir = %e.path().display(), error = %err,
                                "cannot remove cgroup");
                        }
                    }
                }
            }
            match std::fs::remove_dir(&base) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    tracing::warn!(dir = %base.display(), error = %e, "cannot remove cgroup")
                }
                // Only with our directory gone can the controllers be handed back.
                _ => {
                    if let Some(u) = undo {
                        u.restore();
                    }
                }
            }
        }
    }
}

impl SelfLeaf {
    /// Controllers off in `own`'s subtree_control, colony-init back into `own`, the leaf
    /// removed. Each step is tried only if the one before it worked.
    fn restore(&self) {
        let subtree = self.own.join("cgroup.subtree_control");
        for c in self.enabled.iter().rev() {
            if let Err(e) = write_file(&subtree, &format!("-{c}")) {
                tracing::warn!(controller = c, error = %e, dir = %self.own.display(),
                    "cannot disable v2 controller; colony-init stays in its leaf cgroup");
                return;
            }
        }
        let procs = self.own.join("cgroup.procs");
        if let Err(e) = write_file(&procs, &std::process::id().to_string()) {
            tracing::warn!(error = %e, dir = %self.own.display(),
                "cannot move colony-init back; it stays in its leaf cgroup");
            return;
        }
        match std::fs::remove_dir(&self.leaf) {
            Ok(()) => tracing::info!(dir = %self.own.display(),
                "colony-init back in its own cgroup, leaf and controllers handed back"),
            Err(e) => {
                tracing::warn!(dir = %self.leaf.display(), error = %e, "cannot remove cgroup")
            }
        }
    }
}

fn open_dir(p: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid C string; the new fd is owned below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

#[derive(Debug)]
struct V2Unit {
    dir: PathBuf,
    rel: String,
    controllers: BTreeSet<&'static str>,
}

#[derive(Debug)]
struct V1Unit {
    controller: &'static str,
    dir: PathBuf,
    rel: String,
}

/// One unit's cgroup(s): its v2 directory and/or one directory per v1 hierarchy.
#[derive(Debug)]
pub struct UnitCgroup {
    unit: String,
    v2: Option<V2Unit>,
    v1: Vec<V1Unit>,
    /// The stat files, opened with the directories (kept while they are reused, see
    /// [`Self::reusable`]) and closed when it is dropped.
    stat_fds: StatFds,
    /// The limits written, so a restart with the same ones may reuse the directories.
    res: Resources,
    /// cgroup.kill was written: never clone into this v2 directory again (see `unit`).
    killed: std::cell::Cell<bool>,
    /// CPU time already used when the directories were reused: `status` shows this start's.
    cpu_base: u64,
}

/// The fds a spawn into a unit's cgroup needs, opened just before it (so a thousand idle
/// units hold no fds). Drop it once [`crate::kernel::spawn::spawn`] returned.
#[derive(Debug)]
pub struct PlacementFds {
    /// The v2 directory, for CLONE_INTO_CGROUP.
    dir: Option<OwnedFd>,
    /// O_WRONLY cgroup.procs of each v1 directory, for the child to write "0" to.
    procs: Vec<OwnedFd>,
}

impl PlacementFds {
    pub fn placement(&self) -> Placement<'_> {
        match (&self.dir, self.procs.is_empty()) {
            (Some(d), true) => Placement::CloneInto(d.as_fd()),
            (Some(d), false) => Placement::CloneIntoAndProcs(d.as_fd(), &self.procs),
            (None, false) => Placement::Procs(&self.procs),
            (None, true) => Placement::None,
        }
    }
}

impl UnitCgroup {
    fn v1_dir(&self, c: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|u| u.controller == c)
            .map(|u| u.dir.as_path())
    }

    /// The directory of `controller` ("" for the v2 tracking directory), for tests and tools.
    pub fn dir(&self, controller: &str) -> Option<&Path> {
        if controller.is_empty() {
            return self.v2.as_ref().map(|u| u.dir.as_path());
        }
        match &self.v2 {
            Some(u) if u.controllers.contains(controller) => Some(u.dir.as_path()),
            _ => self.v1_dir(controller),
        }
    }

    /// Where limits of `c` are written: Some(dir, is_v2).
    fn limit_dir(&self, c: &str) -> Option<(&Path, bool)> {
        match &self.v2 {
            Some(u) if u.controllers.contains(c) => Some((u.dir.as_path(), true)),
            _ => self.v1_dir(c).map(|d| (d, false)),
        }
    }

    /// Opens what spawn needs to put the child here before its first instruction:
    /// `open_placement()?.placement()` is the [`Placement`] of the request.
    pub fn open_placement(&self) -> io::Result<PlacementFds> {
        let with_path = |p: &Path, e: io::Error| {
            let text = format!("{}: {}", p.display(), crate::kernel::spawn::OsError(&e));
            io::Error::new(e.kind(), text)
        };
        let dir = match &self.v2 {
            Some(u) => Some(open_dir(&u.dir).map_err(|e| with_path(&u.dir, e))?),
            None => None,
        };
        let mut procs = Vec::with_capacity(self.v1.len());
        for u in &self.v1 {
            let p = u.dir.join("cgroup.procs");
            let f = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(&p)
                .map_err(|e| with_path(&p, e))?;
            procs.push(OwnedFd::from(f));
        }
        Ok(PlacementFds { dir, procs })
    }

    /// The v1 hierarchy that tracks membership when there is no v2 (freezer preferred).
    fn v1_tracking(&self) -> Option<&V1Unit> {
        ["freezer", "pids", "memory", "cpuacct", "cpu"]
            .iter()
            .find_map(|c| self.v1.iter().find(|u| u.controller == *c))
    }

    /// SIGKILL to everything in the unit. v2: cgroup.kill (asynchronous: wait for
    /// `populated 0` on [`Self::events_file`]). v1: freeze, SIGKILL over cgroup.procs, thaw,
    /// repeated until empty (a bounded spin, no sleep).
    pub fn kill(&self) -> io::Result<()> {
        // Nothing to kill (the usual end of a one-process unit): the directories stay
        // unkilled, so the next start may reuse them (see `reusable`).
        if self.is_empty() {
            return Ok(());
        }
        self.killed.set(true);
        if let Some(u) = &self.v2 {
            match write_file(&u.dir.join("cgroup.kill"), "1") {
                Ok(()) => return Ok(()),
                // Before Linux 5.14: no cgroup.kill.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return kill_loop(&u.dir.join("cgroup.procs"), None)
                }
                Err(e) => return Err(e),
            }
        }
        let Some(t) = self.v1_tracking() else {
            return Ok(());
        };
        let freezer = self.v1_dir("freezer").map(|d| d.join("freezer.state"));
        kill_loop(&t.dir.join("cgroup.procs"), freezer.as_deref())
    }

    /// cgroup.kill was written to it (never cloned into again: see [`Cgroups::unit`]).
    pub fn was_killed(&self) -> bool {
        self.killed.get()
    }

    /// Ready for the next start as it is: empty, never killed (see [`Self::kill`]), and
    /// with the same limits. Then a restart skips removing and recreating every directory,
    /// reopening the stat files and re-watching cgroup.events; CPU time counts afresh.
    pub fn reusable(&mut self, res: &Resources) -> bool {
        if self.killed.get() || self.res != *res {
            return false;
        }
        // Every directory still there (none removed behind our back), and empty.
        let mut dirs = self
            .v2
            .iter()
            .map(|u| u.dir.as_path())
            .chain(self.v1.iter().map(|u| u.dir.as_path()));
        if !dirs.all(Path::is_dir) || !self.is_empty() {
            return false;
        }
        self.cpu_base = self.stat(StatKind::Cpu).unwrap_or(0);
        true
    }

    /// Nothing is left in the unit's cgroup.
    pub fn is_empty(&self) -> bool {
        if let Some(u) = &self.v2 {
            return match read_file(&u.dir.join("cgroup.events")) {
                Ok(t) => keyed(&t, "populated") == Some(0),
                Err(_) => procs_empty(&u.dir.join("cgroup.procs")),
            };
        }
        match self.v1_tracking() {
            Some(t) => procs_empty(&t.dir.join("cgroup.procs")),
            None => true,
        }
    }

    /// v2 `cgroup.events`: watch it with inotify IN_MODIFY; `populated 0` means empty.
    /// None under v1 only (no notification: check [`Self::is_empty`] on SIGCHLD and deadlines).
    pub fn events_file(&self) -> Option<PathBuf> {
        self.v2.as_ref().map(|u| u.dir.join("cgroup.events"))
    }

    /// The cgroup path for `status`: the v2 path as /proc/PID/cgroup shows it, else
    /// `controller:path` of the v1 tracking hierarchy.
    pub fn path(&self) -> String {
        if let Some(u) = &self.v2 {
            return u.rel.clone();
        }
        match self.v1_tracking() {
            Some(t) => format!("{}:{}", t.controller, t.rel),
            None => String::new(),
        }
    }

    /// rmdir every directory of the unit (it must be empty). A missing one is fine.
    pub fn remove(&self) -> io::Result<()> {
        let mut first = Ok(());
        let dirs = self
            .v2
            .iter()
            .map(|u| u.dir.as_path())
            .chain(self.v1.iter().map(|u| u.dir.as_path()));
        for d in dirs {
            match std::fs::remove_dir(d) {
                Err(e) if e.kind() != io::ErrorKind::NotFound && first.is_ok() => {
                    first = Err(io::Error::new(e.kind(), format!("{}: {e}", d.display())));
                }
                _ => {}
            }
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_image_in_the_leaf_of_an_earlier_one_takes_its_own_cgroup_back() {
        let t = tempfile::tempdir().expect("tempdir");
        let own = t.path().join("ctr");
        std::fs::create_dir_all(own.join(SELF_LEAF)).expect("leaf");
        let mut h = Hier {
            dir: own.join(SELF_LEAF),
            rel: format!("/ctr/{SELF_LEAF}"),
            read_only: false,
        };
        // No `colony` below `ctr`: an ordinary cgroup that happens to be named init.
        let before = h.clone();
        reenter_own(&mut h, "colony");
        assert_eq!(h, before);
        std::fs::create_dir(own.join("colony")).expect("units cgroup");
        reenter_own(&mut h, "colony");
        assert_eq!((h.dir.as_path(), h.rel.as_str()), (own.as_path(), "/ctr"));
        let mut root = Hier {
            dir: t.path().join(SELF_LEAF),
            rel: format!("/{SELF_LEAF}"),
            read_only: false,
        };
        std::fs::create_dir_all(t.path().join("colony")).expect("dir");
        reenter_own(&mut root, "colony");
        assert_eq!((root.dir.as_path(), root.rel.as_str()), (t.path(), "/"));
    }
}

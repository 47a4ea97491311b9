//! The loop's inotify watches and what each one is for.
//!
//! The kernel keeps one watch per inode: a directory that is both the units directory and
//! the home of heartbeat files gets the same descriptor twice. So a directory's watch holds
//! every use it has, its mask is the union of theirs (`IN_MASK_ADD`: adding the heartbeat
//! bits never drops the units directory's), events are routed by their kind, and the watch
//! goes only with its last use.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, Inotify, WatchDescriptor};
use tracing::{debug, warn};

use crate::kernel::dirsync;

/// A beat is a `touch` (ATTRIB), a write (MODIFY) or an atomic replace (MOVED_TO). Not
/// CLOSE_WRITE or CREATE: a touch would then cost two wakeups instead of one.
fn heartbeat_mask() -> AddWatchFlags {
    AddWatchFlags::IN_ATTRIB | AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_MOVED_TO
}

#[derive(Debug, Default)]
struct DirUses {
    /// It is the units directory.
    units: bool,
    /// Heartbeat files in it: file name -> unit.
    beats: HashMap<OsString, String>,
}

#[derive(Debug)]
enum Watch {
    Dir(DirUses),
    /// A unit's `cgroup.events`.
    CgroupEvents(String),
}

/// What a unit holds for its heartbeat file's watch, to give it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HeartbeatWatch {
    wd: WatchDescriptor,
    file: OsString,
}

/// What the events read at once amount to.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// A unit file changed (or events were lost): read the directory again.
    pub reload: bool,
    /// Events were lost: every unit may have beaten or emptied.
    pub overflow: bool,
    pub beats: Vec<String>,
    pub cgroup_events: Vec<String>,
}

pub(super) struct Watches {
    inotify: Inotify,
    by_wd: HashMap<WatchDescriptor, Watch>,
    units_dir: PathBuf,
    units_wd: WatchDescriptor,
}

impl Watches {
    /// Watch the units directory.
    pub fn new(inotify: Inotify, units_dir: &Path) -> nix::Result<Watches> {
        let units_wd = inotify.add_watch(units_dir, dirsync::watch_mask())?;
        let by_wd = HashMap::from([(
            units_wd,
            Watch::Dir(DirUses {
                units: true,
                ..DirUses::default()
            }),
        )]);
        Ok(Watches {
            inotify,
            by_wd,
            units_dir: units_dir.to_path_buf(),
            units_wd,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    /// Read the pending events (EAGAIN: none).
    pub fn read(&mut self) -> nix::Result<Seen> {
        let mut seen = Seen::default();
        for ev in self.inotify.read_events()? {
            if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                seen.reload = true;
                seen.overflow = true;
                continue;
            }
            if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                // Its inode is gone (or the watch was removed): the descriptor is dead.
                if ev.wd != self.units_wd {
                    self.by_wd.remove(&ev.wd);
                }
                continue;
            }
            match self.by_wd.get(&ev.wd) {
                Some(Watch::Dir(uses)) => {
                    let Some(name) = ev.name.as_deref() else {
                        continue;
                    };
                    if uses.units
                        && ev.mask.intersects(dirsync::watch_mask())
                        && dirsync::is_unit_file(name)
                    {
                        seen.reload = true;
                    }
                    if ev.mask.intersects(heartbeat_mask()) {
                        if let Some(u) = uses.beats.get(name) {
                            seen.beats.push(u.clone());
                        }
                    }
                }
                Some(Watch::CgroupEvents(u)) => seen.cgroup_events.push(u.clone()),
                None => {}
            }
        }
        Ok(seen)
    }

    /// Watch `file` of the directory `dir` (open as `by_fd`, a `/proc/self/fd` path, so the
    /// directory watched is the one checked; `dir` where there is no /proc) for `unit`.
    pub fn watch_heartbeat(
        &mut self,
        by_fd: &str,
        dir: &Path,
        file: &OsStr,
        unit: &str,
    ) -> nix::Result<HeartbeatWatch> {
        // nix has no name for IN_MASK_ADD.
        let mask = heartbeat_mask() | AddWatchFlags::from_bits_retain(libc::IN_MASK_ADD);
        let wd = match self.inotify.add_watch(by_fd, mask) {
            Err(nix::Error::ENOENT) => self.inotify.add_watch(
                dir,
                mask | AddWatchFlags::IN_DONT_FOLLOW | AddWatchFlags::IN_ONLYDIR,
            ),
            r => r,
        }?;
        match self
            .by_wd
            .entry(wd)
            .or_insert_with(|| Watch::Dir(DirUses::default()))
        {
            Watch::Dir(uses) => {
                uses.beats.insert(file.to_os_string(), unit.to_string());
            }
            Watch::CgroupEvents(other) => {
                // A directory is never a cgroup.events file; should it be, leave that be.
                debug!(
                    unit,
                    other, "heartbeat directory shares a cgroup.events watch"
                );
            }
        }
        Ok(HeartbeatWatch {
            wd,
            file: file.to_os_string(),
        })
    }

    /// `unit` no longer uses this heartbeat file: its directory's watch goes when no other
    /// unit's heartbeat is there, and the units directory drops back to its own mask.
    pub fn unwatch_heartbeat(&mut self, hw: &HeartbeatWatch, unit: &str) {
        let Some(Watch::Dir(uses)) = self.by_wd.get_mut(&hw.wd) else {
            return;
        };
        if uses.beats.get(&hw.file).is_some_and(|u| u == unit) {
            uses.beats.remove(&hw.file);
        }
        if !uses.beats.is_empty() {
            return;
        }
        if !uses.units {
            self.by_wd.remove(&hw.wd);
            if let Err(e) = self.inotify.rm_watch(hw.wd) {
                debug!(error = %e, "removing a heartbeat directory's watch");
            }
            return;
        }
        // Without IN_MASK_ADD the mask is replaced. The path may now name another
        // directory (the units directory replaced): then that new watch is not ours.
        match self
            .inotify
            .add_watch(&self.units_dir, dirsync::watch_mask())
        {
            Ok(wd) if wd == hw.wd => {}
            Ok(wd) => {
                if !self.by_wd.contains_key(&wd) {
                    let _ = self.inotify.rm_watch(wd);
                }
            }
            Err(e) => debug!(error = %e, "narrowing the units directory's watch"),
        }
    }

    /// Watch a unit's `cgroup.events` file.
    pub fn watch_cgroup_events(&mut self, file: &Path, unit: &str) -> nix::Result<WatchDescriptor> {
        let wd = self.inotify.add_watch(file, AddWatchFlags::IN_MODIFY)?;
        match self.by_wd.get(&wd) {
            Some(Watch::Dir(_)) => warn!(unit, "cgroup.events shares a directory's watch"),
            _ => {
                self.by_wd.insert(wd, Watch::CgroupEvents(unit.to_string()));
            }
        }
        Ok(wd)
    }

    pub fn unwatch_cgroup_events(&mut self, wd: WatchDescriptor) {
        if matches!(self.by_wd.get(&wd), Some(Watch::CgroupEvents(_))) {
            self.by_wd.remove(&wd);
            let _ = self.inotify.rm_watch(wd);
        }
    }
}

//! A unit's cgroup across `colonyctl reexec`: which hierarchies hold a directory of it, and
//! its held stat files, go to the new image as they are. So that image neither looks the
//! directories up again nor opens the stat files again (with 1000 units on a hybrid host,
//! 4000 lookups and 3000 opens in cgroupfs, and as many closes at exec), and the CPU time a
//! reused cgroup had before its unit's last start is not counted again.

use std::os::fd::{AsRawFd, RawFd};

use serde::{Deserialize, Serialize};
use units::model::Resources;

use super::{valid_name, Cgroups, StatFds, UnitCgroup};

/// What the new image needs of a unit's cgroup beside the unit's name and limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CgroupKept {
    /// It has a directory in the v2 hierarchy.
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub v2: bool,
    /// The v1 controllers it has a directory of.
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub v1: Vec<String>,
    /// The held stat files (kept open across exec, listed with the state's fds).
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub memory: Option<RawFd>,
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub cpu: Option<RawFd>,
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub tasks: Option<RawFd>,
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub cpu_base: u64,
}

impl CgroupKept {
    /// Its fds, to keep open across exec.
    pub fn fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        [self.memory, self.cpu, self.tasks].into_iter().flatten()
    }
}

impl UnitCgroup {
    /// What a new image needs to take this cgroup over ([`Cgroups::adopt`]).
    pub fn kept(&self) -> CgroupKept {
        let raw = |f: &Option<std::os::fd::OwnedFd>| f.as_ref().map(|f| f.as_raw_fd());
        CgroupKept {
            v2: self.v2.is_some(),
            v1: self.v1.iter().map(|v| v.controller.to_string()).collect(),
            memory: raw(&self.stat_fds.memory),
            cpu: raw(&self.stat_fds.cpu),
            tasks: raw(&self.stat_fds.tasks),
            cpu_base: self.cpu_base,
        }
    }
}

impl Cgroups {
    /// The cgroup of `unit` as the previous image had it: its directories as `kept` lists
    /// them (not looked up again: the unit's processes are in them), its stat files the
    /// fds kept. `None` when this image uses none of those hierarchies (the fds are closed).
    ///
    /// # Safety
    /// The fds of `kept` are open, this unit's stat files, and owned by nothing else here.
    pub unsafe fn adopt(
        &self,
        unit: &str,
        res: &Resources,
        killed: bool,
        kept: CgroupKept,
    ) -> Option<UnitCgroup> {
        // SAFETY: by the caller's contract.
        let own = |fd: Option<RawFd>| fd.map(|fd| unsafe { crate::handover::adopt(fd) });
        let stat_fds = StatFds {
            memory: own(kept.memory),
            cpu: own(kept.cpu),
            tasks: own(kept.tasks),
        };
        if !valid_name(unit) {
            return None;
        }
        let (v2, v1) = self.unit_dirs(unit, kept.v2, |c, _| kept.v1.iter().any(|k| k == c));
        if v2.is_none() && v1.is_empty() {
            return None;
        }
        Some(UnitCgroup {
            unit: unit.to_owned(),
            v2,
            v1,
            stat_fds,
            res: res.clone(),
            killed: std::cell::Cell::new(killed),
            cpu_base: kept.cpu_base,
        })
    }
}

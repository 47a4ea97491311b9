//! The syscalls of a machine's end: swapoff(2), umount2(2), the read-only remount. The
//! plan (which, in which order, what to do when busy) is `core::unmount`'s.

use std::ffi::CString;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::core::unmount::{parse_mountinfo, parse_swaps, unmount_all, unmount_order, MountOps};

struct Sys;

impl MountOps for Sys {
    fn unmount(&mut self, target: &str, detach: bool) -> Result<(), Errno> {
        let flags = if detach {
            MntFlags::MNT_DETACH
        } else {
            MntFlags::empty()
        };
        umount2(target, flags)
    }

    fn remount_ro(&mut self, target: &str) -> Result<(), Errno> {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
    }
}

/// Turn off every swap area; a line for each that could not be.
pub fn swapoff_all() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    let mut out = Vec::new();
    for area in parse_swaps(&text) {
        let Ok(path) = CString::new(area.as_str()) else {
            continue;
        };
        // SAFETY: swapoff(2) with a NUL-terminated path.
        if unsafe { libc::swapoff(path.as_ptr()) } != 0 {
            out.push(format!(
                "cannot turn off swap {area}: {}",
                Errno::last().desc()
            ));
        } else {
            out.push(format!("turned off swap {area}"));
        }
    }
    out
}

/// Unmount every file system in reverse mount order (busy ones retried, then remounted
/// read-only and detached), then remount the root read-only. The console lines, in order;
/// `problem` marks those naming a file system that could not be unmounted or remounted.
pub fn unmount_everything() -> Vec<(bool, String)> {
    let text = match std::fs::read_to_string("/proc/self/mountinfo") {
        Ok(t) => t,
        Err(e) => return vec![(true, format!("cannot read /proc/self/mountinfo: {e}"))],
    };
    let order = unmount_order(&parse_mountinfo(&text));
    unmount_all(order, &mut Sys)
        .into_iter()
        .map(|r| (r.is_problem(), r.to_string()))
        .collect()
}

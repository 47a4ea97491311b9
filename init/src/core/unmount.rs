//! The plan of a machine's last steps, pure: which file systems to unmount and in which
//! order (from `/proc/self/mountinfo`), which swap areas to turn off (from `/proc/swaps`),
//! and what to do with a busy one. The syscalls are behind [`MountOps`], carried out by
//! `kernel::unmount`; every decision and every console line is made here.
//!
//! The order is the reverse of the mount order (mountinfo lists mounts as they were made),
//! so what is mounted on top of a file system goes first. A busy file system is tried again
//! after each round that unmounted something (a child gone can free its parent); once a
//! round changes nothing, what is still busy is remounted read-only (its data is then safe
//! on disk) and detached (`MNT_DETACH`). The root is never unmounted: it is remounted
//! read-only last. File systems that hold no data (proc, sysfs, devtmpfs, cgroup...) and
//! whatever is mounted below /proc, /sys and /dev are left as they are.

use std::fmt;

use nix::errno::Errno;

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub target: String,
    pub fstype: String,
    pub source: String,
}

/// `\040` (space), `\011`, `\012`, `\134` as the kernel escapes them in mountinfo and swaps.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mounts of `/proc/self/mountinfo`, in mount order. Malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let target = f.get(4)?;
            // Optional fields end at "-"; then fstype and source.
            let sep = f.iter().position(|x| *x == "-")?;
            let fstype = f.get(sep + 1)?;
            let source = f.get(sep + 2).copied().unwrap_or("");
            Some(MountEntry {
                target: unescape(target),
                fstype: unescape(fstype),
                source: unescape(source),
            })
        })
        .collect()
}

/// The swap areas of `/proc/swaps` (files and partitions), in its order.
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1) // "Filename Type Size Used Priority"
        .filter_map(|l| l.split_whitespace().next())
        .map(unescape)
        .collect()
}

/// File systems that hold no data: nothing to flush, and colony-init itself reads /proc
/// to the end.
const KEPT_TYPES: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "mqueue",
    "hugetlbfs",
    "efivarfs",
    "binfmt_misc",
    "autofs",
    "rootfs",
];

fn below(target: &str, dir: &str) -> bool {
    target == dir || target.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// Left mounted at the end: the root (remounted read-only instead) and what holds no data.
pub fn is_kept(m: &MountEntry) -> bool {
    m.target == "/"
        || KEPT_TYPES.contains(&m.fstype.as_str())
        || ["/proc", "/sys", "/dev"]
            .iter()
            .any(|d| below(&m.target, d))
}

/// The file systems to unmount, first to last: the reverse of the mount order.
pub fn unmount_order(mounts: &[MountEntry]) -> Vec<MountEntry> {
    mounts
        .iter()
        .rev()
        .filter(|m| !is_kept(m))
        .cloned()
        .collect()
}

/// The syscalls the plan needs.
pub trait MountOps {
    /// umount2(2), lazily (`MNT_DETACH`) when `detach`.
    fn unmount(&mut self, target: &str, detach: bool) -> Result<(), Errno>;
    /// mount(2) with `MS_REMOUNT | MS_RDONLY`.
    fn remount_ro(&mut self, target: &str) -> Result<(), Errno>;
}

/// What became of one file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    Unmounted,
    /// Still busy after every retry: remounted read-only (or not, and why), then detached
    /// (or not, and why).
    Busy {
        read_only: Result<(), Errno>,
        detached: Result<(), Errno>,
    },
    /// The unmount failed otherwise (not busy): remounted read-only or not.
    Failed {
        error: Errno,
        read_only: Result<(), Errno>,
    },
    /// The root, remounted read-only or not.
    Root(Result<(), Errno>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub target: String,
    /// Its type, as the console line names it (empty for the root).
    pub fstype: String,
    pub fate: Fate,
}

impl Report {
    /// Worth a line on the console as a problem: it could not be unmounted or remounted.
    pub fn is_problem(&self) -> bool {
        match &self.fate {
            Fate::Unmounted | Fate::Root(Ok(())) => false,
            Fate::Busy { .. } | Fate::Failed { .. } | Fate::Root(Err(_)) => true,
        }
    }
}

fn ro_text(r: &Result<(), Errno>) -> String {
    match r {
        Ok(()) => "remounted read-only".into(),
        Err(e) => format!("cannot remount it read-only ({})", e.desc()),
    }
}

/// The console line.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = if self.fstype.is_empty() {
            self.target.clone()
        } else {
            format!("{} ({})", self.target, self.fstype)
        };
        match &self.fate {
            Fate::Unmounted => write!(f, "unmounted {t}"),
            Fate::Busy {
                read_only,
                detached,
            } => {
                let det = match detached {
                    Ok(()) => "detached (lazy unmount)".to_string(),
                    Err(e) => format!("cannot detach it ({})", e.desc()),
                };
                write!(
                    f,
                    "cannot unmount {t}: busy ({}); {}, {det}",
                    Errno::EBUSY.desc(),
                    ro_text(read_only)
                )
            }
            Fate::Failed { error, read_only } => write!(
                f,
                "cannot unmount {t}: {}; {}",
                error.desc(),
                ro_text(read_only)
            ),
            Fate::Root(Ok(())) => write!(f, "remounted {t} read-only"),
            Fate::Root(Err(e)) => write!(f, "cannot remount {t} read-only: {}", e.desc()),
        }
    }
}

/// Unmount `order` (from [`unmount_order`]), retrying busy ones while a round makes
/// progress, then remount read-only and detach what is still busy; remount the root
/// read-only last. One report per file system, in the order things happened.
pub fn unmount_all(order: Vec<MountEntry>, ops: &mut impl MountOps) -> Vec<Report> {
    let mut out = Vec::new();
    let report = |m: MountEntry, fate| Report {
        target: m.target,
        fstype: m.fstype,
        fate,
    };
    let mut pending = order;
    loop {
        let mut progress = false;
        let mut busy = Vec::new();
        for m in pending {
            match ops.unmount(&m.target, false) {
                // EINVAL: no longer a mount point (a propagated unmount took it already).
                Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {
                    progress = true;
                    out.push(report(m, Fate::Unmounted));
                }
                Err(Errno::EBUSY) => busy.push(m),
                Err(error) => {
                    let read_only = ops.remount_ro(&m.target);
                    out.push(report(m, Fate::Failed { error, read_only }));
                }
            }
        }
        pending = busy;
        if pending.is_empty() || !progress {
            break;
        }
    }
    for m in pending {
        let read_only = ops.remount_ro(&m.target);
        let detached = ops.unmount(&m.target, true);
        out.push(report(
            m,
            Fate::Busy {
                read_only,
                detached,
            },
        ));
    }
    out.push(Report {
        target: "/".into(),
        fstype: String::new(),
        fate: Fate::Root(ops.remount_ro("/")),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const MOUNTINFO: &str = "\
22 1 8:1 / / ro,relatime shared:1 - ext4 /dev/vda1 ro
23 22 0:21 / /proc rw,nosuid - proc proc rw
24 22 0:22 / /sys rw - sysfs sysfs rw
25 22 0:5 / /dev rw - devtmpfs devtmpfs rw,mode=755
26 25 0:23 / /dev/pts rw - devpts devpts rw
27 25 0:24 / /dev/shm rw - tmpfs shm rw
28 22 0:25 / /run rw - tmpfs run rw,mode=755
29 24 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
30 22 8:2 / /home rw shared:5 - ext4 /dev/vda2 rw
31 30 0:30 / /home/my\\040files rw - tmpfs tmpfs rw
32 22 8:3 / /var rw - ext4 /dev/vda3 rw
33 32 7:0 / /var/lib/img rw - ext4 /dev/loop0 rw
";

    #[test]
    fn mountinfo_is_read_in_mount_order_with_escapes() {
        let m = parse_mountinfo(MOUNTINFO);
        assert_eq!(m.len(), 12);
        assert_eq!(m[0].target, "/");
        assert_eq!(m[0].fstype, "ext4");
        assert_eq!(m[0].source, "/dev/vda1");
        assert_eq!(m[9].target, "/home/my files");
        assert!(parse_mountinfo("garbage\n\n1 2 3\n").is_empty());
    }

    #[test]
    fn order_is_reverse_mount_order_without_the_root_and_api_file_systems() {
        let m = parse_mountinfo(MOUNTINFO);
        let order: Vec<String> = unmount_order(&m).into_iter().map(|m| m.target).collect();
        assert_eq!(
            order,
            ["/var/lib/img", "/var", "/home/my files", "/home", "/run"]
        );
    }

    #[test]
    fn swaps_are_read_with_escapes() {
        let text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                    /dev/vda4                               partition\t1048572\t\t0\t\t-2\n\
                    /swap\\040file                           file\t\t65532\t\t0\t\t-3\n";
        assert_eq!(parse_swaps(text), ["/dev/vda4", "/swap file"]);
        assert!(parse_swaps("Filename Type Size Used Priority\n").is_empty());
    }

    /// A kernel in miniature: mount points with their parents; a mount is busy while one
    /// below it is mounted or it is listed in `busy`.
    struct Fs {
        mounted: Vec<String>,
        busy: HashMap<String, u32>,
        /// Mounts whose remount read-only fails, with this error.
        ro_fails: HashMap<String, Errno>,
        /// Mounts whose unmount fails with this error (not EBUSY).
        broken: HashMap<String, Errno>,
        calls: Vec<String>,
    }

    impl Fs {
        fn new(mounted: &[&str]) -> Fs {
            Fs {
                mounted: mounted.iter().map(|s| s.to_string()).collect(),
                busy: HashMap::new(),
                ro_fails: HashMap::new(),
                broken: HashMap::new(),
                calls: Vec::new(),
            }
        }
    }

    impl MountOps for Fs {
        fn unmount(&mut self, target: &str, detach: bool) -> Result<(), Errno> {
            self.calls.push(format!("umount {target} {detach}"));
            if !self.mounted.iter().any(|m| m == target) {
                return Err(Errno::EINVAL);
            }
            if let Some(e) = self.broken.get(target) {
                return Err(*e);
            }
            let child = self.mounted.iter().any(|m| below(m, target) && m != target);
            let held = self.busy.get(target).copied().unwrap_or(0);
            if !detach && (child || held > 0) {
                if held > 0 {
                    // Each try that finds it busy: one holder fewer (a reference dropped).
                    self.busy.insert(target.into(), held - 1);
                }
                return Err(Errno::EBUSY);
            }
            self.mounted.retain(|m| m != target);
            Ok(())
        }

        fn remount_ro(&mut self, target: &str) -> Result<(), Errno> {
            self.calls.push(format!("ro {target}"));
            match self.ro_fails.get(target) {
                Some(e) => Err(*e),
                None => Ok(()),
            }
        }
    }

    fn mounts(targets: &[&str]) -> Vec<MountEntry> {
        targets
            .iter()
            .map(|t| MountEntry {
                target: t.to_string(),
                fstype: "ext4".into(),
                source: String::new(),
            })
            .collect()
    }

    #[test]
    fn everything_unmounts_children_first_then_the_root_goes_read_only() {
        let mut fs = Fs::new(&["/home", "/home/a", "/var"]);
        let r = unmount_all(mounts(&["/var", "/home/a", "/home"]), &mut fs);
        let lines: Vec<String> = r.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            lines,
            [
                "unmounted /var (ext4)",
                "unmounted /home/a (ext4)",
                "unmounted /home (ext4)",
                "remounted / read-only"
            ]
        );
        assert!(r.iter().all(|r| !r.is_problem()));
        assert!(fs.mounted.is_empty());
    }

    #[test]
    fn a_parent_busy_because_of_a_later_child_is_retried_after_it() {
        // Out of order on purpose (a mount moved under another after it was made).
        let mut fs = Fs::new(&["/a", "/a/b"]);
        let r = unmount_all(mounts(&["/a", "/a/b"]), &mut fs);
        assert_eq!(
            fs.calls,
            [
                "umount /a false",
                "umount /a/b false",
                "umount /a false",
                "ro /"
            ]
        );
        assert!(r.iter().all(|r| !r.is_problem()), "{r:?}");
    }

    #[test]
    fn a_mount_that_stays_busy_is_remounted_read_only_and_detached_and_said() {
        let mut fs = Fs::new(&["/data", "/other"]);
        fs.busy.insert("/data".into(), u32::MAX);
        let r = unmount_all(mounts(&["/data", "/other"]), &mut fs);
        // Retried once after the round that unmounted /other, then given up: no endless loop.
        assert_eq!(
            fs.calls,
            [
                "umount /data false",
                "umount /other false",
                "umount /data false",
                "ro /data",
                "umount /data true",
                "ro /"
            ]
        );
        let busy = &r[1];
        assert!(busy.is_problem());
        assert_eq!(
            busy.to_string(),
            "cannot unmount /data (ext4): busy (Device or resource busy); remounted read-only, detached (lazy unmount)"
        );
    }

    #[test]
    fn failures_say_why() {
        let mut fs = Fs::new(&["/nfs", "/ro"]);
        fs.broken.insert("/nfs".into(), Errno::EIO);
        fs.busy.insert("/ro".into(), u32::MAX);
        fs.ro_fails.insert("/ro".into(), Errno::EBUSY);
        fs.ro_fails.insert("/".into(), Errno::EROFS);
        let r = unmount_all(mounts(&["/nfs", "/ro"]), &mut fs);
        let lines: Vec<String> = r.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            lines,
            [
                "cannot unmount /nfs (ext4): I/O error; remounted read-only",
                "cannot unmount /ro (ext4): busy (Device or resource busy); cannot remount it read-only (Device or resource busy), detached (lazy unmount)",
                "cannot remount / read-only: Read-only file system",
            ]
        );
        assert!(r.iter().all(Report::is_problem));
    }

    #[test]
    fn a_mount_already_gone_counts_as_unmounted() {
        let mut fs = Fs::new(&[]);
        let r = unmount_all(mounts(&["/gone"]), &mut fs);
        assert_eq!(r[0].fate, Fate::Unmounted);
    }

    #[test]
    fn kept_file_systems() {
        let e = |t: &str, ty: &str| MountEntry {
            target: t.into(),
            fstype: ty.into(),
            source: String::new(),
        };
        assert!(is_kept(&e("/", "ext4")));
        assert!(is_kept(&e("/dev/shm", "tmpfs")));
        assert!(is_kept(&e("/proc/sys/fs/binfmt_misc", "binfmt_misc")));
        assert!(!is_kept(&e("/devices", "ext4")));
        assert!(!is_kept(&e("/run", "tmpfs")));
        assert!(!is_kept(&e("/srv", "nfs4")));
    }
}

//! The parent's copy of the mount table (/proc/self/mountinfo), for the plan.

use std::io::{Read, Seek};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use super::PlanError;

/// A mount of the current table: where, and its per-mount flags.
#[derive(Clone)]
pub(super) struct Mount {
    pub(super) at: PathBuf,
    pub(super) read_only: bool,
    pub(super) flags: libc::c_ulong,
}

fn unescape(s: &str) -> String {
    // mountinfo writes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount table, parsed.
fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let at = f.nth(4)?;
            let opts = f.next()?;
            let mut flags = 0;
            let mut read_only = false;
            for o in opts.split(',') {
                match o {
                    "ro" => read_only = true,
                    "nosuid" => flags |= libc::MS_NOSUID,
                    "nodev" => flags |= libc::MS_NODEV,
                    "noexec" => flags |= libc::MS_NOEXEC,
                    "noatime" => flags |= libc::MS_NOATIME,
                    "nodiratime" => flags |= libc::MS_NODIRATIME,
                    "relatime" => flags |= libc::MS_RELATIME,
                    _ => {}
                }
            }
            Some(Mount {
                at: PathBuf::from(unescape(at)),
                read_only,
                flags,
            })
        })
        .collect()
}

/// colony-init's mount table, read and parsed again only when it changed: the kernel marks
/// an open /proc/self/mountinfo with POLLPRI when a mount of the namespace is added,
/// removed or changed, so a start asks with one poll(2) of timeout 0 (no wakeup of its
/// own while idle) instead of reading the table at every start.
pub struct Table {
    path: &'static str,
    file: Option<std::fs::File>,
    mounts: Vec<Mount>,
}

impl Default for Table {
    fn default() -> Table {
        Table {
            path: "/proc/self/mountinfo",
            file: None,
            mounts: Vec::new(),
        }
    }
}

impl Table {
    pub(super) fn current(&mut self) -> Result<&[Mount], PlanError> {
        let stale = match &self.file {
            None => {
                let f = std::fs::File::open(self.path).map_err(PlanError::MountInfo)?;
                // The first poll takes the table's present state as seen (POLLPRI then
                // means a change after this point); it is read just below.
                changed(&f);
                self.file = Some(f);
                true
            }
            Some(f) => changed(f),
        };
        if stale {
            let mut f = self.file.as_ref().ok_or_else(|| {
                PlanError::MountInfo(std::io::Error::from(std::io::ErrorKind::NotFound))
            })?;
            let read = (|| {
                f.seek(std::io::SeekFrom::Start(0))?;
                let mut text = String::new();
                f.read_to_string(&mut text)?;
                Ok(text)
            })();
            match read {
                Ok(text) => self.mounts = parse(&text),
                Err(e) => {
                    self.file = None;
                    return Err(PlanError::MountInfo(e));
                }
            }
        }
        Ok(&self.mounts)
    }
}

/// The table changed since the last poll (or the poll failed: read it again).
fn changed(f: &std::fs::File) -> bool {
    let mut p = libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLPRI,
        revents: 0,
    };
    // SAFETY: one valid pollfd, timeout 0: it never blocks.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    r != 0 || p.revents != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(unescape("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn a_new_mount_is_seen_and_an_unchanged_table_is_not_read_again() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().to_path_buf();
        // In a thread with a mount namespace of its own (and its own table), so the host's
        // mounts never change.
        std::thread::spawn(move || {
            use nix::mount::{mount, umount, MsFlags};
            use nix::sched::{unshare, CloneFlags};
            unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS).unwrap();
            let none: Option<&str> = None;
            mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none).unwrap();
            let mut t = Table {
                path: "/proc/thread-self/mountinfo",
                ..Table::default()
            };
            let n = t.current().unwrap().len();
            assert!(!changed(t.file.as_ref().unwrap()), "nothing changed");
            mount(Some("tmpfs"), &at, Some("tmpfs"), MsFlags::empty(), none).unwrap();
            assert!(changed(t.file.as_ref().unwrap()), "a mount was added");
            // `changed` took the news: the next call would not read again; force it.
            t.file = None;
            let m = t.current().unwrap();
            assert_eq!(m.len(), n + 1);
            assert!(m.iter().any(|m| m.at == at));
            umount(&at).unwrap();
        })
        .join()
        .unwrap();
    }
}

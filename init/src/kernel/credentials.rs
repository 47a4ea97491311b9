//! `load_credential`: each file copied at start into a private directory of the unit
//! (`$CREDENTIALS_DIRECTORY`), 0400 files in a 0500 directory owned by the unit's user, on
//! a ramfs of its own (never swapped out; as root), else a tmpfs, else a plain directory
//! (both said as a warning). Removed (unmounted) at stop. A credential given by name is
//! looked up in the credential stores (`Options::credstores`), first found first served.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fchmod, Mode};
use nix::unistd::{fchown, Gid, Uid};

use crate::kernel::safe_path::Dir;
use crate::kernel::unit_dirs;
use units::exec_env::CredentialSource;

/// What the credentials directory sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    Ramfs,
    Tmpfs,
    /// Not a mount of its own (colony-init cannot mount): it may be swapped out.
    Plain,
}

/// A unit's loaded credentials, removed by [`Loaded::remove`].
#[derive(Debug)]
pub struct Loaded {
    pub dir: PathBuf,
    pub backing: Backing,
}

impl Loaded {
    /// The warning `status` shows, if any.
    pub fn warning(&self) -> Option<String> {
        match self.backing {
            Backing::Ramfs => None,
            Backing::Tmpfs => Some(format!(
                "credentials in {} are on a tmpfs (no ramfs here): they may be swapped out",
                self.dir.display()
            )),
            Backing::Plain => Some(format!(
                "credentials in {} are in a plain directory (colony-init cannot mount): they may be swapped out",
                self.dir.display()
            )),
        }
    }

    /// Unmount and remove the directory.
    pub fn remove(&self) -> Result<(), String> {
        if self.backing != Backing::Plain {
            umount2(&self.dir, MntFlags::MNT_DETACH)
                .map_err(|e| format!("unmounting {}: {e}", self.dir.display()))?;
        }
        unit_dirs::remove_tree(&self.dir).map_err(|e| e.to_string())
    }
}

/// Copy `creds` into `base/unit`, owned by `uid`/`gid`; a credential by name is read from
/// the first of `stores` that has it.
pub fn load(
    base: &Path,
    unit: &str,
    creds: &[(String, CredentialSource)],
    stores: &[PathBuf],
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<Loaded, String> {
    let parent =
        Dir::open(base, Some(Mode::from_bits_truncate(0o755))).map_err(|e| e.to_string())?;
    let dir = base.join(unit);
    // Whatever a last run left there goes first (a mount left by a crash, old files).
    let _ = umount2(&dir, MntFlags::MNT_DETACH);
    unit_dirs::remove_tree(&dir).map_err(|e| e.to_string())?;
    unit_dirs::make_dir(&parent, std::ffi::OsStr::new(unit), 0o700).map_err(|e| e.to_string())?;
    let flags = MsFlags::MS_NODEV | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    let backing = if mount(Some("ramfs"), &dir, Some("ramfs"), flags, Some("mode=0700")).is_ok() {
        Backing::Ramfs
    } else if mount(
        Some("tmpfs"),
        &dir,
        Some("tmpfs"),
        flags,
        Some("mode=0700,size=64m"),
    )
    .is_ok()
    {
        Backing::Tmpfs
    } else {
        Backing::Plain
    };
    let loaded = Loaded { dir, backing };
    match fill(&parent, unit, creds, stores, uid, gid) {
        Ok(()) => Ok(loaded),
        Err(e) => {
            let _ = loaded.remove();
            Err(e)
        }
    }
}

/// The contents of one credential: `None` for one by name that no store has.
fn read(name: &str, src: &CredentialSource, stores: &[PathBuf]) -> Result<Option<Vec<u8>>, String> {
    let max = units::exec_env::MAX_CREDENTIAL_BYTES;
    match src {
        CredentialSource::File(p) => unit_dirs::read_bounded(p, max)?
            .map(Some)
            .ok_or_else(|| format!("credential {name}: {} does not exist", p.display())),
        CredentialSource::Store(id) => {
            for dir in stores {
                if let Some(data) = unit_dirs::read_bounded(&dir.join(id), max)
                    .map_err(|e| format!("credential {name}: {e}"))?
                {
                    return Ok(Some(data));
                }
            }
            Ok(None)
        }
    }
}

fn fill(
    parent: &Dir,
    unit: &str,
    creds: &[(String, CredentialSource)],
    stores: &[PathBuf],
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<(), String> {
    let d = Dir::open(&parent.path().join(unit), None).map_err(|e| e.to_string())?;
    let (uid, gid) = (uid.map(Uid::from_raw), gid.map(Gid::from_raw));
    for (name, src) in creds {
        let Some(data) = read(name, src, stores)? else {
            continue;
        };
        let (mut f, _) = d
            .open_file(
                std::ffi::OsStr::from_bytes(name.as_bytes()),
                OFlag::O_WRONLY | OFlag::O_TRUNC | OFlag::O_EXCL,
                Some(Mode::from_bits_truncate(0o400)),
                crate::kernel::safe_path::Allow::Regular,
            )
            .map_err(|e| format!("credential {name}: {e}"))?;
        f.write_all(&data)
            .map_err(|e| format!("credential {name}: {e}"))?;
        fchmod(&f, Mode::from_bits_truncate(0o400))
            .map_err(|e| format!("credential {name}: {e}"))?;
        fchown(f.as_fd(), uid, gid).map_err(|e| format!("credential {name}: {e}"))?;
    }
    // The directory last: 0500 once its files are in.
    let fd = unit_dirs::make_dir(parent, std::ffi::OsStr::new(unit), 0o500)
        .map_err(|e| e.to_string())?;
    fchown(fd.as_fd(), uid, gid).map_err(|e| e.to_string())?;
    fchmod(&fd, Mode::from_bits_truncate(0o500)).map_err(|e| e.to_string())?;
    Ok(())
}

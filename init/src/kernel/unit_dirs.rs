//! Files and directories colony-init makes or reads for a unit at each start: environment
//! files (a bounded read, never through a link), the managed directories
//! (`runtime_directory` & co: made without following links, owned by the unit's user, with
//! their mode) and their removal (a tree removed through directory fds, never by path).

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmod, fstat, mkdirat, Mode, SFlag};
use nix::unistd::{fchown, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::kernel::safe_path::{self, Allow, Dir, PathError};

/// How deep a removed tree may go (a deeper one is left, and said).
const MAX_DEPTH: usize = 64;

/// The whole of a small file, read by PID 1 on a unit's behalf: no link followed on the way,
/// a regular file, at most `max` bytes. `Ok(None)`: it does not exist.
pub fn read_bounded(path: &Path, max: u64) -> Result<Option<Vec<u8>>, String> {
    let (dir, name) = safe_path::split(path).map_err(|e| e.to_string())?;
    let d = match Dir::open(dir, None) {
        Ok(d) => d,
        Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let (f, st) = match d.open_file(name, OFlag::O_RDONLY, None, Allow::Regular) {
        Ok(x) => x,
        Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if st.st_size as u64 > max {
        return Err(format!("{} is larger than {max} bytes", path.display()));
    }
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if buf.len() as u64 > max {
        return Err(format!("{} is larger than {max} bytes", path.display()));
    }
    Ok(Some(buf))
}

/// Make `base/name` (missing parents root's, 0755) without following a link, and give the
/// last directory to `uid`/`gid` with `mode`. Returns its path.
pub fn ensure(
    base: &Path,
    name: &Path,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<PathBuf, PathError> {
    let full = base.join(name);
    let (parent, last) = safe_path::split(&full)?;
    let dir = Dir::open(parent, Some(Mode::from_bits_truncate(0o755)))?;
    let fd = make_dir(&dir, last, mode)?;
    let io = |source| PathError::Io {
        path: full.clone(),
        source,
    };
    fchown(&fd, uid.map(Uid::from_raw), gid.map(Gid::from_raw)).map_err(io)?;
    fchmod(&fd, Mode::from_bits_truncate(mode)).map_err(io)?;
    Ok(full)
}

/// `name` in `dir`, made with `mode` when missing, opened as a directory (never a link).
pub fn make_dir(dir: &Dir, name: &OsStr, mode: u32) -> Result<OwnedFd, PathError> {
    let path = dir.path().join(name);
    let io = |source| PathError::Io {
        path: path.clone(),
        source,
    };
    match mkdirat(dir.fd(), name, Mode::from_bits_truncate(mode & 0o777)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(io(e)),
    }
    let fd = openat(
        dir.fd(),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::ELOOP | Errno::ENOTDIR => PathError::Symlink(path.clone()),
        e => io(e),
    })?;
    let st = fstat(&fd).map_err(io)?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
        return Err(io(Errno::ENOTDIR));
    }
    Ok(fd)
}

/// Remove `path` and all below it, through directory fds: a link is removed, never followed.
/// A missing path is fine.
pub fn remove_tree(path: &Path) -> Result<(), PathError> {
    let (parent, last) = safe_path::split(path)?;
    let dir = match Dir::open(parent, None) {
        Ok(d) => d,
        Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    let io = |source| PathError::Io {
        path: path.to_path_buf(),
        source,
    };
    match remove_in(dir.fd(), last, 0) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(io(e)),
    }
}

fn remove_in(parent: BorrowedFd<'_>, name: &OsStr, depth: usize) -> Result<(), Errno> {
    match unlinkat(parent, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => return Ok(()),
        Err(Errno::EISDIR) | Err(Errno::EPERM) => {}
        Err(e) => return Err(e),
    }
    if depth >= MAX_DEPTH {
        return Err(Errno::ELOOP);
    }
    let fd = openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let dup = nix::unistd::dup(fd.as_fd())?;
    let mut entries = nix::dir::Dir::from_fd(dup)?;
    let names: Vec<std::ffi::CString> = entries
        .iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for n in names {
        use std::os::unix::ffi::OsStrExt;
        remove_in(fd.as_fd(), OsStr::from_bytes(n.as_bytes()), depth + 1)?;
    }
    unlinkat(parent, name, UnlinkatFlags::RemoveDir)
}

/// The unit's home directory from /etc/passwd (`directory = "~"`), or colony-init's `HOME`
/// for a unit without a user.
pub fn home_of(uid: Option<u32>) -> Option<PathBuf> {
    let Some(uid) = uid else {
        return std::env::var_os("HOME").map(PathBuf::from);
    };
    units::userdb::home_of(Path::new(units::userdb::PASSWD), uid)
}

//! Files colony-init opens, creates or chowns on a unit's behalf, reached without following
//! a link or a directory another user controls.
//!
//! colony-init is root acting for less privileged units: a unit's user who can write a
//! directory on the way could put a link there and have root open, create or chown what it
//! names. So a path is walked one component at a time from `/` (or the working directory),
//! each step an `openat2` that refuses symbolic and magic links; each directory is checked
//! against its parent's owner (an "unsafe transition": a directory of one non-root user below
//! another's, whose owner could swap what lies below). The final file is opened relative to
//! its directory's fd with `O_NOFOLLOW`, checked with `fstat`, and changed only through its
//! fd (`fchown`, `fchmod`), never by path.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, openat, openat2, FcntlArg, OFlag, OpenHow, ResolveFlag, AT_FDCWD};
use nix::sys::stat::{fstat, fstatat, mkdirat, FileStat, Mode, SFlag};

/// Why a path was refused or could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("{0} is a symbolic link (colony-init does not follow links on a unit's behalf)")]
    Symlink(PathBuf),
    #[error("unsafe path: {parent} is owned by uid {parent_uid}, {child} by uid {child_uid}")]
    UnsafeTransition {
        parent: PathBuf,
        parent_uid: u32,
        child: PathBuf,
        child_uid: u32,
    },
    #[error("{path} is {kind}, not a regular file")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{path} is a device of another user (uid {uid})")]
    ForeignDevice { path: PathBuf, uid: u32 },
    #[error("{path} has {nlink} hard links (one is expected)")]
    HardLinked { path: PathBuf, nlink: u64 },
    #[error("{0}: `..` is not allowed in the path")]
    DotDot(PathBuf),
    #[error("{0} names no file (it ends in `/` or `..`)")]
    NoFileName(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: Errno },
}

impl PathError {
    /// A refusal for safety (a link, a foreign directory, ...), not a plain I/O failure.
    pub fn is_refusal(&self) -> bool {
        !matches!(self, PathError::Io { .. })
    }

    /// The errno of an I/O failure.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            PathError::Io { source, .. } => Some(*source),
            _ => None,
        }
    }
}

impl From<PathError> for std::io::Error {
    fn from(e: PathError) -> Self {
        match e.errno() {
            Some(errno) => std::io::Error::from_raw_os_error(errno as i32),
            None => std::io::Error::new(std::io::ErrorKind::PermissionDenied, e.to_string()),
        }
    }
}

/// What the final file may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allow {
    /// A regular file only (a heartbeat file).
    Regular,
    /// A regular file, or a character device owned by root or colony-init's own user (a log
    /// file may be `/dev/console` or `/dev/null`).
    RegularOrRootDevice,
    /// A character device of any owner (a terminal: login gives it to the user; `[tty]`
    /// checks it is one).
    Terminal,
}

/// A directory reached without links through safe transitions, held open (`O_PATH`).
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
    uid: u32,
}

/// Split a file's path into its directory and its name.
pub fn split(path: &Path) -> Result<(&Path, &OsStr), PathError> {
    let name = path
        .file_name()
        .ok_or_else(|| PathError::NoFileName(path.to_path_buf()))?;
    Ok((path.parent().unwrap_or(Path::new("")), name))
}

impl Dir {
    /// Walk to `path` (relative: from the working directory), creating missing directories
    /// with `create`'s mode (less the umask) when given.
    pub fn open(path: &Path, create: Option<Mode>) -> Result<Dir, PathError> {
        let start = if path.is_absolute() { "/" } else { "." };
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| PathError::Io { path: p, source }
        };
        let fd = openat(
            AT_FDCWD,
            start,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io(Path::new(start)))?;
        let uid = fstat(&fd).map_err(io(Path::new(start)))?.st_uid;
        let mut dir = Dir {
            fd,
            path: PathBuf::from(if path.is_absolute() { "/" } else { "" }),
            uid,
        };
        for comp in path.components() {
            let name = match comp {
                Component::Normal(n) => n,
                Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
                Component::ParentDir => return Err(PathError::DotDot(path.to_path_buf())),
            };
            let child = dir.path.join(name);
            let fd = match step(dir.fd.as_fd(), name) {
                Err(Errno::ENOENT) if create.is_some() => {
                    let mode = create.unwrap_or(Mode::empty());
                    match mkdirat(dir.fd.as_fd(), name, mode) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(io(&child)(e)),
                    }
                    step(dir.fd.as_fd(), name)
                }
                r => r,
            }
            .map_err(|e| explain(dir.fd.as_fd(), name, &child, e))?;
            let st = fstat(&fd).map_err(io(&child))?;
            if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
                return Err(io(&child)(Errno::ENOTDIR));
            }
            check_transition(&dir.path, dir.uid, &child, st.st_uid)?;
            dir = Dir {
                fd,
                path: child,
                uid: st.st_uid,
            };
        }
        Ok(dir)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open `name` in this directory with `flags` (an access mode, `O_APPEND`...), created
    /// with `create`'s mode if missing. Never through a link; the file must be what `allow`
    /// says, have one link (a second would be a name of it elsewhere, such as
    /// /etc/shadow's), and be safe to reach from this directory.
    pub fn open_file(
        &self,
        name: &OsStr,
        flags: OFlag,
        create: Option<Mode>,
        allow: Allow,
    ) -> Result<(File, FileStat), PathError> {
        let path = self.path.join(name);
        let io = |source| PathError::Io {
            path: path.clone(),
            source,
        };
        // O_NONBLOCK: a FIFO put in the file's place must not hold PID 1 in open(2).
        let mut all = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        if create.is_some() {
            all |= OFlag::O_CREAT;
        }
        let fd = openat(
            self.fd.as_fd(),
            name,
            all | OFlag::O_NONBLOCK,
            create.unwrap_or(Mode::empty()),
        )
        .map_err(|e| explain(self.fd.as_fd(), name, &path, e))?;
        let st = fstat(&fd).map_err(io)?;
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFREG {
            if st.st_nlink > 1 {
                return Err(PathError::HardLinked {
                    path,
                    nlink: st.st_nlink,
                });
            }
        } else if kind == SFlag::S_IFCHR && allow == Allow::Terminal {
            // Any owner: the directory it is in was reached safely, and it is only opened.
        } else if kind == SFlag::S_IFCHR && allow == Allow::RegularOrRootDevice {
            // colony-init's own terminal is fine too (a non-root colony, a container's
            // console owned by its user).
            if st.st_uid != 0 && st.st_uid != nix::unistd::geteuid().as_raw() {
                return Err(PathError::ForeignDevice {
                    path,
                    uid: st.st_uid,
                });
            }
        } else {
            return Err(PathError::NotRegular {
                path,
                kind: kind_name(kind),
            });
        }
        check_transition(&self.path, self.uid, &path, st.st_uid)?;
        // Back to blocking writes (a console must not drop lines with EAGAIN).
        fcntl(&fd, FcntlArg::F_SETFL(all & !OFlag::O_ACCMODE)).map_err(io)?;
        Ok((File::from(fd), st))
    }
}

/// One component, a directory, no link of any kind.
fn step(dir: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    match openat2(dir, name, how) {
        // A kernel before 5.6 (or a seccomp filter that hides openat2): one component with
        // O_NOFOLLOW is as safe.
        Err(Errno::ENOSYS) => openat(
            dir,
            name,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ),
        r => r,
    }
}

/// A refused link says so; any other failure is I/O.
fn explain(dir: BorrowedFd<'_>, name: &OsStr, path: &Path, e: Errno) -> PathError {
    if matches!(e, Errno::ELOOP | Errno::ENOTDIR | Errno::EXDEV) {
        let link = fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).is_ok_and(|st| {
            SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK
        });
        if link {
            return PathError::Symlink(path.to_path_buf());
        }
    }
    PathError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// From root's directory to anyone's is fine, and anything root owns is; below a user's
/// directory, only that user's (the owner of the parent could swap what lies below).
fn check_transition(
    parent: &Path,
    parent_uid: u32,
    child: &Path,
    child_uid: u32,
) -> Result<(), PathError> {
    if parent_uid == 0 || child_uid == 0 || parent_uid == child_uid {
        return Ok(());
    }
    Err(PathError::UnsafeTransition {
        parent: parent.to_path_buf(),
        parent_uid,
        child: child.to_path_buf(),
        child_uid,
    })
}

fn kind_name(kind: SFlag) -> &'static str {
    match kind {
        k if k == SFlag::S_IFDIR => "a directory",
        k if k == SFlag::S_IFIFO => "a FIFO",
        k if k == SFlag::S_IFSOCK => "a socket",
        k if k == SFlag::S_IFCHR => "a character device",
        k if k == SFlag::S_IFBLK => "a block device",
        k if k == SFlag::S_IFLNK => "a symbolic link",
        _ => "something else",
    }
}

#[cfg(test)]
mod tests;

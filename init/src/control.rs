//! The control FIFO: reading requests, opening reply FIFOs safely, writing replies without blocking.
//!
//! Nothing here blocks or spawns a thread: the event loop registers [`ControlFifo::fd`]
//! (level-triggered, `EPOLLIN`) and calls [`ControlFifo::read_requests`] when it is readable;
//! each [`ReplyWriter`] is registered for `EPOLLOUT` until [`ReplyWriter::write_some`] says it
//! is finished. See notes/crates.md §8 for the measurements behind every choice.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, fstat, Mode, SFlag};
use nix::unistd::{fchown, mkfifo, Group};
use units::proto::{valid_reply_name, Request, RequestError, MAX_REQUEST};

/// The most bytes one [`ControlFifo::read_requests`] call takes from the FIFO, so a flooding
/// writer cannot hold the loop: the rest stays in the pipe and the (level-triggered) epoll
/// reports the FIFO readable again on the next turn.
pub const READ_BUDGET: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot create {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("control group {0:?} does not exist")]
    NoSuchGroup(String),
    #[error("another colony-init is reading {0} (stop it, or use another --run-dir)")]
    Busy(PathBuf),
    #[error("bad reply name {0:?}: a bare file name in RUN/reply is expected")]
    BadName(String),
    #[error("reply FIFO {name:?}: {source}")]
    Open { name: String, source: Errno },
    #[error("reply FIFO {0:?} is not a FIFO")]
    NotFifo(String),
    #[error("reply FIFO {0:?} has more than one link")]
    Linked(String),
    #[error("reply FIFO {0:?}: the client is gone (nothing reads it)")]
    ClientGone(String),
}

/// `RUN/control`, opened for reading (and writing, so it never reports EOF), plus `RUN/reply`.
#[derive(Debug)]
pub struct ControlFifo {
    path: PathBuf,
    fifo: OwnedFd,
    reply_dir: OwnedFd,
    /// Bytes of a line not yet ended (at most [`MAX_REQUEST`]).
    partial: Vec<u8>,
    /// Inside an oversized line: drop everything up to its newline.
    discarding: bool,
}

fn create_err(path: &Path) -> impl FnOnce(io::Error) -> ControlError + '_ {
    move |source| ControlError::Create {
        path: path.to_path_buf(),
        source,
    }
}

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Make `path` a real directory (not a symlink) with exactly `mode`. An existing directory
/// keeps its mode unless `force` (`--run-dir /tmp` must not chmod /tmp).
fn ensure_dir(path: &Path, mode: u32, force: bool) -> Result<(), ControlError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_dir() => {
            if !force {
                return Ok(());
            }
        }
        Ok(_) => {
            // A symlink or a file where our directory belongs: never follow it.
            std::fs::remove_file(path).map_err(create_err(path))?;
            std::fs::DirBuilder::new()
                .mode(mode)
                .create(path)
                .map_err(create_err(path))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(path)
                .map_err(create_err(path))?;
        }
        Err(e) => return Err(create_err(path)(e)),
    }
    // The umask may have cut the mode; and an existing directory gets ours.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(create_err(path))
}

impl ControlFifo {
    /// Create `RUN` (0755), `RUN/reply` (1733: anyone may create a reply FIFO there, nobody
    /// may remove another's) and the `RUN/control` FIFO (0600, or 0620 group-owned by
    /// `control_group`), replacing a stale one, and open it non-blocking.
    pub fn create(
        run_dir: &Path,
        control_group: Option<&str>,
    ) -> Result<ControlFifo, ControlError> {
        let gid = match control_group {
            None => None,
            Some(name) => match Group::from_name(name) {
                Ok(Some(g)) => Some(g.gid),
                Ok(None) => return Err(ControlError::NoSuchGroup(name.to_string())),
                Err(e) => return Err(create_err(Path::new("/etc/group"))(errno_io(e))),
            },
        };
        ensure_dir(run_dir, 0o755, false)?;
        let reply = run_dir.join("reply");
        ensure_dir(&reply, 0o1733, true)?;
        let path = run_dir.join("control");
        match std::fs::symlink_metadata(&path) {
            Ok(m) => {
                if m.file_type().is_fifo() {
                    // Someone still reading it is another colony-init on this RUN.
                    match open(
                        &path,
                        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    ) {
                        Ok(_) => return Err(ControlError::Busy(path)),
                        Err(Errno::ENXIO) => {}
                        Err(e) => return Err(create_err(&path)(errno_io(e))),
                    }
                }
                std::fs::remove_file(&path).map_err(create_err(&path))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(create_err(&path)(e)),
        }
        mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR).map_err(|e| create_err(&path)(errno_io(e)))?;
        // O_RDWR: we hold a writer ourselves, so the last client closing gives no EOF and no
        // EPOLLHUP storm (crates.md §8).
        let fifo = open(
            &path,
            OFlag::O_RDWR | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| create_err(&path)(errno_io(e)))?;
        let st = fstat(&fifo).map_err(|e| create_err(&path)(errno_io(e)))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFIFO {
            return Err(create_err(&path)(io::Error::other(
                "replaced by something else than a FIFO while being created",
            )));
        }
        let mode = match gid {
            Some(gid) => {
                fchown(&fifo, None, Some(gid)).map_err(|e| create_err(&path)(errno_io(e)))?;
                Mode::from_bits_truncate(0o620)
            }
            None => Mode::from_bits_truncate(0o600),
        };
        fchmod(&fifo, mode).map_err(|e| create_err(&path)(errno_io(e)))?;
        remove_stale_replies(&reply);
        let reply_dir = open(
            &reply,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| create_err(&reply)(errno_io(e)))?;
        Ok(ControlFifo {
            path,
            fifo,
            reply_dir,
            partial: Vec::with_capacity(MAX_REQUEST),
            discarding: false,
        })
    }

    /// The FIFO to register for `EPOLLIN` (level-triggered).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fifo.as_fd()
    }

    /// `RUN/control`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read what is in the FIFO (up to [`READ_BUDGET`] bytes) and parse it into requests.
    ///
    /// Each write to the FIFO is one request: a line ends at a newline, or where the
    /// writes stop (so `printf 'status' > control` works too, and a missing newline never
    /// glues two requests together). A line over [`MAX_REQUEST`] bytes is dropped up to its
    /// newline and reported once as [`RequestError::TooLong`]. Errors are returned for the
    /// caller to log.
    pub fn read_requests(&mut self) -> Vec<Result<Request, RequestError>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let mut taken = 0usize;
        loop {
            if taken >= READ_BUDGET {
                // More may be waiting: epoll says so again. Keep the partial line.
                return out;
            }
            match nix::unistd::read(&self.fifo, &mut buf) {
                Ok(0) => break, // cannot happen with O_RDWR, but is not an error
                Ok(n) => {
                    taken += n;
                    self.feed(&buf[..n], &mut out);
                }
                Err(Errno::EINTR) => continue,
                Err(_) => break, // EAGAIN: drained
            }
        }
        // The writes stopped: what is left is a request without its newline.
        let line = std::mem::take(&mut self.partial);
        push_line(&line, &mut out);
        self.discarding = false;
        out
    }

    fn feed(&mut self, mut data: &[u8], out: &mut Vec<Result<Request, RequestError>>) {
        while !data.is_empty() {
            let nl = data.iter().position(|&b| b == b'\n');
            let (chunk, rest, ended) = match nl {
                Some(i) => (&data[..i], &data[i + 1..], true),
                None => (data, &[][..], false),
            };
            data = rest;
            if self.discarding {
                if ended {
                    self.discarding = false;
                }
                continue;
            }
            if self.partial.len() + chunk.len() > MAX_REQUEST {
                out.push(Err(RequestError::TooLong));
                self.partial.clear();
                self.discarding = !ended;
                continue;
            }
            self.partial.extend_from_slice(chunk);
            if ended {
                let line = std::mem::take(&mut self.partial);
                push_line(&line, out);
            }
        }
    }

    /// Open the reply FIFO `RUN/reply/NAME` for writing, never blocking and never anything
    /// but a FIFO directly in `RUN/reply` with one link (no symlink anywhere, no `..`, no
    /// absolute path, no other mount).
    pub fn open_reply(&self, name: &str) -> Result<ReplyWriter, ControlError> {
        if !valid_reply_name(name) {
            return Err(ControlError::BadName(name.to_string()));
        }
        open_reply_in(self.reply_dir.as_fd(), name)
    }
}

/// FIFOs left in `RUN/reply` by clients killed while waiting. No colony-init answers them
/// any more (we checked nobody reads `RUN/control`), so a client still waiting times out
/// either way.
fn remove_stale_replies(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_fifo()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The checks of [`ControlFifo::open_reply`], on any directory fd (tests use it too).
pub fn open_reply_in(dir: BorrowedFd<'_>, name: &str) -> Result<ReplyWriter, ControlError> {
    let oerr = |source| ControlError::Open {
        name: name.to_string(),
        source,
    };
    // O_PATH: nothing is really opened (no FIFO handshake, no device side effect) before
    // the checks; the checked inode is then reopened through /proc, so no TOCTOU.
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_XDEV,
        );
    let path_fd = openat2(dir, name, how).map_err(oerr)?;
    let st = fstat(&path_fd).map_err(oerr)?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFIFO {
        return Err(ControlError::NotFifo(name.to_string()));
    }
    if st.st_nlink != 1 {
        return Err(ControlError::Linked(name.to_string()));
    }
    let wflags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let proc_path = format!("/proc/self/fd/{}", path_fd.as_raw_fd());
    let fd = match open(proc_path.as_str(), wflags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENXIO) => return Err(ControlError::ClientGone(name.to_string())),
        Err(Errno::ENOENT) => {
            // No /proc (early boot, a bare container): open by name, then make sure it is
            // the inode that was checked.
            let cname = CString::new(name.as_bytes())
                .map_err(|_| ControlError::BadName(name.to_string()))?;
            let raw = unsafe {
                libc::openat(
                    dir.as_raw_fd(),
                    cname.as_ptr(),
                    (wflags | OFlag::O_NOFOLLOW).bits(),
                )
            };
            if raw < 0 {
                return Err(match Errno::last() {
                    Errno::ENXIO => ControlError::ClientGone(name.to_string()),
                    e => oerr(e),
                });
            }
            // SAFETY: openat returned a new fd that nothing else owns.
            let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
            let st2 = fstat(&fd).map_err(oerr)?;
            if st2.st_dev != st.st_dev || st2.st_ino != st.st_ino {
                return Err(ControlError::NotFifo(name.to_string()));
            }
            fd
        }
        Err(e) => return Err(oerr(e)),
    };
    Ok(ReplyWriter::new(fd, Vec::new()))
}

/// Parse one line; blank lines (`echo > control`) are no request and no error.
fn push_line(line: &[u8], out: &mut Vec<Result<Request, RequestError>>) {
    if !line.iter().all(u8::is_ascii_whitespace) {
        out.push(Request::parse(line.strip_suffix(b"\r").unwrap_or(line)));
    }
}

/// One reply on its way to a client: written in pieces as the pipe takes them.
#[derive(Debug)]
pub struct ReplyWriter {
    fd: OwnedFd,
    bytes: Vec<u8>,
    done: usize,
}

impl ReplyWriter {
    /// `fd` must be non-blocking (as [`ControlFifo::open_reply`] opens it).
    pub fn new(fd: OwnedFd, bytes: Vec<u8>) -> ReplyWriter {
        ReplyWriter { fd, bytes, done: 0 }
    }

    /// Set what to write (replacing what was not written yet).
    pub fn set_bytes(&mut self, bytes: Vec<u8>) {
        self.bytes = bytes;
        self.done = 0;
    }

    /// Serialize `reply` (plus a newline) as what to write.
    pub fn set_reply(&mut self, reply: &units::proto::Reply) {
        self.set_bytes(reply.to_bytes());
    }

    /// The fd to register for `EPOLLOUT` while [`write_some`](Self::write_some) returns false.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Bytes not written yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.done
    }

    /// Write what the pipe takes. `Ok(true)`: all written (drop the writer: closing is the
    /// client's EOF). `Ok(false)`: the pipe is full, wait for `EPOLLOUT`. `Err`: the client
    /// is gone (EPIPE) or worse: drop it.
    pub fn write_some(&mut self) -> io::Result<bool> {
        while self.done < self.bytes.len() {
            match nix::unistd::write(&self.fd, &self.bytes[self.done..]) {
                Ok(0) => return Ok(false),
                Ok(n) => self.done += n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Ok(false),
                Err(e) => return Err(errno_io(e)),
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests;

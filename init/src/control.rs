//! The control FIFO: reading requests, opening reply FIFOs safely, writing replies without blocking.
//!
//! Nothing here blocks or spawns a thread: the event loop registers [`ControlFifo::fd`]
//! (level-triggered, `EPOLLIN`) and calls [`ControlFifo::read_requests`] when it is readable;
//! each [`ReplyWriter`] is registered for `EPOLLOUT` until [`ReplyWriter::write_some`] says it
//! is finished.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, fstat, Mode, SFlag};
use nix::unistd::{fchown, mkfifo, Gid};
use units::proto::{valid_reply_name, Request, RequestError, CONTROL_FIFO, MAX_REQUEST, REPLY_DIR};

/// The most bytes one [`ControlFifo::read_requests`] call takes from the FIFO, so a flooding
/// writer cannot hold the loop: the rest stays in the pipe and the (level-triggered) epoll
/// reports the FIFO readable again on the next turn.
pub const READ_BUDGET: usize = 256 * 1024;

/// Fds kept for the control path. When units hold every fd colony-init may open (EMFILE),
/// these are let go of to open a reply FIFO, so `status` still answers; each is taken back
/// as soon as it is free again, before a start can take it. A reply needs two for a moment
/// (the checked `O_PATH` fd and the writer) and one while it waits for its client.
pub const RESERVE: usize = 8;

pub mod pending;
pub mod subscribers;

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
    /// [`RESERVE`] fds (copies of `reply_dir`) held for the control path.
    reserve: Vec<OwnedFd>,
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
            // Read as a file, never NSS (see units::userdb).
            Some(name) => match units::userdb::group_by_name(Path::new(units::userdb::GROUP), name)
            {
                Ok(Some(g)) => Some(Gid::from_raw(g)),
                Ok(None) => return Err(ControlError::NoSuchGroup(name.to_string())),
                Err(e) => {
                    return Err(create_err(Path::new(units::userdb::GROUP))(
                        io::Error::other(e),
                    ))
                }
            },
        };
        ensure_dir(run_dir, 0o755, false)?;
        let reply = run_dir.join(REPLY_DIR);
        ensure_dir(&reply, 0o1733, true)?;
        let path = run_dir.join(CONTROL_FIFO);
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
        // EPOLLHUP storm (a level-triggered reader-only FIFO reports EPOLLHUP at every turn).
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
        let mut c = ControlFifo {
            path,
            fifo,
            reply_dir,
            partial: Vec::with_capacity(MAX_REQUEST),
            discarding: false,
            reserve: Vec::with_capacity(RESERVE),
        };
        c.keep_reserve();
        Ok(c)
    }

    /// The FIFO a previous image of colony-init handed over (`colonyctl reexec`): kept as it
    /// is (a request written meanwhile waits in it), with `RUN/reply` opened again.
    pub fn adopt(run_dir: &Path, fifo: OwnedFd) -> Result<ControlFifo, ControlError> {
        let reply = run_dir.join(REPLY_DIR);
        let reply_dir = open(
            &reply,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| create_err(&reply)(errno_io(e)))?;
        let mut c = ControlFifo {
            path: run_dir.join(CONTROL_FIFO),
            fifo,
            reply_dir,
            partial: Vec::with_capacity(MAX_REQUEST),
            discarding: false,
            reserve: Vec::with_capacity(RESERVE),
        };
        c.keep_reserve();
        Ok(c)
    }

    /// Take back what the reserve let go of, as far as fds are free: call it right after
    /// closing a reply FIFO, so the fd returns to the reserve before a start can take it.
    pub fn keep_reserve(&mut self) {
        while self.reserve.len() < RESERVE {
            match self.reply_dir.try_clone() {
                Ok(fd) => self.reserve.push(fd),
                Err(_) => break,
            }
        }
    }

    /// Fds held in the reserve now (for tests).
    pub fn reserved(&self) -> usize {
        self.reserve.len()
    }

    /// The start of a request read but not ended yet (handed over by a reexec).
    pub fn partial(&self) -> &[u8] {
        &self.partial
    }

    /// The start of a request the previous image read (see [`Self::partial`]).
    pub fn set_partial(&mut self, bytes: &[u8]) {
        if bytes.len() <= MAX_REQUEST {
            self.partial = bytes.to_vec();
        }
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
    ///
    /// When colony-init's fd table is full (EMFILE), the reserve is let go of for it and
    /// what is left free afterwards taken back.
    pub fn open_reply(&mut self, name: &str) -> Result<ReplyWriter, ControlError> {
        self.open_reply_or(name, || false)
    }

    /// As [`open_reply`](Self::open_reply), but on EMFILE `make_room` is asked first (up
    /// to twice: a reply needs two fds for a moment) to close an fd of the caller's (a
    /// reply still waiting for its client gives way to a new one), and only then the
    /// reserve is used: replies that wait never eat it.
    pub fn open_reply_or(
        &mut self,
        name: &str,
        mut make_room: impl FnMut() -> bool,
    ) -> Result<ReplyWriter, ControlError> {
        if !valid_reply_name(name) {
            return Err(ControlError::BadName(name.to_string()));
        }
        let no_fds = |r: &Result<ReplyWriter, ControlError>| {
            matches!(
                r,
                Err(ControlError::Open {
                    source: Errno::EMFILE,
                    ..
                })
            )
        };
        let mut r = open_reply_in(self.reply_dir.as_fd(), name);
        for _ in 0..2 {
            if !no_fds(&r) || !make_room() {
                break;
            }
            r = open_reply_in(self.reply_dir.as_fd(), name);
        }
        if no_fds(&r) && !self.reserve.is_empty() {
            self.reserve.clear();
            r = open_reply_in(self.reply_dir.as_fd(), name);
            self.keep_reserve();
        }
        r
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
            let fd = match openat(dir, name, wflags | OFlag::O_NOFOLLOW, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENXIO) => return Err(ControlError::ClientGone(name.to_string())),
                Err(e) => return Err(oerr(e)),
            };
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

    /// What is not written yet.
    pub fn unwritten(&self) -> &[u8] {
        &self.bytes[self.done..]
    }

    /// The FIFO, to keep (a subscription writes it for as long as its client reads).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Bytes not written yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.done
    }

    /// Bytes of memory the reply holds until it is written or dropped.
    pub fn held(&self) -> usize {
        self.bytes.capacity()
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

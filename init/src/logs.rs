//! Unit output: pipes read by the loop, lines time-stamped into rotated log files.
//!
//! A unit writes into a pipe; the loop reads the other end (non-blocking, level-triggered
//! `EPOLLIN`) with [`LogFile::drain`] and a byte budget, so a unit flooding its output never
//! holds the loop for long, and a full disk drops lines (with an error for the caller to log)
//! rather than stopping the reads: the unit never blocks on a full pipe because of colony.
//!
//! A log file may sit in a directory the unit's user can write: it is opened, rotated and
//! re-opened through [`safe_path`] and relative to its directory's fd, never through a link.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};

use nix::errno::Errno;
use nix::fcntl::{fcntl, renameat, FcntlArg, OFlag};
use nix::sys::stat::{fchmod, FileStat, Mode, SFlag};
use nix::unistd::{fchown, unlinkat, Gid, UnlinkatFlags};
use tracing::warn;

use crate::kernel::safe_path::{self, Allow, Dir, PathError};

pub mod console;
mod handover;
mod relocate;

pub use console::Console;
pub use handover::LogKept;

/// A log file's mode: the unit's output may hold secrets.
const FILE_MODE: u32 = 0o640;
/// Directories made for log files.
const DIR_MODE: u32 = 0o755;

/// A line longer than this is cut into pieces of this size (each its own log line).
pub const MAX_LINE: usize = 16 * 1024;

/// A pipe for a unit's stdout and stderr: `(read end, write end)`. The read end is
/// `O_NONBLOCK|O_CLOEXEC` for the loop. The write end is `O_CLOEXEC` too: the child's
/// `dup2` onto fds 1 and 2 clears the flag on the copies, and no other child inherits it.
pub fn log_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(errno_io)?;
    fcntl(&r, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(errno_io)?;
    Ok((r, w))
}

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// What one [`LogFile::drain`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drain {
    /// Every writer closed the pipe: unregister and close the read end.
    pub eof: bool,
    /// The budget ran out before the pipe was empty: more is waiting (level-triggered epoll
    /// reports it again).
    pub more: bool,
}

/// Where [`LogFile::drain`] copies each unit line as well: the console, under the unit's name.
pub struct ConsoleCopy<'a> {
    pub console: &'a mut Console,
    pub unit: &'a str,
}

/// A unit's log file, with size rotation `NAME.log -> NAME.log.1 -> ... -> NAME.log.KEEP`.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    /// The file's directory, held open: rotation renames and re-opens relative to it.
    /// Shared by every log file in that directory (see [`shared_dir`]).
    dir: Rc<Dir>,
    name: OsString,
    /// `--control-group`: its members may read the logs (files root:GROUP 0640).
    group: Option<Gid>,
    /// `None` after a failed (re)open: tried again at the next write.
    file: Option<File>,
    size: u64,
    max_size: u64,
    keep: u32,
    /// The start of a line whose newline has not come yet (at most [`MAX_LINE`]).
    partial: Vec<u8>,
    /// A regular file (not a device such as /dev/console): rotated by size.
    regular: bool,
}

impl LogFile {
    /// Open (append, create, parent directories too) the log file at `path`, without
    /// following links (see [`safe_path`]). `max_size` 0: never rotate. `keep` 0: a full
    /// file is truncated rather than kept. `group`: the file is made root:GROUP 0640.
    pub fn open(
        path: &Path,
        max_size: u64,
        keep: u32,
        group: Option<Gid>,
    ) -> Result<LogFile, PathError> {
        let (dir, name) = safe_path::split(path)?;
        let dir = shared_dir(dir)?;
        let (file, st) = open_in(&dir, name, group)?;
        Ok(LogFile {
            path: path.to_path_buf(),
            dir,
            name: name.to_os_string(),
            group,
            file: Some(file),
            size: st.st_size as u64,
            max_size,
            keep,
            partial: Vec::new(),
            regular: is_regular(&st),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Change the limits (the unit file changed).
    pub fn set_limits(&mut self, max_size: u64, keep: u32) {
        self.max_size = max_size;
        self.keep = keep;
    }

    /// Read at most `budget` bytes from `fd` (non-blocking) and write the complete lines,
    /// time-stamped, and to `copy` (without the stamp) when given. On EOF a last
    /// unterminated line is written too. An `Err` is a read error of the pipe or a write
    /// error of the file; in the latter case what was read is dropped and the caller goes on
    /// draining (so the unit does not block).
    pub fn drain(
        &mut self,
        fd: BorrowedFd<'_>,
        budget: usize,
        mut copy: Option<ConsoleCopy<'_>>,
    ) -> io::Result<Drain> {
        let mut buf = [0u8; 16 * 1024];
        let mut taken = 0usize;
        let mut out = Vec::new();
        let stamp = timestamp();
        let mut result = Drain {
            eof: false,
            more: false,
        };
        let mut read_err = None;
        loop {
            if taken >= budget {
                result.more = true;
                break;
            }
            let want = buf.len().min(budget - taken);
            match nix::unistd::read(fd, &mut buf[..want]) {
                Ok(0) => {
                    result.eof = true;
                    break;
                }
                Ok(n) => {
                    taken += n;
                    self.split(&buf[..n], &mut |line| {
                        push_line(&mut out, &stamp, line);
                        if let Some(c) = copy.as_mut() {
                            c.console.line(c.unit, line);
                        }
                    });
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                Err(e) => {
                    read_err = Some(errno_io(e));
                    break;
                }
            }
        }
        if result.eof && !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            push_line(&mut out, &stamp, &line);
            if let Some(c) = copy.as_mut() {
                c.console.line(c.unit, &line);
            }
        }
        // The copy first: a line in the file has had its copy made (or dropped) already.
        if let Some(c) = copy {
            c.console.flush();
        }
        self.write_lines(&out)?;
        match read_err {
            Some(e) => Err(e),
            None => Ok(result),
        }
    }

    /// One line of colony's own (`colony: started pid 42`), time-stamped, written as given.
    pub fn write_note(&mut self, text: &str) -> io::Result<()> {
        let mut out = Vec::new();
        push_line(&mut out, &timestamp(), text.as_bytes());
        self.write_lines(&out)
    }

    /// Write a pending unterminated line now (the unit exited while colony-init keeps the
    /// pipe's write end, so no EOF will come to end it), and to `copy` when given.
    pub fn flush_partial(&mut self, copy: Option<ConsoleCopy<'_>>) -> io::Result<()> {
        if self.partial.is_empty() {
            return Ok(());
        }
        let line = std::mem::take(&mut self.partial);
        if let Some(c) = copy {
            c.console.line(c.unit, &line);
            c.console.flush();
        }
        let mut out = Vec::new();
        push_line(&mut out, &timestamp(), &line);
        self.write_lines(&out)
    }

    /// Split `data` into complete lines (kept in `partial` otherwise), cutting long ones;
    /// each line goes to `emit` once.
    fn split(&mut self, mut data: &[u8], emit: &mut impl FnMut(&[u8])) {
        while !data.is_empty() {
            let room = MAX_LINE - self.partial.len();
            match data.iter().take(room).position(|&b| b == b'\n') {
                Some(i) => {
                    if self.partial.is_empty() {
                        emit(&data[..i]);
                    } else {
                        self.partial.extend_from_slice(&data[..i]);
                        let line = std::mem::take(&mut self.partial);
                        emit(&line);
                    }
                    data = &data[i + 1..];
                }
                None if data.len() >= room => {
                    // Too long for one line: write what fills MAX_LINE and go on.
                    self.partial.extend_from_slice(&data[..room]);
                    let line = std::mem::take(&mut self.partial);
                    emit(&line);
                    data = &data[room..];
                }
                None => {
                    self.partial.extend_from_slice(data);
                    data = &[];
                }
            }
        }
    }

    /// Write formatted lines, rotating before a line that would pass `max_size`.
    fn write_lines(&mut self, out: &[u8]) -> io::Result<()> {
        let mut first_err = None;
        let mut start = 0;
        let mut pending = 0;
        for line in out.split_inclusive(|&b| b == b'\n') {
            let len = line.len() as u64;
            let size = self.size + pending as u64;
            if self.rotates() && size > 0 && size + len > self.max_size {
                if let Err(e) = self.write_raw(&out[start..start + pending]) {
                    first_err.get_or_insert(e);
                }
                start += pending;
                pending = 0;
                if let Err(e) = self.rotate() {
                    first_err.get_or_insert(e);
                }
            }
            pending += line.len();
        }
        if let Err(e) = self.write_raw(&out[start..start + pending]) {
            first_err.get_or_insert(e);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Only regular files rotate: `file = "/dev/console"` must never be renamed.
    fn rotates(&self) -> bool {
        self.max_size > 0 && self.regular
    }

    fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            self.reopen()?;
        }
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        // Counted even when the write fails: rotation still happens, a full disk does
        // not make every later write retry an ever larger file.
        self.size += bytes.len() as u64;
        f.write_all(bytes)
    }

    /// Open the file again (after a rotation or a failure). The directory's fd is tried
    /// first; if the directory was removed meanwhile, its path is walked again (safely, and
    /// without making it afresh: a removed log directory is the admin's doing).
    fn reopen(&mut self) -> io::Result<()> {
        let (file, st) = match open_in(&self.dir, &self.name, self.group) {
            Err(e) if e.errno() == Some(Errno::ENOENT) => {
                let dir = Rc::new(Dir::open(self.dir.path(), None)?);
                let opened = open_in(&dir, &self.name, self.group)?;
                self.dir = dir;
                opened
            }
            r => r?,
        };
        self.size = st.st_size as u64;
        self.regular = is_regular(&st);
        self.file = Some(file);
        Ok(())
    }

    /// `NAME.log.(K-1) -> NAME.log.K`, ..., `NAME.log -> NAME.log.1`, then a new NAME.log.
    /// Renames and removals are of names in the directory's fd: a link planted among them
    /// is moved or removed itself, never followed.
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        self.size = 0;
        let numbered = |n: u32| {
            let mut s = self.name.clone();
            s.push(format!(".{n}"));
            s
        };
        let dir = self.dir.fd();
        if self.keep == 0 {
            remove_if_there(dir, &self.name)?;
        } else {
            remove_if_there(dir, &numbered(self.keep))?;
            for n in (1..self.keep).rev() {
                rename_if_there(dir, &numbered(n), &numbered(n + 1))?;
            }
            rename_if_there(dir, &self.name, &numbered(1))?;
        }
        self.reopen()
    }
}

thread_local! {
    /// The log directories held open, by path: units logging into one directory (LOG_DIR,
    /// most often) share one fd, so 10,000 units cost 10,000 fds fewer. colony-init is one
    /// thread; a directory whose last log file is dropped is closed.
    static DIRS: RefCell<HashMap<PathBuf, Weak<Dir>>> = RefCell::new(HashMap::new());
}

/// The directory `path`, walked safely (created 0755 where missing) or shared with a log file
/// already open in it.
fn shared_dir(path: &Path) -> Result<Rc<Dir>, PathError> {
    if let Some(dir) = DIRS.with(|d| d.borrow().get(path).and_then(Weak::upgrade)) {
        return Ok(dir);
    }
    let dir = Rc::new(Dir::open(path, Some(Mode::from_bits_truncate(DIR_MODE)))?);
    DIRS.with(|d| {
        let mut d = d.borrow_mut();
        // Dropped directories are swept as the map doubles: amortised O(1) a log file.
        if d.len() >= 64 && d.len().is_power_of_two() {
            d.retain(|_, w| w.strong_count() > 0);
        }
        d.insert(path.to_path_buf(), Rc::downgrade(&dir));
    });
    Ok(dir)
}

/// Open (append, create 0640) `name` in `dir`: a regular file with one link, or a device
/// root owns (`/dev/console`). With `group`, a regular file is made GROUP's, 0640.
fn open_in(dir: &Dir, name: &OsStr, group: Option<Gid>) -> Result<(File, FileStat), PathError> {
    let (file, st) = dir.open_file(
        name,
        OFlag::O_WRONLY | OFlag::O_APPEND,
        Some(Mode::from_bits_truncate(FILE_MODE)),
        Allow::RegularOrRootDevice,
    )?;
    if let Some(gid) = group.filter(|_| is_regular(&st)) {
        // On the fd: the name may already be another file. A failure costs the group its
        // reading, not the unit its log.
        let done = fchown(&file, None, Some(gid))
            .and_then(|()| fchmod(&file, Mode::from_bits_truncate(FILE_MODE)));
        if let Err(e) = done {
            warn!(file = %dir.path().join(name).display(), error = %e,
                "cannot make the log file readable by the control group");
        }
    }
    Ok((file, st))
}

fn is_regular(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
}

fn remove_if_there(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Err(e) if e != Errno::ENOENT => Err(errno_io(e)),
        _ => Ok(()),
    }
}

fn rename_if_there(dir: BorrowedFd<'_>, from: &OsStr, to: &OsStr) -> io::Result<()> {
    match renameat(dir, from, dir, to) {
        Err(e) if e != Errno::ENOENT => Err(errno_io(e)),
        _ => Ok(()),
    }
}

/// `2026-11-23T12:00:00.123Z`
fn timestamp() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn push_line(out: &mut Vec<u8>, stamp: &str, line: &[u8]) {
    out.extend_from_slice(stamp.as_bytes());
    out.push(b' ');
    out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
    out.push(b'\n');
}

#[cfg(test)]
mod tests;

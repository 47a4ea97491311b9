//! Unit output: pipes read by the loop, lines time-stamped into rotated log files.
//!
//! A unit writes into a pipe; the loop reads the other end (non-blocking, level-triggered
//! `EPOLLIN`) with [`LogFile::drain`] and a byte budget, so a unit flooding its output never
//! holds the loop for long, and a full disk drops lines (with an error for the caller to log)
//! rather than stopping the reads: the unit never blocks on a full pipe because of colony.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};

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

/// A unit's log file, with size rotation `NAME.log -> NAME.log.1 -> ... -> NAME.log.KEEP`.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
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
    /// Open (append, create, parent directories too) the log file at `path`. `max_size` 0:
    /// never rotate. `keep` 0: a full file is truncated rather than kept.
    pub fn open(path: &Path, max_size: u64, keep: u32) -> io::Result<LogFile> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let file = open_append(path)?;
        let meta = file.metadata()?;
        let size = meta.len();
        Ok(LogFile {
            path: path.to_path_buf(),
            file: Some(file),
            size,
            max_size,
            keep,
            partial: Vec::new(),
            regular: meta.file_type().is_file(),
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
    /// time-stamped. On EOF a last unterminated line is written too. An `Err` is a read
    /// error of the pipe or a write error of the file; in the latter case what was read is
    /// dropped and the caller goes on draining (so the unit does not block).
    pub fn drain(&mut self, fd: BorrowedFd<'_>, budget: usize) -> io::Result<Drain> {
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
                    self.split(&buf[..n], &stamp, &mut out);
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
    /// pipe's write end, so no EOF will come to end it).
    pub fn flush_partial(&mut self) -> io::Result<()> {
        if self.partial.is_empty() {
            return Ok(());
        }
        let line = std::mem::take(&mut self.partial);
        let mut out = Vec::new();
        push_line(&mut out, &timestamp(), &line);
        self.write_lines(&out)
    }

    /// Split `data` into complete lines (kept in `partial` otherwise), cutting long ones.
    fn split(&mut self, mut data: &[u8], stamp: &str, out: &mut Vec<u8>) {
        while !data.is_empty() {
            let room = MAX_LINE - self.partial.len();
            match data.iter().take(room).position(|&b| b == b'\n') {
                Some(i) => {
                    if self.partial.is_empty() {
                        push_line(out, stamp, &data[..i]);
                    } else {
                        self.partial.extend_from_slice(&data[..i]);
                        let line = std::mem::take(&mut self.partial);
                        push_line(out, stamp, &line);
                    }
                    data = &data[i + 1..];
                }
                None if data.len() >= room => {
                    // Too long for one line: write what fills MAX_LINE and go on.
                    self.partial.extend_from_slice(&data[..room]);
                    let line = std::mem::take(&mut self.partial);
                    push_line(out, stamp, &line);
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
            let f = open_append(&self.path)?;
            self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
            self.file = Some(f);
        }
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        // Counted even when the write fails: rotation still happens, a full disk does
        // not make every later write retry an ever larger file.
        self.size += bytes.len() as u64;
        f.write_all(bytes)
    }

    /// `NAME.log.(K-1) -> NAME.log.K`, ..., `NAME.log -> NAME.log.1`, then a new NAME.log.
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        self.size = 0;
        let numbered = |n: u32| {
            let mut s = self.path.as_os_str().to_owned();
            s.push(format!(".{n}"));
            PathBuf::from(s)
        };
        if self.keep == 0 {
            remove_if_there(&self.path)?;
        } else {
            remove_if_there(&numbered(self.keep))?;
            for n in (1..self.keep).rev() {
                rename_if_there(&numbered(n), &numbered(n + 1))?;
            }
            rename_if_there(&self.path, &numbered(1))?;
        }
        self.file = Some(open_append(&self.path)?);
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
}

fn remove_if_there(p: &Path) -> io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_there(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
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

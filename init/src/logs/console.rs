//! A copy of unit output on colony-init's standard output (`NAME| line`), for a container's
//! `docker logs`/`podman logs`.
//!
//! colony-init never waits on this copy: whoever reads our standard output (a container
//! runtime, a terminal, a pipe into a stopped reader) may stop reading, and the loop must go
//! on. Writes are non-blocking and of whole lines: lines are gathered into batches of at most
//! [`PIPE_BUF`] bytes, which a pipe takes whole or not at all, and a line that would not fit
//! one batch is cut into pieces that do. What does not fit is dropped and counted, and the
//! count is said (one line) before the next batch that gets through: no timer, no buffer that
//! grows.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::sys::socket::{send, MsgFlags};
use nix::sys::stat::{fstat, Mode, SFlag};
use tracing::{debug, warn};

/// Pipes take a write of at most this many bytes whole or not at all (POSIX PIPE_BUF).
pub const PIPE_BUF: usize = 4096;

/// How the copy reaches standard output.
#[derive(Debug)]
enum Target {
    /// Our own open of standard output (or a duplicate of it), `O_NONBLOCK`.
    Fd(OwnedFd),
    /// A socket: `send` with `MSG_DONTWAIT` does not block, whatever its flags.
    Socket(OwnedFd),
}

/// What one write did.
#[derive(Debug, PartialEq, Eq)]
enum Wrote {
    All,
    /// Only the first `n` bytes went.
    Part(usize),
    /// Nothing went: no room.
    Full,
    /// The reader is gone or the file failed for good.
    Broken(Errno),
}

/// colony-init's standard output as the console copy's target.
#[derive(Debug)]
pub struct Console {
    /// `None` once writing failed for good (the reader is gone).
    target: Option<Target>,
    /// Whole lines waiting to be written together (at most [`PIPE_BUF`] bytes).
    batch: Vec<u8>,
    batch_lines: u64,
    /// Lines dropped since the last batch that got through.
    dropped: u64,
    /// A partial write left a line without its end: the next write starts a new line.
    torn: bool,
}

impl Console {
    /// colony-init's standard output, opened again on our own so that its flags
    /// (non-blocking) do not change the description that colony-init's other writers (a
    /// terminal shared with stderr) use. `None` when there is no usable standard output.
    pub fn stdout() -> Option<Console> {
        // SAFETY: fd 1 is borrowed for the calls below only; nothing closes it meanwhile.
        let fd1 = unsafe { BorrowedFd::borrow_raw(1) };
        let st = match fstat(fd1) {
            Ok(st) => st,
            Err(e) => {
                debug!(error = %e, "no standard output: unit output is not copied there");
                return None;
            }
        };
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        let dup = || fd1.try_clone_to_owned().ok();
        let target = if kind == SFlag::S_IFSOCK {
            dup().map(Target::Socket)
        } else if kind == SFlag::S_IFREG {
            // A file never blocks a write; our own open would write at its own offset.
            dup().map(Target::Fd)
        } else {
            Some(Target::Fd(reopen_nonblocking(fd1)?))
        };
        if target.is_none() {
            warn!("cannot duplicate standard output: unit output is not copied there");
        }
        Some(Console::with_target(target?))
    }

    /// A console writing to `fd` (made non-blocking), e.g. a pipe's write end.
    pub fn from_fd(fd: OwnedFd) -> nix::Result<Console> {
        set_nonblocking(fd.as_fd())?;
        Ok(Console::with_target(Target::Fd(fd)))
    }

    fn with_target(target: Target) -> Console {
        Console {
            target: Some(target),
            batch: Vec::with_capacity(PIPE_BUF),
            batch_lines: 0,
            dropped: 0,
            torn: false,
        }
    }

    /// Lines dropped and not yet said.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Copy one line of `unit` (without its newline): `UNIT| line`. Written when the batch
    /// is full or at [`Console::flush`].
    pub fn line(&mut self, unit: &str, line: &[u8]) {
        if self.target.is_none() {
            return;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let overhead = unit.len() + 3; // "| " and "\n"
        let room = PIPE_BUF.saturating_sub(overhead).max(256);
        let mut pieces = line.chunks(room);
        let first = pieces.next().unwrap_or(&[]);
        for piece in std::iter::once(first).chain(pieces) {
            if self.batch.len() + overhead + piece.len() > PIPE_BUF {
                self.flush();
            }
            self.batch.extend_from_slice(unit.as_bytes());
            self.batch.extend_from_slice(b"| ");
            self.batch.extend_from_slice(piece);
            self.batch.push(b'\n');
            self.batch_lines += 1;
        }
    }

    /// Write the batch now, or drop it (counted) when there is no room.
    pub fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let lines = std::mem::take(&mut self.batch_lines);
        if self.dropped > 0 {
            let note = format!(
                "{}colony-init| {} lines of unit output dropped: standard output was not being read\n",
                if self.torn { "\n" } else { "" },
                self.dropped
            );
            match self.write(note.as_bytes()) {
                Wrote::All => {
                    self.dropped = 0;
                    self.torn = false;
                }
                // Half a note: the batch starts on a line of its own.
                Wrote::Part(_) => {
                    self.dropped = lines;
                    self.torn = true;
                    self.batch = recycle(batch);
                    return;
                }
                Wrote::Full | Wrote::Broken(_) => {
                    self.dropped += lines;
                    self.batch = recycle(batch);
                    return;
                }
            }
        }
        match self.write(&batch) {
            Wrote::All => {}
            Wrote::Part(n) => {
                // A terminal or a socket took part: the lines not (wholly) written count.
                self.dropped += batch[n..].iter().filter(|&&b| b == b'\n').count() as u64;
                self.torn = true;
            }
            Wrote::Full | Wrote::Broken(_) => self.dropped += lines,
        }
        self.batch = recycle(batch);
    }

    fn write(&mut self, bytes: &[u8]) -> Wrote {
        let Some(target) = &self.target else {
            return Wrote::Broken(Errno::EBADF);
        };
        let r = loop {
            let r = match target {
                Target::Fd(fd) => nix::unistd::write(fd, bytes),
                Target::Socket(fd) => send(
                    std::os::fd::AsRawFd::as_raw_fd(fd),
                    bytes,
                    MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
                ),
            };
            if r != Err(Errno::EINTR) {
                break r;
            }
        };
        match r {
            Ok(n) if n >= bytes.len() => Wrote::All,
            Ok(n) => Wrote::Part(n),
            Err(Errno::EAGAIN) => Wrote::Full,
            Err(e) => {
                warn!(error = %e, "standard output failed: unit output is no longer copied there");
                self.target = None;
                Wrote::Broken(e)
            }
        }
    }
}

fn recycle(mut v: Vec<u8>) -> Vec<u8> {
    v.clear();
    v
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> nix::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}

/// A new open file description of `fd`'s pipe or terminal, non-blocking. Where that is not
/// allowed (a pipe of another user), `fd` itself is made non-blocking: its other users are
/// colony-init's own writes, which then drop rather than wait as well.
fn reopen_nonblocking(fd: BorrowedFd<'_>) -> Option<OwnedFd> {
    let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
    let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
    match open(path.as_str(), flags, Mode::empty()) {
        Ok(own) => Some(own),
        // A pipe whose reader is gone: nothing would ever be read.
        Err(Errno::ENXIO) => {
            debug!("standard output has no reader: unit output is not copied there");
            None
        }
        Err(e) => {
            debug!(error = %e, "cannot open standard output again; making it non-blocking");
            let own = fd.try_clone_to_owned().ok()?;
            set_nonblocking(own.as_fd()).ok()?;
            Some(own)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (OwnedFd, Console) {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        set_nonblocking(r.as_fd()).unwrap();
        (r, Console::from_fd(w).unwrap())
    }

    fn read_all(r: &OwnedFd) -> String {
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = nix::unistd::read(r, &mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_get_the_unit_prefix_and_long_ones_are_cut_whole() {
        let (r, mut c) = pipe();
        c.line("web", b"hello");
        c.line("web", b"crlf\r");
        c.line("db", b"");
        c.line("web", &vec![b'x'; 10_000]);
        c.flush();
        let text = read_all(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(&lines[..3], ["web| hello", "web| crlf", "db| "]);
        let long = &lines[3..];
        assert_eq!(long.len(), 3, "10000 bytes in pieces of one pipe write");
        assert!(long
            .iter()
            .all(|l| l.starts_with("web| x") && l.len() < PIPE_BUF));
        let xs: usize = long.iter().map(|l| l.len() - 5).sum();
        assert_eq!(xs, 10_000);
    }

    #[test]
    fn a_full_pipe_drops_whole_lines_and_the_count_is_said_later() {
        let (r, mut c) = pipe();
        // 64 KiB pipe: 100,000 lines of 20 bytes cannot fit; none may block.
        for i in 0..100_000u32 {
            c.line("flood", format!("line {i:09}").as_bytes());
        }
        c.flush();
        let dropped = c.dropped();
        assert!(dropped > 90_000, "dropped {dropped}");
        let first = read_all(&r);
        let n = first.lines().count() as u64;
        assert_eq!(n + dropped, 100_000, "every line written whole or counted");
        for (i, l) in first.lines().enumerate() {
            assert_eq!(l, format!("flood| line {i:09}"), "whole lines, in order");
        }
        // Room again: the count comes first, then the new line.
        c.line("flood", b"after");
        c.flush();
        assert_eq!(c.dropped(), 0);
        assert_eq!(
            read_all(&r),
            format!(
                "colony-init| {dropped} lines of unit output dropped: standard output was not being read\nflood| after\n"
            )
        );
    }

    #[test]
    fn a_gone_reader_ends_the_copy_without_a_signal() {
        let (r, mut c) = pipe();
        drop(r);
        c.line("web", b"x");
        c.flush(); // EPIPE, not SIGPIPE (Rust ignores it; the test harness too)
        assert!(c.target.is_none());
        c.line("web", b"y");
        c.flush();
    }
}

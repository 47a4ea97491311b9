//! `logs -f`: print what is appended to the logs, across rotations, until Ctrl-C, SIGTERM
//! or SIGHUP (exit 0, quietly), or until the reader of stdout goes away (`| head -3`: exit 0,
//! quietly, even when no more lines come).
//!
//! One `poll` waits on inotify (the logs' directories), a signalfd (the stop signals are
//! blocked and read from it, so one arriving at any moment is seen) and stdout (a pipe whose
//! reader closed reports POLLERR). No polling interval: an idle follower sleeps.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use regex::bytes::Regex;

use super::sources::Dirs;
use super::{Printer, Source};
use crate::CliError;

/// A line longer than this without a newline is printed in pieces of this size.
const MAX_PARTIAL: usize = 64 * 1024;

/// One followed log.
struct Followed {
    source: Source,
    /// None until the file exists.
    file: Option<File>,
    /// The start of a line whose newline has not been written yet.
    partial: Vec<u8>,
}

/// Why following ended (both are a normal, quiet end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Ctrl-C, SIGTERM or SIGHUP.
    Signal(i32),
    /// Nobody reads stdout any more.
    OutputClosed,
}

fn sys(what: &'static str) -> impl Fn(Errno) -> CliError {
    move |e| CliError::failed(format!("{what}: {e}"))
}

/// Ctrl-C, SIGTERM and SIGHUP, blocked and read from a signalfd from the moment this is
/// made: one that comes while the last lines are printed, or between a check and the
/// blocking wait, ends the follower all the same.
pub struct StopSignals(SignalFd);

impl StopSignals {
    pub fn block() -> Result<StopSignals, CliError> {
        let mut mask = SigSet::empty();
        for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            mask.add(s);
        }
        mask.thread_block().map_err(sys("sigprocmask"))?;
        SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map(StopSignals)
            .map_err(sys("signalfd"))
    }
}

/// Follow `sources`, each going on from its `files` entry (as [`super::last_lines`] left
/// it; None: from the start of the file once it exists). With `all`, logs that appear later
/// (a new unit) are followed too. `out_fd` is watched for its reader going away.
pub fn follow<W: Write>(
    stop: StopSignals,
    sources: Vec<Source>,
    files: Vec<Option<File>>,
    all: Option<&Dirs>,
    grep: Option<&Regex>,
    out: &mut Printer<W>,
    out_fd: Option<BorrowedFd<'_>>,
) -> Result<End, CliError> {
    let sigfd = stop.0;
    let inotify =
        Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).map_err(sys("inotify"))?;
    let mut watched = BTreeSet::new();
    let mut logs = Vec::new();
    for (source, file) in sources.into_iter().zip(files) {
        watch(&inotify, &mut watched, &source.path)?;
        logs.push(Followed {
            source,
            file,
            partial: Vec::new(),
        });
    }
    if let Some(d) = all {
        // New units' logs appear here.
        watch_dir(&inotify, &mut watched, &d.log_dir)?;
    }
    let mut created = false;
    loop {
        if created {
            if let Some(d) = all {
                for source in d.all() {
                    if logs.iter().all(|l| l.source.name != source.name) {
                        watch(&inotify, &mut watched, &source.path)?;
                        logs.push(Followed {
                            source,
                            file: None,
                            partial: Vec::new(),
                        });
                    }
                }
            }
        }
        for l in &mut logs {
            if l.pump(grep, out).is_err() {
                return Ok(End::OutputClosed);
            }
        }
        if out.flush().is_err() {
            return Ok(End::OutputClosed);
        }
        let mut fds = vec![
            PollFd::new(inotify.as_fd(), PollFlags::POLLIN),
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(fd) = out_fd {
            // No events asked: POLLERR and POLLHUP are always reported.
            fds.push(PollFd::new(fd, PollFlags::empty()));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(sys("poll")(e)),
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .unwrap_or(PollFlags::empty())
        };
        if ready(1).contains(PollFlags::POLLIN) {
            if let Ok(Some(info)) = sigfd.read_signal() {
                return Ok(End::Signal(info.ssi_signo as i32));
            }
        }
        if ready(2).intersects(PollFlags::POLLERR | PollFlags::POLLHUP) {
            return Ok(End::OutputClosed);
        }
        created = false;
        loop {
            match inotify.read_events() {
                Ok(events) if !events.is_empty() => {
                    created |= events.iter().any(|e| {
                        e.mask
                            .intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
                    });
                }
                Ok(_) | Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(sys("inotify")(e)),
            }
        }
    }
}

/// Watch the directory of `path`: rotation renames the file and creates a new one.
fn watch(inotify: &Inotify, watched: &mut BTreeSet<PathBuf>, path: &Path) -> Result<(), CliError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    watch_dir(inotify, watched, dir)
}

fn watch_dir(
    inotify: &Inotify,
    watched: &mut BTreeSet<PathBuf>,
    dir: &Path,
) -> Result<(), CliError> {
    if watched.contains(dir) {
        return Ok(());
    }
    inotify
        .add_watch(
            dir,
            AddWatchFlags::IN_MODIFY
                | AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_MOVED_FROM
                | AddWatchFlags::IN_DELETE
                | AddWatchFlags::IN_CLOSE_WRITE,
        )
        .map_err(|e| {
            CliError::failed(format!(
                "cannot watch {}: {e} (does the directory exist?)",
                dir.display()
            ))
        })?;
    watched.insert(dir.to_path_buf());
    Ok(())
}

impl Followed {
    /// Print what was appended; on a rotation, finish the old file and go on with the new
    /// one from its start. An `Err` is a write error of the output.
    fn pump<W: Write>(&mut self, grep: Option<&Regex>, out: &mut Printer<W>) -> io::Result<()> {
        loop {
            if let Some(f) = self.file.as_mut() {
                // A read error of the log (it went away) is not the output's: skip.
                if let Ok(bytes) = read_new(f) {
                    self.lines(&bytes, grep, out)?;
                }
            }
            let Ok(meta) = std::fs::metadata(&self.source.path) else {
                return Ok(());
            };
            let same = self
                .file
                .as_ref()
                .and_then(|f| f.metadata().ok())
                .is_some_and(|m| m.ino() == meta.ino() && m.dev() == meta.dev());
            if same {
                return Ok(());
            }
            let Ok(new) = File::open(&self.source.path) else {
                return Ok(());
            };
            if self.file.is_some() && !self.partial.is_empty() {
                let rest = std::mem::take(&mut self.partial);
                self.emit(&rest, grep, out)?;
            }
            self.file = Some(new);
        }
    }

    fn lines<W: Write>(
        &mut self,
        mut bytes: &[u8],
        grep: Option<&Regex>,
        out: &mut Printer<W>,
    ) -> io::Result<()> {
        while let Some(i) = bytes.iter().position(|&b| b == b'\n') {
            let line = if self.partial.is_empty() {
                bytes[..i].to_vec()
            } else {
                let mut l = std::mem::take(&mut self.partial);
                l.extend_from_slice(&bytes[..i]);
                l
            };
            self.emit(&line, grep, out)?;
            bytes = &bytes[i + 1..];
        }
        self.partial.extend_from_slice(bytes);
        if self.partial.len() >= MAX_PARTIAL {
            let piece = std::mem::take(&mut self.partial);
            self.emit(&piece, grep, out)?;
        }
        Ok(())
    }

    fn emit<W: Write>(
        &self,
        line: &[u8],
        grep: Option<&Regex>,
        out: &mut Printer<W>,
    ) -> io::Result<()> {
        if grep.is_none_or(|re| re.is_match(line)) {
            out.line(&self.source.name, line)?;
        }
        Ok(())
    }
}

/// What was appended to `f` since the last read; a truncated file is read again from its
/// start.
fn read_new(f: &mut File) -> io::Result<Vec<u8>> {
    let pos = f.stream_position()?;
    if f.metadata()?.len() < pos {
        f.seek(SeekFrom::Start(0))?;
    }
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(buf)
}

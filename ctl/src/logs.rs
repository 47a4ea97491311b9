//! `colonyctl logs [UNIT...] [-n N] [-f] [--since DUR] [--grep RE]`: the units' log files,
//! read directly (no colony-init needed), filtered, merged by time stamp; [`follow`] then
//! prints what is written after.
//!
//! A log line is `2026-11-23T12:00:00.123Z text` (init/src/logs.rs). A line without a stamp
//! (a file written by something else) takes the stamp of the line before it.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use regex::bytes::Regex;

use crate::CliError;

pub mod follow;
pub mod sources;

/// What `colonyctl logs` was asked.
pub struct Args {
    pub run_dir: PathBuf,
    /// Names (`.unit` stripped); empty: every log.
    pub units: Vec<String>,
    pub lines: Option<usize>,
    pub follow: bool,
    pub since: Option<std::time::Duration>,
    pub grep: Option<String>,
    pub log_dir: Option<PathBuf>,
    pub json: bool,
}

/// `colonyctl logs`: exit 0 also when stdout's reader goes away or (with -f) on Ctrl-C.
pub fn run(a: Args) -> Result<i32, CliError> {
    let grep = match &a.grep {
        Some(re) => Some(Regex::new(re).map_err(|e| {
            CliError::new(
                units::proto::exit::USAGE,
                format!("--grep: not a regular expression: {e}"),
            )
        })?),
        None => None,
    };
    let since = match a.since {
        Some(d) => Some(
            Utc::now()
                - chrono::Duration::from_std(d)
                    .map_err(|_| CliError::new(units::proto::exit::USAGE, "--since: too long"))?,
        ),
        None => None,
    };
    let dirs = sources::dirs(&a.run_dir, a.log_dir)?;
    let sources: Vec<Source> = if a.units.is_empty() {
        dirs.all()
    } else {
        let mut v: Vec<Source> = Vec::new();
        for n in &a.units {
            if v.iter().all(|s| s.name != *n) {
                v.push(dirs.source(n)?);
            }
        }
        v
    };
    // `--since` alone shows every line since; otherwise the last 10 by default.
    let lines = match (a.lines, since) {
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) => Some(10),
    };
    let filter = Filter { since, grep };
    // Before the first line is printed: a Ctrl-C from then on ends `-f` quietly.
    let stop = if a.follow {
        Some(follow::StopSignals::block()?)
    } else {
        None
    };
    // A closed stdout is an EPIPE to end on quietly, not a SIGPIPE death (exit 141).
    crate::sigpipe(false);
    let stdout = io::stdout();
    let mut out = Printer {
        out: io::BufWriter::new(stdout.lock()),
        prefix: a.units.len() != 1,
        json: a.json,
    };
    let (shown, files) = last_lines(&sources, lines, &filter)
        .map_err(|e| CliError::failed(format!("reading the logs: {e}")))?;
    for l in &shown {
        if out.line(&sources[l.unit].name, &l.text).is_err() {
            return Ok(units::proto::exit::OK);
        }
    }
    let Some(stop) = stop else {
        let _ = out.flush();
        return Ok(units::proto::exit::OK);
    };
    if out.flush().is_err() {
        return Ok(units::proto::exit::OK);
    }
    let all = a.units.is_empty().then_some(&dirs);
    use std::os::fd::AsFd;
    let fd = stdout.as_fd();
    follow::follow(
        stop,
        sources,
        files,
        all,
        filter.grep.as_ref(),
        &mut out,
        Some(fd),
    )?;
    Ok(units::proto::exit::OK)
}

/// One log to show: the unit's name (the prefix of its lines) and its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub path: PathBuf,
}

/// Which lines to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Lines stamped at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Lines matching this (anywhere in the line, the stamp included).
    pub grep: Option<Regex>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.since.is_none() && self.grep.is_none()
    }

    /// Whether `line` (without its newline), stamped `stamp`, is shown.
    pub fn keeps(&self, stamp: Option<DateTime<Utc>>, line: &[u8]) -> bool {
        if let Some(since) = self.since {
            if stamp.is_none_or(|s| s < since) {
                return false;
            }
        }
        self.grep.as_ref().is_none_or(|re| re.is_match(line))
    }
}

/// The time stamp colony-init puts at the start of each line, if `line` has one.
pub fn stamp_of(line: &[u8]) -> Option<DateTime<Utc>> {
    let word = line.split(|&b| b == b' ').next()?;
    let text = std::str::from_utf8(word).ok()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Where lines go: plain (`NAME| ` first when several logs are shown) or JSON Lines.
pub struct Printer<W: Write> {
    pub out: W,
    pub prefix: bool,
    pub json: bool,
}

impl<W: Write> Printer<W> {
    /// One line, without its newline.
    pub fn line(&mut self, unit: &str, line: &[u8]) -> io::Result<()> {
        if self.json {
            let v = serde_json::json!({"unit": unit, "line": String::from_utf8_lossy(line)});
            return writeln!(self.out, "{v}");
        }
        if self.prefix {
            self.out.write_all(unit.as_bytes())?;
            self.out.write_all(b"| ")?;
        }
        self.out.write_all(line)?;
        self.out.write_all(b"\n")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A line read from a log, with the stamp it sorts by.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub stamp: Option<DateTime<Utc>>,
    pub unit: usize,
    pub text: Vec<u8>,
}

/// The last `n` lines (all when `None`) of the sources that `filter` keeps, merged in time
/// order (a stable sort: one unit's lines keep their order).
/// Each source's current file comes back too, positioned just after what was read, so a
/// follower goes on from there (nothing lost, nothing twice).
pub fn last_lines(
    sources: &[Source],
    n: Option<usize>,
    filter: &Filter,
) -> io::Result<(Vec<Line>, Vec<Option<File>>)> {
    let mut all = Vec::new();
    let mut files = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let (lines, file) = read_source(i, &s.path, n, filter)?;
        all.extend(lines);
        files.push(file);
    }
    if sources.len() > 1 {
        // Lines without any stamp sort first; a unit's own order is kept.
        all.sort_by_key(|l| l.stamp);
    }
    if let Some(n) = n {
        let skip = all.len().saturating_sub(n);
        all.drain(..skip);
    }
    Ok((all, files))
}

/// One source's last `n` kept lines. Unfiltered, only the end of the current file is read;
/// filtered, its rotated files (`NAME.log.K` .. `NAME.log.1`, oldest first) are read too,
/// so `--since 1h` reaches past a rotation.
fn read_source(
    unit: usize,
    path: &Path,
    n: Option<usize>,
    filter: &Filter,
) -> io::Result<(Vec<Line>, Option<File>)> {
    let open = |p: &Path| match File::open(p) {
        Ok(f) => Ok(Some(f)),
        // No output yet is no error.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", p.display()))),
    };
    let mut kept: VecDeque<Line> = VecDeque::new();
    if let (true, Some(n)) = (filter.is_empty(), n) {
        let Some(mut f) = open(path)? else {
            return Ok((Vec::new(), None));
        };
        {
            let bytes = tail(&mut f, n)?;
            let mut stamp = None;
            for text in split_lines(&bytes) {
                stamp = stamp_of(text).or(stamp);
                kept.push_back(Line {
                    stamp,
                    unit,
                    text: text.to_vec(),
                });
            }
            return Ok((kept.into(), Some(f)));
        }
    }
    let mut stamp = None;
    let mut current = None;
    for p in rotated(path).into_iter().chain([path.to_path_buf()]) {
        let is_current = p == path;
        let Some(f) = open(&p)? else { continue };
        let mut r = BufReader::new(f);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if r.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            stamp = stamp_of(&buf).or(stamp);
            if !filter.keeps(stamp, &buf) {
                continue;
            }
            kept.push_back(Line {
                stamp,
                unit,
                text: buf.clone(),
            });
            if n.is_some_and(|n| kept.len() > n) {
                kept.pop_front();
            }
        }
        if is_current {
            // Read to its end: the buffer is empty, the file's offset is where we stopped.
            current = Some(r.into_inner());
        }
    }
    Ok((kept.into(), current))
}

/// `PATH.K` .. `PATH.1` that exist, oldest first (init/src/logs.rs rotates `NAME.log ->
/// NAME.log.1 -> ...`).
fn rotated(path: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for k in 1..=1000 {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{k}"));
        let p = PathBuf::from(p);
        if !p.exists() {
            break;
        }
        found.push(p);
    }
    found.reverse();
    found
}

/// The lines of `bytes`; a final newline ends the last line, it does not start another.
fn split_lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let empty = bytes.is_empty();
    body.split(|&b| b == b'\n').filter(move |_| !empty)
}

/// The last `n` lines of `file` (all of it when shorter), read from its end; the file is
/// left positioned at its end.
pub fn tail(file: &mut File, n: usize) -> io::Result<Vec<u8>> {
    let len = file.seek(SeekFrom::End(0))?;
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = len;
    const CHUNK: u64 = 64 * 1024;
    loop {
        let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let newlines = body.iter().filter(|&&b| b == b'\n').count();
        if newlines >= n || pos == 0 {
            let start = if newlines >= n {
                // Just after the n-th newline from the end.
                body.iter()
                    .enumerate()
                    .rev()
                    .filter(|(_, &b)| b == b'\n')
                    .nth(n - 1)
                    .map_or(0, |(i, _)| i + 1)
            } else {
                0
            };
            file.seek(SeekFrom::Start(len))?;
            return Ok(buf[start..].to_vec());
        }
        let step = CHUNK.min(pos);
        pos -= step;
        file.seek(SeekFrom::Start(pos))?;
        let mut chunk = vec![0u8; step as usize];
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail_of(content: &[u8], n: usize) -> Vec<u8> {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), content).unwrap();
        let mut f = File::open(tmp.path()).unwrap();
        let out = tail(&mut f, n).unwrap();
        // Positioned at the end, ready to follow.
        assert_eq!(f.stream_position().unwrap(), content.len() as u64);
        out
    }

    #[test]
    fn tail_takes_the_last_lines() {
        assert_eq!(tail_of(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail_of(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(tail_of(b"a\nb\nc\n", 10), b"a\nb\nc\n");
        assert_eq!(tail_of(b"a\nb\nc\n", 0), b"");
        assert_eq!(tail_of(b"", 5), b"");
        assert_eq!(tail_of(b"\n\n\n", 2), b"\n\n");
    }

    #[test]
    fn tail_reads_across_chunks() {
        let mut content = Vec::new();
        for i in 0..50_000 {
            content.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let out = tail_of(&content, 20_000);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 20_000);
        assert_eq!(text.lines().next().unwrap(), "line 30000");
        assert_eq!(text.lines().last().unwrap(), "line 49999");
    }

    #[test]
    fn split_lines_ends_at_the_final_newline() {
        let v: Vec<&[u8]> = split_lines(b"a\n\nb\n").collect();
        assert_eq!(v, vec![&b"a"[..], b"", b"b"]);
        assert_eq!(split_lines(b"").count(), 0);
        assert_eq!(split_lines(b"x").count(), 1);
    }

    #[test]
    fn stamps_are_read_from_the_first_word() {
        let t = stamp_of(b"2026-11-23T12:00:00.123Z hello").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-23T12:00:00.123+00:00");
        assert_eq!(stamp_of(b"hello world"), None);
        assert_eq!(stamp_of(b""), None);
    }

    #[test]
    fn printer_prefixes_and_json() {
        let mut p = Printer {
            out: Vec::new(),
            prefix: true,
            json: false,
        };
        p.line("web", b"x y").unwrap();
        assert_eq!(p.out, b"web| x y\n");
        let mut p = Printer {
            out: Vec::new(),
            prefix: true,
            json: true,
        };
        p.line("web", b"two \"q\"\xff").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&p.out).unwrap();
        assert_eq!(v["unit"], "web");
        assert_eq!(v["line"], "two \"q\"\u{fffd}");
    }
}

//! `colonyctl logs UNIT [-n N] [-f]`: the unit's log file, read directly.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::CliError;

/// The last `n` lines of `file` (all of it when shorter), read from its end.
pub fn tail(file: &mut File, n: usize) -> io::Result<Vec<u8>> {
    let len = file.seek(SeekFrom::End(0))?;
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = len;
    const CHUNK: u64 = 64 * 1024;
    loop {
        // A final newline ends the last line, it does not start another.
        let body = match buf.last() {
            Some(b'\n') => &buf[..buf.len() - 1],
            _ => &buf[..],
        };
        let newlines = body.iter().filter(|&&b| b == b'\n').count();
        if newlines >= n || pos == 0 {
            let start = if newlines >= n {
                // Just after the n-th newline from the end.
                let mut seen = 0;
                let mut idx = 0;
                for (i, &b) in body.iter().enumerate().rev() {
                    if b == b'\n' {
                        seen += 1;
                        if seen == n {
                            idx = i + 1;
                            break;
                        }
                    }
                }
                idx
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

/// Print the last `n` lines, then (with `follow`) everything written after, across rotations,
/// until interrupted or stdout closes.
pub fn show<W: Write>(path: &Path, n: usize, follow: bool, out: &mut W) -> Result<(), CliError> {
    let io_err = |e: io::Error| CliError::failed(format!("{}: {e}", path.display()));
    let mut file = match File::open(path) {
        Ok(mut f) => {
            let last = tail(&mut f, n).map_err(io_err)?;
            if write_out(out, &last).is_err() {
                return Ok(());
            }
            Some(f)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if !follow {
                // No output yet is no error.
                return Ok(());
            }
            None
        }
        Err(e) => return Err(io_err(e)),
    };
    if !follow {
        return Ok(());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC)
        .map_err(|e| CliError::failed(format!("inotify: {e}")))?;
    // The directory, not the file: rotation renames the file and creates a new one.
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
    loop {
        if let Some(f) = file.as_mut() {
            if copy_new(f, out).is_err() {
                return Ok(()); // stdout closed (e.g. `| head`)
            }
        }
        // Rotated or re-created: finish the old file, go on with the new one from its start.
        if let Ok(meta) = std::fs::metadata(path) {
            let same = file
                .as_ref()
                .and_then(|f| f.metadata().ok())
                .is_some_and(|m| m.ino() == meta.ino() && m.dev() == meta.dev());
            if !same {
                if let Ok(f) = File::open(path) {
                    if let Some(old) = file.as_mut() {
                        if copy_new(old, out).is_err() {
                            return Ok(());
                        }
                    }
                    file = Some(f);
                    continue;
                }
            }
        }
        // Block until something happens in the directory (no polling interval).
        // Which file changed does not matter: the checks above are cheap.
        match inotify.read_events() {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(CliError::failed(format!("inotify: {e}"))),
        }
    }
}

/// `--json` for logs: each complete line becomes `{"unit": U, "line": L}` on a line of its own
/// (JSON Lines, so `-f` streams); a last line without a newline is written when dropped.
pub struct JsonLines<W: Write> {
    unit: String,
    out: W,
    partial: Vec<u8>,
}

impl<W: Write> JsonLines<W> {
    pub fn new(unit: &str, out: W) -> JsonLines<W> {
        JsonLines {
            unit: unit.to_string(),
            out,
            partial: Vec::new(),
        }
    }

    fn emit(&mut self, line: &[u8]) -> io::Result<()> {
        let v = serde_json::json!({"unit": self.unit, "line": String::from_utf8_lossy(line)});
        writeln!(self.out, "{v}")
    }
}

impl<W: Write> Write for JsonLines<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.partial.extend_from_slice(buf);
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            self.emit(&line[..i])?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write> Drop for JsonLines<W> {
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            let _ = self.emit(&rest).and_then(|_| self.out.flush());
        }
    }
}

fn write_out(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    out.write_all(bytes)?;
    out.flush()
}

/// Copy what was appended to `f` since the last read; a truncated file is read again from
/// its start.
fn copy_new(f: &mut File, out: &mut impl Write) -> io::Result<()> {
    let pos = f.stream_position()?;
    if let Ok(m) = f.metadata() {
        if m.len() < pos {
            f.seek(SeekFrom::Start(0))?;
        }
    }
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return out.flush();
        }
        out.write_all(&buf[..n])?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_one_object_per_line_even_across_writes() {
        let mut buf = Vec::new();
        {
            let mut j = JsonLines::new("web", &mut buf);
            j.write_all(b"2026-11-23 one\ntw").unwrap();
            j.write_all(b"o \"quoted\"\n\xffbad").unwrap();
            j.flush().unwrap();
        }
        let lines: Vec<serde_json::Value> = String::from_utf8(buf)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0]["line"], "2026-11-23 one");
        assert_eq!(lines[1]["line"], "two \"quoted\"");
        // The unterminated last line comes out when the writer is done; bad UTF-8 replaced.
        assert_eq!(lines[2]["line"], "\u{fffd}bad");
        assert!(lines.iter().all(|l| l["unit"] == "web"));
    }

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
}

//! colony-init's own log, copied to `LOG_DIR/colony-init.log` (time-stamped and rotated as a
//! unit's log is), so `colonyctl logs colony-init` reads it, also once colony-init is gone.
//! Until [`open`] is called (and in entrypoint mode, which has no log directory) the copy
//! writes nothing; stderr still gets every line. The file belongs to the thread that opened
//! it, the event loop's, which is where colony-init logs from.

use std::cell::RefCell;
use std::io;
use std::path::Path;

use crate::kernel::safe_path::PathError;
use crate::logs::LogFile;

/// The file's name in LOG_DIR (`colonyctl logs colony-init`).
pub const FILE_NAME: &str = "colony-init.log";
const MAX_SIZE: u64 = 10 * 1024 * 1024;
const KEEP: u32 = 5;

thread_local! {
    /// The loop's thread's (colony-init logs from that one thread; a LogFile is not Send).
    static FILE: RefCell<Option<LogFile>> = const { RefCell::new(None) };
}

/// Start copying to `LOG_DIR/colony-init.log` (root:`group` 0640 with `--control-group`,
/// as the units' logs). A failure is returned for the caller to log (to stderr, which
/// still works).
pub fn open(log_dir: &Path, group: Option<nix::unistd::Gid>) -> Result<(), PathError> {
    let f = LogFile::open(&log_dir.join(FILE_NAME), MAX_SIZE, KEEP, group)?;
    FILE.with(|cell| {
        if let Ok(mut g) = cell.try_borrow_mut() {
            *g = Some(f);
        }
    });
    Ok(())
}

/// Move the file into `log_dir` (what it holds so far comes along): the logs leave the run
/// directory once the configured log directory can be written. Not open: nothing to do.
pub fn move_to(log_dir: &Path) -> Result<(), PathError> {
    FILE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut g) => match g.as_mut() {
            Some(f) => f.move_to(&log_dir.join(FILE_NAME)),
            None => Ok(()),
        },
        Err(_) => Ok(()),
    })
}

/// Stop copying and close the file (a machine's end: its file system goes read-only).
pub fn close() {
    FILE.with(|cell| {
        if let Ok(mut g) = cell.try_borrow_mut() {
            *g = None;
        }
    });
}

/// A tracing writer into the file (one formatted event per write).
pub struct Writer;

impl io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        FILE.with(|cell| {
            // Busy only if writing the file itself logged something: that line is skipped
            // (it is on stderr) rather than re-entered.
            if let Ok(mut g) = cell.try_borrow_mut() {
                if let Some(f) = g.as_mut() {
                    let text = String::from_utf8_lossy(buf);
                    for line in text.lines() {
                        // A full disk must not stop colony-init: the line is on stderr anyway.
                        let _ = f.write_note(line);
                    }
                }
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Writer {
    type Writer = Writer;
    fn make_writer(&'a self) -> Writer {
        Writer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn lines_go_to_the_file_once_opened() {
        let dir = tempfile::tempdir().unwrap();
        // Before open: nothing, and no error.
        Writer.write_all(b"dropped\n").unwrap();
        open(dir.path(), None).unwrap();
        Writer.write_all(b"INFO one\nINFO two\n").unwrap();
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        // Time-stamped as a unit's log lines are.
        assert!(
            lines[0].ends_with(" INFO one") && lines[0].starts_with("20"),
            "{text}"
        );
        assert!(!text.contains("dropped"));
    }
}

//! `[tty]`: the unit's program runs on a terminal (a getty, a rescue shell): its stdin (and,
//! unless `output = "log"`, stdout and stderr) is the terminal at `path`, which becomes the
//! controlling terminal of the program's session. systemd's `StandardInput=tty`, `TTYPath=`,
//! `TTYReset=`, `TTYVHangup=`.

use std::path::PathBuf;

/// `[tty]`'s keys.
pub const KEYS: &[&str] = &["path", "output", "force", "reset", "vhangup"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tty {
    /// A terminal device below /dev (default /dev/console).
    pub path: PathBuf,
    pub output: Output,
    /// Take the terminal even when it is another session's controlling terminal (systemd's
    /// `StandardInput=tty-force`); otherwise such a start fails.
    pub force: bool,
    /// Reset the terminal's modes (and the screen) before each start.
    pub reset: bool,
    /// Hang up every process that has the terminal open before each start.
    pub vhangup: bool,
}

impl Default for Tty {
    fn default() -> Self {
        Tty {
            path: PathBuf::from("/dev/console"),
            output: Output::Tty,
            force: false,
            reset: false,
            vhangup: false,
        }
    }
}

/// Where stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// To the terminal too (systemd's `StandardOutput=tty`, its default with a tty input).
    Tty,
    /// To the unit's log, as without `[tty]`.
    Log,
}

/// A terminal path: absolute, below /dev, no `.`/`..`/empty parts.
pub fn valid_path(s: &str) -> bool {
    s.strip_prefix("/dev/").is_some_and(|rest| {
        !rest.is_empty()
            && !s.contains('\0')
            && rest
                .split('/')
                .all(|p| !p.is_empty() && p != "." && p != "..")
    })
}

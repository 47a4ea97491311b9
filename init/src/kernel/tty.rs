//! `[tty]` in the parent, before the clone: the terminal opened without following a link
//! (safe_path: each directory by openat2, the device `O_NOFOLLOW | O_NOCTTY | O_CLOEXEC`,
//! checked to be a terminal), hung up (`TIOCVHANGUP`) and reset as the unit asks. The child
//! (spawn/child.rs) puts it at fd 0 (and 1, 2) and makes it its session's controlling
//! terminal (`TIOCSCTTY`).

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use units::tty::Tty;

use crate::kernel::safe_path::{split, Allow, Dir};

/// The reset sequence (RIS): a terminal's full reset, which clears the screen.
const RESET_SEQUENCE: &[u8] = b"\x1bc";

/// The terminal of `t`, hung up and reset as it asks, ready for the child.
pub fn open(t: &Tty) -> Result<OwnedFd, String> {
    if t.vhangup {
        let f = open_terminal(&t.path)?;
        // SAFETY: an ioctl without argument on an fd we own. Hangs up every open file of
        // the terminal, this one too: it is closed and the terminal opened again below.
        if unsafe { libc::ioctl(f.as_raw_fd(), libc::TIOCVHANGUP) } < 0 {
            return Err(format!(
                "[tty] vhangup {}: {}",
                t.path.display(),
                std::io::Error::last_os_error()
            ));
        }
    }
    let f = open_terminal(&t.path)?;
    if t.reset {
        reset(&f).map_err(|e| format!("[tty] reset {}: {e}", t.path.display()))?;
    }
    Ok(OwnedFd::from(f))
}

/// `path` read-write, reached without links, a character device that is a terminal; not
/// made colony-init's controlling terminal.
fn open_terminal(path: &Path) -> Result<File, String> {
    let (dir, name) = split(path).map_err(|e| format!("[tty] {e}"))?;
    let d = Dir::open(dir, None).map_err(|e| format!("[tty] {e}"))?;
    let (f, _) = d
        .open_file(name, OFlag::O_RDWR, None, Allow::Terminal)
        .map_err(|e| format!("[tty] {e}"))?;
    // SAFETY: isatty on an fd we own.
    if unsafe { libc::isatty(f.as_raw_fd()) } != 1 {
        return Err(format!("[tty] {} is not a terminal", path.display()));
    }
    Ok(f)
}

/// Sane modes (as systemd's reset: canonical input, echo, the usual control characters),
/// pending input and output discarded, then the reset sequence written without waiting.
fn reset(f: &File) -> std::io::Result<()> {
    let fd = f.as_raw_fd();
    // SAFETY: ioctls and termios calls on an fd we own, with a termios we own.
    unsafe {
        // Exclusive mode off, as systemd does (a failure is no matter).
        libc::ioctl(fd, libc::TIOCNXCL);
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut t) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        t.c_iflag &= !(libc::IGNBRK | libc::BRKINT | libc::ISTRIP | libc::INLCR | libc::IGNCR);
        t.c_iflag |= libc::ICRNL | libc::IMAXBEL | libc::IUTF8;
        t.c_oflag |= libc::ONLCR | libc::OPOST;
        t.c_cflag |= libc::CREAD;
        t.c_lflag = libc::ISIG
            | libc::ICANON
            | libc::IEXTEN
            | libc::ECHO
            | libc::ECHOE
            | libc::ECHOK
            | libc::ECHOCTL
            | libc::ECHOKE;
        let cc = [
            (libc::VINTR, 0o3),
            (libc::VQUIT, 0o34),
            (libc::VERASE, 0o177),
            (libc::VKILL, 0o25),
            (libc::VEOF, 0o4),
            (libc::VSTART, 0o21),
            (libc::VSTOP, 0o23),
            (libc::VSUSP, 0o32),
            (libc::VLNEXT, 0o26),
            (libc::VWERASE, 0o27),
            (libc::VREPRINT, 0o22),
            (libc::VEOL, 0),
            (libc::VEOL2, 0),
            (libc::VTIME, 0),
            (libc::VMIN, 1),
        ];
        for (i, v) in cc {
            t.c_cc[i] = v;
        }
        if libc::tcsetattr(fd, libc::TCSANOW, &t) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        libc::tcflush(fd, libc::TCIOFLUSH);
    }
    // PID 1 must not wait on a terminal that does not take output (flow control, a serial
    // line without carrier): written non-blocking, and missed if it cannot be taken now.
    let flags = OFlag::from_bits_truncate(fcntl(f, FcntlArg::F_GETFL)?);
    fcntl(f, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    // SAFETY: writing a static buffer to an fd we own.
    unsafe { libc::write(fd, RESET_SEQUENCE.as_ptr().cast(), RESET_SEQUENCE.len()) };
    fcntl(f, FcntlArg::F_SETFL(flags))?;
    Ok(())
}

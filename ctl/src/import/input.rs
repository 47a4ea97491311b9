//! Reading what `import` is pointed at: a configuration file, never a FIFO or a device (whose
//! open or read could block or never end), and of a size a configuration file has.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Larger than any configuration file; a file past it is not one.
pub const MAX_BYTES: u64 = 4 << 20;

/// The text of a regular file, `PATH: why` otherwise.
pub fn read_text(path: &Path) -> Result<String, String> {
    read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The text of a regular file, or why not (without the path).
pub fn read(path: &Path) -> Result<String, String> {
    let why = |e: &dyn std::fmt::Display| e.to_string();
    // O_NONBLOCK: opening a FIFO with no writer would wait for one.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| why(&e))?;
    let meta = f.metadata().map_err(|e| why(&e))?;
    if !meta.is_file() {
        return Err(why(&"not a regular file"));
    }
    if meta.len() > MAX_BYTES {
        return Err(why(&format_args!(
            "{} bytes: larger than a configuration file ({} at most)",
            meta.len(),
            MAX_BYTES
        )));
    }
    let mut text = String::new();
    f.take(MAX_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| why(&e))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_or_a_device_is_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo.service");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(read_text(&fifo).unwrap_err().contains("not a regular file"));
        assert!(read_text(Path::new("/dev/zero"))
            .unwrap_err()
            .contains("not a regular file"));
        assert!(read_text(d.path()).is_err());
        let ok = d.path().join("a.service");
        std::fs::write(&ok, "[Service]\n").unwrap();
        assert_eq!(read_text(&ok).unwrap(), "[Service]\n");
    }
}

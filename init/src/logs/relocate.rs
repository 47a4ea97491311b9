//! Moving an open log file to another directory. On a machine the root file system is
//! read-only when colony-init starts, so the logs begin below the run directory (a tmpfs,
//! lost at reboot); once a boot task has remounted the root read-write they move to the
//! log directory asked for (`/var/log/colony`), so a crash can be read after a reboot.

use std::io;
use std::path::Path;

use nix::fcntl::OFlag;

use super::{is_regular, open_in, remove_if_there, shared_dir, LogFile};
use crate::kernel::safe_path::{self, Allow, PathError};

impl LogFile {
    /// Append what the file holds to `path` (created if missing, never through a link),
    /// write there from now on, and remove the old file. Rotated copies (`NAME.log.1`...)
    /// stay where they are. On an error nothing has changed, except that part of the
    /// text may have been copied.
    pub fn move_to(&mut self, path: &Path) -> Result<(), PathError> {
        let (dir, name) = safe_path::split(path)?;
        let dir = shared_dir(dir)?;
        let (mut new, _) = open_in(&dir, name, self.group)?;
        if self.regular {
            // Read through the held directory: the old name cannot have become a link.
            let (mut old, _) =
                self.dir
                    .open_file(&self.name, OFlag::O_RDONLY, None, Allow::Regular)?;
            io::copy(&mut old, &mut new).map_err(|source| PathError::Io {
                path: path.to_path_buf(),
                source: nix::errno::Errno::from_raw(source.raw_os_error().unwrap_or(libc::EIO)),
            })?;
        }
        let st = nix::sys::stat::fstat(&new).map_err(|source| PathError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if self.regular {
            // The copy is the file now; a failed removal only leaves a stale copy behind.
            let _ = remove_if_there(self.dir.fd(), &self.name);
        }
        self.path = path.to_path_buf();
        self.dir = dir;
        self.name = name.to_os_string();
        self.file = Some(new);
        self.size = st.st_size as u64;
        self.regular = is_regular(&st);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each line's text after its time stamp.
    fn texts(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| l.get(25..).unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn the_text_so_far_is_appended_at_the_new_place_which_is_written_from_then_on() {
        let tmp = tempfile::tempdir().unwrap();
        let (run, var) = (tmp.path().join("run/u.log"), tmp.path().join("var/u.log"));
        // The last boot's file at the new place.
        LogFile::open(&var, 0, 0, None)
            .unwrap()
            .write_note("last boot")
            .unwrap();
        let mut log = LogFile::open(&run, 0, 0, None).unwrap();
        log.write_note("before the move").unwrap();
        log.move_to(&var).unwrap();
        log.write_note("after the move").unwrap();
        assert_eq!(log.path(), var);
        assert_eq!(
            texts(&var),
            ["last boot", "before the move", "after the move"]
        );
        assert!(!run.exists(), "the old file is removed");
    }

    #[test]
    fn a_link_at_the_new_place_is_refused_and_the_log_stays() {
        let tmp = tempfile::tempdir().unwrap();
        let (run, var) = (tmp.path().join("run/u.log"), tmp.path().join("var/u.log"));
        let target = tmp.path().join("target");
        std::fs::write(&target, "").unwrap();
        std::fs::create_dir_all(var.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&target, &var).unwrap();
        let mut log = LogFile::open(&run, 0, 0, None).unwrap();
        log.write_note("one").unwrap();
        assert!(log.move_to(&var).is_err());
        log.write_note("two").unwrap();
        assert_eq!(texts(&run), ["one", "two"]);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "");
    }
}

//! Logs and state that began below the run directory move to the directories asked for.
//!
//! PID 1 of a machine starts on a root file system mounted read-only, so `--log-dir`
//! (`/var/log/colony`) and `--state-dir` (`/var/lib/colony`) cannot be written yet and the
//! run directory (a tmpfs) stands in. The root becomes writable through a boot task
//! (`[ready] type = "exited"`, e.g. a `mount -o remount,rw /`), so after each boot task that
//! succeeds, while something is still away from home, colony-init tries again: the logs
//! written so far are appended to the files at home and every open log file continues
//! there, and timer records are copied there and read back. Without this a machine lost the
//! logs that say why something crashed at every reboot.

use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::Engine;

/// The directories asked for that could not be written at the start (`None`: at home).
#[derive(Debug, Default)]
pub(super) struct Homes {
    pub(super) logs: Option<PathBuf>,
    pub(super) state: Option<PathBuf>,
}

impl Homes {
    pub(super) fn away(&self) -> bool {
        self.logs.is_some() || self.state.is_some()
    }
}

/// `dir` exists (made if missing) and this process may write it.
fn writable(dir: &Path) -> bool {
    use nix::unistd::{access, AccessFlags};
    std::fs::create_dir_all(dir).is_ok() && access(dir, AccessFlags::W_OK).is_ok()
}

impl Engine {
    /// A boot task succeeded: move what can now go home.
    pub(super) fn go_home(&mut self) {
        if let Some(home) = self.homes.logs.clone() {
            if writable(&home) {
                self.homes.logs = None;
                self.move_logs(home);
            }
        }
        if let Some(home) = self.homes.state.clone() {
            if writable(&home) {
                self.homes.state = None;
                self.move_state(home);
            }
        }
    }

    fn move_logs(&mut self, home: PathBuf) {
        let away = std::mem::replace(&mut self.opts.log_dir, home.clone());
        let mut moved = 0usize;
        for (name, rt) in self.units.iter_mut() {
            let Some(log) = rt.log.as_mut() else {
                continue;
            };
            // Only the default place (LOG_DIR/NAME.log): a `[log] file` stays where it is.
            if log.path() != away.join(format!("{name}.log")) {
                continue;
            }
            let to = home.join(format!("{name}.log"));
            match log.move_to(&to) {
                Ok(()) => {
                    rt.log_path = Some(to);
                    moved += 1;
                }
                Err(e) => {
                    warn!(unit = %name, to = %to.display(), error = %e, "cannot move the log file; it stays in the run directory")
                }
            }
        }
        if let Err(e) = crate::self_log::move_to(&home) {
            warn!(dir = %home.display(), error = %e, "cannot move colony-init's own log file");
        }
        // `colonyctl logs` reads the files by this record.
        let _ = std::fs::write(
            self.opts.run_dir.join("log-dir"),
            std::os::unix::ffi::OsStrExt::as_bytes(home.as_os_str()),
        );
        info!(dir = %home.display(), units = moved, "logs are kept in {} from now on", home.display());
    }

    fn move_state(&mut self, home: PathBuf) {
        let away = std::mem::replace(&mut self.opts.state_dir, home.clone());
        // Runs recorded while away are newer than those at home: they win.
        if let Ok(rd) = std::fs::read_dir(away.join("timers")) {
            let to = home.join("timers");
            let _ = std::fs::create_dir_all(&to);
            for ent in rd.flatten() {
                let name = ent.file_name();
                if units::parse::valid_unit_name(&name.to_string_lossy()) {
                    if let Err(e) = std::fs::copy(ent.path(), to.join(&name)) {
                        warn!(file = %ent.path().display(), error = %e, "cannot move a timer record");
                    }
                }
            }
        }
        self.restore_timers();
        info!(dir = %home.display(), "state is kept in {} from now on", home.display());
    }
}

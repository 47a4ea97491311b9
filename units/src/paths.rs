//! Where colony's directories are when no flag names them: one rule for colony-init,
//! colonyctl, colony-fleet and colony-web, so that each finds the others.
//!
//! As root: `/etc/colony/units`, `/run/colony`, `/var/log/colony`, `/var/lib/colony`.
//! Otherwise the XDG directories: `$XDG_CONFIG_HOME/colony/units`,
//! `$XDG_RUNTIME_DIR/colony` (or `TMPDIR/colony-UID` without one), `$XDG_STATE_HOME/colony`
//! and its `log`. `COLONY_RUN_DIR` (set by colony-init for its units) names the RUN
//! directory over all of these.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The directories of one colony-init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    /// colony's configuration (`/etc/colony`): the units directory and the files of the
    /// programs around colony-init (fleet.toml, ...).
    pub config: PathBuf,
    pub units: PathBuf,
    pub run: PathBuf,
    pub log: PathBuf,
    pub state: PathBuf,
}

/// The defaults for root or another user, from the process environment.
pub fn defaults(is_root: bool) -> Dirs {
    defaults_from(is_root, |k| std::env::var_os(k))
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The RUN directory of the defaults: the one a client talks to.
pub fn run_dir() -> PathBuf {
    defaults(is_root()).run
}

/// [`defaults`] with the environment as a function (for tests).
pub fn defaults_from(is_root: bool, env: impl Fn(&str) -> Option<OsString>) -> Dirs {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    let mut d = if is_root {
        Dirs {
            config: PathBuf::from("/etc/colony"),
            units: PathBuf::from("/etc/colony/units"),
            run: PathBuf::from("/run/colony"),
            log: PathBuf::from("/var/log/colony"),
            state: PathBuf::from("/var/lib/colony"),
        }
    } else {
        let home = PathBuf::from(set("HOME").unwrap_or_else(|| "/".into()));
        let xdg = |var: &str, fallback: &str| match set(var) {
            Some(v) if Path::new(&v).is_absolute() => PathBuf::from(v),
            _ => home.join(fallback),
        };
        let state = xdg("XDG_STATE_HOME", ".local/state").join("colony");
        let run = match set("XDG_RUNTIME_DIR") {
            Some(v) if Path::new(&v).is_absolute() => PathBuf::from(v).join("colony"),
            _ => {
                let tmp = match set("TMPDIR") {
                    Some(v) if Path::new(&v).is_absolute() => PathBuf::from(v),
                    _ => PathBuf::from("/tmp"),
                };
                tmp.join(format!("colony-{}", nix::unistd::getuid()))
            }
        };
        let config = xdg("XDG_CONFIG_HOME", ".config").join("colony");
        Dirs {
            units: config.join("units"),
            config,
            run,
            log: state.join("log"),
            state,
        }
    };
    if let Some(run) = set("COLONY_RUN_DIR") {
        d.run = PathBuf::from(run);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.into())
    }

    #[test]
    fn root_gets_the_system_directories_and_run_can_be_named() {
        let d = defaults_from(true, env(&[("XDG_RUNTIME_DIR", "/run/user/0")]));
        assert_eq!(d.run, Path::new("/run/colony"));
        assert_eq!(d.units, Path::new("/etc/colony/units"));
        assert_eq!(d.config, Path::new("/etc/colony"));
        let d = defaults_from(true, env(&[("COLONY_RUN_DIR", "/x/run")]));
        assert_eq!(d.run, Path::new("/x/run"));
        assert_eq!(d.log, Path::new("/var/log/colony"));
    }

    #[test]
    fn a_user_gets_xdg_directories_with_fallbacks() {
        let d = defaults_from(
            false,
            env(&[("HOME", "/home/a"), ("XDG_RUNTIME_DIR", "/run/user/1000")]),
        );
        assert_eq!(d.run, Path::new("/run/user/1000/colony"));
        assert_eq!(d.units, Path::new("/home/a/.config/colony/units"));
        assert_eq!(d.state, Path::new("/home/a/.local/state/colony"));
        assert_eq!(d.log, Path::new("/home/a/.local/state/colony/log"));
        // A relative XDG value is ignored, as the XDG spec says; no runtime dir: TMPDIR.
        let d = defaults_from(
            false,
            env(&[
                ("HOME", "/home/a"),
                ("XDG_CONFIG_HOME", "rel"),
                ("TMPDIR", "/t"),
            ]),
        );
        assert_eq!(d.units, Path::new("/home/a/.config/colony/units"));
        assert!(d.run.starts_with("/t") && d.run.to_string_lossy().contains("colony-"));
    }
}

//! Which files `logs` reads: LOG_DIR as colony-init recorded it in `RUN/log-dir` (or
//! `--log-dir`), a unit's own `[log] file` from its unit file in the units directory
//! recorded in `RUN/units-dir`. Nothing here needs colony-init to be running.

use std::path::{Path, PathBuf};

use units::proto::exit;

use super::Source;
use crate::CliError;

/// The name under which `logs` shows colony-init's own log (`LOG_DIR/colony-init.log`).
pub const SELF: &str = "colony-init";

/// Where the logs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    pub log_dir: PathBuf,
    /// None when not recorded (then only LOG_DIR/NAME.log is looked at).
    pub units_dir: Option<PathBuf>,
}

/// A path colony-init wrote into a file of RUN (no trailing newline expected; one is
/// tolerated).
fn recorded(run_dir: &Path, file: &str) -> Option<PathBuf> {
    let text = std::fs::read(run_dir.join(file)).ok()?;
    let text = text.strip_suffix(b"\n").unwrap_or(&text);
    if text.is_empty() {
        return None;
    }
    use std::os::unix::ffi::OsStrExt;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(text)))
}

/// `--log-dir`, else what colony-init recorded in RUN; the units directory from RUN.
pub fn dirs(run_dir: &Path, flag: Option<PathBuf>) -> Result<Dirs, CliError> {
    let units_dir = recorded(run_dir, "units-dir");
    let log_dir = match flag.or_else(|| recorded(run_dir, "log-dir")) {
        Some(d) => d,
        None => {
            return Err(CliError::failed(format!(
                "no colony-init has recorded its log directory in {}; name it with --log-dir DIR",
                run_dir.join("log-dir").display()
            )))
        }
    };
    Ok(Dirs { log_dir, units_dir })
}

/// `[log] file` of a unit file, if it sets one (read as plain TOML: an invalid unit still
/// has its log).
fn log_file_of(unit_file: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(unit_file).ok()?;
    let table: toml::Table = text.parse().ok()?;
    let file = table.get("log")?.get("file")?.as_str()?;
    Some(PathBuf::from(file))
}

impl Dirs {
    fn unit_file(&self, name: &str) -> Option<PathBuf> {
        let p = self.units_dir.as_ref()?.join(format!("{name}.unit"));
        p.is_file().then_some(p)
    }

    /// The log of `name`: its unit file's `[log] file`, else LOG_DIR/NAME.log; `colony-init`
    /// is colony-init's own log. Exit 4 when there is neither a unit file nor a log.
    pub fn source(&self, name: &str) -> Result<Source, CliError> {
        let default = self.log_dir.join(format!("{name}.log"));
        let path = match self.unit_file(name) {
            Some(f) => log_file_of(&f).unwrap_or(default),
            None if default.exists() || name == SELF => default,
            None => {
                let r#where = match &self.units_dir {
                    Some(d) => format!("no {name}.unit in {} and ", d.display()),
                    None => String::new(),
                };
                return Err(CliError::new(
                    exit::NO_SUCH_UNIT,
                    format!(
                        "no such unit {name}: {where}no {name}.log in {}",
                        self.log_dir.display()
                    ),
                ));
            }
        };
        Ok(Source {
            name: name.to_string(),
            path,
        })
    }

    /// Every log: the units of the units directory, the `*.log` files of LOG_DIR (template
    /// instances and removed units too) and colony-init's own, sorted by name.
    pub fn all(&self) -> Vec<Source> {
        let mut names = std::collections::BTreeSet::new();
        if let Some(Ok(rd)) = self.units_dir.as_ref().map(std::fs::read_dir) {
            for e in rd.flatten() {
                if let Some(n) = e
                    .file_name()
                    .to_str()
                    .and_then(units::validate::unit_file_name)
                {
                    names.insert(n.to_string());
                }
            }
        }
        if let Ok(rd) = std::fs::read_dir(&self.log_dir) {
            for e in rd.flatten() {
                let f = e.file_name();
                let Some(n) = f.to_str().and_then(|f| f.strip_suffix(".log")) else {
                    continue;
                };
                if units::parse::valid_unit_name(n) || n.contains('@') {
                    names.insert(n.to_string());
                }
            }
        }
        names.iter().filter_map(|n| self.source(n).ok()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_from_recorded_dirs_and_unit_files() {
        let t = tempfile::tempdir().unwrap();
        let (run, logs, units) = (
            t.path().join("run"),
            t.path().join("log"),
            t.path().join("u"),
        );
        for d in [&run, &logs, &units] {
            std::fs::create_dir_all(d).unwrap();
        }
        let e = dirs(&run, None).unwrap_err();
        assert!(e.message.contains("--log-dir"), "{}", e.message);
        std::fs::write(run.join("log-dir"), logs.as_os_str().as_encoded_bytes()).unwrap();
        std::fs::write(run.join("units-dir"), units.as_os_str().as_encoded_bytes()).unwrap();
        let d = dirs(&run, None).unwrap();
        assert_eq!(d.log_dir, logs);
        std::fs::write(units.join("web.unit"), "exec = [\"x\"]\n").unwrap();
        std::fs::write(
            units.join("own.unit"),
            "exec = [\"x\"]\n[log]\nfile = \"/tmp/own-file.log\"\n",
        )
        .unwrap();
        std::fs::write(logs.join("gone.log"), "x\n").unwrap();
        std::fs::write(logs.join("gone.log.1"), "x\n").unwrap();
        assert_eq!(d.source("web").unwrap().path, logs.join("web.log"));
        assert_eq!(
            d.source("own").unwrap().path,
            PathBuf::from("/tmp/own-file.log")
        );
        assert_eq!(d.source("gone").unwrap().path, logs.join("gone.log"));
        assert_eq!(d.source(SELF).unwrap().path, logs.join("colony-init.log"));
        assert_eq!(d.source("nosuch").unwrap_err().code, exit::NO_SUCH_UNIT);
        let names: Vec<String> = d.all().into_iter().map(|s| s.name).collect();
        assert_eq!(names, vec!["gone", "own", "web"]);
        // --log-dir wins over RUN.
        let d = dirs(&run, Some("/elsewhere".into())).unwrap();
        assert_eq!(d.log_dir, PathBuf::from("/elsewhere"));
    }
}

//! The verbs that work on unit files: `add`, `remove`, `enable`, `disable`, `cat`, `show`.
//! They find the units directory (`--units`, else the one of the colony-init that owns RUN,
//! else the one it recorded in `RUN/units-dir`), change the file, and when that colony-init
//! is running, return only once it has taken the change (a `reload` request: colony-init
//! reads the directory before it answers).

use std::path::{Path, PathBuf};

use units::proto::{exit, Info, UnitStatus, Verb};

use crate::client::Client;
use crate::CliError;

/// Who reads the units directory a verb works in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reader {
    /// The colony-init that owns RUN: it is asked to take the change before the verb returns.
    ColonyInit,
    /// colony-init runs but watches this other directory (`--units` named another).
    Elsewhere(PathBuf),
    /// No colony-init answers: it reads the file when it starts.
    NotRunning,
}

impl Reader {
    /// What the user is told after changing a file that colony-init has not taken.
    pub fn note(&self) -> String {
        match self {
            Reader::ColonyInit => String::new(),
            Reader::Elsewhere(d) => format!(
                "; the running colony-init reads {}, not this directory",
                d.display()
            ),
            Reader::NotRunning => {
                "; colony-init is not running: it reads the units directory when it starts".into()
            }
        }
    }
}

/// The units directory, and who reads it.
pub struct Located {
    pub dir: PathBuf,
    pub reader: Reader,
}

impl Located {
    pub fn loads(&self) -> bool {
        self.reader == Reader::ColonyInit
    }
}

/// `--units DIR`, else the running colony-init's directory, else the one recorded in RUN.
pub fn locate(client: &Client, flag: Option<PathBuf>) -> Result<Located, CliError> {
    let info = match client.request(Verb::Info, &[]) {
        Ok(mut r) if r.ok => crate::data::<Info>(&mut r).ok(),
        Ok(r) => return Err(crate::reply_error(&r)),
        Err(e) if e.code == exit::NO_ANSWER => None,
        Err(e) => return Err(e),
    };
    let theirs = info.map(|i| PathBuf::from(i.units_dir));
    let same = |a: &Path, b: &Path| {
        a == b
            || matches!(
                (a.canonicalize(), b.canonicalize()),
                (Ok(x), Ok(y)) if x == y
            )
    };
    match (flag, theirs) {
        (Some(d), Some(t)) => Ok(Located {
            reader: if same(&d, &t) {
                Reader::ColonyInit
            } else {
                Reader::Elsewhere(t)
            },
            dir: d,
        }),
        (Some(d), None) => Ok(Located {
            dir: d,
            reader: Reader::NotRunning,
        }),
        (None, Some(t)) => Ok(Located {
            dir: t,
            reader: Reader::ColonyInit,
        }),
        (None, None) => match recorded_units_dir(&client.run_dir) {
            Some(dir) => Ok(Located {
                dir,
                reader: Reader::NotRunning,
            }),
            None => Err(CliError::new(
                exit::NO_ANSWER,
                format!(
                    "colony-init is not running and has recorded no units directory in {}; name the directory with --units DIR",
                    client.run_dir.display()
                ),
            )),
        },
    }
}

fn recorded_units_dir(run_dir: &Path) -> Option<PathBuf> {
    let text = std::fs::read(run_dir.join("units-dir")).ok()?;
    let text = text.strip_suffix(b"\n").unwrap_or(&text);
    use std::os::unix::ffi::OsStrExt;
    (!text.is_empty()).then(|| PathBuf::from(std::ffi::OsStr::from_bytes(text)))
}

/// The status of `name`, or None when colony-init does not know it (exit 4).
pub fn status_of(client: &Client, name: &str) -> Result<Option<UnitStatus>, CliError> {
    let mut r = client.request(Verb::Status, &[name.to_string()])?;
    if r.code == exit::NO_SUCH_UNIT {
        return Ok(None);
    }
    if !r.ok && r.code != exit::NOT_RUNNING {
        return Err(crate::reply_error(&r));
    }
    let units: Vec<UnitStatus> = crate::data(&mut r)?;
    Ok(units.into_iter().find(|u| u.name == name))
}

/// Have colony-init read its units directory now; it answers once it has.
pub fn reload(client: &Client) -> Result<(), CliError> {
    let r = client.request(Verb::Reload, &[])?;
    if !r.ok {
        return Err(crate::reply_error(&r));
    }
    Ok(())
}

/// After `add`: colony-init has the unit (reload, then its status). An invalid unit is
/// loaded too, and said so (exit 1).
pub fn wait_loaded(client: &Client, name: &str) -> Result<UnitStatus, CliError> {
    reload(client)?;
    match status_of(client, name)? {
        Some(u) if u.state == "invalid" => Err(CliError::failed(format!(
            "colony-init loaded {name} as invalid: {}",
            u.error.as_deref().unwrap_or("see `colonyctl status`")
        ))),
        Some(u) => Ok(u),
        None => Err(CliError::failed(format!(
            "colony-init did not load {name} from its units directory; see its log"
        ))),
    }
}

/// After `remove`: colony-init has dropped the unit. A running unit is stopped first (`stop`
/// waits until it is), so the drop that follows the reload is immediate; a unit still
/// stopping is waited for by asking again, bounded by `--timeout`.
pub fn wait_dropped(client: &Client, name: &str) -> Result<(), CliError> {
    reload(client)?;
    let deadline = std::time::Instant::now() + client.timeout;
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        if status_of(client, name)?.is_none() {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(CliError::new(
                exit::NO_ANSWER,
                format!(
                    "colony-init still has {name} after {}; see `colonyctl status {name}`",
                    crate::render::duration(client.timeout)
                ),
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(200));
    }
}

/// Stop `name` and wait until it is stopped (before its file goes away). A unit colony-init
/// does not know is fine.
pub fn stop(client: &Client, name: &str) -> Result<(), CliError> {
    let r = client.request(Verb::Stop, &[name.to_string()])?;
    if r.ok || r.code == exit::NO_SUCH_UNIT {
        return Ok(());
    }
    Err(crate::reply_error(&r))
}

/// The path of `NAME.unit` in `dir`, which must exist (exit 4 otherwise).
pub fn existing(dir: &Path, name: &str) -> Result<PathBuf, CliError> {
    let path = dir.join(format!("{name}.unit"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(CliError::new(
            exit::NO_SUCH_UNIT,
            format!("no unit file {} (see `colonyctl status`)", path.display()),
        ))
    }
}

/// `text` with the top-level `enabled` set to `on`, everything else as it was (comments,
/// order, spacing). `None` when nothing changes (`enable` of a file without the key: true
/// is the default).
pub fn set_enabled(text: &str, on: bool) -> Result<Option<String>, String> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    match doc.get("enabled").and_then(|v| v.as_bool()) {
        Some(v) if v == on => return Ok(None),
        None if on && doc.get("enabled").is_none() => return Ok(None),
        _ => {}
    }
    doc["enabled"] = toml_edit::value(on);
    Ok(Some(doc.to_string()))
}

/// `enable`/`disable`: edit the file (checked as colony-init will read it), then have
/// colony-init read it. Returns what to print.
pub fn enable(client: &Client, loc: &Located, name: &str, on: bool) -> Result<String, CliError> {
    let path = existing(&loc.dir, name)?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::failed(format!("cannot read {}: {e}", path.display())))?;
    let verb = if on { "enabled" } else { "disabled" };
    let new = set_enabled(&text, on).map_err(|e| {
        CliError::failed(format!(
            "{} is not valid TOML ({e}); fix it first (`colonyctl check {}`)",
            path.display(),
            path.display()
        ))
    })?;
    let Some(new) = new else {
        return Ok(format!("{name} is already {verb}"));
    };
    crate::edit::check(&path, &new)?;
    crate::edit::write_atomic(&path, new.as_bytes())
        .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))?;
    if loc.loads() {
        reload(client)?;
    }
    Ok(format!(
        "{name} {verb} ({}){}",
        path.display(),
        loc.reader.note()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_enabled_keeps_the_rest_of_the_file() {
        let text = "# my web server\nexec = [\"/bin/web\"]  # the binary\n\n[restart]\n# slow\ndelay_min = \"5s\"\n";
        let off = set_enabled(text, false).unwrap().unwrap();
        assert!(off.starts_with("# my web server\n"), "{off}");
        assert!(
            off.contains("exec = [\"/bin/web\"]  # the binary\n"),
            "{off}"
        );
        assert!(
            off.contains("[restart]\n# slow\ndelay_min = \"5s\"\n"),
            "{off}"
        );
        let t: toml::Table = off.parse().unwrap();
        assert_eq!(t["enabled"].as_bool(), Some(false));
        // A top-level key, not one of [restart].
        assert!(t["restart"].get("enabled").is_none());
        // Back on: the key flips, nothing else moves.
        let on = set_enabled(&off, true).unwrap().unwrap();
        assert_eq!(on, off.replace("enabled = false", "enabled = true"));
        assert_eq!(set_enabled(&on, true).unwrap(), None);
        assert_eq!(set_enabled(text, true).unwrap(), None);
        assert!(set_enabled("exec = [", false).is_err());
    }
}

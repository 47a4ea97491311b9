//! `colonyctl add` and `remove`: write or delete `NAME.unit` atomically, so colony-init's
//! directory watch never sees half a file.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use units::proto::exit;

use crate::CliError;

/// What `add` puts in the file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewUnit {
    pub name: String,
    pub cmd: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub uid: Option<String>,
    pub gid: Option<String>,
    pub extras: Option<String>,
}

/// A unit name of colony.unit(5) (1-64 of `A-Z a-z 0-9 _ . -`, starting with a letter or digit),
/// given as NAME or NAME.unit.
pub fn unit_name(given: &str) -> Result<String, CliError> {
    let name = given.strip_suffix(".unit").unwrap_or(given);
    if units::parse::valid_unit_name(name) {
        Ok(name.to_string())
    } else {
        Err(CliError::new(
            exit::USAGE,
            format!("bad unit name {given:?}: use 1-64 of A-Z a-z 0-9 _ . - starting with a letter or digit"),
        ))
    }
}

fn usage(msg: String) -> CliError {
    CliError::new(exit::USAGE, msg)
}

/// `1000` as a TOML integer, a name as a string (`user` and `group` take either).
fn id_value(s: &str) -> toml::Value {
    match s.parse::<i64>() {
        Ok(n) if n >= 0 => toml::Value::Integer(n),
        _ => toml::Value::String(s.to_string()),
    }
}

fn json_to_toml(v: &serde_json::Value, at: &str) -> Result<toml::Value, CliError> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => {
            return Err(usage(format!(
                "--extras: {at} is null, which TOML cannot hold: leave the key out"
            )))
        }
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => toml::Value::Integer(i),
            (None, Some(f)) => toml::Value::Float(f),
            _ => return Err(usage(format!("--extras: {at}: number out of range"))),
        },
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(a) => toml::Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, x)| json_to_toml(x, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        J::Object(o) => {
            let mut t = toml::Table::new();
            for (k, x) in o {
                t.insert(k.clone(), json_to_toml(x, &format!("{at}.{k}"))?);
            }
            toml::Value::Table(t)
        }
    })
}

/// The unit file's text.
pub fn render(u: &NewUnit) -> Result<String, CliError> {
    let mut t = toml::Table::new();
    let mut exec = vec![toml::Value::String(u.cmd.clone())];
    exec.extend(u.args.iter().cloned().map(toml::Value::String));
    t.insert("exec".into(), toml::Value::Array(exec));
    if !u.env.is_empty() {
        let mut env = toml::Table::new();
        for kv in &u.env {
            match kv.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    env.insert(k.to_string(), toml::Value::String(v.to_string()));
                }
                _ => return Err(usage(format!("--env {kv:?}: write it as KEY=VALUE"))),
            }
        }
        t.insert("environment".into(), toml::Value::Table(env));
    }
    if let Some(uid) = &u.uid {
        t.insert("user".into(), id_value(uid));
    }
    if let Some(gid) = &u.gid {
        t.insert("group".into(), id_value(gid));
    }
    if let Some(extras) = &u.extras {
        let v: serde_json::Value = serde_json::from_str(extras)
            .map_err(|e| usage(format!("--extras is not valid JSON: {e}")))?;
        if !v.is_object() {
            return Err(usage(
                "--extras must be a JSON object, e.g. '{\"shard\": 3}'".to_string(),
            ));
        }
        t.insert("extras".into(), json_to_toml(&v, "extras")?);
    }
    let body = toml::to_string(&t)
        .map_err(|e| CliError::failed(format!("cannot write the unit as TOML: {e}")))?;
    Ok(format!("# written by colonyctl add\n{body}"))
}

/// Parse the text as colony-init will, so an invalid unit is never written.
pub fn check(path: &Path, text: &str) -> Result<(), CliError> {
    units::parse::parse_unit(path, text)
        .map(drop)
        .map_err(|diags| {
            let all: Vec<String> = diags
                .iter()
                .map(|d| format!("{}: {}", d.key, d.message))
                .collect();
            usage(format!("the unit would not be valid: {}", all.join("; ")))
        })
}

/// Write `DIR/NAME.unit` through a temporary file in DIR and a rename. Returns the path and
/// whether it replaced an existing file.
pub fn add(dir: &Path, u: &NewUnit) -> Result<(PathBuf, bool), CliError> {
    let text = render(u)?;
    let path = dir.join(format!("{}.unit", u.name));
    check(&path, &text)?;
    let existed = path.exists();
    write_atomic(&path, text.as_bytes()).map_err(|e| {
        CliError::failed(format!(
            "cannot write {}: {e} (does the units directory exist, may you write it?)",
            path.display()
        ))
    })?;
    Ok((path, existed))
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A dot file without the .unit suffix: colony-init's watch ignores it.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(".{file_name}.tmp-{}-{nanos}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // The rename itself durable too.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Delete `DIR/NAME.unit` (one unlink: atomic).
pub fn remove(dir: &Path, name: &str) -> Result<PathBuf, CliError> {
    let path = dir.join(format!("{name}.unit"));
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CliError::new(
            exit::NO_SUCH_UNIT,
            format!("no unit file {} (see `colonyctl status`)", path.display()),
        )),
        Err(e) => Err(CliError::failed(format!(
            "cannot remove {}: {e}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit() -> NewUnit {
        NewUnit {
            name: "web".into(),
            cmd: "/usr/bin/python3".into(),
            args: vec!["-m".into(), "http.server".into(), "it's \"quoted\"".into()],
            env: vec!["LANG=C.UTF-8".into(), "EMPTY=".into(), "EQ=a=b".into()],
            uid: Some("0".into()),
            gid: Some("root".into()),
            extras: Some(
                r#"{"shard": 3, "tags": ["a", "b"], "db": {"port": 5432, "ratio": 0.5}}"#.into(),
            ),
        }
    }

    #[test]
    fn names() {
        assert_eq!(unit_name("web.unit").unwrap(), "web");
        assert_eq!(unit_name("a_b.c-1").unwrap(), "a_b.c-1");
        for bad in ["", ".hidden", "-x", "a/b", "../x", "a b", &"x".repeat(65)] {
            assert_eq!(unit_name(bad).unwrap_err().code, exit::USAGE, "{bad}");
        }
    }

    #[test]
    fn renders_toml_that_reads_back() {
        let text = render(&unit()).unwrap();
        let t: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(
            t["exec"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect::<Vec<_>>(),
            vec!["/usr/bin/python3", "-m", "http.server", "it's \"quoted\""]
        );
        assert_eq!(t["environment"]["EQ"].as_str(), Some("a=b"));
        assert_eq!(t["environment"]["EMPTY"].as_str(), Some(""));
        assert_eq!(t["user"].as_integer(), Some(0));
        assert_eq!(t["group"].as_str(), Some("root"));
        assert_eq!(t["extras"]["shard"].as_integer(), Some(3));
        assert_eq!(t["extras"]["db"]["ratio"].as_float(), Some(0.5));
    }

    #[test]
    fn what_add_writes_passes_the_unit_parser() {
        let tmp = tempfile::tempdir().unwrap();
        let (path, _) = add(tmp.path(), &unit()).unwrap();
        let parsed = units::parse::load_file(&path).unwrap();
        assert_eq!(parsed.name, "web");
        assert_eq!(parsed.exec[0], "/usr/bin/python3");
        assert_eq!(parsed.exec.len(), 4);
        // The minimal form too, with a bare program name.
        let min = NewUnit {
            name: "m".into(),
            cmd: "sleep".into(),
            args: vec!["100".into()],
            ..Default::default()
        };
        let (path, _) = add(tmp.path(), &min).unwrap();
        units::parse::load_file(&path).unwrap();
        // What the parser refuses is never written.
        let bad = NewUnit {
            name: "bad".into(),
            cmd: "./relative".into(),
            ..Default::default()
        };
        let e = add(tmp.path(), &bad).unwrap_err();
        assert_eq!(e.code, exit::USAGE);
        assert!(e.message.contains("exec"), "{}", e.message);
        assert!(!tmp.path().join("bad.unit").exists());
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        let bad = |f: fn(&mut NewUnit)| {
            let mut u = unit();
            f(&mut u);
            render(&u).unwrap_err().code
        };
        assert_eq!(bad(|u| u.env = vec!["NOVALUE".into()]), exit::USAGE);
        assert_eq!(bad(|u| u.env = vec!["=v".into()]), exit::USAGE);
        assert_eq!(bad(|u| u.extras = Some("{nope".into())), exit::USAGE);
        assert_eq!(bad(|u| u.extras = Some("[1]".into())), exit::USAGE);
        assert_eq!(
            bad(|u| u.extras = Some(r#"{"a": null}"#.into())),
            exit::USAGE
        );
    }

    #[test]
    fn add_replaces_atomically_and_remove_deletes() {
        let tmp = tempfile::tempdir().unwrap();
        let (path, existed) = add(tmp.path(), &unit()).unwrap();
        assert!(!existed);
        assert_eq!(path, tmp.path().join("web.unit"));
        let first_ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
        let mut u2 = unit();
        u2.args.clear();
        let (_, existed) = add(tmp.path(), &u2).unwrap();
        assert!(existed);
        // Replaced by a rename (a new inode), never rewritten in place.
        let meta = std::fs::metadata(&path).unwrap();
        assert_ne!(std::os::unix::fs::MetadataExt::ino(&meta), first_ino);
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o644
        );
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["web.unit"]);
        remove(tmp.path(), "web").unwrap();
        assert!(!path.exists());
        assert_eq!(
            remove(tmp.path(), "web").unwrap_err().code,
            exit::NO_SUCH_UNIT
        );
        // A missing directory is a one-line failure, not a panic.
        let e = add(&tmp.path().join("missing"), &unit()).unwrap_err();
        assert_eq!(e.code, exit::FAILED);
        assert!(!e.message.contains('\n'));
    }
}

//! What is read from etcd is checked before it is used: application names (they become unit
//! file names), host records (a host is up only under a live lease, with sane values), and
//! the assignment keys of this host. Pure functions of the key, its lease and its value.

use std::collections::BTreeMap;

use crate::app::Assignment;
use crate::local::HostRecord;

/// The longest application name: `fleet-APP` must still be a unit name (64 characters).
pub const APP_NAME_MAX: usize = 64 - "fleet-".len();

/// An application name: a unit name (the units crate's rule) short enough for `fleet-APP`.
pub fn valid_app_name(name: &str) -> bool {
    name.len() <= APP_NAME_MAX && units::parse::valid_unit_name(name)
}

/// A key or name as it can be shown in one log line (it may hold a newline).
pub fn shown(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

/// Why a record under `P/hosts/` does not make its host up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostInvalid {
    #[error(
        "not a host name (1-64 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit)"
    )]
    Name,
    #[error("written without a lease: a host is up only while its agent's lease lives")]
    NoLease,
    #[error("not a host record: {0}")]
    Value(String),
    #[error("its record names another host ({0:?})")]
    OtherName(String),
    #[error("{0} is not a finite, non-negative number")]
    Number(&'static str),
}

/// The record of host `name` (the key below `P/hosts/`), attached to `lease` (0: none), if
/// it makes the host up. etcd deletes a key when its lease lapses, so a key with a lease
/// lives under a live one.
pub fn host_up(name: &str, lease: i64, value: &[u8]) -> Result<HostRecord, HostInvalid> {
    if !units::parse::valid_unit_name(name) {
        return Err(HostInvalid::Name);
    }
    if lease == 0 {
        return Err(HostInvalid::NoLease);
    }
    let h: HostRecord =
        serde_json::from_slice(value).map_err(|e| HostInvalid::Value(e.to_string()))?;
    if h.name != name {
        return Err(HostInvalid::OtherName(h.name));
    }
    if !h.load.iter().all(|l| l.is_finite() && *l >= 0.0) {
        return Err(HostInvalid::Number("load"));
    }
    // Integers from JSON are non-negative and finite already; a cpu count of 0 is not.
    if h.cpus == 0 {
        return Err(HostInvalid::Number("cpus"));
    }
    if h.memory_available_bytes > h.memory_bytes {
        return Err(HostInvalid::Number("memory_available_bytes"));
    }
    Ok(h)
}

/// Every valid host record of a `P/hosts/` listing: (name, lease, value) in, the hosts that
/// are up out, and why each other one is not.
pub fn hosts_up(
    listing: impl IntoIterator<Item = (String, i64, Vec<u8>)>,
) -> (BTreeMap<String, HostRecord>, BTreeMap<String, HostInvalid>) {
    let mut up = BTreeMap::new();
    let mut bad = BTreeMap::new();
    for (name, lease, value) in listing {
        match host_up(&name, lease, &value) {
            Ok(h) => {
                up.insert(name, h);
            }
            Err(e) => {
                bad.insert(name, e);
            }
        }
    }
    (up, bad)
}

/// One of this host's assignment keys (`P/assign/HOST/APP`, `app_key` = APP), checked: the
/// name is an application name and the value is an assignment of that same application.
pub fn assignment(app_key: &[u8], value: &[u8]) -> Result<Assignment, String> {
    let Ok(app) = std::str::from_utf8(app_key) else {
        return Err(format!("key {} is not UTF-8", shown(app_key)));
    };
    if !valid_app_name(app) {
        return Err(format!(
            "key {}: an application name is 1-{APP_NAME_MAX} characters of A-Z a-z 0-9 _ . -, starting with a letter or digit",
            shown(app_key)
        ));
    }
    let a: Assignment = serde_json::from_slice(value)
        .map_err(|e| format!("key {}: not an assignment: {e}", shown(app_key)))?;
    if a.app != app {
        return Err(format!(
            "key {} holds an assignment of {}",
            shown(app_key),
            shown(a.app.as_bytes())
        ));
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, load: f64) -> Vec<u8> {
        let h = HostRecord {
            name: name.into(),
            cpus: 2,
            load: [load, 0.0, 0.0],
            memory_bytes: 100,
            memory_available_bytes: 50,
            ..Default::default()
        };
        serde_json::to_vec(&h).unwrap()
    }

    #[test]
    fn app_names_follow_the_unit_name_rule() {
        assert!(valid_app_name("web"));
        assert!(valid_app_name(&"a".repeat(58)));
        assert!(!valid_app_name(&"a".repeat(59)));
        for bad in ["", "a\nb", "-x", ".x", "a/b", "a b", "é"] {
            assert!(!valid_app_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_host_is_up_only_under_a_lease_with_sane_values() {
        assert!(host_up("h1", 7, &rec("h1", 0.5)).is_ok());
        assert_eq!(host_up("h1", 0, &rec("h1", 0.5)), Err(HostInvalid::NoLease));
        assert_eq!(
            host_up("h1", 7, &rec("h1", -1e308)),
            Err(HostInvalid::Number("load"))
        );
        assert_eq!(
            host_up("h1", 7, &rec("h2", 0.0)),
            Err(HostInvalid::OtherName("h2".into()))
        );
        assert_eq!(
            host_up("a\nb", 7, &rec("a\nb", 0.0)),
            Err(HostInvalid::Name)
        );
        assert!(matches!(
            host_up("h1", 7, b"{\"load\": [1e999, 0, 0]}"),
            Err(HostInvalid::Value(_))
        ));
        let mut h: HostRecord = serde_json::from_slice(&rec("h1", 0.0)).unwrap();
        h.cpus = 0;
        assert_eq!(
            host_up("h1", 7, &serde_json::to_vec(&h).unwrap()),
            Err(HostInvalid::Number("cpus"))
        );
        let (up, bad) = hosts_up([
            ("h1".to_string(), 5, rec("h1", 0.1)),
            ("h9".to_string(), 0, rec("h9", -1e308)),
        ]);
        assert_eq!(up.keys().collect::<Vec<_>>(), ["h1"]);
        assert_eq!(bad["h9"], HostInvalid::NoLease);
    }

    #[test]
    fn assignment_keys_and_values_must_agree_and_be_names() {
        let v = |app: &str| {
            serde_json::to_vec(&Assignment {
                app: app.into(),
                unit: "exec = [\"/bin/true\"]\n".into(),
                movable: true,
            })
            .unwrap()
        };
        assert_eq!(assignment(b"web", &v("web")).unwrap().app, "web");
        assert!(assignment(b"", &v("")).is_err());
        assert!(assignment(b"a\nb", &v("a\nb")).is_err());
        assert!(assignment(b"web", &v("")).is_err());
        assert!(assignment(b"web", &v("other")).is_err());
        assert!(assignment(b"web", b"{}").is_err());
        assert!(assignment(&[0xff], &v("x")).is_err());
        // One log line: a newline in a key is shown escaped.
        assert!(!assignment(b"a\nb", &v("a\nb")).unwrap_err().contains('\n'));
    }
}

//! Which of this host's assignments it runs: those with a well-formed key, a matching
//! application record, and a unit that this host's policy allows. The rest write nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::app::{unit_name, Assignment};
use crate::policy::{Policy, Refusal, Subject};
use crate::records;

/// What the host knows of itself for the policy check.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// colony-init's uid (what a unit with no `user` runs as); `None`: unknown.
    pub init_uid: Option<u32>,
    /// gid -> name of the root-equivalent groups present in the group database.
    pub root_groups: BTreeMap<u32, String>,
}

impl HostFacts {
    /// colony-init's uid is its control FIFO's owner; the groups come from the database.
    pub fn probe(run_dir: &Path) -> HostFacts {
        use std::os::unix::fs::MetadataExt;
        let init_uid = std::fs::symlink_metadata(run_dir.join(units::proto::CONTROL_FIFO))
            .ok()
            .map(|m| m.uid());
        let root_groups = crate::policy::ROOT_EQUIVALENT_GROUPS
            .iter()
            .filter_map(|name| {
                let g = nix::unistd::Group::from_name(name).ok()??;
                Some((g.gid.as_raw(), name.to_string()))
            })
            .collect();
        HostFacts {
            init_uid,
            root_groups,
        }
    }
}

/// A user's groups in the group database.
pub fn groups_of(user: &str, primary: u32) -> Vec<u32> {
    let Ok(name) = std::ffi::CString::new(user) else {
        return Vec::new();
    };
    nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(primary))
        .map(|v| v.into_iter().map(|g| g.as_raw()).collect())
        // Unknown groups cannot be checked: count the user as in gid 0, so it is refused.
        .unwrap_or_else(|_| vec![0])
}

#[derive(Debug, Default)]
pub struct Admitted {
    /// app -> its assignment, with the unit text this host writes (the policy applied).
    pub run: BTreeMap<String, (Assignment, String)>,
    /// app (or the key as shown, when malformed) -> why it is not run.
    pub refused: BTreeMap<String, Refusal>,
}

/// Sort this host's assignments (`(APP key, value)`) into those to run and those refused.
/// `apps`: the names of the application records; `groups_of` as in [`Subject::of`].
pub fn admit(
    assignments: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    apps: &BTreeSet<String>,
    policy: &Policy,
    host: &HostFacts,
    groups_of: &dyn Fn(&str, u32) -> Vec<u32>,
) -> Admitted {
    let mut out = Admitted::default();
    for (key, value) in assignments {
        let a = match records::assignment(&key, &value) {
            Ok(a) => a,
            Err(e) => {
                out.refused
                    .insert(records::shown(&key), Refusal::Malformed(e));
                continue;
            }
        };
        match check(&a, apps, policy, host, groups_of) {
            Ok(text) => {
                out.run.insert(a.app.clone(), (a, text));
            }
            Err(r) => {
                out.refused.insert(a.app.clone(), r);
            }
        }
    }
    out
}

fn check(
    a: &Assignment,
    apps: &BTreeSet<String>,
    policy: &Policy,
    host: &HostFacts,
    groups_of: &dyn Fn(&str, u32) -> Vec<u32>,
) -> Result<String, Refusal> {
    if !apps.contains(&a.app) {
        return Err(Refusal::NoRecord(a.app.clone()));
    }
    let file = format!("{}.unit", unit_name(&a.app));
    let unit = units::parse::parse_unit(Path::new(&file), &a.unit).map_err(|diags| {
        Refusal::Invalid(
            diags
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let table: toml::Table =
        toml::from_str(&a.unit).map_err(|e| Refusal::Invalid(e.to_string()))?;
    let subject = Subject::of(&unit, &table, host.init_uid, groups_of);
    policy.check(&subject, &host.root_groups)?;
    policy.enforce(&a.unit).map_err(Refusal::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, app: &str, unit: &str) -> (Vec<u8>, Vec<u8>) {
        let a = Assignment {
            app: app.into(),
            unit: unit.into(),
            movable: true,
        };
        (key.as_bytes().to_vec(), serde_json::to_vec(&a).unwrap())
    }

    #[test]
    fn runs_only_well_formed_recorded_allowed_assignments() {
        let apps: BTreeSet<String> = ["web", "root", "bad"].map(String::from).into();
        let host = HostFacts {
            init_uid: Some(0),
            root_groups: BTreeMap::new(),
        };
        let nobody = "exec = [\"/bin/sleep\", \"9\"]\nuser = \"nobody\"\n";
        let out = admit(
            [
                kv("web", "web", nobody),
                kv(
                    "root",
                    "root",
                    "exec = [\"/usr/bin/id\"]\nuser = \"root\"\n",
                ),
                kv("bare", "bare", nobody),
                kv("", "", nobody),
                kv("a\nb", "a\nb", nobody),
                kv("bad", "bad", "exec = 3\n"),
            ],
            &apps,
            &Policy::default(),
            &host,
            &|_, _| vec![65534],
        );
        assert_eq!(out.run.keys().collect::<Vec<_>>(), ["web"]);
        assert!(out.run["web"].1.contains("no_new_privileges = true"));
        assert_eq!(out.refused["root"], Refusal::RootUser("root".into()));
        assert_eq!(out.refused["bare"], Refusal::NoRecord("bare".into()));
        assert!(matches!(out.refused["\"\""], Refusal::Malformed(_)));
        assert!(matches!(out.refused["\"a\\nb\""], Refusal::Malformed(_)));
        assert!(matches!(out.refused["bad"], Refusal::Invalid(_)));
    }
}

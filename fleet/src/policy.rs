//! This host's `[policy]`: which applications the fleet may run here. Whoever can write the
//! fleet's etcd prefix chooses what the leader assigns; the host decides what it runs.
//!
//! The check itself is pure: [`Subject::of`] says who a unit would run as here (its
//! identity as the host's user database resolves it, handed in), and [`Policy::check`]
//! compares that with the policy.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use units::model::Unit;

/// `[policy]` as fleet.toml spells it.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    users: Option<Vec<String>>,
    #[serde(default)]
    root: bool,
    #[serde(default)]
    capabilities: Vec<String>,
    no_new_privileges: Option<bool>,
}

/// Groups whose members can become root or read what only root should (raw disks, kernel
/// memory, password hashes, a container daemon's socket, sudo): refused like gid 0.
pub const ROOT_EQUIVALENT_GROUPS: &[&str] = &[
    "root", "sudo", "wheel", "admin", "disk", "kmem", "mem", "shadow", "docker", "lxd",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The users an application may run as (names or uids); `None`: any user but root.
    pub users: Option<BTreeSet<String>>,
    /// Whether root (uid 0, gid 0, root-equivalent groups, paths colony-init opens as root)
    /// is allowed.
    pub root: bool,
    /// The capabilities an application may keep, as a mask (bit N = capability N)...
    pub capabilities: u64,
    /// ... and as the policy names them.
    pub capability_names: Vec<String>,
    /// Every unit written here gets `no_new_privileges = true` (setuid programs cannot
    /// raise it); an application that sets it to false is refused.
    pub no_new_privileges: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            users: None,
            root: false,
            capabilities: 0,
            capability_names: Vec::new(),
            no_new_privileges: true,
        }
    }
}

impl Policy {
    pub fn from_file(f: PolicyFile) -> Result<Policy, String> {
        let mut capabilities = 0;
        for c in &f.capabilities {
            capabilities |=
                units::values::parse_capability(c).map_err(|e| format!("[policy] {e}"))?;
        }
        let users = f.users.map(|u| u.into_iter().collect::<BTreeSet<_>>());
        if let Some(u) = &users {
            if !f.root && (u.contains("root") || u.contains("0")) {
                return Err("[policy] users names root: set root = true to allow it".into());
            }
        }
        Ok(Policy {
            users,
            root: f.root,
            capabilities,
            capability_names: f.capabilities,
            no_new_privileges: f.no_new_privileges.unwrap_or(true),
        })
    }
}

/// Who an application would run as on this host, and what colony-init would do for it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Subject {
    /// The unit's `user`, as resolved here (name, uid); `None`: no `user` key.
    pub user: Option<(String, u32)>,
    /// The uid it runs as; `None`: colony-init's own, which could not be told (counted as root).
    pub uid: Option<u32>,
    /// Its primary group, when known.
    pub gid: Option<u32>,
    /// Its supplementary groups.
    pub groups: Vec<u32>,
    /// The capabilities the unit asks to keep: (as written, bit).
    pub capabilities: Vec<(String, u64)>,
    /// The unit says `no_new_privileges = false`.
    pub new_privileges: bool,
    /// Keys naming a path that colony-init, as root, opens, creates or chowns for the unit,
    /// or a privilege it grants as root (a lower nice or OOM score, raised rlimits, a port
    /// below 1024).
    pub root_paths: Vec<&'static str>,
    /// `essential = true`: its failure ends colony-init, or reboots the machine.
    pub essential: bool,
}

impl Subject {
    /// `unit` as parsed here and its raw table; `init_uid`: colony-init's uid (`None`:
    /// unknown); `groups_of(name, primary_gid)`: a user's groups in the group database.
    pub fn of(
        unit: &Unit,
        table: &toml::Table,
        init_uid: Option<u32>,
        groups_of: &dyn Fn(&str, u32) -> Vec<u32>,
    ) -> Subject {
        let id = &unit.identity;
        let user = id.user.as_ref().map(|u| (u.name.clone(), u.uid));
        let uid = id.user.as_ref().map(|u| u.uid).or(init_uid);
        let groups = match (&id.supplementary_groups, &id.user) {
            (Some(g), _) => g.clone(),
            (None, Some(u)) => groups_of(&u.name, u.primary_gid),
            (None, None) => Vec::new(),
        };
        let capabilities = match table.get("capabilities").and_then(|v| v.as_array()) {
            Some(list) => list
                .iter()
                .filter_map(|v| v.as_str())
                .filter_map(|s| {
                    units::values::parse_capability(s)
                        .ok()
                        .map(|b| (s.to_string(), b))
                })
                .collect(),
            None => Vec::new(),
        };
        let mut root_paths = Vec::new();
        // A non-root colony-init opens these as its own user: nothing more than the unit
        // could do. An unknown one counts as root.
        if init_uid.is_none_or(|u| u == 0) {
            if unit.log.file.is_some() {
                root_paths.push("[log] file");
            }
            if unit.heartbeat.as_ref().is_some_and(|h| h.file.is_some()) {
                root_paths.push("[heartbeat] file");
            }
            root_paths.extend(exec_env_as_root(unit));
        }
        Subject {
            user,
            uid,
            gid: id.gid,
            groups,
            capabilities,
            new_privileges: table.get("no_new_privileges").and_then(|v| v.as_bool()) == Some(false),
            root_paths,
            essential: unit.essential,
        }
    }
}

/// The `exec_env` and `[socket]` keys with which a root colony-init would read, create or
/// chown a path for the unit (a root-only file copied into its environment or credentials,
/// another service's directory given to it) or grant it a privilege.
fn exec_env_as_root(unit: &Unit) -> Vec<&'static str> {
    use units::exec_env::DirKind;
    use units::socket::Listen;
    let e = &unit.exec_env;
    let mut out = Vec::new();
    if !e.environment_files.is_empty() {
        out.push("environment_file");
    }
    if !e.credentials.is_empty() {
        out.push("load_credential");
    }
    for k in DirKind::ALL {
        if e.dirs(k).next().is_some() {
            out.push(k.key());
        }
    }
    if e.nice.is_some_and(|n| n < 0) {
        out.push("nice below 0");
    }
    if e.oom_score_adj.is_some_and(|n| n < 0) {
        out.push("oom_score_adj below 0");
    }
    if !e.limits.is_empty() {
        out.push("limits");
    }
    let privileged = |l: &Listen| match l {
        Listen::Tcp(a) | Listen::Udp(a) => a.port() < 1024,
        Listen::Unix(_) | Listen::UnixDgram(_) => true,
    };
    if unit
        .socket
        .as_ref()
        .is_some_and(|s| s.listen.iter().any(privileged))
    {
        out.push("[socket] listen (a socket file, or a port below 1024)");
    }
    if unit.tty.is_some() {
        out.push("[tty] (a terminal of the host, hung up and taken)");
    }
    out
}

/// Why this host refuses an assignment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "user = {0:?} is root (uid 0), which this host's policy does not allow (root = false)"
    )]
    RootUser(String),
    #[error(
        "no user: it would run as colony-init's own user, root, which this host's policy does not allow (give `user`)"
    )]
    RootByDefault,
    #[error("user {0:?} is not one of this host's policy users ({1})")]
    UserNotListed(String, String),
    #[error("no user: this host's policy lists the users an application may run as ({0})")]
    NoUser(String),
    #[error("group gid 0 (root) is not allowed by this host's policy")]
    RootGroup,
    #[error("group {0} is root-equivalent, which this host's policy does not allow")]
    RootEquivalentGroup(String),
    #[error("capabilities {0} are not allowed by this host's policy (allowed: {1})")]
    Capabilities(String, String),
    #[error("{0}: colony-init does this as root for the unit (a path it opens, creates or chowns, or a privilege it grants), which this host's policy does not allow")]
    RootPath(&'static str),
    #[error(
        "essential = true: its failure would end colony-init (or reboot the machine), which this host's policy does not allow (root = false)"
    )]
    Essential,
    #[error("no_new_privileges = false: this host's policy requires no_new_privileges")]
    NewPrivileges,
    #[error("the unit is not valid on this host: {0}")]
    Invalid(String),
    #[error("no application record {0:?} matches this assignment")]
    NoRecord(String),
    #[error("malformed assignment: {0}")]
    Malformed(String),
}

impl Policy {
    /// Whether `s` may run here. `root_groups`: gid -> name of the root-equivalent groups
    /// in this host's group database.
    pub fn check(&self, s: &Subject, root_groups: &BTreeMap<u32, String>) -> Result<(), Refusal> {
        // No user runs as colony-init's own; an unknown one counts as root.
        let is_root = match (&s.user, s.uid) {
            (Some((_, uid)), _) => *uid == 0,
            (None, uid) => uid.is_none_or(|u| u == 0),
        };
        if is_root && !self.root {
            return Err(match &s.user {
                Some((name, _)) => Refusal::RootUser(name.clone()),
                None => Refusal::RootByDefault,
            });
        }
        // Root, where allowed, need not be listed.
        if let (Some(users), false) = (&self.users, is_root) {
            let list = users.iter().cloned().collect::<Vec<_>>().join(", ");
            match &s.user {
                None => return Err(Refusal::NoUser(list)),
                Some((name, uid)) => {
                    if !users.contains(name) && !users.contains(&uid.to_string()) {
                        return Err(Refusal::UserNotListed(name.clone(), list));
                    }
                }
            }
        }
        if !self.root {
            if s.gid == Some(0) {
                return Err(Refusal::RootGroup);
            }
            for g in &s.groups {
                if *g == 0 {
                    return Err(Refusal::RootGroup);
                }
                if let Some(name) = root_groups.get(g) {
                    return Err(Refusal::RootEquivalentGroup(name.clone()));
                }
            }
            if let Some(key) = s.root_paths.first() {
                return Err(Refusal::RootPath(key));
            }
            if s.essential {
                return Err(Refusal::Essential);
            }
        }
        let extra: Vec<&str> = s
            .capabilities
            .iter()
            .filter(|(_, bit)| bit & !self.capabilities != 0)
            .map(|(name, _)| name.as_str())
            .collect();
        if !extra.is_empty() {
            let allowed = if self.capability_names.is_empty() {
                "none".to_string()
            } else {
                self.capability_names.join(", ")
            };
            return Err(Refusal::Capabilities(extra.join(", "), allowed));
        }
        if self.no_new_privileges && s.new_privileges {
            return Err(Refusal::NewPrivileges);
        }
        Ok(())
    }

    /// The unit text as written here: `no_new_privileges = true` when the policy wants it.
    pub fn enforce(&self, unit: &str) -> Result<String, String> {
        if !self.no_new_privileges {
            return Ok(unit.to_string());
        }
        let mut t: toml::Table = toml::from_str(unit).map_err(|e| e.to_string())?;
        t.insert("no_new_privileges".into(), toml::Value::Boolean(true));
        toml::to_string(&t).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(user: Option<(&str, u32)>, init_uid: Option<u32>) -> Subject {
        Subject {
            user: user.map(|(n, u)| (n.to_string(), u)),
            uid: user.map(|(_, u)| u).or(init_uid),
            gid: user.map(|(_, u)| u).or(init_uid),
            ..Default::default()
        }
    }

    fn policy(text: &str) -> Policy {
        Policy::from_file(toml::from_str(text).unwrap()).unwrap()
    }

    fn no_groups() -> BTreeMap<u32, String> {
        BTreeMap::new()
    }

    #[test]
    fn root_is_refused_by_default_whichever_way_it_is_asked_for() {
        let p = Policy::default();
        let g = no_groups();
        assert_eq!(
            p.check(&subject(Some(("root", 0)), Some(0)), &g),
            Err(Refusal::RootUser("root".into()))
        );
        // Another name for uid 0 is root too.
        assert_eq!(
            p.check(&subject(Some(("toor", 0)), Some(0)), &g),
            Err(Refusal::RootUser("toor".into()))
        );
        // No user: colony-init's own, root here, or unknown.
        assert_eq!(
            p.check(&subject(None, Some(0)), &g),
            Err(Refusal::RootByDefault)
        );
        assert_eq!(
            p.check(&subject(None, None), &g),
            Err(Refusal::RootByDefault)
        );
        // A non-root colony-init: its units run as its user.
        assert_eq!(p.check(&subject(None, Some(1000)), &g), Ok(()));
        assert_eq!(p.check(&subject(Some(("app", 1000)), Some(0)), &g), Ok(()));
        let root = policy("root = true");
        assert_eq!(root.check(&subject(Some(("root", 0)), Some(0)), &g), Ok(()));
        assert_eq!(root.check(&subject(None, Some(0)), &g), Ok(()));
    }

    #[test]
    fn root_groups_root_paths_and_essential_units_are_root() {
        let p = Policy::default();
        let g = BTreeMap::from([(27, "sudo".to_string()), (999, "docker".to_string())]);
        let mut s = subject(Some(("app", 1000)), Some(0));
        s.gid = Some(0);
        assert_eq!(p.check(&s, &g), Err(Refusal::RootGroup));
        let mut s = subject(Some(("app", 1000)), Some(0));
        s.groups = vec![100, 999];
        assert_eq!(
            p.check(&s, &g),
            Err(Refusal::RootEquivalentGroup("docker".into()))
        );
        s.groups = vec![0];
        assert_eq!(p.check(&s, &g), Err(Refusal::RootGroup));
        let mut s = subject(Some(("app", 1000)), Some(0));
        s.root_paths = vec!["[log] file"];
        assert_eq!(p.check(&s, &g), Err(Refusal::RootPath("[log] file")));
        assert_eq!(policy("root = true").check(&s, &g), Ok(()));
        let mut s = subject(Some(("app", 1000)), Some(0));
        s.essential = true;
        assert_eq!(p.check(&s, &g), Err(Refusal::Essential));
        assert_eq!(policy("root = true").check(&s, &g), Ok(()));
    }

    #[test]
    fn only_listed_users_and_allowed_capabilities() {
        let p = policy("users = [\"app\", \"1001\"]\ncapabilities = [\"CAP_NET_BIND_SERVICE\"]");
        let g = no_groups();
        assert_eq!(p.check(&subject(Some(("app", 1000)), Some(0)), &g), Ok(()));
        assert_eq!(p.check(&subject(Some(("www", 1001)), Some(0)), &g), Ok(()));
        assert!(matches!(
            p.check(&subject(Some(("daemon", 1)), Some(0)), &g),
            Err(Refusal::UserNotListed(u, _)) if u == "daemon"
        ));
        assert!(matches!(
            p.check(&subject(None, Some(1000)), &g),
            Err(Refusal::NoUser(_))
        ));
        let mut s = subject(Some(("app", 1000)), Some(0));
        s.capabilities = vec![("CAP_NET_BIND_SERVICE".into(), 1 << 10)];
        assert_eq!(p.check(&s, &g), Ok(()));
        s.capabilities.push(("CAP_SYS_ADMIN".into(), 1 << 21));
        let e = p.check(&s, &g).unwrap_err();
        assert_eq!(
            e,
            Refusal::Capabilities("CAP_SYS_ADMIN".into(), "CAP_NET_BIND_SERVICE".into())
        );
        // Default: none at all.
        assert!(Policy::default().check(&s, &g).is_err());
        let mut s = subject(Some(("app", 1000)), Some(0));
        s.new_privileges = true;
        assert_eq!(p.check(&s, &g), Err(Refusal::NewPrivileges));
        assert_eq!(policy("no_new_privileges = false").check(&s, &g), Ok(()));
    }

    #[test]
    fn the_subject_of_a_unit_as_this_host_resolves_it() {
        let text = "exec = [\"/bin/true\"]\nuser = \"0\"\ncapabilities = [\"sys_admin\"]\n\
                    no_new_privileges = false\n[log]\nfile = \"/etc/cron.d/x\"\n";
        let unit = units::parse::parse_unit(std::path::Path::new("fleet-x.unit"), text).unwrap();
        let table: toml::Table = toml::from_str(text).unwrap();
        let s = Subject::of(&unit, &table, Some(0), &|_, _| vec![42]);
        assert_eq!(s.uid, Some(0));
        assert_eq!(s.groups, [42]);
        assert_eq!(s.capabilities, [("sys_admin".to_string(), 1 << 21)]);
        assert!(s.new_privileges);
        assert_eq!(s.root_paths, ["[log] file"]);
        // What root would do for the unit's exec_env and [socket].
        let text = "exec = [\"/bin/true\"]\nuser = \"0\"\nload_credential = { k = \"/etc/shadow\" }\n\
                    state_directory = \"postgresql\"\nnice = -5\n[socket]\nlisten = [\"tcp:0.0.0.0:22\"]\n";
        let unit2 = units::parse::parse_unit(std::path::Path::new("fleet-x.unit"), text).unwrap();
        let s2 = Subject::of(
            &unit2,
            &toml::from_str(text).unwrap(),
            Some(0),
            &|_, _| vec![],
        );
        assert_eq!(
            s2.root_paths,
            [
                "load_credential",
                "state_directory",
                "nice below 0",
                "[socket] listen (a socket file, or a port below 1024)"
            ]
        );
        let text =
            "exec = [\"/bin/true\"]\nnice = 5\n[socket]\nlisten = [\"tcp:127.0.0.1:8080\"]\n";
        let unit3 = units::parse::parse_unit(std::path::Path::new("fleet-x.unit"), text).unwrap();
        let s3 = Subject::of(
            &unit3,
            &toml::from_str(text).unwrap(),
            Some(0),
            &|_, _| vec![],
        );
        assert!(s3.root_paths.is_empty());
        // Under a non-root colony-init, the log file is opened as that user.
        let s = Subject::of(&unit, &table, Some(1000), &|_, _| vec![]);
        assert!(s.root_paths.is_empty());
        let plain = "exec = [\"/bin/true\"]\n";
        let unit = units::parse::parse_unit(std::path::Path::new("fleet-x.unit"), plain).unwrap();
        let s = Subject::of(&unit, &toml::from_str(plain).unwrap(), None, &|_, _| vec![]);
        assert_eq!((s.user.clone(), s.uid), (None, None));
        assert_eq!(
            Policy::default().check(&s, &no_groups()),
            Err(Refusal::RootByDefault)
        );
    }

    #[test]
    fn enforce_sets_no_new_privileges() {
        let t = Policy::default()
            .enforce("exec = [\"/bin/true\"]\n")
            .unwrap();
        let u = units::parse::parse_unit(std::path::Path::new("fleet-x.unit"), &t).unwrap();
        assert!(u.no_new_privileges);
        let t = policy("no_new_privileges = false")
            .enforce("exec = [\"/bin/true\"]\n")
            .unwrap();
        assert_eq!(t, "exec = [\"/bin/true\"]\n");
    }
}

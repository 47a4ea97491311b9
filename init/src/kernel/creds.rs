//! Credentials prepared in the parent for the child: groups, gid, uid, capabilities, umask.
//!
//! Everything that needs the user database or allocation (the group list) happens here,
//! before fork; the child in [`crate::kernel::spawn`] only issues raw syscalls with these values.
//! The group list is read from `/etc/group` as a file, never through NSS, which could block
//! PID 1's loop on a directory service (see [`units::userdb`]).

use std::path::Path;

use units::model::Unit;
use units::userdb;

/// Capability number of CAP_SETPCAP (needed to shrink the bounding set).
const CAP_SETPCAP: u32 = 8;

/// What the child applies, in this order: groups, gid, uid, capabilities, no_new_privs, umask.
/// `None` everywhere means "keep colony-init's own".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Creds {
    /// setresuid to this (None: keep).
    pub uid: Option<libc::uid_t>,
    /// setresgid to this (None: keep).
    pub gid: Option<libc::gid_t>,
    /// setgroups to exactly these (None: keep; `Some(vec![])`: none).
    pub groups: Option<Vec<libc::gid_t>>,
    /// Exactly these capabilities: bounding, permitted, effective, inheritable (and ambient
    /// for a non-root uid). None: root keeps its set; a uid change to non-root drops all.
    pub caps: Option<u64>,
    /// The target uid is not 0: ambient capabilities are raised so they survive execve.
    pub ambient: bool,
    /// Drop the bounding set to `caps` (needs CAP_SETPCAP; false when colony-init lacks it,
    /// which only matters for set-uid programs, and no_new_privs covers those).
    pub drop_bounding: bool,
    pub no_new_privs: bool,
    pub umask: Option<u32>,
    /// RLIMIT_NOFILE, soft and hard (None: what every child gets, `spawn::raise_fd_limit`).
    pub nofile: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum CredsError {
    #[error("colony-init runs as uid {own}, so it cannot run units as uid {wanted}")]
    NotRootUser { own: u32, wanted: u32 },
    #[error("colony-init runs as gid {own}, so it cannot run units as gid {wanted}")]
    NotRootGroup { own: u32, wanted: u32 },
    #[error("colony-init is not root, so it cannot set supplementary groups")]
    NotRootGroups,
    #[error("capabilities {wanted:#x} are not all held by colony-init (permitted {held:#x})")]
    CapsNotHeld { wanted: u64, held: u64 },
    #[error("cannot read the groups of user {user}: {source}")]
    GroupList {
        user: String,
        source: userdb::UserDbError,
    },
}

impl Creds {
    /// What `unit` asks for, checked against what colony-init itself may do.
    pub fn for_unit(unit: &Unit) -> Result<Creds, CredsError> {
        let own_uid = nix::unistd::geteuid().as_raw();
        let own_gid = nix::unistd::getegid().as_raw();
        let root = own_uid == 0;
        let id = &unit.identity;

        let uid = id.user.as_ref().map(|u| u.uid).filter(|&u| u != own_uid);
        if let Some(wanted) = uid {
            if !root {
                return Err(CredsError::NotRootUser {
                    own: own_uid,
                    wanted,
                });
            }
        }
        // A user without an explicit group runs with its primary group, never with ours.
        let gid = id
            .gid
            .or(id.user.as_ref().map(|u| u.primary_gid))
            .filter(|&g| g != own_gid);
        if let Some(wanted) = gid {
            if !root {
                return Err(CredsError::NotRootGroup {
                    own: own_gid,
                    wanted,
                });
            }
        }
        let groups = match (&id.supplementary_groups, &id.user) {
            (Some(list), _) => Some(list.clone()),
            (None, Some(user)) if root => {
                let primary = id.gid.unwrap_or(user.primary_gid);
                Some(group_list(&user.name, primary)?)
            }
            // Non-root keeps its own groups: it could not change them anyway.
            (None, _) => None,
        };
        let groups = match groups {
            Some(g) if !root => {
                let mut own: Vec<u32> = nix::unistd::getgroups()
                    .map(|v| v.into_iter().map(|g| g.as_raw()).collect())
                    .unwrap_or_default();
                let mut want = g.clone();
                own.sort_unstable();
                own.dedup();
                want.sort_unstable();
                want.dedup();
                if own != want {
                    return Err(CredsError::NotRootGroups);
                }
                None
            }
            other => other,
        };

        let target_uid = uid.unwrap_or(own_uid);
        let held = crate::kernel::spawn::own_permitted_caps();
        let has_setpcap = held & (1 << CAP_SETPCAP) != 0;
        let caps = unit.capabilities;
        if let Some(mask) = caps {
            if mask & !held != 0 {
                return Err(CredsError::CapsNotHeld { wanted: mask, held });
            }
        }
        Ok(Creds {
            uid,
            gid,
            groups,
            caps,
            ambient: caps.is_some() && target_uid != 0,
            drop_bounding: caps.is_some() && has_setpcap,
            no_new_privs: unit.no_new_privileges,
            umask: unit.umask,
            nofile: unit.nofile,
        })
    }
}

/// The user's groups: `primary`, then those `/etc/group` lists it in (getgrouplist's answer
/// from the `files` source).
fn group_list(user: &str, primary: u32) -> Result<Vec<u32>, CredsError> {
    userdb::groups_of(Path::new(userdb::GROUP), user, primary).map_err(|source| {
        CredsError::GroupList {
            user: user.to_owned(),
            source,
        }
    })
}

//! Users and groups from `/etc/passwd` and `/etc/group`, read as files, never through NSS.
//!
//! colony-init resolves names in PID 1's only thread (loading units, preparing a start's
//! groups). NSS there would load whatever modules nsswitch.conf names (LDAP, sssd, NIS...),
//! and one that waits on the network stalls reaping, restarts and control with it. systemd
//! never looks users up in PID 1's own loop (a service's `User=` is resolved in its forked
//! child) and s6 leaves it to the service's own process (`s6-setuidgid`); colony prepares
//! credentials before the fork, where nothing may block, so it reads the local files: the
//! `files` source every nsswitch.conf starts with. A user known only to a directory service
//! is given by number. `colonyctl check` uses this same code, so it says what colony-init
//! will do.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The system's user database.
pub const PASSWD: &str = "/etc/passwd";
/// The system's group database.
pub const GROUP: &str = "/etc/group";

/// Neither file is read past this (a big site's passwd is a few MiB).
const MAX_BYTES: u64 = 16 << 20;

/// A user's passwd entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum UserDbError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_BYTES} bytes")]
    TooBig { path: PathBuf },
}

/// The file's text, at most [`MAX_BYTES`]; a missing file is an empty database (a scratch
/// container may have none).
fn read(path: &Path) -> Result<String, UserDbError> {
    let err = |source| UserDbError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(err(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(UserDbError::TooBig {
            path: path.to_path_buf(),
        });
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The fields of each entry line: not blank, not a comment, not a NIS `+`/`-` line.
fn entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(['#', '+', '-']))
        .map(|l| l.split(':').collect())
}

fn passwd_entry(f: &[&str]) -> Option<PasswdEntry> {
    Some(PasswdEntry {
        name: f.first()?.to_string(),
        uid: f.get(2)?.trim().parse().ok()?,
        gid: f.get(3)?.trim().parse().ok()?,
    })
}

/// The home directory (sixth field) of the first entry of `passwd` with `uid`.
pub fn home_of(passwd: &Path, uid: u32) -> Option<PathBuf> {
    let text = read(passwd).ok()?;
    let home = entries(&text)
        .find(|f| f.get(2).and_then(|u| u.trim().parse::<u32>().ok()) == Some(uid))
        .and_then(|f| f.get(5).filter(|h| h.starts_with('/')).map(PathBuf::from));
    home
}

/// The first entry of `passwd` named `name`.
pub fn user_by_name(passwd: &Path, name: &str) -> Result<Option<PasswdEntry>, UserDbError> {
    Ok(entries(&read(passwd)?)
        .filter(|f| f.first() == Some(&name))
        .find_map(|f| passwd_entry(&f)))
}

/// The first entry of `passwd` with uid `uid`.
pub fn user_by_uid(passwd: &Path, uid: u32) -> Result<Option<PasswdEntry>, UserDbError> {
    Ok(entries(&read(passwd)?)
        .filter_map(|f| passwd_entry(&f))
        .find(|e| e.uid == uid))
}

/// The gid of the group named `name` in `group`.
pub fn group_by_name(group: &Path, name: &str) -> Result<Option<u32>, UserDbError> {
    Ok(entries(&read(group)?)
        .filter(|f| f.first() == Some(&name))
        .find_map(|f| f.get(2)?.trim().parse().ok()))
}

/// `user`'s groups as getgrouplist(3) gives them: `primary` first, then every group of
/// `group` that lists the user as a member, each gid once.
pub fn groups_of(group: &Path, user: &str, primary: u32) -> Result<Vec<u32>, UserDbError> {
    let mut out = vec![primary];
    for f in entries(&read(group)?) {
        let member = f
            .get(3)
            .is_some_and(|m| m.split(',').any(|m| m.trim() == user));
        let Some(gid) = f.get(2).and_then(|g| g.trim().parse::<u32>().ok()) else {
            continue;
        };
        if member && !out.contains(&gid) {
            out.push(gid);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD_TEXT: &str = "# local users\nroot:x:0:0:root:/root:/bin/bash\n\
        svc:x:1001:1002:A service,,,:/srv:/usr/sbin/nologin\n\n+ldapuser::::::\n\
        broken:x:notanumber:1:::\ntwin:x:1003:1003::/:/bin/sh\ntwin:x:1004:1004::/:/bin/sh\n";
    const GROUP_TEXT: &str = "root:x:0:\nsvc:x:1002:\nweb:x:2000:svc,other\n\
        logs:x:2001: svc \n-nis\nempty:x:2002:\nprimary-too:x:1002:svc\n";

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn users_by_name_and_uid() {
        let p = file(PASSWD_TEXT);
        let svc = PasswdEntry {
            name: "svc".into(),
            uid: 1001,
            gid: 1002,
        };
        assert_eq!(user_by_name(p.path(), "svc").unwrap(), Some(svc.clone()));
        assert_eq!(user_by_uid(p.path(), 1001).unwrap(), Some(svc));
        assert_eq!(user_by_name(p.path(), "root").unwrap().unwrap().uid, 0);
        // The first of two entries wins, as with files in NSS.
        assert_eq!(user_by_name(p.path(), "twin").unwrap().unwrap().uid, 1003);
        // NIS lines, comments and broken entries are no users.
        for name in ["+ldapuser", "ldapuser", "broken", "# local users", ""] {
            assert_eq!(user_by_name(p.path(), name).unwrap(), None, "{name}");
        }
        assert_eq!(user_by_uid(p.path(), 4242).unwrap(), None);
    }

    #[test]
    fn groups_by_name_and_membership() {
        let g = file(GROUP_TEXT);
        assert_eq!(group_by_name(g.path(), "web").unwrap(), Some(2000));
        assert_eq!(group_by_name(g.path(), "nis").unwrap(), None);
        assert_eq!(group_by_name(g.path(), "nope").unwrap(), None);
        // Primary first, then memberships in file order, each once.
        assert_eq!(
            groups_of(g.path(), "svc", 1002).unwrap(),
            vec![1002, 2000, 2001]
        );
        assert_eq!(groups_of(g.path(), "other", 7).unwrap(), vec![7, 2000]);
        assert_eq!(groups_of(g.path(), "nobody", 9).unwrap(), vec![9]);
    }

    #[test]
    fn a_missing_file_is_empty_and_a_huge_one_refused() {
        let none = Path::new("/nonexistent/passwd");
        assert_eq!(user_by_name(none, "root").unwrap(), None);
        assert_eq!(groups_of(none, "root", 0).unwrap(), vec![0]);
        let big = tempfile::NamedTempFile::new().unwrap();
        big.as_file().set_len(MAX_BYTES + 1).unwrap();
        assert!(matches!(
            user_by_name(big.path(), "root"),
            Err(UserDbError::TooBig { .. })
        ));
        // A directory cannot be read as one.
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            group_by_name(dir.path(), "root"),
            Err(UserDbError::Read { .. })
        ));
    }
}

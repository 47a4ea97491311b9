//! The users file: `NAME:ROLE:ARGON2-HASH` a line, written by `colony-web passwd`.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads every page and the API.
    Viewer,
    /// Also starts, stops, restarts and signals units.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            _ => Err(format!("unknown role {s:?}: viewer or operator")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub role: Role,
    hash: String,
}

#[derive(Debug, Clone, Default)]
pub struct Users {
    users: HashMap<String, User>,
}

/// A user name: 1-64 of `A-Z a-z 0-9 _ . -`.
pub fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

pub fn hash(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string())
}

impl Users {
    pub fn load(path: &Path) -> anyhow::Result<Users> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => anyhow::bail!("{}: {e}", path.display()),
        };
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.splitn(3, ':');
            let (Some(name), Some(role), Some(hash)) = (parts.next(), parts.next(), parts.next())
            else {
                anyhow::bail!("{}:{}: expected NAME:ROLE:HASH", path.display(), i + 1);
            };
            let role = role
                .parse()
                .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 1))?;
            PasswordHash::new(hash)
                .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 1))?;
            users.insert(
                name.to_string(),
                User {
                    role,
                    hash: hash.to_string(),
                },
            );
        }
        Ok(Users { users })
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The user's role if the password is right.
    pub fn check(&self, name: &str, password: &str) -> Option<Role> {
        let u = self.users.get(name)?;
        let h = PasswordHash::new(&u.hash).ok()?;
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .ok()
            .map(|()| u.role)
    }
}

/// `colony-web passwd NAME --role ROLE`: set NAME's password (read from `password`) in the
/// users file, written whole to a temporary file and renamed, mode 0600.
pub fn passwd(path: &Path, name: &str, role: Role, password: &str) -> anyhow::Result<()> {
    if !valid_name(name) {
        anyhow::bail!("bad user name {name:?}: 1-64 of A-Z a-z 0-9 _ . -");
    }
    if password.is_empty() {
        anyhow::bail!("empty password");
    }
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => anyhow::bail!("{}: {e}", path.display()),
    };
    let mut out = String::new();
    for line in old.lines() {
        if line.split(':').next() != Some(name) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(&format!("{name}:{}:{}\n", role.as_str(), hash(password)?));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(out.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_writes_argon2_hashes_that_check() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("users");
        passwd(&f, "ann", Role::Operator, "s3cret").unwrap();
        passwd(&f, "bob", Role::Viewer, "pw").unwrap();
        passwd(&f, "ann", Role::Operator, "new").unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.contains("ann:operator:$argon2id$"), "{text}");
        assert!(!text.contains("s3cret"));
        let u = Users::load(&f).unwrap();
        assert_eq!(u.check("ann", "new"), Some(Role::Operator));
        assert_eq!(u.check("ann", "s3cret"), None);
        assert_eq!(u.check("bob", "pw"), Some(Role::Viewer));
        assert_eq!(u.check("eve", "pw"), None);
        assert!(passwd(&f, "a:b", Role::Viewer, "x").is_err());
    }
}

//! fleet.toml: which host this is, where etcd is, how to reach the local colony-init.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::policy::{Policy, PolicyFile};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    host: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    endpoints: Vec<String>,
    ttl: Option<String>,
    run_dir: Option<PathBuf>,
    units_dir: Option<PathBuf>,
    prefix: Option<String>,
    publish_every: Option<String>,
    stats_every: Option<String>,
    user: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    tls: Option<TlsFile>,
    policy: Option<PolicyFile>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    ca: PathBuf,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    domain: Option<String>,
}

/// TLS to etcd: the CA that signed etcd's certificate, and our client certificate.
#[derive(Debug, Clone)]
pub struct Tls {
    pub ca: PathBuf,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub domain: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub labels: BTreeMap<String, String>,
    pub endpoints: Vec<String>,
    pub ttl: Duration,
    pub run_dir: PathBuf,
    pub units_dir: PathBuf,
    /// Every key of the fleet lives below this prefix (several fleets can share an etcd).
    pub prefix: String,
    /// How often the local colony-init is asked for its units' status.
    pub publish_every: Duration,
    /// Statistics alone (memory, CPU, load) are republished at most this often.
    pub stats_every: Duration,
    pub user: Option<(String, String)>,
    pub tls: Option<Tls>,
    /// What this host runs for the fleet.
    pub policy: Policy,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Parse(PathBuf, String),
}

/// `/etc/colony/fleet.toml` as root, `$XDG_CONFIG_HOME/colony/fleet.toml` otherwise.
pub fn default_path() -> PathBuf {
    units::paths::defaults(units::paths::is_root())
        .config
        .join("fleet.toml")
}

fn duration(
    path: &Path,
    key: &str,
    v: Option<&str>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) => humantime::parse_duration(s)
            .map_err(|e| ConfigError::Parse(path.to_path_buf(), format!("{key} = {s:?}: {e}"))),
    }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string())
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_path_buf(), e))?;
        Config::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let f: File = toml::from_str(text)
            .map_err(|e| ConfigError::Parse(path.to_path_buf(), e.to_string()))?;
        let bad = |m: String| ConfigError::Parse(path.to_path_buf(), m);
        let ttl = duration(path, "ttl", f.ttl.as_deref(), Duration::from_secs(10))?;
        if ttl < Duration::from_secs(2) {
            return Err(bad(
                "ttl must be at least 2s (etcd leases count in whole seconds)".into(),
            ));
        }
        let host = f.host.unwrap_or_else(hostname);
        if !units::parse::valid_unit_name(&host) {
            return Err(bad(format!(
                "host = {host:?}: 1-64 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit"
            )));
        }
        let endpoints = if f.endpoints.is_empty() {
            vec!["http://127.0.0.1:2379".to_string()]
        } else {
            f.endpoints
        };
        let password = match (&f.password, &f.password_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(file)) => Some(
                std::fs::read_to_string(file)
                    .map_err(|e| ConfigError::Read(file.clone(), e))?
                    .trim_end()
                    .to_string(),
            ),
            (None, None) => None,
        };
        let user = match (f.user, password) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            _ => {
                return Err(bad(
                    "user and password (or password_file) go together".into()
                ))
            }
        };
        // Those of the colony-init that runs this agent (it sets COLONY_UNITS_DIR for its
        // units), else colony-init's defaults.
        let defaults = units::paths::defaults(units::paths::is_root());
        let run_dir = f.run_dir.unwrap_or(defaults.run);
        let units_dir = f
            .units_dir
            .unwrap_or_else(|| match std::env::var_os("COLONY_UNITS_DIR") {
                Some(v) if !v.is_empty() => PathBuf::from(v),
                _ => defaults.units,
            });
        let mut prefix = f.prefix.unwrap_or_else(|| "/colony/fleet/".to_string());
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        let base = path.parent().unwrap_or(Path::new("/"));
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let tls = f.tls.map(|t| Tls {
            ca: rel(t.ca),
            cert: t.cert.map(rel),
            key: t.key.map(rel),
            domain: t.domain,
        });
        if let Some(t) = &tls {
            if t.cert.is_some() != t.key.is_some() {
                return Err(bad("[tls] cert and key go together".into()));
            }
        }
        let policy = Policy::from_file(f.policy.unwrap_or_default()).map_err(bad)?;
        Ok(Config {
            host,
            labels: f.labels,
            endpoints,
            ttl,
            run_dir,
            units_dir,
            prefix,
            publish_every: duration(
                path,
                "publish_every",
                f.publish_every.as_deref(),
                Duration::from_secs(2),
            )?,
            stats_every: duration(
                path,
                "stats_every",
                f.stats_every.as_deref(),
                Duration::from_secs(30),
            )?,
            user,
            tls,
            policy,
        })
    }

    /// When an agent that cannot renew its lease stops its movable units: well before etcd
    /// can let the lease lapse (renewals go out every ttl/6, so a lost one and a reconnection are tolerated).
    pub fn fence_after(&self) -> Duration {
        self.ttl.mul_f64(0.4)
    }

    pub fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let p = Path::new("/etc/colony/fleet.toml");
        let c = Config::parse(
            p,
            "host = \"h1\"\nlabels = { rack = \"r1\" }\nttl = \"4s\"\n",
        )
        .unwrap();
        assert_eq!(c.host, "h1");
        assert_eq!(c.ttl, Duration::from_secs(4));
        assert_eq!(c.endpoints, vec!["http://127.0.0.1:2379"]);
        assert_eq!(c.key("hosts/h1"), "/colony/fleet/hosts/h1");
        assert_eq!(c.publish_every, Duration::from_secs(2));
        assert_eq!(c.fence_after(), Duration::from_millis(1600));
        assert!(Config::parse(p, "hots = 1").is_err());
        assert!(Config::parse(p, "ttl = \"1s\"").is_err());
        assert!(Config::parse(p, "host = \"a/b\"").is_err());
        assert!(Config::parse(p, "user = \"u\"").is_err());
        let c = Config::parse(
            p,
            "host = \"h\"\n[tls]\nca = \"ca.pem\"\ncert = \"/x/c.pem\"\nkey = \"k.pem\"\n",
        )
        .unwrap();
        let t = c.tls.unwrap();
        assert_eq!(t.ca, PathBuf::from("/etc/colony/ca.pem"));
        assert_eq!(t.cert, Some(PathBuf::from("/x/c.pem")));
    }

    #[test]
    fn policy_defaults_to_no_root_no_capabilities() {
        let p = Path::new("/etc/colony/fleet.toml");
        let c = Config::parse(p, "host = \"h\"\n").unwrap();
        assert_eq!(c.policy, Policy::default());
        assert!(!c.policy.root);
        assert_eq!(c.policy.capabilities, 0);
        let c = Config::parse(
            p,
            "[policy]\nusers = [\"app\", \"www-data\"]\nroot = false\ncapabilities = [\"CAP_NET_BIND_SERVICE\"]\n",
        )
        .unwrap();
        assert_eq!(c.policy.users.as_ref().unwrap().len(), 2);
        assert_eq!(c.policy.capabilities, 1 << 10);
        assert!(Config::parse(p, "[policy]\ncapabilities = [\"CAP_NOPE\"]\n").is_err());
        assert!(Config::parse(p, "[policy]\nrooot = true\n").is_err());
        assert!(Config::parse(p, "[policy]\nusers = [\"root\"]\n").is_err());
        assert!(Config::parse(p, "[policy]\nusers = [\"root\"]\nroot = true\n").is_ok());
    }
}

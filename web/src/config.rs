//! web.toml: where colony-web listens, which colony-init it shows, who may log in.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<String>,
    run_dir: Option<PathBuf>,
    fleet: Option<PathBuf>,
    users_file: Option<PathBuf>,
    sample_every: Option<String>,
    history: Option<String>,
    #[serde(default)]
    insecure_http: bool,
    tls: Option<Tls>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The configuration, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub run_dir: PathBuf,
    pub fleet: Option<PathBuf>,
    pub users_file: PathBuf,
    /// `None`: no sampling (`sample_every = "0s"`).
    pub sample_every: Option<Duration>,
    pub history: Duration,
    pub insecure_http: bool,
    pub tls: Option<Tls>,
}

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn config_home() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("/etc"))
}

/// `/etc/colony/web.toml` as root, else `$XDG_CONFIG_HOME/colony/web.toml`.
pub fn default_path() -> PathBuf {
    if root() {
        PathBuf::from("/etc/colony/web.toml")
    } else {
        config_home().join("colony/web.toml")
    }
}

/// The users file when the config names none.
pub fn default_users() -> PathBuf {
    if root() {
        PathBuf::from("/etc/colony/web.users")
    } else {
        config_home().join("colony/web.users")
    }
}

/// colony-init's RUN: env `COLONY_RUN_DIR` (set for every unit), else its defaults.
fn default_run_dir() -> PathBuf {
    match std::env::var_os("COLONY_RUN_DIR") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ if root() => PathBuf::from("/run/colony"),
        _ => match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(v) => PathBuf::from(v).join("colony"),
            None => std::env::temp_dir().join(format!("colony-{}", nix::unistd::getuid())),
        },
    }
}

fn duration(key: &str, v: &str) -> anyhow::Result<Duration> {
    units::values::parse_duration(v).map_err(|e| anyhow::anyhow!("{key}: {e}"))
}

impl Config {
    /// Read `path`; a missing file is every default (when `required` is false).
    pub fn load(path: &Path, required: bool) -> anyhow::Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => String::new(),
            Err(e) => anyhow::bail!("{}: {e}", path.display()),
        };
        let f: File =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Config::from_file(f)
    }

    fn from_file(f: File) -> anyhow::Result<Config> {
        let listen: SocketAddr = f
            .listen
            .as_deref()
            .unwrap_or("127.0.0.1:9001")
            .parse()
            .map_err(|e| {
                anyhow::anyhow!("listen: {e} (an address and port, e.g. 127.0.0.1:9001)")
            })?;
        if !listen.ip().is_loopback() && f.tls.is_none() && !f.insecure_http {
            anyhow::bail!(
                "listen = {listen} is not a loopback address: set [tls] cert and key, or insecure_http = true to serve passwords in clear text"
            );
        }
        let sample_every = duration("sample_every", f.sample_every.as_deref().unwrap_or("10s"))?;
        let history = duration("history", f.history.as_deref().unwrap_or("1h"))?;
        Ok(Config {
            listen,
            run_dir: f.run_dir.unwrap_or_else(default_run_dir),
            fleet: f.fleet,
            users_file: f.users_file.unwrap_or_else(default_users),
            sample_every: (!sample_every.is_zero()).then_some(sample_every),
            history,
            insecure_http: f.insecure_http,
            tls: f.tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> anyhow::Result<Config> {
        Config::from_file(toml::from_str(s)?)
    }

    #[test]
    fn loopback_by_default_and_other_addresses_need_tls_or_the_switch() {
        let c = parse("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9001");
        assert_eq!(c.sample_every, Some(Duration::from_secs(10)));
        assert_eq!(c.history, Duration::from_secs(3600));
        let e = parse("listen = \"0.0.0.0:9001\"").unwrap_err().to_string();
        assert!(e.contains("[tls]"), "{e}");
        assert!(parse("listen = \"0.0.0.0:9001\"\ninsecure_http = true").is_ok());
        assert!(parse("listen = \"[::]:9001\"\n[tls]\ncert = \"/c\"\nkey = \"/k\"").is_ok());
        assert_eq!(parse("sample_every = \"0s\"").unwrap().sample_every, None);
        assert!(parse("nonsense = 1").is_err());
    }
}

//! A fleet application: a unit file with a `[placement]` section, and the records the agents
//! and the leader keep in etcd.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The first listed host (in `hosts` order) that is up.
    #[default]
    Config,
    /// The host with the lowest load average per CPU.
    LeastLoaded,
    /// The host running the fewest fleet applications.
    Spread,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Config => "config",
            Strategy::LeastLoaded => "least-loaded",
            Strategy::Spread => "spread",
        }
    }
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// Host names or globs (`*`, `?`); empty: every host.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Every one of these labels must match the host's.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default = "one")]
    pub replicas: u32,
    #[serde(default)]
    pub strategy: Strategy,
    /// When its host is lost, run it elsewhere (and fence it on a partitioned host).
    #[serde(default = "yes")]
    pub movable: bool,
}

impl Default for Placement {
    fn default() -> Self {
        Placement {
            hosts: Vec::new(),
            labels: BTreeMap::new(),
            replicas: 1,
            strategy: Strategy::Config,
            movable: true,
        }
    }
}

/// `P/apps/APP`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppRecord {
    pub name: String,
    /// The unit file text, without `[placement]`.
    pub unit: String,
    pub placement: Placement,
    /// `fleet stop` clears it: the app stays defined but is assigned nowhere.
    pub enabled: bool,
}

/// `P/assign/HOST/APP`, written by the leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub app: String,
    pub unit: String,
    pub movable: bool,
}

/// The unit name an application runs under on a host.
pub fn unit_name(app: &str) -> String {
    format!("fleet-{app}")
}

/// Parse `APP.toml`: the placement section, and the rest checked as a unit file would be.
pub fn parse_app(path: &Path, text: &str) -> Result<AppRecord, String> {
    let file = path
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    let name = file.strip_suffix(".toml").unwrap_or(file).to_string();
    let unit_file = format!("{}.unit", unit_name(&name));
    if !crate::records::valid_app_name(&name) {
        return Err(format!(
            "{}: the application name {name:?} (the file's name without .toml) must be 1-58 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit",
            path.display()
        ));
    }
    let mut table: toml::Table =
        toml::from_str(text).map_err(|e| format!("{}: {e}", path.display()))?;
    let placement = match table.remove("placement") {
        None => Placement::default(),
        Some(v) => v
            .try_into::<Placement>()
            .map_err(|e| format!("{}: [placement]: {e}", path.display()))?,
    };
    if placement.replicas == 0 {
        return Err(format!(
            "{}: [placement] replicas must be at least 1",
            path.display()
        ));
    }
    for h in &placement.hosts {
        if h.is_empty() || h.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(format!(
                "{}: [placement] hosts: bad host name or glob {h:?}",
                path.display()
            ));
        }
    }
    let unit = toml::to_string(&table).map_err(|e| format!("{}: {e}", path.display()))?;
    // The same checks colony-init makes, so a bad unit is refused here, not on every host.
    units::parse::parse_unit(Path::new(&unit_file), &unit).map_err(|diags| {
        diags
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    Ok(AppRecord {
        name,
        unit,
        placement,
        enabled: true,
    })
}

/// Shell-style glob: `*` any run, `?` one character (no classes, no escapes).
pub fn glob(pattern: &str, name: &str) -> bool {
    wildmatch::WildMatch::new(pattern).matches(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("board-*", "board-2"));
        assert!(glob("*", "x"));
        assert!(glob("b?ard-*2", "board-12"));
        assert!(!glob("board-*", "boar"));
        assert!(!glob("h1", "h10"));
        assert!(glob("h*", "h"));
        assert!(!glob("h?", "h"));
        assert!(glob("*-1", "a-b-1"));
        assert!(!glob("[ab]", "a"), "no character classes");
    }

    #[test]
    fn parses_placement_and_checks_the_unit() {
        let p = Path::new("/x/web.toml");
        let a = parse_app(
            p,
            "exec = [\"/bin/sleep\", \"100\"]\n[placement]\nhosts = [\"h*\"]\nreplicas = 2\nstrategy = \"least-loaded\"\n",
        )
        .unwrap();
        assert_eq!(a.name, "web");
        assert_eq!(a.placement.replicas, 2);
        assert_eq!(a.placement.strategy, Strategy::LeastLoaded);
        assert!(a.placement.movable);
        assert!(!a.unit.contains("placement"));
        assert!(parse_app(
            p,
            "exec = [\"/bin/true\"]\n[placement]\nstrategy = \"nope\"\n"
        )
        .is_err());
        assert!(parse_app(p, "exec = [\"/bin/true\"]\n[placement]\nreplicas = 0\n").is_err());
        assert!(parse_app(p, "exce = [\"/bin/true\"]\n").is_err());
        assert!(parse_app(Path::new("/x/-bad.toml"), "exec = [\"/bin/true\"]\n").is_err());
    }

    #[test]
    fn the_examples_are_valid() {
        let a = parse_app(Path::new("web.toml"), include_str!("../examples/web.toml")).unwrap();
        assert_eq!(a.placement.strategy, Strategy::LeastLoaded);
        let c = crate::config::Config::parse(
            Path::new("/etc/colony/fleet.toml"),
            include_str!("../examples/fleet.toml"),
        )
        .unwrap();
        assert_eq!(c.endpoints.len(), 3);
        units::parse::parse_unit(
            Path::new("colony-fleet.unit"),
            include_str!("../examples/colony-fleet.unit"),
        )
        .unwrap();
    }
}

//! This host: its colony-init (asked through colonyctl and the control FIFO), its load and
//! memory, and the unit files this agent owns in the units directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What is published of one unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct UnitStat {
    pub name: String,
    pub state: String,
    pub pid: Option<i32>,
    pub restarts: u64,
    pub memory_bytes: Option<u64>,
    pub cpu_usec: Option<u64>,
    pub tasks: Option<u64>,
}

impl UnitStat {
    /// The part whose change is published at once (statistics wait for `stats_every`).
    pub fn identity(&self) -> (&str, &str, Option<i32>, u64) {
        (&self.name, &self.state, self.pid, self.restarts)
    }
}

/// `P/hosts/HOST`, under the host's lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct HostRecord {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub cpus: u32,
    /// 1, 5 and 15-minute load averages.
    pub load: [f64; 3],
    pub memory_bytes: u64,
    pub memory_available_bytes: u64,
    pub units: Vec<UnitStat>,
    /// Set when the local colony-init does not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Which agent publishes it (machine boot id and units directory), so a second agent
    /// started with the same host name is refused.
    #[serde(default)]
    pub agent: String,
    /// Assignments this host refuses (its policy, no application record): app -> why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub refused: BTreeMap<String, String>,
}

impl HostRecord {
    pub fn load_per_cpu(&self) -> f64 {
        self.load[0] / f64::from(self.cpus.max(1))
    }

    /// Whether `other` differs in what must be published at once.
    pub fn same_identity(&self, other: &HostRecord) -> bool {
        self.labels == other.labels
            && self.error == other.error
            && self.refused == other.refused
            && self.units.len() == other.units.len()
            && self
                .units
                .iter()
                .zip(&other.units)
                .all(|(a, b)| a.identity() == b.identity())
    }
}

/// This agent's identity: the kernel's boot id and the units directory it writes.
pub fn agent_id(units_dir: &Path) -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    format!("{}:{}", boot.trim(), units_dir.display())
}

/// colonyctl next to this binary, else from PATH.
pub fn colonyctl() -> PathBuf {
    if let Ok(me) = std::env::current_exe() {
        let p = me.with_file_name("colonyctl");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("colonyctl")
}

/// `colonyctl --run-dir RUN --json status`: every unit of the local colony-init.
pub async fn unit_status(run_dir: &Path) -> Result<Vec<UnitStat>, String> {
    let out = tokio::process::Command::new(colonyctl())
        .arg("--run-dir")
        .arg(run_dir)
        .args(["--json", "--timeout", "5s", "status"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run colonyctl: {e}"))?;
    // Exit 3 only says that some unit is not running: the answer is still whole.
    if !out.status.success() && out.status.code() != Some(3) {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err
            .trim()
            .lines()
            .last()
            .unwrap_or("colonyctl failed")
            .to_string());
    }
    let list: Vec<units::proto::UnitStatus> = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("colonyctl's answer is not understood: {e}"))?;
    Ok(list
        .into_iter()
        .map(|u| UnitStat {
            name: u.name,
            state: u.state,
            pid: u.pid,
            restarts: u.restarts,
            memory_bytes: u.memory_bytes,
            cpu_usec: u.cpu_usec,
            tasks: u.tasks,
        })
        .collect())
}

/// Load averages from /proc/loadavg.
pub fn loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .map(|w| w.parse::<f64>().unwrap_or(0.0));
    [
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
    ]
}

/// (total, available) memory in bytes from /proc/meminfo.
pub fn meminfo() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let get = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    };
    (get("MemTotal:"), get("MemAvailable:"))
}

pub fn cpus() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

const MARK: &str = "# colony-fleet: application ";
const MOVABLE: &str = "# colony-fleet: movable\n";

/// The text of the unit file for an assignment; the first lines mark it as ours.
pub fn unit_text(app: &str, unit: &str, movable: bool) -> String {
    format!(
        "{MARK}{app} (written by colony-fleet: edits are overwritten)\n{}{unit}",
        if movable { MOVABLE } else { "" }
    )
}

/// A movable unit guarded against a dead agent: it is ordered `after` the agent's own unit,
/// and has a `[heartbeat]` (its file in `run_dir`) that the agent touches at every lease
/// renewal. When the agent is dead for `period` (its fence delay, shorter than the lease),
/// colony-init stops the unit for the missed beat, and its start again waits while the agent
/// is being restarted, until it is up (ready: it has written its assignments), instead of
/// running a copy that the fleet may place elsewhere once the lease lapses. `after`, not
/// `requires`: a `restart` of the agent must not restart the applications. An app with a
/// heartbeat of its own keeps it and gets only the ordering.
pub fn guarded_unit(
    unit: &str,
    app: &str,
    agent_unit: &str,
    run_dir: &Path,
    period: std::time::Duration,
) -> Result<String, String> {
    let mut t: toml::Table = toml::from_str(unit).map_err(|e| format!("{app}: {e}"))?;
    let after = t
        .entry("after")
        .or_insert_with(|| toml::Value::Array(Vec::new()));
    if let toml::Value::Array(list) = after {
        if !list.iter().any(|v| v.as_str() == Some(agent_unit)) {
            list.push(toml::Value::String(agent_unit.to_string()));
        }
    }
    if !t.contains_key("heartbeat") {
        let ms = format!("{}ms", period.as_millis().max(1));
        let mut hb = toml::Table::new();
        hb.insert(
            "file".into(),
            toml::Value::String(beat_file(run_dir, app).display().to_string()),
        );
        hb.insert("period".into(), toml::Value::String(ms.clone()));
        hb.insert("grace".into(), toml::Value::String(ms));
        t.insert("heartbeat".into(), toml::Value::Table(hb));
    }
    toml::to_string(&t).map_err(|e| format!("{app}: {e}"))
}

/// The heartbeat file of a guarded unit (see [`guarded_unit`]).
pub fn beat_file(run_dir: &Path, app: &str) -> PathBuf {
    run_dir.join("heartbeat").join(format!("fleet-{app}"))
}

/// Touch the heartbeat file of every guarded unit of ours: the lease was just renewed. A
/// file colony-init has not made yet (the unit is not started) is skipped.
pub fn beat(run_dir: &Path, units_dir: &Path) {
    for (app, movable) in owned_units(units_dir) {
        if movable {
            let f = beat_file(run_dir, &app);
            if let Ok(file) = std::fs::File::options().append(true).open(&f) {
                let _ = file.set_modified(std::time::SystemTime::now());
            }
        }
    }
}

/// `colonyctl --run-dir RUN reload`: returns once colony-init has applied the units directory.
pub async fn reload(run_dir: &Path) -> Result<(), String> {
    let out = tokio::process::Command::new(colonyctl())
        .arg("--run-dir")
        .arg(run_dir)
        .args(["--timeout", "5s", "reload"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run colonyctl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// `READY=1` to the notify socket colony-init gave this agent, if any.
pub fn notify_ready() {
    if let Some(path) = std::env::var_os("NOTIFY_SOCKET") {
        if let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() {
            let _ = sock.send_to(b"READY=1", path);
        }
    }
}

/// A unit file this agent wrote: (app, movable).
fn owned(dir: &Path, file: &str) -> Option<(String, bool)> {
    let app = file.strip_prefix("fleet-")?.strip_suffix(".unit")?;
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    let first = text.lines().next()?;
    let rest = first.strip_prefix(MARK)?;
    if rest.split_whitespace().next()? != app {
        return None;
    }
    Some((app.to_string(), text.contains(MOVABLE)))
}

/// Every unit file of ours in `dir`: app -> movable. Files of others are never touched.
pub fn owned_units(dir: &Path) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if let Some(name) = e.file_name().to_str() {
                if let Some((app, movable)) = owned(dir, name) {
                    out.insert(app, movable);
                }
            }
        }
    }
    out
}

/// Write `fleet-APP.unit` atomically (a dot-file renamed over it: colony-init never reads a
/// half-written unit); nothing is written when the content is already there.
pub fn write_unit(dir: &Path, app: &str, text: &str) -> std::io::Result<bool> {
    // Callers check names; a name that is not one never becomes a path.
    if !crate::records::valid_app_name(app) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{app:?} is not an application name"),
        ));
    }
    let path = dir.join(format!("fleet-{app}.unit"));
    if std::fs::read_to_string(&path).ok().as_deref() == Some(text) {
        return Ok(false);
    }
    let tmp = dir.join(format!(".fleet-{app}.unit.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(true)
}

pub fn remove_unit(dir: &Path, app: &str) -> std::io::Result<()> {
    match std::fs::remove_file(dir.join(format!("fleet-{app}.unit"))) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Fencing: remove every movable unit of ours; colony-init stops them.
pub fn fence(dir: &Path) -> Vec<String> {
    let mut removed = Vec::new();
    for (app, movable) in owned_units(dir) {
        if movable && remove_unit(dir, &app).is_ok() {
            removed.push(app);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guarded_unit_waits_for_the_agent_and_carries_its_beat() {
        let run = Path::new("/run/colony");
        let ms = std::time::Duration::from_millis(4000);
        let text = guarded_unit(
            "exec = [\"/bin/sleep\", \"1000\"]\nafter = [\"db\"]\n",
            "web",
            "colony-fleet",
            run,
            ms,
        )
        .unwrap();
        let u = units::parse::parse_unit(Path::new("fleet-web.unit"), &text).unwrap();
        assert_eq!(u.after, ["db", "colony-fleet"]);
        assert!(u.requires.is_empty());
        let hb = u.heartbeat.unwrap();
        assert_eq!(
            hb.file.as_deref(),
            Some(Path::new("/run/colony/heartbeat/fleet-web"))
        );
        assert_eq!(hb.period, ms);
        assert_eq!(hb.grace, ms);
        // Its own heartbeat stays; the agent is not named twice.
        let own =
            "exec = [\"/bin/true\"]\nafter = [\"colony-fleet\"]\n[heartbeat]\nperiod = \"1s\"\n";
        let text = guarded_unit(own, "job", "colony-fleet", run, ms).unwrap();
        let u = units::parse::parse_unit(Path::new("fleet-job.unit"), &text).unwrap();
        assert_eq!(u.after, ["colony-fleet"]);
        assert_eq!(
            u.heartbeat.unwrap().period,
            std::time::Duration::from_secs(1)
        );
    }

    #[test]
    fn owns_only_its_files_and_fences_movable_ones() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        assert!(write_unit(dir, "a", &unit_text("a", "exec = [\"/bin/true\"]\n", true)).unwrap());
        assert!(!write_unit(dir, "a", &unit_text("a", "exec = [\"/bin/true\"]\n", true)).unwrap());
        write_unit(dir, "b", &unit_text("b", "exec = [\"/bin/true\"]\n", false)).unwrap();
        std::fs::write(dir.join("fleet-c.unit"), "exec = [\"/bin/true\"]\n").unwrap();
        std::fs::write(dir.join("mine.unit"), "exec = [\"/bin/true\"]\n").unwrap();
        let owned = owned_units(dir);
        assert_eq!(
            owned,
            BTreeMap::from([("a".into(), true), ("b".into(), false)])
        );
        assert_eq!(fence(dir), vec!["a".to_string()]);
        assert!(!dir.join("fleet-a.unit").exists());
        assert!(dir.join("fleet-b.unit").exists());
        assert!(dir.join("fleet-c.unit").exists());
        assert!(loadavg()[0] >= 0.0);
        assert!(meminfo().0 > 0);
    }
}

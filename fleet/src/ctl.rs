//! `colony-fleet ctl ...` (and so `colonyctl fleet ...`): the operator's view and commands.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, Txn, TxnOp, TxnOpResponse,
};
use serde::Serialize;

use crate::app::{parse_app, unit_name, AppRecord};
use crate::config::Config;
use crate::local::{HostRecord, UnitStat};
use crate::store::{bounded, connect, REQUEST};

#[derive(Debug, Serialize)]
pub struct HostView {
    pub name: String,
    pub up: bool,
    pub leader: bool,
    pub labels: BTreeMap<String, String>,
    pub load: Option<[f64; 3]>,
    pub cpus: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub memory_available_bytes: Option<u64>,
    pub units: Vec<UnitStat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AppView {
    pub name: String,
    /// The hosts it runs on now.
    pub hosts: Vec<String>,
    /// The hosts the leader gave it to.
    pub assigned: Vec<String>,
    pub state: String,
    pub why: Option<String>,
    pub replicas: u32,
    pub strategy: String,
    pub movable: bool,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub leader: Option<String>,
    pub hosts: Vec<HostView>,
    pub apps: Vec<AppView>,
}

async fn get_prefix(
    c: &mut Client,
    cfg: &Config,
    p: &str,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let prefix = cfg.key(p);
    let r = bounded(
        "reading the fleet",
        REQUEST,
        c.get(prefix.clone(), Some(GetOptions::new().with_prefix())),
    )
    .await?;
    Ok(r.kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(&kv.key()[prefix.len()..]).into_owned(),
                kv.value().to_vec(),
            )
        })
        .collect())
}

pub async fn status(c: &mut Client, cfg: &Config) -> anyhow::Result<Status> {
    let leader = match bounded(
        "asking for the leader",
        REQUEST,
        c.leader(cfg.key("election")),
    )
    .await
    {
        Ok(r) => r
            .kv()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()),
        // No leader elected yet: etcd answers with an error.
        Err(_) => None,
    };
    // Up: a valid record under a live lease (a record written without one is not).
    let up: BTreeMap<String, HostRecord> = crate::leader::up_hosts(c, cfg).await?.0;
    let mut hosts = Vec::new();
    let mut known: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (name, v) in get_prefix(c, cfg, "known/").await? {
        known.insert(name, serde_json::from_slice(&v).unwrap_or_default());
    }
    for name in up.keys() {
        known.entry(name.clone()).or_default();
    }
    for (name, labels) in known {
        let is_leader = leader.as_deref() == Some(name.as_str());
        hosts.push(match up.get(&name) {
            Some(h) => HostView {
                name,
                up: true,
                leader: is_leader,
                labels: h.labels.clone(),
                load: Some(h.load),
                cpus: Some(h.cpus),
                memory_bytes: Some(h.memory_bytes),
                memory_available_bytes: Some(h.memory_available_bytes),
                units: h.units.clone(),
                error: h.error.clone(),
            },
            None => HostView {
                name,
                up: false,
                leader: is_leader,
                labels,
                load: None,
                cpus: None,
                memory_bytes: None,
                memory_available_bytes: None,
                units: Vec::new(),
                error: None,
            },
        });
    }
    let mut assigned: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (rest, _) in get_prefix(c, cfg, "assign/").await? {
        if let Some((h, a)) = rest.split_once('/') {
            assigned
                .entry(a.to_string())
                .or_default()
                .push(h.to_string());
        }
    }
    let whys: BTreeMap<String, String> = get_prefix(c, cfg, "why/")
        .await?
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let mut apps = Vec::new();
    for (name, v) in get_prefix(c, cfg, "apps/").await? {
        let Ok(a) = serde_json::from_slice::<AppRecord>(&v) else {
            continue;
        };
        let unit = unit_name(&name);
        let on: Vec<(&String, &UnitStat)> = up
            .iter()
            .filter_map(|(h, r)| r.units.iter().find(|u| u.name == unit).map(|u| (h, u)))
            .collect();
        let running: Vec<String> = on
            .iter()
            .filter(|(_, u)| u.state == "running")
            .map(|(h, _)| (*h).clone())
            .collect();
        let assigned = assigned.remove(&name).unwrap_or_default();
        let mut why = whys.get(&name).cloned();
        let want = a.placement.replicas as usize;
        // Hosts assigned it that refuse it (their policy): said even when nothing runs.
        let refused: Vec<String> = assigned
            .iter()
            .filter_map(|h| Some((h, up.get(h)?.refused.get(&name)?)))
            .map(|(h, why)| format!("refused on {h}: {why}"))
            .collect();
        let state = if !a.enabled {
            if running.is_empty() {
                "stopped"
            } else {
                "stopping"
            }
        } else if running.len() >= want {
            "running"
        } else if !refused.is_empty() {
            why = Some(refused.join("; "));
            "refused"
        } else if assigned.is_empty() || assigned.iter().all(|h| !up.contains_key(h)) {
            "waiting"
        } else if let Some((h, u)) = on
            .iter()
            .find(|(_, u)| matches!(u.state.as_str(), "failed" | "backoff" | "invalid"))
        {
            why.get_or_insert_with(|| format!("{unit} is {} on {h}", u.state));
            if running.is_empty() {
                "failed"
            } else {
                "degraded"
            }
        } else if running.is_empty() {
            "starting"
        } else {
            "degraded"
        };
        if state == "waiting" && why.is_none() {
            why = Some(if leader.is_none() {
                "no leader: no agent is running to place it".to_string()
            } else {
                "not placed yet".to_string()
            });
        }
        apps.push(AppView {
            name,
            hosts: running,
            assigned,
            state: state.to_string(),
            why,
            replicas: a.placement.replicas,
            strategy: a.placement.strategy.name().to_string(),
            movable: a.placement.movable,
        });
    }
    Ok(Status {
        leader,
        hosts,
        apps,
    })
}

pub fn size(b: u64) -> String {
    const U: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b}B")
    } else {
        format!("{v:.1}{}", U[i])
    }
}

fn table(rows: Vec<Vec<String>>) -> String {
    let mut widths = Vec::new();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if widths.len() <= i {
                widths.push(0);
            }
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == r.len() {
                    c.clone()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn hosts_table(s: &Status) -> String {
    let mut rows = vec![["HOST", "STATE", "LOAD", "MEMORY", "UNITS", "LABELS"]
        .map(String::from)
        .to_vec()];
    for h in &s.hosts {
        let running = h.units.iter().filter(|u| u.state == "running").count();
        rows.push(vec![
            if h.leader {
                format!("{} *", h.name)
            } else {
                h.name.clone()
            },
            if !h.up {
                "lost".into()
            } else if h.error.is_some() {
                "up (no colony-init)".into()
            } else {
                "up".into()
            },
            h.load
                .map(|l| format!("{:.2}", l[0]))
                .unwrap_or_else(|| "-".into()),
            match (h.memory_bytes, h.memory_available_bytes) {
                (Some(t), Some(a)) => format!("{}/{}", size(t.saturating_sub(a)), size(t)),
                _ => "-".into(),
            },
            if h.up {
                format!("{running}/{}", h.units.len())
            } else {
                "-".into()
            },
            h.labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        ]);
    }
    table(rows)
}

fn apps_table(s: &Status) -> String {
    let mut rows = vec![["APP", "STATE", "HOSTS", "WANT", "STRATEGY", "WHY"]
        .map(String::from)
        .to_vec()];
    for a in &s.apps {
        rows.push(vec![
            a.name.clone(),
            a.state.clone(),
            if a.hosts.is_empty() {
                "-".into()
            } else {
                a.hosts.join(",")
            },
            a.replicas.to_string(),
            format!("{}{}", a.strategy, if a.movable { "" } else { " (fixed)" }),
            a.why.clone().unwrap_or_default(),
        ]);
    }
    table(rows)
}

/// The commands, after the arguments were parsed.
#[derive(Debug, Clone)]
pub enum Command {
    Status,
    Hosts,
    Apply(std::path::PathBuf),
    Remove(String),
    Start(String),
    Stop(String),
    /// Forget a lost host: its registration, records and assignments.
    Forget(String),
    /// Every host's name (else every application's), one a line: for shell completion.
    Names {
        hosts: bool,
    },
}

/// Run one command; returns colonyctl's exit code (errors are printed as one line).
pub async fn run(cfg: &Config, cmd: Command, json: bool) -> i32 {
    match run_inner(cfg, cmd, json).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("colony-fleet: {e:#}");
            units::proto::exit::FAILED
        }
    }
}

async fn run_inner(cfg: &Config, cmd: Command, json: bool) -> anyhow::Result<i32> {
    let mut c = connect(cfg).await?;
    match cmd {
        Command::Status | Command::Hosts => {
            let s = status(&mut c, cfg).await?;
            let hosts_only = matches!(cmd, Command::Hosts);
            if json {
                let v = if hosts_only {
                    serde_json::to_string_pretty(&s.hosts)?
                } else {
                    serde_json::to_string_pretty(&s)?
                };
                println!("{v}");
            } else {
                print!("{}", hosts_table(&s));
                if !hosts_only {
                    println!();
                    print!("{}", apps_table(&s));
                    if s.leader.is_none() {
                        println!("\nno leader: no agent is placing applications");
                    }
                }
            }
            Ok(0)
        }
        Command::Apply(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            let mut app = match parse_app(Path::new(&path), &text) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("colony-fleet: {e}");
                    return Ok(units::proto::exit::USAGE);
                }
            };
            let key = cfg.key(&format!("apps/{}", app.name));
            let old = bounded("reading the application", REQUEST, c.get(key.clone(), None)).await?;
            if let Some(kv) = old.kvs().first() {
                if let Ok(prev) = serde_json::from_slice::<AppRecord>(kv.value()) {
                    app.enabled = prev.enabled;
                }
            }
            bounded(
                "writing the application",
                REQUEST,
                c.put(key, serde_json::to_vec(&app)?, None),
            )
            .await?;
            if !json {
                println!("applied {}", app.name);
            }
            Ok(0)
        }
        Command::Remove(name) => {
            let r = bounded(
                "removing the application",
                REQUEST,
                c.delete(cfg.key(&format!("apps/{name}")), None),
            )
            .await?;
            if r.deleted() == 0 {
                eprintln!("colony-fleet: no application {name} in the fleet (see `colonyctl fleet status`)");
                return Ok(units::proto::exit::NO_SUCH_UNIT);
            }
            Ok(0)
        }
        Command::Forget(host) => forget(&mut c, cfg, &host, json).await,
        Command::Names { hosts } => {
            let s = status(&mut c, cfg).await?;
            let names: Vec<&str> = if hosts {
                s.hosts.iter().map(|h| h.name.as_str()).collect()
            } else {
                s.apps.iter().map(|a| a.name.as_str()).collect()
            };
            for n in names {
                println!("{n}");
            }
            Ok(0)
        }
        Command::Start(ref name) | Command::Stop(ref name) => {
            let enable = matches!(cmd, Command::Start(_));
            if !set_enabled(&mut c, cfg, name, enable).await? {
                eprintln!("colony-fleet: no application {name} in the fleet (see `colonyctl fleet status`)");
                return Ok(units::proto::exit::NO_SUCH_UNIT);
            }
            Ok(0)
        }
    }
}

/// `start APP` (enable) or `stop APP`: the leader places it, or every host stops it; its
/// definition stays. False when the fleet has no such application.
pub async fn set_enabled(
    c: &mut Client,
    cfg: &Config,
    name: &str,
    enable: bool,
) -> anyhow::Result<bool> {
    let key = cfg.key(&format!("apps/{name}"));
    let r = bounded("reading the application", REQUEST, c.get(key.clone(), None)).await?;
    let Some(kv) = r.kvs().first() else {
        return Ok(false);
    };
    let mut app: AppRecord = serde_json::from_slice(kv.value())?;
    if app.enabled != enable {
        app.enabled = enable;
        bounded(
            "writing the application",
            REQUEST,
            c.put(key, serde_json::to_vec(&app)?, None),
        )
        .await?;
    }
    Ok(true)
}

/// What `forget --json` prints.
#[derive(Debug, Serialize)]
pub struct Forgotten {
    pub host: String,
    /// The applications that were assigned to it: the leader places them again.
    pub unassigned: Vec<String>,
}

/// `forget HOST`: remove a lost host from the fleet (its registration under `known/`, and
/// its assignments), in one transaction that holds only while the host has no record under
/// a live lease. Its published record (`hosts/HOST`, labels, load, units) lives under that
/// lease, so it is already gone. The leader places whatever was assigned there again.
async fn forget(c: &mut Client, cfg: &Config, host: &str, json: bool) -> anyhow::Result<i32> {
    if !units::parse::valid_unit_name(host) {
        eprintln!("colony-fleet: {host:?} is not a host name (see `colonyctl fleet hosts`)");
        return Ok(units::proto::exit::USAGE);
    }
    let up = cfg.key(&format!("hosts/{host}"));
    // No record, or one under no lease (never up: it goes too). etcd compares a missing
    // key's lease as 0.
    let txn = Txn::new()
        .when(vec![Compare::lease(up.clone(), CompareOp::Equal, 0)])
        .and_then(vec![
            TxnOp::delete(up, None),
            TxnOp::delete(
                cfg.key(&format!("known/{host}")),
                Some(DeleteOptions::new().with_prev_key()),
            ),
            TxnOp::delete(
                cfg.key(&format!("assign/{host}/")),
                Some(DeleteOptions::new().with_prefix().with_prev_key()),
            ),
        ]);
    let r = bounded("forgetting the host", REQUEST, c.txn(txn)).await?;
    if !r.succeeded() {
        eprintln!(
            "colony-fleet: host {host} is up (its agent holds a live lease): only a lost host \
             can be forgotten; stop colony-fleet on {host} first, and wait until \
             `colonyctl fleet hosts` shows it lost"
        );
        return Ok(units::proto::exit::FAILED);
    }
    let mut deleted = 0;
    let mut unassigned = Vec::new();
    let assign = cfg.key(&format!("assign/{host}/"));
    for op in r.op_responses() {
        if let TxnOpResponse::Delete(d) = op {
            deleted += d.deleted();
            for kv in d.prev_kvs() {
                if let Some(app) = kv.key().strip_prefix(assign.as_bytes()) {
                    unassigned.push(String::from_utf8_lossy(app).into_owned());
                }
            }
        }
    }
    if deleted == 0 {
        eprintln!("colony-fleet: no host {host} in the fleet (see `colonyctl fleet hosts`)");
        return Ok(units::proto::exit::NO_SUCH_UNIT);
    }
    unassigned.sort();
    if json {
        let out = Forgotten {
            host: host.to_string(),
            unassigned,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if unassigned.is_empty() {
        println!("forgot {host}");
    } else {
        println!(
            "forgot {host}; the leader places again: {}",
            unassigned.join(", ")
        );
    }
    Ok(0)
}

/// The hosts an application is assigned to (for tests and tools).
pub fn assigned_hosts(s: &Status, app: &str) -> BTreeSet<String> {
    s.apps
        .iter()
        .filter(|a| a.name == app)
        .flat_map(|a| a.assigned.iter().cloned())
        .collect()
}

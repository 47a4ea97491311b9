//! The leader: once elected, it places the fleet's applications whenever hosts or
//! applications change, in transactions that hold only while it leads.

use std::collections::{BTreeMap, BTreeSet};

use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, LeaderKey, Txn, TxnOp, WatchOptions,
};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::agent::started;
use crate::app::{unit_name, AppRecord, Assignment};
use crate::config::Config;
use crate::once::Once;
use crate::place::{self, HostInfo};
use crate::records;
use crate::store::{bounded, REQUEST};

/// Campaign; once elected, place applications whenever hosts or applications change.
pub async fn lead(mut client: Client, cfg: Config, lease: i64) -> anyhow::Result<()> {
    let resp = client
        .campaign(cfg.key("election"), cfg.host.clone(), lease)
        .await?;
    let key = resp
        .leader()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("etcd elected us without a leader key"))?;
    info!("elected: this agent places the fleet's applications");
    let mut watch = client
        .watch(cfg.prefix.clone(), Some(WatchOptions::new().with_prefix()))
        .await?;
    let hosts = cfg.key("hosts/");
    let apps = cfg.key("apps/");
    let known = cfg.key("known/");
    let mut said = Said::default();
    settle(&mut client, &cfg, &mut watch).await?;
    loop {
        place_once(&mut client, &cfg, &key, &mut said).await?;
        'wait: loop {
            let m = watch
                .message()
                .await?
                .ok_or_else(|| anyhow::anyhow!("etcd closed the leader's watch"))?;
            for e in m.events() {
                let Some(kv) = e.kv() else { continue };
                let k = String::from_utf8_lossy(kv.key());
                // Hosts joining, leaving, or their colony-init going silent; applications;
                // a lost host forgotten (`fleet forget`: its assignments are gone).
                if k.starts_with(&apps)
                    || k.starts_with(&hosts)
                    || (k.starts_with(&known) && e.event_type() == EventType::Delete)
                {
                    break 'wait;
                }
            }
        }
    }
}

/// When the agent itself just started (a fleet starting up, after a power cut say), the
/// first placement waits until every host that was ever in the fleet is back, or `ttl` at
/// most: otherwise the first host up would get everything, and running copies whose hosts
/// are still booting would be moved.
async fn settle(
    client: &mut Client,
    cfg: &Config,
    watch: &mut etcd_client::WatchStream,
) -> anyhow::Result<()> {
    let until = started() + cfg.ttl;
    loop {
        if Instant::now() >= until {
            return Ok(());
        }
        let known = get_prefix(client, "reading known hosts", &cfg.key("known/")).await?;
        let (up, _) = up_hosts(client, cfg).await?;
        let missing: Vec<&String> = known
            .iter()
            .map(|(k, _)| k)
            .filter(|k| !up.contains_key(*k))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        info!(
            ?missing,
            "waiting for known hosts before placing (at most ttl after start)"
        );
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return Ok(()),
            m = watch.message() => {
                m?.ok_or_else(|| anyhow::anyhow!("etcd closed the leader's watch"))?;
            }
        }
    }
}

async fn get_prefix(
    client: &mut Client,
    what: &str,
    prefix: &str,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let resp = bounded(
        what,
        REQUEST,
        client.get(prefix, Some(GetOptions::new().with_prefix())),
    )
    .await?;
    Ok(resp
        .kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(&kv.key()[prefix.len()..]).into_owned(),
                kv.value().to_vec(),
            )
        })
        .collect())
}

/// The hosts that are up (a valid record under a live lease), and why the others are not.
pub async fn up_hosts(
    client: &mut Client,
    cfg: &Config,
) -> anyhow::Result<(
    BTreeMap<String, crate::local::HostRecord>,
    BTreeMap<String, records::HostInvalid>,
)> {
    let prefix = cfg.key("hosts/");
    let resp = bounded(
        "reading hosts",
        REQUEST,
        client.get(prefix.as_str(), Some(GetOptions::new().with_prefix())),
    )
    .await?;
    Ok(records::hosts_up(resp.kvs().iter().map(|kv| {
        (
            String::from_utf8_lossy(&kv.key()[prefix.len().min(kv.key().len())..]).into_owned(),
            kv.lease(),
            kv.value().to_vec(),
        )
    })))
}

/// What the leader has said of bad records, each once.
#[derive(Default)]
pub struct Said {
    hosts: Once,
    apps: Once,
}

/// One round of placement, written in one transaction that holds only while we lead.
pub(crate) async fn place_once(
    client: &mut Client,
    cfg: &Config,
    key: &LeaderKey,
    said: &mut Said,
) -> anyhow::Result<()> {
    let mut up = BTreeMap::new();
    // host -> the units its colony-init has (whose processes may still be there).
    let mut present: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let (records, invalid) = up_hosts(client, cfg).await?;
    for (name, why) in said
        .hosts
        .news(invalid.iter().map(|(k, e)| (k.clone(), e.to_string())))
    {
        let name = records::shown(name.as_bytes());
        warn!("host record {name} ignored (not up): {why}");
    }
    for (name, h) in records {
        present.insert(
            name.clone(),
            h.units
                .iter()
                .filter(|u| {
                    matches!(
                        u.state.as_str(),
                        "running" | "starting" | "stopping" | "backoff"
                    )
                })
                .map(|u| u.name.clone())
                .collect(),
        );
        up.insert(
            name,
            HostInfo {
                load_per_cpu: h.load_per_cpu(),
                accepting: h.error.is_none(),
                labels: h.labels,
            },
        );
    }
    let mut apps: BTreeMap<String, AppRecord> = BTreeMap::new();
    let mut bad_apps = BTreeMap::new();
    for (name, v) in get_prefix(client, "reading applications", &cfg.key("apps/")).await? {
        match serde_json::from_slice::<AppRecord>(&v) {
            Ok(a) if records::valid_app_name(&name) && a.name == name => {
                apps.insert(name, a);
            }
            Ok(_) => {
                bad_apps.insert(
                    records::shown(name.as_bytes()),
                    "not an application name, or the record names another".to_string(),
                );
            }
            Err(e) => {
                bad_apps.insert(records::shown(name.as_bytes()), e.to_string());
            }
        }
    }
    for (name, why) in said.apps.news(bad_apps) {
        warn!("application record {name} ignored: {why}");
    }
    // A host neither up nor known was forgotten (`fleet forget`): an assignment to it that
    // a round racing with the forget wrote is dropped here, and the app placed again.
    let known: BTreeSet<String> = get_prefix(client, "reading known hosts", &cfg.key("known/"))
        .await?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut current: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut existing: BTreeMap<(String, String), Vec<u8>> = BTreeMap::new();
    for (rest, v) in get_prefix(client, "reading assignments", &cfg.key("assign/")).await? {
        if let Some((host, app)) = rest.split_once('/') {
            if !up.contains_key(host) && !known.contains(host) {
                existing.insert((host.to_string(), app.to_string()), v);
                continue;
            }
            current
                .entry(app.to_string())
                .or_default()
                .insert(host.to_string());
            existing.insert((host.to_string(), app.to_string()), v);
        }
    }
    let whys: BTreeMap<String, Vec<u8>> = get_prefix(client, "reading reasons", &cfg.key("why/"))
        .await?
        .into_iter()
        .collect();
    let mut out = place::place(&apps, &up, &current);
    // Break before make: an application leaving a host that is up starts on its new host
    // only once the old host reports it gone (lost hosts are fenced instead).
    for (app, hosts) in out.assign.iter_mut() {
        let before = current.get(app).cloned().unwrap_or_default();
        let unit = unit_name(app);
        // Any host up whose colony-init still has it, assigned there or not any more.
        let still: Vec<&String> = present
            .iter()
            .filter(|(h, units)| !hosts.contains(*h) && units.contains(&unit))
            .map(|(h, _)| h)
            .collect();
        let adding: Vec<String> = hosts.difference(&before).cloned().collect();
        if !still.is_empty() && !adding.is_empty() {
            for h in &adding {
                hosts.remove(h);
            }
            let list: Vec<&str> = still.iter().map(|s| s.as_str()).collect();
            out.why.insert(
                app.clone(),
                format!("moving: waiting for it to stop on {}", list.join(", ")),
            );
        }
    }
    let mut ops = Vec::new();
    let mut wanted = BTreeSet::new();
    for (app, hosts) in &out.assign {
        let rec = &apps[app];
        let value = serde_json::to_vec(&Assignment {
            app: app.clone(),
            unit: rec.unit.clone(),
            movable: rec.placement.movable,
        })?;
        for h in hosts {
            wanted.insert((h.clone(), app.clone()));
            if existing.get(&(h.clone(), app.clone())) != Some(&value) {
                info!(app = %app, host = %h, "assigned");
                ops.push(TxnOp::put(
                    cfg.key(&format!("assign/{h}/{app}")),
                    value.clone(),
                    None,
                ));
            }
        }
    }
    for (h, app) in existing.keys() {
        if !wanted.contains(&(h.clone(), app.clone())) {
            info!(app = %app, host = %h, "unassigned");
            ops.push(TxnOp::delete(cfg.key(&format!("assign/{h}/{app}")), None));
        }
    }
    for (app, why) in &out.why {
        if whys.get(app).map(|v| v.as_slice()) != Some(why.as_bytes()) {
            ops.push(TxnOp::put(
                cfg.key(&format!("why/{app}")),
                why.clone(),
                None,
            ));
        }
    }
    for app in whys.keys() {
        if !out.why.contains_key(app) {
            ops.push(TxnOp::delete(cfg.key(&format!("why/{app}")), None));
        }
    }
    // etcd takes at most 128 operations in one transaction by default.
    for chunk in ops.chunks(100) {
        let txn = Txn::new()
            .when(vec![Compare::create_revision(
                key.key().to_vec(),
                CompareOp::Equal,
                key.rev(),
            )])
            .and_then(chunk.to_vec());
        let r = bounded("writing placement", REQUEST, client.txn(txn)).await?;
        if !r.succeeded() {
            anyhow::bail!("no longer the leader");
        }
    }
    Ok(())
}

//! The agent's side of assignments: make the units directory hold exactly what this host
//! was assigned and admits (less movable units while fenced), and say what it refuses.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use etcd_client::{Client, GetOptions};
use tracing::{info, warn};

use crate::admit::{self, HostFacts};
use crate::app::unit_name;
use crate::config::Config;
use crate::local;
use crate::once::Once;
use crate::policy::Refusal;
use crate::store::{bounded, REQUEST};

/// What this host refuses, kept between reconciliations.
#[derive(Debug, Default)]
pub struct Refusals {
    /// Said in the log once each.
    said: Once,
    /// app -> why, published in the host record (malformed keys are only logged).
    pub published: BTreeMap<String, String>,
}

/// Make the units directory hold exactly our admitted assignments. `fenced` is read after
/// the reads from etcd: the watchdog may fence meanwhile.
pub async fn reconcile(
    client: &mut Client,
    cfg: &Config,
    fenced: impl Fn() -> bool,
    agent_unit: Option<&str>,
    refusals: &Mutex<Refusals>,
) -> anyhow::Result<()> {
    let prefix = cfg.key(&format!("assign/{}/", cfg.host));
    let resp = bounded(
        "reading assignments",
        REQUEST,
        client.get(prefix.clone(), Some(GetOptions::new().with_prefix())),
    )
    .await?;
    let apps_prefix = cfg.key("apps/");
    let records = bounded(
        "reading application names",
        REQUEST,
        client.get(
            apps_prefix.clone(),
            Some(GetOptions::new().with_prefix().with_keys_only()),
        ),
    )
    .await?;
    let apps: BTreeSet<String> = records
        .kvs()
        .iter()
        .filter_map(|kv| kv.key().strip_prefix(apps_prefix.as_bytes()))
        .filter_map(|k| std::str::from_utf8(k).ok())
        .map(str::to_string)
        .collect();
    let assignments = resp.kvs().iter().map(|kv| {
        (
            kv.key()[prefix.len().min(kv.key().len())..].to_vec(),
            kv.value().to_vec(),
        )
    });
    let host = HostFacts::probe(&cfg.run_dir);
    let admitted = admit::admit(assignments, &apps, &cfg.policy, &host, &admit::groups_of);
    {
        let mut r = refusals.lock().unwrap_or_else(|p| p.into_inner());
        let now = admitted
            .refused
            .iter()
            .map(|(k, why)| (k.clone(), why.to_string()));
        for (key, why) in r.said.news(now) {
            warn!("assignment {key} refused: {why}");
        }
        r.published = admitted
            .refused
            .iter()
            .filter(|(_, why)| !matches!(why, Refusal::Malformed(_)))
            .map(|(k, why)| (k.clone(), why.to_string()))
            .collect();
    }
    let fenced = fenced();
    for (app, (a, text)) in &admitted.run {
        if fenced && a.movable {
            continue;
        }
        let unit = match (agent_unit, a.movable) {
            (Some(agent), true) => {
                local::guarded_unit(text, app, agent, &cfg.run_dir, cfg.fence_after())
                    .unwrap_or_else(|e| {
                        warn!("cannot guard {app} against a dead agent: {e}");
                        text.clone()
                    })
            }
            _ => text.clone(),
        };
        let text = local::unit_text(app, &unit, a.movable);
        match local::write_unit(&cfg.units_dir, app, &text) {
            Ok(true) => info!(unit = %unit_name(app), "assigned here: unit file written"),
            Ok(false) => {}
            Err(e) => warn!(unit = %unit_name(app), "cannot write the unit file: {e}"),
        }
    }
    for (app, movable) in local::owned_units(&cfg.units_dir) {
        let keep = admitted.run.contains_key(&app) && !(fenced && movable);
        if !keep {
            match local::remove_unit(&cfg.units_dir, &app) {
                Ok(()) => {
                    info!(unit = %unit_name(&app), "no longer assigned here: unit file removed")
                }
                Err(e) => warn!(unit = %unit_name(&app), "cannot remove the unit file: {e}"),
            }
        }
    }
    Ok(())
}

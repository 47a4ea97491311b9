//! The fleet, as colony-web shows it: its state read from etcd by colony-fleet's own code
//! (`colony_fleet::ctl::status`, as `colonyctl fleet status` reads it), start/stop of an
//! application, and each host's load and memory sampled for the graphs.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use colony_fleet::config::Config;
use colony_fleet::ctl::Status;
use etcd_client::Client;

/// A reading of the whole fleet takes at most this long (etcd down, a partition).
const READ: Duration = Duration::from_secs(10);

/// One sample of a host's figures.
#[derive(Debug, Clone, Copy)]
pub struct HostSample {
    pub at: SystemTime,
    /// 1-minute load average.
    pub load: f64,
    pub memory_used: u64,
}

pub struct Fleet {
    cfg: Config,
    /// One connection, made on first use and again after a failure.
    client: tokio::sync::Mutex<Option<Client>>,
    history: Mutex<HashMap<String, VecDeque<HostSample>>>,
}

/// What went wrong talking to the fleet, as one line for the page.
fn line(e: anyhow::Error) -> String {
    format!("{e:#}")
}

impl Fleet {
    /// The fleet.toml of colony-fleet (its endpoints, credentials, TLS and prefix).
    pub fn load(path: &Path) -> anyhow::Result<Fleet> {
        Ok(Fleet {
            cfg: Config::load(path)?,
            client: tokio::sync::Mutex::new(None),
            history: Mutex::new(HashMap::new()),
        })
    }

    async fn with_client<T>(
        &self,
        f: impl AsyncFnOnce(&mut Client, &Config) -> anyhow::Result<T>,
    ) -> Result<T, String> {
        let mut slot = self.client.lock().await;
        let run = async {
            if slot.is_none() {
                *slot = Some(colony_fleet::store::connect(&self.cfg).await?);
            }
            let Some(c) = slot.as_mut() else {
                anyhow::bail!("no connection to etcd");
            };
            f(c, &self.cfg).await
        };
        let r = match tokio::time::timeout(READ, run).await {
            Ok(r) => r.map_err(line),
            Err(_) => Err(format!("etcd did not answer within {READ:?}")),
        };
        if r.is_err() {
            // Connect again next time (another member may answer).
            *slot = None;
        }
        r
    }

    /// Hosts (up or lost, leader, labels, load, memory, units) and applications.
    pub async fn status(&self) -> Result<Status, String> {
        self.with_client(async |c, cfg| colony_fleet::ctl::status(c, cfg).await)
            .await
    }

    /// Start (`enable`) or stop an application fleet-wide; false when there is no such one.
    pub async fn set_enabled(&self, app: &str, enable: bool) -> Result<bool, String> {
        self.with_client(async |c, cfg| colony_fleet::ctl::set_enabled(c, cfg, app, enable).await)
            .await
    }

    /// Keep one sample of every host that is up, dropping what is older than `keep`.
    pub fn record(&self, s: &Status, at: SystemTime, keep: Duration) {
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        h.retain(|name, _| s.hosts.iter().any(|x| &x.name == name));
        for host in s.hosts.iter().filter(|h| h.up) {
            let (Some(load), Some(total), Some(avail)) =
                (host.load, host.memory_bytes, host.memory_available_bytes)
            else {
                continue;
            };
            let q = h.entry(host.name.clone()).or_default();
            q.push_back(HostSample {
                at,
                load: load[0],
                memory_used: total.saturating_sub(avail),
            });
            while q
                .front()
                .is_some_and(|x| at.duration_since(x.at).unwrap_or_default() > keep)
            {
                q.pop_front();
            }
        }
    }

    /// Call `changed` whenever a key of the fleet changes (a host joins, is lost or
    /// publishes its figures; an application is applied, placed, started or stopped),
    /// through an etcd watch on the fleet's prefix, for as long as colony-web runs; taken up
    /// again after a failure (a second, doubling to 30 s while it fails).
    pub async fn watch(&self, changed: impl Fn()) {
        let mut delay = Duration::from_secs(1);
        loop {
            let r: anyhow::Result<()> = async {
                let mut c = colony_fleet::store::connect(&self.cfg).await?;
                let opts = etcd_client::WatchOptions::new().with_prefix();
                let mut w = c.watch(self.cfg.prefix.clone(), Some(opts)).await?;
                // What changed while there was no watch.
                changed();
                delay = Duration::from_secs(1);
                while let Some(m) = w.message().await? {
                    if !m.events().is_empty() {
                        changed();
                    }
                }
                Ok(())
            }
            .await;
            if let Err(e) = r {
                tracing::debug!(error = %format!("{e:#}"), "fleet watch");
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }

    pub fn samples(&self, host: &str) -> Vec<HostSample> {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        h.get(host)
            .map(|q| q.iter().copied().collect())
            .unwrap_or_default()
    }
}

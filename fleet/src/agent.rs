//! The agent: holds this host's lease, publishes its state, turns its assignments into unit
//! files, fences its movable units when it cannot renew, and campaigns to lead placement.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, PutOptions, WatchOptions};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::Config;
use crate::local::{self, HostRecord};
use crate::reconcile::Refusals;
use crate::store::{bounded, connect, REQUEST};

/// What the session and the fencing watchdog share.
struct Shared {
    /// When the last renewal that etcd answered was sent: the lease lives at least `ttl`
    /// beyond it.
    renewed: Mutex<Instant>,
    fenced: AtomicBool,
    lease: AtomicI64,
    wake: tokio::sync::Notify,
    /// This agent's own unit (`COLONY_UNIT`), when colony-init runs it: movable units then
    /// require it and carry a heartbeat it beats at each renewal (`local::guarded_unit`).
    agent_unit: Option<String>,
    /// (run dir, units dir), for those beats.
    dirs: (std::path::PathBuf, std::path::PathBuf),
    /// READY=1 went to colony-init (once: after the first assignments are in place).
    ready_sent: AtomicBool,
    /// What this host refuses of its assignments (published in its record).
    refusals: Mutex<Refusals>,
}

impl Shared {
    fn renewed(&self) -> Instant {
        *self.renewed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record a renewal sent at `sent`; true when this lifts a fence. Beats the heartbeats
    /// of the guarded units: the lease holds.
    fn renew(&self, sent: Instant, fence_after: Duration) -> bool {
        *self.renewed.lock().unwrap_or_else(|p| p.into_inner()) = sent;
        self.wake.notify_one();
        if self.agent_unit.is_some() && Instant::now() < sent + fence_after {
            local::beat(&self.dirs.0, &self.dirs.1);
        }
        if Instant::now() < sent + fence_after {
            self.fenced.swap(false, Ordering::SeqCst)
        } else {
            false
        }
    }
}

/// Run the agent until SIGTERM or SIGINT.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    std::fs::create_dir_all(&cfg.units_dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", cfg.units_dir.display()))?;
    started();
    let shared = Arc::new(Shared {
        renewed: Mutex::new(Instant::now()),
        fenced: AtomicBool::new(false),
        lease: AtomicI64::new(0),
        wake: tokio::sync::Notify::new(),
        agent_unit: std::env::var("COLONY_UNIT").ok().filter(|u| !u.is_empty()),
        dirs: (cfg.run_dir.clone(), cfg.units_dir.clone()),
        ready_sent: AtomicBool::new(false),
        refusals: Mutex::new(Refusals::default()),
    });
    let watchdog = tokio::spawn(fence_watchdog(cfg.clone(), shared.clone()));
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    info!(host = %cfg.host, endpoints = %cfg.endpoints.join(","), ttl = ?cfg.ttl, "colony-fleet starting");
    let mut last_try;
    loop {
        last_try = Instant::now();
        tokio::select! {
            r = session(&cfg, &shared) => {
                if let Err(e) = r {
                    warn!("session with etcd ended: {e:#}; reconnecting");
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
        // The first retry at once (another member may answer), then a pause between
        // attempts, so a dead etcd is not hammered.
        let pause = if last_try.elapsed() > Duration::from_secs(5) {
            Duration::ZERO
        } else {
            Duration::from_secs(1)
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    watchdog.abort();
    // Leaving: our movable units will run elsewhere, so they stop here first, then the
    // lease goes at once (no one waits `ttl` for us).
    let removed = local::fence(&cfg.units_dir);
    if !removed.is_empty() {
        info!(?removed, "leaving the fleet: movable units stopped here");
    }
    let lease = shared.lease.load(Ordering::SeqCst);
    if lease != 0 {
        if let Ok(mut c) = connect(&cfg).await {
            let _ = bounded("revoking the lease", REQUEST, c.lease_revoke(lease)).await;
        }
    }
    Ok(())
}

/// Stops movable units when the lease has not been renewed for `fence_after`: etcd cannot
/// have let it lapse yet, so no other host has been given them yet.
async fn fence_watchdog(cfg: Config, shared: Arc<Shared>) {
    loop {
        let renewed = shared.renewed();
        let deadline = renewed + cfg.fence_after();
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {
                if shared.renewed() == renewed && !shared.fenced.swap(true, Ordering::SeqCst) {
                    let removed = local::fence(&cfg.units_dir);
                    warn!(?removed, "lease not renewed for {:?}: fenced, movable units stopped", cfg.fence_after());
                }
                if shared.renewed() == renewed {
                    shared.wake.notified().await;
                }
            }
            _ = shared.wake.notified() => {}
        }
    }
}

/// One connection's life: lease, registration, assignments, publishing, leadership.
async fn session(cfg: &Config, shared: &Arc<Shared>) -> anyhow::Result<()> {
    let mut client = connect(cfg).await?;
    // Keep the lease we had when it is still alive (a dropped connection, an etcd member
    // lost): nothing is fenced, re-placed or re-elected for a mere reconnection.
    let mut kept = None;
    let old = shared.lease.load(Ordering::SeqCst);
    if old != 0 {
        let sent = Instant::now();
        if let Ok((mut k, mut a)) =
            bounded("lease keep-alive", REQUEST, client.lease_keep_alive(old)).await
        {
            if k.keep_alive().await.is_ok() {
                if let Ok(Some(r)) = bounded("renewing the lease", REQUEST, a.message()).await {
                    if r.ttl() > 0 {
                        if shared.renew(sent, cfg.fence_after()) {
                            info!("lease renewed again: fence lifted");
                        }
                        kept = Some((old, k, a));
                    }
                }
            }
        }
    }
    let (lease, mut keeper, mut alive) = match kept {
        Some(k) => k,
        None => {
            let ttl = cfg.ttl.as_secs().max(2) as i64;
            let sent = Instant::now();
            let lease = bounded("granting a lease", REQUEST, client.lease_grant(ttl, None))
                .await?
                .id();
            shared.lease.store(lease, Ordering::SeqCst);
            shared.renew(sent, cfg.fence_after());
            let (k, a) =
                bounded("lease keep-alive", REQUEST, client.lease_keep_alive(lease)).await?;
            (lease, k, a)
        }
    };
    let known = serde_json::to_vec(&cfg.labels)?;
    bounded(
        "registering",
        REQUEST,
        client.put(cfg.key(&format!("known/{}", cfg.host)), known, None),
    )
    .await?;
    // Two agents must not share a host name: the second would steal the first's units.
    let me = bounded(
        "reading our host record",
        REQUEST,
        client.get(cfg.key(&format!("hosts/{}", cfg.host)), None),
    )
    .await?;
    if let Some(kv) = me.kvs().first() {
        if let Ok(other) = serde_json::from_slice::<HostRecord>(kv.value()) {
            if !other.agent.is_empty() && other.agent != local::agent_id(&cfg.units_dir) {
                anyhow::bail!(
                    "host name {} is taken by another agent ({}): give this one its own `host` in fleet.toml",
                    cfg.host,
                    other.agent
                );
            }
        }
    }
    let mut publisher = Publisher::default();
    publisher.publish(&mut client, cfg, lease, shared).await?;
    let assign = cfg.key(&format!("assign/{}/", cfg.host));
    let mut watch = bounded(
        "watching assignments",
        REQUEST,
        client.watch(assign.clone(), Some(WatchOptions::new().with_prefix())),
    )
    .await?;
    reconcile(&mut client, cfg, shared).await?;
    info!(lease = format!("{lease:x}"), "joined the fleet");
    if !shared.ready_sent.swap(true, Ordering::SeqCst) {
        // Up only once colony-init has applied what was just written: the guarded units
        // that wait for this agent must not start a copy no longer assigned here.
        if let Err(e) = local::reload(&cfg.run_dir).await {
            warn!("asking colony-init to apply the units directory: {e}");
        }
        local::notify_ready();
    }
    let mut leader = AbortOnDrop(tokio::spawn(crate::leader::lead(
        client.clone(),
        cfg.clone(),
        lease,
    )));
    // Renewals are cheap (no raft write): often enough that losing one, and reconnecting
    // to another member, still fits well before the fence.
    let mut renew = tokio::time::interval(cfg.ttl / 6);
    let mut publish = tokio::time::interval(cfg.publish_every);
    loop {
        tokio::select! {
            _ = renew.tick() => {
                let sent = Instant::now();
                keeper.keep_alive().await?;
                let resp = bounded("renewing the lease", cfg.ttl / 6, alive.message()).await?;
                match resp {
                    Some(r) if r.ttl() > 0 => {
                        if shared.renew(sent, cfg.fence_after()) {
                            info!("lease renewed again: fence lifted");
                            reconcile(&mut client, cfg, shared).await?;
                        }
                    }
                    Some(_) => anyhow::bail!("the lease expired"),
                    None => anyhow::bail!("etcd closed the keep-alive stream"),
                }
            }
            m = watch.message() => {
                m?.ok_or_else(|| anyhow::anyhow!("etcd closed the assignment watch"))?;
                reconcile(&mut client, cfg, shared).await?;
            }
            _ = publish.tick() => publisher.publish(&mut client, cfg, lease, shared).await?,
            r = &mut leader.0 => {
                match r {
                    Ok(Ok(())) => anyhow::bail!("leadership ended"),
                    Ok(Err(e)) => return Err(e.context("leading placement")),
                    Err(e) => anyhow::bail!("the leader task failed: {e}"),
                }
            }
        }
    }
}

/// Make the units directory hold exactly our admitted assignments (see `reconcile`).
async fn reconcile(client: &mut Client, cfg: &Config, shared: &Shared) -> anyhow::Result<()> {
    crate::reconcile::reconcile(
        client,
        cfg,
        || shared.fenced.load(Ordering::SeqCst),
        shared.agent_unit.as_deref(),
        &shared.refusals,
    )
    .await
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Default)]
struct Publisher {
    last: Option<HostRecord>,
    last_put: Option<Instant>,
}

impl Publisher {
    /// Publish this host's record when it changed: at once for unit states, labels and
    /// errors, at most every `stats_every` for statistics alone.
    async fn publish(
        &mut self,
        client: &mut Client,
        cfg: &Config,
        lease: i64,
        shared: &Shared,
    ) -> anyhow::Result<()> {
        let (units, error) = match local::unit_status(&cfg.run_dir).await {
            Ok(u) => (u, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let (mem, avail) = local::meminfo();
        let round = |x: f64| (x * 100.0).round() / 100.0;
        let load = local::loadavg();
        let rec = HostRecord {
            name: cfg.host.clone(),
            labels: cfg.labels.clone(),
            cpus: local::cpus(),
            load: [round(load[0]), round(load[1]), round(load[2])],
            memory_bytes: mem,
            memory_available_bytes: avail,
            units,
            error,
            agent: local::agent_id(&cfg.units_dir),
            refused: shared
                .refusals
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .published
                .clone(),
        };
        let due = match (&self.last, self.last_put) {
            (Some(last), Some(at)) => {
                !last.same_identity(&rec) || (*last != rec && at.elapsed() >= cfg.stats_every)
            }
            _ => true,
        };
        if due {
            let value = serde_json::to_vec(&rec)?;
            bounded(
                "publishing the host",
                REQUEST,
                client.put(
                    cfg.key(&format!("hosts/{}", cfg.host)),
                    value,
                    Some(PutOptions::new().with_lease(lease)),
                ),
            )
            .await?;
            self.last = Some(rec);
            self.last_put = Some(Instant::now());
        }
        Ok(())
    }
}

static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// When this agent started.
pub(crate) fn started() -> Instant {
    *STARTED.get_or_init(Instant::now)
}

//! The etcd side: connecting (TLS, user/password), and the keys of a fleet.
//!
//! ```text
//! P/hosts/HOST          HostRecord, under the host's lease: up while it lives (a record
//!                       under no lease, or with insane values, is not: `records::host_up`)
//! P/known/HOST          labels of every host that ever joined (a host not up is "lost"),
//!                       until `fleet forget HOST` removes it and its assignments
//! P/apps/APP            AppRecord
//! P/assign/HOST/APP     Assignment, written by the leader only; HOST runs it only when APP
//!                       is an application name with a record and HOST's policy allows it
//! P/why/APP             why an application runs on fewer hosts than it should (leader)
//! P/election            etcd election: the leader's key and value (its host name)
//! ```

use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};

use etcd_client::{Certificate, Client, ConnectOptions, GetOptions, Identity, TlsOptions};

use crate::config::Config;

pub async fn connect(cfg: &Config) -> anyhow::Result<Client> {
    let mut opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(3))
        // HTTP/2 pings find a dead link (a cut cable) on the streams too.
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
        .with_keep_alive_while_idle(true);
    if let Some((u, p)) = &cfg.user {
        // etcd's tokens expire; long-lived agents take a new one when that happens.
        opts = opts
            .with_user(u.clone(), p.clone())
            .with_auto_token_refresh(true);
    }
    if let Some(t) = &cfg.tls {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))
        };
        let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(read(&t.ca)?));
        if let (Some(c), Some(k)) = (&t.cert, &t.key) {
            tls = tls.identity(Identity::from_pem(read(c)?, read(k)?));
        }
        if let Some(d) = &t.domain {
            tls = tls.domain_name(d.clone());
        }
        opts = opts.with_tls(tls);
    }
    // One member at a time, the first that answers a (linearizable) read: a dead member,
    // or one cut off from the quorum, is skipped. A client balanced over every endpoint
    // would keep sending requests to the dead one.
    let n = cfg.endpoints.len().max(1);
    let start = NEXT.load(Ordering::SeqCst);
    let mut failed = Vec::new();
    for i in 0..n {
        let idx = (start + i) % n;
        let Some(ep) = cfg.endpoints.get(idx) else {
            break;
        };
        match try_one(cfg, ep, opts.clone()).await {
            Ok(c) => {
                // The next connection (after this one failed) starts with the next member.
                NEXT.store(idx + 1, Ordering::SeqCst);
                return Ok(c);
            }
            Err(e) => failed.push(format!("{ep}: {}", short(&e))),
        }
    }
    if failed.is_empty() {
        anyhow::bail!("no etcd endpoints: set `endpoints` in fleet.toml or give --endpoints");
    }
    anyhow::bail!(
        "cannot reach etcd ({}): check `endpoints`, [tls] and the user in fleet.toml",
        failed.join("; ")
    )
}

/// One line of what went wrong: gRPC errors print their whole chain.
fn short(e: &anyhow::Error) -> String {
    let s = format!("{e:#}");
    for (needle, says) in [
        ("ConnectionRefused", "connection refused"),
        ("HostUnreachable", "host unreachable"),
        ("NetworkUnreachable", "network unreachable"),
        ("certificate", "TLS certificate refused"),
        ("authentication failed", "authentication failed"),
        ("user name is empty", "authentication required"),
        ("permission denied", "permission denied"),
    ] {
        if s.contains(needle) {
            return says.to_string();
        }
    }
    if let Some(i) = s.find("message: \"") {
        let rest = &s[i + 10..];
        if let Some(j) = rest.find('"') {
            return rest[..j].to_string();
        }
    }
    s.chars().take(160).collect()
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

async fn try_one(cfg: &Config, ep: &str, opts: ConnectOptions) -> anyhow::Result<Client> {
    let mut c =
        match tokio::time::timeout(Duration::from_secs(5), Client::connect([ep], Some(opts))).await
        {
            Ok(r) => r?,
            Err(_) => anyhow::bail!("does not answer"),
        };
    bounded(
        "reading the fleet",
        REQUEST,
        c.get(
            cfg.key("known/"),
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_keys_only()
                    .with_limit(1),
            ),
        ),
    )
    .await?;
    Ok(c)
}

/// Bound a request: a partitioned link must not hang the agent.
pub async fn bounded<T, E: Into<anyhow::Error>>(
    what: &str,
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(|e| e.into().context(what.to_string())),
        Err(_) => anyhow::bail!("{what}: etcd did not answer within {limit:?}"),
    }
}

pub const REQUEST: Duration = Duration::from_secs(3);

//! What colony-web keeps: sessions, failed logins, the event fan-out, sampled history.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::broadcast;
use units::proto::{Event, TimerStatus, UnitStatus, Verb};

use crate::config::Config;
use crate::fifo;
use crate::fleet::Fleet;
use crate::table::{Need, Table};
use crate::users::{Role, Users};

/// A browser's login.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: Role,
    /// The token every action of this session must carry.
    pub csrf: String,
    pub expires: Instant,
}

/// One sample of a unit's cgroup figures, packed (24 bytes, not 48): 1000 units keep 360
/// each for an hour of history.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Milliseconds since the epoch.
    at_ms: u64,
    /// `NONE`: not known.
    memory: u64,
    cpu_usec: u64,
}

const NONE: u64 = u64::MAX;

impl Sample {
    pub fn new(at: SystemTime, memory: Option<u64>, cpu_usec: Option<u64>) -> Sample {
        let at_ms = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Sample {
            at_ms,
            memory: memory.unwrap_or(NONE),
            cpu_usec: cpu_usec.unwrap_or(NONE),
        }
    }

    pub fn at(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.at_ms)
    }

    pub fn memory(&self) -> Option<u64> {
        (self.memory != NONE).then_some(self.memory)
    }

    pub fn cpu_usec(&self) -> Option<u64> {
        (self.cpu_usec != NONE).then_some(self.cpu_usec)
    }
}

pub struct App {
    pub cfg: Config,
    pub users: Users,
    pub tls: bool,
    pub sessions: Mutex<HashMap<String, Session>>,
    /// Failed logins per user name: how many in a row, and when the last was.
    pub failures: Mutex<HashMap<String, (u32, Instant)>>,
    /// Event lines (JSON) from colony-init's stream.
    pub events: broadcast::Sender<Arc<str>>,
    pub history: Mutex<HashMap<String, VecDeque<Sample>>>,
    /// Every unit, kept current by the event stream.
    pub table: Table,
    /// With `fleet = FILE` in web.toml: the fleet of that colony-fleet configuration.
    pub fleet: Option<Fleet>,
}

pub type Shared = Arc<App>;

/// Sessions last this long.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// At most this many sessions (the oldest go first).
const MAX_SESSIONS: usize = 1024;

pub fn token() -> String {
    let mut b = [0u8; 32];
    let _ = getrandom::getrandom(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl App {
    pub fn new(cfg: Config, users: Users, fleet: Option<Fleet>) -> Shared {
        let (events, _) = broadcast::channel(4096);
        Arc::new(App {
            tls: cfg.tls.is_some(),
            table: Table::new(cfg.sample_every),
            cfg,
            users,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            events,
            history: Mutex::new(HashMap::new()),
            fleet,
        })
    }

    pub fn run_dir(&self) -> PathBuf {
        self.cfg.run_dir.clone()
    }

    pub fn new_session(&self, user: &str, role: Role) -> (String, Session) {
        let s = Session {
            user: user.to_string(),
            role,
            csrf: token(),
            expires: Instant::now() + SESSION_TTL,
        };
        let t = token();
        let mut all = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        all.retain(|_, s| s.expires > now);
        if all.len() >= MAX_SESSIONS {
            if let Some(k) = all
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                all.remove(&k);
            }
        }
        all.insert(t.clone(), s.clone());
        (t, s)
    }

    pub fn session(&self, token: &str) -> Option<Session> {
        let all = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        all.get(token)
            .filter(|s| s.expires > Instant::now())
            .cloned()
    }

    pub fn end_session(&self, token: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }

    /// How long to hold a login attempt for `user` back: doubles with each failure in a
    /// row (from 0.5 s, at most 8 s), forgotten after 15 minutes.
    pub fn login_delay(&self, user: &str) -> Duration {
        let f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match f.get(user) {
            Some((n, at)) if at.elapsed() < Duration::from_secs(900) && *n > 0 => {
                Duration::from_millis(500u64 << (n - 1).min(4))
            }
            _ => Duration::ZERO,
        }
    }

    pub fn login_failed(&self, user: &str) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if f.len() > 10_000 {
            f.clear();
        }
        let e = f.entry(user.to_string()).or_insert((0, Instant::now()));
        e.0 = e.0.saturating_add(1);
        e.1 = Instant::now();
    }

    pub fn login_ok(&self, user: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(user);
    }

    /// Take one sample of every unit (from `status`), dropping what is older than history.
    pub fn record(&self, units: &[UnitStatus], at: SystemTime) {
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        h.retain(|name, _| units.iter().any(|u| &u.name == name));
        let keep = self.cfg.history;
        for u in units {
            let q = h.entry(u.name.clone()).or_default();
            q.push_back(Sample::new(at, u.memory_bytes, u.cpu_usec));
            while q
                .front()
                .is_some_and(|s| at.duration_since(s.at()).unwrap_or_default() > keep)
            {
                q.pop_front();
            }
        }
    }

    pub fn samples(&self, unit: &str) -> Vec<Sample> {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        h.get(unit)
            .map(|q| q.iter().copied().collect())
            .unwrap_or_default()
    }

    /// CPU % over the last two samples.
    pub fn cpu_percent(&self, unit: &str) -> Option<f64> {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let q = h.get(unit)?;
        let n = q.len();
        if n < 2 {
            return None;
        }
        cpu_between(&q[n - 2], &q[n - 1])
    }
}

pub fn cpu_between(a: &Sample, b: &Sample) -> Option<f64> {
    let dt = b.at().duration_since(a.at()).ok()?.as_micros() as f64;
    let du = b.cpu_usec()?.checked_sub(a.cpu_usec()?)? as f64;
    (dt > 0.0).then(|| du / dt * 100.0)
}

/// `status` of every unit, from colony-init.
pub async fn status(app: &Shared, targets: Vec<String>) -> Result<units::proto::Reply, String> {
    ask(app, Verb::Status, targets, Duration::from_secs(10)).await
}

/// Every unit: the table, with what it needs read again first (see `table`).
pub async fn all_units(app: &Shared) -> Result<Arc<Vec<UnitStatus>>, String> {
    let mut ticket = app.table.ticket();
    let read = match &ticket.need {
        Need::Nothing => return Ok(app.table.units()),
        Need::Some(names) => {
            let r = status(app, names.clone()).await?;
            if r.data.is_null() {
                // One of them is gone (its event on its way): read them all.
                ticket = app.table.ticket_all();
                units_of(status(app, Vec::new()).await?)
            } else {
                units_of(r)
            }
        }
        Need::All => units_of(status(app, Vec::new()).await?),
    };
    Ok(app.table.merge(&ticket, read))
}

/// The timers: kept until an event of theirs (or 10 s).
pub async fn all_timers(app: &Shared) -> Result<Arc<Vec<TimerStatus>>, String> {
    if let Some(t) = app.table.timers() {
        return Ok(t);
    }
    let seq = app.table.seq();
    let r = ask(app, Verb::Timers, Vec::new(), Duration::from_secs(10)).await?;
    Ok(app
        .table
        .set_timers(seq, serde_json::from_value(r.data).unwrap_or_default()))
}

/// One request to colony-init, on a blocking thread.
pub async fn ask(
    app: &Shared,
    verb: Verb,
    args: Vec<String>,
    timeout: Duration,
) -> Result<units::proto::Reply, String> {
    let run = app.run_dir();
    let bytes = tokio::task::spawn_blocking(move || fifo::request(&run, verb, &args, timeout))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("colony-init's answer is not understood: {e}"))
}

/// Typed units out of a status reply.
pub fn units_of(r: units::proto::Reply) -> Vec<UnitStatus> {
    serde_json::from_value(r.data).unwrap_or_default()
}

/// Follow colony-init's event stream for as long as colony-web runs, on a thread of its
/// own; each event line goes to `app.events`. Taken up again when it ends (dropped, or
/// colony-init restarted), after a second.
pub fn pump_events(app: Shared) {
    std::thread::spawn(move || {
        let name = format!("web-events-{}", std::process::id());
        loop {
            let mut first = true;
            let r = fifo::subscribe(&app.cfg.run_dir, &name, |line| {
                if std::mem::take(&mut first) {
                    match serde_json::from_slice::<units::proto::Subscribed>(line) {
                        Ok(s) => {
                            if s.lost > 0 {
                                tracing::warn!(
                                    lost = s.lost,
                                    "events lost (colony-web fell behind)"
                                );
                            }
                            app.table.reset(s.data);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "the event stream's first line is not understood")
                        }
                    }
                    // Tell pages to reload their table: what they show may be stale.
                    let _ = app.events.send(Arc::from("{\"resync\":true}"));
                    return true;
                }
                if let Ok(e) = serde_json::from_slice::<Event>(line) {
                    app.table.apply(&e);
                }
                let text = String::from_utf8_lossy(line);
                let _ = app.events.send(Arc::from(text.trim_end()));
                true
            });
            app.table.lost();
            if let Err(e) = r {
                tracing::warn!(error = %e, "event stream");
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
}

/// With a fleet: `{"fleet":true}` on the event stream whenever the fleet changes, so that
/// its open pages read it again.
pub fn watch_fleet(app: Shared) {
    if app.fleet.is_none() {
        return;
    }
    tokio::spawn(async move {
        if let Some(f) = &app.fleet {
            f.watch(|| {
                let _ = app.events.send(Arc::from("{\"fleet\":true}"));
            })
            .await;
        }
    });
}

/// Sample every unit's memory and CPU (and the fleet's hosts' load and memory) every
/// `sample_every` (none when it is off).
pub fn sample(app: Shared) {
    let Some(every) = app.cfg.sample_every else {
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // A read of every unit: the graphs' sample, and the table's figures.
            let ticket = app.table.ticket_all();
            if let Ok(r) = status(&app, Vec::new()).await {
                let units = units_of(r);
                app.record(&units, SystemTime::now());
                app.table.merge(&ticket, units);
            }
            if let Some(f) = &app.fleet {
                if let Ok(s) = f.status().await {
                    f.record(&s, SystemTime::now(), app.cfg.history);
                }
            }
        }
    });
}

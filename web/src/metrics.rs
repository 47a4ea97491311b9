//! `/metrics`: every unit and timer in Prometheus text format (prometheus-client).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use units::proto::{TimerStatus, UnitStatus};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UnitLabels {
    unit: String,
    tag: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    unit: String,
    tag: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TimerLabels {
    unit: String,
}

type G = Family<UnitLabels, Gauge>;
type F = Family<UnitLabels, Gauge<f64, AtomicU64>>;

const STATES: [&str; 10] = [
    "stopped", "starting", "running", "stopping", "backoff", "exited", "failed", "waiting",
    "invalid", "skipped",
];

pub fn render(units: &[UnitStatus], timers: &[TimerStatus]) -> String {
    let mut reg = Registry::with_prefix("colony");
    let up = G::default();
    let state = Family::<StateLabels, Gauge>::default();
    let restarts = G::default();
    let memory = G::default();
    let cpu = F::default();
    let tasks = G::default();
    let exit_code = G::default();
    let healthy = G::default();
    reg.register(
        "unit_up",
        "1 when the unit is running and ready",
        up.clone(),
    );
    reg.register(
        "unit_state",
        "1 for the unit's current state",
        state.clone(),
    );
    reg.register(
        "unit_restarts",
        "automatic restarts so far",
        restarts.clone(),
    );
    reg.register(
        "unit_memory_bytes",
        "memory of the unit's cgroup",
        memory.clone(),
    );
    reg.register(
        "unit_cpu_seconds",
        "CPU time of the unit's cgroup",
        cpu.clone(),
    );
    reg.register("unit_tasks", "tasks in the unit's cgroup", tasks.clone());
    reg.register(
        "unit_last_exit_code",
        "exit code of the last process",
        exit_code.clone(),
    );
    reg.register(
        "unit_healthy",
        "1 healthy, 0 not (units with a health check)",
        healthy.clone(),
    );
    for u in units {
        let l = UnitLabels {
            unit: u.name.clone(),
            tag: u.tags.join(","),
        };
        up.get_or_create(&l)
            .set((u.state == "running" && u.ready) as i64);
        for s in STATES {
            state
                .get_or_create(&StateLabels {
                    unit: l.unit.clone(),
                    tag: l.tag.clone(),
                    state: s.to_string(),
                })
                .set((u.state == s) as i64);
        }
        restarts.get_or_create(&l).set(u.restarts as i64);
        if let Some(m) = u.memory_bytes {
            memory.get_or_create(&l).set(m as i64);
        }
        if let Some(c) = u.cpu_usec {
            cpu.get_or_create(&l).set(c as f64 / 1e6);
        }
        if let Some(t) = u.tasks {
            tasks.get_or_create(&l).set(t as i64);
        }
        if let Some(c) = u.last_exit.as_ref().and_then(|e| e.code) {
            exit_code.get_or_create(&l).set(c as i64);
        }
        if let Some(h) = &u.health {
            healthy
                .get_or_create(&l)
                .set(h.starts_with("healthy") as i64);
        }
    }
    let last_run = Family::<TimerLabels, Gauge>::default();
    let last_ok = Family::<TimerLabels, Gauge>::default();
    reg.register(
        "timer_last_run_timestamp_seconds",
        "when the timer's last run started",
        last_run.clone(),
    );
    reg.register(
        "timer_last_result_ok",
        "1 when the last run exited 0",
        last_ok.clone(),
    );
    for t in timers {
        let l = TimerLabels {
            unit: t.name.clone(),
        };
        if let Some(ts) = t
            .last
            .as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        {
            last_run.get_or_create(&l).set(ts.timestamp());
        }
        if let Some(r) = &t.last_result {
            last_ok
                .get_or_create(&l)
                .set(r.starts_with("exit 0") as i64);
        }
    }
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
    out
}

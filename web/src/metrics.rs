//! `/metrics`: every unit and timer in Prometheus text format (version 0.0.4), written
//! straight from the table colony-web holds: no registry built and encoded at each scrape.

use std::fmt::Write;

use units::proto::{TimerStatus, UnitStatus};

const STATES: [&str; 10] = [
    "stopped", "starting", "running", "stopping", "backoff", "exited", "failed", "waiting",
    "invalid", "skipped",
];

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
}

fn head(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(
        out,
        "# HELP colony_{name} {help}.\n# TYPE colony_{name} gauge"
    );
}

/// `colony_NAME{unit="..",tag=".."` (the brace left open for more labels).
fn unit_series(out: &mut String, name: &str, u: &UnitStatus) {
    out.push_str("colony_");
    out.push_str(name);
    out.push_str("{unit=\"");
    label(out, &u.name);
    out.push_str("\",tag=\"");
    for (i, t) in u.tags.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        label(out, t);
    }
    out.push('"');
}

/// One gauge a unit, for the units it has a value for.
fn family(
    out: &mut String,
    units: &[UnitStatus],
    name: &str,
    help: &str,
    value: impl Fn(&UnitStatus) -> Option<String>,
) {
    head(out, name, help);
    for u in units {
        if let Some(v) = value(u) {
            unit_series(out, name, u);
            out.push_str("} ");
            out.push_str(&v);
            out.push('\n');
        }
    }
}

pub fn render(units: &[UnitStatus], timers: &[TimerStatus]) -> String {
    // About 700 bytes a unit, most of them its ten state series.
    let mut out = String::with_capacity(1024 + units.len() * 800);
    let b = |x: bool| Some(if x { "1" } else { "0" }.to_string());
    family(
        &mut out,
        units,
        "unit_up",
        "1 when the unit is running and ready",
        |u| b(u.state == "running" && u.ready),
    );
    head(&mut out, "unit_state", "1 for the unit's current state");
    for u in units {
        for s in STATES {
            unit_series(&mut out, "unit_state", u);
            let _ = writeln!(out, ",state=\"{s}\"}} {}", (u.state == s) as u8);
        }
    }
    family(
        &mut out,
        units,
        "unit_restarts",
        "automatic restarts so far",
        |u| Some(u.restarts.to_string()),
    );
    family(
        &mut out,
        units,
        "unit_memory_bytes",
        "memory of the unit's cgroup",
        |u| u.memory_bytes.map(|m| m.to_string()),
    );
    family(
        &mut out,
        units,
        "unit_cpu_seconds",
        "CPU time of the unit's cgroup",
        |u| {
            u.cpu_usec
                .map(|c| format!("{}.{:06}", c / 1_000_000, c % 1_000_000))
        },
    );
    family(
        &mut out,
        units,
        "unit_tasks",
        "tasks in the unit's cgroup",
        |u| u.tasks.map(|t| t.to_string()),
    );
    family(
        &mut out,
        units,
        "unit_last_exit_code",
        "exit code of the last process",
        |u| {
            u.last_exit
                .as_ref()
                .and_then(|e| e.code)
                .map(|c| c.to_string())
        },
    );
    family(
        &mut out,
        units,
        "unit_healthy",
        "1 healthy, 0 not (units with a health check)",
        |u| u.health.as_ref().and_then(|h| b(h.starts_with("healthy"))),
    );
    let timer = |out: &mut String, name: &str, t: &TimerStatus, v: i64| {
        let _ = write!(out, "colony_{name}{{unit=\"");
        label(out, &t.name);
        let _ = writeln!(out, "\"}} {v}");
    };
    head(
        &mut out,
        "timer_last_run_timestamp_seconds",
        "when the timer's last run started",
    );
    for t in timers {
        if let Some(ts) = t
            .last
            .as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        {
            timer(
                &mut out,
                "timer_last_run_timestamp_seconds",
                t,
                ts.timestamp(),
            );
        }
    }
    head(
        &mut out,
        "timer_last_result_ok",
        "1 when the last run exited 0",
    );
    for t in timers {
        if let Some(r) = &t.last_result {
            timer(
                &mut out,
                "timer_last_result_ok",
                t,
                r.starts_with("exit 0") as i64,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_escape_their_labels_and_carry_the_figures() {
        let u = UnitStatus {
            name: "a".into(),
            state: "running".into(),
            ready: true,
            tags: vec!["we\"b".into(), "x\\y\nz".into()],
            cpu_usec: Some(1_500_042),
            memory_bytes: Some(4096),
            ..UnitStatus::default()
        };
        let t = TimerStatus {
            name: "job".into(),
            last: Some("2026-01-01T00:00:10Z".into()),
            last_result: Some("exit 0 in 1s".into()),
            ..TimerStatus::default()
        };
        let m = render(&[u], &[t]);
        let tag = r#"tag="we\"b,x\\y\nz""#;
        assert!(
            m.contains(&format!("colony_unit_up{{unit=\"a\",{tag}}} 1\n")),
            "{m}"
        );
        assert!(m.contains(&format!(
            "colony_unit_state{{unit=\"a\",{tag},state=\"running\"}} 1\n"
        )));
        assert!(m.contains(&format!(
            "colony_unit_state{{unit=\"a\",{tag},state=\"failed\"}} 0\n"
        )));
        assert!(m.contains(&format!(
            "colony_unit_cpu_seconds{{unit=\"a\",{tag}}} 1.500042\n"
        )));
        assert!(m.contains(&format!(
            "colony_unit_memory_bytes{{unit=\"a\",{tag}}} 4096\n"
        )));
        assert!(!m.contains("colony_unit_tasks{"), "no figure, no series");
        assert!(m.contains("colony_timer_last_run_timestamp_seconds{unit=\"job\"} 1767225610\n"));
        assert!(m.contains("colony_timer_last_result_ok{unit=\"job\"} 1\n"));
        assert!(m.contains("# TYPE colony_unit_healthy gauge\n"));
        // Every line a comment or `name{labels} value`.
        for l in m.lines() {
            assert!(l.starts_with('#') || l.rsplit_once("} ").is_some(), "{l}");
        }
    }
}

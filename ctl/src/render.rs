//! Tables for people: `status` and `timers`.

use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use units::proto::{LastExit, TimerStatus, UnitStatus};

/// `3s`, `5m12s`, `2h03m`, `3d04h`, `250ms`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86400 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d{:02}h", s / 86400, (s % 86400) / 3600)
    }
}

/// `512B`, `12.3K`, `4.5M`, `1.2G` (powers of 1024, as `memory_max` is written).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if v < 10.0 {
        format!("{v:.1}{}", UNITS[i])
    } else {
        format!("{v:.0}{}", UNITS[i])
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// How long ago `since` was, e.g. `5m12s ago`; the raw text when it does not parse.
pub fn ago(since: &str, now: DateTime<Utc>) -> String {
    match parse_time(since) {
        Some(t) => format!("{} ago", duration((now - t).to_std().unwrap_or_default())),
        None if since.is_empty() => "-".into(),
        None => since.to_string(),
    }
}

/// `exit 1`, `SIGKILL (oom)`, `exec failed`, `-`.
pub fn last_exit(e: Option<&LastExit>) -> String {
    let Some(e) = e else { return "-".into() };
    let mut s = match (&e.code, &e.signal) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(sig)) => sig.clone(),
        (None, None) => String::new(),
    };
    if let Some(r) = &e.reason {
        if s.is_empty() {
            s = match r.as_str() {
                "exec" => "exec failed".into(),
                other => other.to_string(),
            };
        } else {
            s = format!("{s} ({r})");
        }
    }
    if s.is_empty() {
        "-".into()
    } else {
        s
    }
}

/// Columns padded to their widest cell; the last column is not padded.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(c);
                let pad = widths[i] - c.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn state(u: &UnitStatus) -> String {
    let mut s = u.state.clone();
    if !u.enabled && matches!(u.state.as_str(), "stopped" | "exited") {
        s.push_str(" (disabled)");
    }
    if let Some(h) = &u.health {
        if h != "good" {
            s = format!("{s} (health {h})");
        }
    }
    s
}

/// The `status` table: one row per unit, and below it the lines that need attention.
pub fn status(units: &[UnitStatus], now: DateTime<Utc>) -> String {
    let mut rows = vec![vec![
        "NAME".to_string(),
        "STATE".into(),
        "PID".into(),
        "RESTARTS".into(),
        "SINCE".into(),
        "LAST EXIT".into(),
        "MEMORY".into(),
    ]];
    let mut notes: Vec<(usize, Vec<String>)> = Vec::new();
    for u in units {
        rows.push(vec![
            u.name.clone(),
            state(u),
            u.pid.map_or("-".into(), |p| p.to_string()),
            u.restarts.to_string(),
            ago(&u.since, now),
            last_exit(u.last_exit.as_ref()),
            u.memory_bytes.map_or("-".into(), bytes),
        ]);
        let mut n = Vec::new();
        if let Some(e) = &u.error {
            n.push(format!("error: {e}"));
        }
        if let Some(d) = u.last_exit.as_ref().and_then(|e| e.detail.as_ref()) {
            n.push(format!("last exit: {d}"));
        }
        if let Some(t) = &u.status_text {
            n.push(format!("status: {t}"));
        }
        if let Some(hb) = &u.heartbeat {
            let age = hb.age_ms.map_or("never".into(), |ms| {
                format!("{} ago", duration(Duration::from_millis(ms)))
            });
            n.push(format!("heartbeat: {} (last beat {age})", hb.file));
        }
        for w in &u.warnings {
            n.push(format!("warning: {w}"));
        }
        if !n.is_empty() {
            notes.push((rows.len() - 1, n));
        }
    }
    // Interleave: the notes of a unit go right below its row.
    let table = table(&rows);
    let mut out = String::new();
    let mut notes = notes.into_iter().peekable();
    for (i, line) in table.lines().enumerate() {
        out.push_str(line);
        out.push('\n');
        if let Some((_, n)) = notes.next_if(|(row, _)| *row == i) {
            for l in n {
                out.push_str("    ");
                out.push_str(&l);
                out.push('\n');
            }
        }
    }
    out
}

fn local(t: &str) -> String {
    match parse_time(t) {
        Some(t) => t
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        None => t.to_string(),
    }
}

/// The `timers` table.
pub fn timers(timers: &[TimerStatus], now: DateTime<Utc>) -> String {
    let mut rows = vec![vec![
        "UNIT".to_string(),
        "SCHEDULE".into(),
        "NEXT".into(),
        "LEFT".into(),
        "LAST".into(),
        "RESULT".into(),
        "SKIPPED".into(),
    ]];
    for t in timers {
        let next = t.next.as_deref();
        let left = match next.and_then(parse_time) {
            Some(n) if n > now => duration((n - now).to_std().unwrap_or_default()),
            Some(_) => "now".into(),
            None => "-".into(),
        };
        let result = if t.running {
            "running".to_string()
        } else {
            t.last_result.clone().unwrap_or_else(|| "-".into())
        };
        rows.push(vec![
            t.name.clone(),
            t.schedule.clone(),
            next.map_or("-".into(), local),
            left,
            t.last.as_deref().map_or("-".into(), local),
            result,
            match &t.last_skip {
                Some(s) if t.skipped > 0 => format!("{} (last {})", t.skipped, local(s)),
                _ => t.skipped.to_string(),
            },
        ]);
    }
    table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use units::proto::HeartbeatStatus;

    fn now() -> DateTime<Utc> {
        parse_time("2026-11-23T12:00:00Z").unwrap()
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(duration(Duration::from_millis(250)), "250ms");
        assert_eq!(duration(Duration::from_secs(3)), "3s");
        assert_eq!(duration(Duration::from_secs(312)), "5m12s");
        assert_eq!(duration(Duration::from_secs(2 * 3600 + 180)), "2h03m");
        assert_eq!(duration(Duration::from_secs(3 * 86400 + 4 * 3600)), "3d04h");
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(12 * 1024 * 1024 + 300 * 1024), "12M");
        assert_eq!(bytes(4 * 1024 * 1024 + 512 * 1024), "4.5M");
        assert_eq!(bytes(1 << 30), "1.0G");
    }

    #[test]
    fn last_exit_forms() {
        assert_eq!(last_exit(None), "-");
        let e = |code, signal: Option<&str>, reason: Option<&str>| LastExit {
            code,
            signal: signal.map(Into::into),
            reason: reason.map(Into::into),
            detail: None,
        };
        assert_eq!(last_exit(Some(&e(Some(1), None, None))), "exit 1");
        assert_eq!(
            last_exit(Some(&e(None, Some("SIGKILL"), Some("oom")))),
            "SIGKILL (oom)"
        );
        assert_eq!(last_exit(Some(&e(None, None, Some("exec")))), "exec failed");
    }

    #[test]
    fn status_table_aligns_and_shows_what_needs_attention() {
        let units = vec![
            UnitStatus {
                name: "web".into(),
                state: "running".into(),
                pid: Some(4242),
                restarts: 3,
                since: "2026-11-23T11:54:48Z".into(),
                memory_bytes: Some(3 * 1024 * 1024),
                enabled: true,
                heartbeat: Some(HeartbeatStatus {
                    file: "/run/colony/heartbeat/web".into(),
                    age_ms: Some(1500),
                }),
                ..Default::default()
            },
            UnitStatus {
                name: "broken-unit".into(),
                state: "invalid".into(),
                since: "2026-11-23T11:59:58.500+00:00".into(),
                error: Some("broken-unit.unit:3:1: exec: required".into()),
                last_exit: Some(LastExit {
                    reason: Some("exec".into()),
                    detail: Some("/nope: No such file or directory".into()),
                    ..Default::default()
                }),
                warnings: vec!["user: ignored".into()],
                ..Default::default()
            },
        ];
        let out = status(&units, now());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            vec![
                "NAME         STATE    PID   RESTARTS  SINCE      LAST EXIT    MEMORY",
                "web          running  4242  3         5m12s ago  -            3.0M",
                "    heartbeat: /run/colony/heartbeat/web (last beat 1s ago)",
                "broken-unit  invalid  -     0         1s ago     exec failed  -",
                "    error: broken-unit.unit:3:1: exec: required",
                "    last exit: /nope: No such file or directory",
                "    warning: user: ignored",
            ]
        );
    }

    #[test]
    fn timers_table() {
        let t = vec![TimerStatus {
            name: "backup".into(),
            schedule: "0 3 * * *".into(),
            next: Some("2026-11-23T12:15:00Z".into()),
            last: None,
            last_result: None,
            skipped: 0,
            last_skip: None,
            running: false,
        }];
        let out = timers(&t, now());
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("UNIT    SCHEDULE   NEXT"), "{out}");
        assert!(lines[1].starts_with("backup  0 3 * * *  "), "{out}");
        assert!(lines[1].contains(" 15m00s  -     -       0"), "{out}");
    }
}

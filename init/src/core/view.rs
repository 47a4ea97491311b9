//! The core's records as the status and timers JSON shapes of `units::proto`.
//!
//! Only what the core knows is filled in; the loop adds the rest (cgroup, memory, CPU,
//! tasks, `status_text`, `health`, warnings, the log file, and the default heartbeat path).

use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use units::proto;

use super::record::{RunResult, UnitRecord};
use super::ExitStatus;

/// RFC 3339 in UTC with milliseconds, as the logs stamp lines.
pub fn rfc3339(t: SystemTime) -> String {
    let dt: Option<DateTime<Utc>> = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs())
            .ok()
            .and_then(|s| DateTime::<Utc>::from_timestamp(s, d.subsec_nanos())),
        Err(_) => None,
    };
    dt.map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".into())
}

fn signal_text(n: i32) -> String {
    units::values::signal_name(n)
        .map(str::to_string)
        .unwrap_or_else(|| format!("SIG{n}"))
}

/// `1.2s`, `350ms`, `2m 5s`.
fn short_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        let s = d.as_secs();
        if s < 3600 {
            format!("{}m {}s", s / 60, s % 60)
        } else {
            format!("{}h {}m", s / 3600, (s % 3600) / 60)
        }
    }
}

/// "exit 0 in 1.2s", "SIGKILL in 3.0s (timeout)", "exec failed".
pub fn run_result_text(r: &RunResult) -> String {
    let mut s = match r.status {
        Some(ExitStatus::Code(c)) => format!("exit {c} in {}", short_duration(r.duration)),
        Some(ExitStatus::Signal(n)) => {
            format!("{} in {}", signal_text(n), short_duration(r.duration))
        }
        None => "did not start".to_string(),
    };
    if let Some(reason) = r.reason {
        s.push_str(&format!(" ({reason})"));
    }
    s
}

impl UnitRecord {
    /// How the unit last ended, as `status --json` shows it.
    pub fn last_exit_json(&self) -> Option<proto::LastExit> {
        let e = self.last_exit.as_ref()?;
        let (code, signal) = match e.status {
            Some(ExitStatus::Code(c)) => (Some(c), None),
            Some(ExitStatus::Signal(n)) => (None, Some(signal_text(n))),
            None => (None, None),
        };
        Some(proto::LastExit {
            code,
            signal,
            reason: e.reason.map(|r| r.as_str().to_string()),
            detail: e.detail.clone(),
        })
    }

    /// The core's part of a `status` entry. `heartbeat.file` is the unit's own setting,
    /// empty when it uses the default (the loop knows RUN). `error` is the file's error, or
    /// else a note on why the unit is in its state (e.g. a required unit failed).
    pub fn to_status(&self, now: SystemTime) -> proto::UnitStatus {
        let def = self.def.as_deref();
        proto::UnitStatus {
            name: self.name.clone(),
            state: self.state.as_str().to_string(),
            pid: self.pid,
            restarts: self.restarts,
            since: rfc3339(self.since),
            last_exit: self.last_exit_json(),
            ready: self.ready,
            error: self
                .error
                .clone()
                .or_else(|| self.held.as_ref().map(|h| h.to_string()))
                .or_else(|| self.note.clone()),
            enabled: def.is_some_and(|d| d.enabled),
            tags: def.map(|d| d.tags.clone()).unwrap_or_default(),
            leftover_pids: self.strays.clone(),
            description: def.and_then(|d| d.description.clone()),
            heartbeat: def
                .and_then(|d| d.heartbeat.as_ref())
                .map(|h| proto::HeartbeatStatus {
                    file: h
                        .file
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    age_ms: self
                        .last_beat
                        .and_then(|b| now.duration_since(b).ok())
                        .map(|a| u64::try_from(a.as_millis()).unwrap_or(u64::MAX)),
                }),
            ..Default::default()
        }
    }

    /// A `timers` entry; `None` for a unit that is not a timer unit.
    pub fn timer_status(&self) -> Option<proto::TimerStatus> {
        let t = self.timer.as_ref()?;
        let tdef = self.def.as_ref()?.timer.as_ref()?;
        let mut schedule = Vec::new();
        if let Some(e) = tdef.every {
            schedule.push(format!("every {}", humantime_short(e)));
        }
        if let Some(c) = tdef.calendar.as_ref() {
            schedule.push(c.text.clone());
        }
        if let Some(b) = tdef.on_boot {
            schedule.push(format!("on_boot {}", humantime_short(b)));
        }
        Some(proto::TimerStatus {
            name: self.name.clone(),
            schedule: schedule.join(", "),
            next: t.next.map(rfc3339),
            last: t.last_start.map(rfc3339),
            last_result: t.last_result.as_ref().map(run_result_text),
            skipped: t.skipped,
            last_skip: t.last_skip.map(rfc3339),
            running: !self.is_gone(),
        })
    }
}

/// `15m`, `1h 30m`, `90s` (whole seconds; sub-second as ms).
fn humantime_short(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if sec > 0 {
        parts.push(format!("{sec}s"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{ExitReason, Fault};

    #[test]
    fn rfc3339_is_utc_with_millis() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_781_524_800_250);
        assert_eq!(rfc3339(t), "2026-06-15T12:00:00.250Z");
    }

    #[test]
    fn run_results_read_well() {
        let r = RunResult {
            status: Some(ExitStatus::Code(0)),
            reason: None,
            duration: Duration::from_millis(1200),
        };
        assert_eq!(run_result_text(&r), "exit 0 in 1.2s");
        let r = RunResult {
            status: Some(ExitStatus::Signal(9)),
            reason: Some(ExitReason::Timeout),
            duration: Duration::from_secs(65),
        };
        assert_eq!(run_result_text(&r), "SIGKILL in 1m 5s (timeout)");
    }

    #[test]
    fn exit_reasons_keep_their_json_strings() {
        // `last_exit.reason` in `status --json` is a contract: these strings never change.
        let all = [
            (ExitReason::Exec, "exec"),
            (ExitReason::Oom, "oom"),
            (ExitReason::Stopped, "stopped"),
            (ExitReason::ReadyTimeout, "ready_timeout"),
            (ExitReason::Watchdog, "watchdog"),
            (ExitReason::Heartbeat, "heartbeat"),
            (ExitReason::Health, "health"),
            (ExitReason::Timeout, "timeout"),
        ];
        for (r, s) in all {
            assert_eq!(r.as_str(), s);
        }
        assert_eq!(ExitReason::from(Fault::Health), ExitReason::Health);
        assert_eq!(Fault::ReadyTimeout.as_str(), "ready_timeout");
    }

    #[test]
    fn schedule_durations() {
        assert_eq!(humantime_short(Duration::from_secs(900)), "15m");
        assert_eq!(humantime_short(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(humantime_short(Duration::from_millis(500)), "500ms");
    }
}

//! Value syntaxes: durations, sizes, signals, capabilities, users, groups, umask, cpu_max, cron.

use std::time::Duration;

/// `500ms`, `30s`, `1h 30m`, `2 days` (humantime's syntax); a bare `0` is zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("{e}; a duration looks like \"500ms\", \"30s\" or \"1h 30m\""))
}

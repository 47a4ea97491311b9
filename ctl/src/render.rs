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

/// How a table is laid out for where it goes: the terminal's width (None: no limit, as when
/// piped) and whether to colour it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Style {
    pub width: Option<usize>,
    pub color: bool,
}

impl Style {
    /// For stdout: colour only on a terminal and never with NO_COLOR (or TERM=dumb); the width
    /// from COLUMNS, else the terminal's (TIOCGWINSZ), else none (a pipe gets whole lines).
    pub fn for_stdout() -> Style {
        use std::io::IsTerminal;
        let tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        let columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|&c| c > 0);
        Style {
            width: columns.or_else(|| if tty { terminal_width() } else { None }),
            color: tty && !no_color && !dumb,
        }
    }
}

/// stdout's terminal width, if it is a terminal that knows it.
fn terminal_width() -> Option<usize> {
    // SAFETY: winsize is plain integers (all-zero is valid); TIOCGWINSZ writes one into it.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize through the pointer, which is valid and ours.
    let r = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0).then_some(ws.ws_col as usize)
}

/// ANSI colours for states, as systemctl uses them.
pub const GREEN: &str = "\x1b[32m";
pub const RED: &str = "\x1b[31m";
pub const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// `s` cut to `max` characters, the last one an ellipsis when cut.
pub fn ellipsize(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Columns padded to their widest cell (the last one not padded), fitted into `width` by
/// cutting the columns of `shrink` (in that order, none below its header or 8 characters),
/// and with cell (row, column) coloured as `paint` says.
pub fn table_styled(
    rows: &[Vec<String>],
    shrink: &[usize],
    width: Option<usize>,
    paint: impl Fn(usize, usize) -> Option<&'static str>,
) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    if let Some(max) = width {
        // Two spaces between columns.
        let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
        for &c in shrink {
            let over = total(&widths).saturating_sub(max);
            if over == 0 || c >= cols {
                continue;
            }
            let header = rows
                .first()
                .and_then(|r| r.get(c))
                .map_or(0, |h| h.chars().count());
            let floor = header.max(8).min(widths[c]);
            widths[c] -= over.min(widths[c] - floor);
        }
    }
    let mut out = String::new();
    for (ri, r) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            let cell = ellipsize(c, widths[i]);
            let shown = cell.chars().count();
            match paint(ri, i) {
                Some(color) if !cell.is_empty() => {
                    line.push_str(color);
                    line.push_str(&cell);
                    line.push_str(RESET);
                }
                _ => line.push_str(&cell),
            }
            if i + 1 < r.len() {
                line.extend(std::iter::repeat_n(' ', widths[i] - shown + 2));
            }
        }
        let line = line.trim_end();
        match width {
            // Still too wide with every column at its floor: cut the line, as systemctl does.
            Some(max) => out.push_str(&cut_visible(line, max)),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// `line` cut to `max` visible characters (colour sequences take no room), an ellipsis last.
fn cut_visible(line: &str, max: usize) -> String {
    let visible = |s: &str| {
        let (mut n, mut esc) = (0, false);
        for c in s.chars() {
            match (esc, c) {
                (false, '\x1b') => esc = true,
                (true, 'm') => esc = false,
                (true, _) => {}
                (false, _) => n += 1,
            }
        }
        n
    };
    if visible(line) <= max || max == 0 {
        return line.to_string();
    }
    let (mut out, mut n, mut esc, mut coloured) = (String::new(), 0, false, false);
    for c in line.chars() {
        match (esc, c) {
            (false, '\x1b') => {
                esc = true;
                coloured = true;
            }
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, _) if n + 1 == max => break,
            (false, _) => n += 1,
        }
        out.push(c);
    }
    out.push('…');
    if coloured {
        out.push_str(RESET);
    }
    out
}

/// `text` in lines of at most `width` characters, broken at spaces where it can (a word
/// longer than a line is cut), the lines after the first indented by two; one line when
/// there is no width.
pub fn wrap(text: &str, width: Option<usize>) -> Vec<String> {
    const INDENT: &str = "  ";
    let Some(width) = width.filter(|&w| w > 2 * INDENT.len()) else {
        return vec![text.to_string()];
    };
    let mut lines = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    let mut room = width;
    loop {
        if rest.len() <= room {
            lines.push(rest.iter().collect::<String>());
            break;
        }
        // The last space that leaves the line within its room, else a hard cut.
        let cut = rest[..=room]
            .iter()
            .rposition(|&c| c == ' ')
            .filter(|&i| i > 0)
            .unwrap_or(room);
        lines.push(
            rest[..cut]
                .iter()
                .collect::<String>()
                .trim_end()
                .to_string(),
        );
        rest = rest[cut..]
            .iter()
            .copied()
            .skip_while(|&c| c == ' ')
            .collect();
        room = width - INDENT.len();
    }
    for l in lines.iter_mut().skip(1) {
        l.insert_str(0, INDENT);
    }
    lines
}

/// The colour of a state: green when up, red when failed, yellow on the way.
pub fn state_color(state: &str) -> Option<&'static str> {
    match state {
        "running" => Some(GREEN),
        "failed" | "invalid" => Some(RED),
        "starting" | "stopping" | "backoff" | "waiting" => Some(YELLOW),
        _ => None,
    }
}

fn state(u: &UnitStatus) -> String {
    let mut s = u.state.clone();
    // Running and not ready: between RELOADING=1 and READY=1.
    if u.state == "running" && !u.ready {
        s.push_str(" (reloading)");
    }
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
#[cfg(test)]
pub fn status(units: &[UnitStatus], now: DateTime<Utc>) -> String {
    status_styled(units, now, Style::default())
}

/// [`status`] for a terminal: fitted to its width (the description, then the last exit cut
/// first) and the state coloured. A DESCRIPTION column is there when a unit has one.
pub fn status_styled(units: &[UnitStatus], now: DateTime<Utc>, style: Style) -> String {
    let described = units.iter().any(|u| u.description.is_some());
    let mut rows = vec![vec![
        "NAME".to_string(),
        "STATE".into(),
        "PID".into(),
        "RESTARTS".into(),
        "SINCE".into(),
        "LAST EXIT".into(),
        "MEMORY".into(),
    ]];
    if described {
        rows[0].push("DESCRIPTION".into());
    }
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
        if described {
            if let Some(r) = rows.last_mut() {
                r.push(u.description.clone().unwrap_or_default());
            }
        }
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
        if !u.leftover_pids.is_empty() {
            let pids: Vec<String> = u.leftover_pids.iter().map(|p| p.to_string()).collect();
            n.push(format!(
                "left over: {} (pids {})",
                pids.len(),
                pids.join(" ")
            ));
        }
        for w in &u.warnings {
            n.push(format!("warning: {w}"));
        }
        if !n.is_empty() {
            notes.push((rows.len() - 1, n));
        }
    }
    // Interleave: the notes of a unit go right below its row.
    let paint = |row: usize, col: usize| match (style.color, row, col) {
        (true, 1.., 1) => units.get(row - 1).and_then(|u| state_color(&u.state)),
        _ => None,
    };
    // The description, then the last exit, then a long name give way first (`-l`: whole).
    let table = table_styled(&rows, &[7, 5, 0], style.width, paint);
    let mut out = String::new();
    let mut notes = notes.into_iter().peekable();
    for (i, line) in table.lines().enumerate() {
        out.push_str(line);
        out.push('\n');
        if let Some((_, n)) = notes.next_if(|(row, _)| *row == i) {
            for l in n {
                for piece in wrap(&l, style.width.map(|w| w.saturating_sub(4))) {
                    out.push_str("    ");
                    out.push_str(&piece);
                    out.push('\n');
                }
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
#[cfg(test)]
pub fn timers(timers: &[TimerStatus], now: DateTime<Utc>) -> String {
    timers_styled(timers, now, Style::default())
}

/// [`timers`] for a terminal: fitted to its width (the schedule, then the skips, cut first),
/// the result green when the last run exited 0, red when it did not, yellow while running.
pub fn timers_styled(timers: &[TimerStatus], now: DateTime<Utc>, style: Style) -> String {
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
    let paint = |row: usize, col: usize| {
        let t = timers.get(row.checked_sub(1)?)?;
        if !style.color || col != 5 {
            return None;
        }
        match (t.running, t.last_result.as_deref()) {
            (true, _) => Some(YELLOW),
            (false, Some(r)) if r.starts_with("exit 0") => Some(GREEN),
            (false, Some(_)) => Some(RED),
            (false, None) => None,
        }
    };
    table_styled(&rows, &[1, 6], style.width, paint)
}

#[cfg(test)]
mod tests;

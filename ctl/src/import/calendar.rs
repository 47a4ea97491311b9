//! systemd `OnCalendar=` expressions to cron expressions (local time), for their common
//! forms: the shorthands (`daily`, `weekly`...), `[DOW] [[Y-]M-D] [H:M[:S]]` with `*`, lists,
//! `..` ranges and `/` steps.

/// The cron expression, and a note when the meaning is not exactly the same.
pub fn to_cron(expr: &str) -> Result<(String, Option<String>), String> {
    let e = expr.trim();
    let norm = match e.to_ascii_lowercase().as_str() {
        "minutely" => "*-*-* *:*:00".to_string(),
        "hourly" => "*-*-* *:00:00".to_string(),
        "daily" => "*-*-* 00:00:00".to_string(),
        "weekly" => "Mon *-*-* 00:00:00".to_string(),
        "monthly" => "*-*-01 00:00:00".to_string(),
        "yearly" | "annually" => "*-01-01 00:00:00".to_string(),
        "quarterly" => "*-01,04,07,10-01 00:00:00".to_string(),
        "semiannually" => "*-01,07-01 00:00:00".to_string(),
        _ => e.to_string(),
    };
    let mut dow = "*".to_string();
    let (mut month, mut day) = ("*".to_string(), "*".to_string());
    let (mut hour, mut minute, mut second) = ("0".to_string(), "0".to_string(), "0".to_string());
    let mut saw_date = false;
    let mut saw_time = false;
    for (i, tok) in norm.split_whitespace().enumerate() {
        if tok.contains(':') {
            if saw_time {
                return Err(format!("`{expr}` has two times"));
            }
            saw_time = true;
            let parts: Vec<&str> = tok.split(':').collect();
            let (h, m, s) = match parts.as_slice() {
                [h, m] => (*h, *m, "00"),
                [h, m, s] => (*h, *m, *s),
                _ => return Err(format!("`{tok}` is not a time")),
            };
            let s = s
                .strip_suffix(".000000")
                .or_else(|| s.strip_suffix(".0"))
                .unwrap_or(s);
            hour = field(h, 0, 23)?;
            minute = field(m, 0, 59)?;
            second = field(s, 0, 59)?;
        } else if tok.contains('-') && tok.starts_with(|c: char| c.is_ascii_digit() || c == '*') {
            if saw_date {
                return Err(format!("`{expr}` has two dates"));
            }
            saw_date = true;
            if tok.contains('~') {
                return Err(format!(
                    "`{tok}`: a day counted from the end of the month (~) has no cron form"
                ));
            }
            let parts: Vec<&str> = tok.split('-').collect();
            let (y, m, d) = match parts.as_slice() {
                [y, m, d] => (*y, *m, *d),
                [m, d] => ("*", *m, *d),
                _ => return Err(format!("`{tok}` is not a date")),
            };
            if y != "*" {
                return Err(format!(
                    "`{tok}` names a year; cron repeats every year, so it has no cron form"
                ));
            }
            month = field(m, 1, 12)?;
            day = field(d, 1, 31)?;
        } else if i == 0 && tok.starts_with(|c: char| c.is_ascii_alphabetic()) {
            dow = weekdays(tok)?;
        } else {
            return Err(format!(
                "`{tok}` is not understood (a time zone or another form cron cannot express)"
            ));
        }
    }
    let note = (dow != "*" && day != "*").then(|| {
        "systemd runs only when both the weekday and the day match; cron runs when either does"
            .to_string()
    });
    let cron = if second == "0" {
        format!("{minute} {hour} {day} {month} {dow}")
    } else {
        format!("{second} {minute} {hour} {day} {month} {dow}")
    };
    Ok((cron, note))
}

/// One numeric field: `*`, `5`, `05`, `1,15`, `1..5`, `0/15`, `*/2`.
fn field(s: &str, min: u32, max: u32) -> Result<String, String> {
    let mut out = Vec::new();
    for item in s.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((b, st)) => (b, Some(num(st, 1, max.max(1))?)),
            None => (item, None),
        };
        let base = if base == "*" {
            "*".to_string()
        } else if let Some((a, b)) = base.split_once("..") {
            format!("{}-{}", num(a, min, max)?, num(b, min, max)?)
        } else {
            let a = num(base, min, max)?;
            if step.is_some() {
                format!("{a}-{max}")
            } else {
                a.to_string()
            }
        };
        out.push(match step {
            Some(st) => format!("{base}/{st}"),
            None => base,
        });
    }
    Ok(out.join(","))
}

fn num(s: &str, min: u32, max: u32) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("`{s}` is not a number from {min} to {max}")),
    }
}

/// `Mon..Fri`, `Sat,Sun`, `Monday` -> cron weekdays (Sunday 0).
fn weekdays(s: &str) -> Result<String, String> {
    fn day(d: &str) -> Result<u32, String> {
        const NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
        let l = d.to_ascii_lowercase();
        NAMES
            .iter()
            .position(|n| l.len() >= 3 && l.starts_with(n))
            .map(|p| p as u32)
            .ok_or_else(|| format!("`{d}` is not a weekday"))
    }
    let mut days = [false; 7];
    for item in s.split(',') {
        match item.split_once("..") {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                let mut d = a;
                loop {
                    days[d as usize] = true;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[day(item)? as usize] = true,
        }
    }
    // Runs of consecutive days as ranges.
    let mut parts = Vec::new();
    let mut d = 0;
    while d < 7 {
        if days[d] {
            let start = d;
            while d + 1 < 7 && days[d + 1] {
                d += 1;
            }
            parts.push(if start == d {
                start.to_string()
            } else {
                format!("{start}-{d}")
            });
        }
        d += 1;
    }
    Ok(parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        to_cron(s).unwrap().0
    }

    #[test]
    fn shorthands() {
        assert_eq!(c("daily"), "0 0 * * *");
        assert_eq!(c("weekly"), "0 0 * * 1");
        assert_eq!(c("hourly"), "0 * * * *");
        assert_eq!(c("monthly"), "0 0 1 * *");
        assert_eq!(c("minutely"), "* * * * *");
    }

    #[test]
    fn full_forms() {
        assert_eq!(c("*-*-* 03:30:00"), "30 3 * * *");
        assert_eq!(c("*-*-* 03:30:15"), "15 30 3 * * *");
        assert_eq!(c("Mon..Fri *-*-* 09:00"), "0 9 * * 1-5");
        assert_eq!(c("Sat,Sun 10:00"), "0 10 * * 0,6");
        assert_eq!(c("Fri..Mon 10:00"), "0 10 * * 0-1,5-6");
        assert_eq!(c("*:0/15"), "0-59/15 * * * *");
        assert_eq!(c("*-*-01 04:00"), "0 4 1 * *");
        assert!(to_cron("2024-01-01 00:00").is_err());
        assert!(to_cron("*-*-* 00:00 Europe/Berlin").is_err());
        assert!(to_cron("Mon *-*-01").unwrap().1.is_some());
    }
}

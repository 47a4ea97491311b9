//! Word splitting and value syntaxes of the systems we import from: systemd's quoting and
//! time spans, POSIX shell words (supervisord's `command`), sizes.

use std::time::Duration;

/// Split a systemd command line (see [`units::words::systemd_words`]).
pub use units::words::systemd_words;

/// POSIX shell words, as Python's `shlex.split` (which supervisord uses for `command`):
/// `'...'` is literal, `"..."` lets `\` escape `\ " $` and a backquote, a `\` outside quotes
/// escapes the next character.
pub fn shell_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err("no closing quotation".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('"') => break,
                        Some('\\') => match it.next() {
                            Some(x @ ('\\' | '"' | '$' | '`')) => cur.push(x),
                            Some('\n') => {}
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err("no closing quotation".into()),
                        },
                        Some(x) => cur.push(x),
                        None => return Err("no closing quotation".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match it.next() {
                    Some('\n') => {}
                    Some(x) => cur.push(x),
                    None => return Err("no escaped character".into()),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// A systemd time span (`90`, `5min 20s`, `1h30min`, `500ms`); `Ok(None)` for `infinity`.
/// A bare number is seconds (`default_unit_secs`, as the key's own default unit).
pub fn systemd_timespan(s: &str) -> Result<Option<Duration>, String> {
    let t = s.trim();
    if t == "infinity" {
        return Ok(None);
    }
    if t.is_empty() {
        return Err("empty time span".into());
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n_end == 0 {
            return Err(format!("`{s}` is not a time span"));
        }
        let n: f64 = rest[..n_end]
            .parse()
            .map_err(|_| format!("`{s}` is not a time span"))?;
        rest = rest[n_end..].trim_start();
        let u_end = rest
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..u_end];
        rest = &rest[u_end..];
        let mult = match unit {
            "" | "s" | "sec" | "second" | "seconds" => 1.0,
            "us" | "usec" | "µs" => 1e-6,
            "ms" | "msec" => 1e-3,
            "m" | "min" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86400.0,
            "w" | "week" | "weeks" => 7.0 * 86400.0,
            "M" | "month" | "months" => 30.44 * 86400.0,
            "y" | "year" | "years" => 365.25 * 86400.0,
            _ => return Err(format!("`{s}` has an unknown time unit `{unit}`")),
        };
        total += n * mult;
    }
    Ok(Some(Duration::from_micros((total * 1e6).round() as u64)))
}

/// A duration in colony's syntax: `500ms`, `90s` -> `1m 30s`, `2h`.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut secs = ms / 1000;
    let mut parts = Vec::new();
    for (unit, n) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= n {
            parts.push(format!("{}{unit}", secs / n));
            secs %= n;
        }
    }
    parts.join(" ")
}

/// A word as POSIX sh reads it back unchanged: bare when it has only characters no shell
/// treats specially, else in single quotes (a `'` inside as `'\''`). A command's first word
/// with a `=` must be quoted by the caller (sh would read it as an assignment).
pub fn sh_quote(w: &str) -> String {
    let plain = !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./=:,+@%".contains(&b));
    if plain {
        return w.to_string();
    }
    format!("'{}'", w.replace('\'', "'\\''"))
}

/// A size with an optional suffix, powers of 1024: systemd's `K M G T` (also `KB`, `KiB`),
/// supervisord's `KB MB GB`. `Ok(None)` for `infinity`.
pub fn size(s: &str) -> Result<Option<u64>, String> {
    let t = s.trim();
    if t == "infinity" {
        return Ok(None);
    }
    let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..end]
        .parse()
        .map_err(|_| format!("`{s}` is not a size"))?;
    let shift = match t[end..].trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(format!("`{s}` is not a size")),
    };
    n.checked_mul(1 << shift)
        .map(Some)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// A size in colony's syntax, with the largest unit that divides it.
pub fn fmt_size(n: u64) -> String {
    for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
        if n != 0 && n.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

/// systemd's booleans.
pub fn systemd_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_quoting() {
        assert_eq!(
            systemd_words(r#"/bin/sh -c "echo \"hi there\"; exit 3" 'a b'c \x41\s\101"#).unwrap(),
            vec!["/bin/sh", "-c", "echo \"hi there\"; exit 3", "a bc", "A A"]
        );
        assert_eq!(systemd_words(r#"a "" b"#).unwrap(), vec!["a", "", "b"]);
        assert!(systemd_words("\"open").is_err());
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(
            shell_words(r#"python -c 'print("x y")' "a \"b\" \n" c\ d"#).unwrap(),
            vec!["python", "-c", "print(\"x y\")", "a \"b\" \\n", "c d"]
        );
        assert!(shell_words("'x").is_err());
    }

    /// What sh reads back from quoted words is the words, whatever they hold.
    #[test]
    fn sh_quoted_words_come_back_from_a_real_sh() {
        let words = [
            "plain",
            "--port=6379",
            "a b",
            "it's",
            "\"q\"",
            "$HOME",
            "`id`",
            "$(id)",
            "back\\slash",
            "*.gz",
            "?[a]",
            "~",
            "#c",
            "a;b&c|d",
            "<in>out",
            "(x){y}!",
            "",
            "tab\there",
            "new\nline",
            "é日",
            "''",
        ];
        let script = format!(
            "printf '%s\\0' {}",
            words
                .iter()
                .map(|w| sh_quote(w))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .current_dir("/")
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}");
        let back: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .split_terminator('\0')
            .map(str::to_string)
            .collect();
        assert_eq!(back, words, "{script}");
        assert_eq!(sh_quote("--port=6379"), "--port=6379");
        assert_eq!(sh_quote("a b"), "'a b'");
    }

    #[test]
    fn spans_and_sizes() {
        assert_eq!(
            systemd_timespan("90").unwrap(),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            systemd_timespan("1min 30s").unwrap(),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            systemd_timespan("1h30min").unwrap(),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(systemd_timespan("infinity").unwrap(), None);
        assert!(systemd_timespan("5 fortnights").is_err());
        assert_eq!(fmt_duration(Duration::from_secs(90)), "1m 30s");
        assert_eq!(fmt_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(size("50MB").unwrap(), Some(50 << 20));
        assert_eq!(size("1G").unwrap(), Some(1 << 30));
        assert_eq!(fmt_size(512 << 20), "512M");
        assert_eq!(fmt_size(1000), "1000");
    }
}

//! Value syntaxes: durations, sizes, signals, capabilities, users, groups, umask, cpu_max, cron.
//!
//! Each parser takes the text of a value and returns the typed value or a message that says
//! what a right value looks like (the caller adds file, line, column and key).

use std::path::Path;
use std::time::Duration;

use crate::diag::nearest;
use crate::model::{Calendar, RestartPolicy, User};
use crate::userdb;

/// `500ms`, `30s`, `1h 30m`, `2 days` (humantime's syntax); a bare `0` is zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("{e}; a duration looks like \"500ms\", \"30s\" or \"1h 30m\""))
}

/// A size in bytes: `512K`, `256M`, `2G`, `1T` (powers of 1024; `Ki`/`KiB` spellings and
/// lower case accepted), or a plain number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    const HINT: &str =
        "a size looks like \"512K\", \"256M\" or \"2G\" (powers of 1024), or a number of bytes";
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    if num.is_empty() {
        return Err(format!("`{s}` is not a size; {HINT}"));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is too large; {HINT}"))?;
    let shift = match unit.trim_start().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KI" | "KIB" => 10,
        "M" | "MI" | "MIB" => 20,
        "G" | "GI" | "GIB" => 30,
        "T" | "TI" | "TIB" => 40,
        _ => {
            return Err(format!(
                "`{s}` has an unknown unit `{}`; {HINT}",
                unit.trim()
            ))
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{s}` is too large; {HINT}"))
}

/// `SIGTERM`, `TERM` (any case) or a signal number, as the number.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    const HINT: &str = "a signal looks like \"SIGTERM\", \"TERM\" or a number such as 15";
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return match t.parse::<i32>() {
            Ok(n) => {
                signal_number(n).ok_or_else(|| format!("no signal has the number {n}; {HINT}"))
            }
            Err(_) => Err(format!("no signal has the number {t}; {HINT}")),
        };
    }
    let upper = t.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    for sig in nix::sys::signal::Signal::iterator() {
        if sig.as_str() == full {
            return Ok(sig as i32);
        }
    }
    // Real-time signals: SIGRTMIN, SIGRTMIN+N, SIGRTMAX-N.
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    let rt = if full == "SIGRTMIN" {
        Some(min)
    } else if full == "SIGRTMAX" {
        Some(max)
    } else if let Some(n) = full.strip_prefix("SIGRTMIN+") {
        n.parse::<i32>().ok().map(|n| min.saturating_add(n))
    } else if let Some(n) = full.strip_prefix("SIGRTMAX-") {
        n.parse::<i32>().ok().map(|n| max.saturating_sub(n))
    } else {
        None
    };
    if let Some(n) = rt.filter(|n| (min..=max).contains(n)) {
        return Ok(n);
    }
    // Compare without the common prefix, so that `NOPE` is not "near" `SIGFPE`.
    let names: Vec<&'static str> = nix::sys::signal::Signal::iterator()
        .map(|s| s.as_str().trim_start_matches("SIG"))
        .collect();
    match nearest(full.trim_start_matches("SIG"), names.iter().copied()) {
        Some(near) => Err(format!("unknown signal `{s}`; did you mean `SIG{near}`?")),
        None => Err(format!("unknown signal `{s}`; {HINT}")),
    }
}

/// `n` if it is a signal of this system (1..=SIGRTMAX).
fn signal_number(n: i32) -> Option<i32> {
    (1..=libc::SIGRTMAX()).contains(&n).then_some(n)
}

/// The name of a signal number (`15` -> `"SIGTERM"`); `None` for real-time and unknown ones.
pub fn signal_name(n: i32) -> Option<&'static str> {
    nix::sys::signal::Signal::try_from(n)
        .ok()
        .map(|s| s.as_str())
}

/// One capability: `CAP_NET_BIND_SERVICE` or `net_bind_service` (any case), as its bit.
pub fn parse_capability(s: &str) -> Result<u64, String> {
    let upper = s.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    match full.parse::<caps::Capability>() {
        Ok(c) if c.index() < 64 => Ok(c.bitmask()),
        _ => {
            let names: Vec<String> = caps::all()
                .iter()
                .map(|c| c.to_string().trim_start_matches("CAP_").to_string())
                .collect();
            let bare = full.trim_start_matches("CAP_");
            match nearest(bare, names.iter().map(String::as_str)) {
                Some(near) => Err(format!(
                    "unknown capability `{s}`; did you mean `CAP_{near}`?"
                )),
                None => Err(format!(
                    "unknown capability `{s}`; a capability looks like \"CAP_NET_BIND_SERVICE\" (see capabilities(7))"
                )),
            }
        }
    }
}

/// A user by name or number, resolved against `/etc/passwd` read as a file (never NSS:
/// see [`crate::userdb`]).
///
/// A name must exist. A number that has no passwd entry is accepted (containers often run
/// as an arbitrary uid): its name is the number and its primary group is the gid with the
/// same number, as `docker run --user N` does.
pub fn resolve_user(s: &str) -> Result<User, String> {
    let passwd = Path::new(userdb::PASSWD);
    let t = s.trim();
    if t.is_empty() {
        return Err("empty user; give a user name or a uid".into());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let uid: u32 = t.parse().map_err(|_| format!("uid {t} is out of range"))?;
        if uid == u32::MAX {
            return Err(format!("uid {uid} is reserved (it means \"no user\")"));
        }
        return Ok(match userdb::user_by_uid(passwd, uid) {
            Ok(Some(u)) => User {
                name: u.name,
                uid,
                primary_gid: u.gid,
            },
            _ => User {
                name: uid.to_string(),
                uid,
                primary_gid: uid,
            },
        });
    }
    match userdb::user_by_name(passwd, t) {
        Ok(Some(u)) => Ok(User {
            name: u.name,
            uid: u.uid,
            primary_gid: u.gid,
        }),
        Ok(None) => Err(format!(
            "no user `{t}` in the user database ({}, read as a file, never through NSS); create it, or give its uid (a user known only to LDAP or sssd is given by number)",
            userdb::PASSWD
        )),
        Err(e) => Err(format!("cannot look up user `{t}`: {e}")),
    }
}

/// A group by name or number. A name must exist in `/etc/group` (read as a file, never
/// NSS: see [`crate::userdb`]); a number is accepted as it is.
pub fn resolve_group(s: &str) -> Result<u32, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty group; give a group name or a gid".into());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return match t.parse::<u32>() {
            Ok(g) if g != u32::MAX => Ok(g),
            _ => Err(format!("gid {t} is out of range")),
        };
    }
    match userdb::group_by_name(Path::new(userdb::GROUP), t) {
        Ok(Some(g)) => Ok(g),
        Ok(None) => Err(format!(
            "no group `{t}` in the group database ({}, read as a file, never through NSS); create it, or give its gid (a group known only to LDAP or sssd is given by number)",
            userdb::GROUP
        )),
        Err(e) => Err(format!("cannot look up group `{t}`: {e}")),
    }
}

/// An octal umask such as `"0027"` or `"022"`.
pub fn parse_umask(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return Err(format!(
            "`{s}` is not an octal umask; a umask looks like \"0027\" or \"022\""
        ));
    }
    let v = u32::from_str_radix(digits, 8).map_err(|e| e.to_string())?;
    if v > 0o777 {
        return Err(format!(
            "`{s}` is larger than 0777; a umask looks like \"0027\" or \"022\""
        ));
    }
    Ok(v)
}

/// CPU quota in percent of one CPU: `"50%"` -> 50, `"150%"` -> 150 (1% to 100000%).
pub fn parse_cpu_max(s: &str) -> Result<u32, String> {
    const HINT: &str = "cpu_max is a percentage of one CPU such as \"50%\" or \"150%\"";
    let t = s.trim();
    let Some(num) = t.strip_suffix('%') else {
        return Err(format!("`{s}` has no `%`; {HINT}"));
    };
    match num.trim().parse::<u32>() {
        Ok(n) if (1..=100_000).contains(&n) => Ok(n),
        Ok(_) => Err(format!("`{s}` is out of range (1% to 100000%); {HINT}")),
        Err(_) => Err(format!("`{s}` is not a whole percentage; {HINT}")),
    }
}

/// A cron expression for `[timer] calendar`: 5 fields (minute hour day month weekday) or 6
/// (seconds first), or a nickname such as `@daily`. Evaluated in local time by croner, whose
/// DST rules are those of vixie cron (a time skipped by a spring-forward runs at the first
/// valid time after the gap; a repeated hour runs once).
pub fn parse_calendar(s: &str) -> Result<Calendar, String> {
    const HINT: &str = "a calendar is a cron expression of 5 fields (\"0 3 * * *\": 03:00 daily) or 6 with seconds first (\"30 0 3 * * *\"), or @hourly, @daily, @weekly, @monthly, @yearly";
    let t = s.trim();
    let fields = t.split_whitespace().count();
    if t.starts_with('@') {
        if fields != 1 {
            return Err(format!("`{s}` is not a cron expression; {HINT}"));
        }
    } else if fields != 5 && fields != 6 {
        return Err(format!(
            "`{s}` has {fields} field{}; {HINT}",
            if fields == 1 { "" } else { "s" }
        ));
    }
    let parser = croner::parser::CronParser::builder()
        .year(croner::parser::Year::Disallowed)
        .build();
    // croner is a well-kept crate, but this input comes from the world: never let a panic
    // inside it take the caller down.
    let parsed = std::panic::catch_unwind(|| parser.parse(t));
    match parsed {
        Ok(Ok(cron)) => Ok(Calendar {
            text: t.to_string(),
            cron,
        }),
        Ok(Err(e)) => Err(format!(
            "`{s}` is not a valid cron expression ({e}); {HINT}"
        )),
        Err(_) => Err(format!("`{s}` is not a valid cron expression; {HINT}")),
    }
}

/// `always`, `on-failure` or `never`.
pub fn parse_restart_policy(s: &str) -> Result<RestartPolicy, String> {
    const NAMES: [&str; 3] = ["always", "on-failure", "never"];
    match s {
        "always" => Ok(RestartPolicy::Always),
        "on-failure" => Ok(RestartPolicy::OnFailure),
        "never" => Ok(RestartPolicy::Never),
        _ => {
            let near = nearest(&s.replace('_', "-"), NAMES);
            Err(match near {
                Some(n) => format!("unknown policy `{s}`; did you mean `{n}`?"),
                None => format!("unknown policy `{s}`; expected one of always, on-failure, never"),
            })
        }
    }
}

/// An exit code that counts as success: 0..=255.
pub fn parse_success_code(n: i64) -> Result<i32, String> {
    if (0..=255).contains(&n) {
        Ok(n as i32)
    } else {
        Err(format!(
            "exit code {n} is out of range; exit codes are 0 to 255"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "30", "5 parsecs", "-1s", "1.5.s"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("a duration looks like"), "{bad}: {e}");
        }
    }

    #[test]
    fn sizes() {
        for (s, v) in [
            ("512K", 512 << 10),
            ("256M", 256 << 20),
            ("2G", 2 << 30),
            ("1T", 1 << 40),
            ("1024", 1024),
            ("0", 0),
            ("10MiB", 10 << 20),
            ("4k", 4096),
            ("7 M", 7 << 20),
            ("100B", 100),
        ] {
            assert_eq!(parse_size(s), Ok(v), "{s}");
        }
        for bad in [
            "",
            "M",
            "1.5G",
            "12X",
            "-1",
            "99999999999999999999",
            "17179869184T",
        ] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains("\"256M\""), "{bad}: {e}");
        }
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("TERM"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("hup"), Ok(libc::SIGHUP));
        assert_eq!(parse_signal("9"), Ok(9));
        assert_eq!(parse_signal("SIGRTMIN+2"), Ok(libc::SIGRTMIN() + 2));
        assert_eq!(signal_name(15), Some("SIGTERM"));
        assert_eq!(signal_name(0), None);
        assert!(parse_signal("SIGTREM")
            .unwrap_err()
            .contains("did you mean `SIGTERM`"));
        for bad in ["0", "65", "999999999999", "", "SIGFOO", "SIGRTMIN+99"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn capabilities() {
        assert_eq!(parse_capability("CAP_NET_BIND_SERVICE"), Ok(1 << 10));
        assert_eq!(parse_capability("net_bind_service"), Ok(1 << 10));
        assert_eq!(parse_capability("CAP_CHOWN"), Ok(1));
        let e = parse_capability("CAP_NET_BIND_SERVISE").unwrap_err();
        assert!(e.contains("did you mean `CAP_NET_BIND_SERVICE`"), "{e}");
        assert!(parse_capability("").is_err());
        assert!(parse_capability("sys_admn")
            .unwrap_err()
            .contains("did you mean `CAP_SYS_ADMIN`"));
        assert!(!parse_capability("CAP_XYZ")
            .unwrap_err()
            .contains("did you mean"));
    }

    #[test]
    fn users_and_groups() {
        let root = resolve_user("root").unwrap();
        assert_eq!(
            (root.uid, root.primary_gid, root.name.as_str()),
            (0, 0, "root")
        );
        assert_eq!(resolve_user("0").unwrap(), root);
        let ghost = resolve_user("4000123").unwrap();
        assert_eq!((ghost.uid, ghost.primary_gid), (4000123, 4000123));
        assert!(resolve_user("no-such-user-xyz")
            .unwrap_err()
            .contains("no user"));
        assert!(resolve_user("4294967295").is_err());
        assert!(resolve_user("99999999999").is_err());
        assert_eq!(resolve_group("root"), Ok(0));
        assert_eq!(resolve_group("4000123"), Ok(4000123));
        assert!(resolve_group("no-such-group-xyz")
            .unwrap_err()
            .contains("no group"));
    }

    #[test]
    fn umask_and_cpu() {
        assert_eq!(parse_umask("0027"), Ok(0o027));
        assert_eq!(parse_umask("022"), Ok(0o022));
        assert_eq!(parse_umask("0777"), Ok(0o777));
        for bad in ["", "0028", "1777", "27a", "00000"] {
            assert!(parse_umask(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_cpu_max("50%"), Ok(50));
        assert_eq!(parse_cpu_max("150%"), Ok(150));
        for bad in ["50", "0%", "1.5%", "%", "-5%", "100001%"] {
            assert!(parse_cpu_max(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn calendars() {
        assert!(parse_calendar("0 3 * * *").is_ok());
        assert!(parse_calendar("30 0 3 * * *").is_ok());
        assert!(parse_calendar("@daily").is_ok());
        assert!(parse_calendar("*/5 * * * MON-FRI").is_ok());
        for bad in [
            "",
            "* * * *",
            "0 0 3 * * * 2030",
            "61 * * * *",
            "@sometimes",
            "a b c d e",
        ] {
            assert!(parse_calendar(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn policies_and_codes() {
        assert_eq!(
            parse_restart_policy("on-failure"),
            Ok(RestartPolicy::OnFailure)
        );
        assert!(parse_restart_policy("on_failure")
            .unwrap_err()
            .contains("did you mean `on-failure`"));
        assert!(parse_restart_policy("sometimes").is_err());
        assert_eq!(parse_success_code(255), Ok(255));
        assert!(parse_success_code(256).is_err());
        assert!(parse_success_code(-1).is_err());
    }
}

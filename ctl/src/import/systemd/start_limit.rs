//! `StartLimitBurst=` and `StartLimitIntervalSec=` to `[restart] max_failures`.
//!
//! systemd refuses a start once a unit was started `burst` times within `interval` and leaves
//! it failed; colony leaves a unit failed after `max_failures` failed starts in a row. The
//! two meet where it matters, a unit that keeps failing at once: systemd restarts it every
//! `RestartSec=`, so it hits the limit after `burst` starts if they fit in the interval, and
//! then `max_failures = burst` is the translation. If they do not fit, systemd never gives
//! up on such a loop, and neither does colony without `max_failures`.

use std::time::Duration;

use super::super::draft::{Fate, V};
use super::super::words::{fmt_duration, systemd_timespan};
use super::source::Sd;
use units::model::limits::MAX_FAILURES;

/// systemd's `DefaultStartLimitBurst=` and `DefaultStartLimitIntervalSec=`.
const DEFAULT_BURST: u32 = 5;
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// systemd's `RestartSec=` default.
const DEFAULT_RESTART_SEC: Duration = Duration::from_millis(100);

const BURST_KEYS: &[(&str, &str)] = &[("Unit", "StartLimitBurst"), ("Service", "StartLimitBurst")];
const INTERVAL_KEYS: &[(&str, &str)] = &[
    ("Unit", "StartLimitIntervalSec"),
    ("Unit", "StartLimitInterval"),
    ("Service", "StartLimitIntervalSec"),
    ("Service", "StartLimitInterval"),
];

/// What colony counts differently, said on every line that sets `max_failures`.
const COUNTED: &str = "colony counts failed starts in a row (deaths before the unit is up: before READY=1 for Type=notify, else a program that cannot be started), systemd every start within StartLimitIntervalSec=; a unit that dies after it is up is restarted by colony for ever, with a growing delay";

/// A limit on starts within a time span; `None` interval: `infinity` (the total count).
struct Limit {
    burst: u32,
    interval: Option<Duration>,
}

impl Limit {
    fn show(&self) -> String {
        match self.interval {
            Some(t) => format!("{} starts in {}", self.burst, fmt_duration(t)),
            None => format!("{} starts in all", self.burst),
        }
    }
}

pub(super) fn start_limit(sd: &mut Sd) {
    let burst_i = last_of(sd, BURST_KEYS);
    let interval_i = last_of(sd, INTERVAL_KEYS);
    if let Some(i) = last_of(sd, &[("Unit", "StartLimitAction")]) {
        match sd.items[i].value.as_str() {
            "none" => sd.same(i, "systemd's default: the unit is left failed, as colony leaves it"),
            _ => sd.drop_it(i, "colony only leaves the unit `failed`; for a unit whose failure must stop everything, set essential = true"),
        }
    }
    let given: Vec<usize> = burst_i.iter().chain(interval_i.iter()).copied().collect();
    let mut limit = Limit {
        burst: DEFAULT_BURST,
        interval: Some(DEFAULT_INTERVAL),
    };
    if let Some(i) = burst_i {
        match sd.items[i].value.trim().parse::<u32>() {
            Ok(n) => limit.burst = n,
            Err(_) => {
                sd.drop_it(i, "not a number of starts");
                return mark_rest(
                    sd,
                    &given,
                    Fate::Dropped("read with StartLimitBurst=, which is not a number".into()),
                );
            }
        }
    }
    if let Some(i) = interval_i {
        match systemd_timespan(&sd.items[i].value) {
            Ok(t) => limit.interval = t,
            Err(e) => {
                sd.drop_it(i, e);
                return mark_rest(
                    sd,
                    &given,
                    Fate::Dropped(
                        "read with StartLimitIntervalSec=, which is not a time span".into(),
                    ),
                );
            }
        }
    }

    if limit.burst == 0 || limit.interval.is_some_and(|t| t.is_zero()) {
        return mark_rest(
            sd,
            &given,
            same("no start rate limit: colony never gives up restarting either (no max_failures)"),
        );
    }
    if sd.is_timer_job {
        return mark_rest(
            sd,
            &given,
            same("a timer unit's job is not restarted; it runs again at its next time"),
        );
    }
    if sd.d.get("restart.policy") == Some(&V::s("never")) {
        return mark_rest(sd, &given, same("nothing is restarted automatically (restart.policy = \"never\"), so there are no restarts to limit; colony does not limit starts by hand"));
    }
    // Read, not reported: lifecycle has given RestartSec= its line.
    let restart_sec = sd
        .indices("Service", "RestartSec")
        .last()
        .and_then(|&i| systemd_timespan(&sd.items[i].value).ok().flatten())
        .unwrap_or(DEFAULT_RESTART_SEC);
    // systemd refuses start `burst + 1` if it comes no later than `interval` after the
    // first of its window; a unit that keeps failing makes it `burst * RestartSec=` later
    // plus the time each run took, so at equality it comes later.
    let next = restart_sec.saturating_mul(limit.burst);
    let reached = limit.interval.is_none_or(|t| next < t);
    if !reached {
        let why = format!(
            "a unit that keeps failing is restarted every {} (RestartSec=): its start {} comes {} after the first, past {}, so systemd never reaches this limit, and colony never gives up either (no max_failures)",
            fmt_duration(restart_sec),
            u64::from(limit.burst) + 1,
            fmt_duration(next),
            limit.interval.map(fmt_duration).unwrap_or_default(),
        );
        return mark_rest(sd, &given, same(&why));
    }
    let m = limit.burst.min(MAX_FAILURES);
    let v = V::Int(i64::from(m));
    let to = format!("restart.max_failures = {v}");
    let mut why = format!("systemd gives up after {}; {COUNTED}", limit.show());
    if m < limit.burst {
        why.push_str(&format!(
            "; colony's largest max_failures is {MAX_FAILURES}"
        ));
    }
    sd.d.set("restart.max_failures", v);
    if given.is_empty() {
        sd.d.note(
            "(systemd default)",
            &format!("StartLimitBurst= (not set: {})", limit.show()),
            Some(to),
            Fate::Approx(why),
        );
        return;
    }
    for i in given {
        sd.mark(i, Some(to.clone()), Fate::Approx(why.clone()));
    }
}

/// The last assignment of a key that systemd reads under several names or sections (later
/// lines win); earlier ones are reported as overridden, an empty last one as a reset.
fn last_of(sd: &mut Sd, keys: &[(&str, &str)]) -> Option<usize> {
    let mut all: Vec<usize> = keys.iter().flat_map(|(s, k)| sd.indices(s, k)).collect();
    all.sort_unstable();
    let (&last, earlier) = all.split_last()?;
    for &i in earlier {
        let why = format!("overridden by {}", sd.items[last].origin);
        sd.same(i, why);
    }
    if sd.items[last].value.trim().is_empty() {
        sd.same(last, "empty: resets the key to its default");
        return None;
    }
    Some(last)
}

/// Give each of `keys` not reported yet the same line, with nothing written.
fn mark_rest(sd: &mut Sd, keys: &[usize], fate: Fate) {
    for &i in keys {
        if !sd.done[i] {
            sd.mark(i, None, fate.clone());
        }
    }
}

fn same(why: &str) -> Fate {
    Fate::Same(why.to_string())
}

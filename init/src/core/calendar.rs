//! Schedule arithmetic for timer units: cron occurrences, `every` steps, wall to monotonic.

use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, TimeZone, Utc};
use units::model::Calendar;

/// The first occurrence of `cal` strictly after `after`, in the time zone `tz`.
///
/// croner does the DST work: a time that falls into a spring-forward gap runs at the first
/// valid time after it, a time repeated by a fall-back runs once. `None` when croner finds
/// no occurrence (an impossible date) or the time is out of chrono's range.
pub fn next_calendar<Tz: TimeZone>(
    cal: &Calendar,
    after: SystemTime,
    tz: &Tz,
) -> Option<SystemTime> {
    let utc = to_utc(after)?;
    let local = utc.with_timezone(tz);
    let next = cal.cron.find_next_occurrence(&local, false).ok()?;
    Some(SystemTime::from(next.with_timezone(&Utc)))
}

/// chrono's `From<SystemTime>` panics out of its range; this does not.
fn to_utc(t: SystemTime) -> Option<DateTime<Utc>> {
    let (secs, nanos) = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => (i64::try_from(d.as_secs()).ok()?, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).ok()?;
            if d.subsec_nanos() == 0 {
                (-secs, 0)
            } else {
                (-secs - 1, 1_000_000_000 - d.subsec_nanos())
            }
        }
    };
    DateTime::<Utc>::from_timestamp(secs, nanos)
}

/// The first `base + k * every` (k >= 1) strictly after `now`.
pub(crate) fn every_next(base: SystemTime, every: Duration, now: SystemTime) -> Option<SystemTime> {
    if every.is_zero() {
        return None;
    }
    let first = base.checked_add(every)?;
    if first > now {
        return Some(first);
    }
    let behind = now.duration_since(first).unwrap_or_default();
    // Whole steps missed, then one more so the result lies after `now`.
    let steps = behind.as_nanos() / every.as_nanos() + 1;
    let steps = u32::try_from(steps).ok()?;
    first.checked_add(every.checked_mul(steps)?)
}

/// `at` (wall) as a monotonic instant, given one reading of both clocks.
pub(crate) fn mono_for(now_mono: Instant, now_wall: SystemTime, at: SystemTime) -> Instant {
    match at.duration_since(now_wall) {
        Ok(ahead) => later(now_mono, ahead),
        Err(_) => now_mono,
    }
}

/// `now + d`, never panicking: a deadline beyond `Instant`'s range is a century away.
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

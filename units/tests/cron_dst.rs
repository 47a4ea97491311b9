//! `[timer] calendar` across daylight-saving changes, in local time (own process: sets TZ).

use chrono::{Local, TimeZone};

#[test]
fn calendar_follows_local_time_through_dst() {
    // SAFETY: only this test runs in this process (no other thread reads the environment),
    // so setting TZ is race-free.
    unsafe { std::env::set_var("TZ", "Europe/Berlin") };
    let cal = units::values::parse_calendar("30 2 * * *").unwrap();
    let next = |y, m, d, h| {
        let start = Local.with_ymd_and_hms(y, m, d, h, 0, 0).single().unwrap();
        cal.cron
            .find_next_occurrence(&start, false)
            .unwrap()
            .to_rfc3339()
    };
    // Spring forward: 02:30 does not exist on 2026-03-29; the run happens at the first valid
    // time after the gap (vixie cron), not skipped and not twice.
    assert_eq!(next(2026, 3, 28, 12), "2026-03-29T03:00:00+02:00");
    assert_eq!(next(2026, 3, 29, 4), "2026-03-30T02:30:00+02:00");
    // Fall back: 02:30 happens twice on 2026-10-25; the job runs once.
    let first = next(2026, 10, 24, 12);
    assert!(first.starts_with("2026-10-25T02:30:00+0"), "{first}");
    let after_first = chrono::DateTime::parse_from_rfc3339(&first)
        .unwrap()
        .with_timezone(&Local);
    let second = cal
        .cron
        .find_next_occurrence(&after_first, false)
        .unwrap()
        .to_rfc3339();
    assert_eq!(second, "2026-10-26T02:30:00+01:00");
    // A 6-field expression has seconds first.
    let six = units::values::parse_calendar("15 30 2 * * *").unwrap();
    let start = Local
        .with_ymd_and_hms(2026, 6, 1, 0, 0, 0)
        .single()
        .unwrap();
    assert_eq!(
        six.cron
            .find_next_occurrence(&start, false)
            .unwrap()
            .to_rfc3339(),
        "2026-06-01T02:30:15+02:00"
    );
}

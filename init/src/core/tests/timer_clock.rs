//! Calendar timers across DST (a fixed zone with Europe/Berlin's 2026 rules) and clock changes.

use chrono::{FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

use super::timer::{cal, every, utc, utc_fake};
use super::*;

// ----- DST, in a fixed zone: Europe/Berlin's 2026 rules, written out -----

/// CET/CEST for 2026: CEST from 2026-03-29 01:00 UTC to 2026-10-25 01:00 UTC.
#[derive(Debug, Clone, Copy)]
struct Berlin2026;

fn cet() -> FixedOffset {
    FixedOffset::east_opt(3600)
        .unwrap_or(FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!()))
}

fn cest() -> FixedOffset {
    FixedOffset::east_opt(7200).unwrap_or(cet())
}

impl TimeZone for Berlin2026 {
    type Offset = FixedOffset;

    fn from_offset(_: &FixedOffset) -> Self {
        Berlin2026
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<FixedOffset> {
        match local.and_hms_opt(12, 0, 0) {
            Some(dt) => self.offset_from_local_datetime(&dt),
            None => MappedLocalTime::None,
        }
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<FixedOffset> {
        let fits = |o: FixedOffset| {
            let utc = *local - chrono::TimeDelta::seconds(i64::from(o.local_minus_utc()));
            self.offset_from_utc_datetime(&utc) == o
        };
        match (fits(cest()), fits(cet())) {
            (true, true) => MappedLocalTime::Ambiguous(cest(), cet()),
            (true, false) => MappedLocalTime::Single(cest()),
            (false, true) => MappedLocalTime::Single(cet()),
            (false, false) => MappedLocalTime::None,
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> FixedOffset {
        match utc.and_hms_opt(12, 0, 0) {
            Some(dt) => self.offset_from_utc_datetime(&dt),
            None => cet(),
        }
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> FixedOffset {
        let t = utc.and_utc().timestamp();
        let spring = Utc
            .with_ymd_and_hms(2026, 3, 29, 1, 0, 0)
            .single()
            .map(|t| t.timestamp());
        let fall = Utc
            .with_ymd_and_hms(2026, 10, 25, 1, 0, 0)
            .single()
            .map(|t| t.timestamp());
        match (spring, fall) {
            (Some(s), Some(e)) if t >= s && t < e => cest(),
            _ => cet(),
        }
    }
}

#[test]
fn dst_spring_forward_a_time_in_the_gap_runs_at_the_first_valid_time() {
    // 02:30 does not exist on 2026-03-29 in Berlin: croner runs it at 03:00 CEST (01:00 UTC).
    let c = cal("30 2 * * *");
    let from = utc(2026, 3, 28, 12, 0);
    let first = next_calendar(&c, from, &Berlin2026);
    assert_eq!(first, Some(utc(2026, 3, 29, 1, 0)));
    let second = first.and_then(|t| next_calendar(&c, t, &Berlin2026));
    assert_eq!(
        second,
        Some(utc(2026, 3, 30, 0, 30)),
        "02:30 CEST the day after"
    );
}

#[test]
fn dst_fall_back_a_repeated_time_runs_once() {
    // 02:30 happens twice on 2026-10-25 in Berlin (CEST, then CET): one run.
    let c = cal("30 2 * * *");
    let from = utc(2026, 10, 24, 12, 0);
    let mut runs = Vec::new();
    let mut t = from;
    for _ in 0..3 {
        match next_calendar(&c, t, &Berlin2026) {
            Some(n) => {
                runs.push(n);
                t = n;
            }
            None => break,
        }
    }
    assert_eq!(
        runs,
        vec![
            utc(2026, 10, 25, 0, 30),
            utc(2026, 10, 26, 1, 30),
            utc(2026, 10, 27, 1, 30)
        ]
    );
}

#[test]
fn dst_day_through_the_supervisor() {
    // A timer at 02:30 Berlin, loaded on 2026-03-28 at 12:00 UTC: the spring-forward run
    // comes at 03:00 CEST = 01:00 UTC, 13 hours on in monotonic time (not 13.5).
    let sup = Supervisor::with_calendar(defaults(), |c, t| next_calendar(c, t, &Berlin2026));
    let mut f = Fake::at(sup, utc(2026, 3, 28, 12, 0));
    f.load(vec![unit("job").timer(Timer {
        calendar: Some(cal("30 2 * * *")),
        ..Default::default()
    })]);
    assert_eq!(
        f.rec("job").timer.as_ref().and_then(|t| t.next),
        Some(utc(2026, 3, 29, 1, 0))
    );
    assert_eq!(
        f.deadline("job", DeadlineKind::TimerRun),
        Some(f.mono(secs(13 * 3600)))
    );
    let fx = f.advance(secs(13 * 3600));
    assert_eq!(Fake::spawns(&fx), vec!["job"]);
    f.exit("job", 0);
    // The day after, 02:30 CEST = 00:30 UTC: 23.5 hours on.
    assert_eq!(
        f.rec("job").timer.as_ref().and_then(|t| t.next),
        Some(utc(2026, 3, 30, 0, 30))
    );
    assert_eq!(
        f.deadline("job", DeadlineKind::TimerRun),
        Some(f.mono(secs(13 * 3600 + 23 * 3600 + 1800)))
    );
}

#[test]
fn a_clock_change_replans_calendar_timers() {
    let mut f = utc_fake();
    f.load(vec![unit("job").timer(Timer {
        calendar: Some(cal("0 3 * * *")),
        ..Default::default()
    })]);
    // The wall clock jumps 14 hours ahead (to 02:00 the next day) without monotonic time.
    f.jump_wall(secs(14 * 3600));
    f.send(Input::ClockChanged);
    assert_eq!(
        f.rec("job").timer.as_ref().and_then(|t| t.next),
        Some(utc(2026, 6, 16, 3, 0))
    );
    assert_eq!(
        f.deadline("job", DeadlineKind::TimerRun),
        Some(f.mono(secs(3600)))
    );
}

#[test]
fn a_clock_set_past_a_calendar_run_runs_it_at_once_and_only_once() {
    let mut f = utc_fake();
    f.load(vec![unit("job").timer(Timer {
        calendar: Some(cal("0 3 * * *")),
        ..Default::default()
    })]);
    // From 12:00 to 04:00 the next day, past the 03:00 run.
    f.jump_wall(secs(16 * 3600));
    let fx = f.send(Input::ClockChanged);
    assert!(Fake::spawns(&fx).is_empty());
    assert_eq!(
        f.deadline("job", DeadlineKind::TimerRun),
        Some(f.mono(secs(0)))
    );
    let fx = f.advance(Duration::ZERO);
    assert_eq!(Fake::spawns(&fx), vec!["job"]);
    f.advance(secs(5));
    f.exit("job", 0);
    assert_eq!(f.state("job"), State::Waiting);
    let t = f.rec("job").timer.clone().unwrap_or_default();
    assert_eq!(t.last_start, Some(utc(2026, 6, 16, 4, 0)));
    assert_eq!(t.next, Some(utc(2026, 6, 17, 3, 0)));
    assert_eq!(
        f.deadline("job", DeadlineKind::TimerRun),
        Some(f.mono(secs(23 * 3600)))
    );
    // A second clock change (not past the next run) runs nothing more.
    f.jump_wall(secs(3600));
    let fx = f.send(Input::ClockChanged);
    let fx2 = f.advance(secs(60));
    assert!(Fake::spawns(&fx).is_empty() && Fake::spawns(&fx2).is_empty());
    assert_eq!(
        f.rec("job").timer.as_ref().and_then(|t| t.next),
        Some(utc(2026, 6, 17, 3, 0))
    );
}

#[test]
fn a_clock_set_back_plans_the_next_calendar_match_after_the_new_time() {
    let mut f = utc_fake();
    f.load(vec![unit("job").timer(Timer {
        calendar: Some(cal("0 3 * * *")),
        ..Default::default()
    })]);
    let fx = f.advance(secs(15 * 3600));
    assert_eq!(Fake::spawns(&fx), vec!["job"]);
    f.exit("job", 0);
    assert_eq!(
        f.rec("job").timer.as_ref().and_then(|t| t.next),
        Some(utc(2026, 6, 17, 3, 0))
    );
    // Set back two days, to 2026-06-14 03:00: the next match is 2026-06-15 03:00, 24h on
    // (not the old plan, three days on).
    f.jump_wall_back(secs(2 * 86_400));
    let fx = f.send(Input::ClockChanged);
    assert!(Fake::spawns(&fx).is_empty());
    assert_eq!(
        f.rec("job").timer.as_ref().and_then(|t| t.next),
        Some(utc(2026, 6, 15, 3, 0))
    );
    assert_eq!(
        f.deadline("job", DeadlineKind::TimerRun),
        Some(f.mono(secs(15 * 3600 + 86_400)))
    );
    // The last run "in the future" stays shown; nothing runs before the new plan.
    let fx = f.advance(secs(86_400 - 1));
    assert!(Fake::spawns(&fx).is_empty());
    let fx = f.advance(secs(1));
    assert_eq!(Fake::spawns(&fx), vec!["job"]);
}

#[test]
fn a_clock_change_leaves_on_boot_in_monotonic_time() {
    for forward in [true, false] {
        let mut f = utc_fake();
        f.load(vec![unit("job").timer(Timer {
            on_boot: Some(secs(120)),
            calendar: Some(cal("0 3 * * *")),
            ..Default::default()
        })]);
        f.advance(secs(30));
        if forward {
            f.jump_wall(secs(3600));
        } else {
            f.jump_wall_back(secs(3600));
        }
        let fx = f.send(Input::ClockChanged);
        assert!(Fake::spawns(&fx).is_empty());
        assert_eq!(
            f.deadline("job", DeadlineKind::TimerRun),
            Some(f.mono(secs(120))),
            "forward: {forward}"
        );
        let fx = f.advance(secs(90));
        assert_eq!(Fake::spawns(&fx), vec!["job"], "forward: {forward}");
    }
}

#[test]
fn a_clock_set_forward_does_not_make_up_every_steps() {
    let mut f = utc_fake();
    f.load(vec![unit("job").timer(every(secs(600)))]);
    f.advance(secs(60));
    // 12:01 -> 13:01: the 12:10 ... 13:00 steps are not made up; next is 13:10.
    f.jump_wall(secs(3600));
    let fx = f.send(Input::ClockChanged);
    assert!(Fake::spawns(&fx).is_empty());
    assert_eq!(
        f.rec("job").timer.as_ref().and_then(|t| t.next),
        Some(utc(2026, 6, 15, 13, 10))
    );
    assert_eq!(
        f.deadline("job", DeadlineKind::TimerRun),
        Some(f.mono(secs(600)))
    );
}

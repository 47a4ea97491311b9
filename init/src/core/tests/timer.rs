//! Timer units: every, calendar (with DST), on_boot, persistence, overlap, timeout.

use chrono::{TimeZone, Utc};
use units::model::Calendar;

use super::*;

pub(super) fn cal(text: &str) -> Calendar {
    match text.parse::<croner::Cron>() {
        Ok(cron) => Calendar {
            text: text.into(),
            cron,
        },
        Err(e) => panic!("bad cron {text}: {e}"),
    }
}

pub(super) fn every(d: Duration) -> Timer {
    Timer {
        every: Some(d),
        ..Default::default()
    }
}

/// A supervisor whose calendar runs in UTC, so tests do not depend on the host's zone.
pub(super) fn utc_fake() -> Fake {
    Fake::with(Supervisor::with_calendar(defaults(), |c, t| {
        next_calendar(c, t, &Utc)
    }))
}

pub(super) fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> SystemTime {
    match Utc.with_ymd_and_hms(y, mo, d, h, mi, 0) {
        chrono::LocalResult::Single(t) => SystemTime::from(t),
        _ => panic!("bad date"),
    }
}

#[test]
fn timer_unit_waits_then_runs_every_interval_from_the_previous_start() {
    let mut f = utc_fake();
    let fx = f.load(vec![unit("job").timer(every(secs(600)))]);
    assert!(Fake::spawns(&fx).is_empty());
    assert_eq!(f.state("job"), State::Waiting);
    assert_eq!(
        f.rec("job").timer.as_ref().and_then(|t| t.next),
        Some(f.wall(secs(600)))
    );
    assert_eq!(
        f.deadline("job", DeadlineKind::TimerRun),
        Some(f.mono(secs(600)))
    );
    assert_eq!(f.sup.wait_result("job", Want::Up), Some(Ok(())));
    let fx = f.advance(secs(600));
    assert_eq!(Fake::spawns(&fx), vec!["job"]);
    assert_eq!(f.state("job"), State::Running);
    f.advance(secs(30));
    f.exit("job", 3);
    let t = f.rec("job").timer.clone().unwrap_or_default();
    assert_eq!(f.state("job"), State::Waiting);
    assert_eq!(t.last_start, Some(f.wall(secs(600))));
    assert_eq!(
        t.last_result,
        Some(RunResult {
            status: Some(ExitStatus::Code(3)),
            reason: None,
            duration: secs(30)
        })
    );
    // A failed run is not restarted: the restart section does not apply.
    assert_eq!(f.deadline("job", DeadlineKind::Restart), None);
    assert_eq!(t.next, Some(f.wall(secs(1200))));
    let fx = f.advance(secs(570));
    assert_eq!(Fake::spawns(&fx), vec!["job"]);
}

#[test]
fn a_run_due_while_the_previous_goes_on_is_skipped_and_counted() {
    let mut f = utc_fake();
    f.load(vec![unit("job").timer(every(secs(60)))]);
    f.advance(secs(60)); // run 1 starts, never ends
    let fx = f.advance(secs(60));
    assert!(Fake::spawns(&fx).is_empty());
    f.advance(secs(60));
    let t = f.rec("job").timer.clone().unwrap_or_default();
    assert_eq!(t.skipped, 2);
    assert_eq!(t.last_skip, Some(f.wall(secs(180))));
    assert_eq!(t.next, Some(f.wall(secs(240))));
    f.exit("job", 0);
    let fx = f.advance(secs(60));
    assert_eq!(Fake::spawns(&fx), vec!["job"]);
}

#[test]
fn leftovers_of_a_run_count_as_still_going() {
    let mut f = utc_fake();
    f.auto_empty = false;
    f.load(vec![unit("job").timer(every(secs(60)))]);
    f.advance(secs(60));
    f.exit("job", 0);
    let fx = f.advance(secs(60));
    assert!(Fake::spawns(&fx).is_empty());
    assert_eq!(f.rec("job").timer.as_ref().map(|t| t.skipped), Some(1));
}

#[test]
fn calendar_runs_at_the_next_occurrence() {
    let mut f = utc_fake();
    // base: 2026-06-15 12:00 UTC
    f.load(vec![unit("job").timer(Timer {
        calendar: Some(cal("0 3 * * *")),
        ..Default::default()
    })]);
    let next = utc(2026, 6, 16, 3, 0);
    assert_eq!(f.rec("job").timer.as_ref().and_then(|t| t.next), Some(next));
    let fx = f.advance(secs(15 * 3600 - 1));
    assert!(Fake::spawns(&fx).is_empty());
    let fx = f.advance(secs(1));
    assert_eq!(Fake::spawns(&fx), vec!["job"]);
    assert_eq!(
        f.rec("job").timer.as_ref().and_then(|t| t.next),
        Some(utc(2026, 6, 17, 3, 0))
    );
}

#[test]
fn the_earliest_of_every_and_calendar_wins() {
    let mut f = utc_fake();
    f.load(vec![unit("job").timer(Timer {
        every: Some(secs(7200)),
        calendar: Some(cal("30 12 * * *")),
        ..Default::default()
    })]);
    assert_eq!(
        f.rec("job").timer.as_ref().and_then(|t| t.next),
        Some(utc(2026, 6, 15, 12, 30))
    );
    f.advance(secs(1800));
    f.exit("job", 0);
    // every counts from that start: 14:30; calendar next: tomorrow.
    assert_eq!(
        f.rec("job").timer.as_ref().and_then(|t| t.next),
        Some(utc(2026, 6, 15, 14, 30))
    );
}

#[test]
fn on_boot_runs_once_after_colony_starts() {
    let mut f = utc_fake();
    f.load(vec![unit("job").timer(Timer {
        on_boot: Some(secs(120)),
        every: Some(secs(3600)),
        ..Default::default()
    })]);
    assert_eq!(
        f.rec("job").timer.as_ref().and_then(|t| t.next),
        Some(f.wall(secs(120)))
    );
    let fx = f.advance(secs(120));
    assert_eq!(Fake::spawns(&fx), vec!["job"]);
    f.exit("job", 0);
    assert_eq!(
        f.rec("job").timer.as_ref().and_then(|t| t.next),
        Some(f.wall(secs(120 + 3600)))
    );
}

#[test]
fn on_boot_alone_runs_once_only() {
    let mut f = utc_fake();
    f.load(vec![unit("job").timer(Timer {
        on_boot: Some(secs(120)),
        ..Default::default()
    })]);
    f.advance(secs(120));
    f.exit("job", 0);
    assert_eq!(f.rec("job").timer.as_ref().and_then(|t| t.next), None);
    assert_eq!(f.state("job"), State::Waiting);
    let fx = f.advance(secs(100_000));
    assert!(Fake::spawns(&fx).is_empty());
}

#[test]
fn persistent_timer_catches_up_a_missed_run_once_at_start_up() {
    let mut f = utc_fake();
    let last = f.wall(Duration::ZERO) - secs(7200);
    f.send(Input::RestoreTimer {
        unit: "job".into(),
        last_run: last,
    });
    let fx = f.load(vec![unit("job").timer(Timer {
        every: Some(secs(3600)),
        persistent: true,
        ..Default::default()
    })]);
    assert!(fx.iter().any(|e| matches!(e, Effect::Arm { kind: DeadlineKind::TimerRun, at, .. } if *at == f.mono(Duration::ZERO))));
    let fx = f.advance(Duration::ZERO);
    assert_eq!(Fake::spawns(&fx), vec!["job"]);
    assert!(has(
        &fx,
        &Effect::PersistTimerRun {
            unit: "job".into(),
            at: f.wall(Duration::ZERO)
        }
    ));
    f.exit("job", 0);
    assert_eq!(
        f.rec("job").timer.as_ref().and_then(|t| t.next),
        Some(f.wall(secs(3600)))
    );
}

#[test]
fn persistent_timer_not_due_keeps_its_schedule_from_the_last_run() {
    let mut f = utc_fake();
    f.send(Input::RestoreTimer {
        unit: "job".into(),
        last_run: f.wall(Duration::ZERO) - secs(600),
    });
    let fx = f.load(vec![unit("job").timer(Timer {
        every: Some(secs(3600)),
        persistent: true,
        ..Default::default()
    })]);
    assert!(Fake::spawns(&fx).is_empty());
    let t = f.rec("job").timer.clone().unwrap_or_default();
    assert_eq!(t.next, Some(f.wall(secs(3000))));
    assert_eq!(t.last_start, Some(f.wall(Duration::ZERO) - secs(600)));
}

#[test]
fn persistent_calendar_timer_catches_up() {
    let mut f = utc_fake();
    f.send(Input::RestoreTimer {
        unit: "job".into(),
        last_run: utc(2026, 6, 14, 3, 0),
    });
    f.load(vec![unit("job").timer(Timer {
        calendar: Some(cal("0 3 * * *")),
        persistent: true,
        ..Default::default()
    })]);
    let fx = f.advance(Duration::ZERO);
    assert_eq!(Fake::spawns(&fx), vec!["job"]);
    // Once only: then the next occurrence.
    f.exit("job", 0);
    assert_eq!(
        f.rec("job").timer.as_ref().and_then(|t| t.next),
        Some(utc(2026, 6, 16, 3, 0))
    );
}

#[test]
fn a_non_persistent_timer_ignores_a_restored_run() {
    let mut f = utc_fake();
    f.send(Input::RestoreTimer {
        unit: "job".into(),
        last_run: f.wall(Duration::ZERO) - secs(7200),
    });
    f.load(vec![unit("job").timer(every(secs(3600)))]);
    let fx = f.advance(Duration::ZERO);
    assert!(Fake::spawns(&fx).is_empty());
}

#[test]
fn persist_effect_only_for_persistent_units() {
    let mut f = utc_fake();
    f.load(vec![unit("job").timer(every(secs(60)))]);
    let fx = f.advance(secs(60));
    assert!(!fx
        .iter()
        .any(|e| matches!(e, Effect::PersistTimerRun { .. })));
}

#[test]
fn timer_timeout_stops_a_run_that_goes_on_too_long() {
    let mut f = utc_fake();
    f.obey = false;
    f.load(vec![unit("job").timer(Timer {
        every: Some(secs(3600)),
        timeout: Some(secs(60)),
        ..Default::default()
    })]);
    f.advance(secs(3600));
    let fx = f.advance(secs(60));
    assert_eq!(Fake::signals(&fx), vec!["job"]);
    let fx = f.advance(secs(5));
    assert!(has(&fx, &killall("job")));
    assert_eq!(f.state("job"), State::Waiting);
    let r = f
        .rec("job")
        .timer
        .as_ref()
        .and_then(|t| t.last_result.clone());
    assert_eq!(
        r,
        Some(RunResult {
            status: Some(ExitStatus::Signal(9)),
            reason: Some(ExitReason::Timeout),
            duration: secs(65)
        })
    );
}

#[test]
fn start_runs_a_timer_unit_now_and_stop_ends_its_schedule() {
    let mut f = utc_fake();
    f.load(vec![unit("job").timer(every(secs(3600)))]);
    let fx = f.cmd(Command::Start("job".into()));
    assert_eq!(Fake::spawns(&fx), vec!["job"]);
    assert_eq!(f.sup.wait_result("job", Want::Up), Some(Ok(())));
    f.exit("job", 0);
    assert_eq!(f.state("job"), State::Waiting);
    let fx = f.cmd(Command::Stop("job".into()));
    assert!(has(
        &fx,
        &Effect::Disarm {
            unit: "job".into(),
            kind: DeadlineKind::TimerRun
        }
    ));
    assert_eq!(f.state("job"), State::Stopped);
    assert_eq!(f.rec("job").timer.as_ref().and_then(|t| t.next), None);
    let fx = f.advance(secs(10_000));
    assert!(fx.is_empty());
}

#[test]
fn stopping_a_timer_unit_mid_run_stops_the_run() {
    let mut f = utc_fake();
    f.load(vec![unit("job").timer(every(secs(60)))]);
    f.advance(secs(60));
    let fx = f.cmd(Command::Stop("job".into()));
    assert_eq!(Fake::signals(&fx), vec!["job"]);
    assert_eq!(f.state("job"), State::Stopped);
}

#[test]
fn disabled_timer_unit_is_not_scheduled() {
    let mut f = utc_fake();
    f.load(vec![unit("job").timer(every(secs(60))).disabled()]);
    assert_eq!(f.state("job"), State::Stopped);
    assert!(f.deadlines.is_empty());
}

#[test]
fn changed_timer_is_rescheduled() {
    let mut f = utc_fake();
    f.load(vec![unit("job").timer(every(secs(3600)))]);
    f.advance(secs(100));
    f.load(vec![unit("job").timer(every(secs(60)))]);
    // No run yet: `every` counts from when the schedule began (t=0).
    assert_eq!(
        f.rec("job").timer.as_ref().and_then(|t| t.next),
        Some(f.wall(secs(120)))
    );
}

#[test]
fn shutdown_stops_a_running_timer_run() {
    let mut f = utc_fake();
    f.load(vec![unit("job").timer(every(secs(60)))]);
    f.advance(secs(60));
    let fx = f.send(Input::Shutdown);
    assert_eq!(Fake::signals(&fx), vec!["job"]);
    assert!(has(&fx, &Effect::Exit { code: 0 }));
}

#[test]
fn the_local_time_zone_path_finds_an_occurrence() {
    // Through `Local`, as `Supervisor::new` does: whatever the host's zone, an
    // every-minute pattern's next run is within a minute and on a whole minute.
    let c = cal("* * * * *");
    let from = base_wall() + secs(5);
    let next = next_calendar(&c, from, &chrono::Local);
    let d = next.and_then(|n| n.duration_since(from).ok());
    assert_eq!(d, Some(secs(55)));
}

#[test]
fn a_restore_after_load_still_catches_up() {
    let mut f = utc_fake();
    f.load(vec![unit("job").timer(Timer {
        every: Some(secs(3600)),
        persistent: true,
        ..Default::default()
    })]);
    f.send(Input::RestoreTimer {
        unit: "job".into(),
        last_run: f.wall(Duration::ZERO) - secs(7200),
    });
    let fx = f.advance(Duration::ZERO);
    assert_eq!(Fake::spawns(&fx), vec!["job"]);
}

#[test]
fn restart_all_leaves_timer_units_alone() {
    let mut f = utc_fake();
    f.load(vec![unit("job").timer(every(secs(3600))), unit("svc")]);
    let fx = f.cmd(Command::RestartAll);
    assert_eq!(Fake::spawns(&fx), vec!["svc"]);
    assert_eq!(f.state("job"), State::Waiting);
}

#[test]
fn a_timer_run_that_cannot_start_is_recorded_and_waits() {
    let mut f = utc_fake();
    f.broken.insert("job".into());
    f.load(vec![unit("job").timer(every(secs(60)))]);
    f.advance(secs(60));
    assert_eq!(f.state("job"), State::Waiting);
    let t = f.rec("job").timer.clone().unwrap_or_default();
    assert_eq!(
        t.last_result.map(|r| r.reason),
        Some(Some(ExitReason::Exec))
    );
    assert_eq!(t.next, Some(f.wall(secs(120))));
}

#[test]
fn timers_view() {
    let mut f = utc_fake();
    f.load(vec![unit("job").timer(Timer {
        every: Some(secs(900)),
        calendar: Some(cal("0 3 * * *")),
        ..Default::default()
    })]);
    f.advance(secs(900));
    f.advance(ms(1200));
    f.exit("job", 0);
    let t = f.rec("job").timer_status();
    let t = t.unwrap_or_default();
    assert_eq!(t.schedule, "every 15m, 0 3 * * *");
    assert_eq!(t.last.as_deref(), Some("2026-06-15T12:15:00.000Z"));
    assert_eq!(t.next.as_deref(), Some("2026-06-15T12:30:00.000Z"));
    assert_eq!(t.last_result.as_deref(), Some("exit 0 in 1.2s"));
    assert!(!t.running);
}

#[test]
fn a_unit_that_stops_being_a_timer_drops_its_schedule() {
    let mut f = utc_fake();
    f.load(vec![unit("job").timer(every(secs(60)))]);
    let fx = f.load(vec![unit("job")]);
    assert!(has(
        &fx,
        &Effect::Disarm {
            unit: "job".into(),
            kind: DeadlineKind::TimerRun
        }
    ));
    assert_eq!(Fake::spawns(&fx), vec!["job"]);
    assert!(f.rec("job").timer.is_none());
    assert_eq!(f.state("job"), State::Running);
}

#[test]
fn a_service_in_backoff_that_becomes_a_timer_is_scheduled() {
    let mut f = utc_fake();
    f.load(vec![unit("job")]);
    f.exit("job", 1);
    assert_eq!(f.state("job"), State::Backoff);
    f.load(vec![unit("job").timer(every(secs(60)))]);
    assert_eq!(f.state("job"), State::Waiting);
    assert_eq!(f.deadline("job", DeadlineKind::Restart), None);
    assert!(f.deadline("job", DeadlineKind::TimerRun).is_some());
}

#[test]
fn a_stop_cancelled_by_a_start_keeps_the_schedule() {
    let mut f = utc_fake();
    f.obey = false;
    f.load(vec![
        unit("job").timer(every(secs(60))),
        unit("dep")
            .requires(&["job"])
            .with(|u| u.stop.timeout = Some(secs(3600))),
    ]);
    f.advance(secs(60)); // a run goes on
                         // Stopping job waits for dep to stop first; meanwhile the next run's time passes.
    f.cmd(Command::Stop("job".into()));
    f.advance(secs(60));
    assert_eq!(
        f.state("job"),
        State::Running,
        "its stop still waits for dep"
    );
    assert_eq!(f.rec("job").pid, Some(101));
    f.cmd(Command::Start("job".into()));
    assert_eq!(f.state("job"), State::Running);
    assert_eq!(f.rec("job").pid, Some(101), "the same run goes on");
    assert!(f.deadline("job", DeadlineKind::TimerRun).is_some());
}

#[test]
fn a_last_run_in_the_future_does_not_delay_the_schedule() {
    // The clock was set back after the last run: `every` counts from now, not from then.
    let mut f = utc_fake();
    f.send(Input::RestoreTimer {
        unit: "job".into(),
        last_run: f.wall(secs(86_400)),
    });
    f.load(vec![unit("job").timer(Timer {
        every: Some(secs(600)),
        persistent: true,
        ..Default::default()
    })]);
    assert_eq!(
        f.rec("job").timer.as_ref().and_then(|t| t.next),
        Some(f.wall(secs(600)))
    );
}

#[test]
fn a_run_due_while_a_required_unit_is_starting_waits_until_it_is_up() {
    let mut f = utc_fake();
    f.load(vec![
        unit("db").notify(Some(secs(1000))),
        unit("job").timer(every(secs(60))).requires(&["db"]),
    ]);
    f.send(Input::Ready { unit: "db".into() });
    assert_eq!(f.state("job"), State::Waiting);
    // db crashes and comes back, not ready yet, when the run is due.
    f.advance(secs(30));
    f.exit("db", 1);
    let fx = f.advance(secs(30));
    assert_eq!(
        Fake::spawns(&fx),
        vec!["db"],
        "the run must not start before db is up"
    );
    assert_eq!(f.state("db"), State::Starting);
    assert!(f.rec("job").run_waiting);
    assert_eq!(f.state("job"), State::Waiting);
    // The next due time comes while the run still waits: that one is skipped, once.
    f.advance(secs(60));
    assert_eq!(f.rec("job").timer.as_ref().map(|t| t.skipped), Some(1));
    // db up: the waiting run goes at once.
    let fx = f.send(Input::Ready { unit: "db".into() });
    assert_eq!(Fake::spawns(&fx), vec!["job"]);
    assert!(!f.rec("job").run_waiting);
    assert_eq!(f.state("job"), State::Running);
    f.exit("job", 0);
    assert_eq!(f.state("job"), State::Waiting);
}

#[test]
fn a_waiting_run_is_dropped_when_the_timer_is_stopped() {
    let mut f = utc_fake();
    f.load(vec![
        unit("db").notify(Some(secs(1000))),
        unit("job").timer(every(secs(60))).after(&["db"]),
    ]);
    f.send(Input::Ready { unit: "db".into() });
    f.advance(secs(30));
    f.exit("db", 1);
    f.advance(secs(30));
    assert!(f.rec("job").run_waiting);
    f.cmd(Command::Stop("job".into()));
    assert!(!f.rec("job").run_waiting);
    let fx = f.send(Input::Ready { unit: "db".into() });
    assert!(Fake::spawns(&fx).is_empty(), "{fx:?}");
    assert_eq!(f.state("job"), State::Stopped);
}

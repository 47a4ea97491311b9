use super::*;

const S: Duration = Duration::from_secs(1);

fn limiter(burst: u32, max: usize) -> RateLimiter<&'static str> {
    RateLimiter::new(30 * S, burst, max, "other")
}

fn shown(v: Verdict<&'static str>) -> (bool, Vec<(&'static str, u64)>) {
    (v.show, v.summaries)
}

#[test]
fn a_burst_passes_then_messages_are_counted_and_said_before_the_next_window() {
    let t0 = Instant::now();
    let mut rl = limiter(3, 16);
    for _ in 0..3 {
        assert_eq!(shown(rl.allow(&"web", t0)), (true, vec![]));
    }
    for k in 0..5 {
        assert_eq!(shown(rl.allow(&"web", t0 + k * S)), (false, vec![]));
    }
    // Still inside the window.
    assert_eq!(shown(rl.allow(&"web", t0 + 29 * S)), (false, vec![]));
    // The window is over: the count comes first, then the message.
    assert_eq!(
        shown(rl.allow(&"web", t0 + 31 * S)),
        (true, vec![("web", 6)])
    );
    // Nothing more is owed.
    assert_eq!(rl.next_due(), None);
}

#[test]
fn the_summary_deadline_is_armed_only_while_something_was_suppressed() {
    let t0 = Instant::now();
    let mut rl = limiter(2, 16);
    rl.allow(&"web", t0);
    rl.allow(&"web", t0 + S);
    assert_eq!(rl.next_due(), None, "nothing suppressed: no wakeup");
    rl.allow(&"web", t0 + 2 * S);
    rl.allow(&"web", t0 + 3 * S);
    // Due at the end of the window, which began with the first message.
    assert_eq!(rl.next_due(), Some(t0 + 30 * S));
    assert_eq!(rl.take_due(t0 + 29 * S), vec![]);
    assert_eq!(rl.take_due(t0 + 30 * S), vec![("web", 2)]);
    assert_eq!(rl.next_due(), None, "said once: the deadline is gone");
    // The flood stopped and came back: a new window, nothing said twice.
    assert_eq!(shown(rl.allow(&"web", t0 + 100 * S)), (true, vec![]));
}

#[test]
fn sources_are_counted_apart() {
    let t0 = Instant::now();
    let mut rl = limiter(1, 16);
    assert!(rl.allow(&"a", t0).show);
    assert!(!rl.allow(&"a", t0).show);
    assert!(rl.allow(&"b", t0).show);
    assert!(!rl.allow(&"b", t0 + S).show);
    assert!(!rl.allow(&"b", t0 + S).show);
    assert_eq!(rl.take_due(t0 + 60 * S), vec![("a", 1), ("b", 2)]);
}

#[test]
fn with_no_room_new_sources_share_the_overflow_window() {
    let t0 = Instant::now();
    let mut rl = limiter(2, 2);
    assert!(rl.allow(&"a", t0).show);
    assert!(rl.allow(&"b", t0 + S).show);
    // Full, and no window is over: "c" and "d" share one window.
    assert!(rl.allow(&"c", t0 + 2 * S).show);
    assert!(rl.allow(&"d", t0 + 2 * S).show);
    assert!(!rl.allow(&"c", t0 + 2 * S).show);
    assert_eq!(rl.len(), 2);
    assert_eq!(rl.take_due(t0 + 40 * S), vec![("other", 1)]);
}

#[test]
fn a_new_source_evicts_the_oldest_window_that_is_over_and_says_its_count() {
    let t0 = Instant::now();
    let mut rl = limiter(1, 2);
    rl.allow(&"a", t0);
    rl.allow(&"a", t0); // suppressed, owed at t0+30
    rl.allow(&"b", t0 + 10 * S);
    // "a"'s window is over (its deadline not handled yet): it makes room for "c".
    assert_eq!(shown(rl.allow(&"c", t0 + 31 * S)), (true, vec![("a", 1)]));
    assert_eq!(rl.len(), 2);
    assert_eq!(rl.next_due(), None);
    // "b"'s window is over too (t0+40), not yet at t0+39.
    assert!(rl.allow(&"d", t0 + 39 * S).show);
    assert_eq!(rl.len(), 2, "d went to the overflow window");
    assert!(rl.allow(&"e", t0 + 41 * S).show);
    assert_eq!(rl.len(), 2);
}

#[test]
fn a_flood_of_distinct_sources_is_bounded_in_memory_and_output() {
    let t0 = Instant::now();
    let mut rl: RateLimiter<u64> = RateLimiter::new(30 * S, 10, 1024, u64::MAX);
    let mut out = 0u64;
    for k in 0..100_000u64 {
        let v = rl.allow(&k, t0 + Duration::from_micros(k));
        out += v.show as u64 + v.summaries.len() as u64;
    }
    assert_eq!(rl.len(), 1024);
    assert!(out <= 1024 * 10 + 10, "{out} lines");
    let owed: u64 = rl.take_due(t0 + 60 * S).iter().map(|(_, n)| n).sum();
    assert_eq!(
        owed,
        100_000 - 1024 - 10,
        "every message not written is counted"
    );
}

#[test]
fn a_persistent_failure_is_news_when_it_starts_changes_and_ends() {
    let mut p = Persistent::default();
    assert!(!p.succeeded());
    assert!(p.failed("No space left on device"));
    for _ in 0..1000 {
        assert!(!p.failed("No space left on device"));
    }
    assert!(p.failed("Input/output error"));
    assert!(p.succeeded());
    assert!(!p.succeeded());
    assert!(p.failed("No space left on device"));
}

#[test]
fn kinds_read_as_what_they_count() {
    assert_eq!(
        Kind::BadRequest(BadRequest::from(&RequestError::NotUtf8)).to_string(),
        "control request dropped: not UTF-8"
    );
    assert_eq!(
        Kind::NotifyDropped(crate::kernel::notify::DropReason::NoUnit).to_string(),
        "notify message dropped: sender is in no unit"
    );
}

//! Bounds on colony-init's own log where a unit or a FIFO writer decides how often it is
//! written (a notify message in a loop, bad control requests, a log file that cannot be
//! written), as journald's `RateLimitIntervalSec=`/`RateLimitBurst=` bound a service.
//!
//! Each message has a [`Source`] (a unit, or none, and a [`Kind`]). A source gets [`BURST`]
//! messages per [`INTERVAL`]; past that its messages are counted, not written. The count
//! is said as "N messages suppressed" before the source's next written message, or at the
//! end of its window: [`RateLimiter::next_due`] is the one deadline the loop arms for it,
//! and only while something was suppressed (an idle colony-init makes no wakeups).
//!
//! At most [`MAX_SOURCES`] sources are held. A new one takes the place of the oldest whose
//! window is over, or, with none over, shares one overflow window with every other source
//! that found no room: distinct sources (a unit per message kind, thousands of units) cost
//! neither unbounded memory nor unbounded output.
//!
//! [`RateLimiter`] is pure (time comes in as a parameter); [`Limits`] writes its verdicts
//! with `tracing`. [`Persistent`] turns a failure that repeats on every event (a full disk
//! under a unit's log) into news: when it starts, when it changes, when it ends.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::hash::Hash;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use units::proto::RequestError;

/// A source's window.
pub const INTERVAL: Duration = Duration::from_secs(30);
/// Messages a source may write per window.
pub const BURST: u32 = 10;
/// Sources held at once (each with its window).
pub const MAX_SOURCES: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    shown: u32,
    suppressed: u64,
}

/// What [`RateLimiter::allow`] decided.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict<K> {
    /// Write this message.
    pub show: bool,
    /// Counts of suppressed messages to say first: `(source, count)` of windows now over.
    pub summaries: Vec<(K, u64)>,
}

/// Per-source windows of at most `burst` messages each `interval`.
#[derive(Debug)]
pub struct RateLimiter<K: Clone + Eq + Hash + Ord> {
    interval: Duration,
    burst: u32,
    max_sources: usize,
    windows: HashMap<K, Window>,
    /// Every held source by the start of its window: the oldest is the one to evict.
    by_start: BTreeSet<(Instant, K)>,
    /// Sources with something suppressed, by the end of their window.
    owed: BTreeSet<(Instant, K)>,
    /// The window shared by sources that found no room (never evicted).
    overflow_key: K,
    overflow: Option<Window>,
}

impl<K: Clone + Eq + Hash + Ord> RateLimiter<K> {
    /// `overflow`: the key under which sources that find no room are counted together.
    pub fn new(interval: Duration, burst: u32, max_sources: usize, overflow: K) -> Self {
        RateLimiter {
            interval,
            burst,
            max_sources,
            windows: HashMap::new(),
            by_start: BTreeSet::new(),
            owed: BTreeSet::new(),
            overflow_key: overflow,
            overflow: None,
        }
    }

    /// One message from `key` at `now`: whether to write it, and what to say before it.
    pub fn allow(&mut self, key: &K, now: Instant) -> Verdict<K> {
        let mut summaries = Vec::new();
        let held = *key == self.overflow_key || self.windows.contains_key(key);
        let key = if held || self.make_room(now, &mut summaries) {
            key
        } else {
            &self.overflow_key.clone()
        };
        let show = self.hit(key, now, &mut summaries);
        Verdict { show, summaries }
    }

    /// Take the counts of every window that is over with something suppressed, earliest
    /// first. Their sources keep their place; their next message opens a new window.
    pub fn take_due(&mut self, now: Instant) -> Vec<(K, u64)> {
        let mut out = Vec::new();
        while let Some((end, _)) = self.owed.first() {
            if *end > now {
                break;
            }
            let Some((_, key)) = self.owed.pop_first() else {
                break;
            };
            if let Some(w) = self.window_mut(&key) {
                let n = std::mem::take(&mut w.suppressed);
                out.push((key, n));
            }
        }
        out
    }

    /// When the earliest window with something suppressed ends (None: nothing owed, no
    /// deadline needed).
    pub fn next_due(&self) -> Option<Instant> {
        self.owed.first().map(|(t, _)| *t)
    }

    /// Sources held (the overflow window not counted).
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    fn window_mut(&mut self, key: &K) -> Option<&mut Window> {
        if *key == self.overflow_key {
            self.overflow.as_mut()
        } else {
            self.windows.get_mut(key)
        }
    }

    fn end(&self, w: &Window) -> Instant {
        w.start.checked_add(self.interval).unwrap_or(w.start)
    }

    /// Room for one more source: true if there is (or was made by evicting the oldest
    /// source whose window is over; its count, if any, goes to `summaries`).
    fn make_room(&mut self, now: Instant, summaries: &mut Vec<(K, u64)>) -> bool {
        if self.windows.len() < self.max_sources {
            return true;
        }
        let Some((start, key)) = self.by_start.first().cloned() else {
            return false;
        };
        if start
            .checked_add(self.interval)
            .is_some_and(|end| end > now)
        {
            return false;
        }
        self.by_start.pop_first();
        if let Some(w) = self.windows.remove(&key) {
            if w.suppressed > 0 {
                self.owed.remove(&(self.end(&w), key.clone()));
                summaries.push((key, w.suppressed));
            }
        }
        true
    }

    fn hit(&mut self, key: &K, now: Instant, summaries: &mut Vec<(K, u64)>) -> bool {
        let (interval, burst) = (self.interval, self.burst);
        let fresh = Window {
            start: now,
            shown: 0,
            suppressed: 0,
        };
        let is_overflow = *key == self.overflow_key;
        let r = if is_overflow {
            step(self.overflow.get_or_insert(fresh), now, interval, burst)
        } else {
            match self.windows.get_mut(key) {
                Some(w) => step(w, now, interval, burst),
                None => {
                    // Only a new source allocates its key.
                    let mut w = fresh;
                    let r = step(&mut w, now, interval, burst);
                    self.windows.insert(key.clone(), w);
                    self.by_start.insert((now, key.clone()));
                    r
                }
            }
        };
        self.settle(key, r, is_overflow, summaries);
        r.show
    }

    /// Record what [`step`] did to `key`'s window in the ordered sets.
    fn settle(&mut self, key: &K, r: Step, is_overflow: bool, summaries: &mut Vec<(K, u64)>) {
        if let Some((old_start, n)) = r.closed {
            let old_end = old_start.checked_add(self.interval).unwrap_or(old_start);
            if n > 0 {
                self.owed.remove(&(old_end, key.clone()));
                summaries.push((key.clone(), n));
            }
            if !is_overflow {
                self.by_start.remove(&(old_start, key.clone()));
                self.by_start.insert((r.start, key.clone()));
            }
        }
        if r.first_suppressed {
            let end = r.start.checked_add(self.interval).unwrap_or(r.start);
            self.owed.insert((end, key.clone()));
        }
    }
}

/// What one message did to a window.
#[derive(Debug, Clone, Copy)]
struct Step {
    show: bool,
    /// The window was over: its start and its suppressed count (a new one began).
    closed: Option<(Instant, u64)>,
    /// The first message suppressed in this window (its count is now owed).
    first_suppressed: bool,
    /// The window's start after the message.
    start: Instant,
}

fn step(w: &mut Window, now: Instant, interval: Duration, burst: u32) -> Step {
    let mut closed = None;
    // A window whose end is past the clock's range is over at once (never held open).
    if w.start.checked_add(interval).is_none_or(|end| now >= end) {
        closed = Some((w.start, w.suppressed));
        *w = Window {
            start: now,
            shown: 0,
            suppressed: 0,
        };
    }
    let (show, first_suppressed) = if w.shown < burst {
        w.shown += 1;
        (true, false)
    } else {
        w.suppressed += 1;
        (false, w.suppressed == 1)
    };
    Step {
        show,
        closed,
        first_suppressed,
        start: w.start,
    }
}

/// What a message of colony-init's own is about (with its unit, the [`Source`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    /// `MAINPID=` naming a process outside the unit.
    NotifyForeignMainPid,
    /// `RELOADING=1`.
    NotifyReloading,
    /// `STOPPING=1`.
    NotifyStopping,
    /// A notify datagram that was dropped, and why.
    NotifyDropped(crate::kernel::notify::DropReason),
    /// A control request that could not be parsed.
    BadRequest(BadRequest),
    /// A request whose reply could not be sent.
    ReplyDropped,
    /// A unit's log file could not be written.
    LogWrite,
    /// Sources that found no room among [`MAX_SOURCES`], counted together.
    Other,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::NotifyForeignMainPid => f.write_str("notify: MAINPID= outside the unit"),
            Kind::NotifyReloading => f.write_str("notify: reloading"),
            Kind::NotifyStopping => f.write_str("notify: stopping"),
            Kind::NotifyDropped(why) => write!(f, "notify message dropped: {why}"),
            Kind::BadRequest(what) => write!(f, "control request dropped: {what}"),
            Kind::ReplyDropped => f.write_str("reply dropped"),
            Kind::LogWrite => f.write_str("writing the log failed"),
            Kind::Other => f.write_str("messages of too many sources to tell apart"),
        }
    }
}

/// A kind of unparsable control request ([`RequestError`] without its text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BadRequest {
    TooLong,
    NotUtf8,
    Control,
    Empty,
    BadReplyName,
    UnknownVerb,
}

impl From<&RequestError> for BadRequest {
    fn from(e: &RequestError) -> Self {
        match e {
            RequestError::TooLong => BadRequest::TooLong,
            RequestError::NotUtf8 => BadRequest::NotUtf8,
            RequestError::Control => BadRequest::Control,
            RequestError::Empty => BadRequest::Empty,
            RequestError::BadReplyName(_) => BadRequest::BadReplyName,
            RequestError::UnknownVerb { .. } => BadRequest::UnknownVerb,
        }
    }
}

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BadRequest::TooLong => "too long",
            BadRequest::NotUtf8 => "not UTF-8",
            BadRequest::Control => "control characters",
            BadRequest::Empty => "empty",
            BadRequest::BadReplyName => "bad reply name",
            BadRequest::UnknownVerb => "unknown verb",
        })
    }
}

/// Who a message is about: a unit (or none: a sender colony-init cannot name) and a kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Source {
    pub kind: Kind,
    pub unit: Option<String>,
}

impl Source {
    pub fn of_unit(unit: &str, kind: Kind) -> Source {
        Source {
            kind,
            unit: Some(unit.to_string()),
        }
    }

    /// A source no unit answers for (a bad control request, a sender in no unit).
    pub fn anonymous(kind: Kind) -> Source {
        Source { kind, unit: None }
    }
}

/// The loop's rate limiter: writes the "N messages suppressed" summaries it owes.
#[derive(Debug)]
pub struct Limits {
    limiter: RateLimiter<Source>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            limiter: RateLimiter::new(INTERVAL, BURST, MAX_SOURCES, Source::anonymous(Kind::Other)),
        }
    }
}

impl Limits {
    /// Whether to write a message from `source` now; what was suppressed of it (or of a
    /// source evicted to make room) is said first.
    pub fn allow(&mut self, source: &Source, now: Instant) -> bool {
        let v = self.limiter.allow(source, now);
        for (s, n) in &v.summaries {
            say_suppressed(s, *n);
        }
        v.show
    }

    /// Say the counts of the windows over at `now` (the loop's deadline for
    /// [`Limits::next_due`] came).
    pub fn flush_due(&mut self, now: Instant) {
        for (s, n) in self.limiter.take_due(now) {
            say_suppressed(&s, n);
        }
    }

    /// When [`Limits::flush_due`] has something to say (None: nothing suppressed).
    pub fn next_due(&self) -> Option<Instant> {
        self.limiter.next_due()
    }
}

fn say_suppressed(s: &Source, n: u64) {
    match &s.unit {
        Some(unit) => warn!(unit = %unit, what = %s.kind, "{n} messages suppressed"),
        None => warn!(what = %s.kind, "{n} messages suppressed"),
    }
}

/// A failure that repeats with every event (a unit's log on a full disk): news only when
/// it starts, when its error changes, and when it ends.
#[derive(Debug, Default)]
pub struct Persistent {
    failing: Option<String>,
}

impl Persistent {
    /// It failed with `error`: true if that is news to say.
    pub fn failed(&mut self, error: &str) -> bool {
        if self.failing.as_deref() == Some(error) {
            return false;
        }
        self.failing = Some(error.to_string());
        true
    }

    /// It worked: true if it was failing (worth saying that it works again).
    pub fn succeeded(&mut self) -> bool {
        self.failing.take().is_some()
    }
}

/// Say a log write failure of `unit` if it is news (and within the source's bound), or that
/// it works again.
pub fn log_write_result(
    limits: &mut Limits,
    state: &mut Persistent,
    unit: &str,
    result: Result<(), &std::io::Error>,
    now: Instant,
) {
    let source = Source::of_unit(unit, Kind::LogWrite);
    match result {
        Err(e) => {
            if state.failed(&e.to_string()) && limits.allow(&source, now) {
                warn!(unit = %unit, error = %e, "writing the log failed; output dropped until it works again");
            }
        }
        Ok(()) => {
            if state.succeeded() && limits.allow(&source, now) {
                info!(unit = %unit, "writing the log of {unit} works again");
            }
        }
    }
}

mod snapshot;
pub use snapshot::LimitsSnap;

#[cfg(test)]
mod tests;

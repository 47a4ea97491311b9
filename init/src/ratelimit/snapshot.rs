//! The limiter's windows across `colonyctl reexec`: a source that was being suppressed
//! stays so until its window ends, and its count is said then, by the new image.

use serde::{Deserialize, Serialize};

use super::*;
use crate::core::MonoClock;

/// One window: its source, its start on CLOCK_MONOTONIC, what it showed and suppressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSnap {
    pub source: Source,
    pub start_ns: u64,
    pub shown: u32,
    pub suppressed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsSnap {
    pub windows: Vec<WindowSnap>,
    /// The window shared by the sources that found no room.
    pub overflow: Option<WindowSnap>,
}

impl<K: Clone + Eq + Hash + Ord> RateLimiter<K> {
    fn put(&mut self, key: K, w: Window, overflow: bool) {
        if w.suppressed > 0 {
            self.owed.insert((self.end(&w), key.clone()));
        }
        if overflow {
            self.overflow = Some(w);
        } else if self.windows.len() < self.max_sources {
            self.by_start.insert((w.start, key.clone()));
            self.windows.insert(key, w);
        }
    }
}

impl Limits {
    pub fn snapshot(&self, clock: &MonoClock) -> LimitsSnap {
        let l = &self.limiter;
        let snap = |source: &Source, w: &Window| WindowSnap {
            source: source.clone(),
            start_ns: clock.to_ns(w.start),
            shown: w.shown,
            suppressed: w.suppressed,
        };
        let mut windows: Vec<WindowSnap> = l.windows.iter().map(|(k, w)| snap(k, w)).collect();
        windows.sort_by(|a, b| a.source.cmp(&b.source));
        LimitsSnap {
            windows,
            overflow: l.overflow.as_ref().map(|w| snap(&l.overflow_key, w)),
        }
    }

    /// Take the windows of a snapshot (into a limiter that holds none yet).
    pub fn restore(&mut self, snap: LimitsSnap, clock: &MonoClock) {
        let window = |w: &WindowSnap| Window {
            start: clock.to_instant(w.start_ns),
            shown: w.shown,
            suppressed: w.suppressed,
        };
        for w in &snap.windows {
            self.limiter.put(w.source.clone(), window(w), false);
        }
        if let Some(w) = &snap.overflow {
            let key = self.limiter.overflow_key.clone();
            self.limiter.put(key, window(w), true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suppressed_source_stays_suppressed_and_its_count_is_said_at_the_windows_end() {
        let clock = crate::handover::mono_clock();
        let now = Instant::now();
        let src = Source::of_unit("a", Kind::LogWrite);
        let mut old = Limits::default();
        for _ in 0..BURST + 3 {
            old.allow(&src, now);
        }
        let snap = old.snapshot(&clock);
        assert_eq!(snap.windows.len(), 1);
        assert_eq!(snap.windows[0].suppressed, 3);
        let mut new = Limits::default();
        new.restore(snap, &clock);
        assert!(!new.allow(&src, now), "a new image forgave the source");
        let due = new.next_due().expect("a summary is owed");
        assert!(due > now && due <= now + INTERVAL + Duration::from_millis(1));
        let said = new.limiter.take_due(due);
        assert_eq!(said, vec![(src, 4)]);
    }
}

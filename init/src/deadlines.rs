//! Every pending deadline in one ordered structure, arming one timerfd for the nearest.
//!
//! Keys are unique: arming a key again moves its deadline. The loop reads the timerfd,
//! takes every key that is due, and re-arms for the next one, so an idle colony-init
//! with no deadline pending has its timer disarmed and makes no wakeups at all.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::Instant;

#[derive(Debug)]
pub struct Deadlines<K: Clone + Eq + Hash + Ord> {
    by_time: BTreeSet<(Instant, K)>,
    by_key: HashMap<K, Instant>,
}

impl<K: Clone + Eq + Hash + Ord> Default for Deadlines<K> {
    fn default() -> Self {
        Deadlines {
            by_time: BTreeSet::new(),
            by_key: HashMap::new(),
        }
    }
}

impl<K: Clone + Eq + Hash + Ord> Deadlines<K> {
    pub fn arm(&mut self, key: K, at: Instant) {
        if let Some(old) = self.by_key.insert(key.clone(), at) {
            self.by_time.remove(&(old, key.clone()));
        }
        self.by_time.insert((at, key));
    }

    pub fn disarm(&mut self, key: &K) {
        if let Some(old) = self.by_key.remove(key) {
            self.by_time.remove(&(old, key.clone()));
        }
    }

    pub fn is_armed(&self, key: &K) -> bool {
        self.by_key.contains_key(key)
    }

    /// The nearest deadline, if any.
    pub fn next(&self) -> Option<Instant> {
        self.by_time.iter().next().map(|(t, _)| *t)
    }

    /// Remove and return every key due at `now`, earliest first.
    pub fn take_due(&mut self, now: Instant) -> Vec<K> {
        let mut due = Vec::new();
        while let Some((t, _)) = self.by_time.first() {
            if *t > now {
                break;
            }
            if let Some((_, k)) = self.by_time.pop_first() {
                self.by_key.remove(&k);
                due.push(k);
            }
        }
        due
    }

    /// Drop every key for which `f` is true (e.g. a forgotten unit's).
    pub fn retain(&mut self, mut f: impl FnMut(&K) -> bool) {
        self.by_time.retain(|(_, k)| f(k));
        self.by_key.retain(|k, _| f(k));
    }

    /// Every armed key and its deadline (in no order).
    pub fn iter(&self) -> impl Iterator<Item = (&K, Instant)> + '_ {
        self.by_key.iter().map(|(k, t)| (k, *t))
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// Arm `timer` (a CLOCK_MONOTONIC timerfd) to fire once at `at`, or disarm it for `None`.
/// A deadline already due fires after 1ns: a zero expiration would disarm the timer instead.
pub fn arm_oneshot(timer: &nix::sys::timerfd::TimerFd, at: Option<Instant>) -> nix::Result<()> {
    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{Expiration, TimerSetTimeFlags};
    match at {
        Some(at) => {
            let d = at
                .saturating_duration_since(Instant::now())
                .max(std::time::Duration::from_nanos(1));
            timer.set(
                Expiration::OneShot(TimeSpec::from_duration(d)),
                TimerSetTimeFlags::empty(),
            )
        }
        None => timer.unset(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rearming_moves_and_due_are_taken_in_order() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut d = Deadlines::default();
        d.arm("a", t0 + 3 * s);
        d.arm("b", t0 + s);
        d.arm("a", t0 + 2 * s);
        assert_eq!(d.len(), 2);
        assert_eq!(d.next(), Some(t0 + s));
        assert_eq!(d.take_due(t0), Vec::<&str>::new());
        assert_eq!(d.take_due(t0 + 2 * s), vec!["b", "a"]);
        assert!(d.is_empty());
        assert_eq!(d.next(), None);
    }

    #[test]
    fn disarm_and_retain() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        d.arm(1, t0);
        d.arm(2, t0);
        d.arm(3, t0);
        d.disarm(&2);
        d.retain(|k| *k != 3);
        assert_eq!(d.take_due(t0), vec![1]);
    }
}

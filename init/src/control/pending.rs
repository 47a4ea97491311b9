//! Replies waiting for their client to read them, with bounds.
//!
//! A client that names a reply FIFO and never reads it must not pin colony-init's memory and
//! fds: at most [`Limits::per_fifo`] replies wait per reply FIFO, at most [`Limits::fds`]
//! and [`Limits::bytes`] in all, and a reply that makes no progress for
//! [`Limits::timeout`] is dropped. Over a bound, the oldest replies go first.
//!
//! Pure: the caller owns the fds (in `T`), the epoll registrations, the clock and the log
//! (rate-limited); each dropped `T` is handed back, with why, to be unregistered and closed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Replies waiting on one reply FIFO (a client reads one reply per request).
    pub per_fifo: usize,
    /// Replies waiting in all: each holds an fd.
    pub fds: usize,
    /// Bytes of replies waiting in all.
    pub bytes: usize,
    /// A reply whose client reads nothing of it for this long is dropped.
    pub timeout: Duration,
}

pub const LIMITS: Limits = Limits {
    per_fifo: 4,
    fds: 64,
    bytes: 64 << 20,
    timeout: Duration::from_secs(5),
};

/// Start/stop requests waiting for their units, to answer when they are done (the loop
/// keeps them, at most [`Limits::per_fifo`] per reply FIFO too).
pub const MAX_WAITERS: usize = 1024;

/// Why a waiting reply was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// A newer reply to the same FIFO came while [`Limits::per_fifo`] were waiting.
    PerFifo,
    /// A newer reply came while [`Limits::fds`] were waiting.
    Fds,
    /// A newer reply would have put more than [`Limits::bytes`] in waiting.
    Bytes,
    /// Its client read nothing of it for [`Limits::timeout`].
    TimedOut,
    /// colony-init was out of fds and a newer reply needed this one's.
    NoFds,
}

/// A [`Why`] with the limits it was measured against, to say it.
pub struct Said<'a>(pub Why, pub &'a Limits);

impl fmt::Display for Said<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.1;
        match self.0 {
            Why::PerFifo => write!(f, "more than {} replies waiting on it", l.per_fifo),
            Why::Fds => write!(f, "more than {} replies waiting in all", l.fds),
            Why::Bytes => write!(f, "more than {} MiB of replies waiting", l.bytes >> 20),
            Why::TimedOut => write!(f, "not read for {:?}", l.timeout),
            Why::NoFds => f.write_str("its fd was needed for a newer reply (out of fds)"),
        }
    }
}

/// A waiting reply taken out unwritten: close `item`.
#[derive(Debug, PartialEq, Eq)]
pub struct Dropped<T> {
    pub item: T,
    /// Its reply FIFO.
    pub name: String,
    pub why: Why,
}

struct Entry<T> {
    seq: u64,
    name: String,
    bytes: usize,
    deadline: Instant,
    item: T,
}

pub struct PendingReplies<T> {
    limits: Limits,
    entries: HashMap<u64, Entry<T>>,
    /// Admission order (oldest first): seq -> key.
    age: BTreeMap<u64, u64>,
    /// Timeouts: (deadline, key).
    due: BTreeSet<(Instant, u64)>,
    per_name: HashMap<String, usize>,
    bytes: usize,
    seq: u64,
}

impl<T> PendingReplies<T> {
    pub fn new(limits: Limits) -> Self {
        PendingReplies {
            limits,
            entries: HashMap::new(),
            age: BTreeMap::new(),
            due: BTreeSet::new(),
            per_name: HashMap::new(),
            bytes: 0,
            seq: 0,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether reply FIFO `name` already has [`Limits::per_fifo`] replies waiting: its reader
    /// does not read, so a new reply there would only push out an older one.
    pub fn is_full(&self, name: &str) -> bool {
        self.per_name.get(name).copied().unwrap_or(0) >= self.limits.per_fifo.max(1)
    }

    /// Take in a reply of `bytes` waiting on reply FIFO `name` under `key` (unique among
    /// waiting replies). The oldest replies that would break a bound are returned, dropped:
    /// close them. A reply alone over [`Limits::bytes`] still waits (nothing else does).
    pub fn admit(
        &mut self,
        key: u64,
        name: &str,
        bytes: usize,
        item: T,
        now: Instant,
    ) -> Vec<Dropped<T>> {
        let mut out = Vec::new();
        // Keys are fresh tokens; one taken again would replace its reply.
        out.extend(self.drop_entry(key, Why::Fds));
        while self.per_name.get(name).copied().unwrap_or(0) >= self.limits.per_fifo.max(1) {
            let Some(oldest) = self.oldest(|e| e.name == name) else {
                break;
            };
            out.extend(self.drop_entry(oldest, Why::PerFifo));
        }
        while self.entries.len() >= self.limits.fds.max(1) {
            let Some(oldest) = self.oldest(|_| true) else {
                break;
            };
            out.extend(self.drop_entry(oldest, Why::Fds));
        }
        while !self.entries.is_empty() && self.bytes.saturating_add(bytes) > self.limits.bytes {
            let Some(oldest) = self.oldest(|_| true) else {
                break;
            };
            out.extend(self.drop_entry(oldest, Why::Bytes));
        }
        self.seq += 1;
        let deadline = now + self.limits.timeout;
        self.age.insert(self.seq, key);
        self.due.insert((deadline, key));
        *self.per_name.entry(name.to_string()).or_insert(0) += 1;
        self.bytes += bytes;
        self.entries.insert(
            key,
            Entry {
                seq: self.seq,
                name: name.to_string(),
                bytes,
                deadline,
                item,
            },
        );
        out
    }

    fn oldest(&self, f: impl Fn(&Entry<T>) -> bool) -> Option<u64> {
        self.age
            .values()
            .copied()
            .find(|k| self.entries.get(k).is_some_and(&f))
    }

    fn drop_entry(&mut self, key: u64, why: Why) -> Option<Dropped<T>> {
        let name = self.entries.get(&key)?.name.clone();
        let item = self.remove(key)?;
        Some(Dropped { item, name, why })
    }

    /// Drop the oldest waiting reply (see [`Why::NoFds`]).
    pub fn drop_oldest(&mut self, why: Why) -> Option<Dropped<T>> {
        let oldest = self.oldest(|_| true)?;
        self.drop_entry(oldest, why)
    }

    /// Every waiting reply with its reply FIFO's name, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> + '_ {
        self.age
            .values()
            .filter_map(|k| self.entries.get(k))
            .map(|e| (e.name.as_str(), &e.item))
    }

    /// The waiting reply under `key`.
    pub fn get_mut(&mut self, key: u64) -> Option<&mut T> {
        self.entries.get_mut(&key).map(|e| &mut e.item)
    }

    /// Its client read some: the reply gets a new [`Limits::timeout`] from `now`.
    pub fn progressed(&mut self, key: u64, now: Instant) {
        let timeout = self.limits.timeout;
        if let Some(e) = self.entries.get_mut(&key) {
            self.due.remove(&(e.deadline, key));
            e.deadline = now + timeout;
            self.due.insert((e.deadline, key));
        }
    }

    /// Take out the reply under `key` (written, or its client gone): not a drop.
    pub fn remove(&mut self, key: u64) -> Option<T> {
        let e = self.entries.remove(&key)?;
        self.age.remove(&e.seq);
        self.due.remove(&(e.deadline, key));
        if let Some(n) = self.per_name.get_mut(&e.name) {
            *n -= 1;
            if *n == 0 {
                self.per_name.remove(&e.name);
            }
        }
        self.bytes -= e.bytes;
        Some(e.item)
    }

    /// Drop every reply whose time is up at `now`, returned to be closed.
    pub fn expire(&mut self, now: Instant) -> Vec<Dropped<T>> {
        let mut out = Vec::new();
        while let Some(&(at, key)) = self.due.first() {
            if at > now {
                break;
            }
            match self.drop_entry(key, Why::TimedOut) {
                Some(d) => out.push(d),
                // Not expected (the indexes move together); never loop on it.
                None => {
                    self.due.remove(&(at, key));
                }
            }
        }
        out
    }

    /// The nearest timeout: when to call [`expire`](Self::expire). None when nothing
    /// waits (no wakeup).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.due.first().map(|(at, _)| *at)
    }

    /// Replies waiting.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of the replies waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn limits() -> Limits {
        Limits {
            per_fifo: 2,
            fds: 3,
            bytes: 100,
            timeout: 5 * S,
        }
    }

    fn items<T>(d: Vec<Dropped<T>>, why: Why) -> Vec<T> {
        d.into_iter()
            .map(|d| {
                assert_eq!(d.why, why);
                d.item
            })
            .collect()
    }

    #[test]
    fn a_fifo_is_full_at_per_fifo_waiting_and_free_again_when_one_goes() {
        let t0 = Instant::now();
        let mut p = PendingReplies::new(limits());
        assert!(!p.is_full("a"));
        assert!(p.admit(1, "a", 10, "a1", t0).is_empty());
        assert!(!p.is_full("a"));
        assert!(p.admit(2, "a", 10, "a2", t0).is_empty());
        assert!(p.is_full("a"));
        assert!(!p.is_full("b"));
        assert_eq!(p.remove(1), Some("a1"));
        assert!(!p.is_full("a"));
    }

    #[test]
    fn the_oldest_reply_to_the_same_fifo_goes_first() {
        let t0 = Instant::now();
        let mut p = PendingReplies::new(limits());
        assert!(p.admit(1, "a", 10, "a1", t0).is_empty());
        assert!(p.admit(2, "b", 10, "b1", t0).is_empty());
        assert!(p.admit(3, "a", 10, "a2", t0).is_empty());
        // A third reply to "a": a1 goes, not b1 (older than a2 but another FIFO's).
        let d = p.admit(4, "a", 10, "a3", t0);
        assert_eq!(d[0].name, "a");
        assert_eq!(items(d, Why::PerFifo), vec!["a1"]);
        assert_eq!(p.len(), 3);
        assert_eq!(p.bytes(), 30);
    }

    #[test]
    fn over_the_fd_bound_the_oldest_of_any_fifo_goes() {
        let t0 = Instant::now();
        let mut p = PendingReplies::new(limits());
        for (k, n) in [(1, "a"), (2, "b"), (3, "c")] {
            assert!(p.admit(k, n, 1, k, t0).is_empty());
        }
        assert_eq!(items(p.admit(4, "d", 1, 4, t0), Why::Fds), vec![1]);
        assert_eq!(items(p.admit(5, "e", 1, 5, t0), Why::Fds), vec![2]);
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn over_the_byte_bound_the_oldest_go_until_it_fits_and_a_lone_big_reply_still_waits() {
        let t0 = Instant::now();
        let mut p = PendingReplies::new(limits());
        assert!(p.admit(1, "a", 40, 1, t0).is_empty());
        assert!(p.admit(2, "b", 40, 2, t0).is_empty());
        assert_eq!(items(p.admit(3, "c", 30, 3, t0), Why::Bytes), vec![1]);
        assert_eq!(p.bytes(), 70);
        assert_eq!(items(p.admit(4, "d", 500, 4, t0), Why::Bytes), vec![2, 3]);
        assert_eq!(p.len(), 1);
        assert_eq!(p.bytes(), 500);
    }

    #[test]
    fn a_reply_times_out_unless_its_client_reads() {
        let t0 = Instant::now();
        let mut p = PendingReplies::new(limits());
        p.admit(1, "a", 1, 1, t0);
        p.admit(2, "b", 1, 2, t0 + S);
        assert_eq!(p.next_deadline(), Some(t0 + 5 * S));
        assert!(p.expire(t0 + 4 * S).is_empty());
        p.progressed(1, t0 + 4 * S);
        assert_eq!(p.next_deadline(), Some(t0 + 6 * S));
        assert_eq!(items(p.expire(t0 + 6 * S), Why::TimedOut), vec![2]);
        assert_eq!(p.next_deadline(), Some(t0 + 9 * S));
        assert_eq!(items(p.expire(t0 + 9 * S), Why::TimedOut), vec![1]);
        assert!(p.is_empty());
        // Nothing waits: no deadline, so no wakeup.
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn removed_replies_are_not_drops_and_free_their_room() {
        let t0 = Instant::now();
        let mut p = PendingReplies::new(limits());
        p.admit(1, "a", 60, 1, t0);
        assert_eq!(p.remove(1), Some(1));
        assert_eq!(p.remove(1), None);
        assert!(p.admit(2, "a", 60, 2, t0).is_empty());
        assert!(p.admit(3, "a", 30, 3, t0).is_empty());
        assert_eq!(p.remove(2), Some(2));
        assert_eq!(p.remove(3), Some(3));
        assert_eq!((p.len(), p.bytes(), p.next_deadline()), (0, 0, None));
    }

    /// 10,000 replies of 45 KB to one FIFO nobody reads: never more than the bound waits.
    #[test]
    fn a_flood_stays_bounded() {
        let t0 = Instant::now();
        let mut p = PendingReplies::new(LIMITS);
        let mut dropped = 0;
        for k in 0..10_000u64 {
            let now = t0 + Duration::from_millis(k * 2);
            dropped += p.admit(k, "x", 45_000, (), now).len();
            dropped += p.expire(now).len();
            assert!(p.len() <= LIMITS.per_fifo);
        }
        assert_eq!(dropped, 10_000 - LIMITS.per_fifo);
        assert_eq!(p.bytes(), LIMITS.per_fifo * 45_000);
        // What waits times out, one wakeup each at most; then nothing is armed.
        let mut wakeups = 0;
        while let Some(at) = p.next_deadline() {
            wakeups += 1;
            assert!(wakeups <= LIMITS.per_fifo);
            p.expire(at);
        }
        assert!(p.is_empty());
    }

    #[test]
    fn the_oldest_gives_way() {
        let t0 = Instant::now();
        let mut p = PendingReplies::new(limits());
        p.admit(1, "a", 1, 1, t0);
        p.admit(2, "b", 1, 2, t0);
        let d = p.drop_oldest(Why::NoFds).unwrap();
        assert_eq!((d.item, d.name.as_str(), d.why), (1, "a", Why::NoFds));
        assert_eq!(p.drop_oldest(Why::NoFds).map(|d| d.item), Some(2));
        assert!(p.drop_oldest(Why::NoFds).is_none());
    }

    #[test]
    fn why_is_said_with_the_limits() {
        let l = limits();
        assert_eq!(
            Said(Why::PerFifo, &l).to_string(),
            "more than 2 replies waiting on it"
        );
        assert_eq!(Said(Why::TimedOut, &l).to_string(), "not read for 5s");
    }
}

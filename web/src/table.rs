//! The units as colony-web holds them, so that a page or a scrape of 1000 units needs no
//! `status` of all of them: colony-init's `status` of every unit when the event stream
//! starts, kept current by each event (state, pid, restarts, since). A unit an event touched
//! is read again, alone, before the next reader shows it, for what the event does not carry
//! (its last exit, readiness, health, the reason it waits). What changes without a state
//! change (memory, CPU, tasks, health, a heartbeat's age, a status text) is as of the last
//! full read: the sampler's, every `sample_every`. With sampling off, or while the stream is
//! down, each reader asks colony-init for every unit, as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use units::proto::{Event, TimerStatus, UnitStatus};

/// At most this many touched units are read again by name; more, and all are read.
const MAX_BY_NAME: usize = 64;
/// Timers are read again after this long even without an event of theirs (their skip count
/// changes without one).
const TIMERS_FRESH: Duration = Duration::from_secs(10);

/// What a reader must ask colony-init before it may show the table.
#[derive(Debug, PartialEq, Eq)]
pub enum Need {
    /// Nothing: the table is current.
    Nothing,
    /// `status` of these units (touched by events since they were read).
    Some(Vec<String>),
    /// `status` of every unit.
    All,
}

/// A read in progress: what it asked for, and the event count when it asked (an event
/// after that one is newer than the reply).
#[derive(Debug)]
pub struct Ticket {
    pub need: Need,
    seq: u64,
}

#[derive(Default)]
struct Inner {
    /// True while the event stream is up: the table follows colony-init.
    live: bool,
    units: Arc<Vec<UnitStatus>>,
    index: HashMap<String, usize>,
    /// Units touched by an event since last read, with the event count at that event.
    touched: HashMap<String, u64>,
    /// Events applied so far.
    seq: u64,
    /// `seq` at the stream's last start: a read asked for before it is older than the table.
    started: u64,
    /// When memory, CPU and tasks were last read for every unit.
    figures_at: Option<Instant>,
    timers: Option<(Arc<Vec<TimerStatus>>, Instant, u64)>,
}

pub struct Table {
    inner: Mutex<Inner>,
    /// How old the figures may be (sample_every, and a margin for a late tick); None:
    /// sampling is off, every read of all asks colony-init.
    figures_max_age: Option<Duration>,
}

impl Table {
    pub fn new(sample_every: Option<Duration>) -> Table {
        Table {
            inner: Mutex::new(Inner::default()),
            figures_max_age: sample_every.map(|e| e * 2 + Duration::from_secs(1)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stream started: `status` of every unit, as colony-init sent it first.
    pub fn reset(&self, units: Vec<UnitStatus>) {
        let mut t = self.lock();
        t.seq += 1;
        t.started = t.seq;
        t.touched.clear();
        t.index = index_of(&units);
        t.units = Arc::new(units);
        t.figures_at = Some(Instant::now());
        t.timers = None;
        t.live = true;
    }

    /// The stream ended: until it is back, readers ask colony-init.
    pub fn lost(&self) {
        let mut t = self.lock();
        t.live = false;
        t.timers = None;
    }

    /// One event of the stream.
    pub fn apply(&self, e: &Event) {
        let mut t = self.lock();
        t.seq += 1;
        let seq = t.seq;
        let i = t.index.get(&e.unit).copied();
        match (&e.to, i) {
            (None, Some(_)) => {
                Arc::make_mut(&mut t.units).retain(|u| u.name != e.unit);
                t.index = index_of(&t.units);
                t.touched.remove(&e.unit);
            }
            (None, None) => {}
            (Some(to), i) => {
                let i = i.unwrap_or_else(|| {
                    // A new unit: what the event says, the rest read at once.
                    let units = Arc::make_mut(&mut t.units);
                    units.push(UnitStatus {
                        name: e.unit.clone(),
                        ..UnitStatus::default()
                    });
                    let i = units.len() - 1;
                    t.index.insert(e.unit.clone(), i);
                    i
                });
                let u = &mut Arc::make_mut(&mut t.units)[i];
                u.state.clone_from(to);
                u.pid = e.pid;
                u.restarts = e.restarts;
                u.since.clone_from(&e.time);
                t.touched.insert(e.unit.clone(), seq);
            }
        }
        // A timer's unit ran, or units came or went: the timers are read again.
        let timer = t
            .timers
            .as_ref()
            .is_some_and(|(l, _, _)| i.is_none() || l.iter().any(|x| x.name == e.unit));
        if timer {
            t.timers = None;
        }
    }

    /// An action on these targets (`@tag` or a name) was just carried out: their events
    /// may still be on their way, so they are read again before they are shown.
    pub fn acted(&self, target: &str) {
        let mut t = self.lock();
        t.seq += 1;
        let seq = t.seq;
        let names: Vec<String> = match target.strip_prefix('@') {
            Some(tag) => t
                .units
                .iter()
                .filter(|u| u.tags.iter().any(|x| x == tag))
                .map(|u| u.name.clone())
                .collect(),
            None => vec![target.to_string()],
        };
        for n in names {
            t.touched.insert(n, seq);
        }
    }

    /// What a reader of every unit must ask first.
    pub fn ticket(&self) -> Ticket {
        let t = self.lock();
        let fresh = match (self.figures_max_age, t.figures_at) {
            (Some(max), Some(at)) => at.elapsed() <= max,
            _ => false,
        };
        let need = if !t.live || !fresh || t.touched.len() > MAX_BY_NAME {
            Need::All
        } else if t.touched.is_empty() {
            Need::Nothing
        } else {
            let mut v: Vec<String> = t.touched.keys().cloned().collect();
            v.sort();
            Need::Some(v)
        };
        Ticket { need, seq: t.seq }
    }

    /// A read of every unit (the sampler's).
    pub fn ticket_all(&self) -> Ticket {
        Ticket {
            need: Need::All,
            seq: self.lock().seq,
        }
    }

    /// The table as it is now (after what `ticket` asked for was brought in).
    pub fn units(&self) -> Arc<Vec<UnitStatus>> {
        self.lock().units.clone()
    }

    /// Bring in what a ticket asked for; the units as they are now. A unit touched again
    /// since the ticket keeps its event's state (the reply may be older) and stays touched.
    /// Nothing is kept while the stream is down, nor what was asked for before it started
    /// again: such a read is only handed out.
    pub fn merge(&self, ticket: &Ticket, read: Vec<UnitStatus>) -> Arc<Vec<UnitStatus>> {
        let mut t = self.lock();
        if !t.live || ticket.seq < t.started {
            return Arc::new(read);
        }
        let newer = |t: &Inner, n: &str| t.touched.get(n).is_some_and(|&s| s > ticket.seq);
        match &ticket.need {
            Need::Nothing => {}
            Need::Some(names) => {
                for u in read {
                    if newer(&t, &u.name) {
                        continue;
                    }
                    t.touched.remove(&u.name);
                    if let Some(&i) = t.index.get(&u.name) {
                        Arc::make_mut(&mut t.units)[i] = u;
                    }
                }
                // Asked for and not there: gone (its event may still come).
                for n in names {
                    if !newer(&t, n) {
                        t.touched.remove(n);
                    }
                }
            }
            Need::All => {
                let mut next = Vec::with_capacity(read.len());
                for u in read {
                    match t.index.get(&u.name) {
                        Some(&i) if newer(&t, &u.name) => next.push(t.units[i].clone()),
                        _ => next.push(u),
                    }
                }
                // Units that came since the ticket, the read did not know yet.
                let known = index_of(&next);
                for u in t.units.iter() {
                    if newer(&t, &u.name) && !known.contains_key(&u.name) {
                        next.push(u.clone());
                    }
                }
                let seq = ticket.seq;
                t.touched.retain(|_, s| *s > seq);
                t.index = index_of(&next);
                t.units = Arc::new(next);
                t.figures_at = Some(Instant::now());
            }
        }
        t.units.clone()
    }

    /// The timers, if they are known and current.
    pub fn timers(&self) -> Option<Arc<Vec<TimerStatus>>> {
        let t = self.lock();
        let (l, at, _) = t.timers.as_ref().filter(|_| t.live)?;
        (at.elapsed() <= TIMERS_FRESH).then(|| l.clone())
    }

    /// The event count before asking for the timers.
    pub fn seq(&self) -> u64 {
        self.lock().seq
    }

    /// Timers read when the event count was `seq`: kept unless an event came since.
    pub fn set_timers(&self, seq: u64, l: Vec<TimerStatus>) -> Arc<Vec<TimerStatus>> {
        let l = Arc::new(l);
        let mut t = self.lock();
        if t.live && t.seq == seq {
            t.timers = Some((l.clone(), Instant::now(), seq));
        }
        l
    }
}

fn index_of(units: &[UnitStatus]) -> HashMap<String, usize> {
    units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.name.clone(), i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(name: &str, state: &str, pid: i32) -> UnitStatus {
        UnitStatus {
            name: name.into(),
            state: state.into(),
            pid: Some(pid),
            ..UnitStatus::default()
        }
    }

    fn event(name: &str, to: Option<&str>, pid: Option<i32>) -> Event {
        Event {
            time: "2026-01-01T00:00:00Z".into(),
            unit: name.into(),
            from: None,
            to: to.map(str::to_string),
            pid,
            reason: None,
            restarts: 1,
        }
    }

    fn table() -> Table {
        let t = Table::new(Some(Duration::from_secs(10)));
        t.reset(vec![unit("a", "running", 10), unit("b", "running", 11)]);
        t
    }

    #[test]
    fn not_live_asks_for_all_and_keeps_nothing() {
        let t = Table::new(Some(Duration::from_secs(10)));
        let k = t.ticket();
        assert_eq!(k.need, Need::All);
        let got = t.merge(&k, vec![unit("x", "running", 1)]);
        assert_eq!(got.len(), 1);
        assert!(t.units().is_empty());
        let t = Table::new(None);
        t.reset(vec![unit("a", "running", 10)]);
        assert_eq!(
            t.ticket().need,
            Need::All,
            "no sampling: figures are never current"
        );
    }

    #[test]
    fn an_event_updates_its_unit_and_has_it_read_again() {
        let t = table();
        assert_eq!(t.ticket().need, Need::Nothing);
        t.apply(&event("b", Some("backoff"), None));
        assert_eq!(t.units()[1].state, "backoff");
        assert_eq!(t.units()[1].pid, None);
        let k = t.ticket();
        assert_eq!(k.need, Need::Some(vec!["b".into()]));
        let mut b = unit("b", "backoff", 0);
        b.pid = None;
        b.error = Some("killed".into());
        t.merge(&k, vec![b]);
        assert_eq!(t.units()[1].error.as_deref(), Some("killed"));
        assert_eq!(t.ticket().need, Need::Nothing);
    }

    #[test]
    fn a_reply_older_than_an_event_does_not_undo_it() {
        let t = table();
        t.apply(&event("a", Some("stopping"), Some(10)));
        let k = t.ticket();
        t.apply(&event("a", Some("stopped"), None));
        t.merge(&k, vec![unit("a", "stopping", 10)]);
        assert_eq!(t.units()[0].state, "stopped");
        assert_eq!(t.ticket().need, Need::Some(vec!["a".into()]));
        // The same through a read of all.
        let t = table();
        let k = t.ticket_all();
        t.apply(&event("a", Some("stopped"), None));
        t.apply(&event("c", Some("starting"), Some(12)));
        t.merge(&k, vec![unit("a", "running", 10), unit("b", "running", 11)]);
        let u = t.units();
        let states: Vec<(&str, &str)> = u
            .iter()
            .map(|u| (u.name.as_str(), u.state.as_str()))
            .collect();
        assert_eq!(
            states,
            [("a", "stopped"), ("b", "running"), ("c", "starting")]
        );
    }

    #[test]
    fn a_read_from_before_the_stream_started_again_is_not_kept() {
        let t = table();
        let k = t.ticket_all();
        t.reset(vec![unit("a", "stopped", 0)]);
        let got = t.merge(&k, vec![unit("a", "running", 10), unit("b", "running", 11)]);
        assert_eq!(got.len(), 2, "handed out");
        assert_eq!(t.units().len(), 1);
        assert_eq!(t.units()[0].state, "stopped");
    }

    #[test]
    fn units_come_and_go() {
        let t = table();
        t.apply(&event("c", Some("starting"), Some(12)));
        assert_eq!(t.units().len(), 3);
        t.apply(&event("a", None, None));
        let names: Vec<String> = t.units().iter().map(|u| u.name.clone()).collect();
        assert_eq!(names, ["b", "c"]);
        t.apply(&event("c", Some("running"), Some(12)));
        assert_eq!(t.units()[1].state, "running");
    }

    #[test]
    fn an_action_on_a_tag_touches_its_units() {
        let t = Table::new(Some(Duration::from_secs(10)));
        let mut a = unit("a", "running", 10);
        a.tags = vec!["web".into()];
        t.reset(vec![a, unit("b", "running", 11)]);
        t.acted("@web");
        assert_eq!(t.ticket().need, Need::Some(vec!["a".into()]));
        t.acted("b");
        assert_eq!(t.ticket().need, Need::Some(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn timers_are_kept_until_an_event_of_theirs() {
        let t = table();
        let s = t.seq();
        t.set_timers(
            s,
            vec![TimerStatus {
                name: "a".into(),
                ..TimerStatus::default()
            }],
        );
        assert!(t.timers().is_some());
        t.apply(&event("b", Some("backoff"), None));
        assert!(t.timers().is_some());
        t.apply(&event("a", Some("starting"), Some(13)));
        assert!(t.timers().is_none());
        // Read before an event that came meanwhile: not kept.
        let s = t.seq();
        t.apply(&event("b", Some("running"), Some(14)));
        t.set_timers(s, Vec::new());
        assert!(t.timers().is_none());
    }
}

//! The core's part of the handover state (`colonyctl reexec`): every unit record's facts,
//! written by the running image and read back by the new one.
//!
//! Definitions are not in it: the new image reads the units directory itself, and a handover
//! is refused while the core holds a definition that is not what its file now says (see
//! [`Supervisor::handover_blockers`]). So the state does not follow the unit model, and a
//! later release with more unit keys reads this one's state. Every field has a serde
//! default, so a field added later is read as its default from an older state.
//!
//! Monotonic instants are stored as CLOCK_MONOTONIC nanoseconds, which run on across exec:
//! [`MonoClock`] converts, given one reading of both clocks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use units::model::Unit;

use crate::core::record::{Job, LastExit, Phase, RunResult, TimerStatus, UnitRecord};
use crate::core::start::{Held, StartPhase};
use crate::core::{Defaults, HookRun, Now, State};

use super::Supervisor;

/// One reading of `Instant::now()` and CLOCK_MONOTONIC (in ns), taken together; converts
/// instants to clock values and back.
#[derive(Debug, Clone, Copy)]
pub struct MonoClock {
    pub at: Instant,
    pub ns: u64,
}

impl MonoClock {
    pub fn to_ns(&self, i: Instant) -> u64 {
        if i >= self.at {
            self.ns
                .saturating_add(u64::try_from((i - self.at).as_nanos()).unwrap_or(u64::MAX))
        } else {
            self.ns
                .saturating_sub(u64::try_from((self.at - i).as_nanos()).unwrap_or(u64::MAX))
        }
    }

    pub fn to_instant(&self, ns: u64) -> Instant {
        if ns >= self.ns {
            self.at + Duration::from_nanos(ns - self.ns)
        } else {
            // An instant before this process's clock origin cannot be made: the origin.
            self.at
                .checked_sub(Duration::from_nanos(self.ns - ns))
                .unwrap_or(self.at)
        }
    }
}

/// A field at its default is left out of the state (read back as that default, every
/// struct of the state being `serde(default)`): a thousand units' records are mostly
/// defaults.
pub fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A timer unit's schedule ([`TimerStatus`] with its monotonic instant as a clock value).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimerSnap {
    #[serde(skip_serializing_if = "is_default")]
    pub next: Option<SystemTime>,
    #[serde(skip_serializing_if = "is_default")]
    pub last_start: Option<SystemTime>,
    #[serde(skip_serializing_if = "is_default")]
    pub last_result: Option<RunResult>,
    #[serde(skip_serializing_if = "is_default")]
    pub skipped: u64,
    #[serde(skip_serializing_if = "is_default")]
    pub last_skip: Option<SystemTime>,
    #[serde(skip_serializing_if = "is_default")]
    pub on_boot_done: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub active_since: Option<SystemTime>,
    #[serde(skip_serializing_if = "is_default")]
    pub run_started_ns: Option<u64>,
}

/// One unit record's facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UnitSnap {
    pub name: String,
    pub state: State,
    #[serde(skip_serializing_if = "is_default")]
    pub pid: Option<i32>,
    #[serde(skip_serializing_if = "is_default")]
    pub restarts: u64,
    pub since: SystemTime,
    #[serde(skip_serializing_if = "is_default")]
    pub last_exit: Option<LastExit>,
    #[serde(skip_serializing_if = "is_default")]
    pub ready: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub reloading: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub last_beat: Option<SystemTime>,
    #[serde(skip_serializing_if = "is_default")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub timer: Option<TimerSnap>,
    #[serde(skip_serializing_if = "is_default")]
    pub strays: Vec<i32>,
    /// The running process was started from a definition (it is the current one: see the
    /// module's note).
    #[serde(skip_serializing_if = "is_default")]
    pub has_run_def: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub want_up: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub(crate) job: Option<Job>,
    pub(crate) phase: Phase,
    #[serde(skip_serializing_if = "is_default")]
    pub started_ns: Option<u64>,
    #[serde(skip_serializing_if = "is_default")]
    pub backoff: Option<Duration>,
    #[serde(skip_serializing_if = "is_default")]
    pub restart_due: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub armed: u16,
    #[serde(skip_serializing_if = "is_default")]
    pub timer_at: Option<SystemTime>,
    #[serde(skip_serializing_if = "is_default")]
    pub cal_at: Option<SystemTime>,
    #[serde(skip_serializing_if = "is_default")]
    pub run_waiting: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub held: Option<Held>,
    #[serde(skip_serializing_if = "is_default")]
    pub failed_starts: u32,
    pub(crate) start: StartPhase,
    /// The hook command that runs (a handover waits for none, but says so if one does).
    #[serde(skip_serializing_if = "is_default")]
    pub hook: Option<HookRun>,
}

impl Default for UnitSnap {
    fn default() -> Self {
        UnitSnap {
            name: String::new(),
            state: State::Stopped,
            pid: None,
            restarts: 0,
            since: SystemTime::UNIX_EPOCH,
            last_exit: None,
            ready: false,
            reloading: false,
            last_beat: None,
            note: None,
            timer: None,
            strays: Vec::new(),
            has_run_def: false,
            want_up: false,
            job: None,
            phase: Phase::Idle,
            started_ns: None,
            backoff: None,
            restart_due: false,
            armed: 0,
            timer_at: None,
            cal_at: None,
            run_waiting: false,
            held: None,
            failed_starts: 0,
            start: StartPhase::Pending,
            hook: None,
        }
    }
}

/// The whole core.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CoreSnap {
    pub units: Vec<UnitSnap>,
    /// The first input's time (for `on_boot`), as a clock value and wall time.
    pub boot: Option<(u64, SystemTime)>,
    pub loaded: bool,
    pub exit_code: i32,
    pub exit_sent: bool,
    pub restored: HashMap<String, SystemTime>,
}

impl Supervisor {
    /// Why the state cannot be handed over now (empty: it can). The new image takes
    /// definitions from the units directory, so every definition must be its file's: the
    /// caller loads what the directory changed first, and then a definition differs from its
    /// file only where the file broke (the last good definition is kept) or is gone.
    pub fn handover_blockers(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.shutting {
            out.push("colony-init is shutting down".to_string());
            return out;
        }
        for u in &self.units {
            if let Some(h) = u.hook {
                // Its process is a child the new image would not know to reap as a hook.
                out.push(format!(
                    "unit {} runs its {} command: try again once it ended",
                    u.name, h.kind
                ));
            } else if u.removed {
                out.push(format!(
                    "unit {} is being stopped after its file was removed: try again once it stopped",
                    u.name
                ));
            } else if u.def.is_some() && u.error.is_some() {
                out.push(format!(
                    "unit {}: its file broke and the last good definition runs (fix it, then try again)",
                    u.name
                ));
            }
        }
        out
    }

    pub fn snapshot(&self, clock: &MonoClock) -> CoreSnap {
        CoreSnap {
            units: self.units.iter().map(|u| snap_unit(u, clock)).collect(),
            boot: self.boot.map(|b| (clock.to_ns(b.mono), b.wall)),
            loaded: self.loaded,
            exit_code: self.exit_code,
            exit_sent: self.exit_sent,
            restored: self.restored.clone(),
        }
    }

    /// The core a handover describes, with definitions from `set` (the units directory as
    /// the new image read it). Units of `set` not in the state are left out: give `set` as
    /// an ordinary `Load` next, which adds them (and starts the enabled ones).
    pub fn restore(
        defaults: Defaults,
        snap: CoreSnap,
        set: &[(String, Result<Unit, String>)],
        clock: &MonoClock,
    ) -> Supervisor {
        let mut s = Supervisor::new(defaults);
        let defs: HashMap<&str, &Result<Unit, String>> =
            set.iter().map(|(n, r)| (n.as_str(), r)).collect();
        for us in snap.units {
            let (def, error) = match defs.get(us.name.as_str()) {
                Some(Ok(d)) => (Some(Arc::new(d.clone())), None),
                Some(Err(e)) => (None, Some(e.clone())),
                None => (None, Some("unit file gone during a reexec".to_string())),
            };
            let rec = restore_unit(us, def, error, clock);
            s.push(rec);
        }
        s.rebuild();
        s.boot = snap.boot.map(|(ns, wall)| Now {
            mono: clock.to_instant(ns),
            wall,
        });
        s.loaded = snap.loaded;
        s.exit_code = snap.exit_code;
        s.exit_sent = snap.exit_sent;
        s.restored = snap.restored;
        s
    }
}

fn snap_unit(u: &UnitRecord, clock: &MonoClock) -> UnitSnap {
    UnitSnap {
        name: u.name.clone(),
        state: u.state,
        pid: u.pid,
        restarts: u.restarts,
        since: u.since,
        last_exit: u.last_exit.clone(),
        ready: u.ready,
        reloading: u.reloading,
        last_beat: u.last_beat,
        note: u.note.clone(),
        timer: u.timer.as_ref().map(|t| TimerSnap {
            next: t.next,
            last_start: t.last_start,
            last_result: t.last_result.clone(),
            skipped: t.skipped,
            last_skip: t.last_skip,
            on_boot_done: t.on_boot_done,
            active_since: t.active_since,
            run_started_ns: t.run_started.map(|i| clock.to_ns(i)),
        }),
        strays: u.strays.clone(),
        has_run_def: u.run_def.is_some(),
        want_up: u.want_up,
        job: u.job,
        phase: u.phase,
        started_ns: u.started.map(|i| clock.to_ns(i)),
        backoff: u.backoff,
        restart_due: u.restart_due,
        armed: u.armed,
        timer_at: u.timer_at,
        cal_at: u.cal_at,
        run_waiting: u.run_waiting,
        held: u.held.clone(),
        failed_starts: u.failed_starts,
        start: u.start,
        hook: u.hook,
    }
}

fn restore_unit(
    us: UnitSnap,
    def: Option<Arc<Unit>>,
    error: Option<String>,
    clock: &MonoClock,
) -> UnitRecord {
    let mut r = UnitRecord::new(us.name, def, error, us.since);
    r.state = us.state;
    r.pid = us.pid;
    r.restarts = us.restarts;
    r.since = us.since;
    r.last_exit = us.last_exit;
    r.ready = us.ready;
    r.reloading = us.reloading;
    r.last_beat = us.last_beat;
    r.note = us.note;
    r.timer = us.timer.map(|t| TimerStatus {
        next: t.next,
        last_start: t.last_start,
        last_result: t.last_result,
        skipped: t.skipped,
        last_skip: t.last_skip,
        on_boot_done: t.on_boot_done,
        active_since: t.active_since,
        run_started: t.run_started_ns.map(|ns| clock.to_instant(ns)),
    });
    r.strays = us.strays;
    r.run_def = if us.has_run_def { r.def.clone() } else { None };
    r.want_up = us.want_up;
    r.job = us.job;
    r.phase = us.phase;
    r.started = us.started_ns.map(|ns| clock.to_instant(ns));
    r.backoff = us.backoff;
    r.restart_due = us.restart_due;
    r.armed = us.armed;
    r.timer_at = us.timer_at;
    r.cal_at = us.cal_at;
    r.run_waiting = us.run_waiting;
    r.held = us.held;
    r.failed_starts = us.failed_starts;
    r.start = us.start;
    r.hook = us.hook;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Command, Effect, Input};

    fn unit(name: &str, toml: &str) -> (String, Result<Unit, String>) {
        let u = units::parse::parse_unit(std::path::Path::new(&format!("{name}.unit")), toml)
            .map_err(|e| format!("{e:?}"));
        (name.to_string(), u)
    }

    fn set() -> Vec<(String, Result<Unit, String>)> {
        vec![
            unit("a", "exec = [\"/bin/true\"]\n"),
            unit(
                "b",
                "exec = [\"/bin/true\"]\nrequires = [\"a\"]\n[restart]\ndelay_min = \"2s\"\n",
            ),
            unit("t", "exec = [\"/bin/true\"]\n[timer]\nevery = \"10s\"\n"),
        ]
    }

    fn clock(at: Instant) -> MonoClock {
        MonoClock {
            at,
            ns: 5_000_000_000,
        }
    }

    #[test]
    fn clock_values_round_trip_on_both_sides_of_the_reading() {
        let at = Instant::now();
        let c = clock(at);
        for off in [0u64, 1, 999_999_999, 3_000_000_000] {
            let later = at + Duration::from_nanos(off);
            assert_eq!(c.to_instant(c.to_ns(later)), later);
            assert_eq!(c.to_ns(later), 5_000_000_000 + off);
        }
        if let Some(earlier) = at.checked_sub(Duration::from_millis(20)) {
            assert_eq!(c.to_ns(earlier), 4_980_000_000);
            assert_eq!(c.to_instant(c.to_ns(earlier)), earlier);
        }
    }

    #[test]
    fn a_restored_core_is_the_one_that_was_saved() {
        let t0 = Instant::now();
        let now = |ms: u64| Now {
            mono: t0 + Duration::from_millis(ms),
            wall: SystemTime::UNIX_EPOCH
                + Duration::from_secs(1_000_000)
                + Duration::from_millis(ms),
        };
        let mut s = Supervisor::new(Defaults::default());
        let fx = s.handle(Input::Load(set()), now(0));
        assert!(fx.contains(&Effect::Spawn { unit: "a".into() }));
        s.handle(
            Input::Spawned {
                unit: "a".into(),
                pid: 10,
            },
            now(1),
        );
        s.handle(
            Input::Spawned {
                unit: "b".into(),
                pid: 11,
            },
            now(2),
        );
        // b dies at once: backoff, restart counter and delay are in the state.
        s.handle(
            Input::Exited {
                unit: "b".into(),
                status: crate::core::ExitStatus::Code(3),
                oom: false,
            },
            now(3),
        );
        s.handle(Input::Empty { unit: "b".into() }, now(4));
        assert_eq!(s.get("b").map(|u| u.state), Some(State::Backoff));
        assert!(s.handover_blockers().is_empty());

        let c = clock(t0);
        let snap = s.snapshot(&c);
        let text = serde_json::to_string(&snap).expect("serializes");
        let back: CoreSnap = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, snap);
        let mut r = Supervisor::restore(Defaults::default(), back, &set(), &c);
        assert_eq!(r.snapshot(&c), snap);
        for name in ["a", "b", "t"] {
            let (x, y) = (s.get(name).expect("saved"), r.get(name).expect("restored"));
            assert_eq!(
                (x.state, x.pid, x.restarts, x.since, &x.timer, x.ready),
                (y.state, y.pid, y.restarts, y.since, &y.timer, y.ready),
                "{name}"
            );
        }
        // The restored core goes on as the old one would: b's backoff deadline starts it,
        // a's exit is an ordinary one, and the directory as read again changes nothing.
        let mut s2 = s;
        for core in [&mut s2, &mut r] {
            assert!(core.handle(Input::Load(set()), now(10)).is_empty());
        }
        let d = Input::Deadline {
            unit: "b".into(),
            kind: crate::core::DeadlineKind::Restart,
        };
        assert_eq!(s2.handle(d.clone(), now(3000)), r.handle(d, now(3000)));
        let c2 = Input::Command(Command::Restart("a".into()));
        assert_eq!(s2.handle(c2.clone(), now(3001)), r.handle(c2, now(3001)));
    }

    #[test]
    fn a_state_without_newer_fields_reads_with_defaults() {
        let text = r#"{"units":[{"name":"a","state":"Running","pid":7,"restarts":2}]}"#;
        let snap: CoreSnap = serde_json::from_str(text).expect("parses");
        assert_eq!(snap.units[0].pid, Some(7));
        assert_eq!(snap.units[0].restarts, 2);
        assert_eq!(snap.units[0].phase, Phase::Idle);
    }

    #[test]
    fn a_broken_or_removed_file_blocks_the_handover() {
        let t0 = Instant::now();
        let now = Now {
            mono: t0,
            wall: SystemTime::UNIX_EPOCH,
        };
        let mut s = Supervisor::new(Defaults::default());
        s.handle(Input::Load(set()), now);
        assert!(s.handover_blockers().is_empty());
        // a's file broke: its last good definition runs, which the directory no longer says.
        let mut broken = set();
        broken[0].1 = Err("exec: missing".into());
        s.handle(Input::Load(broken), now);
        let b = s.handover_blockers();
        assert_eq!(b.len(), 1, "{b:?}");
        assert!(b[0].contains("unit a"), "{b:?}");
        // Fixed again: nothing blocks. t's file removed: it blocks until it is forgotten.
        s.handle(Input::Load(set()), now);
        assert!(s.handover_blockers().is_empty());
        let mut without_t = set();
        without_t.pop();
        s.handle(Input::Load(without_t), now);
        assert!(s.handover_blockers().iter().all(|b| b.contains("unit t")));
        s.handle(Input::Shutdown, now);
        assert!(!s.handover_blockers().is_empty());
    }
}

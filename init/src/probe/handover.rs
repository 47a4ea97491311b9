//! The health checks' state across `colonyctl reexec`: how many bad checks in a row, how
//! many checks so far, the text `status` shows and when the next check is due, so a reexec
//! neither forgives bad checks nor restarts `grace`. A check in flight is not carried: its
//! answer is lost (an exec check's process is reaped by the new image as an orphan) and
//! the next one is due a period after it began.

use serde::{Deserialize, Serialize};

use super::*;
use crate::core::MonoClock;

/// One unit's health checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthSnap {
    pub unit: String,
    pub bad: u32,
    pub checks: u64,
    pub text: Option<String>,
    /// The next check, on CLOCK_MONOTONIC.
    pub next_ns: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProbesSnap {
    pub health: Vec<HealthSnap>,
    /// Units whose checks stopped, and the last text `status` shows for them.
    pub last_text: Vec<(String, String)>,
}

impl Probes {
    pub fn snapshot(&self, clock: &MonoClock) -> ProbesSnap {
        let mut next: HashMap<&str, Instant> = HashMap::new();
        for ((unit, slot), at) in self.deadlines.iter() {
            if *slot == Slot::HealthNext {
                next.insert(unit.as_str(), at);
            }
        }
        let mut health: Vec<HealthSnap> = self
            .health
            .iter()
            .map(|(unit, h)| {
                let at = next
                    .get(unit.as_str())
                    .copied()
                    .or_else(|| h.started.map(|s| s + h.def.period));
                HealthSnap {
                    unit: unit.clone(),
                    bad: h.bad,
                    checks: h.checks,
                    text: h.text.clone(),
                    next_ns: at.map(|i| clock.to_ns(i)),
                }
            })
            .collect();
        health.sort_by(|a, b| a.unit.cmp(&b.unit));
        let mut last_text: Vec<(String, String)> = self
            .last_text
            .iter()
            .map(|(u, t)| (u.clone(), t.clone()))
            .collect();
        last_text.sort();
        ProbesSnap { health, last_text }
    }

    /// Take the checks of a snapshot back for the units that still have `[health]`
    /// (`health_of`); before the loop matches the probes to the units' states.
    pub fn restore(
        &mut self,
        snap: ProbesSnap,
        clock: &MonoClock,
        health_of: impl Fn(&str) -> Option<Health>,
    ) {
        self.last_text.extend(snap.last_text);
        let now = Instant::now();
        for h in snap.health {
            let Some(def) = health_of(&h.unit) else {
                continue;
            };
            let target = resolve_target(&def.check);
            let at = h.next_ns.map_or(now, |ns| clock.to_instant(ns));
            self.last_text.remove(&h.unit);
            self.health.insert(
                h.unit.clone(),
                HealthProbe {
                    def,
                    target,
                    bad: h.bad,
                    checks: h.checks,
                    text: h.text,
                    running: None,
                    started: None,
                },
            );
            self.deadlines.arm((h.unit, Slot::HealthNext), at.max(now));
        }
        self.rearm();
    }
}

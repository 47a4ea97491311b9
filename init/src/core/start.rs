//! The rules of a start that are not about the process itself: what keeps a wanted unit
//! from starting ([`Held`]), how far a run got towards up ([`StartPhase`]), and the
//! warnings of dependencies on units that are not there.

use std::fmt;

use units::model::ReadyType;
use units::validate::{missing_dependency, DepKey};

use super::record::UnitRecord;
use super::{State, Supervisor};

/// Why a wanted unit does not start, while that lasts. It starts as soon as the cause is
/// gone (the unit file that was missing appears), as long as it is still wanted: the
/// directory says what should run, so a unit enabled there, or started by hand and not
/// stopped since, is started then, as systemd would start it at the next boot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Held {
    /// `requires` names a unit that is not in the directory.
    MissingRequired(String),
    /// A unit it requires is itself held.
    RequiredHeld(String),
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Held::MissingRequired(r) => write!(
                f,
                "required unit {r} does not exist (no {r}.unit): starts once there is one"
            ),
            Held::RequiredHeld(r) => {
                write!(f, "required unit {r} cannot start yet: starts with it")
            }
        }
    }
}

/// How far the current run of a service got towards up: `[ready]` (the ready condition)
/// and `[ready] settle` (a time it must also have lived) both pass before it is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub(crate) enum StartPhase {
    /// Neither passed yet (or not known to).
    #[default]
    Pending,
    /// Its conditions and asserts are being checked: nothing runs yet.
    Conditions,
    /// The ready condition came; the settle time is not over.
    Settling,
    /// The ready condition came and it settled: its `exec_start_post` hooks run.
    Post,
    /// Up in this run: a death from now on is no failed start.
    Up,
}

impl UnitRecord {
    /// A boot task (`[ready] type = "exited"`): up once its program exited with success.
    pub fn is_boot_task(&self) -> bool {
        self.active_def()
            .is_some_and(|d| d.ready.kind == ReadyType::Exited)
    }

    /// Why a unit that waits for this one does not start, now that this one failed or is
    /// down: `boot task fsck failed: exited with code 8`, `required unit db is stopped`.
    pub(crate) fn blocks_dependent(&self) -> String {
        if self.is_boot_task() && self.state == State::Failed {
            let how = match &self.last_exit {
                Some(e) => {
                    let mut how = match e.status {
                        Some(s) => s.to_string(),
                        None => "did not start".to_string(),
                    };
                    if let Some(r) = e.reason {
                        how.push_str(&format!(" ({r})"));
                    }
                    if let Some(d) = &e.detail {
                        how.push_str(&format!(": {d}"));
                    }
                    how
                }
                None => self.note.clone().unwrap_or_else(|| "failed".into()),
            };
            format!("boot task {} failed: {how}", self.name)
        } else {
            format!("required unit {} is {}", self.name, self.state.as_str())
        }
    }

    /// Starting, and its `[ready]` condition has not come yet: what readiness probes are
    /// for. Once it came, a unit still settling needs no probe (run again, one would
    /// report it ready again and again).
    pub fn awaits_ready(&self) -> bool {
        self.state == State::Starting && self.start == StartPhase::Pending
    }
}

impl Supervisor {
    /// Warnings for `status`: each `after`/`requires` entry of the unit that names no unit.
    pub fn dependency_warnings(&self, name: &str) -> Vec<String> {
        let Some(def) = self.get(name).and_then(|u| u.def.as_ref()) else {
            return Vec::new();
        };
        [
            (DepKey::After, &def.after),
            (DepKey::Requires, &def.requires),
            (DepKey::Wants, &def.links.wants),
            (DepKey::Before, &def.links.before),
            (DepKey::Conflicts, &def.links.conflicts),
        ]
        .into_iter()
        .flat_map(|(key, deps)| {
            deps.iter()
                .filter(|d| self.get(d).is_none())
                .map(move |d| format!("{}: {}", key.key(), missing_dependency(key, d)))
        })
        .collect()
    }
}

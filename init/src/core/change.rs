//! State changes as the core observes them, for the event stream (`subscribe`).
//!
//! [`UnitRecord::set_state`](super::UnitRecord) notes every transition; at the end of each
//! input [`Supervisor::handle`](super::Supervisor::handle) turns them into [`Change`]s,
//! kept until the next input ([`Supervisor::changes`](super::Supervisor::changes)). Nothing
//! accumulates: the loop reads them or they are gone.

use std::time::SystemTime;

use super::record::UnitRecord;
use super::{ExitStatus, State};

/// One unit's move from one state to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub unit: String,
    /// `None`: the unit is new (its file appeared).
    pub from: Option<State>,
    /// `None`: the unit is gone (its file was removed and it stopped).
    pub to: Option<State>,
    pub pid: Option<i32>,
    pub restarts: u64,
    /// Why, when more is known than the states: how the process ended, or a note.
    pub reason: Option<String>,
    pub at: SystemTime,
}

impl Change {
    /// The record's transitions noted since the last call, as changes (oldest first).
    pub(crate) fn drain(u: &mut UnitRecord, out: &mut Vec<Change>) {
        for (from, to, at) in std::mem::take(&mut u.transitions) {
            out.push(Change {
                unit: u.name.clone(),
                from,
                to: Some(to),
                pid: u.pid,
                restarts: u.restarts,
                reason: reason(u, to),
                at,
            });
        }
    }

    /// The record is forgotten: its last transitions, then its removal.
    pub(crate) fn gone(mut u: UnitRecord, at: SystemTime, out: &mut Vec<Change>) {
        Change::drain(&mut u, out);
        out.push(Change {
            unit: u.name,
            from: Some(u.state),
            to: None,
            pid: None,
            restarts: u.restarts,
            reason: Some("unit file removed".into()),
            at,
        });
    }
}

/// One line on why a unit entered `to`: how its last process ended (for the states an end
/// leads to), else the note or the file's error.
fn reason(u: &UnitRecord, to: State) -> Option<String> {
    let ended = matches!(
        to,
        State::Backoff | State::Failed | State::Exited | State::Stopped
    );
    let exit = u.last_exit.as_ref().filter(|_| ended).map(|e| {
        let mut s = match e.status {
            Some(status @ ExitStatus::Code(_)) | Some(status @ ExitStatus::Signal(_)) => {
                status.to_string()
            }
            None => "did not start".to_string(),
        };
        if let Some(r) = e.reason {
            s.push_str(&format!(" ({r})"));
        }
        if let Some(d) = &e.detail {
            s.push_str(&format!(": {d}"));
        }
        s
    });
    exit.or_else(|| u.held.as_ref().map(|h| h.to_string()))
        .or_else(|| u.note.clone())
        .or_else(|| u.error.clone())
}

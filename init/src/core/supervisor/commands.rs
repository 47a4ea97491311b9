//! Commands (`start`, `stop`, `restart`), shutdown and the exit it ends with.

use super::*;

impl Supervisor {
    pub(super) fn command(&mut self, c: Command, now: Now, fx: &mut Vec<Effect>) {
        match c {
            Command::Start(name) => {
                if let Some(i) = self.idx(&name) {
                    self.cmd_start(i, true, now, fx, &mut HashSet::new());
                }
            }
            Command::Stop(name) => {
                if let Some(i) = self.idx(&name) {
                    self.cmd_stop(i, None, &mut HashSet::new());
                }
            }
            Command::Restart(name) => {
                if let Some(i) = self.idx(&name) {
                    self.cmd_restart(i, true, now, fx, &mut HashSet::new());
                }
            }
            Command::Reload(name) => {
                if let Some(i) = self.idx(&name) {
                    self.cmd_reload(i, now, fx);
                }
            }
            Command::RestartAll => {
                let mut seen = HashSet::new();
                for i in 0..self.units.len() {
                    let u = &self.units[i];
                    if u.want_up && u.def.is_some() && !u.is_timer() {
                        self.cmd_restart(i, true, now, fx, &mut seen);
                    }
                }
            }
        }
    }

    /// Start a unit and what it requires. `manual`: a user's order (resets the backoff; on
    /// a timer unit, runs it now).
    pub(super) fn cmd_start(
        &mut self,
        i: usize,
        manual: bool,
        now: Now,
        fx: &mut Vec<Effect>,
        seen: &mut HashSet<usize>,
    ) {
        if self.shutting || !seen.insert(i) || self.units[i].def.is_none() || self.units[i].removed
        {
            return;
        }
        {
            let u = &mut self.units[i];
            u.want_up = true;
            u.note = None;
            u.held = None;
            if manual {
                u.backoff = None;
                u.failed_starts = 0;
            }
        }
        for r in self.units[i].requires.clone() {
            self.cmd_start(r, false, now, fx, seen);
        }
        self.start_links(i, now, fx, seen);
        let u = &self.units[i];
        if !u.want_up {
            return; // a unit it wants conflicts with it: stopped
        }
        if u.is_timer() {
            let gone = u.is_gone();
            // Leftovers going: its group's, or strays after its group is gone.
            let draining = !gone && matches!(u.phase, Phase::Idle | Phase::Leftovers);
            let stopping = draining || matches!(u.phase, Phase::Main { stop: Some(_) });
            match u.job {
                // A stop begun (or a run's leftovers going) ends first; else it is cancelled.
                Some(Job::Stop) if stopping => self.units[i].job = Some(Job::Restart),
                Some(Job::Stop) => self.units[i].job = None,
                _ => {}
            }
            let u = &self.units[i];
            if u.job.is_none() {
                if gone && u.state != State::Waiting {
                    // Whatever it was (stopped, a service in backoff before a change): a schedule now.
                    self.disarm(i, DeadlineKind::Restart, fx);
                    self.activate_timer(i, now, fx);
                } else if !u.is_armed(DeadlineKind::TimerRun) {
                    // Its schedule lapsed while a stop was pending.
                    self.schedule_next(i, now, fx);
                }
            }
            if manual && self.units[i].is_gone() && self.units[i].job.is_none() {
                self.spawn(i, now, fx);
            }
            return;
        }
        match (u.job, u.state) {
            (Some(Job::Start) | Some(Job::Restart), _) => {}
            (Some(Job::Stop), _) => {
                // Cancel a stop not yet begun; after one begun, start again.
                let j = if matches!(u.phase, Phase::Main { stop: Some(_) }) {
                    Some(Job::Restart)
                } else if matches!(u.phase, Phase::Spawning | Phase::Main { .. }) {
                    None
                } else if u.is_gone() {
                    Some(Job::Start)
                } else {
                    Some(Job::Restart) // leftovers still draining
                };
                self.units[i].job = j;
            }
            (None, State::Backoff) => {
                self.disarm(i, DeadlineKind::Restart, fx);
                let u = &mut self.units[i];
                u.restart_due = false;
                u.job = Some(Job::Start);
            }
            (None, State::Stopping) => self.units[i].job = Some(Job::Restart),
            (None, State::Stopped | State::Exited | State::Failed | State::Skipped) => {
                self.units[i].job = Some(Job::Start)
            }
            (None, _) => {}
        }
    }

    /// Stop a unit and, first, the units that require it.
    pub(super) fn cmd_stop(&mut self, i: usize, note: Option<String>, seen: &mut HashSet<usize>) {
        if !seen.insert(i) {
            return;
        }
        let name = self.units[i].name.clone();
        for d in self.units[i].req_dependents.clone() {
            let du = &self.units[d];
            if du.want_up || !du.is_gone() || du.job.is_some() {
                self.cmd_stop(d, Some(format!("required unit {name} stopped")), seen);
            }
        }
        let u = &mut self.units[i];
        u.want_up = false;
        u.held = None;
        u.note = note;
        let down = matches!(
            u.state,
            State::Stopped | State::Exited | State::Failed | State::Invalid | State::Skipped
        );
        if u.is_gone() && down {
            u.job = None;
        } else {
            u.job = Some(Job::Stop);
        }
    }

    pub(super) fn cmd_restart(
        &mut self,
        i: usize,
        manual: bool,
        now: Now,
        fx: &mut Vec<Effect>,
        seen: &mut HashSet<usize>,
    ) {
        if self.shutting || !seen.insert(i) || self.units[i].def.is_none() || self.units[i].removed
        {
            return;
        }
        if self.units[i].is_timer() {
            // Perhaps a new definition: schedule afresh; a run going goes on.
            seen.remove(&i);
            let u = &self.units[i];
            if u.want_up
                && u.job.is_none()
                && matches!(u.state, State::Waiting | State::Running | State::Starting)
            {
                self.disarm(i, DeadlineKind::TimerRun, fx);
                self.schedule_next(i, now, fx);
                if manual && self.units[i].is_gone() {
                    self.spawn(i, now, fx);
                }
            } else {
                self.cmd_start(i, manual, now, fx, seen);
            }
            return;
        }
        {
            let u = &mut self.units[i];
            u.want_up = true;
            u.note = None;
            u.held = None;
            // A restart (by hand, or for a new definition) gets its attempts afresh.
            u.failed_starts = 0;
            if manual {
                u.backoff = None;
            }
        }
        for r in self.units[i].requires.clone() {
            let mut s = HashSet::new();
            self.cmd_start(r, false, now, fx, &mut s);
        }
        self.start_links(i, now, fx, &mut HashSet::from([i]));
        if !self.units[i].want_up {
            return; // what it wants conflicts with what it requires: stopped
        }
        let u = &self.units[i];
        if u.state == State::Backoff {
            self.disarm(i, DeadlineKind::Restart, fx);
            self.units[i].restart_due = false;
        }
        let u = &mut self.units[i];
        u.job = if u.is_gone() {
            Some(Job::Start)
        } else {
            Some(Job::Restart)
        };
        for d in self.units[i].req_dependents.clone() {
            let du = &self.units[d];
            if du.want_up && (!du.is_gone() || du.state == State::Backoff) {
                self.cmd_restart(d, false, now, fx, seen);
            }
        }
    }

    pub(super) fn shutdown(&mut self, code: i32, now: Now) {
        if self.shutting {
            return;
        }
        tracing::info!(code, "stopping every unit");
        self.shutting = true;
        self.exit_code = code;
        for u in &mut self.units {
            u.want_up = false;
            u.held = None;
            let down = matches!(
                u.state,
                State::Stopped | State::Exited | State::Failed | State::Invalid | State::Skipped
            );
            u.job = if u.is_gone() && down {
                None
            } else {
                Some(Job::Stop)
            };
        }
        let _ = now;
    }

    pub(super) fn check_exit(&mut self, fx: &mut Vec<Effect>) {
        if self.shutting
            && !self.exit_sent
            && self.units.iter().all(|u| u.job.is_none() && u.is_gone())
        {
            self.exit_sent = true;
            fx.push(Effect::Exit {
                code: self.exit_code,
            });
        }
    }
}

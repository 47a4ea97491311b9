//! Timer units: planning runs in wall-clock time, running and skipping them.

use super::*;

impl Supervisor {
    pub(super) fn activate_timer(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        u.set_state(State::Waiting, now.wall);
        if let Some(t) = u.timer.as_mut() {
            t.active_since = Some(now.wall);
        }
        self.disarm(i, DeadlineKind::TimerRun, fx);
        if !self.apply_restore(i, now, fx) {
            self.schedule_next(i, now, fx);
        }
    }

    /// A persistent unit's restored last run: shown, and a run missed since then is due now.
    /// True when it armed the catch-up run.
    pub(super) fn apply_restore(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) -> bool {
        let u = &self.units[i];
        let Some(def) = u.def.clone() else {
            return false;
        };
        let Some(tdef) = def.timer.as_ref() else {
            return false;
        };
        let Some(&last_run) = self.restored.get(&u.name) else {
            return false;
        };
        if !tdef.persistent {
            return false;
        }
        let Some(t) = self.units[i].timer.as_mut() else {
            return false;
        };
        if t.last_start.is_some_and(|s| s >= last_run) {
            return false; // it ran here since
        }
        t.last_start = Some(last_run);
        if self.units[i].state != State::Waiting {
            return false;
        }
        let due_every = tdef
            .every
            .filter(|e| !e.is_zero())
            .and_then(|e| last_run.checked_add(e))
            .is_some_and(|at| at <= now.wall);
        let due_cal = tdef
            .calendar
            .as_ref()
            .and_then(|c| (self.calendar)(c, last_run))
            .is_some_and(|at| at <= now.wall);
        if due_every || due_cal {
            self.disarm(i, DeadlineKind::TimerRun, fx);
            self.run_now(i, now, fx);
            true
        } else {
            self.disarm(i, DeadlineKind::TimerRun, fx);
            self.schedule_next(i, now, fx);
            true
        }
    }

    /// The wall clock was set (forward, back, or a resume from suspend): plan every waiting
    /// timer again in the new time. A `calendar` occurrence the clock was set past runs at
    /// once (one run, however many were jumped over), as systemd re-evaluates `OnCalendar`;
    /// otherwise the next run is the first match after the new time. `every` counts in wall
    /// time from the previous start (missed steps are not made up); `on_boot` stays
    /// monotonic: the boot moment is restated in the new wall time.
    pub(super) fn clock_changed(&mut self, now: Now, fx: &mut Vec<Effect>) {
        if let Some(b) = self.boot.as_mut() {
            let up = now.mono.saturating_duration_since(b.mono);
            if let Some(w) = now.wall.checked_sub(up) {
                b.wall = w;
            }
        }
        for i in 0..self.units.len() {
            let u = &self.units[i];
            if !(u.is_timer() && u.want_up && u.job.is_none() && u.is_armed(DeadlineKind::TimerRun))
            {
                continue;
            }
            let missed = u.cal_at.is_some_and(|c| c <= now.wall);
            self.disarm(i, DeadlineKind::TimerRun, fx);
            if missed {
                tracing::info!(unit = %self.units[i].name, "the clock was set past a calendar run: running it now");
                self.run_now(i, now, fx);
            } else {
                self.schedule_next(i, now, fx);
            }
        }
    }

    /// Arm a run due now.
    pub(super) fn run_now(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        u.timer_at = Some(now.wall);
        u.cal_at = None;
        if let Some(t) = u.timer.as_mut() {
            t.next = Some(now.wall);
        }
        self.arm(i, DeadlineKind::TimerRun, now.mono, fx);
    }

    /// Arm the next run: the earliest of `every`, `calendar` and a pending `on_boot`.
    pub(super) fn schedule_next(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        self.schedule_from(i, now, now.wall, fx);
    }

    /// Arm the next run after `from` (at least now).
    pub(super) fn schedule_from(
        &mut self,
        i: usize,
        now: Now,
        from: SystemTime,
        fx: &mut Vec<Effect>,
    ) {
        let boot = self.boot.unwrap_or(now);
        let u = &self.units[i];
        let Some(def) = u.def.clone() else { return };
        let Some(tdef) = def.timer.as_ref() else {
            return;
        };
        let from = from.max(now.wall);
        let mut best: Option<SystemTime> = None;
        let mut consider = |t: Option<SystemTime>| {
            if let Some(t) = t {
                best = Some(best.map_or(t, |b| b.min(t)));
            }
        };
        if let (Some(every), Some(t)) = (tdef.every, u.timer.as_ref()) {
            // A last run "in the future" (the clock was set back) counts as now.
            let base = t
                .last_start
                .or(t.active_since)
                .unwrap_or(now.wall)
                .min(now.wall);
            consider(every_next(base, every, from));
        }
        let cal_at = tdef
            .calendar
            .as_ref()
            .and_then(|cal| (self.calendar)(cal, from));
        consider(cal_at);
        let mut boot_done = false;
        if let (Some(ob), Some(t)) = (tdef.on_boot, u.timer.as_ref()) {
            if !t.on_boot_done {
                match boot.wall.checked_add(ob) {
                    Some(at) if at > from => consider(Some(at)),
                    _ => boot_done = true,
                }
            }
        }
        let u = &mut self.units[i];
        if let Some(t) = u.timer.as_mut() {
            t.on_boot_done |= boot_done;
            t.next = best;
        }
        u.timer_at = best;
        u.cal_at = cal_at;
        if let Some(at) = best {
            self.arm(
                i,
                DeadlineKind::TimerRun,
                mono_for(now.mono, now.wall, at),
                fx,
            );
        }
    }

    pub(super) fn timer_fire(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &self.units[i];
        if self.shutting || !u.want_up || !u.is_timer() {
            return;
        }
        if u.job.is_some() {
            // Being restarted: the run waits for the next time.
        } else if u.run_waiting {
            tracing::warn!(unit = %u.name, "previous run still waiting for its dependencies: run skipped");
            self.skip_run(i, now);
        } else if u.is_gone() {
            match self.start_check(i) {
                Check::Go => self.spawn(i, now, fx),
                Check::Wait => {
                    tracing::info!(unit = %u.name, "run waits for the units it is ordered after");
                    self.units[i].run_waiting = true;
                }
                Check::Fail(why) => {
                    tracing::warn!(unit = %u.name, %why, "run skipped");
                    self.units[i].note = Some(format!("run skipped: {why}"));
                    self.skip_run(i, now);
                }
                Check::Hold(why) => {
                    tracing::warn!(unit = %u.name, %why, "run skipped");
                    self.units[i].note = Some(format!("run skipped: {why}"));
                    self.skip_run(i, now);
                }
            }
        } else {
            tracing::warn!(unit = %u.name, "previous run still going: run skipped");
            self.skip_run(i, now);
        }
        // Never before the run just due, so a deadline fired a hair early cannot run twice.
        let from = self.units[i].timer_at.unwrap_or(now.wall);
        self.schedule_from(i, now, from, fx);
    }

    pub(super) fn skip_waiting_run(&mut self, i: usize, why: String, now: Now) {
        tracing::warn!(unit = %self.units[i].name, %why, "run skipped");
        let u = &mut self.units[i];
        u.run_waiting = false;
        u.note = Some(format!("run skipped: {why}"));
        self.skip_run(i, now);
    }

    pub(super) fn skip_run(&mut self, i: usize, now: Now) {
        if let Some(t) = self.units[i].timer.as_mut() {
            t.skipped += 1;
            t.last_skip = Some(now.wall);
        }
    }

    /// Timer runs held by [`Self::timer_fire`] go once what they wait for is up.
    pub(super) fn waiting_runs(&mut self, now: Now, fx: &mut Vec<Effect>) -> bool {
        let mut changed = false;
        for i in 0..self.units.len() {
            let u = &self.units[i];
            if !u.run_waiting {
                continue;
            }
            if self.shutting || !u.want_up || u.job.is_some() || !u.is_gone() {
                // Stopped or restarted meanwhile: the run is dropped.
                self.units[i].run_waiting = false;
                continue;
            }
            match self.start_check(i) {
                Check::Wait => {}
                Check::Go => {
                    self.units[i].run_waiting = false;
                    self.spawn(i, now, fx);
                    changed = true;
                }
                Check::Fail(why) => self.skip_waiting_run(i, why, now),
                Check::Hold(why) => self.skip_waiting_run(i, why.to_string(), now),
            }
        }
        changed
    }
}

//! Moving jobs in dependency order: when a start or stop may begin, and
//! beginning it.

use super::*;

impl Supervisor {
    pub(super) fn progress(&mut self, now: Now, fx: &mut Vec<Effect>) {
        if self.units.iter().all(|u| u.job.is_none() && !u.run_waiting) {
            return;
        }
        // Each round settles at least one job, so this ends; the bound is a guard.
        for _ in 0..=self.units.len() + 1 {
            let mut changed = false;
            for i in (0..self.units.len()).rev() {
                let u = &self.units[i];
                match u.job {
                    Some(Job::Stop) | Some(Job::Restart) => {
                        if u.is_gone() {
                            if u.job == Some(Job::Stop) {
                                self.finish_stop(i, now, fx);
                            } else {
                                self.units[i].job = Some(Job::Start);
                                if self.units[i].state != State::Invalid {
                                    self.units[i].set_state(State::Stopped, now.wall);
                                }
                            }
                            changed = true;
                        } else if u.main_unstopped() && !self.stop_blocked(i) {
                            self.begin_stop(i, now, fx);
                        } else if u.phase == Phase::Spawning && u.hook.is_some() {
                            // Its `exec_start_pre` runs: no main process will follow.
                            self.kill_hook(i, fx);
                        } else if matches!(u.state, State::Backoff | State::Waiting) {
                            // Leftovers still draining: no restart or run after them.
                            self.disarm(i, DeadlineKind::Restart, fx);
                            self.disarm(i, DeadlineKind::TimerRun, fx);
                            let u = &mut self.units[i];
                            u.restart_due = false;
                            u.set_state(State::Stopping, now.wall);
                        }
                    }
                    _ => {}
                }
            }
            for i in 0..self.units.len() {
                let u = &self.units[i];
                if u.job != Some(Job::Start) || !u.is_gone() {
                    continue;
                }
                match self.start_check(i) {
                    Check::Wait => {}
                    Check::Go => {
                        self.units[i].job = None;
                        self.begin_start(i, now, fx);
                        changed = true;
                    }
                    Check::Fail(why) => {
                        let u = &mut self.units[i];
                        u.job = None;
                        u.note = Some(why);
                        u.set_state(State::Failed, now.wall);
                        self.on_failed(i, now);
                        changed = true;
                    }
                    Check::Hold(why) => {
                        let u = &mut self.units[i];
                        tracing::warn!(unit = %u.name, reason = %why, "not starting");
                        u.job = None;
                        // Only a wish is held; a start nobody wants any more just ends.
                        u.held = u.want_up.then_some(why);
                        if u.state != State::Invalid {
                            u.set_state(State::Stopped, now.wall);
                        }
                        changed = true;
                    }
                }
            }
            changed |= self.waiting_runs(now, fx);
            if !changed {
                break;
            }
        }
    }

    /// A unit stops only after the units ordered after it that are stopping too.
    pub(super) fn stop_blocked(&self, i: usize) -> bool {
        self.units[i].dependents.iter().any(|&d| {
            let du = &self.units[d];
            matches!(du.job, Some(Job::Stop) | Some(Job::Restart)) && !du.is_gone()
        })
    }

    pub(super) fn start_check(&self, i: usize) -> Check {
        let u = &self.units[i];
        if let Some(def) = u.def.as_ref() {
            for r in &def.requires {
                match self.get(r) {
                    None => return Check::Hold(Held::MissingRequired(r.clone())),
                    // Its file is gone; it is being stopped and forgotten.
                    Some(ru) if ru.removed => return Check::Hold(Held::MissingRequired(r.clone())),
                    Some(ru) if ru.def.is_none() => {
                        return Check::Fail(format!("required unit {r} is invalid"))
                    }
                    Some(_) => {}
                }
            }
        }
        for &d in &u.deps {
            let du = &self.units[d];
            let starting = matches!(du.job, Some(Job::Start) | Some(Job::Restart))
                || du.phase == Phase::Spawning
                || (du.state == State::Starting && du.has_main())
                || du.state == State::Backoff
                || (du.state == State::Stopping && du.want_up)
                || du.reloading;
            let satisfied =
                du.is_up() || matches!(du.state, State::Exited | State::Waiting | State::Skipped);
            if satisfied {
                continue;
            }
            if starting {
                return Check::Wait;
            }
            if du.held.is_some() && du.want_up && u.requires.contains(&d) {
                return Check::Hold(Held::RequiredHeld(du.name.clone()));
            }
            // A failed boot task keeps back what is ordered after it, required or not.
            if u.requires.contains(&d) || (du.is_boot_task() && du.state == State::Failed) {
                return Check::Fail(du.blocks_dependent());
            }
        }
        Check::Go
    }

    pub(super) fn begin_start(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        if self.units[i].is_timer() {
            self.activate_timer(i, now, fx);
        } else {
            self.spawn(i, now, fx);
        }
    }

    pub(super) fn spawn(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        let Some(def) = u.def.clone() else { return };
        u.run_def = Some(def.clone());
        u.run_waiting = false;
        if u.timer.is_some() {
            u.note = None; // a skipped run's reason is old news once one runs
        }
        u.phase = Phase::Spawning;
        u.start = StartPhase::Pending;
        u.ready = false;
        u.reloading = false;
        u.pid = None;
        u.restart_due = false;
        u.set_state(State::Starting, now.wall);
        let name = u.name.clone();
        if let Some(t) = u.timer.as_mut() {
            t.last_start = Some(now.wall);
            t.run_started = Some(now.mono);
            if def.timer.as_ref().is_some_and(|t| t.persistent) {
                fx.push(Effect::PersistTimerRun {
                    unit: name.clone(),
                    at: now.wall,
                });
            }
        }
        if def.conditions.is_empty() {
            self.begin_run(i, now, fx);
        } else {
            self.units[i].start = StartPhase::Conditions;
            fx.push(Effect::CheckConditions { unit: name });
        }
    }

    /// What runs first of a start whose conditions hold: `exec_start_pre`, else the program.
    pub(super) fn begin_run(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        if self.has_hooks(i, HookKind::StartPre) {
            self.run_hook(i, HookKind::StartPre, 0, now, fx);
        } else {
            fx.push(Effect::Spawn {
                unit: self.units[i].name.clone(),
            });
        }
    }

    pub(super) fn begin_stop(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let (signal, timeout) = match self.units[i].active_def() {
            Some(d) => (
                d.stop.signal,
                d.stop.timeout.unwrap_or(self.defaults.kill_timeout),
            ),
            None => (libc::SIGTERM, self.defaults.kill_timeout),
        };
        let u = &mut self.units[i];
        if let Phase::Main { stop } = &mut u.phase {
            stop.get_or_insert(Stopping::Expected);
        }
        u.reloading = false;
        u.set_state(State::Stopping, now.wall);
        // `exec_stop` stops a unit that came up (as in systemd); a reload or
        // `exec_start_post` still going is ended first.
        let stop_hooks = u.start == StartPhase::Up && self.has_hooks(i, HookKind::Stop);
        self.kill_hook(i, fx);
        if stop_hooks && self.units[i].hook.is_none() {
            self.run_hook(i, HookKind::Stop, 0, now, fx);
        } else {
            self.stop_signal(i, signal, fx);
        }
        self.arm(i, DeadlineKind::StopTimeout, later(now.mono, timeout), fx);
    }

    /// The stop signal to the main process, and SIGHUP right after it with `[stop] sighup`.
    pub(super) fn stop_signal(&self, i: usize, signal: i32, fx: &mut Vec<Effect>) {
        let unit = self.units[i].name.clone();
        let hup =
            signal != libc::SIGHUP && self.units[i].active_def().is_some_and(|d| d.stop.sighup);
        fx.push(Effect::Signal {
            unit: unit.clone(),
            signal,
        });
        if hup {
            fx.push(Effect::Signal {
                unit,
                signal: libc::SIGHUP,
            });
        }
    }

    pub(super) fn finish_stop(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        self.disarm(i, DeadlineKind::Restart, fx);
        self.disarm(i, DeadlineKind::TimerRun, fx);
        let u = &mut self.units[i];
        u.job = None;
        u.restart_due = false;
        u.timer_at = None;
        u.cal_at = None;
        if let Some(t) = u.timer.as_mut() {
            t.next = None;
        }
        // A unit that already ended (exited, failed) keeps saying how.
        if u.def.is_some() && !matches!(u.state, State::Exited | State::Failed) {
            u.set_state(State::Stopped, now.wall);
        }
    }

    /// The unit failed for good: what requires it stops; an essential unit ends colony-init.
    pub(super) fn on_failed(&mut self, i: usize, now: Now) {
        let name = self.units[i].name.clone();
        let why = if self.units[i].is_boot_task() {
            self.units[i].blocks_dependent()
        } else {
            format!("required unit {name} failed")
        };
        for d in self.units[i].req_dependents.clone() {
            let du = &self.units[d];
            if du.job == Some(Job::Start) {
                continue; // fails by itself in start_check
            }
            if du.want_up && (!du.is_gone() || matches!(du.state, State::Backoff | State::Waiting))
            {
                let mut seen = HashSet::new();
                self.cmd_stop(d, Some(why.clone()), &mut seen);
            }
        }
        let u = &self.units[i];
        if u.def.as_ref().is_some_and(|d| d.essential) && !self.shutting {
            let code = match u.last_exit.as_ref().and_then(|e| e.status) {
                Some(ExitStatus::Code(0)) | None => 1,
                Some(ExitStatus::Code(c)) => c,
                Some(ExitStatus::Signal(n)) => n.saturating_add(128),
            };
            tracing::error!(unit = %name, code, "essential unit failed; stopping everything");
            self.shutdown(code, now);
        }
    }
}

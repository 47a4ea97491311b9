//! Facts about a unit's processes (spawned, exited, empty, strays), its
//! deadlines, and what the unit tells (ready, beats, watchdog pings, reload, stop).

use super::*;

/// The process ended with one of its unit's success codes.
fn is_success(status: Option<ExitStatus>, def: &Unit) -> bool {
    matches!(status, Some(ExitStatus::Code(c)) if def.restart.success_codes.contains(&c))
}

impl Supervisor {
    pub(super) fn on_spawned(&mut self, i: usize, pid: i32, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        if u.phase != Phase::Spawning {
            return;
        }
        u.phase = Phase::Main { stop: None };
        u.pid = Some(pid);
        u.started = Some(now.mono);
        let Some(def) = u.run_def.clone() else { return };
        if def.timer.is_some() {
            u.ready = true;
            u.set_state(State::Running, now.wall);
            if let Some(t) = def.timer.as_ref().and_then(|t| t.timeout) {
                self.arm(i, DeadlineKind::TimerTimeout, later(now.mono, t), fx);
            }
        } else {
            let settle = def.ready.settle;
            if !settle.is_zero() {
                self.arm(i, DeadlineKind::Settle, later(now.mono, settle), fx);
            }
            match def.ready.kind {
                ReadyType::Started if settle.is_zero() => self.came_up(i, now, fx),
                ReadyType::Started => {
                    let u = &mut self.units[i];
                    u.start = StartPhase::Settling;
                    u.set_state(State::Starting, now.wall);
                }
                ReadyType::Notify | ReadyType::Tcp(_) | ReadyType::File(_) => {
                    self.units[i].set_state(State::Starting, now.wall);
                    let t = def.ready.timeout.unwrap_or(DEFAULT_READY_TIMEOUT);
                    self.arm(i, DeadlineKind::ReadyTimeout, later(now.mono, t), fx);
                }
                // A boot task is up at its exit (`on_died`); a timeout only if it has one.
                ReadyType::Exited => {
                    self.units[i].set_state(State::Starting, now.wall);
                    if let Some(t) = def.ready.timeout {
                        self.arm(i, DeadlineKind::ReadyTimeout, later(now.mono, t), fx);
                    }
                }
            }
            if let (ReadyType::Notify, Some(w)) = (&def.ready.kind, def.ready.watchdog) {
                self.arm(i, DeadlineKind::Watchdog, later(now.mono, w), fx);
            }
        }
        if let Some(hb) = def.heartbeat.as_ref() {
            self.arm(i, DeadlineKind::Heartbeat, later(now.mono, hb.grace), fx);
        }
    }

    /// Its ready condition came and it lived `[ready] settle`: up, once its
    /// `exec_start_post` hooks (if any) are done.
    pub(super) fn came_up(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        match self.units[i].start {
            StartPhase::Post | StartPhase::Up => {}
            _ if self.has_hooks(i, HookKind::StartPost) => {
                self.units[i].start = StartPhase::Post;
                self.run_hook(i, HookKind::StartPost, 0, now, fx);
            }
            _ => self.up(i, now),
        }
    }

    /// The run is up.
    pub(super) fn up(&mut self, i: usize, now: Now) {
        let u = &mut self.units[i];
        u.start = StartPhase::Up;
        u.failed_starts = 0;
        u.ready = true;
        u.set_state(State::Running, now.wall);
    }

    pub(super) fn on_spawn_failed(
        &mut self,
        i: usize,
        error: String,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let u = &mut self.units[i];
        if u.phase != Phase::Spawning {
            return;
        }
        tracing::warn!(unit = %u.name, %error, "could not start");
        // The loop reaped what it forked: nothing is left.
        u.phase = Phase::Idle;
        u.started = None;
        let exit = LastExit {
            status: None,
            reason: Some(ExitReason::Exec),
            detail: Some(error),
        };
        self.on_died(i, exit, None, now, fx);
        self.on_gone(i, now, fx);
    }

    pub(super) fn on_exited(
        &mut self,
        i: usize,
        status: ExitStatus,
        oom: bool,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let Phase::Main { stop } = self.units[i].phase else {
            return;
        };
        // An `exec_stop` going on after the main process stays bounded by the stop timeout.
        let stop_hook = matches!(self.units[i].hook, Some(h) if h.kind == HookKind::Stop);
        if !stop_hook {
            self.disarm(i, DeadlineKind::StopTimeout, fx);
        }
        for k in [
            DeadlineKind::Settle,
            DeadlineKind::Watchdog,
            DeadlineKind::Heartbeat,
            DeadlineKind::TimerTimeout,
        ] {
            self.disarm(i, k, fx);
        }
        let u = &mut self.units[i];
        u.phase = Phase::Leftovers;
        u.pid = None;
        // Always, even after a StopTimeout's KillAll: an Empty seen before this exit was
        // not believed, so the loop must be asked (and answer) again. Only `exec_stop` goes
        // on after the main process (it may be what ended it): the KillAll follows it.
        match u.hook.map(|h| h.kind) {
            Some(HookKind::Stop) => {}
            Some(_) => {
                fx.push(Effect::KillAll {
                    unit: u.name.clone(),
                });
                self.kill_hook(i, fx);
            }
            None => fx.push(Effect::KillAll {
                unit: u.name.clone(),
            }),
        }
        let fault = match stop {
            Some(Stopping::Fault(f)) => Some(f),
            _ => None,
        };
        let reason = if oom {
            Some(ExitReason::Oom)
        } else {
            match stop {
                Some(Stopping::Fault(f)) => Some(f.into()),
                Some(Stopping::Expected) => Some(ExitReason::Stopped),
                None => None,
            }
        };
        let exit = LastExit {
            status: Some(status),
            reason,
            detail: None,
        };
        self.on_died(i, exit, fault, now, fx);
    }

    /// The main process is over (or never was): record it and decide what comes next.
    pub(super) fn on_died(
        &mut self,
        i: usize,
        exit: LastExit,
        fault: Option<Fault>,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let shutting = self.shutting;
        let defaults = self.defaults;
        let u = &mut self.units[i];
        u.ready = false;
        u.reloading = false;
        let lifetime = u
            .started
            .take()
            .map(|s| now.mono.saturating_duration_since(s));
        let (status, reason) = (exit.status, exit.reason);
        u.last_exit = Some(exit);
        let Some(def) = u.def.clone().or_else(|| u.run_def.clone()) else {
            return;
        };
        if def.timer.is_some() {
            if let Some(t) = u.timer.as_mut() {
                let duration = t
                    .run_started
                    .take()
                    .map(|s| now.mono.saturating_duration_since(s))
                    .unwrap_or_default();
                t.last_result = Some(RunResult {
                    status,
                    reason,
                    duration,
                });
            }
            if u.job.is_some() || !u.want_up || shutting {
                u.set_state(State::Stopping, now.wall);
            } else {
                u.set_state(State::Waiting, now.wall);
            }
            return;
        }
        if matches!(u.job, Some(Job::Stop) | Some(Job::Restart)) || !u.want_up || shutting {
            u.set_state(State::Stopping, now.wall);
            return;
        }
        let boot_task = def.ready.kind == ReadyType::Exited;
        if boot_task && fault.is_none() && is_success(status, &def) {
            // A boot task is up now, and done: `exited` whatever its restart policy says.
            tracing::info!(unit = %u.name, "boot task done");
            u.start = StartPhase::Up;
            u.failed_starts = 0;
            u.backoff = None;
            u.note = None;
            u.set_state(State::Exited, now.wall);
            return;
        }
        // A death before up (before its ready condition, or before `settle`) is a failed
        // start whatever its code, as a notify service that exits before READY=1 fails.
        let failed_start = u.start != StartPhase::Up;
        if failed_start {
            u.failed_starts = u.failed_starts.saturating_add(1);
        }
        let success = fault.is_none() && !failed_start && is_success(status, &def);
        let forced = fault.is_some_and(Fault::forces_restart);
        let restart = forced
            || match def.restart.policy {
                RestartPolicy::Always => true,
                RestartPolicy::OnFailure => !success,
                RestartPolicy::Never => false,
            };
        let threshold = def
            .restart
            .threshold
            .unwrap_or(defaults.threshold)
            .max(MIN_REPEAT_DELAY);
        let instant = fault == Some(Fault::ReadyTimeout) || lifetime.is_none_or(|l| l < threshold);
        let delay_min = def.restart.delay_min.unwrap_or(defaults.min_restart_delay);
        let delay_max = def.restart.delay_max.unwrap_or(defaults.max_restart_delay);
        let given_up = def
            .restart
            .max_failures
            .filter(|&m| failed_start && u.failed_starts >= m);
        if let Some(m) = given_up {
            tracing::warn!(unit = %u.name, failed_starts = u.failed_starts, "failed starts in a row reached max_failures: left alone until started by hand");
            u.note = Some(format!(
                "{} failed starts in a row ([restart] max_failures = {m}): left alone until started by hand",
                u.failed_starts
            ));
        }
        if !restart || given_up.is_some() {
            u.backoff = None;
            if success {
                u.set_state(State::Exited, now.wall);
            } else {
                u.set_state(State::Failed, now.wall);
                self.on_failed(i, now);
            }
            return;
        }
        let delay = if instant {
            let next = match u.backoff {
                None => delay_min.min(delay_max),
                Some(prev) => prev
                    .saturating_mul(2)
                    .max(MIN_REPEAT_DELAY)
                    .min(delay_max.max(MIN_REPEAT_DELAY)),
            };
            u.backoff = Some(next);
            next
        } else {
            u.backoff = None;
            delay_min.min(delay_max)
        };
        let why = reason
            .map(|r| format!(" ({})", r.as_str()))
            .unwrap_or_default();
        let status = status.map_or_else(|| "failed to start".to_string(), |s| s.to_string());
        tracing::info!(unit = %u.name, "{} {status}{why}: restarting in {}", u.name, humantime::format_duration(delay));
        u.set_state(State::Backoff, now.wall);
        if delay.is_zero() {
            u.restart_due = true;
        } else {
            self.arm(i, DeadlineKind::Restart, later(now.mono, delay), fx);
        }
    }

    pub(super) fn on_empty(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        // Only after the main process is known dead: an earlier Empty may be stale.
        if u.phase != Phase::Leftovers {
            return;
        }
        u.phase = Phase::Idle;
        if u.is_gone() {
            self.on_gone(i, now, fx);
        }
    }

    /// What escaped the unit's process group: the unit is gone once none is left.
    pub(super) fn on_strays(&mut self, i: usize, pids: Vec<i32>, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        let had = !u.strays.is_empty();
        u.strays = pids;
        if had && u.is_gone() {
            self.on_gone(i, now, fx);
        }
    }

    /// Nothing of the unit is left.
    pub(super) fn on_gone(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        if u.job.is_some() {
            return; // progress() takes it on
        }
        match u.state {
            State::Backoff if u.restart_due => self.auto_restart(i, now, fx),
            State::Stopping => u.set_state(State::Stopped, now.wall),
            _ => {}
        }
    }

    pub(super) fn auto_restart(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        if self.shutting || !self.units[i].want_up {
            return;
        }
        self.units[i].restarts += 1;
        // Like any start, it waits while a unit it is ordered after is being started (in
        // its own backoff, say): a unit must not come back before what it needs.
        if matches!(self.start_check(i), Check::Wait | Check::Hold(_)) {
            self.units[i].job = Some(Job::Start);
            return;
        }
        self.spawn(i, now, fx);
    }

    pub(super) fn on_deadline(
        &mut self,
        i: usize,
        kind: DeadlineKind,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        if !self.units[i].is_armed(kind) {
            return; // stale
        }
        self.units[i].set_armed(kind, false);
        let u = &self.units[i];
        match kind {
            DeadlineKind::Restart => {
                if u.state == State::Backoff {
                    self.units[i].restart_due = true;
                    if self.units[i].is_gone() && self.units[i].job.is_none() {
                        self.auto_restart(i, now, fx);
                    }
                }
            }
            DeadlineKind::StopTimeout => {
                if u.phase != Phase::Idle || !u.strays.is_empty() || u.hook.is_some() {
                    tracing::warn!(unit = %u.name, "stop timeout: killing everything left");
                    let name = u.name.clone();
                    fx.push(Effect::KillAll { unit: name });
                    self.kill_hook(i, fx);
                }
            }
            DeadlineKind::Settle => {
                if u.main_unstopped()
                    && u.state == State::Starting
                    && u.start == StartPhase::Settling
                {
                    self.came_up(i, now, fx);
                }
            }
            DeadlineKind::ReadyTimeout => {
                if u.state == State::Starting {
                    self.fault(i, Fault::ReadyTimeout, now, fx);
                } else if u.reloading {
                    tracing::warn!(unit = %u.name, "reload not over by the ready timeout: counted as up again");
                    self.end_reload(i, fx);
                }
            }
            DeadlineKind::Watchdog => self.fault(i, Fault::Watchdog, now, fx),
            DeadlineKind::Heartbeat => self.fault(i, Fault::Heartbeat, now, fx),
            DeadlineKind::TimerRun => self.timer_fire(i, now, fx),
            DeadlineKind::TimerTimeout => {
                if u.is_timer() {
                    self.fault(i, Fault::Timeout, now, fx);
                }
            }
            DeadlineKind::Hook => self.on_hook_deadline(i, fx),
        }
    }

    /// Stop the running process on our own, to restart it (or end a timer run).
    pub(super) fn fault(&mut self, i: usize, reason: Fault, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        if !u.main_unstopped() {
            return;
        }
        tracing::warn!(unit = %u.name, reason = reason.as_str(), "stopping the unit");
        u.phase = Phase::Main {
            stop: Some(Stopping::Fault(reason)),
        };
        self.begin_stop(i, now, fx);
    }

    pub(super) fn on_beat(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        u.last_beat = Some(now.wall);
        let period = u
            .run_def
            .as_ref()
            .and_then(|d| d.heartbeat.as_ref())
            .map(|h| h.period);
        if let Some(p) = period {
            if u.main_unstopped() {
                self.arm(i, DeadlineKind::Heartbeat, later(now.mono, p), fx);
            }
        }
    }

    pub(super) fn on_ready(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &self.units[i];
        if u.main_unstopped() && u.state == State::Starting && u.start != StartPhase::Post {
            self.disarm(i, DeadlineKind::ReadyTimeout, fx);
            if self.units[i].is_armed(DeadlineKind::Settle) {
                self.units[i].start = StartPhase::Settling; // up when settle is over
            } else {
                self.came_up(i, now, fx);
            }
        }
    }

    /// `RELOADING=1` / its end (see the contract in the module docs of `core`).
    pub(super) fn on_reloading(
        &mut self,
        i: usize,
        reloading: bool,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let u = &mut self.units[i];
        if reloading {
            if !(u.main_unstopped() && u.state == State::Running && u.ready) || u.is_timer() {
                return;
            }
            u.ready = false;
            u.reloading = true;
            let t = u
                .run_def
                .as_ref()
                .and_then(|d| d.ready.timeout)
                .unwrap_or(DEFAULT_READY_TIMEOUT);
            self.arm(i, DeadlineKind::ReadyTimeout, later(now.mono, t), fx);
        } else if u.reloading {
            self.end_reload(i, fx);
        }
    }

    pub(super) fn end_reload(&mut self, i: usize, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        u.reloading = false;
        if u.main_unstopped() && u.state == State::Running {
            u.ready = true;
        }
        self.disarm(i, DeadlineKind::ReadyTimeout, fx);
    }

    /// `EXTEND_TIMEOUT_USEC=`: move the ready or stop timeout that is armed.
    pub(super) fn extend_timeout(
        &mut self,
        i: usize,
        by: Duration,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        for kind in [DeadlineKind::ReadyTimeout, DeadlineKind::StopTimeout] {
            if self.units[i].is_armed(kind) {
                self.arm(i, kind, later(now.mono, by), fx);
            }
        }
    }

    /// `STOPPING=1`: a stop under way that colony did not ask for.
    pub(super) fn on_stopping(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &self.units[i];
        if !u.main_unstopped() || !matches!(u.state, State::Starting | State::Running) {
            return;
        }
        tracing::info!(unit = %u.name, "the unit announced its stop");
        let timeout = u
            .active_def()
            .and_then(|d| d.stop.timeout)
            .unwrap_or(self.defaults.kill_timeout);
        for k in [
            DeadlineKind::ReadyTimeout,
            DeadlineKind::Settle,
            DeadlineKind::Watchdog,
            DeadlineKind::Heartbeat,
        ] {
            self.disarm(i, k, fx);
        }
        let u = &mut self.units[i];
        u.phase = Phase::Main {
            stop: Some(Stopping::Expected),
        };
        u.ready = false;
        u.reloading = false;
        u.set_state(State::Stopping, now.wall);
        self.arm(i, DeadlineKind::StopTimeout, later(now.mono, timeout), fx);
    }

    pub(super) fn on_watchdog_ping(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &self.units[i];
        let period = u.run_def.as_ref().and_then(|d| d.ready.watchdog);
        if let Some(p) = period {
            if u.main_unstopped() && u.is_armed(DeadlineKind::Watchdog) {
                self.arm(i, DeadlineKind::Watchdog, later(now.mono, p), fx);
            }
        }
    }
}

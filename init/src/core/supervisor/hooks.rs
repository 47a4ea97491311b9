//! Hooks as phases of a unit's run: `exec_start_pre` lines run one by one before the
//! `Spawn` (the unit is `starting`, phase `Spawning`); `exec_start_post` once the unit would
//! be up (`StartPhase::Post`: it is up when they are done); `exec_stop` before the stop
//! signal; `exec_reload` at `colonyctl reload NAME` (the unit is reloading meanwhile). One
//! hook command runs at a time; each is bounded by the unit's start timeout (`[ready]
//! timeout`, 90s by default, as systemd's TimeoutStartSec covers ExecStartPre/Post), and
//! `exec_stop` by the stop timeout. A failed line (not `-`) fails the start (`exec_start_pre`,
//! `exec_start_post`), skips the rest of `exec_stop` (the signal follows), or ends the reload.

use super::*;

impl Supervisor {
    /// The definition the unit runs with has lines in `kind`.
    pub(super) fn has_hooks(&self, i: usize, kind: HookKind) -> bool {
        self.units[i]
            .run_def
            .as_ref()
            .is_some_and(|d| !d.hooks.get(kind).is_empty())
    }

    fn hook_len(&self, i: usize, kind: HookKind) -> usize {
        self.units[i]
            .run_def
            .as_ref()
            .map_or(0, |d| d.hooks.get(kind).len())
    }

    /// How long one hook command of `kind` may take.
    fn hook_timeout(&self, i: usize, kind: HookKind) -> Duration {
        let def = self.units[i].active_def();
        match kind {
            HookKind::Stop => def
                .and_then(|d| d.stop.timeout)
                .unwrap_or(self.defaults.kill_timeout),
            _ => def
                .and_then(|d| d.ready.timeout)
                .unwrap_or(DEFAULT_READY_TIMEOUT),
        }
    }

    /// Start line `index` of `kind`.
    pub(super) fn run_hook(
        &mut self,
        i: usize,
        kind: HookKind,
        index: usize,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let u = &mut self.units[i];
        u.hook = Some(HookRun {
            kind,
            index,
            pid: None,
            killed: false,
        });
        fx.push(Effect::RunHook {
            unit: u.name.clone(),
            kind,
            index,
        });
        // `exec_stop` runs under the StopTimeout armed with it.
        if kind != HookKind::Stop {
            let t = self.hook_timeout(i, kind);
            self.arm(i, DeadlineKind::Hook, later(now.mono, t), fx);
        }
    }

    /// Kill the hook command that runs now, once (a timeout, or a stop that cannot wait).
    pub(super) fn kill_hook(&mut self, i: usize, fx: &mut Vec<Effect>) {
        let u = &mut self.units[i];
        if let Some(h) = u.hook.as_mut().filter(|h| !h.killed) {
            h.killed = true;
            fx.push(Effect::KillHook {
                unit: u.name.clone(),
            });
        }
    }

    pub(super) fn on_hook_deadline(&mut self, i: usize, fx: &mut Vec<Effect>) {
        if let Some(h) = self.units[i].hook {
            tracing::warn!(unit = %self.units[i].name, "{} took too long: killing it", h.kind);
            self.kill_hook(i, fx);
        }
    }

    /// `colonyctl reload NAME`: run `exec_reload` on a running, ready unit.
    pub(super) fn cmd_reload(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        let u = &self.units[i];
        if !(u.main_unstopped() && u.state == State::Running && u.ready)
            || u.reloading
            || u.hook.is_some()
            || !self.has_hooks(i, HookKind::Reload)
        {
            return;
        }
        let u = &mut self.units[i];
        u.reloading = true;
        u.ready = false;
        self.run_hook(i, HookKind::Reload, 0, now, fx);
    }

    pub(super) fn on_hook_ended(&mut self, i: usize, end: HookEnd, now: Now, fx: &mut Vec<Effect>) {
        let Some(h) = self.units[i].hook.take() else {
            return;
        };
        self.disarm(i, DeadlineKind::Hook, fx);
        let line = self.units[i]
            .run_def
            .as_ref()
            .and_then(|d| d.hooks.cmd(h.kind, h.index).cloned());
        let ignored = line.as_ref().is_some_and(|c| c.ignore_failure) && !h.killed;
        let ok = end.success() || ignored;
        let more = h.index + 1 < self.hook_len(i, h.kind);
        let what = format!(
            "{} `{}` {end}",
            h.kind,
            line.map(|c| c.argv.join(" ")).unwrap_or_default()
        );
        if !end.success() {
            let name = &self.units[i].name;
            if ignored {
                tracing::info!(unit = %name, "{what} (failure ignored)");
            } else {
                tracing::warn!(unit = %name, "{what}");
            }
        }
        match h.kind {
            HookKind::StartPre => self.after_start_pre(i, h, ok, more, end, what, now, fx),
            HookKind::StartPost => {
                let u = &self.units[i];
                if u.main_unstopped() && u.start == StartPhase::Post {
                    if !ok {
                        self.units[i].note = Some(what);
                        self.fault(i, Fault::Hook(HookKind::StartPost), now, fx);
                    } else if more {
                        self.run_hook(i, h.kind, h.index + 1, now, fx);
                    } else {
                        self.up(i, now);
                    }
                } else {
                    self.gone_after_hook(i, now, fx);
                }
            }
            HookKind::Stop => match self.units[i].phase {
                Phase::Main { .. } if ok && more => {
                    self.run_hook(i, h.kind, h.index + 1, now, fx);
                }
                Phase::Main { .. } => {
                    let signal = self.units[i]
                        .active_def()
                        .map_or(libc::SIGTERM, |d| d.stop.signal);
                    self.stop_signal(i, signal, fx);
                }
                // The main process ended during `exec_stop`: what is left goes now.
                Phase::Leftovers => fx.push(Effect::KillAll {
                    unit: self.units[i].name.clone(),
                }),
                _ => self.gone_after_hook(i, now, fx),
            },
            HookKind::Reload => {
                let u = &self.units[i];
                if u.main_unstopped() && u.reloading && ok && more {
                    self.run_hook(i, h.kind, h.index + 1, now, fx);
                } else {
                    if !ok {
                        self.units[i].note = Some(format!("reload failed: {what}"));
                    } else if self.units[i].reloading {
                        self.units[i].note = None;
                    }
                    if self.units[i].reloading {
                        self.end_reload(i, fx);
                    }
                    self.gone_after_hook(i, now, fx);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn after_start_pre(
        &mut self,
        i: usize,
        h: HookRun,
        ok: bool,
        more: bool,
        end: HookEnd,
        what: String,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        if self.units[i].phase != Phase::Spawning || self.abandon_start(i, now) {
            return;
        }
        let u = &mut self.units[i];
        if !ok {
            u.phase = Phase::Idle;
            u.started = None;
            let exit = LastExit {
                status: match end {
                    HookEnd::Exited(s) => Some(s),
                    HookEnd::NotStarted(_) => None,
                },
                reason: Some(ExitReason::Hook(HookKind::StartPre)),
                detail: Some(what),
            };
            self.on_died(i, exit, None, now, fx);
            self.on_gone(i, now, fx);
        } else if more {
            self.run_hook(i, h.kind, h.index + 1, now, fx);
        } else {
            fx.push(Effect::Spawn {
                unit: self.units[i].name.clone(),
            });
        }
    }

    /// A stop came while the start was being prepared (conditions, `exec_start_pre`): the
    /// program is not started. True if so.
    pub(super) fn abandon_start(&mut self, i: usize, now: Now) -> bool {
        let shutting = self.shutting;
        let u = &mut self.units[i];
        let unwanted =
            matches!(u.job, Some(Job::Stop) | Some(Job::Restart)) || !u.want_up || shutting;
        if unwanted {
            u.phase = Phase::Idle;
            u.started = None;
            u.start = StartPhase::Pending;
            if u.job.is_none() {
                u.set_state(State::Stopped, now.wall);
            }
        }
        unwanted
    }

    /// A hook that outlived the main process was the last of the unit.
    fn gone_after_hook(&mut self, i: usize, now: Now, fx: &mut Vec<Effect>) {
        if self.units[i].phase == Phase::Idle && self.units[i].is_gone() {
            self.on_gone(i, now, fx);
        }
    }
}

//! Hook commands (`exec_start_pre`...) as the loop carries them out: forked like the main
//! process (same identity, environment, sandbox, cgroup and log pipe), their exec report read
//! at once (a hook is short and rare), tracked by pidfd and reaped by the loop's `reap`.

use super::*;

use crate::core::{HookEnd, HookKind};

impl Engine {
    /// `Effect::RunHook`: start line `index` of the unit's `kind` list.
    pub(super) fn run_hook(&mut self, name: &str, kind: HookKind, index: usize) -> Vec<Input> {
        let rec = self.core.get(name);
        let def = rec.and_then(|r| r.active_def().cloned());
        let main_pid = rec.and_then(|r| r.pid);
        let Some((def, line)) = def.and_then(|d| {
            let line = d.hooks.cmd(kind, index)?.clone();
            Some((d, line))
        }) else {
            return vec![self.hook_ended(name, HookEnd::NotStarted("no such hook line".into()))];
        };
        let argv = units::hooks::expand_mainpid(&line.argv, main_pid);
        let shown = argv.join(" ");
        self.hook_note(name, &format!("colony: {kind}: {shown}"));
        let started = self
            .launch(name, &def, Some(argv))
            .and_then(|(child, report)| spawn::finish(child, &report).map_err(|e| e.to_string()));
        match started {
            Ok(child) => {
                let pid = child.pid;
                self.hook_pids.insert(pid, name.to_string());
                let rt = self.units.entry(name.to_string()).or_default();
                rt.hook = Some(Proc { pidfd: child.pidfd });
                vec![Input::HookStarted {
                    unit: name.to_string(),
                    pid,
                }]
            }
            Err(e) => vec![self.hook_ended(name, HookEnd::NotStarted(e))],
        }
    }

    /// `Effect::KillHook`.
    pub(super) fn kill_hook(&mut self, name: &str) {
        if let Some(p) = self.units.get(name).and_then(|rt| rt.hook.as_ref()) {
            if let Err(e) = spawn::send_signal(p.pidfd.as_fd(), libc::SIGKILL) {
                debug!(unit = %name, error = %e, "hook not killed");
            }
        }
    }

    /// A reaped pid that was a hook command: its end for the core (`None`: no hook's).
    pub(super) fn reap_hook(&mut self, pid: i32) -> Option<Input> {
        let name = self.hook_pids.remove(&pid)?;
        let rt = self.units.get_mut(&name)?;
        drain_output(rt, &mut self.console, &self.core, &name);
        let status = rt
            .hook
            .take()
            .and_then(|p| spawn::try_wait(p.pidfd.as_fd()).ok().flatten());
        let status = status.unwrap_or_else(|| {
            reaper::reap(pid);
            ExitStatus::Signal(libc::SIGKILL)
        });
        Some(self.hook_ended(&name, HookEnd::Exited(status)))
    }

    fn hook_ended(&mut self, name: &str, end: HookEnd) -> Input {
        let kind = self
            .core
            .get(name)
            .and_then(|r| r.hook)
            .map(|h| h.kind.key())
            .unwrap_or("hook");
        self.hook_note(name, &format!("colony: {kind} {end}"));
        Input::HookEnded {
            unit: name.to_string(),
            end,
        }
    }

    fn hook_note(&mut self, name: &str, text: &str) {
        if let Some(log) = self.units.get_mut(name).and_then(|rt| rt.log.as_mut()) {
            let _ = log.write_note(text);
        }
    }
}

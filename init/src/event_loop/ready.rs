//! Readiness, sd_notify and health checks as the loop drives them (their logic is in
//! `kernel/notify.rs` and `probe/`).

use super::*;

impl Engine {
    // ---- readiness, notify, health (logic in kernel/notify.rs and probe/) --------------------

    pub(super) fn on_notify(&mut self) {
        let mut got = Vec::new();
        let members = &self.members;
        if let Some(sock) = self.notify.as_mut() {
            sock.drain(NOTIFY_BUDGET, &mut self.limits, |dg, limits| {
                let t = Instant::now();
                let Some(unit) = members.sender_unit(&dg) else {
                    notify::log_drop(limits, t, None, dg.pid, notify::DropReason::NoUnit);
                    return;
                };
                let Some(msgs) = notify::parse(&dg.payload) else {
                    let why = notify::DropReason::Malformed;
                    notify::log_drop(limits, t, Some(unit), dg.pid, why);
                    return;
                };
                got.push((unit.to_string(), msgs));
            });
        }
        for (unit, msgs) in got {
            // A datagram from the unit means its program runs: take the exec report first,
            // so the core sees Spawned before the READY=1 that may come in the same turn.
            if self.units.get(&unit).is_some_and(|rt| rt.pending.is_some()) {
                if let Some(input) = self.confirm_exec(&unit) {
                    self.feed(input);
                }
            }
            let notify_type = self
                .core
                .get(&unit)
                .and_then(|r| r.def.as_ref())
                .is_some_and(|d| d.ready.kind == units::model::ReadyType::Notify);
            let orders = notify::interpret(
                &unit,
                notify_type,
                &msgs,
                &self.members,
                &mut self.limits,
                Instant::now(),
            );
            for order in orders {
                match order {
                    notify::Order::Feed(input) => self.feed(input),
                    notify::Order::Status(t) => {
                        if let Some(rt) = self.units.get_mut(&unit) {
                            rt.status_text = Some(t);
                        }
                    }
                    notify::Order::Extend(by) => self.feed(Input::ExtendTimeout {
                        unit: unit.clone(),
                        by,
                    }),
                    notify::Order::Reloading(reloading) => {
                        let relevant =
                            reloading || self.core.get(&unit).is_some_and(|r| r.reloading);
                        if relevant {
                            self.feed(Input::Reloading {
                                unit: unit.clone(),
                                reloading,
                            });
                        }
                    }
                }
            }
        }
    }

    /// Start or stop the unit's readiness probe and health checks to match its state.
    pub(super) fn sync_probes(&mut self, unit: &str) -> Vec<Input> {
        let Some(p) = self.probes.as_mut() else {
            return Vec::new();
        };
        let (awaits_ready, up, def) = match self.core.get(unit) {
            Some(r) => (r.awaits_ready(), r.is_up(), r.def.clone()),
            None => (false, false, None),
        };
        let actions = match def {
            Some(def) => p.sync(unit, awaits_ready, up, &def),
            None => {
                p.stop(unit);
                Vec::new()
            }
        };
        self.probe_actions(actions)
    }

    /// Carry out what probes decided; the inputs for the core come back.
    pub(super) fn probe_actions(&mut self, actions: Vec<probe::Action>) -> Vec<Input> {
        let mut inputs = Vec::new();
        let mut queue = VecDeque::from(actions);
        while let Some(a) = queue.pop_front() {
            match a {
                probe::Action::Ready(unit) => inputs.push(Input::Ready { unit }),
                probe::Action::Fault(unit) => inputs.push(Input::Fault {
                    unit,
                    reason: crate::core::Fault::Health,
                }),
                probe::Action::Exec { unit, argv } => {
                    let r = self.spawn_check(&unit, &argv);
                    let Some(p) = self.probes.as_mut() else { break };
                    match r {
                        Ok(pid) => p.exec_started(&unit, pid),
                        Err(e) => queue.extend(p.exec_failed(&unit, &e)),
                    }
                }
            }
        }
        inputs
    }

    /// Start an `exec` health check in the unit's cgroup, as the unit's user.
    pub(super) fn spawn_check(&mut self, unit: &str, argv: &[String]) -> Result<i32, String> {
        let def = self
            .core
            .get(unit)
            .and_then(|r| r.def.clone())
            .ok_or("no definition")?;
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), self.path_env.clone()),
            ("COLONY_UNIT".into(), unit.to_string()),
        ];
        env.extend(def.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
        let fds = match self.units.get(unit).and_then(|rt| rt.cgroup.as_ref()) {
            Some(cg) => Some(cg.open_placement().map_err(|e| e.to_string())?),
            None => None,
        };
        let placement = fds
            .as_ref()
            .map(|f| f.placement())
            .unwrap_or(spawn::Placement::None);
        let creds = crate::kernel::creds::Creds::for_unit(&def).map_err(|e| e.to_string())?;
        // In the unit's sandbox, beside its running program.
        let sandbox = self.unit_sandbox(unit, &def, &creds, sandboxed::Beside::Main)?;
        let child = probe::spawn_exec(&def, &creds, sandbox.as_ref(), argv, &env, placement)?;
        Ok(child.pid)
    }
}

//! Readiness, sd_notify and health checks as the loop drives them (their logic is in
//! `notify.rs` and `probe.rs`).

use super::*;

impl Engine {
    // ---- readiness, notify, health (logic in notify.rs and probe.rs) --------------------

    pub(super) fn on_notify(&mut self) {
        let mut got = Vec::new();
        let members = &self.members;
        if let Some(sock) = self.notify.as_mut() {
            sock.drain(NOTIFY_BUDGET, |dg, drops| {
                let t = Instant::now();
                let Some(unit) = members.sender_unit(&dg) else {
                    notify::log_drop(drops, t, dg.pid, "sender is in no unit");
                    return;
                };
                let Some(msgs) = notify::parse(&dg.payload) else {
                    notify::log_drop(drops, t, dg.pid, "malformed datagram");
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
            for order in notify::interpret(&unit, notify_type, &msgs, &self.members) {
                match order {
                    notify::Order::Feed(input) => self.feed(input),
                    notify::Order::Status(t) => {
                        if let Some(rt) = self.units.get_mut(&unit) {
                            rt.status_text = Some(t);
                        }
                    }
                    notify::Order::Extend(d) => {
                        for kind in [DeadlineKind::ReadyTimeout, DeadlineKind::StopTimeout] {
                            let key = Key::Unit(unit.clone(), kind);
                            if self.deadlines.is_armed(&key) {
                                self.deadlines.arm(key, probe::after(Instant::now(), d));
                            }
                        }
                    }
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
        let (state, up, def) = match self.core.get(unit) {
            Some(r) => (r.state, r.is_up(), r.def.clone()),
            None => (State::Stopped, false, None),
        };
        let actions = match def {
            Some(def) => p.sync(unit, state == State::Starting, up, &def),
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
                    reason: "health",
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
        let child = probe::spawn_exec(&def, argv, &env, placement)?;
        Ok(child.pid)
    }
}

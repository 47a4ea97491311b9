//! Loading the units directory: diffing it against what the core has, the
//! dependency graph and its order, and forgetting removed units.

use super::*;

impl Supervisor {
    pub(super) fn load(
        &mut self,
        set: Vec<(String, Result<Unit, String>)>,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        if self.shutting {
            return;
        }
        self.loaded = true;
        let mut seen = HashSet::new();
        let mut fresh = Vec::new();
        let mut changed = Vec::new();
        for (name, res) in set {
            if !seen.insert(name.clone()) {
                continue;
            }
            match (self.idx(&name), res) {
                (None, Ok(unit)) => {
                    self.push(UnitRecord::new(
                        name.clone(),
                        Some(Arc::new(unit)),
                        None,
                        now.wall,
                    ));
                    fresh.push(name);
                }
                (None, Err(e)) => {
                    tracing::warn!(unit = %name, error = %e, "unit file is invalid");
                    self.push(UnitRecord::new(name, None, Some(e), now.wall));
                }
                (Some(i), Err(e)) => {
                    tracing::warn!(unit = %name, error = %e, "unit file is invalid; keeping the last good definition");
                    let u = &mut self.units[i];
                    u.error = Some(e);
                    if u.removed && u.def.is_some() {
                        // Back in the directory, though broken: keep it on its last good definition.
                        u.removed = false;
                    }
                }
                (Some(i), Ok(unit)) => {
                    let u = &mut self.units[i];
                    u.error = None;
                    let was_removed = std::mem::replace(&mut u.removed, false);
                    match &u.def {
                        None => {
                            u.def = Some(Arc::new(unit));
                            u.timer = u
                                .def
                                .as_ref()
                                .and_then(|d| d.timer.as_ref())
                                .map(|_| Default::default());
                            u.set_state(State::Stopped, now.wall);
                            fresh.push(name);
                        }
                        Some(old) if **old == unit && !was_removed => {}
                        Some(old) => {
                            let was_enabled = old.starts_when_loaded();
                            let was_timer = old.timer.is_some();
                            u.def = Some(Arc::new(unit));
                            let is_timer = u.def.as_ref().is_some_and(|d| d.timer.is_some());
                            if is_timer && u.timer.is_none() {
                                u.timer = Some(Default::default());
                            }
                            changed.push((name, was_enabled, was_timer, was_removed));
                        }
                    }
                }
            }
        }
        let gone: Vec<String> = self
            .units
            .iter()
            .filter(|u| !seen.contains(&u.name) && !u.removed)
            .map(|u| u.name.clone())
            .collect();
        self.rebuild();
        for name in gone {
            if let Some(i) = self.idx(&name) {
                let wanted = self.wanted_dependents(i);
                self.units[i].removed = true;
                tracing::info!(unit = %name, "unit file removed: stopping it");
                self.cmd_stop(i, Some("removed".into()), &mut HashSet::new());
                // What requires it stops first, and is then held until the file is back
                // (a missing required unit holds a start): still wanted.
                for d in wanted {
                    let u = &mut self.units[d];
                    u.want_up = true;
                    u.note = None;
                    u.job = match u.job {
                        Some(Job::Stop) => Some(Job::Restart),
                        _ => Some(Job::Start),
                    };
                }
            }
        }
        for name in fresh {
            if let Some(i) = self.idx(&name) {
                if self.units[i]
                    .def
                    .as_ref()
                    .is_some_and(|d| d.starts_when_loaded())
                {
                    self.cmd_start(i, false, now, fx, &mut HashSet::new());
                }
            }
        }
        for (name, was_enabled, was_timer, was_removed) in changed {
            let Some(i) = self.idx(&name) else { continue };
            if was_timer && !self.units[i].is_timer() {
                // No longer a timer unit: its schedule ends here.
                self.disarm(i, DeadlineKind::TimerRun, fx);
                let u = &mut self.units[i];
                u.timer = None;
                u.timer_at = None;
                u.cal_at = None;
                if u.state == State::Waiting {
                    u.set_state(State::Stopped, now.wall);
                }
            }
            let u = &self.units[i];
            let enabled = u.def.as_ref().is_some_and(|d| d.starts_when_loaded());
            let active = u.want_up;
            if u.is_timer() && was_timer && u.is_gone() {
                // Same kind of unit, no run going: only the schedule changes.
                if u.want_up && u.state == State::Waiting {
                    self.disarm(i, DeadlineKind::TimerRun, fx);
                    self.schedule_next(i, now, fx);
                } else if enabled && !was_enabled {
                    self.cmd_start(i, false, now, fx, &mut HashSet::new());
                }
            } else if active && !was_removed {
                self.cmd_restart(i, false, now, fx, &mut HashSet::new());
            } else if enabled && (!was_enabled || was_removed) {
                self.cmd_start(i, false, now, fx, &mut HashSet::new());
            }
        }
    }

    /// Units held back by something that is no longer so (a missing unit is there, a held
    /// unit they require is being started) get their start again; `progress` holds them
    /// anew if the cause remains. In dependency order, so a unit held by another held one
    /// sees it starting.
    pub(super) fn release_held(&mut self) {
        if self.shutting || self.units.iter().all(|u| u.held.is_none()) {
            return;
        }
        for i in 0..self.units.len() {
            let u = &self.units[i];
            if u.held.is_none() || !u.want_up || u.job.is_some() || self.shutting {
                continue;
            }
            match self.start_check(i) {
                Check::Hold(why) if Some(&why) == u.held.as_ref() => {}
                _ => {
                    let u = &mut self.units[i];
                    tracing::debug!(unit = %u.name, "what held the unit back is gone: starting it");
                    u.held = None;
                    u.job = Some(Job::Start);
                }
            }
        }
    }

    /// The units that require unit `i`, directly or not, and are up or on their way
    /// (not those that ended, failed or were stopped).
    pub(super) fn wanted_dependents(&self, i: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut todo = self.units[i].req_dependents.clone();
        while let Some(d) = todo.pop() {
            let u = &self.units[d];
            if !seen.insert(d)
                || !u.want_up
                || matches!(u.state, State::Exited | State::Failed | State::Invalid)
            {
                continue;
            }
            out.push(d);
            todo.extend(u.req_dependents.iter().copied());
        }
        out
    }

    pub(super) fn push(&mut self, rec: UnitRecord) {
        self.index.insert(rec.name.clone(), self.units.len());
        self.units.push(rec);
    }

    /// Order units topologically by `after` and `requires` and recompute the edges.
    pub(super) fn rebuild(&mut self) {
        let mut recs: Vec<Option<UnitRecord>> = std::mem::take(&mut self.units)
            .into_iter()
            .map(Some)
            .collect();
        let mut by_name: Vec<usize> = (0..recs.len()).collect();
        by_name.sort_by(|&a, &b| name_of(&recs, a).cmp(name_of(&recs, b)));
        let pos: HashMap<String, usize> = recs
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().map(|r| (r.name.clone(), i)))
            .collect();
        // `before` is the other unit's `after`.
        let mut before_of: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, r) in recs.iter().enumerate() {
            if let Some(d) = r.as_ref().and_then(|r| r.def.as_ref()) {
                for b in &d.links.before {
                    before_of.entry(b.as_str()).or_default().push(i);
                }
            }
        }
        let edges = |r: &UnitRecord| -> Vec<usize> {
            let Some(d) = r.def.as_ref() else {
                return Vec::new();
            };
            let mut v: Vec<usize> = d
                .after
                .iter()
                .chain(d.requires.iter())
                .filter_map(|n| pos.get(n).copied())
                .chain(
                    before_of
                        .get(r.name.as_str())
                        .into_iter()
                        .flatten()
                        .copied(),
                )
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let deps_of: Vec<Vec<usize>> = recs
            .iter()
            .map(|r| r.as_ref().map(edges).unwrap_or_default())
            .collect();
        // Kahn's algorithm, always taking the smallest name that is free.
        let mut indeg: Vec<usize> = deps_of.iter().map(|d| d.len()).collect();
        let mut rdeps: Vec<Vec<usize>> = vec![Vec::new(); recs.len()];
        for (i, ds) in deps_of.iter().enumerate() {
            for &d in ds {
                rdeps[d].push(i);
            }
        }
        let mut order = Vec::with_capacity(recs.len());
        let mut placed = vec![false; recs.len()];
        let mut ready: std::collections::BTreeSet<(String, usize)> = by_name
            .iter()
            .filter(|&&i| indeg[i] == 0)
            .map(|&i| (name_of(&recs, i).to_string(), i))
            .collect();
        loop {
            while let Some((_, i)) = ready.pop_first() {
                placed[i] = true;
                order.push(i);
                for &r in &rdeps[i] {
                    indeg[r] = indeg[r].saturating_sub(1);
                    if indeg[r] == 0 && !placed[r] {
                        ready.insert((name_of(&recs, r).to_string(), r));
                    }
                }
            }
            // A cycle: break it at the smallest name left, and go on.
            match by_name.iter().find(|&&i| !placed[i]) {
                Some(&i) => {
                    indeg[i] = 0;
                    ready.insert((name_of(&recs, i).to_string(), i));
                }
                None => break,
            }
        }
        let mut rank = vec![0usize; recs.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r;
        }
        let mut units = Vec::with_capacity(recs.len());
        for &i in &order {
            if let Some(mut rec) = recs[i].take() {
                let me = rank[i];
                rec.deps = deps_of[i]
                    .iter()
                    .map(|&d| rank[d])
                    .filter(|&d| d < me)
                    .collect();
                rec.requires = rec
                    .def
                    .as_ref()
                    .map(|d| {
                        d.requires
                            .iter()
                            .filter_map(|n| pos.get(n).map(|&p| rank[p]))
                            .filter(|&p| p < me)
                            .collect()
                    })
                    .unwrap_or_default();
                rec.dependents.clear();
                rec.req_dependents.clear();
                units.push(rec);
            }
        }
        for i in 0..units.len() {
            for k in 0..units[i].deps.len() {
                let d = units[i].deps[k];
                units[d].dependents.push(i);
            }
            for k in 0..units[i].requires.len() {
                let d = units[i].requires[k];
                units[d].req_dependents.push(i);
            }
        }
        self.index = units
            .iter()
            .enumerate()
            .map(|(i, u)| (u.name.clone(), i))
            .collect();
        self.units = units;
    }

    pub(super) fn forget_removed(&mut self, now: SystemTime, fx: &mut Vec<Effect>) {
        if !self
            .units
            .iter()
            .any(|u| u.removed && u.is_gone() && u.job.is_none())
        {
            return;
        }
        let before = self.units.len();
        let mut keep = Vec::with_capacity(before);
        for u in std::mem::take(&mut self.units) {
            if u.removed && u.is_gone() && u.job.is_none() {
                for kind in ALL_KINDS {
                    if u.is_armed(kind) {
                        fx.push(Effect::Disarm {
                            unit: u.name.clone(),
                            kind,
                        });
                    }
                }
                fx.push(Effect::Forget {
                    unit: u.name.clone(),
                });
                Change::gone(u, now, &mut self.changes);
            } else {
                keep.push(u);
            }
        }
        self.units = keep;
        if self.units.len() != before {
            self.rebuild();
        }
    }
}

//! The start of a run, before anything runs: its conditions and asserts (a failed condition
//! skips the unit, a failed assert fails it), and what a start or stop does to the units it
//! `wants` (started too; their failure does not matter) and `conflicts` with (stopped).

use super::*;

impl Supervisor {
    pub(super) fn on_conditions(
        &mut self,
        i: usize,
        verdict: Verdict,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let u = &self.units[i];
        if u.phase != Phase::Spawning || u.start != StartPhase::Conditions || u.hook.is_some() {
            return;
        }
        if self.abandon_start(i, now) {
            return;
        }
        let timer = self.units[i].is_timer();
        let u = &mut self.units[i];
        u.start = StartPhase::Pending;
        match verdict {
            Verdict::Pass => self.begin_run(i, now, fx),
            Verdict::Skip(why) => {
                tracing::info!(unit = %u.name, "not started: {why}");
                u.phase = Phase::Idle;
                u.note = Some(why);
                u.backoff = None;
                if let Some(t) = u.timer.as_mut() {
                    t.run_started = None;
                }
                // A timer unit waits for its next run; a service is skipped until started again.
                let state = if timer {
                    State::Waiting
                } else {
                    State::Skipped
                };
                u.set_state(state, now.wall);
            }
            Verdict::Fail(why) => {
                tracing::warn!(unit = %u.name, "not started: {why}");
                u.phase = Phase::Idle;
                u.backoff = None;
                u.last_exit = Some(LastExit {
                    status: None,
                    reason: Some(ExitReason::Assert),
                    detail: Some(why),
                });
                u.set_state(State::Failed, now.wall);
                self.on_failed(i, now);
            }
        }
    }

    /// A start of `i`: start what it `wants`, stop what it conflicts with (either side
    /// naming the other).
    pub(super) fn start_links(
        &mut self,
        i: usize,
        now: Now,
        fx: &mut Vec<Effect>,
        seen: &mut HashSet<usize>,
    ) {
        let Some(def) = self.units[i].def.clone() else {
            return;
        };
        let name = self.units[i].name.clone();
        let mut conflicting: Vec<usize> = def
            .links
            .conflicts
            .iter()
            .filter_map(|c| self.idx(c))
            .collect();
        conflicting.extend(self.units.iter().enumerate().filter_map(|(j, u)| {
            u.def
                .as_ref()
                .is_some_and(|d| d.links.conflicts.contains(&name))
                .then_some(j)
        }));
        for &c in &conflicting {
            let cu = &self.units[c];
            // One being started by this same order (what it wants or requires) stays: the
            // first to start wins.
            if c != i && !seen.contains(&c) && (cu.want_up || !cu.is_gone() || cu.job.is_some()) {
                tracing::info!(unit = %cu.name, "stopping it: {name} conflicts with it");
                self.cmd_stop(
                    c,
                    Some(format!("conflicts with {name}")),
                    &mut HashSet::new(),
                );
            }
        }
        // A wanted unit that conflicts with this one is not started (its failure to start
        // does not matter to this one anyway).
        for w in &def.links.wants {
            if let Some(j) = self.idx(w).filter(|j| !conflicting.contains(j)) {
                self.cmd_start(j, false, now, fx, seen);
            }
        }
    }
}

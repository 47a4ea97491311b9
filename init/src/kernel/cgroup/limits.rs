//! Writing a unit's resource limits (memory, CPU, tasks) into its cgroup: v2 files, or their
//! v1 counterparts; a limit that cannot be enforced here is a warning, never silent.

use super::*;

impl UnitCgroup {
    pub(super) fn apply_limits(&self, cgs: &Cgroups, res: &Resources, fresh: bool) -> Vec<String> {
        let mut warnings = Vec::new();
        let mut set = |key: &str, requested: bool, dir: &Path, file: &str, val: &str| {
            if fresh && !requested {
                return; // a fresh cgroup already holds the kernel's default
            }
            if let Err(e) = write_file(&dir.join(file), val) {
                if requested {
                    warnings.push(format!("{key} not enforced: cannot write {file}: {e}"));
                } else {
                    tracing::debug!(unit = %self.unit, file, error = %e, "cannot reset limit");
                }
            }
        };
        let absent = |key: &str, c: &str| {
            format!(
                "{key} not enforced: no {c} controller in colony's cgroups ({})",
                cgs.layout.as_str()
            )
        };
        let mut missing = Vec::new();

        match self.limit_dir("memory") {
            Some((d, true)) => {
                let max = res.memory_max.map_or("max".into(), |v| v.to_string());
                let high = res.memory_high.map_or("max".into(), |v| v.to_string());
                set(
                    "memory_max",
                    res.memory_max.is_some(),
                    d,
                    "memory.max",
                    &max,
                );
                set(
                    "memory_high",
                    res.memory_high.is_some(),
                    d,
                    "memory.high",
                    &high,
                );
            }
            Some((d, false)) => {
                let max = res.memory_max.map_or("-1".into(), |v| v.to_string());
                let high = res.memory_high.map_or("-1".into(), |v| v.to_string());
                set(
                    "memory_max",
                    res.memory_max.is_some(),
                    d,
                    "memory.limit_in_bytes",
                    &max,
                );
                set(
                    "memory_high",
                    res.memory_high.is_some(),
                    d,
                    "memory.soft_limit_in_bytes",
                    &high,
                );
            }
            None => {
                if res.memory_max.is_some() {
                    missing.push(absent("memory_max", "memory"));
                }
                if res.memory_high.is_some() {
                    missing.push(absent("memory_high", "memory"));
                }
            }
        }

        let quota = res.cpu_max.map(|pct| u64::from(pct) * CPU_PERIOD_US / 100);
        match self.limit_dir("cpu") {
            Some((d, true)) => {
                let max = match quota {
                    Some(q) => format!("{} {CPU_PERIOD_US}", q.max(1000)),
                    None => format!("max {CPU_PERIOD_US}"),
                };
                set("cpu_max", quota.is_some(), d, "cpu.max", &max);
                let w = res.cpu_weight.unwrap_or(100).clamp(1, 10000);
                set(
                    "cpu_weight",
                    res.cpu_weight.is_some(),
                    d,
                    "cpu.weight",
                    &w.to_string(),
                );
            }
            Some((d, false)) => {
                set(
                    "cpu_max",
                    quota.is_some(),
                    d,
                    "cpu.cfs_period_us",
                    &CPU_PERIOD_US.to_string(),
                );
                let q = quota.map_or("-1".into(), |q| q.max(1000).to_string());
                set("cpu_max", quota.is_some(), d, "cpu.cfs_quota_us", &q);
                let shares = res
                    .cpu_weight
                    .map_or(1024, |w| (u64::from(w) * 1024 / 100).max(2));
                set(
                    "cpu_weight",
                    res.cpu_weight.is_some(),
                    d,
                    "cpu.shares",
                    &shares.to_string(),
                );
            }
            None => {
                if res.cpu_max.is_some() {
                    missing.push(absent("cpu_max", "cpu"));
                }
                if res.cpu_weight.is_some() {
                    missing.push(absent("cpu_weight", "cpu"));
                }
            }
        }

        match self.limit_dir("pids") {
            Some((d, _)) => {
                let max = res.tasks_max.map_or("max".into(), |v| v.to_string());
                set("tasks_max", res.tasks_max.is_some(), d, "pids.max", &max);
            }
            None => {
                if res.tasks_max.is_some() {
                    missing.push(absent("tasks_max", "pids"));
                }
            }
        }
        warnings.extend(missing);
        warnings
    }
}

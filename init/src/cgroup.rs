//! cgroupfs of our own: layout detection (v2, hybrid, v1), a cgroup per unit, limits, kill, stats.

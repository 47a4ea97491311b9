//! Value syntaxes: durations, sizes, signals, capabilities, users, groups, umask, cpu_max, cron.

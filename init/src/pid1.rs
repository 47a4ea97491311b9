//! PID 1 duties: mounts, hostname, container or machine, the final kill, sync and reboot(2).

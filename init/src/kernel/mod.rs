//! Everything that touches the kernel on a unit's behalf: cloning and exec'ing children
//! (`spawn`, `child_fds`, `creds`), cgroupfs (`cgroup`), reaping and pidfds (`reaper`,
//! `strays`), the notify socket (`notify`), PID 1's mounts and power-off (`pid1`), and
//! files opened for a unit without following its links (`safe_path`, `dirsync`), and a
//! unit's mount namespace and seccomp filters (`sandbox`). The core
//! never calls in here; the event loop does, with what the core decided.

pub mod cgroup;
pub mod child_fds;
pub mod conditions;
pub mod credentials;
pub mod creds;
pub mod dirsync;
pub mod exec_setup;
pub mod notify;
pub mod pid1;
pub mod reaper;
pub mod safe_path;
pub mod sandbox;
pub mod sockets;
pub mod spawn;
pub mod strays;
pub mod tty;
pub mod unit_dirs;
pub mod unmount;

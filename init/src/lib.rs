//! colony-init: PID 1, container entrypoint, or a plain supervisor.
//!
//! See ARCHITECTURE.md at the repository root for the map.

// PID 1 never panics on what the world controls: no unwrap/expect outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod cgroup;
pub mod child_fds;
pub mod config;
pub mod control;
pub mod core;
pub mod creds;
pub mod deadlines;
pub mod dirsync;
pub mod entrypoint;
pub mod event_loop;
pub mod hosts;
pub mod logs;
pub mod notify;
pub mod pid1;
pub mod probe;
pub mod reaper;
pub mod spawn;

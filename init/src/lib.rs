//! colony-init: PID 1, container entrypoint, or a plain supervisor.
//!
//! See ARCHITECTURE.md at the repository root for the map.

// PID 1 never panics on what the world controls: no unwrap/expect outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod config;
pub mod control;
pub mod core;
pub mod deadlines;
pub mod entrypoint;
pub mod event_loop;
pub mod handover;
pub mod hosts;
pub mod kernel;
pub mod logs;
pub mod probe;
pub mod ratelimit;
pub mod self_log;

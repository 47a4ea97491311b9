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

/// This image's version: the package's, with `+TAG` when built with `COLONY_BUILD_TAG` set
/// (a distribution's build, or the second build the reexec VM test re-executes into).
pub fn version() -> String {
    match option_env!("COLONY_BUILD_TAG") {
        Some(tag) if !tag.is_empty() => format!("{}+{tag}", env!("CARGO_PKG_VERSION")),
        _ => env!("CARGO_PKG_VERSION").to_string(),
    }
}

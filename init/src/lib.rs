//! colony-init: PID 1, container entrypoint, or a plain supervisor.
//!
//! See ARCHITECTURE.md at the repository root for the map.

pub mod core;

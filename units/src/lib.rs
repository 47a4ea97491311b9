//! colony's unit-file model, shared by colony-init and colonyctl.
//!
//! - [`model`]: the typed unit (what a valid file says, with defaults filled in);
//! - [`parse`]: TOML text -> [`model::Unit`] with located, helpful errors;
//! - [`values`]: durations, sizes, signals, capabilities, users, cron...;
//! - [`validate`]: a directory as a whole (dependencies, cycles);
//! - [`diag`]: the error type, printed as `FILE:LINE:COL: KEY: message`;
//! - [`proto`]: the control-FIFO protocol and the status/timers JSON shapes.

pub mod diag;
pub mod model;
pub mod parse;
pub mod proto;
pub mod validate;
pub mod values;

//! colony's unit-file model, shared by colony-init and colonyctl.
//!
//! - [`model`]: the typed unit (what a valid file says, with defaults filled in);
//! - [`parse`]: TOML text -> [`model::Unit`] with located, helpful errors;
//! - [`validate`]: a directory as a whole (dependencies, cycles);
//! - [`proto`]: the control-FIFO protocol and the status/timers JSON shapes.

pub mod model;
pub mod proto;

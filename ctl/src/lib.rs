//! colonyctl as a library, so its commands can be tested in-process and `main.rs` can use them.

pub mod fleet;
pub mod import;

//! Helpers shared by the integration tests: temporary colony instances, bounded waits.

pub mod bins;
pub mod ns;

pub use bins::bin;

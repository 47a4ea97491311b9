//! Helpers shared by the integration tests: temporary colony instances, bounded waits.

//! The verdict on a unit's conditions and asserts (`condition_*`, `assert_*`), which the loop
//! checks when the core asks ([`super::Effect::CheckConditions`]) at the start of a run.

/// What the conditions and asserts of a unit say about the start now beginning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// All hold: the start goes on.
    Pass,
    /// A condition failed (this text names it): the unit is `skipped`, not failed.
    Skip(String),
    /// An assert failed: the start fails with this reason.
    Fail(String),
}

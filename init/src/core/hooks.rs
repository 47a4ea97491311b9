//! Hooks as phases of a unit's run (`exec_start_pre`, `exec_start_post`, `exec_stop`,
//! `exec_reload`): which command of which list runs now. The rules that move from one to
//! the next are in `supervisor/hooks.rs`; the loop only spawns the command
//! ([`super::Effect::RunHook`]) and reports its end ([`super::Input::HookEnded`]).

pub use units::hooks::HookKind;

use super::ExitStatus;

/// The hook command of a unit that runs now (at most one at a time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HookRun {
    pub kind: HookKind,
    /// Its line in the list.
    pub index: usize,
    /// Its pid, once the loop started it.
    pub pid: Option<i32>,
    /// Killed by colony-init (its timeout passed, or the unit is being stopped): a failure
    /// even for a `-` line, and killed once.
    pub killed: bool,
}

/// How a hook command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookEnd {
    Exited(ExitStatus),
    /// It could not be started (exec failure, bad argument...).
    NotStarted(String),
}

impl HookEnd {
    pub fn success(&self) -> bool {
        matches!(self, HookEnd::Exited(ExitStatus::Code(0)))
    }
}

impl std::fmt::Display for HookEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HookEnd::Exited(s) => write!(f, "{s}"),
            HookEnd::NotStarted(e) => write!(f, "did not start: {e}"),
        }
    }
}

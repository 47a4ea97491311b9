//! What a failed start says: the step of the child's setup that failed and its errno.

use std::fmt;
use std::io;

/// Which part of the child's setup failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Step {
    /// argv[0] not found in PATH (in the parent).
    Resolve = 1,
    Signals,
    Session,
    Cgroup,
    Stdio,
    Groups,
    Gid,
    Bounding,
    KeepCaps,
    Uid,
    Capset,
    Ambient,
    NoNewPrivs,
    Chdir,
    Exec,
    Limits,
    Sandbox,
    Seccomp,
    Nice,
    OomScore,
    Rlimits,
    ListenFds,
    Tty,
}

impl Step {
    pub(super) fn from_u32(v: u32) -> Step {
        use Step::*;
        [
            Resolve, Signals, Session, Cgroup, Stdio, Groups, Gid, Bounding, KeepCaps, Uid, Capset,
            Ambient, NoNewPrivs, Chdir, Exec, Limits, Sandbox, Seccomp, Nice, OomScore, Rlimits,
            ListenFds, Tty,
        ]
        .into_iter()
        .find(|s| *s as u32 == v)
        .unwrap_or(Exec)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Resolve => "exec (not found in PATH)",
            Step::Signals => "reset signals",
            Step::Session => "setsid",
            Step::Cgroup => "join cgroup",
            Step::Stdio => "redirect stdio",
            Step::Groups => "setgroups",
            Step::Gid => "setresgid",
            Step::Bounding => "drop bounding capabilities",
            Step::KeepCaps => "PR_SET_KEEPCAPS",
            Step::Uid => "setresuid",
            Step::Capset => "capset",
            Step::Ambient => "raise ambient capabilities",
            Step::NoNewPrivs => "PR_SET_NO_NEW_PRIVS",
            Step::Chdir => "chdir",
            Step::Exec => "exec",
            Step::Limits => "set the open-files limit (nofile)",
            Step::Sandbox => "set up the [sandbox] namespaces and mounts",
            Step::Seccomp => "install the [sandbox] seccomp filters",
            Step::Nice => "set the nice value",
            Step::OomScore => "write /proc/self/oom_score_adj",
            Step::Rlimits => "set the resource limits (limits)",
            Step::ListenFds => "place the [socket] fds at 3..",
            Step::Tty => "make the [tty] terminal the controlling terminal (another session has it? force = true takes it)",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The child could not be set up or could not exec; it has been reaped.
    #[error("{step}: {}", strerror(*errno))]
    Exec { step: Step, errno: i32 },
    #[error("empty argv")]
    EmptyArgv,
    #[error("clone: {}", OsError(.0))]
    Clone(io::Error),
    /// Parent-side preparation (pipe, /dev/null, pidfd) failed.
    #[error("preparing the spawn: {}", OsError(.0))]
    Setup(io::Error),
}

impl SpawnError {
    /// The errno of an exec/setup failure (ENOENT, EACCES...).
    pub fn errno(&self) -> Option<i32> {
        match self {
            SpawnError::Exec { errno, .. } => Some(*errno),
            SpawnError::Clone(e) | SpawnError::Setup(e) => e.raw_os_error(),
            SpawnError::EmptyArgv => None,
        }
    }
}

/// "No such file or directory", without std's " (os error 2)"; EMFILE as [`OsError`] says it.
fn strerror(errno: i32) -> String {
    if errno == libc::EMFILE {
        return OsError(&io::Error::from_raw_os_error(errno)).to_string();
    }
    let s = io::Error::from_raw_os_error(errno).to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// An OS error as a failed start says it. EMFILE (colony-init's fd table is full: the units
/// hold every fd it may open) names the limit, which is what the operator must raise;
/// anything else is the error's own text.
pub struct OsError<'a>(pub &'a io::Error);

impl fmt::Display for OsError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.raw_os_error() != Some(libc::EMFILE) {
            return self.0.fmt(f);
        }
        f.write_str("too many open files (EMFILE): colony-init's open-files limit is ")?;
        match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
            Ok((soft, _)) => write!(f, "{soft}"),
            Err(_) => f.write_str("unknown"),
        }
    }
}

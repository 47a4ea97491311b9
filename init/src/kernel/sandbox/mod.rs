//! `[sandbox]` on the kernel's side: everything prepared in the parent ([`prepare`]), then
//! two calls in the child: [`Prepared::enter`] (namespaces and mounts, before the
//! credentials change) and [`Prepared::seal`] (no_new_privs where needed and the seccomp
//! filters, last before exec).
//!
//! [`prepare`] is the one way to a unit's sandbox for every process run on its behalf: its
//! main program (namespaces of its own, [`Join::Fresh`]) and the commands run beside it
//! (health checks, [`Join::Main`]: they enter the running program's mount and network
//! namespaces, so they see its private /tmp and reach it on a private loopback, and get the
//! same seccomp filters).

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use units::model::Unit;
use units::sandbox::Sandbox;

use crate::kernel::creds::Creds;

pub mod mounts;
pub mod seccomp;
mod syscalls;

/// Capability number of CAP_SYS_ADMIN: without it, a filter needs no_new_privs.
const CAP_SYS_ADMIN: u32 = 21;

/// A child-side step failed; errno says why (the child reports it).
#[derive(Debug)]
pub struct Failed;

/// Whose namespaces a sandboxed process gets.
#[derive(Clone, Copy)]
pub enum Join<'a> {
    /// New ones, set up from the unit's `[sandbox]` (the unit's main program, or a command
    /// run before it).
    Fresh,
    /// Those of the running process behind this pidfd (the unit's main program): for a
    /// command run beside it.
    Main(BorrowedFd<'a>),
}

/// What the child carries out, prepared before clone.
pub struct Prepared {
    mounts: mounts::MountPlan,
    /// A pidfd whose mount (and network) namespaces the child enters instead of `mounts`.
    join: Option<(OwnedFd, libc::c_int)>,
    filters: Arc<seccomp::Filters>,
    /// PR_SET_NO_NEW_PRIVS before the filters (the unit has no CAP_SYS_ADMIN to install
    /// them without it, as systemd implies NoNewPrivileges= then).
    no_new_privs: bool,
    /// What this kernel cannot honour, for `status`.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Plan(#[from] mounts::PlanError),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    #[error("[sandbox]: the unit's pidfd: {0}")]
    Pidfd(std::io::Error),
}

/// The seccomp programs of each unit, built once per definition.
#[derive(Default)]
pub struct Cache {
    filters: HashMap<String, (Sandbox, Arc<seccomp::Filters>)>,
    /// The mount table, read again only when it changed.
    mounts: mounts::Table,
}

impl Cache {
    fn filters(
        &mut self,
        name: &str,
        sb: &Sandbox,
    ) -> Result<Arc<seccomp::Filters>, seccomp::SeccompError> {
        if let Some((s, f)) = self.filters.get(name) {
            if s == sb {
                return Ok(f.clone());
            }
        }
        let f = Arc::new(seccomp::build(sb)?);
        self.filters
            .insert(name.to_string(), (sb.clone(), f.clone()));
        Ok(f)
    }

    /// Forget a unit (removed from the directory).
    pub fn forget(&mut self, name: &str) {
        self.filters.remove(name);
    }
}

/// The sandbox of a process run for `unit`, or None when it asks for none.
pub fn prepare(
    cache: &mut Cache,
    unit: &Unit,
    creds: &Creds,
    run_dir: &Path,
    join: Join<'_>,
) -> Result<Option<Prepared>, SandboxError> {
    prepare_on(cache, unit, creds, run_dir, join, seccomp::available())
}

/// [`prepare`] on a kernel that takes seccomp filters (`seccomp`) or not.
fn prepare_on(
    cache: &mut Cache,
    unit: &Unit,
    creds: &Creds,
    run_dir: &Path,
    join: Join<'_>,
    seccomp: bool,
) -> Result<Option<Prepared>, SandboxError> {
    let Some(sb) = unit.sandbox.as_deref().filter(|s| s.any()) else {
        return Ok(None);
    };
    let mut warnings = Vec::new();
    let filters = if !sb.wants_seccomp() {
        Arc::new(seccomp::build(&Sandbox::default())?)
    } else if !seccomp {
        warnings.push(
            "[sandbox] not enforced: this kernel has no seccomp filters (system_call_filter, restrict_*, memory_deny_write_execute, lock_personality)".to_string(),
        );
        Arc::new(seccomp::build(&Sandbox::default())?)
    } else {
        match cache.filters(&unit.name, sb) {
            Ok(f) => f,
            Err(seccomp::SeccompError::Arch) => {
                warnings.push(format!(
                    "[sandbox] not enforced: no seccomp filters on {} (system_call_filter, restrict_*, memory_deny_write_execute, lock_personality)",
                    std::env::consts::ARCH
                ));
                Arc::new(seccomp::build(&Sandbox::default())?)
            }
            Err(e) => return Err(e.into()),
        }
    };
    let (mounts, join) = match join {
        Join::Fresh => (mounts::plan(sb, run_dir, &mut cache.mounts)?, None),
        Join::Main(pidfd) => {
            let mut ns = 0;
            if sb.wants_mounts() {
                ns |= libc::CLONE_NEWNS;
            }
            if sb.private_network {
                ns |= libc::CLONE_NEWNET;
            }
            if sb.protect_hostname {
                ns |= libc::CLONE_NEWUTS;
            }
            let own = pidfd.try_clone_to_owned().map_err(SandboxError::Pidfd)?;
            (mounts::MountPlan::none(), (ns != 0).then_some((own, ns)))
        }
    };
    // The capabilities the program will hold when the filters go in.
    let caps = match (creds.caps, creds.uid) {
        (Some(mask), _) => mask,
        (None, Some(uid)) if uid != 0 => 0,
        (None, _) if nix::unistd::geteuid().is_root() => crate::kernel::spawn::own_permitted_caps(),
        (None, _) => 0,
    };
    let no_new_privs =
        !filters.is_empty() && !creds.no_new_privs && caps & (1 << CAP_SYS_ADMIN) == 0;
    Ok(Some(Prepared {
        mounts,
        join,
        filters,
        no_new_privs,
        warnings,
    }))
}

impl Prepared {
    /// The pidfd whose namespaces [`Prepared::enter`] joins (the spawner hands it to the
    /// child, whose fd table may be another one), or None.
    pub fn join_fd(&self) -> Option<libc::c_int> {
        self.join.as_ref().map(|(fd, _)| fd.as_raw_fd())
    }

    /// Namespaces and mounts: `join_fd` is [`Prepared::join_fd`]'s fd as the child holds it
    /// (-1: none). `Err` with errno set.
    ///
    /// # Safety
    /// Async-signal-safe: for the child between clone and exec, before the credentials
    /// change (mounts need CAP_SYS_ADMIN).
    pub unsafe fn enter(&self, join_fd: libc::c_int) -> Result<(), Failed> {
        if let Some((_, ns)) = &self.join {
            // setns(2) with a pidfd enters all of them at once (Linux 5.8).
            if libc::setns(join_fd, *ns) < 0 {
                return Err(Failed);
            }
            return Ok(());
        }
        self.mounts.apply()
    }

    /// no_new_privs where needed, then the filters. `Err` with errno set.
    ///
    /// # Safety
    /// Async-signal-safe: for the child, last before exec.
    pub unsafe fn seal(&self) -> Result<(), Failed> {
        if self.filters.is_empty() {
            return Ok(());
        }
        if self.no_new_privs && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
            return Err(Failed);
        }
        self.filters.install()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(text: &str) -> Unit {
        units::parse::parse_unit(Path::new("/t/u.unit"), text).expect("unit")
    }

    #[test]
    fn a_kernel_without_seccomp_is_a_warning_never_a_silent_no_op() {
        let u = unit(
            "exec = [\"/bin/true\"]\n[sandbox]\nsystem_call_filter = [\"@system-service\"]\nprivate_tmp = true\n",
        );
        let creds = Creds::for_unit(&u).expect("creds");
        let mut cache = Cache::default();
        let run = Path::new("/nonexistent");
        let p = prepare_on(&mut cache, &u, &creds, run, Join::Fresh, false)
            .expect("prepared")
            .expect("a sandbox");
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert!(p.warnings[0].starts_with("[sandbox] not enforced"));
        assert!(p.warnings[0].contains("system_call_filter"));
        assert!(p.filters.is_empty(), "no filter to install");
        // The mounts are still made: only what the kernel lacks is left out.
        assert!(!p.mounts.is_empty());
        let p = prepare_on(&mut cache, &u, &creds, run, Join::Fresh, true)
            .expect("prepared")
            .expect("a sandbox");
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert!(!p.filters.is_empty());
    }
}

//! `[sandbox]` on the kernel's side: everything prepared in the parent ([`prepare`]), then
//! two calls in the child: [`Prepared::enter`] (namespaces and mounts, before the
//! credentials change) and [`Prepared::seal`] (no_new_privs where needed and the seccomp
//! filters, last before exec).

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

/// What the child carries out, prepared before clone.
pub struct Prepared {
    mounts: mounts::MountPlan,
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
}

/// The seccomp programs of each unit, built once per definition.
#[derive(Default)]
pub struct Cache {
    filters: HashMap<String, (Sandbox, Arc<seccomp::Filters>)>,
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

/// The sandbox of `unit`, or None when it asks for none.
pub fn prepare(
    cache: &mut Cache,
    unit: &Unit,
    creds: &Creds,
    run_dir: &Path,
) -> Result<Option<Prepared>, SandboxError> {
    let Some(sb) = unit.sandbox.as_deref().filter(|s| s.any()) else {
        return Ok(None);
    };
    let mut warnings = Vec::new();
    let filters = if !sb.wants_seccomp() {
        Arc::new(seccomp::build(&Sandbox::default())?)
    } else if !seccomp::available() {
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
    let mounts = mounts::plan(sb, run_dir)?;
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
        filters,
        no_new_privs,
        warnings,
    }))
}

impl Prepared {
    /// Namespaces and mounts. `Err` with errno set.
    ///
    /// # Safety
    /// Async-signal-safe: for the child between clone and exec, before the credentials
    /// change (mounts need CAP_SYS_ADMIN).
    pub unsafe fn enter(&self) -> Result<(), Failed> {
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

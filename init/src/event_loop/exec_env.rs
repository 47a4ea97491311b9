//! A unit's `exec_env` at each start (environment files, managed directories, credentials,
//! working directory forms, IO weight, the child's [`Extras`]) and what is undone at its
//! stop (the runtime directories, the credentials).

use super::*;

use crate::kernel::credentials::{self, Loaded};
use crate::kernel::exec_setup::Extras;
use crate::kernel::unit_dirs;
use units::exec_env::{DirKind, IfMissing, WorkDir, MAX_ENV_FILE_BYTES};

/// What a unit's start made that its stop undoes.
#[derive(Debug, Default)]
pub(super) struct ExecRt {
    /// The runtime directories made for the running unit (removed at its stop).
    runtime_dirs: Vec<PathBuf>,
    credentials: Option<Loaded>,
}

/// What [`Engine::prepare_exec_env`] gives the spawn.
pub(super) struct Prepared {
    /// Variables set before `environment`'s (environment files) and after (the directories').
    pub files_env: Vec<(String, String)>,
    pub dirs_env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub extras: Extras,
    pub warnings: Vec<String>,
}

/// `io_weight` in the unit's cgroup, or why it cannot be.
pub(super) fn apply_io_weight(cg: Option<&UnitCgroup>, def: &Unit) -> Option<String> {
    let w = def.exec_env.io_weight?;
    let Some(dir) = cg
        .and_then(|c| c.dir("io"))
        .filter(|d| d.join("io.weight").exists())
    else {
        return Some(format!(
            "io_weight = {w} not applied: the unit's cgroup has no io controller (cgroup v2 with io enabled is needed)"
        ));
    };
    match std::fs::write(dir.join("io.weight"), format!("default {w}\n")) {
        Ok(()) => None,
        Err(e) => Some(format!("io_weight = {w} not applied: {e}")),
    }
}

impl Engine {
    /// The base of managed directories of `kind`: /run, /var/lib, /var/cache, /var/log as
    /// root; below colony's own directories otherwise (a user's colony cannot write those).
    fn dir_base(&self, kind: DirKind) -> PathBuf {
        if nix::unistd::geteuid().is_root() {
            return PathBuf::from(kind.system_base());
        }
        match kind {
            DirKind::Runtime => self.opts.run_dir.join("runtime"),
            DirKind::State => self.opts.state_dir.join("lib"),
            DirKind::Cache => self.opts.state_dir.join("cache"),
            DirKind::Logs => self.opts.log_dir.join("units"),
        }
    }

    /// Read the environment files, make the directories and load the credentials for this
    /// start of `name`.
    /// `hook`: for a hook command, which shares the credentials already loaded for the unit
    /// (the program may be reading them) instead of loading them afresh.
    pub(super) fn prepare_exec_env(
        &mut self,
        name: &str,
        def: &Unit,
        hook: bool,
    ) -> Result<Prepared, String> {
        let e = &def.exec_env;
        let uid = def.identity.user.as_ref().map(|u| u.uid);
        let gid = def.identity.gid;
        let mut warnings = Vec::new();

        let mut files_env = Vec::new();
        for f in &e.environment_files {
            match unit_dirs::read_bounded(&f.path, MAX_ENV_FILE_BYTES)? {
                Some(bytes) => {
                    let (vars, bad) =
                        units::exec_env::parse_env_file(&String::from_utf8_lossy(&bytes));
                    if bad > 0 {
                        warnings.push(format!(
                            "environment file {}: {bad} lines skipped (not KEY=VALUE)",
                            f.path.display()
                        ));
                    }
                    files_env.extend(vars);
                }
                None if f.missing == IfMissing::Ignore => {}
                None => {
                    return Err(format!(
                        "environment file {} does not exist (write \"-{}\" if it may be missing)",
                        f.path.display(),
                        f.path.display()
                    ))
                }
            }
        }

        let mut dirs_env = Vec::new();
        let mut made_runtime = Vec::new();
        for kind in DirKind::ALL {
            let base = self.dir_base(kind);
            let mut paths = Vec::new();
            for d in e.dirs(kind) {
                let p = unit_dirs::ensure(&base, &d.name, d.mode, uid, gid)
                    .map_err(|err| format!("{}: {err}", kind.key()))?;
                paths.push(p.to_string_lossy().into_owned());
                // Kept at stop with `runtime_directory_preserve`: not recorded for removal.
                if kind == DirKind::Runtime && !e.runtime_preserve {
                    made_runtime.push(p);
                }
            }
            if !paths.is_empty() {
                dirs_env.push((kind.env_var().to_string(), paths.join(":")));
            }
        }

        let rt = self.units.entry(name.to_string()).or_default();
        for p in made_runtime {
            if !rt.exec.runtime_dirs.contains(&p) {
                rt.exec.runtime_dirs.push(p);
            }
        }
        let shared = match &rt.exec.credentials {
            Some(c) if hook && !e.credentials.is_empty() => Some(c.dir.clone()),
            _ => None,
        };
        if let Some(dir) = shared {
            dirs_env.push((
                "CREDENTIALS_DIRECTORY".into(),
                dir.to_string_lossy().into_owned(),
            ));
        } else {
            self.load_credentials(name, def, uid, gid, &mut dirs_env, &mut warnings)?;
        }

        let cwd = match e.work_dir {
            WorkDir::AsWritten => def.directory.clone(),
            WorkDir::Home => match unit_dirs::home_of(uid) {
                Some(h) => Some(h),
                None if e.work_dir_missing == IfMissing::Ignore => None,
                None => {
                    return Err("directory = \"~\": the unit's user has no home directory".into())
                }
            },
        };
        Ok(Prepared {
            files_env,
            dirs_env,
            cwd,
            extras: Extras::for_unit(e),
            warnings,
        })
    }

    /// `load_credential` afresh (the files may have changed since the last start), dropping
    /// what the last start loaded.
    fn load_credentials(
        &mut self,
        name: &str,
        def: &Unit,
        uid: Option<u32>,
        gid: Option<u32>,
        dirs_env: &mut Vec<(String, String)>,
        warnings: &mut Vec<String>,
    ) -> Result<(), String> {
        let rt = self.units.entry(name.to_string()).or_default();
        if let Some(old) = rt.exec.credentials.take() {
            if let Err(err) = old.remove() {
                warn!(unit = %name, error = %err, "old credentials not removed");
            }
        }
        let creds = &def.exec_env.credentials;
        if creds.is_empty() {
            return Ok(());
        }
        let base = self.opts.run_dir.join("credentials");
        let loaded = credentials::load(&base, name, creds, &self.opts.credstores, uid, gid)?;
        if let Some(w) = loaded.warning() {
            warnings.push(w);
        }
        dirs_env.push((
            "CREDENTIALS_DIRECTORY".into(),
            loaded.dir.to_string_lossy().into_owned(),
        ));
        let rt = self.units.entry(name.to_string()).or_default();
        rt.exec.credentials = Some(loaded);
        Ok(())
    }

    /// The handover's share of a unit's `exec_env` and sockets.
    pub(super) fn exec_handles(&self, rt: &UnitRt) -> crate::handover::ExecHandles {
        crate::handover::ExecHandles {
            listen: rt
                .sockets
                .open
                .as_ref()
                .map(|l| l.raw())
                .unwrap_or_default(),
            runtime_dirs: rt.exec.runtime_dirs.clone(),
            credentials: rt
                .exec
                .credentials
                .as_ref()
                .map(|c| (c.dir.clone(), c.backing != credentials::Backing::Plain)),
        }
    }

    /// Take over what the last image kept of a unit's `exec_env` and sockets.
    pub(super) fn adopt_exec(
        &mut self,
        rt: &mut UnitRt,
        h: crate::handover::ExecHandles,
        def: Option<&Unit>,
    ) {
        rt.exec.runtime_dirs = h.runtime_dirs;
        rt.exec.credentials = h.credentials.map(|(dir, mounted)| Loaded {
            dir,
            backing: if mounted {
                credentials::Backing::Ramfs
            } else {
                credentials::Backing::Plain
            },
        });
        if h.listen.is_empty() {
            return;
        }
        match def.and_then(|d| d.socket.as_deref()) {
            Some(spec) if spec.listen.len() == h.listen.len() => {
                rt.sockets.open = Some(crate::kernel::sockets::adopt(spec, &h.listen));
            }
            _ => {
                for fd in h.listen {
                    // SAFETY: listed in the state as this unit's socket; nothing else owns it.
                    drop(unsafe { crate::handover::adopt(fd) });
                }
            }
        }
    }

    /// At a unit's stop: its runtime directories and credentials go.
    pub(super) fn sync_exec_env(&mut self, name: &str) {
        let resting = match self.core.get(name) {
            Some(r) => matches!(r.state, State::Stopped | State::Failed | State::Invalid),
            None => true,
        };
        if !resting {
            return;
        }
        let Some(rt) = self.units.get_mut(name) else {
            return;
        };
        for p in std::mem::take(&mut rt.exec.runtime_dirs) {
            if let Err(e) = unit_dirs::remove_tree(&p) {
                warn!(unit = %name, path = %p.display(), error = %e, "runtime directory not removed");
            }
        }
        if let Some(c) = rt.exec.credentials.take() {
            if let Err(e) = c.remove() {
                warn!(unit = %name, error = %e, "credentials not removed");
            }
        }
    }
}

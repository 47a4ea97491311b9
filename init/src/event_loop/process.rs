//! Starting and ending a unit's processes: the spawn request built from its definition, the
//! exec report, the unit's cgroup, log pipe and heartbeat file, the whole-unit kill.

use super::*;

use std::os::fd::AsRawFd;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode as FileMode;

use crate::kernel::safe_path::{self, Allow, Dir as SafeDir, PathError};

impl Engine {
    // ---- processes -------------------------------------------------------------------

    /// Start the unit's process. `None`: started, the exec report comes through the loop
    /// (so a thousand starts overlap instead of each waiting for its exec).
    pub(super) fn spawn(&mut self, name: &str) -> Option<Input> {
        match self.try_spawn(name) {
            Ok(true) => None,
            // The report could not be waited on in the loop: read it now (serially).
            Ok(false) => self.confirm_exec(name),
            Err(error) => Some(self.spawn_failed(name, error)),
        }
    }

    pub(super) fn spawn_failed(&mut self, name: &str, error: String) -> Input {
        warn!(unit = %name, %error, "start failed");
        if let Some(log) = self.units.get_mut(name).and_then(|rt| rt.log.as_mut()) {
            let _ = log.write_note(&format!("colony: start failed: {error}"));
        }
        Input::SpawnFailed {
            unit: name.to_string(),
            error,
        }
    }

    /// Read a started child's exec report: it runs (Spawned) or it failed (SpawnFailed, the
    /// child already reaped).
    pub(super) fn confirm_exec(&mut self, name: &str) -> Option<Input> {
        let rt = self.units.get_mut(name)?;
        let (child, report, token) = rt.pending.take()?;
        let _ = self.epoll.delete(report.as_fd());
        self.exec_tokens.remove(&token);
        let pid = child.pid;
        match spawn::finish(child, &report) {
            Ok(child) => {
                rt.main = Some(Proc { pidfd: child.pidfd });
                if let Some(log) = rt.log.as_mut() {
                    let _ = log.write_note(&format!("colony: started pid {pid}"));
                }
                info!(unit = %name, pid, "started");
                Some(Input::Spawned {
                    unit: name.to_string(),
                    pid,
                })
            }
            Err(e) => {
                self.pid_to_unit.remove(&pid);
                self.members.remove(name);
                rt.pgid = None;
                Some(self.spawn_failed(name, e.to_string()))
            }
        }
    }

    /// Ok(true): the exec report is awaited in the loop; Ok(false): read it at once.
    pub(super) fn try_spawn(&mut self, name: &str) -> Result<bool, String> {
        let def: Arc<Unit> = self
            .core
            .get(name)
            .and_then(|r| r.def.clone())
            .ok_or_else(|| "no definition".to_string())?;
        let (child, report) = self.launch(name, &def, None)?;
        let rt = self.units.entry(name.to_string()).or_default();
        let pid = child.pid;
        self.next_token += 1;
        let token = T_EXEC | (self.next_token & 0xffff_ffff);
        let in_loop = match self
            .epoll
            .add(report.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))
        {
            Ok(()) => true,
            Err(e) => {
                warn!(unit = %name, error = %e, "epoll: reading the exec report in place");
                false
            }
        };
        // Known as the unit's before its exec is confirmed: a READY=1 sent at once by the
        // program may be read in the same loop turn as the exec report, or before it.
        self.members.set(
            name,
            rt.cgroup.as_ref().and_then(|c| c.dir("")),
            rt.cgroup.as_ref().map(|c| c.path()),
            pid,
        );
        rt.pgid = Some(pid);
        rt.awaiting_empty = false;
        rt.status_text = None;
        rt.pending = Some((child, report, token));
        self.exec_tokens.insert(token, name.to_string());
        self.pid_to_unit.insert(pid, name.to_string());
        Ok(in_loop)
    }

    /// Fork the unit's main process (`hook: None`) or a hook command (`Some(argv)`) with
    /// everything of the unit prepared: log, heartbeat, environment, identity, sandbox and
    /// cgroup (a hook joins the unit's cgroup as it is, made if there is none yet).
    pub(super) fn launch(
        &mut self,
        name: &str,
        def: &Arc<Unit>,
        hook: Option<Vec<String>>,
    ) -> Result<(spawn::Spawned, OwnedFd), String> {
        let is_hook = hook.is_some();
        self.ensure_log(name, def)?;
        let heartbeat = self.ensure_heartbeat(name, def)?;
        let mut prep = self.prepare_exec_env(name, def, is_hook)?;
        // Listening sockets are the main process's (as systemd passes them to ExecStart= only).
        let listen = if is_hook {
            None
        } else {
            self.listen_fds(name, def)?
        };
        // [tty]: the main process's too; opened (hung up, reset) afresh at each start and
        // held until the spawn returns.
        let tty = match &def.tty {
            Some(t) if !is_hook => Some((crate::kernel::tty::open(t)?, t)),
            _ => None,
        };
        if let Some((fd, t)) = &tty {
            prep.extras.tty = Some(crate::kernel::exec_setup::TtyChild {
                fd: std::os::fd::AsRawFd::as_raw_fd(fd),
                output: t.output == units::tty::Output::Tty,
                force: t.force,
            });
        }

        // Everything the child needs is prepared here, before the fork; spawn resolves a
        // bare exec[0] in the unit's PATH.
        let cstr =
            |s: &[u8]| CString::new(s).map_err(|_| "NUL byte in argv or environment".to_string());
        let argv = hook
            .as_ref()
            .unwrap_or(&def.exec)
            .iter()
            .map(|a| cstr(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut env: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "NOTIFY_SOCKET"
                        | "LISTEN_FDS"
                        | "LISTEN_PID"
                        | "LISTEN_FDNAMES"
                        | "WATCHDOG_USEC"
                        | "WATCHDOG_PID"
                )
            })
            .collect();
        env.insert("PATH".into(), self.path_env.clone());
        env.insert("COLONY_UNIT".into(), name.to_string());
        env.insert("COLONY_CONFIG".into(), def.extras_json.clone());
        env.insert(
            "COLONY_RUN_DIR".into(),
            self.opts.run_dir.to_string_lossy().into_owned(),
        );
        env.insert(
            "COLONY_UNITS_DIR".into(),
            self.opts.units_dir.to_string_lossy().into_owned(),
        );
        if let Some(hb) = &heartbeat {
            env.insert("COLONY_HEARTBEAT".into(), hb.to_string_lossy().into_owned());
        }
        if def.ready.kind == units::model::ReadyType::Notify {
            let sock = self
                .notify
                .as_ref()
                .ok_or("no notify socket (see colony-init's log)")?;
            env.insert(
                "NOTIFY_SOCKET".into(),
                sock.path().to_string_lossy().into_owned(),
            );
            if let Some(w) = def.ready.watchdog {
                env.insert("WATCHDOG_USEC".into(), w.as_micros().to_string());
            }
        }
        env.extend(prep.files_env.iter().cloned());
        for (k, v) in &def.environment {
            env.insert(k.clone(), v.clone());
        }
        env.extend(prep.dirs_env.iter().cloned());
        if let Some((fds, names)) = &listen {
            env.insert("LISTEN_FDS".into(), fds.len().to_string());
            env.insert("LISTEN_FDNAMES".into(), names.clone());
            prep.extras.listen = fds.clone();
        }
        // Never the unit's own to set: it names the unit's processes that escape its
        // process group, to find them at its stop.
        env.insert("COLONY_UNIT".into(), name.to_string());
        let envp = env
            .iter()
            .map(|(k, v)| cstr(format!("{k}={v}").as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let cwd = match &prep.cwd {
            Some(d) => Some(cstr(d.as_os_str().as_bytes())?),
            None => None,
        };
        let creds = creds::Creds::for_unit(def).map_err(|e| e.to_string())?;
        // [sandbox]: the mount plan against today's mount table, the unit's seccomp programs.
        // A hook run while the program runs shares its namespaces (its /tmp, its network).
        let beside = if is_hook {
            sandboxed::Beside::Main
        } else {
            sandboxed::Beside::Nothing
        };
        let sandbox = self.unit_sandbox(name, def, &creds, beside)?;

        // The unit's cgroup: kept after a clean exit with the same limits, else made afresh.
        let rt = self.units.entry(name.to_string()).or_default();
        let reused = match rt.cgroup.as_mut() {
            // A hook runs beside the main process or its other hooks: the cgroup as it is.
            Some(_) if is_hook => true,
            Some(cg) if self.cgroups.is_some() => cg.reusable(&def.resources),
            _ => false,
        };
        if reused {
            // A restart after a clean exit: same directories, limits, files and watch.
            if let Some(cg) = &rt.cgroup {
                rt.oom_seen = cg.oom_kills();
            }
        } else if let Some(cgs) = &self.cgroups {
            // The last start's cgroup (and its held stat files) goes before its directory is
            // made afresh.
            rt.cgroup = None;
            match cgs.unit(name, &def.resources) {
                Ok((cg, warnings)) => {
                    for w in &warnings {
                        warn!(unit = %name, "{w}");
                    }
                    rt.warnings = warnings;
                    rt.oom_seen = cg.oom_kills();
                    // The v2 directory may be new (see Cgroups::unit): watch it afresh.
                    if let Some(wd) = rt.cgroup_watch.take() {
                        self.watches.unwatch_cgroup_events(wd);
                    }
                    {
                        if let Some(ev) = cg.events_file() {
                            match self.watches.watch_cgroup_events(&ev, name) {
                                Ok(wd) => {
                                    rt.cgroup_watch = Some(wd);
                                }
                                Err(e) => {
                                    warn!(unit = %name, error = %e, "cannot watch cgroup.events")
                                }
                            }
                        }
                    }
                    rt.cgroup = Some(cg);
                }
                // Out of fds: the start fails (and is retried) rather than run unconfined.
                Err(crate::kernel::cgroup::CgroupError::Io { path, source })
                    if source.raw_os_error() == Some(libc::EMFILE) =>
                {
                    return Err(format!("{}: {}", path.display(), spawn::OsError(&source)));
                }
                Err(e) => {
                    let w = format!("no cgroup ({e}): limits not enforced, process-group cleanup");
                    warn!(unit = %name, "{w}");
                    rt.warnings = vec![w];
                    rt.cgroup = None;
                }
            }
        } else if def.resources.any() {
            let w = format!(
                "{} not enforced: no usable cgroups here",
                limit_keys(&def.resources).join(", ")
            );
            // Once per change, not at every restart of a crash loop.
            if rt.warnings.first() != Some(&w) {
                warn!(unit = %name, "{w}");
            }
            rt.warnings = vec![w];
        } else {
            rt.warnings.clear();
        }
        rt.warnings.retain(|w| !w.starts_with("[sandbox]"));
        for w in sandbox.iter().flat_map(|s| &s.warnings) {
            if !rt.warnings.contains(w) {
                warn!(unit = %name, "{w}");
            }
            rt.warnings.push(w.clone());
        }
        let io = exec_env::apply_io_weight(rt.cgroup.as_ref(), def);
        for w in prep.warnings.iter().chain(&io) {
            if !rt.warnings.contains(w) {
                warn!(unit = %name, "{w}");
                rt.warnings.push(w.clone());
            }
        }
        let out = rt.log_pipe.as_ref().map(|(_, w, _)| w.as_fd());
        let fds = match &rt.cgroup {
            Some(cg) => match cg.open_placement() {
                Ok(fds) => Some(fds),
                Err(e) => {
                    // Made afresh at the next start.
                    rt.cgroup = None;
                    return Err(format!("opening the unit's cgroup: {e}"));
                }
            },
            None => None,
        };
        let placement = fds
            .as_ref()
            .map(|f| f.placement())
            .unwrap_or(spawn::Placement::None);
        let req = spawn::SpawnRequest {
            argv: &argv,
            envp: &envp,
            cwd: cwd.as_deref(),
            creds: &creds,
            stdout: out,
            stderr: out,
            placement,
            new_process_group: true,
            sandbox: sandbox.as_ref(),
            extras: Some(&prep.extras),
        };
        // A watchdog unit learns its own pid as WATCHDOG_PID (sd_watchdog_enabled checks it).
        let pid_var = (!is_hook
            && def.ready.kind == units::model::ReadyType::Notify
            && def.ready.watchdog.is_some())
        .then_some(c"WATCHDOG_PID");
        let mut pid_vars: Vec<&CStr> = pid_var.into_iter().collect();
        if listen.is_some() {
            pid_vars.push(c"LISTEN_PID");
        }
        let spawned = spawn::spawn_nowait(&req, &pid_vars).map_err(|e| e.to_string());
        drop(fds);
        drop(tty);
        spawned
    }

    pub(super) fn ensure_log(&mut self, name: &str, def: &Unit) -> Result<(), String> {
        let path = def
            .log
            .file
            .clone()
            .unwrap_or_else(|| self.opts.log_dir.join(format!("{name}.log")));
        let rt = self.units.entry(name.to_string()).or_default();
        if rt.log.is_none() || rt.log_path.as_ref() != Some(&path) {
            match LogFile::open(&path, def.log.max_size, def.log.keep, self.log_group) {
                Ok(l) => {
                    rt.log = Some(l);
                    rt.log_path = Some(path);
                }
                // A link or a foreign directory on the way (the unit's user may have put
                // it there): no start, and `status` says why.
                Err(e) if e.is_refusal() => {
                    return Err(format!("log file {}: {e}", path.display()));
                }
                // Out of fds: the start fails (and is retried) rather than lose the output.
                Err(e) if e.errno() == Some(nix::errno::Errno::EMFILE) => {
                    let e = std::io::Error::from(e);
                    return Err(format!(
                        "opening the log file {}: {}",
                        path.display(),
                        spawn::OsError(&e)
                    ));
                }
                Err(e) => {
                    warn!(unit = %name, path = %path.display(), error = %e, "cannot open the log file; output is dropped")
                }
            }
        } else if let Some(log) = rt.log.as_mut() {
            // The same file, kept open across restarts: the unit file may have new limits.
            log.set_limits(def.log.max_size, def.log.keep);
        }
        if rt.log_pipe.is_none() {
            let (r, w) = crate::logs::log_pipe()
                .map_err(|e| format!("creating the output pipe: {}", spawn::OsError(&e)))?;
            self.next_token += 1;
            let token = T_LOG | (self.next_token & 0xffff_ffff);
            self.epoll
                .add(r.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))
                .map_err(|e| format!("epoll: {e}"))?;
            self.log_tokens.insert(token, name.to_string());
            rt.log_pipe = Some((r, w, token));
        }
        Ok(())
    }

    /// Create the heartbeat file (owned by the unit's user) and watch its directory. The
    /// unit's user may write that directory: nothing is done through a link (see
    /// [`crate::kernel::safe_path`]), and the file is chowned by its fd.
    pub(super) fn ensure_heartbeat(
        &mut self,
        name: &str,
        def: &Unit,
    ) -> Result<Option<PathBuf>, String> {
        let Some(hb) = &def.heartbeat else {
            // It had one before this definition: that watch is not needed any more.
            let old = self.units.get_mut(name).and_then(|rt| {
                rt.heartbeat = None;
                rt.heartbeat_watch.take()
            });
            if let Some(hw) = old {
                self.watches.unwatch_heartbeat(&hw, name);
            }
            return Ok(None);
        };
        let file = hb
            .file
            .clone()
            .unwrap_or_else(|| self.opts.run_dir.join("heartbeat").join(name));
        let refused = |e: PathError| format!("heartbeat file {}: {e}", file.display());
        let (dir_path, fname) = safe_path::split(&file).map_err(refused)?;
        let dir =
            SafeDir::open(dir_path, Some(FileMode::from_bits_truncate(0o755))).map_err(refused)?;
        let (beat, _) = dir
            .open_file(
                fname,
                OFlag::O_RDONLY,
                Some(FileMode::from_bits_truncate(0o644)),
                Allow::Regular,
            )
            .map_err(refused)?;
        if let Some(u) = &def.identity.user {
            let owner = Some(nix::unistd::Uid::from_raw(u.uid));
            let group = def.identity.gid.map(nix::unistd::Gid::from_raw);
            if let Err(e) = nix::unistd::fchown(&beat, owner, group) {
                warn!(unit = %name, file = %file.display(), error = %e, "cannot give the heartbeat file to the unit's user");
            }
        }
        drop(beat);
        // The directory just checked, through its fd; by path (no link followed at its end)
        // where there is no /proc.
        let by_fd = format!("/proc/self/fd/{}", dir.fd().as_raw_fd());
        let hw = self
            .watches
            .watch_heartbeat(&by_fd, dir.path(), fname.as_ref(), name)
            .map_err(|e| format!("watching {}: {e}", dir.path().display()))?;
        let Some(rt) = self.units.get_mut(name) else {
            // Nothing holds it.
            self.watches.unwatch_heartbeat(&hw, name);
            return Ok(Some(file));
        };
        rt.heartbeat = Some(file.clone());
        // A changed path: the old directory's watch goes if nothing else needs it.
        if let Some(old) = rt.heartbeat_watch.replace(hw.clone()).filter(|o| *o != hw) {
            self.watches.unwatch_heartbeat(&old, name);
        }
        Ok(Some(file))
    }

    /// SIGKILL everything of the unit; the inputs that answer at once (`Strays`, `Empty`).
    pub(super) fn kill_all(&mut self, name: &str) -> Vec<Input> {
        let Some(rt) = self.units.get_mut(name) else {
            return Vec::new();
        };
        if let Some(cg) = &rt.cgroup {
            if let Err(e) = cg.kill() {
                warn!(unit = %name, error = %e, "killing the cgroup failed");
            }
            if let Some(p) = &rt.main {
                let _ = spawn::send_signal(p.pidfd.as_fd(), libc::SIGKILL);
            }
            if cg.is_empty() {
                rt.awaiting_empty = false;
                return vec![Input::Empty {
                    unit: name.to_string(),
                }];
            }
            rt.awaiting_empty = true;
            return Vec::new();
        }
        if let Some(p) = &rt.main {
            let _ = spawn::send_signal(p.pidfd.as_fd(), libc::SIGKILL);
        }
        if let Some(pgid) = rt.pgid {
            // SAFETY: a plain kill of the process group we created for this unit.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        // What escaped the group is looked for at the end of this loop turn (after the
        // group's kill, so none of it can start a new stray meanwhile), with every other
        // unit stopped in the same turn; `Strays` and then `Empty` are sent from there.
        rt.awaiting_empty = true;
        self.hunts.insert(name.to_string());
        Vec::new()
    }

    /// The hunts asked for in this loop turn: one look at colony-init's descendants (see
    /// [`crate::kernel::strays`]) for all of them; what is found is SIGKILLed through its pidfd and
    /// watched for its exit. Then each unit hears of its strays, and of its empty process
    /// group if it is.
    pub(super) fn run_hunts(&mut self) {
        // Feeding the results can stop more units (each round kills what it finds).
        while !self.hunts.is_empty() {
            let names = std::mem::take(&mut self.hunts);
            // Whose process group is over before the look: what it left is re-parented to
            // colony-init by then and cannot move during the scan, so only a look that
            // began after the group's end can say that nothing is left.
            let ended: Vec<(String, bool)> = names
                .iter()
                .map(|n| {
                    let ended = self.units.get(n).is_some_and(|rt| {
                        rt.cgroup.is_none()
                            && rt.main.is_none()
                            && rt.pgid.is_none_or(|g| !reaper::group_alive(g))
                    });
                    (n.clone(), ended)
                })
                .collect();
            let settled: HashSet<i32> = self
                .units
                .iter()
                .filter(|(n, rt)| {
                    !names.contains(*n) && (rt.main.is_some() || rt.pending.is_some())
                })
                .filter_map(|(_, rt)| rt.pgid)
                .collect();
            let snap = crate::kernel::strays::Snapshot::take(std::process::id() as i32, &settled);
            for (name, ended) in ended {
                if !self.units.contains_key(&name) {
                    continue; // forgotten meanwhile
                }
                self.take_strays(&name, &snap);
                let input = self.strays_input(&name);
                self.feed(input);
                let empty = self.units.get_mut(&name).is_some_and(|rt| {
                    let empty = ended && rt.awaiting_empty;
                    if empty {
                        rt.awaiting_empty = false;
                    }
                    empty
                });
                if empty {
                    self.feed(Input::Empty { unit: name });
                }
            }
        }
    }

    /// SIGKILL the unit's strays in `snap` that are not held yet, and watch for their exit.
    fn take_strays(&mut self, name: &str, snap: &crate::kernel::strays::Snapshot) {
        let Some(rt) = self.units.get_mut(name) else {
            return;
        };
        let held: Vec<i32> = rt.strays.iter().map(|(s, _)| s.pid).collect();
        let owner = crate::kernel::strays::Owner {
            name,
            pgid: rt.pgid,
        };
        for stray in snap.strays(owner, &held) {
            if let Err(e) = spawn::send_signal(stray.pidfd.as_fd(), libc::SIGKILL) {
                debug!(unit = %name, pid = stray.pid, error = %e, "stray not signalled");
                continue; // ESRCH: it has just exited
            }
            self.next_token += 1;
            let token = T_STRAY | (self.next_token & 0xffff_ffff);
            if let Err(e) = self.epoll.add(
                stray.pidfd.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, token),
            ) {
                // Not counted: the unit could never be seen stopped. It was SIGKILLed.
                warn!(unit = %name, pid = stray.pid, error = %e, "epoll: a killed stray is not watched");
                continue;
            }
            info!(unit = %name, pid = stray.pid, "killed a process that escaped the unit's process group");
            self.stray_tokens.insert(token, name.to_string());
            rt.strays.push((stray, token));
        }
    }

    fn strays_input(&self, name: &str) -> Input {
        Input::Strays {
            unit: name.to_string(),
            pids: self
                .units
                .get(name)
                .map(|rt| rt.strays.iter().map(|(s, _)| s.pid).collect())
                .unwrap_or_default(),
        }
    }

    /// A stray's pidfd is readable: it exited (it is reaped as any orphan). When the last
    /// one is gone, look again (at the end of the turn) for what it may have started
    /// before it was killed; the unit hears of it from there.
    pub(super) fn on_stray_exit(&mut self, token: u64) {
        let Some(name) = self.stray_tokens.remove(&token) else {
            return;
        };
        let Some(rt) = self.units.get_mut(&name) else {
            return;
        };
        if let Some(i) = rt.strays.iter().position(|(_, t)| *t == token) {
            let (stray, _) = rt.strays.swap_remove(i);
            let _ = self.epoll.delete(stray.pidfd.as_fd());
        }
        if rt.strays.is_empty() {
            self.hunts.insert(name);
        } else {
            let input = self.strays_input(&name);
            self.feed(input);
        }
    }

    /// Stop watching the unit's strays (it is forgotten).
    fn drop_strays(&mut self, rt: &mut UnitRt) {
        for (stray, token) in rt.strays.drain(..) {
            let _ = self.epoll.delete(stray.pidfd.as_fd());
            self.stray_tokens.remove(&token);
        }
    }

    pub(super) fn forget(&mut self, name: &str) {
        self.sync_exec_env(name);
        self.close_sockets(name);
        self.members.remove(name);
        if let Some(p) = self.probes.as_mut() {
            p.forget(name);
        }
        if let Some(mut rt) = self.units.remove(name) {
            self.drop_strays(&mut rt);
            self.hunts.remove(name);
            if let Some(wd) = rt.cgroup_watch.take() {
                self.watches.unwatch_cgroup_events(wd);
            }
            if let Some(hw) = rt.heartbeat_watch.take() {
                self.watches.unwatch_heartbeat(&hw, name);
            }
            if let Some(cg) = rt.cgroup.take() {
                if let Err(e) = cg.remove() {
                    debug!(unit = %name, error = %e, "cgroup not removed");
                }
            }
            if let Some((r, _, token)) = rt.log_pipe.take() {
                let _ = self.epoll.delete(r.as_fd());
                self.log_tokens.remove(&token);
            }
            if let Some((_, report, token)) = rt.pending.take() {
                let _ = self.epoll.delete(report.as_fd());
                self.exec_tokens.remove(&token);
            }
        }
        self.deadlines
            .retain(|k| !matches!(k, Key::Unit(u, _) if u == name));
    }
}

//! Starting and ending a unit's processes: the spawn request built from its definition, the
//! exec report, the unit's cgroup, log pipe and heartbeat file, the whole-unit kill.

use super::*;

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
        self.ensure_log(name, &def)?;
        let heartbeat = self.ensure_heartbeat(name, &def)?;

        // Everything the child needs is prepared here, before the fork; spawn resolves a
        // bare exec[0] in the unit's PATH.
        let cstr =
            |s: &[u8]| CString::new(s).map_err(|_| "NUL byte in argv or environment".to_string());
        let argv = def
            .exec
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
        for (k, v) in &def.environment {
            env.insert(k.clone(), v.clone());
        }
        let envp = env
            .iter()
            .map(|(k, v)| cstr(format!("{k}={v}").as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let cwd = match &def.directory {
            Some(d) => Some(cstr(d.as_os_str().as_bytes())?),
            None => None,
        };
        let creds = creds::Creds::for_unit(&def).map_err(|e| e.to_string())?;

        // The unit's cgroup: kept after a clean exit with the same limits, else made afresh.
        let rt = self.units.entry(name.to_string()).or_default();
        let reused = match rt.cgroup.as_mut() {
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
                        let _ = self.inotify.rm_watch(wd);
                        self.watches.remove(&wd);
                    }
                    {
                        if let Some(ev) = cg.events_file() {
                            match self.inotify.add_watch(&ev, AddWatchFlags::IN_MODIFY) {
                                Ok(wd) => {
                                    self.watches
                                        .insert(wd, Watch::CgroupEvents(name.to_string()));
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
        };
        // A watchdog unit learns its own pid as WATCHDOG_PID (sd_watchdog_enabled checks it).
        let pid_var = (def.ready.kind == units::model::ReadyType::Notify
            && def.ready.watchdog.is_some())
        .then_some(c"WATCHDOG_PID");
        let (child, report) = spawn::spawn_nowait(&req, pid_var).map_err(|e| e.to_string())?;
        drop(fds);
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

    pub(super) fn ensure_log(&mut self, name: &str, def: &Unit) -> Result<(), String> {
        let path = def
            .log
            .file
            .clone()
            .unwrap_or_else(|| self.opts.log_dir.join(format!("{name}.log")));
        let rt = self.units.entry(name.to_string()).or_default();
        if rt.log.is_none() || rt.log_path.as_ref() != Some(&path) {
            match LogFile::open(&path, def.log.max_size, def.log.keep) {
                Ok(l) => {
                    rt.log = Some(l);
                    rt.log_path = Some(path);
                }
                Err(e) => {
                    warn!(unit = %name, path = %path.display(), error = %e, "cannot open the log file; output is dropped")
                }
            }
        }
        if rt.log_pipe.is_none() {
            let (r, w) =
                crate::logs::log_pipe().map_err(|e| format!("creating the output pipe: {e}"))?;
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

    /// Create the heartbeat file (owned by the unit's user) and watch its directory.
    pub(super) fn ensure_heartbeat(
        &mut self,
        name: &str,
        def: &Unit,
    ) -> Result<Option<PathBuf>, String> {
        let Some(hb) = &def.heartbeat else {
            return Ok(None);
        };
        let file = hb
            .file
            .clone()
            .unwrap_or_else(|| self.opts.run_dir.join("heartbeat").join(name));
        let dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("heartbeat directory {}: {e}", dir.display()))?;
        if !file.exists() {
            std::fs::write(&file, b"")
                .map_err(|e| format!("heartbeat file {}: {e}", file.display()))?;
        }
        if let Some(u) = &def.identity.user {
            let _ = nix::unistd::chown(
                &file,
                Some(nix::unistd::Uid::from_raw(u.uid)),
                def.identity.gid.map(nix::unistd::Gid::from_raw),
            );
        }
        // A beat is a `touch` (ATTRIB), a write (MODIFY) or an atomic replace (MOVED_TO).
        // Not CLOSE_WRITE or CREATE: a touch would then cost two wakeups instead of one.
        let mask = AddWatchFlags::IN_ATTRIB | AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_MOVED_TO;
        let wd = self
            .inotify
            .add_watch(&dir, mask)
            .map_err(|e| format!("watching {}: {e}", dir.display()))?;
        let fname = file
            .file_name()
            .map(|f| f.to_os_string())
            .unwrap_or_default();
        match self
            .watches
            .entry(wd)
            .or_insert_with(|| Watch::HeartbeatDir(HashMap::new()))
        {
            Watch::HeartbeatDir(m) => {
                m.insert(fname, name.to_string());
            }
            other => {
                // The same directory as the units dir or a cgroup: keep it simple, refuse.
                debug!(?other, "heartbeat directory shares a watch");
            }
        }
        if let Some(rt) = self.units.get_mut(name) {
            rt.heartbeat = Some(file.clone());
        }
        Ok(Some(file))
    }

    pub(super) fn kill_all(&mut self, name: &str) -> Option<Input> {
        let rt = self.units.get_mut(name)?;
        if let Some(cg) = &rt.cgroup {
            if let Err(e) = cg.kill() {
                warn!(unit = %name, error = %e, "killing the cgroup failed");
            }
            if let Some(p) = &rt.main {
                let _ = spawn::send_signal(p.pidfd.as_fd(), libc::SIGKILL);
            }
            if cg.is_empty() {
                rt.awaiting_empty = false;
                return Some(Input::Empty {
                    unit: name.to_string(),
                });
            }
        } else {
            if let Some(p) = &rt.main {
                let _ = spawn::send_signal(p.pidfd.as_fd(), libc::SIGKILL);
            }
            if let Some(pgid) = rt.pgid {
                // SAFETY: a plain kill of the process group we created for this unit.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
                if rt.main.is_none() && !reaper::group_alive(pgid) {
                    rt.awaiting_empty = false;
                    return Some(Input::Empty {
                        unit: name.to_string(),
                    });
                }
            } else if rt.main.is_none() {
                return Some(Input::Empty {
                    unit: name.to_string(),
                });
            }
        }
        rt.awaiting_empty = true;
        None
    }

    pub(super) fn forget(&mut self, name: &str) {
        self.members.remove(name);
        if let Some(p) = self.probes.as_mut() {
            p.forget(name);
        }
        if let Some(mut rt) = self.units.remove(name) {
            if let Some(wd) = rt.cgroup_watch.take() {
                let _ = self.inotify.rm_watch(wd);
                self.watches.remove(&wd);
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
        for w in self.watches.values_mut() {
            if let Watch::HeartbeatDir(m) = w {
                m.retain(|_, u| u != name);
            }
        }
        self.deadlines
            .retain(|k| !matches!(k, Key::Unit(u, _) if u == name));
    }
}

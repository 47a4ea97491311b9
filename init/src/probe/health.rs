//! Health checks: the schedule (`grace`, `period`, `timeout`, `max_bad`) and `exec` checks,
//! run like the unit's program and reaped from the loop's SIGCHLD handling.

use super::*;

impl Probes {
    /// The unit is up: start its `[health]` checks (first one after `grace`).
    pub fn start_health(&mut self, unit: &str, def: &Health) {
        self.stop_health(unit);
        self.last_text.remove(unit);
        let target = resolve_target(&def.check);
        if let Err(e) = &target {
            warn!(unit, error = %e, "health check target unusable: every check is bad");
        }
        self.health.insert(
            unit.to_string(),
            HealthProbe {
                def: def.clone(),
                target,
                bad: 0,
                checks: 0,
                text: None,
                running: None,
                started: None,
            },
        );
        self.deadlines.arm(
            (unit.to_string(), Slot::HealthNext),
            after(Instant::now(), def.grace),
        );
        self.rearm();
    }

    pub(super) fn stop_health(&mut self, unit: &str) {
        if let Some(mut h) = self.health.remove(unit) {
            if let Some(t) = h.text.take() {
                self.last_text.insert(unit.to_string(), t);
            }
            match h.running.take() {
                Some(Running::Conn(c)) => self.close(c),
                Some(Running::Child(pid)) => {
                    self.children.insert(pid, None);
                    kill_pid(pid);
                }
                None => {}
            }
        }
        self.deadlines.disarm(&(unit.to_string(), Slot::HealthNext));
        self.deadlines
            .disarm(&(unit.to_string(), Slot::HealthTimeout));
        self.rearm();
    }

    /// The loop saw child `pid` exit: if it is an exec check, reap it and judge.
    /// `None`: not ours.
    pub fn child_exited(&mut self, pid: i32) -> Option<Vec<Action>> {
        let owner = self.children.remove(&pid)?;
        let mut status = 0;
        // SAFETY: reaping our own child by its pid (it is known to have exited).
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        let mut out = Vec::new();
        if let Some(unit) = owner {
            let good = r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
            let still = matches!(
                self.health.get(&unit).and_then(|h| h.running.as_ref()),
                Some(Running::Child(p)) if *p == pid
            );
            if still {
                if let Some(h) = self.health.get_mut(&unit) {
                    h.running = None;
                }
                let why = if good {
                    String::new()
                } else if libc::WIFEXITED(status) {
                    format!("exit code {}", libc::WEXITSTATUS(status))
                } else {
                    "killed".to_string()
                };
                self.health_result(&unit, good, &why, &mut out);
            }
        }
        self.rearm();
        Some(out)
    }

    /// The loop started the exec check of `unit`.
    pub fn exec_started(&mut self, unit: &str, pid: i32) {
        match self.health.get_mut(unit) {
            Some(h) => {
                h.running = Some(Running::Child(pid));
                self.children.insert(pid, Some(unit.to_string()));
            }
            None => {
                self.children.insert(pid, None);
                kill_pid(pid);
            }
        }
    }

    /// The loop could not start the exec check: a bad check.
    pub fn exec_failed(&mut self, unit: &str, error: &str) -> Vec<Action> {
        let mut out = Vec::new();
        if self.health.contains_key(unit) {
            self.health_result(unit, false, error, &mut out);
        }
        self.rearm();
        out
    }

    // ---- timers ------------------------------------------------------------------------

    pub(super) fn health_begin(&mut self, unit: &str, out: &mut Vec<Action>) {
        let Some(h) = self.health.get_mut(unit) else {
            return;
        };
        let now = Instant::now();
        h.started = Some(now);
        h.checks += 1;
        let timeout = h.def.timeout;
        // The next one, counted from this start (a check never overlaps the next: see
        // health_result).
        self.deadlines.arm(
            (unit.to_string(), Slot::HealthNext),
            after(now, h.def.period),
        );
        if h.running.is_some() {
            // Still going (timeout >= period): let it finish; its result counts.
            return;
        }
        let target = h.target.clone();
        match target {
            Err(e) => self.health_result(unit, false, &e, out),
            Ok(Target::Exec(argv)) => {
                self.deadlines
                    .arm((unit.to_string(), Slot::HealthTimeout), after(now, timeout));
                out.push(Action::Exec {
                    unit: unit.to_string(),
                    argv,
                });
            }
            Ok(Target::Tcp(addr)) => self.health_connect(unit, addr, None, timeout, out),
            Ok(Target::Http { addr, request }) => {
                self.health_connect(unit, addr, Some(request), timeout, out)
            }
        }
    }

    pub(super) fn health_connect(
        &mut self,
        unit: &str,
        addr: SocketAddr,
        request: Option<Vec<u8>>,
        timeout: Duration,
        out: &mut Vec<Action>,
    ) {
        match self.connect(addr, request, unit, Role::Health) {
            Ok(c) => {
                if let Some(h) = self.health.get_mut(unit) {
                    h.running = Some(Running::Conn(c));
                }
                self.deadlines.arm(
                    (unit.to_string(), Slot::HealthTimeout),
                    after(Instant::now(), timeout),
                );
            }
            Err(e) => self.health_result(unit, false, &e.to_string(), out),
        }
    }

    pub(super) fn health_result(
        &mut self,
        unit: &str,
        good: bool,
        why: &str,
        out: &mut Vec<Action>,
    ) {
        self.deadlines
            .disarm(&(unit.to_string(), Slot::HealthTimeout));
        let Some(h) = self.health.get_mut(unit) else {
            return;
        };
        if good {
            if h.bad > 0 {
                info!(unit, "health check good again");
            }
            h.bad = 0;
            h.text = Some("good".into());
        } else {
            h.bad += 1;
            h.text = Some(format!("bad {}", h.bad));
            warn!(
                unit,
                bad = h.bad,
                max_bad = h.def.max_bad,
                why,
                "health check bad"
            );
            if h.bad >= h.def.max_bad {
                out.push(Action::Fault(unit.to_string()));
                // Checks resume once the restarted unit is up again.
                self.stop_health(unit);
            }
        }
    }

    // ---- sockets -----------------------------------------------------------------------
}

pub(super) fn kill_pid(pid: i32) {
    // SAFETY: the exec check is our own unreaped child: its pid cannot be reused yet.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Start an `exec` health check like the unit's program: same user, groups, capabilities,
/// directory, environment, cgroup and `[sandbox]`; output to /dev/null.
pub fn spawn_exec(
    def: &Unit,
    creds: &crate::kernel::creds::Creds,
    sandbox: Option<&crate::kernel::sandbox::Prepared>,
    argv: &[String],
    env: &[(String, String)],
    placement: spawn::Placement,
) -> Result<spawn::Spawned, String> {
    let cstr =
        |s: &[u8]| CString::new(s).map_err(|_| "NUL byte in argv or environment".to_string());
    let argv = argv
        .iter()
        .map(|a| cstr(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = env
        .iter()
        .map(|(k, v)| cstr(format!("{k}={v}").as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let cwd = match &def.directory {
        Some(d) => Some(cstr(d.as_os_str().as_bytes())?),
        None => None,
    };
    let devnull = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("/dev/null: {e}"))?;
    let req = spawn::SpawnRequest {
        argv: &argv,
        envp: &envp,
        cwd: cwd.as_deref(),
        creds,
        stdout: Some(devnull.as_fd()),
        stderr: Some(devnull.as_fd()),
        placement,
        new_process_group: true,
        sandbox,
        extras: None,
    };
    spawn::spawn(&req).map_err(|e| e.to_string())
}

//! The control FIFO: requests, waiting start/stop answers, status and timers replies.

use super::*;

impl Engine {
    // ---- the control FIFO ------------------------------------------------------------

    pub(super) fn on_control(&mut self) {
        for req in self.control.read_requests() {
            match req {
                Ok(req) => {
                    debug!(verb = %req.verb, args = ?req.args, "request");
                    self.request(req);
                }
                Err(e) => warn!(error = %e, "control request dropped"),
            }
        }
    }

    pub(super) fn request(&mut self, req: Request) {
        let reply = |code: i32, error: Option<String>, data: serde_json::Value| Reply {
            ok: code == 0,
            code,
            error,
            data,
        };
        let args: Vec<&str> = req.args.iter().map(String::as_str).collect();
        let answer = match req.verb.as_str() {
            "status" => {
                if let Some(name) = req.reply.as_deref() {
                    let bytes = self.status(&args);
                    self.send_bytes(name, bytes);
                }
                None
            }
            "timers" => Some(reply(0, None, self.timers())),
            "info" => Some(reply(0, None, self.info())),
            // Debug builds only: proves in a test that a panic while handling one event is
            // caught and the loop goes on (release builds have no such verb).
            "__panic" if cfg!(debug_assertions) => panic!("panic requested over the control FIFO"),
            "start" | "stop" | "restart" => self.start_stop(&req, &args),
            "restart-all" => {
                self.feed(Input::Command(Command::RestartAll));
                Some(reply(0, None, serde_json::Value::Null))
            }
            "reload" => {
                self.reload();
                Some(reply(0, None, serde_json::Value::Null))
            }
            "signal" => Some(self.signal(&args)),
            "poweroff" | "reboot" | "halt" => {
                if self.mode != Mode::Machine {
                    Some(reply(
                        proto::exit::FAILED,
                        Some(format!(
                            "colony-init is not PID 1 of a machine; refusing to {}",
                            req.verb
                        )),
                        serde_json::Value::Null,
                    ))
                } else {
                    let action = match req.verb.as_str() {
                        "reboot" => PowerAction::Reboot,
                        "halt" => PowerAction::Halt,
                        _ => PowerAction::PowerOff,
                    };
                    self.shutdown(Some(action), &req.verb);
                    Some(reply(0, None, serde_json::Value::Null))
                }
            }
            other => Some(reply(
                proto::exit::USAGE,
                Some(format!("unknown command {other:?}; see colonyctl --help")),
                serde_json::Value::Null,
            )),
        };
        if let (Some(answer), Some(name)) = (answer, req.reply.as_deref()) {
            self.send_reply(name, &answer);
        }
    }

    pub(super) fn resolve_all(&self, targets: &[&str]) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        for t in targets {
            for n in self.core.resolve(t)? {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        Ok(names)
    }

    pub(super) fn start_stop(&mut self, req: &Request, args: &[&str]) -> Option<Reply> {
        let no_block = args.contains(&"--no-block");
        let targets: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| *a != "--no-block")
            .collect();
        if targets.is_empty() {
            return Some(Reply {
                ok: false,
                code: proto::exit::USAGE,
                error: Some(format!("{} needs at least one unit or @tag", req.verb)),
                data: serde_json::Value::Null,
            });
        }
        let names = match self.resolve_all(&targets) {
            Ok(n) => n,
            Err(e) => {
                return Some(Reply {
                    ok: false,
                    code: proto::exit::NO_SUCH_UNIT,
                    error: Some(e),
                    data: serde_json::Value::Null,
                })
            }
        };
        let want = if req.verb == "stop" {
            Want::Down
        } else {
            Want::Up
        };
        for n in &names {
            let cmd = match req.verb.as_str() {
                "start" => Command::Start(n.clone()),
                "stop" => Command::Stop(n.clone()),
                _ => Command::Restart(n.clone()),
            };
            self.feed(Input::Command(cmd));
        }
        match (&req.reply, no_block) {
            (Some(reply), false) => {
                self.waiters.push(Waiter {
                    reply: reply.clone(),
                    names,
                    want,
                });
                None
            }
            _ => Some(Reply {
                ok: true,
                code: 0,
                error: None,
                data: serde_json::Value::Null,
            }),
        }
    }

    /// Answer every waiting start/stop whose units all reached (or can no longer reach)
    /// what was asked.
    pub(super) fn answer_waiters(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
        let mut done = Vec::new();
        self.waiters.retain(|w| {
            let mut errors = Vec::new();
            for n in &w.names {
                match self.core.wait_result(n, w.want) {
                    None => return true,
                    Some(Ok(())) => {}
                    Some(Err(e)) => errors.push(format!("{n}: {e}")),
                }
            }
            done.push((w.reply.clone(), errors));
            false
        });
        for (name, errors) in done {
            let r = if errors.is_empty() {
                Reply {
                    ok: true,
                    code: 0,
                    error: None,
                    data: serde_json::Value::Null,
                }
            } else {
                Reply {
                    ok: false,
                    code: proto::exit::FAILED,
                    error: Some(errors.join("; ")),
                    data: serde_json::Value::Null,
                }
            };
            self.send_reply(&name, &r);
        }
    }

    pub(super) fn signal(&mut self, args: &[&str]) -> Reply {
        let fail = |code, e: String| Reply {
            ok: false,
            code,
            error: Some(e),
            data: serde_json::Value::Null,
        };
        let Some((sig, targets)) = args.split_first() else {
            return fail(proto::exit::USAGE, "signal needs SIGNAL and a unit".into());
        };
        let sig = match units::values::parse_signal(sig) {
            Ok(s) => s,
            Err(e) => return fail(proto::exit::USAGE, e),
        };
        let names = match self.resolve_all(targets) {
            Ok(n) if !n.is_empty() => n,
            Ok(_) => return fail(proto::exit::USAGE, "signal needs a unit".into()),
            Err(e) => return fail(proto::exit::NO_SUCH_UNIT, e),
        };
        let mut not_running = Vec::new();
        for n in &names {
            match self.units.get(n).and_then(|rt| rt.main.as_ref()) {
                Some(p) => {
                    if let Err(e) = spawn::send_signal(p.pidfd.as_fd(), sig) {
                        not_running.push(format!("{n} ({e})"));
                    }
                }
                None => not_running.push(n.clone()),
            }
        }
        if not_running.is_empty() {
            Reply {
                ok: true,
                code: 0,
                error: None,
                data: serde_json::Value::Null,
            }
        } else {
            fail(
                proto::exit::NOT_RUNNING,
                format!("not running: {}", not_running.join(", ")),
            )
        }
    }

    /// The `status` answer, serialized: straight from the typed entries (no
    /// `serde_json::Value` of ~1000 objects in between).
    pub(super) fn status(&self, targets: &[&str]) -> Vec<u8> {
        let names = if targets.is_empty() {
            self.core.units().map(|r| r.name.clone()).collect()
        } else {
            match self.resolve_all(targets) {
                Ok(n) => n,
                Err(e) => {
                    return Reply {
                        ok: false,
                        code: proto::exit::NO_SUCH_UNIT,
                        error: Some(e),
                        data: serde_json::Value::Null,
                    }
                    .to_bytes()
                }
            }
        };
        let now_wall = SystemTime::now();
        let mut out = Vec::with_capacity(names.len());
        let mut any_down = false;
        for n in &names {
            let Some(r) = self.core.get(n) else { continue };
            let rt = self.units.get(n);
            let mut s = r.to_status(now_wall);
            // What only the loop knows: warnings, where the log is, the cgroup's figures,
            // the heartbeat file it made.
            s.warnings = rt.map(|rt| rt.warnings.clone()).unwrap_or_default();
            s.log_file = rt
                .and_then(|rt| rt.log_path.as_ref())
                .map(|p| p.to_string_lossy().into_owned())
                .or_else(|| {
                    r.def.as_ref().map(|d| {
                        d.log
                            .file
                            .clone()
                            .unwrap_or_else(|| self.opts.log_dir.join(format!("{n}.log")))
                            .to_string_lossy()
                            .into_owned()
                    })
                });
            if let Some(cg) = rt.and_then(|rt| rt.cgroup.as_ref()) {
                let st = cg.stats();
                s.cgroup = Some(cg.path());
                s.memory_bytes = st.memory_bytes;
                s.cpu_usec = st.cpu_usec;
                s.tasks = st.tasks;
            }
            if let Some(hb) = s.heartbeat.as_mut() {
                if hb.file.is_empty() {
                    hb.file = self
                        .opts
                        .run_dir
                        .join("heartbeat")
                        .join(n)
                        .display()
                        .to_string();
                }
            }
            s.status_text = rt.and_then(|rt| rt.status_text.clone());
            s.health = self.probes.as_ref().and_then(|p| p.health_text(n));
            if !targets.is_empty() && !matches!(r.state, State::Running | State::Starting) {
                any_down = true;
            }
            out.push(s);
        }
        /// The shape of [`Reply`], with the entries in place of its `Value`.
        #[derive(serde::Serialize)]
        struct StatusReply<'a> {
            ok: bool,
            code: i32,
            data: &'a [proto::UnitStatus],
        }
        let r = StatusReply {
            ok: !any_down,
            code: if any_down {
                proto::exit::NOT_RUNNING
            } else {
                0
            },
            data: &out,
        };
        let mut b = Vec::with_capacity(out.len() * 400 + 64);
        match serde_json::to_writer(&mut b, &r) {
            Ok(()) => {
                b.push(b'\n');
                b
            }
            // Not reachable for these types; PID 1 still must not panic on it.
            Err(e) => Reply {
                ok: false,
                code: proto::exit::FAILED,
                error: Some(format!("cannot encode the reply: {e}")),
                data: serde_json::Value::Null,
            }
            .to_bytes(),
        }
    }

    pub(super) fn timers(&self) -> serde_json::Value {
        let list: Vec<proto::TimerStatus> =
            self.core.units().filter_map(|r| r.timer_status()).collect();
        serde_json::to_value(list).unwrap_or_default()
    }

    pub(super) fn info(&self) -> serde_json::Value {
        let i = proto::Info {
            pid: std::process::id() as i32,
            units_dir: self.opts.units_dir.to_string_lossy().into_owned(),
            run_dir: self.opts.run_dir.to_string_lossy().into_owned(),
            log_dir: self.opts.log_dir.to_string_lossy().into_owned(),
            state_dir: self.opts.state_dir.to_string_lossy().into_owned(),
            mode: match self.mode {
                Mode::Machine => "machine",
                Mode::Container => "container",
                Mode::Plain => "plain",
            }
            .into(),
        };
        serde_json::to_value(i).unwrap_or_default()
    }

    pub(super) fn send_reply(&mut self, name: &str, reply: &Reply) {
        self.send_bytes(name, reply.to_bytes());
    }

    /// Send a serialized reply (a line of JSON).
    pub(super) fn send_bytes(&mut self, name: &str, bytes: Vec<u8>) {
        let mut w = match self.control.open_reply(name) {
            Ok(w) => w,
            Err(e) => {
                warn!(reply = name, error = %e, "reply dropped");
                return;
            }
        };
        w.set_bytes(bytes);
        match w.write_some() {
            Ok(true) => {}
            Ok(false) => {
                self.next_token += 1;
                let token = T_REPLY | (self.next_token & 0xffff_ffff);
                if let Err(e) = self
                    .epoll
                    .add(w.fd(), EpollEvent::new(EpollFlags::EPOLLOUT, token))
                {
                    warn!(error = %e, "cannot wait on a reply FIFO; reply dropped");
                    return;
                }
                self.replies.insert(token, w);
            }
            Err(e) => debug!(reply = name, error = %e, "client gone"),
        }
    }

    pub(super) fn on_reply_writable(&mut self, token: u64, _flags: EpollFlags) {
        let Some(w) = self.replies.get_mut(&token) else {
            return;
        };
        let finished = !matches!(w.write_some(), Ok(false));
        if finished {
            if let Some(w) = self.replies.remove(&token) {
                let _ = self.epoll.delete(w.fd());
            }
        }
    }

    pub(super) fn cleanup(&mut self) {
        if let Some(cgs) = &self.cgroups {
            for rt in self.units.values() {
                if let Some(cg) = &rt.cgroup {
                    let _ = cg.remove();
                }
            }
            cgs.cleanup();
        }
        let _ = std::fs::remove_file(self.opts.run_dir.join("control"));
    }
}

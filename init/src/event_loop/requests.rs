//! The control FIFO: requests, waiting start/stop answers, status and timers replies.

use super::*;
use crate::ratelimit::{BadRequest, Kind, Source};
use units::proto::{RequestError, Verb};

/// Template instances started at most (each is a unit colony-init keeps until it ends).
const MAX_INSTANCES: usize = 4096;

impl Engine {
    // ---- the control FIFO ------------------------------------------------------------

    pub(super) fn on_control(&mut self) {
        // A reexec goes last: the requests read with it are carried out (or handed over as
        // waiting clients) first, not lost with this image.
        let mut reqs = self.control.read_requests();
        reqs.sort_by_key(|r| matches!(r, Ok(r) if r.verb == Verb::Reexec));
        for req in reqs {
            match req {
                Ok(req) => {
                    debug!(verb = %req.verb, args = ?req.args, "request");
                    self.request(req);
                }
                Err(RequestError::UnknownVerb {
                    reply: Some(name),
                    verb,
                }) => {
                    let r = Reply::error(proto::exit::USAGE, verb.to_string());
                    self.send_reply(&name, &r);
                }
                Err(e) => {
                    let kind = Kind::BadRequest(BadRequest::from(&e));
                    if self.limits.allow(&Source::anonymous(kind), Instant::now()) {
                        warn!(error = %e, "control request dropped");
                    }
                }
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
        let answer = match req.verb {
            Verb::Status => {
                if let Some(name) = req.reply.as_deref() {
                    self.send_with(name, |e| e.status(&args));
                }
                None
            }
            Verb::Subscribe => {
                if let Some(name) = req.reply.as_deref() {
                    self.subscribe(name);
                }
                None
            }
            Verb::Timers => Some(reply(0, None, self.timers())),
            Verb::Info => Some(reply(0, None, self.info())),
            // Debug builds only: proves in a test that a panic while handling one event is
            // caught and the loop goes on (release builds answer it as unknown).
            Verb::Panic if cfg!(debug_assertions) => {
                panic!("panic requested over the control FIFO")
            }
            Verb::Panic => Some(Reply::error(
                proto::exit::USAGE,
                proto::UnknownVerb(req.verb.to_string()).to_string(),
            )),
            Verb::Start | Verb::Stop | Verb::Restart | Verb::ReloadUnit => {
                self.start_stop(&req, &args)
            }
            Verb::RestartAll => {
                self.feed(Input::Command(Command::RestartAll));
                Some(reply(0, None, serde_json::Value::Null))
            }
            Verb::Reload => {
                self.reload();
                Some(reply(0, None, serde_json::Value::Null))
            }
            Verb::Signal => Some(self.signal(&args)),
            Verb::Reexec => self.reexec(&req, &args),
            Verb::Version => Some(reply(0, None, self.version_info())),
            Verb::Poweroff | Verb::Reboot | Verb::Halt => {
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
                    let action = match req.verb {
                        Verb::Reboot => PowerAction::Reboot,
                        Verb::Halt => PowerAction::Halt,
                        _ => PowerAction::PowerOff,
                    };
                    self.shutdown(Some(action), req.verb.as_str());
                    Some(reply(0, None, serde_json::Value::Null))
                }
            }
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
        if matches!(req.verb, Verb::Start | Verb::Restart) {
            self.instantiate(&targets);
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
        if req.verb == Verb::ReloadUnit {
            if let Some(e) = names.iter().find_map(|n| self.reload_refusal(n)) {
                return Some(Reply {
                    ok: false,
                    code: proto::exit::FAILED,
                    error: Some(e),
                    data: serde_json::Value::Null,
                });
            }
        }
        let want = if req.verb == Verb::Stop {
            Want::Down
        } else {
            Want::Up
        };
        for n in &names {
            let cmd = match req.verb {
                Verb::Start => Command::Start(n.clone()),
                Verb::Stop => Command::Stop(n.clone()),
                Verb::ReloadUnit => Command::Reload(n.clone()),
                _ => Command::Restart(n.clone()),
            };
            self.feed(Input::Command(cmd));
        }
        match (&req.reply, no_block) {
            (Some(reply), false) => {
                self.bound_waiters(reply);
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

    /// `start NAME@INST` of a template `NAME@.unit`: the instance joins the units read
    /// from the directory (until colony-init ends), and is loaded now.
    fn instantiate(&mut self, targets: &[&str]) {
        let mut added = false;
        for t in targets {
            let t = t.strip_suffix(".unit").unwrap_or(t);
            let Some((prefix, _)) = units::template::split_instance(t) else {
                continue;
            };
            let template = self.opts.units_dir.join(format!("{prefix}@.unit"));
            if self.instances.len() >= MAX_INSTANCES {
                warn!(unit = %t, "not started: {MAX_INSTANCES} instances of templates already");
                break;
            }
            if self.core.get(t).is_none() && template.is_file() {
                info!(unit = %t, "a new instance of {prefix}@.unit");
                added |= self.instances.insert(t.to_string());
            }
        }
        if added {
            self.reload();
        }
    }

    /// Why `reload NAME` cannot run the unit's `exec_reload` now (`None`: it can).
    fn reload_refusal(&self, name: &str) -> Option<String> {
        let u = self.core.get(name)?;
        let has = u.active_def().is_some_and(|d| !d.hooks.reload.is_empty());
        if !has {
            Some(format!(
                "{name} has no exec_reload; add one to its unit file"
            ))
        } else if !u.is_up() {
            Some(format!(
                "{name} is {}, not running and ready: nothing to reload",
                u.state.as_str()
            ))
        } else {
            None
        }
    }

    /// Make room for one more start/stop answer to `reply`: the oldest to the same reply
    /// FIFO, or the oldest of all, is dropped (its client times out), so a flood of
    /// requests cannot grow the list (walked at every loop turn) without end.
    fn bound_waiters(&mut self, reply: &str) {
        let same = self.waiters.iter().filter(|w| w.reply == reply).count();
        let oldest = if same >= pending::LIMITS.per_fifo {
            self.waiters.iter().position(|w| w.reply == reply)
        } else if self.waiters.len() >= pending::MAX_WAITERS {
            Some(0)
        } else {
            None
        };
        if let Some(i) = oldest {
            let w = self.waiters.remove(i);
            if self
                .limits
                .allow(&Source::anonymous(Kind::ReplyDropped), Instant::now())
            {
                warn!(reply = %w.reply, "start/stop answer dropped: too many waiting");
            }
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
            let mut failed = Vec::new();
            for n in &w.names {
                match self.core.wait_result(n, w.want) {
                    None => return true,
                    Some(Ok(())) => {}
                    Some(Err(e)) => {
                        errors.push(format!("{n}: {e}"));
                        if w.want == Want::Up {
                            failed.push(n.clone());
                        }
                    }
                }
            }
            done.push((w.reply.clone(), errors, failed));
            false
        });
        for (name, errors, failed) in done {
            let r = if errors.is_empty() {
                Reply::ok(serde_json::Value::Null)
            } else {
                // What colonyctl needs to show why: each unit's exit and its log file.
                let failures: Vec<proto::StartFailure> = failed
                    .iter()
                    .filter_map(|n| {
                        let r = self.core.get(n)?;
                        Some(proto::StartFailure {
                            name: n.clone(),
                            state: r.state.as_str().to_string(),
                            last_exit: r.last_exit_json(),
                            log_file: self.log_file_of(n, r),
                        })
                    })
                    .collect();
                Reply {
                    data: serde_json::to_value(failures).unwrap_or_default(),
                    ..Reply::error(proto::exit::FAILED, errors.join("; "))
                }
            };
            self.send_reply(&name, &r);
        }
    }

    /// Where a unit's output goes: the file its log pipe writes, else the one its
    /// definition names.
    fn log_file_of(&self, n: &str, r: &crate::core::UnitRecord) -> Option<String> {
        self.units
            .get(n)
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
            })
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
            if !targets.is_empty() && !matches!(r.state, State::Running | State::Starting) {
                any_down = true;
            }
            out.push(self.unit_status(r, now_wall));
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
        to_line(&r)
    }

    /// One unit's `status` entry: the core's part, and what only the loop knows.
    pub(super) fn unit_status(
        &self,
        r: &crate::core::UnitRecord,
        now_wall: SystemTime,
    ) -> proto::UnitStatus {
        let n = &r.name;
        {
            let rt = self.units.get(n);
            let mut s = r.to_status(now_wall);
            // Dependencies on units that are not there, then what only the loop knows:
            // warnings, where the log is, the cgroup's figures, the heartbeat file it made.
            s.warnings = self.core.dependency_warnings(n);
            s.warnings
                .extend(rt.map(|rt| rt.warnings.clone()).unwrap_or_default());
            s.log_file = self.log_file_of(n, r);
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
            s
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
        self.send_with(name, |_| bytes);
    }

    /// Open the reply FIFO `name`, then make the reply (not before: a flood of requests
    /// naming a FIFO that cannot be opened costs no status each) and write what the pipe
    /// takes; the rest waits for the client, within the bounds of `PendingReplies`.
    pub(super) fn send_with(&mut self, name: &str, make: impl FnOnce(&Self) -> Vec<u8>) {
        // A reader that leaves its FIFO full gets no more replies made for it: a flood of
        // requests naming it costs no status rendering each, and what waits stays what it
        // was (each client has a FIFO of its own: a real one never has two replies waiting).
        if self.replies.is_full(name) {
            if self
                .limits
                .allow(&Source::anonymous(Kind::ReplyDropped), Instant::now())
            {
                let why = pending::Said(pending::Why::PerFifo, self.replies.limits());
                warn!(reply = name, %why, "reply dropped");
            }
            return;
        }
        // Out of fds, the oldest waiting reply gives its fd to this one.
        let (replies, epoll, limits) = (&mut self.replies, &self.epoll, &mut self.limits);
        let opened = self.control.open_reply_or(name, || {
            let Some(d) = replies.drop_oldest(pending::Why::NoFds) else {
                return false;
            };
            let _ = epoll.delete(d.item.fd());
            say_dropped(limits, &d, replies.limits());
            true
        });
        let mut w = match opened {
            Ok(w) => w,
            Err(e) => {
                let dropped = Source::anonymous(Kind::ReplyDropped);
                if self.limits.allow(&dropped, Instant::now()) {
                    warn!(reply = name, error = %e, "reply dropped");
                }
                self.replies_changed();
                return;
            }
        };
        w.set_bytes(make(self));
        match w.write_some() {
            Ok(false) => self.wait_reply(name, w),
            Ok(true) => drop(w),
            Err(e) => {
                debug!(reply = name, error = %e, "client gone");
                drop(w);
            }
        }
        // The writer's fd (if closed) goes back to the reserve before a start can take it.
        self.control.keep_reserve();
        self.replies_changed();
    }

    /// A reply the pipe did not take whole: wait for EPOLLOUT, the oldest waiting replies
    /// making room for it.
    pub(super) fn wait_reply(&mut self, name: &str, w: ReplyWriter) {
        self.next_token += 1;
        let token = T_REPLY | (self.next_token & 0xffff_ffff);
        let held = w.held();
        let dropped = self.replies.admit(token, name, held, w, Instant::now());
        self.drop_replies(dropped);
        if let Some(w) = self.replies.get_mut(token) {
            if let Err(e) = self
                .epoll
                .add(w.fd(), EpollEvent::new(EpollFlags::EPOLLOUT, token))
            {
                warn!(error = %e, "cannot wait on a reply FIFO; reply dropped");
                drop(self.replies.remove(token));
            }
        }
        self.replies_changed();
    }

    /// Close replies taken out of `self.replies` unwritten, saying so (rate-limited).
    fn drop_replies(&mut self, dropped: Vec<Dropped<ReplyWriter>>) {
        for d in &dropped {
            say_dropped(&mut self.limits, d, self.replies.limits());
        }
        self.close_replies(dropped.into_iter().map(|d| d.item));
    }

    /// Close replies taken out of `self.replies`.
    fn close_replies(&mut self, done: impl IntoIterator<Item = ReplyWriter>) {
        for w in done {
            let _ = self.epoll.delete(w.fd());
        }
        // Their fds go back to the reserve before a start can take them.
        self.control.keep_reserve();
    }

    /// Arm the replies' deadline (disarmed when nothing waits: no wakeup).
    fn replies_changed(&mut self) {
        match self.replies.next_deadline() {
            Some(at) => self.deadlines.arm(Key::Replies, at),
            None => self.deadlines.disarm(&Key::Replies),
        }
    }

    pub(super) fn on_reply_deadline(&mut self) {
        let expired = self.replies.expire(Instant::now());
        self.drop_replies(expired);
        self.replies_changed();
    }

    pub(super) fn on_reply_writable(&mut self, token: u64, _flags: EpollFlags) {
        let Some(w) = self.replies.get_mut(token) else {
            return;
        };
        let before = w.remaining();
        match w.write_some() {
            Ok(false) => {
                if w.remaining() < before {
                    self.replies.progressed(token, Instant::now());
                    self.replies_changed();
                }
            }
            Ok(true) | Err(_) => {
                let done = self.replies.remove(token);
                self.close_replies(done);
                self.replies_changed();
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
        let _ = std::fs::remove_file(self.opts.run_dir.join(proto::CONTROL_FIFO));
    }
}

/// One line of JSON (with its newline).
pub(super) fn to_line(v: &impl serde::Serialize) -> Vec<u8> {
    let mut b = Vec::with_capacity(4096);
    match serde_json::to_writer(&mut b, v) {
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

/// Say (rate-limited) that a waiting reply was dropped, and why.
fn say_dropped(limits: &mut Limits, d: &Dropped<ReplyWriter>, bounds: &pending::Limits) {
    if limits.allow(&Source::anonymous(Kind::ReplyDropped), Instant::now()) {
        let why = pending::Said(d.why, bounds);
        warn!(reply = %d.name, %why, "reply dropped");
    }
}

//! `colonyctl reexec`: handing the whole engine to a new image of colony-init through exec
//! (the old image's side), and taking it over (the new image's side). The state's format is
//! in [`crate::handover`]; the core's part in [`crate::core::CoreSnap`].
//!
//! Before it execs, the running image settles what it cannot hand over mid-way (every child
//! whose exec report is pending is confirmed, every log pipe is drained), writes the state
//! and asks the new binary to read it (`--check-handover FD`, bounded in time). A binary
//! that is missing, not executable or fails the check is refused and nothing changes.
//! Signals stay blocked across exec, so none is lost or acted on by default meanwhile;
//! whatever happened during the exec (a child's exit, a cgroup that became empty, a
//! request in the FIFO, a notify datagram, unit output) is waiting for the new image.

use super::*;

use std::os::fd::AsRawFd;

use crate::handover::{self, DeadlineAt, KeptFd, Role, State, UnitHandles, WaiterSnap};

/// When colony-init started and was last re-executed (`colonyctl version`).
#[derive(Debug, Clone)]
pub struct Lineage {
    pub started: SystemTime,
    pub reexecuted: Option<SystemTime>,
    pub reexecs: u64,
}

/// Kernel objects a new image takes over instead of making them.
#[derive(Default)]
pub struct Kept {
    pub control: Option<OwnedFd>,
    pub notify: Option<OwnedFd>,
    pub inotify: Option<OwnedFd>,
}

impl Kept {
    /// The control FIFO and notify socket of a handover state.
    pub fn from_state(st: &State) -> Kept {
        let mut k = Kept::default();
        for f in &st.fds {
            match f.role {
                // SAFETY: listed in the state as kept for this role; nothing else owns it.
                Role::Control => k.control = Some(unsafe { handover::adopt(f.fd) }),
                // SAFETY: as above.
                Role::Notify => k.notify = Some(unsafe { handover::adopt(f.fd) }),
                // SAFETY: as above.
                Role::Inotify => k.inotify = Some(unsafe { handover::adopt(f.fd) }),
                _ => {}
            }
        }
        k
    }
}

impl Engine {
    /// `reexec [--binary PATH]`: `None` once exec'd (never returns then); a refusal is the
    /// reply, with everything as it was.
    pub(super) fn reexec(&mut self, req: &Request, args: &[&str]) -> Option<Reply> {
        let refuse = |e: String| {
            warn!(error = %e, "reexec refused");
            Some(Reply::error(
                proto::exit::FAILED,
                format!("reexec refused: {e}"),
            ))
        };
        let binary = match handover::target(args) {
            Ok(b) => b,
            Err(e) => return Some(Reply::error(proto::exit::USAGE, e)),
        };
        if let Err(e) = handover::executable(&binary) {
            return refuse(e);
        }
        if self.shutting_down || self.core.is_shutting_down() {
            return refuse("colony-init is shutting down".into());
        }
        let t0 = Instant::now();
        // The new image reads definitions from the units directory: what the directory
        // changed is loaded first (the events read, a reload waiting to settle done now), so
        // that every definition is its file's but where the core knows otherwise.
        self.on_inotify();
        if self.deadlines.is_armed(&Key::Reload) {
            self.deadlines.disarm(&Key::Reload);
            self.reload();
        }
        let loaded = t0.elapsed();
        self.settle_for_handover();
        let blockers = self.core.handover_blockers();
        if !blockers.is_empty() {
            return refuse(blockers.join("; "));
        }
        let settled = t0.elapsed();
        let state = self.handover_state(req.reply.clone());
        let keep = |on: bool| {
            for k in &state.fds {
                // SAFETY: each listed fd is one the engine holds open for the whole call.
                let fd = unsafe { BorrowedFd::borrow_raw(k.fd) };
                let _ = handover::set_keep(fd, on);
            }
        };
        let memfd = match handover::to_memfd(&state) {
            Ok(fd) => fd,
            Err(e) => return refuse(format!("cannot write the handover state: {e}")),
        };
        let written = t0.elapsed();
        keep(true);
        if let Err(e) = handover::run_check(&binary, memfd.as_raw_fd()) {
            keep(false);
            return refuse(e);
        }
        let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1e3);
        info!(
            binary = %binary.display(),
            units = state.core.units.len(),
            directory_ms = %ms(loaded),
            settle_ms = %ms(settled - loaded),
            state_ms = %ms(written - settled),
            check_ms = %ms(t0.elapsed() - written),
            "re-executing"
        );
        let err = handover::exec_with_state(&binary, memfd.as_raw_fd());
        keep(false);
        refuse(format!("exec {}: {err}", binary.display()))
    }

    /// What cannot be handed over mid-way: pending exec reports are read, log pipes are
    /// drained into their files.
    fn settle_for_handover(&mut self) {
        let pending: Vec<String> = self
            .units
            .iter()
            .filter(|(_, rt)| rt.pending.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        for name in pending {
            if let Some(input) = self.confirm_exec(&name) {
                self.feed(input);
            }
        }
        // Bounded: a writer faster than the file is cut at 64 rounds; the rest stays in the
        // pipe for the new image. One poll over every pipe a round, then the readable ones.
        let mut tokens: Vec<u64> = self.log_tokens.keys().copied().collect();
        for _ in 0..64 {
            tokens = self.readable_logs(&tokens);
            if tokens.is_empty() {
                break;
            }
            for &t in &tokens {
                self.on_log(t);
            }
        }
    }

    /// Which of these log pipes have something to read now.
    fn readable_logs(&self, tokens: &[u64]) -> Vec<u64> {
        let mut which = Vec::new();
        let mut pfds = Vec::new();
        for &t in tokens {
            let pipe = self
                .log_tokens
                .get(&t)
                .and_then(|n| self.units.get(n))
                .and_then(|rt| rt.log_pipe.as_ref());
            if let Some((r, _, _)) = pipe {
                which.push(t);
                pfds.push(nix::poll::PollFd::new(
                    r.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                ));
            }
        }
        if nix::poll::poll(&mut pfds, 0u16).unwrap_or(0) <= 0 {
            return Vec::new();
        }
        which
            .into_iter()
            .zip(&pfds)
            .filter(|(_, p)| p.revents().is_some_and(|r| !r.is_empty()))
            .map(|(t, _)| t)
            .collect()
    }

    fn handover_state(&self, reply: Option<String>) -> State {
        let clock = handover::mono_clock();
        let mut fds = vec![
            KeptFd {
                fd: self.control.fd().as_raw_fd(),
                role: Role::Control,
            },
            KeptFd {
                fd: self.watches.fd().as_raw_fd(),
                role: Role::Inotify,
            },
        ];
        if let Some(n) = &self.notify {
            fds.push(KeptFd {
                fd: n.fd().as_raw_fd(),
                role: Role::Notify,
            });
        }
        for (name, w) in self.replies.iter() {
            fds.push(KeptFd {
                fd: w.fd().as_raw_fd(),
                role: Role::Reply(name.to_string()),
            });
        }
        let subscribers = self.subs.snapshot();
        for sub in &subscribers.subs {
            fds.push(KeptFd {
                fd: sub.fd,
                role: Role::Subscriber(sub.name.clone()),
            });
        }
        let mut units = Vec::new();
        let main_pids: HashMap<&str, i32> = self
            .pid_to_unit
            .iter()
            .map(|(p, u)| (u.as_str(), *p))
            .collect();
        for (name, rt) in &self.units {
            let pidfd = rt.main.as_ref().map(|p| p.pidfd.as_raw_fd());
            let (log_read, log_write) = match &rt.log_pipe {
                Some((r, w, _)) => (Some(r.as_raw_fd()), Some(w.as_raw_fd())),
                None => (None, None),
            };
            let exec = self.exec_handles(rt);
            for &fd in &exec.listen {
                fds.push(KeptFd {
                    fd,
                    role: Role::Listen(name.clone()),
                });
            }
            for (fd, role) in [
                (pidfd, Role::Pidfd(name.clone())),
                (log_read, Role::LogRead(name.clone())),
                (log_write, Role::LogWrite(name.clone())),
            ] {
                if let Some(fd) = fd {
                    fds.push(KeptFd { fd, role });
                }
            }
            let cgroup_kept = rt.cgroup.as_ref().map(|c| c.kept());
            for fd in cgroup_kept.iter().flat_map(|k| k.fds()) {
                fds.push(KeptFd {
                    fd,
                    role: Role::CgroupStat(name.clone()),
                });
            }
            let log_kept = rt.log.as_ref().and_then(|l| l.kept());
            if let Some(k) = &log_kept {
                fds.push(KeptFd {
                    fd: k.fd,
                    role: Role::LogFile(name.clone()),
                });
            }
            let main_pid = main_pids.get(name.as_str()).copied();
            units.push(UnitHandles {
                name: name.clone(),
                main_pid: main_pid.filter(|_| pidfd.is_some()),
                pidfd,
                pgid: rt.pgid,
                log_read,
                log_write,
                cgroup: rt.cgroup.is_some(),
                cgroup_killed: rt.cgroup.as_ref().is_some_and(|c| c.was_killed()),
                cgroup_kept,
                log_kept,
                warnings: rt.warnings.clone(),
                oom_seen: rt.oom_seen,
                status_text: rt.status_text.clone(),
                strays: rt.strays.iter().map(|(s, _)| s.pid).collect(),
                awaiting_empty: rt.awaiting_empty,
                exec,
            });
        }
        let deadlines = self
            .deadlines
            .iter()
            .filter_map(|(k, at)| match k {
                Key::Unit(unit, kind) => Some(DeadlineAt {
                    unit: unit.clone(),
                    kind: *kind,
                    at_ns: clock.to_ns(at),
                }),
                _ => None,
            })
            .collect();
        State {
            version: handover::VERSION,
            writer: crate::version(),
            started: Some(self.lineage.started),
            reexecuted: Some(SystemTime::now()),
            reexecs: self.lineage.reexecs + 1,
            fds,
            core: self.core.snapshot(&clock),
            units,
            deadlines,
            waiters: self
                .waiters
                .iter()
                .map(|w| WaiterSnap {
                    reply: w.reply.clone(),
                    names: w.names.clone(),
                    want: w.want,
                })
                .collect(),
            reply,
            instances: self.instances.iter().cloned().collect(),
            control_partial: self.control.partial().to_vec(),
            replies: self
                .replies
                .iter()
                .map(|(name, w)| handover::ReplySnap {
                    name: name.to_string(),
                    fd: w.fd().as_raw_fd(),
                    rest: w.unwritten().to_vec(),
                })
                .collect(),
            entrypoint: None,
            subscribers,
            probes: self
                .probes
                .as_ref()
                .map(|p| p.snapshot(&clock))
                .unwrap_or_default(),
            limits: self.limits.snapshot(&clock),
        }
    }

    /// The new image: take over the units of a handover state, then read the directory as
    /// at any start (new files are started; unchanged ones are left as they run).
    pub(super) fn take_over(&mut self, st: State) {
        let t0 = Instant::now();
        let clock = handover::mono_clock();
        self.lineage = Lineage {
            started: st.started.unwrap_or_else(SystemTime::now),
            reexecuted: st.reexecuted,
            reexecs: st.reexecs,
        };
        self.instances = st.instances.iter().cloned().collect();
        let set = match dirsync::read(&self.opts.units_dir, &self.instances) {
            Ok(Input::Load(set)) => set,
            Ok(_) => Vec::new(),
            Err(e) => {
                warn!(error = %e, "cannot read the units directory after a reexec");
                Vec::new()
            }
        };
        let read = t0.elapsed();
        crate::kernel::cgroup::plan_fd_budget(set.len());
        self.control.set_partial(&st.control_partial);
        self.core = Supervisor::restore(self.opts.defaults, st.core, &set, &clock);
        for h in st.units {
            self.adopt_unit(h);
        }
        if let Some(p) = self.probes.as_mut() {
            let core = &self.core;
            p.restore(st.probes, &clock, |u| {
                core.get(u)
                    .and_then(|r| r.def.as_ref())
                    .and_then(|d| d.health.as_deref().cloned())
            });
        }
        self.limits.restore(st.limits, &clock);
        for d in st.deadlines {
            self.deadlines
                .arm(Key::Unit(d.unit, d.kind), clock.to_instant(d.at_ns));
        }
        self.waiters = st
            .waiters
            .into_iter()
            .map(|w| Waiter {
                reply: w.reply,
                names: w.names,
                want: w.want,
            })
            .collect();
        // A beat during the exec (before the new watch): the file's time says so.
        let beaten: Vec<String> = self
            .units
            .iter()
            .filter(|(n, rt)| {
                let last = self.core.get(n).and_then(|u| u.last_beat);
                let touched = rt
                    .heartbeat
                    .as_ref()
                    .and_then(|p| std::fs::metadata(p).ok())
                    .and_then(|m| m.modified().ok());
                matches!((touched, last), (Some(t), Some(l)) if t > l)
            })
            .map(|(n, _)| n.clone())
            .collect();
        for unit in beaten {
            self.feed(Input::Beat { unit });
        }
        self.take_over_subscribers(st.subscribers);
        for r in st.replies {
            // SAFETY: listed in the state as this reply's FIFO; nothing else owns it.
            let fd = unsafe { handover::adopt(r.fd) };
            self.wait_reply(&r.name, crate::control::ReplyWriter::new(fd, r.rest));
        }
        let adopted = t0.elapsed();
        // What happened during the exec: exits (SIGCHLD is still pending, but a look costs
        // nothing), cgroups that emptied before their new watch.
        self.reap();
        let emptied: Vec<String> = self
            .units
            .iter()
            .filter(|(_, rt)| rt.awaiting_empty && rt.cgroup.as_ref().is_some_and(|c| c.is_empty()))
            .map(|(n, _)| n.clone())
            .collect();
        for unit in emptied {
            if let Some(rt) = self.units.get_mut(&unit) {
                rt.awaiting_empty = false;
            }
            self.feed(Input::Empty { unit });
        }
        let names: Vec<String> = self.core.units().map(|u| u.name.clone()).collect();
        for n in names {
            let inputs = self.sync_probes(&n);
            for i in inputs {
                self.feed(i);
            }
        }
        self.feed(Input::Load(set));
        if let Some(reply) = st.reply {
            let data = self.version_info();
            self.send_reply(&reply, &Reply::ok(data));
        }
        let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1e3);
        // From the request (the old image's clock reading) to here: the whole handover.
        let since_request = |at: SystemTime| {
            st.reexecuted
                .and_then(|r| at.duration_since(r).ok())
                .unwrap_or_default()
        };
        info!(
            from = %st.writer,
            units = self.units.len(),
            reexecs = self.lineage.reexecs,
            exec_ms = %ms(since_request(handover::image_started().1)),
            startup_ms = %ms(t0.duration_since(handover::image_started().0)),
            directory_ms = %ms(read),
            adopt_ms = %ms(adopted - read),
            load_ms = %ms(t0.elapsed() - adopted),
            since_request_ms = %ms(since_request(SystemTime::now())),
            "took over from the previous image"
        );
    }

    /// The event streams of the old image: the same FIFOs, what was not written yet first.
    fn take_over_subscribers(&mut self, snap: crate::control::subscribers::SubscribersSnap) {
        let mut next = self.next_token;
        let (subs, regs) = crate::control::subscribers::Subscribers::restore(snap, |s| {
            next += 1;
            // SAFETY: listed in the state as this stream's FIFO; nothing else owns it.
            Some((T_SUB | (next & 0xffff_ffff), unsafe {
                handover::adopt(s.fd)
            }))
        });
        self.next_token = next;
        self.subs = subs;
        for (token, interest) in regs {
            let registered = self.subs.fd(token).map(|fd| {
                self.epoll.add(
                    fd,
                    EpollEvent::new(super::events::flags_for(&interest), token),
                )
            });
            if let Some(Err(e)) = registered {
                warn!(error = %e, "cannot watch a subscriber after a reexec; dropped");
                self.subs.on_ready(token, true);
            }
        }
    }

    fn adopt_unit(&mut self, h: UnitHandles) {
        let name = h.name.clone();
        let def = self.core.get(&name).and_then(|r| r.def.clone());
        let mut rt = UnitRt {
            pgid: h.pgid,
            warnings: h.warnings,
            oom_seen: h.oom_seen,
            status_text: h.status_text,
            awaiting_empty: h.awaiting_empty,
            ..UnitRt::default()
        };
        self.adopt_exec(&mut rt, h.exec, def.as_deref());
        if let Some(fd) = h.pidfd {
            // SAFETY: listed in the state as this unit's pidfd; nothing else owns it.
            rt.main = Some(Proc {
                pidfd: unsafe { handover::adopt(fd) },
            });
            if let Some(pid) = h.main_pid {
                self.pid_to_unit.insert(pid, name.clone());
            }
        }
        if let (Some(r), Some(w)) = (h.log_read, h.log_write) {
            // SAFETY: listed in the state as this unit's pipe ends; nothing else owns them.
            let (r, w) = unsafe { (handover::adopt(r), handover::adopt(w)) };
            self.next_token += 1;
            let token = T_LOG | (self.next_token & 0xffff_ffff);
            match self
                .epoll
                .add(r.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))
            {
                Ok(()) => {
                    self.log_tokens.insert(token, name.clone());
                    rt.log_pipe = Some((r, w, token));
                }
                Err(e) => warn!(unit = %name, error = %e, "epoll: the unit's output is lost"),
            }
        }
        let kept = h.cgroup_kept;
        let cgroup = match (h.cgroup, &self.cgroups, &def, kept) {
            // SAFETY: the stat files listed in the state for this unit; nothing else owns them.
            (true, Some(cgs), Some(d), Some(k)) => {
                Some(unsafe { cgs.adopt(&name, &d.resources, h.cgroup_killed, k) })
            }
            (true, Some(cgs), Some(d), None) => {
                Some(cgs.reopen(&name, &d.resources, h.cgroup_killed))
            }
            (_, _, _, k) => {
                for fd in k.iter().flat_map(|k| k.fds()) {
                    // SAFETY: as above; not wanted here, so closed.
                    drop(unsafe { handover::adopt(fd) });
                }
                None
            }
        };
        if let Some(cg) = cgroup {
            // The same directories, as they are.
            match cg.ok_or("its directories are gone") {
                Ok(cg) => {
                    if let Some(ev) = cg.events_file() {
                        match self.watches.watch_cgroup_events(&ev, &name) {
                            Ok(wd) => rt.cgroup_watch = Some(wd),
                            Err(e) => warn!(unit = %name, error = %e, "cannot watch cgroup.events"),
                        }
                    }
                    rt.cgroup = Some(cg);
                }
                Err(e) => warn!(unit = %name, error = %e, "cannot open the unit's cgroup again"),
            }
        }
        if let Some(pgid) = h.pgid {
            self.members.set(
                &name,
                rt.cgroup.as_ref().and_then(|c| c.dir("")),
                rt.cgroup.as_ref().map(|c| c.path()),
                pgid,
            );
        }
        for pid in h.strays {
            let Ok(pidfd) = spawn::pidfd_open(pid) else {
                continue; // gone meanwhile
            };
            self.next_token += 1;
            let token = T_STRAY | (self.next_token & 0xffff_ffff);
            if self
                .epoll
                .add(pidfd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))
                .is_ok()
            {
                self.stray_tokens.insert(token, name.clone());
                rt.strays
                    .push((crate::kernel::strays::Stray { pid, pidfd }, token));
            }
        }
        match (h.log_kept, &def) {
            (Some(k), Some(d)) => {
                let path = k.path.clone();
                // SAFETY: listed in the state as this unit's log file; nothing else owns it.
                match unsafe { LogFile::adopt(k, d.log.max_size, d.log.keep, self.log_group) } {
                    Ok(l) => {
                        rt.log = Some(l);
                        rt.log_path = Some(path);
                    }
                    Err(e) => {
                        warn!(unit = %name, error = %e, "log file after a reexec: opened again")
                    }
                }
            }
            (Some(k), None) => {
                // SAFETY: as above; of no use here, so closed.
                drop(unsafe { handover::adopt(k.fd) });
            }
            (None, _) => {}
        }
        self.units.insert(name.clone(), rt);
        if let Some(d) = def {
            if let Err(e) = self.ensure_log(&name, &d) {
                warn!(unit = %name, error = %e, "log file after a reexec");
            }
            if d.heartbeat.is_some() {
                if let Err(e) = self.ensure_heartbeat(&name, &d) {
                    warn!(unit = %name, error = %e, "heartbeat file after a reexec");
                }
            }
        }
    }

    /// `version`'s data: this image's version, when colony-init started and was last
    /// re-executed.
    pub(super) fn version_info(&self) -> serde_json::Value {
        let t = |s: SystemTime| crate::core::rfc3339(s);
        serde_json::json!({
            "version": crate::version(),
            "started": t(self.lineage.started),
            "reexecuted": self.lineage.reexecuted.map(t),
            "reexecs": self.lineage.reexecs,
            "pid": std::process::id(),
        })
    }
}

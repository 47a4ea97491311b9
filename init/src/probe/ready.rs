//! Readiness probes: tcp connect attempts with a doubling backoff, and `file` readiness
//! through an inotify watch on the nearest existing ancestor.

use super::*;

impl Probes {
    /// The unit started and is `starting`: watch for it to be up per `[ready]`. Returns
    /// actions at once when it already is (the file exists).
    pub fn start_ready(&mut self, unit: &str, kind: &ReadyType) -> Vec<Action> {
        self.stop_ready(unit);
        let mut out = Vec::new();
        match kind {
            ReadyType::Tcp(addr) => {
                self.ready.insert(
                    unit.to_string(),
                    ReadyProbe {
                        kind: ReadyKind::Tcp {
                            addr: addr.clone(),
                            backoff: BACKOFF_MIN,
                            conn: None,
                        },
                    },
                );
                self.tcp_attempt(unit, &mut out);
            }
            ReadyType::File(path) => {
                self.ready.insert(
                    unit.to_string(),
                    ReadyProbe {
                        kind: ReadyKind::File {
                            path: path.clone(),
                            watch: None,
                        },
                    },
                );
                self.file_check(unit, &mut out);
            }
            ReadyType::Started | ReadyType::Notify | ReadyType::Exited => {}
        }
        self.rearm();
        out
    }

    pub fn stop_ready(&mut self, unit: &str) {
        if let Some(p) = self.ready.remove(unit) {
            match p.kind {
                ReadyKind::Tcp { conn, .. } => {
                    if let Some(c) = conn {
                        self.close(c);
                    }
                }
                ReadyKind::File { watch, .. } => {
                    if let Some(wd) = watch {
                        self.unwatch(wd, unit);
                    }
                }
            }
        }
        self.deadlines.disarm(&(unit.to_string(), Slot::ReadyRetry));
        self.deadlines
            .disarm(&(unit.to_string(), Slot::ReadyAttempt));
        self.rearm();
    }

    pub(super) fn tcp_attempt(&mut self, unit: &str, out: &mut Vec<Action>) {
        let Some(ReadyProbe {
            kind: ReadyKind::Tcp { addr, .. },
        }) = self.ready.get(unit)
        else {
            return;
        };
        let addr = addr.clone();
        let target = match crate::hosts::resolve(&addr) {
            Ok(a) => a,
            Err(e) => {
                debug!(unit, error = %e, "tcp readiness: cannot resolve yet");
                self.tcp_retry_later(unit);
                return;
            }
        };
        match self.connect(target, None, unit, Role::Ready) {
            Ok(c) => {
                if let Some(ReadyProbe {
                    kind: ReadyKind::Tcp { conn, .. },
                }) = self.ready.get_mut(unit)
                {
                    *conn = Some(c);
                }
                self.deadlines.arm(
                    (unit.to_string(), Slot::ReadyAttempt),
                    Instant::now() + ATTEMPT_TIMEOUT,
                );
            }
            Err(e) => {
                debug!(unit, error = %e, "tcp readiness attempt failed");
                self.tcp_retry_later(unit);
            }
        }
        let _ = out;
    }

    pub(super) fn tcp_retry_later(&mut self, unit: &str) {
        self.deadlines
            .disarm(&(unit.to_string(), Slot::ReadyAttempt));
        if let Some(ReadyProbe {
            kind: ReadyKind::Tcp { backoff, .. },
        }) = self.ready.get_mut(unit)
        {
            let d = *backoff;
            *backoff = (d * 2).min(BACKOFF_MAX);
            self.deadlines
                .arm((unit.to_string(), Slot::ReadyRetry), Instant::now() + d);
        }
    }

    pub(super) fn take_ready_conn(&mut self, unit: &str) -> Option<Conn> {
        match self.ready.get_mut(unit) {
            Some(ReadyProbe {
                kind: ReadyKind::Tcp { conn, .. },
            }) => conn.take(),
            _ => None,
        }
    }

    // ---- file readiness ----------------------------------------------------------------

    pub(super) fn file_check(&mut self, unit: &str, out: &mut Vec<Action>) {
        let Some(ReadyProbe {
            kind: ReadyKind::File { path, .. },
        }) = self.ready.get(unit)
        else {
            return;
        };
        let path = path.clone();
        // Watch first, then look: a file made in between is seen by the look. Likewise for
        // the directories on the way: if a deeper one appeared while the watch was being
        // added (its IN_CREATE came before the watch), watch that one instead.
        let mask = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_ATTRIB
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ONLYDIR;
        let mut dir = nearest_existing_dir(&path);
        loop {
            let wd = match self.inotify.add_watch(&dir, mask) {
                Ok(wd) => Some(wd),
                Err(e) => {
                    warn!(unit, dir = %dir.display(), error = %e, "cannot watch for the ready file");
                    None
                }
            };
            self.set_file_watch(unit, wd);
            let deeper = nearest_existing_dir(&path);
            if wd.is_none() || deeper == dir {
                break;
            }
            dir = deeper;
        }
        if path.exists() {
            info!(unit, path = %path.display(), "ready file exists");
            out.push(Action::Ready(unit.to_string()));
            self.stop_ready(unit);
        }
    }

    /// The unit's file probe now watches `wd`: the old watch is let go (if no other unit
    /// shares it) and the new one is recorded.
    pub(super) fn set_file_watch(&mut self, unit: &str, wd: Option<WatchDescriptor>) {
        let old = match self.ready.get(unit) {
            Some(ReadyProbe {
                kind: ReadyKind::File { watch, .. },
            }) => *watch,
            _ => return,
        };
        if old == wd {
            return;
        }
        if let Some(o) = old {
            self.unwatch(o, unit);
        }
        if let Some(w) = wd {
            let list = self.dir_watches.entry(w).or_default();
            if !list.iter().any(|u| u == unit) {
                list.push(unit.to_string());
            }
        }
        if let Some(ReadyProbe {
            kind: ReadyKind::File { watch, .. },
        }) = self.ready.get_mut(unit)
        {
            *watch = wd;
        }
    }

    pub(super) fn unwatch(&mut self, wd: WatchDescriptor, unit: &str) {
        if let Some(list) = self.dir_watches.get_mut(&wd) {
            list.retain(|u| u != unit);
            if list.is_empty() {
                self.dir_watches.remove(&wd);
                let _ = self.inotify.rm_watch(wd);
            }
        }
    }

    pub(super) fn on_inotify(&mut self, out: &mut Vec<Action>) {
        let events = match self.inotify.read_events() {
            Ok(e) => e,
            Err(nix::Error::EAGAIN) => return,
            Err(e) => {
                warn!(error = %e, "reading the probe inotify");
                return;
            }
        };
        let mut units: Vec<String> = Vec::new();
        for ev in events {
            if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                units.extend(self.dir_watches.values().flatten().cloned());
                continue;
            }
            if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                // The directory went away: the kernel dropped the watch.
                if let Some(list) = self.dir_watches.remove(&ev.wd) {
                    for u in &list {
                        if let Some(ReadyProbe {
                            kind: ReadyKind::File { watch, .. },
                        }) = self.ready.get_mut(u)
                        {
                            *watch = None;
                        }
                    }
                    units.extend(list);
                }
                continue;
            }
            if let Some(list) = self.dir_watches.get(&ev.wd) {
                units.extend(list.iter().cloned());
            }
        }
        units.sort();
        units.dedup();
        for u in units {
            self.file_check(&u, out);
        }
    }

    // ---- health checks -----------------------------------------------------------------
}

pub(super) fn nearest_existing_dir(path: &Path) -> PathBuf {
    let mut dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    while !dir.is_dir() {
        match dir.parent() {
            Some(p) => dir = p.to_path_buf(),
            None => return PathBuf::from("/"),
        }
    }
    dir
}

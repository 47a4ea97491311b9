//! The event stream (`subscribe`): the core's state changes, fanned out to the
//! subscribers' reply FIFOs (see `control/subscribers.rs` for the bounds).

use super::requests::to_line;
use super::*;
use crate::control::subscribers::{Gone, Interest, Update};
use crate::ratelimit::{Kind, Source};

impl Engine {
    /// `subscribe`: open the reply FIFO `name` and keep it; the status of every unit first.
    pub(super) fn subscribe(&mut self, name: &str) {
        if self.subs.is_full() {
            let r = Reply::error(
                proto::exit::FAILED,
                format!(
                    "too many subscribers (at most {}); try again later",
                    proto::events::MAX_SUBSCRIBERS
                ),
            );
            self.send_reply(name, &r);
            return;
        }
        let w = match self.control.open_reply(name) {
            Ok(w) => w,
            Err(e) => {
                if self
                    .limits
                    .allow(&Source::anonymous(Kind::ReplyDropped), Instant::now())
                {
                    warn!(reply = name, error = %e, "subscription refused");
                }
                self.control.keep_reserve();
                return;
            }
        };
        let fd = w.into_fd();
        let lost = self.subs.take_lost(name);
        let now_wall = SystemTime::now();
        let first = proto::Subscribed {
            ok: true,
            code: 0,
            data: self
                .core
                .units()
                .map(|r| self.unit_status(r, now_wall))
                .collect(),
            lost,
        };
        self.next_token += 1;
        let token = T_SUB | (self.next_token & 0xffff_ffff);
        match self.subs.add(token, name.to_string(), fd, to_line(&first)) {
            Ok(interest) => {
                let registered = self.subs.fd(token).map(|fd| {
                    self.epoll
                        .add(fd, EpollEvent::new(flags_for(&interest), token))
                });
                if let Some(Err(e)) = registered {
                    warn!(error = %e, "cannot watch a subscriber; dropped");
                    self.subs.on_ready(token, true);
                } else {
                    debug!(reply = name, lost, "subscribed");
                }
            }
            Err(e) => debug!(reply = name, error = %e, "subscriber gone at once"),
        }
        self.control.keep_reserve();
    }

    /// After each input: its state changes, one line each, to every subscriber.
    pub(super) fn publish_changes(&mut self) {
        let changes = self.core.changes();
        if changes.is_empty() {
            return;
        }
        self.subs.count(changes.len() as u64);
        if self.subs.is_empty() {
            return;
        }
        let lines: Vec<Vec<u8>> = changes
            .iter()
            .map(|c| {
                to_line(&proto::Event {
                    time: crate::core::rfc3339(c.at),
                    unit: c.unit.clone(),
                    from: c.from.map(|s| s.as_str().to_string()),
                    to: c.to.map(|s| s.as_str().to_string()),
                    pid: c.pid,
                    reason: c.reason.clone(),
                    restarts: c.restarts,
                })
            })
            .collect();
        for line in lines {
            for u in self.subs.publish(&line) {
                self.apply_sub_update(u);
            }
        }
    }

    /// A subscriber's FIFO is writable, or its client closed it.
    pub(super) fn on_subscriber(&mut self, token: u64, flags: EpollFlags) {
        let err = flags.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP);
        if let Some(u) = self.subs.on_ready(token, err) {
            self.apply_sub_update(u);
        }
    }

    fn apply_sub_update(&mut self, u: Update) {
        match u {
            Update::Modify { token, interest } => {
                if let Some(fd) = self.subs.fd(token) {
                    let mut ev = EpollEvent::new(flags_for(&interest), token);
                    if let Err(e) = self.epoll.modify(fd, &mut ev) {
                        warn!(error = %e, "cannot watch a subscriber; dropped");
                        if let Some(Update::Remove(r)) = self.subs.on_ready(token, true) {
                            let _ = self.epoll.delete(r.fd.as_fd());
                        }
                    }
                }
            }
            Update::Remove(r) => {
                let _ = self.epoll.delete(r.fd.as_fd());
                match r.why {
                    Gone::Closed => debug!(reply = %r.name, "subscriber gone"),
                    Gone::Dropped(lost) => {
                        if self
                            .limits
                            .allow(&Source::anonymous(Kind::ReplyDropped), Instant::now())
                        {
                            warn!(reply = %r.name, lost, "subscriber dropped: it does not read its events");
                        }
                    }
                }
                drop(r.fd);
                self.control.keep_reserve();
            }
        }
    }
}

pub(super) fn flags_for(i: &Interest) -> EpollFlags {
    match i {
        Interest::Out => EpollFlags::EPOLLOUT,
        Interest::Idle => EpollFlags::empty(),
    }
}

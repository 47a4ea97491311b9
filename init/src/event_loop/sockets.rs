//! `[socket]` as the loop drives it: a unit's listening sockets opened once (and again only
//! when its `[socket]` changes), passed to each start, and for `on_demand` watched in the
//! epoll while the unit is not running: the first connection starts it.

use super::*;

use std::os::fd::RawFd;

use crate::kernel::sockets::{self, Listening};

/// The sockets of a unit, and their watch while it waits for a connection.
#[derive(Debug, Default)]
pub(super) struct UnitSockets {
    pub(super) open: Option<Listening>,
    /// The epoll token while its fds are watched (on_demand, unit not running).
    watch: Option<u64>,
}

impl Engine {
    /// The unit's sockets for this start, opened if they are not (or were for another
    /// `[socket]`): their fds and `LISTEN_FDNAMES`. None: the unit has no `[socket]`.
    pub(super) fn listen_fds(
        &mut self,
        name: &str,
        def: &Unit,
    ) -> Result<Option<(Vec<RawFd>, String)>, String> {
        let Some(spec) = def.socket.as_deref() else {
            self.close_sockets(name);
            return Ok(None);
        };
        let rt = self.units.entry(name.to_string()).or_default();
        if rt.sockets.open.as_ref().is_some_and(|l| &l.spec != spec) {
            self.close_sockets(name);
        }
        let rt = self.units.entry(name.to_string()).or_default();
        if rt.sockets.open.is_none() {
            rt.sockets.open = Some(sockets::open(spec)?);
        }
        Ok(rt.sockets.open.as_ref().map(|l| (l.raw(), l.names())))
    }

    /// Close the unit's sockets (no `[socket]` any more, or another one).
    pub(super) fn close_sockets(&mut self, name: &str) {
        self.unwatch_sockets(name);
        if let Some(l) = self
            .units
            .get_mut(name)
            .and_then(|rt| rt.sockets.open.take())
        {
            sockets::close(l);
        }
    }

    fn unwatch_sockets(&mut self, name: &str) {
        let Some(rt) = self.units.get_mut(name) else {
            return;
        };
        let Some(token) = rt.sockets.watch.take() else {
            return;
        };
        if let Some(l) = &rt.sockets.open {
            for fd in &l.fds {
                let _ = self.epoll.delete(fd.as_fd());
            }
        }
        self.socket_tokens.remove(&token);
    }

    /// An `on_demand` unit that is not running has its sockets watched; any other has not.
    pub(super) fn sync_sockets(&mut self, name: &str) {
        let (def, waiting) = match self.core.get(name) {
            Some(r) => (
                r.def.clone(),
                matches!(r.state, State::Stopped | State::Failed | State::Exited)
                    && !self.core.is_shutting_down(),
            ),
            None => (None, false),
        };
        let Some(def) = def.filter(|d| d.socket.is_some()) else {
            if self
                .units
                .get(name)
                .is_some_and(|rt| rt.sockets.open.is_some())
            {
                self.close_sockets(name);
            }
            return;
        };
        // A disabled unit is started only by hand, a connection included.
        let on_demand = def.enabled && def.socket.as_ref().is_some_and(|s| s.on_demand);
        if !(on_demand && waiting) {
            self.unwatch_sockets(name);
            return;
        }
        if let Err(e) = self.listen_fds(name, &def) {
            warn!(unit = %name, error = %e, "cannot open the unit's sockets");
            if let Some(rt) = self.units.get_mut(name) {
                if !rt.warnings.contains(&e) {
                    rt.warnings.push(e);
                }
            }
            return;
        }
        let Some(rt) = self.units.get_mut(name) else {
            return;
        };
        if rt.sockets.watch.is_some() {
            return;
        }
        self.next_token += 1;
        let token = T_SOCKET | (self.next_token & 0xffff_ffff);
        if let Some(l) = &rt.sockets.open {
            for fd in &l.fds {
                if let Err(e) = self
                    .epoll
                    .add(fd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))
                {
                    warn!(unit = %name, error = %e, "epoll: cannot watch the unit's socket");
                }
            }
        }
        rt.sockets.watch = Some(token);
        self.socket_tokens.insert(token, name.to_string());
    }

    /// A watched socket is readable: start its unit (it accepts the connection).
    pub(super) fn on_socket(&mut self, token: u64) {
        let Some(name) = self.socket_tokens.get(&token).cloned() else {
            return;
        };
        self.unwatch_sockets(&name);
        info!(unit = %name, "a connection is waiting: starting the unit");
        self.feed(Input::Command(Command::Start(name)));
    }
}

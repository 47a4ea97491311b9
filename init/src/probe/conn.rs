//! The non-blocking sockets of tcp and http checks: connect, the HTTP request and its
//! answer's verdict.

use super::*;

impl Probes {
    pub(super) fn connect(
        &mut self,
        addr: SocketAddr,
        request: Option<Vec<u8>>,
        unit: &str,
        role: Role,
    ) -> io::Result<Conn> {
        let family = match addr {
            SocketAddr::V4(_) => AddressFamily::Inet,
            SocketAddr::V6(_) => AddressFamily::Inet6,
        };
        let sock = socket::socket(
            family,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        match connect_raw(sock.as_fd(), addr) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let token = self.next_token;
        self.next_token += 1;
        self.epoll
            .add(sock.as_fd(), EpollEvent::new(EpollFlags::EPOLLOUT, token))?;
        self.tokens.insert(token, (unit.to_string(), role));
        Ok(Conn {
            sock,
            token,
            connected: false,
            request,
            sent: 0,
            answer: Vec::new(),
        })
    }

    pub(super) fn close(&mut self, c: Conn) {
        let _ = self.epoll.delete(c.sock.as_fd());
        self.tokens.remove(&c.token);
    }

    pub(super) fn on_socket(&mut self, token: u64, out: &mut Vec<Action>) {
        let Some((unit, role)) = self.tokens.get(&token).cloned() else {
            return;
        };
        let conn = match role {
            Role::Ready => self.take_ready_conn(&unit),
            Role::Health => match self.health.get_mut(&unit).and_then(|h| h.running.take()) {
                Some(Running::Conn(c)) => Some(c),
                other => {
                    if let Some(h) = self.health.get_mut(&unit) {
                        h.running = other;
                    }
                    None
                }
            },
        };
        let Some(mut c) = conn.filter(|c| c.token == token) else {
            return;
        };
        let step = self.advance(&mut c);
        match (role, step) {
            (Role::Ready, ConnStep::Good) => {
                self.close(c);
                info!(unit, "tcp readiness: connected");
                out.push(Action::Ready(unit.clone()));
                self.stop_ready(&unit);
            }
            (Role::Ready, ConnStep::Bad(why)) => {
                self.close(c);
                debug!(unit, why, "tcp readiness attempt failed");
                self.tcp_retry_later(&unit);
            }
            (Role::Ready, ConnStep::Pending) => {
                if let Some(ReadyProbe {
                    kind: ReadyKind::Tcp { conn, .. },
                }) = self.ready.get_mut(&unit)
                {
                    *conn = Some(c);
                }
            }
            (Role::Health, ConnStep::Good) => {
                self.close(c);
                self.health_result(&unit, true, "", out);
            }
            (Role::Health, ConnStep::Bad(why)) => {
                self.close(c);
                self.health_result(&unit, false, &why, out);
            }
            (Role::Health, ConnStep::Pending) => {
                if let Some(h) = self.health.get_mut(&unit) {
                    h.running = Some(Running::Conn(c));
                }
            }
        }
    }

    /// Move a connection on as far as it goes without blocking.
    pub(super) fn advance(&mut self, c: &mut Conn) -> ConnStep {
        if !c.connected {
            match socket::getsockopt(&c.sock, sockopt::SocketError) {
                Ok(0) => c.connected = true,
                Ok(e) => return ConnStep::Bad(nix::Error::from_raw(e).to_string()),
                Err(e) => return ConnStep::Bad(e.to_string()),
            }
            if c.request.is_none() {
                return ConnStep::Good;
            }
        }
        let Some(req) = c.request.as_ref() else {
            return ConnStep::Good;
        };
        while c.sent < req.len() {
            match socket::send(c.sock.as_raw_fd(), &req[c.sent..], MsgFlags::MSG_NOSIGNAL) {
                Ok(n) => c.sent += n,
                Err(nix::Error::EAGAIN) => return ConnStep::Pending,
                Err(nix::Error::EINTR) => continue,
                Err(e) => return ConnStep::Bad(format!("sending the request: {e}")),
            }
            if c.sent == req.len() {
                let mut ev = EpollEvent::new(EpollFlags::EPOLLIN, c.token);
                if let Err(e) = self.epoll.modify(c.sock.as_fd(), &mut ev) {
                    return ConnStep::Bad(e.to_string());
                }
                return ConnStep::Pending;
            }
        }
        let mut buf = [0u8; 4096];
        loop {
            match socket::recv(c.sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return http_verdict(&c.answer, true),
                Ok(n) => {
                    c.answer.extend_from_slice(&buf[..n]);
                    match http_verdict(&c.answer, false) {
                        ConnStep::Pending if c.answer.len() > MAX_HTTP_HEAD => {
                            return ConnStep::Bad("answer head too large".into())
                        }
                        ConnStep::Pending => continue,
                        done => return done,
                    }
                }
                Err(nix::Error::EAGAIN) => return ConnStep::Pending,
                Err(nix::Error::EINTR) => continue,
                Err(e) => return ConnStep::Bad(format!("reading the answer: {e}")),
            }
        }
    }
}

/// Judge an HTTP answer (head) so far: 2xx and 3xx are good. `eof`: no more will come.
pub(super) fn http_verdict(answer: &[u8], eof: bool) -> ConnStep {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(answer) {
        Ok(httparse::Status::Complete(_)) => match resp.code {
            Some(c) if (200..400).contains(&c) => ConnStep::Good,
            Some(c) => ConnStep::Bad(format!("HTTP {c}")),
            None => ConnStep::Bad("no status".into()),
        },
        Ok(httparse::Status::Partial) if !eof => ConnStep::Pending,
        Ok(httparse::Status::Partial) => ConnStep::Bad("answer cut short".into()),
        Err(e) => ConnStep::Bad(format!("bad HTTP answer: {e}")),
    }
}

pub(super) fn resolve_target(check: &HealthCheck) -> Result<Target, String> {
    match check {
        HealthCheck::Tcp(a) => crate::hosts::resolve(a).map(Target::Tcp),
        HealthCheck::Exec(argv) => Ok(Target::Exec(argv.clone())),
        HealthCheck::Http(url) => {
            let (hostport, path) = parse_http_url(url)?;
            let addr = crate::hosts::resolve(&hostport)?;
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: colony-health\r\nAccept: */*\r\nConnection: close\r\n\r\n"
            )
            .into_bytes();
            Ok(Target::Http { addr, request })
        }
    }
}

/// `http://HOST[:PORT][/PATH]` -> (`HOST:PORT`, `/PATH`).
pub fn parse_http_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs can be checked"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url}: no host"));
    }
    let has_port = match authority.rfind(':') {
        Some(i) => !authority[i..].contains(']'),
        None => false,
    };
    let hostport = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((hostport, path.to_string()))
}

/// connect(2) on a non-blocking socket (nix's inet addresses need its `net` feature).
pub(super) fn connect_raw(sock: BorrowedFd, addr: SocketAddr) -> io::Result<()> {
    // SAFETY: the sockaddr structs are plain data, filled field by field, and passed with
    // their own size.
    let r = unsafe {
        match addr {
            SocketAddr::V4(a) => {
                let mut sa: libc::sockaddr_in = std::mem::zeroed();
                sa.sin_family = libc::AF_INET as libc::sa_family_t;
                sa.sin_port = a.port().to_be();
                sa.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
                libc::connect(
                    sock.as_raw_fd(),
                    &sa as *const libc::sockaddr_in as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
            SocketAddr::V6(a) => {
                let mut sa: libc::sockaddr_in6 = std::mem::zeroed();
                sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sa.sin6_port = a.port().to_be();
                sa.sin6_addr.s6_addr = a.ip().octets();
                sa.sin6_flowinfo = a.flowinfo();
                sa.sin6_scope_id = a.scope_id();
                libc::connect(
                    sock.as_raw_fd(),
                    &sa as *const libc::sockaddr_in6 as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

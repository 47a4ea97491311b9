//! `[socket]`: listening sockets colony-init opens once and passes to each start of the unit
//! (systemd's `LISTEN_FDS`), and `on_demand` starts.

use std::net::SocketAddr;
use std::path::PathBuf;

/// `[socket]`'s keys.
pub const KEYS: &[&str] = &["listen", "on_demand", "mode", "backlog"];

/// Most sockets one unit may listen on.
pub const MAX_LISTEN: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct Socket {
    pub listen: Vec<Listen>,
    /// Not started with the others: at the first connection (or datagram).
    pub on_demand: bool,
    /// The mode of unix socket files (default 0666, as systemd's SocketMode).
    pub mode: u32,
    /// listen(2)'s backlog (default 4096, clamped by net.core.somaxconn).
    pub backlog: u32,
}

impl Default for Socket {
    fn default() -> Self {
        Socket {
            listen: Vec::new(),
            on_demand: false,
            mode: 0o666,
            backlog: 4096,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Listen {
    /// `tcp:HOST:PORT` (IP literal; `[::1]:80` for IPv6).
    Tcp(SocketAddr),
    /// `udp:HOST:PORT`.
    Udp(SocketAddr),
    /// `unix:/PATH`: a stream socket file.
    Unix(PathBuf),
    /// `unix-dgram:/PATH`.
    UnixDgram(PathBuf),
}

impl Listen {
    /// The text it was written as (its `LISTEN_FDNAMES` entry is this, too, less unsafe bytes).
    pub fn text(&self) -> String {
        match self {
            Listen::Tcp(a) => format!("tcp:{a}"),
            Listen::Udp(a) => format!("udp:{a}"),
            Listen::Unix(p) => format!("unix:{}", p.display()),
            Listen::UnixDgram(p) => format!("unix-dgram:{}", p.display()),
        }
    }
}

/// `tcp:127.0.0.1:8080`, `udp:[::1]:53`, `unix:/run/x.sock`, `unix-dgram:/run/x`.
pub fn parse_listen(s: &str) -> Result<Listen, String> {
    const HINT: &str = "write \"tcp:127.0.0.1:8080\", \"udp:[::1]:53\", \"unix:/run/NAME.sock\" or \"unix-dgram:/run/NAME\"";
    let (kind, rest) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` has no kind; {HINT}"))?;
    let addr = |r: &str| -> Result<SocketAddr, String> {
        r.parse::<SocketAddr>()
            .map_err(|_| format!("`{r}` is not an IP address and port; {HINT}"))
    };
    let path = |r: &str| -> Result<PathBuf, String> {
        if !r.starts_with('/') || r.contains('\0') {
            return Err(format!("`{r}` is not an absolute path; {HINT}"));
        }
        // sun_path holds 107 bytes and a NUL.
        if r.len() > 107 {
            return Err(format!(
                "`{r}` is longer than a socket path may be (107 bytes)"
            ));
        }
        Ok(PathBuf::from(r))
    };
    match kind {
        "tcp" => addr(rest).map(Listen::Tcp),
        "udp" => addr(rest).map(Listen::Udp),
        "unix" => path(rest).map(Listen::Unix),
        "unix-dgram" => path(rest).map(Listen::UnixDgram),
        _ => Err(format!("unknown socket kind `{kind}`; {HINT}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_forms() {
        assert_eq!(
            parse_listen("tcp:127.0.0.1:8080"),
            Ok(Listen::Tcp("127.0.0.1:8080".parse().unwrap()))
        );
        assert_eq!(
            parse_listen("udp:[::1]:53"),
            Ok(Listen::Udp("[::1]:53".parse().unwrap()))
        );
        assert_eq!(
            parse_listen("unix:/run/x.sock"),
            Ok(Listen::Unix("/run/x.sock".into()))
        );
        for bad in [
            "8080",
            "tcp:localhost:80",
            "unix:rel.sock",
            "sctp:1.2.3.4:5",
        ] {
            assert!(parse_listen(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_listen("tcp:127.0.0.1:8080").unwrap().text(),
            "tcp:127.0.0.1:8080"
        );
    }
}

//! `HOST:PORT` to a socket address without ever waiting on the network.
//!
//! The probes run in PID 1's only thread: a DNS lookup there (`getaddrinfo`) can block the
//! whole loop for the resolver's timeouts, and with it reaping, restarts and control. So a
//! host is an IP literal or a name in `/etc/hosts` (read afresh, a local file), with
//! `localhost` known even without one. Anything else is refused with a hint; a name that
//! needs DNS is checked with an exec probe instead (`exec = ["curl", "-f", URL]`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

/// The system's hosts file.
pub const HOSTS: &str = "/etc/hosts";

/// `HOST:PORT` (`[V6]:PORT` for an IPv6 literal) to an address, looking names up in `hosts`.
pub fn resolve_in(addr: &str, hosts: &Path) -> Result<SocketAddr, String> {
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(a);
    }
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{addr}: expected HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{addr}: bad port `{port}`"))?;
    let text = std::fs::read_to_string(hosts).unwrap_or_default();
    lookup(&text, host)
        .or_else(|| host.eq_ignore_ascii_case("localhost").then_some(IpAddr::V4(Ipv4Addr::LOCALHOST)))
        .map(|ip| SocketAddr::new(ip, port))
        .ok_or_else(|| {
            format!(
                "{host} is neither an IP address nor a name in {}: colony-init never waits on DNS (use an exec check for such a name)",
                hosts.display()
            )
        })
}

/// [`resolve_in`] with `/etc/hosts`.
pub fn resolve(addr: &str) -> Result<SocketAddr, String> {
    resolve_in(addr, Path::new(HOSTS))
}

/// The address of `name` in a hosts file's text: its first IPv4 line, else its first IPv6
/// one (most programs try IPv4 first for `localhost`). Names are case-insensitive.
fn lookup(text: &str, name: &str) -> Option<IpAddr> {
    let mut v6 = None;
    for line in text.lines() {
        let mut words = line.split('#').next().unwrap_or("").split_whitespace();
        let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
            continue;
        };
        if words.any(|w| w.eq_ignore_ascii_case(name)) {
            if ip.is_ipv4() {
                return Some(ip);
            }
            v6.get_or_insert(ip);
        }
    }
    v6
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
        ff02::1 ip6-allnodes\n# 10.0.0.9 commented\n10.1.2.3   db.internal db  # the database\n\
        fe80::1 only6\n";

    fn hosts_file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn literals_need_no_file() {
        let none = Path::new("/nonexistent/hosts");
        assert_eq!(
            resolve_in("10.0.0.1:80", none).unwrap(),
            "10.0.0.1:80".parse().unwrap()
        );
        assert_eq!(
            resolve_in("[::1]:8080", none).unwrap(),
            "[::1]:8080".parse().unwrap()
        );
        assert_eq!(
            resolve_in("localhost:99", none).unwrap(),
            "127.0.0.1:99".parse().unwrap()
        );
    }

    #[test]
    fn names_come_from_the_hosts_file() {
        let f = hosts_file(DEBIAN);
        let r = |a: &str| resolve_in(a, f.path());
        assert_eq!(r("db:5432").unwrap(), "10.1.2.3:5432".parse().unwrap());
        assert_eq!(r("DB.Internal:1").unwrap(), "10.1.2.3:1".parse().unwrap());
        assert_eq!(r("localhost:7").unwrap(), "127.0.0.1:7".parse().unwrap());
        assert_eq!(r("only6:7").unwrap(), "[fe80::1]:7".parse().unwrap());
        assert_eq!(r("ip6-loopback:7").unwrap(), "[::1]:7".parse().unwrap());
    }

    #[test]
    fn other_names_are_refused_without_a_lookup() {
        let f = hosts_file(DEBIAN);
        let e = resolve_in("example.com:80", f.path()).unwrap_err();
        assert!(e.contains("never waits on DNS"), "{e}");
        assert!(resolve_in("commented:1", f.path()).is_err());
        assert!(resolve_in("db", f.path())
            .unwrap_err()
            .contains("HOST:PORT"));
        assert!(resolve_in("db:http", f.path())
            .unwrap_err()
            .contains("bad port"));
    }
}

//! `[socket]`: the listening sockets colony-init opens once for a unit and keeps open across
//! its restarts (and a reexec), passed to each start at fds 3.. (`LISTEN_FDS`).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrIn, SockaddrIn6, UnixAddr,
};
use nix::sys::stat::{fchmodat, fstatat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use units::socket::{Listen, Socket};

use crate::kernel::safe_path::{self, Dir};

/// A unit's open listening sockets, in the order of `listen`.
#[derive(Debug)]
pub struct Listening {
    /// What they were opened for (a changed `[socket]` opens them afresh).
    pub spec: Socket,
    pub fds: Vec<OwnedFd>,
}

impl Listening {
    /// `LISTEN_FDNAMES`: each socket's text with `:` (its separator) left out.
    pub fn names(&self) -> String {
        self.spec
            .listen
            .iter()
            .map(|l| l.text().replace(':', "_"))
            .collect::<Vec<_>>()
            .join(":")
    }

    pub fn raw(&self) -> Vec<RawFd> {
        self.fds.iter().map(|f| f.as_raw_fd()).collect()
    }
}

/// Open every socket of `spec` (CLOEXEC: the child places its own copies at 3..).
pub fn open(spec: &Socket) -> Result<Listening, String> {
    let mut fds = Vec::with_capacity(spec.listen.len());
    for l in &spec.listen {
        fds.push(open_one(l, spec).map_err(|e| format!("[socket] {}: {e}", l.text()))?);
    }
    Ok(Listening {
        spec: spec.clone(),
        fds,
    })
}

/// Take over sockets kept through a reexec (the new image's fds, CLOEXEC set again).
pub fn adopt(spec: &Socket, raw: &[RawFd]) -> Listening {
    let fds = raw
        .iter()
        .map(|&fd| {
            // SAFETY: the handover names these fds as ours, inherited and owned by nobody else.
            let f = unsafe { OwnedFd::from_raw_fd(fd) };
            let _ = nix::fcntl::fcntl(
                &f,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            );
            f
        })
        .collect();
    Listening {
        spec: spec.clone(),
        fds,
    }
}

fn open_one(l: &Listen, spec: &Socket) -> Result<OwnedFd, String> {
    // Blocking, as systemd passes them (a server's accept(2) waits); colony-init only
    // polls them for readability.
    let flags = SockFlag::SOCK_CLOEXEC;
    let backlog = Backlog::new(spec.backlog as i32).map_err(|e| e.to_string())?;
    let e = |e: Errno| e.to_string();
    match l {
        Listen::Tcp(a) | Listen::Udp(a) => {
            let (ty, stream) = match l {
                Listen::Tcp(_) => (SockType::Stream, true),
                _ => (SockType::Datagram, false),
            };
            let fam = if a.is_ipv4() {
                AddressFamily::Inet
            } else {
                AddressFamily::Inet6
            };
            let fd = socket(fam, ty, flags, None).map_err(e)?;
            setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(e)?;
            match a {
                std::net::SocketAddr::V4(v4) => bind(fd.as_raw_fd(), &SockaddrIn::from(*v4)),
                std::net::SocketAddr::V6(v6) => {
                    setsockopt(&fd, sockopt::Ipv6V6Only, &true).map_err(e)?;
                    bind(fd.as_raw_fd(), &SockaddrIn6::from(*v6))
                }
            }
            .map_err(e)?;
            if stream {
                listen(&fd, backlog).map_err(e)?;
            }
            Ok(fd)
        }
        Listen::Unix(p) | Listen::UnixDgram(p) => {
            let ty = match l {
                Listen::Unix(_) => SockType::Stream,
                _ => SockType::Datagram,
            };
            let (dir, name) = parent_of(p)?;
            clear_stale(&dir, name)?;
            let fd = socket(AddressFamily::Unix, ty, flags, None).map_err(e)?;
            // Bound through the directory's fd (its /proc/self/fd link), so no link put on
            // the path after it was walked is followed; by path where /proc is missing.
            let via_fd = Path::new("/proc/self/fd")
                .join(dir.fd().as_raw_fd().to_string())
                .join(name);
            let bound = match UnixAddr::new(via_fd.as_path()) {
                Ok(addr) => match bind(fd.as_raw_fd(), &addr) {
                    Err(Errno::ENOENT) if !Path::new("/proc/self/fd").exists() => None,
                    r => Some(r),
                },
                Err(_) => None,
            };
            match bound {
                Some(r) => r.map_err(e)?,
                None => bind(fd.as_raw_fd(), &UnixAddr::new(p.as_path()).map_err(e)?).map_err(e)?,
            }
            // In a directory reached without links (root's or colony-init's own).
            fchmodat(
                dir.fd(),
                name,
                Mode::from_bits_truncate(spec.mode),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(e)?;
            if ty == SockType::Stream {
                listen(&fd, backlog).map_err(e)?;
            }
            Ok(fd)
        }
    }
}

fn parent_of(p: &Path) -> Result<(Dir, &std::ffi::OsStr), String> {
    let (parent, name) = safe_path::split(p).map_err(|e| e.to_string())?;
    let dir =
        Dir::open(parent, Some(Mode::from_bits_truncate(0o755))).map_err(|e| e.to_string())?;
    Ok((dir, name))
}

/// A socket file left by a last run goes; anything else in its place is an error.
fn clear_stale(dir: &Dir, name: &std::ffi::OsStr) -> Result<(), String> {
    match fstatat(dir.fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFSOCK => {
            unlinkat(dir.fd(), name, UnlinkatFlags::NoRemoveDir).map_err(|e| e.to_string())
        }
        Ok(_) => Err(format!(
            "{} exists and is not a socket",
            dir.path().join(name).display()
        )),
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(format!("{}: {e}", String::from_utf8_lossy(name.as_bytes()))),
    }
}

/// Close a unit's sockets; a unix socket's file goes with them.
pub fn close(l: Listening) {
    for (listen, fd) in l.spec.listen.iter().zip(l.fds) {
        drop(fd);
        if let Listen::Unix(p) | Listen::UnixDgram(p) = listen {
            if let Ok((dir, name)) = parent_of(p) {
                let _ = clear_stale(&dir, name);
            }
        }
    }
}

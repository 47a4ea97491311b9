//! colony-init's control FIFO, from colony-web: a request and its one JSON reply, or the
//! event stream (`subscribe`). Blocking code, run on tokio's blocking threads or a thread
//! of its own; the wire format is `units::proto`'s.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use units::proto::{Request, Verb, CONTROL_FIFO, MAX_REQUEST, REPLY_DIR};

#[derive(Debug, thiserror::Error)]
pub enum FifoError {
    #[error("colony-init is not running (nothing reads {0})")]
    NotRunning(PathBuf),
    #[error("colony-init did not answer in time")]
    Timeout,
    #[error("the request is too long")]
    TooLong,
    #[error("{0}")]
    Sys(String),
}

/// Removes the reply FIFO however the request ends.
struct Fifo(PathBuf);

impl Drop for Fifo {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn unique() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom::getrandom(&mut b);
    format!("web-{}-{:016x}", std::process::id(), u64::from_ne_bytes(b))
}

/// Our reply FIFO `name` in RUN/reply, open for reading (non-blocking), and the request sent.
fn open_and_send(
    run: &Path,
    name: &str,
    verb: Verb,
    args: &[String],
) -> Result<(Fifo, OwnedFd), FifoError> {
    let control = run.join(CONTROL_FIFO);
    let path = run.join(REPLY_DIR).join(name);
    let _ = std::fs::remove_file(&path);
    nix::unistd::mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR)
        .map_err(|e| FifoError::Sys(format!("cannot create {}: {e}", path.display())))?;
    let guard = Fifo(path.clone());
    let reader = open(
        &path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| FifoError::Sys(format!("cannot open {}: {e}", path.display())))?;
    let _ = nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
    let line = Request {
        reply: Some(name.to_string()),
        verb,
        args: args.to_vec(),
    }
    .to_line();
    if line.len() > MAX_REQUEST {
        return Err(FifoError::TooLong);
    }
    let w = match open(
        &control,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(w) => w,
        Err(Errno::ENXIO | Errno::ENOENT) => return Err(FifoError::NotRunning(control)),
        Err(e) => {
            return Err(FifoError::Sys(format!(
                "cannot open {}: {e}",
                control.display()
            )))
        }
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match nix::unistd::write(&w, line.as_bytes()) {
            Ok(_) => break,
            Err(Errno::EAGAIN) => wait(&w, PollFlags::POLLOUT, deadline)?,
            Err(Errno::EINTR) => {}
            Err(Errno::EPIPE) => return Err(FifoError::NotRunning(control)),
            Err(e) => return Err(FifoError::Sys(format!("cannot write the request: {e}"))),
        }
    }
    Ok((guard, reader))
}

fn wait(fd: &OwnedFd, events: PollFlags, deadline: Instant) -> Result<(), FifoError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(FifoError::Timeout);
        }
        let mut fds = [PollFd::new(fd.as_fd(), events)];
        let ms = left.as_millis().clamp(1, 60_000) as u16;
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => return Ok(()),
            Err(e) => return Err(FifoError::Sys(format!("poll: {e}"))),
        }
    }
}

/// Send `VERB ARGS...`; the reply's bytes (one JSON document).
pub fn request(
    run: &Path,
    verb: Verb,
    args: &[String],
    timeout: Duration,
) -> Result<Vec<u8>, FifoError> {
    let (_guard, reader) = open_and_send(run, &unique(), verb, args)?;
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        wait(&reader, PollFlags::POLLIN, deadline)?;
        loop {
            match nix::unistd::read(&reader, &mut buf) {
                Ok(0) => return Ok(out),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(FifoError::Sys(format!("reading the reply: {e}"))),
            }
        }
    }
}

/// `subscribe` under the reply FIFO `name`: each line to `on_line` until it returns false
/// or colony-init closes the stream (dropped us, or ended).
pub fn subscribe(
    run: &Path,
    name: &str,
    mut on_line: impl FnMut(&[u8]) -> bool,
) -> Result<(), FifoError> {
    let (_guard, reader) = open_and_send(run, name, Verb::Subscribe, &[])?;
    wait(
        &reader,
        PollFlags::POLLIN,
        Instant::now() + Duration::from_secs(30),
    )?;
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match nix::unistd::read(&reader, &mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=i).collect();
                    if !on_line(&line) {
                        return Ok(());
                    }
                }
            }
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::NONE);
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(FifoError::Sys(format!("reading the events: {e}"))),
        }
    }
}

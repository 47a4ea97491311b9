//! Talking to colony-init: one request line into `RUN/control`, one JSON reply out of a FIFO
//! of our own in `RUN/reply/`.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use units::proto::{exit, Reply, Request, Verb, CONTROL_FIFO, MAX_REQUEST, REPLY_DIR};

use crate::CliError;

/// The RUN directory: `--run-dir`, else colony-init's own default (env `COLONY_RUN_DIR`,
/// `/run/colony` as root, else `$XDG_RUNTIME_DIR/colony`: units' `paths`).
pub fn run_dir(flag: Option<&Path>) -> PathBuf {
    match flag {
        Some(p) => p.to_path_buf(),
        None => units::paths::run_dir(),
    }
}

pub struct Client {
    pub run_dir: PathBuf,
    pub timeout: Duration,
}

/// Set by SIGINT/SIGTERM/SIGHUP while a request waits, so the reply FIFO is removed.
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);
static HANDLERS: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    INTERRUPTED.store(sig, Ordering::SeqCst);
}

fn install_handlers() {
    if HANDLERS.swap(true, Ordering::SeqCst) {
        return;
    }
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    // No SA_RESTART: poll returns EINTR and the request cleans up.
    let act = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores into an atomic.
        let _ = unsafe { sigaction(s, &act) };
    }
}

/// Removes the reply FIFO however the request ends.
struct Fifo(PathBuf);

impl Drop for Fifo {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn not_running(run: &Path) -> CliError {
    CliError::new(
        exit::NO_ANSWER,
        format!(
            "colony-init is not running (nothing reads {}); start it with `colony-init`",
            run.join(CONTROL_FIFO).display()
        ),
    )
}

fn random_suffix() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // Mix so consecutive calls differ in every bit (splitmix64).
    let mut z = t.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The reply FIFO's capacity we ask for (the unprivileged maximum by default).
const REPLY_PIPE_SIZE: i32 = 1 << 20;

impl Client {
    /// The control FIFO's path, and a reply FIFO (`name`, else a new one) made and opened
    /// for reading, removed when the guard drops.
    fn open_reply(&self, name: Option<&str>) -> Result<(PathBuf, String, Fifo, OwnedFd), CliError> {
        let reply_dir = self.run_dir.join(REPLY_DIR);
        let control = self.run_dir.join(CONTROL_FIFO);
        if !control.exists() || !reply_dir.is_dir() {
            return Err(not_running(&self.run_dir));
        }
        install_handlers();
        let (name, fifo) = match name {
            Some(n) => {
                let path = reply_dir.join(n);
                nix::unistd::mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR).map_err(|e| {
                    CliError::failed(format!("cannot create {}: {e}", path.display()))
                })?;
                (n.to_string(), path)
            }
            None => make_fifo(&reply_dir)?,
        };
        let guard = Fifo(fifo.clone());
        // Our reading end first: colony-init's non-blocking open for writing needs a reader.
        let reader = open(
            &fifo,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| CliError::failed(format!("cannot open {}: {e}", fifo.display())))?;
        // Room for a whole status of many units, so colony-init writes it in one go instead
        // of a pipe's worth per wakeup (the default is 64 KiB; refused is fine).
        let _ = nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_SETPIPE_SZ(REPLY_PIPE_SIZE));
        Ok((control, name, guard, reader))
    }

    /// Send `VERB ARGS...` and wait for the reply.
    pub fn request(&self, verb: Verb, args: &[String]) -> Result<Reply, CliError> {
        self.request_as(verb, args)
    }

    /// As [`Client::request`], parsed straight into `T` (a typed reply skips building a
    /// `serde_json::Value` of a 1000-unit status).
    pub fn request_as<T: serde::de::DeserializeOwned>(
        &self,
        verb: Verb,
        args: &[String],
    ) -> Result<T, CliError> {
        let (control, name, _guard, reader) = self.open_reply(None)?;
        let line = Request {
            reply: Some(name),
            verb,
            args: args.to_vec(),
        }
        .to_line();
        if line.len() > MAX_REQUEST {
            return Err(CliError::new(
                exit::USAGE,
                format!("the request is longer than {MAX_REQUEST} bytes: name fewer targets"),
            ));
        }
        let deadline = Instant::now() + self.timeout;
        self.send(&control, line.as_bytes(), deadline)?;
        let bytes = self.receive(&reader, deadline)?;
        if bytes.is_empty() {
            return Err(CliError::new(
                exit::NO_ANSWER,
                "colony-init closed the reply without an answer; see its log",
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            CliError::failed(format!(
                "colony-init's answer is not understood ({e}); is colonyctl the same version?"
            ))
        })
    }

    /// `subscribe`: the event stream, one JSON line at a time to `on_line` (the first is a
    /// [`units::proto::Subscribed`]) until it returns false, a signal comes (exit 128+N),
    /// or colony-init closes the stream (`Ok(())`: it dropped us for not reading, or it
    /// ended). `name`: the reply FIFO's name, to subscribe again under it and be told how
    /// many events were lost (None: a new one; the name used is returned).
    pub fn subscribe(
        &self,
        name: Option<&str>,
        mut on_line: impl FnMut(&[u8]) -> bool,
    ) -> Result<String, CliError> {
        let (control, name, _guard, reader) = self.open_reply(name)?;
        let line = Request {
            reply: Some(name.clone()),
            verb: Verb::Subscribe,
            args: Vec::new(),
        }
        .to_line();
        let deadline = Instant::now() + self.timeout;
        self.send(&control, line.as_bytes(), deadline)?;
        // The first line within the timeout; then as long as colony-init keeps it open.
        wait(&reader, PollFlags::POLLIN, deadline, self.timeout)?;
        let mut pending = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match nix::unistd::read(&reader, &mut buf) {
                Ok(0) => return Ok(name),
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=i).collect();
                        if !on_line(&line) {
                            return Ok(name);
                        }
                    }
                }
                Err(Errno::EAGAIN) => {
                    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
                    wait(&reader, PollFlags::POLLIN, far, self.timeout)?;
                }
                Err(Errno::EINTR) => check_interrupt()?,
                Err(e) => return Err(CliError::failed(format!("reading the events: {e}"))),
            }
        }
    }

    fn send(&self, control: &Path, line: &[u8], deadline: Instant) -> Result<(), CliError> {
        let w = match open(
            control,
            OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENXIO | Errno::ENOENT) => return Err(not_running(&self.run_dir)),
            Err(Errno::EACCES) => {
                return Err(CliError::failed(format!(
                    "permission denied writing {}: run as colony-init's user or a member of its --control-group",
                    control.display()
                )))
            }
            Err(e) => {
                return Err(CliError::failed(format!(
                    "cannot open {}: {e}",
                    control.display()
                )))
            }
        };
        crate::sigpipe(false);
        let result = self.write_line(&w, control, line, deadline);
        crate::sigpipe(true);
        result
    }

    fn write_line(
        &self,
        w: &OwnedFd,
        control: &Path,
        line: &[u8],
        deadline: Instant,
    ) -> Result<(), CliError> {
        loop {
            // At most PIPE_BUF: written whole or not at all (EAGAIN while the pipe is full).
            match nix::unistd::write(w, line) {
                Ok(_) => return Ok(()),
                Err(Errno::EAGAIN) => {
                    wait(w, PollFlags::POLLOUT, deadline, self.timeout)?;
                }
                Err(Errno::EINTR) => check_interrupt()?,
                Err(Errno::EPIPE) => return Err(not_running(&self.run_dir)),
                Err(e) => {
                    return Err(CliError::failed(format!(
                        "cannot write {}: {e}",
                        control.display()
                    )))
                }
            }
        }
    }

    /// Read the reply FIFO until colony-init closes it. Poll reports nothing before a
    /// writer has opened it, so an EOF read is only taken after poll said so.
    fn receive(&self, reader: &OwnedFd, deadline: Instant) -> Result<Vec<u8>, CliError> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            wait(reader, PollFlags::POLLIN, deadline, self.timeout)?;
            loop {
                match nix::unistd::read(reader, &mut buf) {
                    Ok(0) => return Ok(out),
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(Errno::EAGAIN) => break,
                    Err(Errno::EINTR) => check_interrupt()?,
                    Err(e) => return Err(CliError::failed(format!("reading the reply: {e}"))),
                }
            }
        }
    }
}

fn check_interrupt() -> Result<(), CliError> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => Ok(()),
        sig => Err(CliError::new(128 + sig, "interrupted")),
    }
}

/// Wait until `fd` is ready for `events`, the deadline passes (exit 5) or a signal comes.
fn wait(
    fd: &OwnedFd,
    events: PollFlags,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), CliError> {
    loop {
        check_interrupt()?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(CliError::new(
                exit::NO_ANSWER,
                format!(
                    "colony-init did not answer within {}; it may be busy (try a longer --timeout) or stuck (see its log)",
                    crate::render::duration(timeout)
                ),
            ));
        }
        let mut fds = [PollFd::new(fd.as_fd(), events)];
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => continue,
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(CliError::failed(format!("poll: {e}"))),
        }
    }
}

fn make_fifo(dir: &Path) -> Result<(String, PathBuf), CliError> {
    let pid = std::process::id();
    let mut last = Errno::EEXIST;
    for _ in 0..16 {
        let name = format!("ctl-{pid}-{:016x}", random_suffix());
        let path = dir.join(&name);
        match nix::unistd::mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR) {
            Ok(()) => return Ok((name, path)),
            Err(Errno::EEXIST) => continue,
            Err(e) => {
                last = e;
                break;
            }
        }
    }
    let hint = if last == Errno::EACCES {
        ": run as colony-init's user or a member of its --control-group"
    } else {
        ""
    };
    Err(CliError::failed(format!(
        "cannot create a reply FIFO in {}: {last}{hint}",
        dir.display()
    )))
}

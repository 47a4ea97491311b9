//! Starting a unit's process: clone3/fork with an async-signal-safe child path.
//!
//! Everything the child needs (argv/envp pointer arrays, fds, credentials) is prepared in
//! the parent. Between clone and execve the child only issues raw syscalls: no allocation,
//! no locks, no Rust std I/O. A failure in the child is sent back through a CLOEXEC pipe as
//! (step, errno), so [`spawn`] reports "no such file" synchronously instead of a silent exit.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::kernel::creds::Creds;

mod child;
mod error;
mod limits;
mod pidfd;

use child::child;
pub use error::{OsError, SpawnError, Step};
use limits::CHILD_NOFILE;
pub use limits::{own_permitted_caps, raise_fd_limit};
pub use pidfd::{pidfd_open, send_signal, try_wait, wait};

/// The kernel's CLONE_INTO_CGROUP (Linux 5.7). libc's constant is an overflowed 0: never use it.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// clone3 takes its flags as u64; libc has these two as c_int.
const CLONE_PIDFD: u64 = libc::CLONE_PIDFD as u64;
const CLONE_FILES: u64 = libc::CLONE_FILES as u64;
/// PATH used to resolve a bare `exec[0]` when the unit's environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the child goes before its first instruction.
#[derive(Debug, Clone, Copy)]
pub enum Placement<'a> {
    /// Stay in colony-init's cgroup (no usable cgroupfs: the unit gets a process group).
    None,
    /// clone3 with CLONE_INTO_CGROUP into this v2 cgroup directory fd.
    CloneInto(BorrowedFd<'a>),
    /// v1: `cgroup.procs` fds opened (O_WRONLY) before fork; the child writes "0" to each.
    Procs(&'a [OwnedFd]),
    /// Hybrid: clone into the v2 directory (tracking), then join the v1 hierarchies (limits).
    CloneIntoAndProcs(BorrowedFd<'a>, &'a [OwnedFd]),
}

pub struct SpawnRequest<'a> {
    /// argv; `argv[0]` is the program: a path, or a bare name looked up in the PATH of `envp`
    /// (else [`DEFAULT_PATH`]) in the parent.
    pub argv: &'a [CString],
    /// `KEY=VALUE` strings: the whole environment of the program.
    pub envp: &'a [CString],
    pub cwd: Option<&'a CStr>,
    pub creds: &'a Creds,
    /// None: inherit colony-init's own fd 1 / fd 2. stdin is always /dev/null.
    pub stdout: Option<BorrowedFd<'a>>,
    pub stderr: Option<BorrowedFd<'a>>,
    pub placement: Placement<'a>,
    /// setsid(): the child leads a new session and process group (its pgid = its pid), so a
    /// group kill reaches what it forks and no terminal signal from colony-init's tty does.
    pub new_process_group: bool,
    /// `[sandbox]`: namespaces and mounts before the credentials change, filters last.
    pub sandbox: Option<&'a crate::kernel::sandbox::Prepared>,
    /// nice, OOM score, rlimits, an optional working directory, listening sockets.
    pub extras: Option<&'a crate::kernel::exec_setup::Extras>,
}

#[derive(Debug)]
pub struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

/// A bare `name` looked up in `path_env` (colon-separated); a name with a `/` is returned as is.
/// Only regular files with an execute bit count.
pub fn resolve_exec(name: &str, path_env: &str) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    path_env
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// The kernel's `struct clone_args` (CLONE_ARGS_SIZE_VER2, with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Everything the child touches, as raw values prepared before clone.
#[derive(Clone, Copy)]
struct ChildPlan<'a> {
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    devnull: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    procs: &'a [RawFd],
    groups: Option<&'a [libc::gid_t]>,
    creds: &'a Creds,
    new_session: bool,
    errpipe: RawFd,
    /// Where the child writes its own pid as decimal digits and a NUL (the value of an
    /// environment entry such as `WATCHDOG_PID=`), or null. Points into a buffer of the
    /// parent's frame: the child writes its own copy (no CLONE_VM).
    pid_slot: [*mut u8; 2],
    /// The open-files limit to set (a unit's `nofile`, else [`raise_fd_limit`]'s); rlim_max 0:
    /// none.
    nofile: libc::rlimit,
    /// Cloned with CLONE_FILES: the child first takes a private table of the fds below this
    /// (every fd above is in a slot below it, see child_fds.rs), then sets `left`. 0: not so.
    unshare_below: RawFd,
    left: *const std::sync::atomic::AtomicU32,
    sandbox: Option<&'a crate::kernel::sandbox::Prepared>,
    extras: Option<&'a crate::kernel::exec_setup::Extras>,
    /// The listening sockets to place at 3.. (in slots when cloned with CLONE_FILES).
    listen: &'a [RawFd],
    /// The pidfd whose namespaces the sandbox joins, as the child sees it (a slot), or -1.
    sandbox_join: RawFd,
    /// `[tty]`'s terminal (a slot when cloned with CLONE_FILES), or -1.
    tty: RawFd,
}

/// Starts the program of `req`. On `Err(Exec{..})` the child has already been reaped.
pub fn spawn(req: &SpawnRequest) -> Result<Spawned, SpawnError> {
    let (child, report) = start_impl(req, true, &[])?;
    finish(child, &report)
}

/// [`spawn`], with the environment variable `var` set to the child's own pid (systemd's
/// `WATCHDOG_PID`), which only the child can know; `var` must not be in `req.envp`.
pub fn spawn_with_pid_var(req: &SpawnRequest, var: &CStr) -> Result<Spawned, SpawnError> {
    let (child, report) = start_impl(req, true, &[var])?;
    finish(child, &report)
}

/// Starts the program of `req` without waiting for its exec: the returned fd becomes
/// readable (EOF, or the child's failure report) once the child exec'd or gave up, so an
/// event loop can start the next unit meanwhile. Give it to [`finish`] then. `pid_vars`
/// (at most two: `WATCHDOG_PID`, `LISTEN_PID`): as [`spawn_with_pid_var`].
pub fn spawn_nowait(
    req: &SpawnRequest,
    pid_vars: &[&CStr],
) -> Result<(Spawned, OwnedFd), SpawnError> {
    start_impl(req, true, pid_vars)
}

/// The outcome of a [`spawn_nowait`]: `Ok` when the program runs, `Err(Exec)` when its setup
/// or exec failed (the child is reaped then). Blocks only until the child exec'd or exited.
pub fn finish(child: Spawned, report: &OwnedFd) -> Result<Spawned, SpawnError> {
    match read_report(report) {
        Ok(None) => Ok(child),
        Ok(Some((step, errno))) => {
            let _ = wait(child.pidfd.as_fd());
            Err(SpawnError::Exec { step, errno })
        }
        Err(e) => {
            // We cannot tell: treat it as started; the pidfd reports its exit.
            tracing::warn!(pid = child.pid, error = %e, "reading the spawn report failed");
            Ok(child)
        }
    }
}

/// [`spawn`] through the fallback of kernels without clone3 (fork, pidfd_open, and the v2
/// cgroup joined through its cgroup.procs). For tests of that path.
#[doc(hidden)]
pub fn spawn_with_fork(req: &SpawnRequest) -> Result<Spawned, SpawnError> {
    let (child, report) = start_impl(req, false, &[])?;
    finish(child, &report)
}

fn start_impl(
    req: &SpawnRequest,
    use_clone3: bool,
    pid_vars: &[&CStr],
) -> Result<(Spawned, OwnedFd), SpawnError> {
    let first = req.argv.first().ok_or(SpawnError::EmptyArgv)?;
    let path = resolve_program(first, req.envp)?;

    let argv: Vec<*const libc::c_char> = req
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    // `VAR=` then room for the digits of any pid and a NUL, filled in by the child.
    let mut pid_bufs = [[0u8; 96]; 2];
    let mut pid_slot: [*mut u8; 2] = [std::ptr::null_mut(); 2];
    let mut extra: Vec<*const libc::c_char> = Vec::new();
    for (i, (var, pid_buf)) in pid_vars.iter().zip(pid_bufs.iter_mut()).enumerate() {
        let name = var.to_bytes();
        if name.len() + 1 + 12 <= pid_buf.len() {
            pid_buf[..name.len()].copy_from_slice(name);
            pid_buf[name.len()] = b'=';
            let base = pid_buf.as_mut_ptr();
            // SAFETY: the offset is inside pid_buf (checked above).
            pid_slot[i] = unsafe { base.add(name.len() + 1) };
            extra.push(base as *const libc::c_char);
        }
    }
    let envp: Vec<*const libc::c_char> = req
        .envp
        .iter()
        .map(|a| a.as_ptr())
        .chain(extra)
        .chain(std::iter::once(std::ptr::null()))
        .collect();

    let devnull = open_cloexec(c"/dev/null", libc::O_RDONLY).map_err(SpawnError::Setup)?;
    let (err_r, err_w) = pipe_cloexec().map_err(SpawnError::Setup)?;

    let procs: Vec<RawFd> = match req.placement {
        Placement::Procs(fds) | Placement::CloneIntoAndProcs(_, fds) => {
            fds.iter().map(|f| f.as_raw_fd()).collect()
        }
        _ => Vec::new(),
    };
    let into = match req.placement {
        Placement::CloneInto(fd) | Placement::CloneIntoAndProcs(fd, _) => Some(fd.as_raw_fd()),
        _ => None,
    };

    let plan = ChildPlan {
        path: path.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: req.cwd.map_or(std::ptr::null(), |c| c.as_ptr()),
        devnull: devnull.as_raw_fd(),
        stdout: req.stdout.map_or(-1, |f| f.as_raw_fd()),
        stderr: req.stderr.map_or(-1, |f| f.as_raw_fd()),
        procs: &procs,
        groups: req.creds.groups.as_deref(),
        creds: req.creds,
        new_session: req.new_process_group,
        errpipe: err_w.as_raw_fd(),
        pid_slot,
        nofile: match req.creds.nofile {
            Some(n) => libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            },
            None => libc::rlimit {
                rlim_cur: CHILD_NOFILE[0].load(std::sync::atomic::Ordering::Relaxed),
                rlim_max: CHILD_NOFILE[1].load(std::sync::atomic::Ordering::Relaxed),
            },
        },
        unshare_below: 0,
        left: std::ptr::null(),
        sandbox: req.sandbox,
        extras: req.extras,
        listen: req.extras.map_or(&[], |x| &x.listen),
        sandbox_join: req.sandbox.and_then(|s| s.join_fd()).unwrap_or(-1),
        tty: req.extras.and_then(|x| x.tty).map_or(-1, |t| t.fd),
    };

    // The child's fds go into low slots and it leaves colony-init's fd table at once
    // (child_fds.rs); without slots it gets a copy of the whole table, as with fork.
    let mut lent = if use_clone3 {
        crate::kernel::child_fds::lend()
    } else {
        None
    };
    let mut slot_procs = Vec::new();
    let mut slot_listen = Vec::new();
    let shared = lent
        .as_mut()
        .and_then(|l| in_slots(plan, l, &mut slot_procs, &mut slot_listen));

    // clone3 first; an old kernel (no clone3, or no CLONE_INTO_CGROUP) falls back to fork.
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: CLONE_PIDFD
            | if into.is_some() { CLONE_INTO_CGROUP } else { 0 }
            | if shared.is_some() { CLONE_FILES } else { 0 },
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: into.map_or(0, |fd| fd as u64),
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM is a fork; the child runs only `child`, which never
    // returns and uses only async-signal-safe syscalls on memory prepared above.
    let ret = if use_clone3 {
        unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &mut args as *mut CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        }
    } else {
        // SAFETY: setting errno only.
        unsafe { *libc::__errno_location() = libc::ENOSYS };
        -1
    };
    let (pid, pidfd) = if ret == 0 {
        // SAFETY: we are the child.
        unsafe { child(shared.as_ref().unwrap_or(&plan)) }
    } else if ret > 0 {
        // SAFETY: CLONE_PIDFD stored a new fd that we now own.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
        let left = match (&lent, &shared) {
            (Some(l), Some(_)) => l.wait_left(pidfd.as_fd()),
            _ => crate::kernel::child_fds::Left::Yes,
        };
        drop(lent);
        if left == crate::kernel::child_fds::Left::Killed {
            // Reaped by the loop's SIGCHLD handling like any orphan.
            return Err(SpawnError::Setup(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the child did not run within {:?} (a frozen cgroup?); killed",
                    crate::kernel::child_fds::LEAVE_LIMIT
                ),
            )));
        }
        if left == crate::kernel::child_fds::Left::Cannot {
            tracing::warn!("a child cannot leave colony-init's fd table (close_range and unshare refused): children get a full copy from now on");
            let _ = wait(pidfd.as_fd());
            drop((err_w, err_r, devnull));
            return start_impl(req, use_clone3, pid_vars);
        }
        (ret as i32, pidfd)
    } else {
        let e = io::Error::last_os_error();
        drop(lent);
        match e.raw_os_error() {
            Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::E2BIG) => {
                if let Some(dir) = into {
                    // The v2 cgroup is joined through its cgroup.procs instead.
                    let p = openat_wronly(dir, c"cgroup.procs").map_err(SpawnError::Setup)?;
                    let mut all = procs.clone();
                    all.push(p.as_raw_fd());
                    let r = fork_and_pidfd(&ChildPlan {
                        procs: &all,
                        ..plan
                    });
                    drop(p);
                    r?
                } else {
                    fork_and_pidfd(&plan)?
                }
            }
            _ => return Err(SpawnError::Clone(e)),
        }
    };
    drop(err_w);
    drop(devnull);
    Ok((Spawned { pid, pidfd }, err_r))
}

/// `plan` with every fd the child uses copied into a slot, or None when they do not fit.
fn in_slots<'p>(
    plan: ChildPlan<'p>,
    l: &mut crate::kernel::child_fds::Lent,
    procs: &'p mut Vec<RawFd>,
    listen: &'p mut Vec<RawFd>,
) -> Option<ChildPlan<'p>> {
    let devnull = l.place(plan.devnull)?;
    let mut optional = |fd: RawFd| if fd >= 0 { l.place(fd) } else { Some(-1) };
    let stdout = optional(plan.stdout)?;
    let stderr = optional(plan.stderr)?;
    let sandbox_join = optional(plan.sandbox_join)?;
    let tty = optional(plan.tty)?;
    let errpipe = l.place(plan.errpipe)?;
    for &fd in plan.procs {
        procs.push(l.place(fd)?);
    }
    for &fd in plan.listen {
        listen.push(l.place(fd)?);
    }
    Some(ChildPlan {
        devnull,
        stdout,
        stderr,
        errpipe,
        sandbox_join,
        tty,
        procs,
        listen,
        unshare_below: l.low(),
        left: l.arm_word(),
        ..plan
    })
}

fn resolve_program(first: &CString, envp: &[CString]) -> Result<CString, SpawnError> {
    if first.as_bytes().contains(&b'/') {
        return Ok(first.clone());
    }
    let not_found = SpawnError::Exec {
        step: Step::Resolve,
        errno: libc::ENOENT,
    };
    let name = first.to_str().map_err(|_| SpawnError::Exec {
        step: Step::Resolve,
        errno: libc::ENOENT,
    })?;
    let path_env = envp
        .iter()
        .find_map(|e| e.to_bytes().strip_prefix(b"PATH="))
        .and_then(|p| std::str::from_utf8(p).ok())
        .unwrap_or(DEFAULT_PATH);
    let found = resolve_exec(name, path_env).ok_or(not_found)?;
    CString::new(found.into_os_string().into_encoded_bytes()).map_err(|_| SpawnError::Exec {
        step: Step::Resolve,
        errno: libc::ENOENT,
    })
}

fn fork_and_pidfd(plan: &ChildPlan) -> Result<(i32, OwnedFd), SpawnError> {
    // SAFETY: the child runs only `child` (async-signal-safe, never returns).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: we are the child.
        unsafe { child(plan) }
    }
    if pid < 0 {
        return Err(SpawnError::Clone(io::Error::last_os_error()));
    }
    // Our own unreaped child: its pid cannot be reused before we wait, so this is race-free.
    match pidfd_open(pid) {
        Ok(fd) => Ok((pid, fd)),
        Err(e) => {
            // SAFETY: plain syscalls on integers; we reap the child we cannot track.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            Err(SpawnError::Setup(e))
        }
    }
}

/// `None`: the pipe closed at exec (success). `Some`: the child's (step, errno).
fn read_report(r: &OwnedFd) -> io::Result<Option<(Step, i32)>> {
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reading into our own buffer.
        let n = unsafe {
            libc::read(
                r.as_raw_fd(),
                buf[got..].as_mut_ptr().cast(),
                buf.len() - got,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        got += n as usize;
    }
    if got == 0 {
        return Ok(None);
    }
    if got < buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "short spawn report",
        ));
    }
    let step = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let errno = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    Ok(Some((Step::from_u32(step), errno)))
}

fn open_cloexec(path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: valid C string; the returned fd is owned.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: new fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn openat_wronly(dir: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: valid C string; the returned fd is owned.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: new fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn pipe_cloexec() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two new fds.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

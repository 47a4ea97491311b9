//! Starting a unit's process: clone3/fork with an async-signal-safe child path.
//!
//! Everything the child needs (argv/envp pointer arrays, fds, credentials) is prepared in
//! the parent. Between clone and execve the child only issues raw syscalls: no allocation,
//! no locks, no Rust std I/O. A failure in the child is sent back through a CLOEXEC pipe as
//! (step, errno), so [`spawn`] reports "no such file" synchronously instead of a silent exit.

use std::ffi::{CStr, CString};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::core::ExitStatus;
use crate::kernel::creds::Creds;

/// The kernel's CLONE_INTO_CGROUP (Linux 5.7). libc's constant is an overflowed 0: never use it.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// clone3 takes its flags as u64; libc has these two as c_int.
const CLONE_PIDFD: u64 = libc::CLONE_PIDFD as u64;
const CLONE_FILES: u64 = libc::CLONE_FILES as u64;
/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAP_VERSION_3: u32 = 0x2008_0522;
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

/// Which part of the child's setup failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Step {
    /// argv[0] not found in PATH (in the parent).
    Resolve = 1,
    Signals,
    Session,
    Cgroup,
    Stdio,
    Groups,
    Gid,
    Bounding,
    KeepCaps,
    Uid,
    Capset,
    Ambient,
    NoNewPrivs,
    Chdir,
    Exec,
    Limits,
    Sandbox,
    Seccomp,
    Nice,
    OomScore,
    Rlimits,
    ListenFds,
}

impl Step {
    fn from_u32(v: u32) -> Step {
        use Step::*;
        [
            Resolve, Signals, Session, Cgroup, Stdio, Groups, Gid, Bounding, KeepCaps, Uid, Capset,
            Ambient, NoNewPrivs, Chdir, Exec, Limits, Sandbox, Seccomp, Nice, OomScore, Rlimits,
            ListenFds,
        ]
        .into_iter()
        .find(|s| *s as u32 == v)
        .unwrap_or(Exec)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Resolve => "exec (not found in PATH)",
            Step::Signals => "reset signals",
            Step::Session => "setsid",
            Step::Cgroup => "join cgroup",
            Step::Stdio => "redirect stdio",
            Step::Groups => "setgroups",
            Step::Gid => "setresgid",
            Step::Bounding => "drop bounding capabilities",
            Step::KeepCaps => "PR_SET_KEEPCAPS",
            Step::Uid => "setresuid",
            Step::Capset => "capset",
            Step::Ambient => "raise ambient capabilities",
            Step::NoNewPrivs => "PR_SET_NO_NEW_PRIVS",
            Step::Chdir => "chdir",
            Step::Exec => "exec",
            Step::Limits => "set the open-files limit (nofile)",
            Step::Sandbox => "set up the [sandbox] namespaces and mounts",
            Step::Seccomp => "install the [sandbox] seccomp filters",
            Step::Nice => "set the nice value",
            Step::OomScore => "write /proc/self/oom_score_adj",
            Step::Rlimits => "set the resource limits (limits)",
            Step::ListenFds => "place the [socket] fds at 3..",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The child could not be set up or could not exec; it has been reaped.
    #[error("{step}: {}", strerror(*errno))]
    Exec { step: Step, errno: i32 },
    #[error("empty argv")]
    EmptyArgv,
    #[error("clone: {}", OsError(.0))]
    Clone(io::Error),
    /// Parent-side preparation (pipe, /dev/null, pidfd) failed.
    #[error("preparing the spawn: {}", OsError(.0))]
    Setup(io::Error),
}

impl SpawnError {
    /// The errno of an exec/setup failure (ENOENT, EACCES...).
    pub fn errno(&self) -> Option<i32> {
        match self {
            SpawnError::Exec { errno, .. } => Some(*errno),
            SpawnError::Clone(e) | SpawnError::Setup(e) => e.raw_os_error(),
            SpawnError::EmptyArgv => None,
        }
    }
}

/// "No such file or directory", without std's " (os error 2)"; EMFILE as [`OsError`] says it.
fn strerror(errno: i32) -> String {
    if errno == libc::EMFILE {
        return OsError(&io::Error::from_raw_os_error(errno)).to_string();
    }
    let s = io::Error::from_raw_os_error(errno).to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// An OS error as a failed start says it. EMFILE (colony-init's fd table is full: the units
/// hold every fd it may open) names the limit, which is what the operator must raise;
/// anything else is the error's own text.
pub struct OsError<'a>(pub &'a io::Error);

impl fmt::Display for OsError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.raw_os_error() != Some(libc::EMFILE) {
            return self.0.fmt(f);
        }
        f.write_str("too many open files (EMFILE): colony-init's open-files limit is ")?;
        match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
            Ok((soft, _)) => write!(f, "{soft}"),
            Err(_) => f.write_str("unknown"),
        }
    }
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

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The calling process's permitted capability set (capget; 0 if it fails). One syscall,
/// where /proc/self/status would be formatted and parsed at every start.
pub fn own_permitted_caps() -> u64 {
    let mut hdr = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: a v3 header makes capget fill exactly two CapData.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if r != 0 {
        return 0;
    }
    u64::from(data[0].permitted) | (u64::from(data[1].permitted) << 32)
}

/// The open-files limit every child gets once colony-init raised its own, `(soft, hard)`: the
/// soft limit colony-init was started with and its own hard limit. 0/0 while colony-init
/// runs with what it was given.
static CHILD_NOFILE: [std::sync::atomic::AtomicU64; 2] = [
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
];

/// Every unit holds a pidfd, an output pipe and its log file: ten thousand units need far
/// more than the usual limit, so colony-init raises its own open-files limit as far as the
/// kernel lets it: to `fs.nr_open` where it may (PID 1 of a machine holds CAP_SYS_RESOURCE;
/// its inherited hard limit is only 4096), else to its hard limit. Its children get the soft
/// limit colony-init was started with (past 1024, select() breaks and programs that close
/// every possible fd slow down) and the raised hard limit, which a daemon that needs more
/// fds (redis, nginx) may take, as under systemd; a unit's `nofile` sets both.
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    use std::sync::atomic::Ordering::Relaxed;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(hard);
    let raised = [ceiling.max(hard), hard]
        .into_iter()
        .find(|&n| n > soft && setrlimit(Resource::RLIMIT_NOFILE, n, n).is_ok());
    match raised {
        Some(n) => {
            CHILD_NOFILE[0].store(soft, Relaxed);
            CHILD_NOFILE[1].store(n, Relaxed);
            tracing::debug!(limit = n, "open-files limit raised");
        }
        None if soft < hard => tracing::warn!("cannot raise the open-files limit"),
        None => {}
    }
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

/// A pidfd (close-on-exec) for `pid`. Race-free only for a child not reaped yet, or a
/// process whose identity is checked through the pidfd afterwards.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid.max(0))
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    Ok(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)
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

fn errno() -> i32 {
    // SAFETY: errno is thread-local and always valid.
    unsafe { *libc::__errno_location() }
}

/// Reports (step, errno) to the parent and exits. Async-signal-safe.
///
/// # Safety
/// Only in the child between clone and execve (async-signal-safe, nothing allocated), with
/// `plan` prepared by the parent before clone (the child has its own copy of it).
unsafe fn fail(plan: &ChildPlan, step: Step) -> ! {
    let e = errno();
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&(step as u32).to_ne_bytes());
    buf[4..].copy_from_slice(&e.to_ne_bytes());
    libc::write(plan.errpipe, buf.as_ptr().cast(), buf.len());
    libc::_exit(127)
}

/// Tells colony-init the child no longer uses its fd table, or cannot leave it (child_fds.rs).
///
/// # Safety
/// Only in the child between clone and execve (async-signal-safe, nothing allocated), with
/// `plan` prepared by the parent before clone (the child has its own copy of it).
unsafe fn leave_table(plan: &ChildPlan, how: u32) {
    (*plan.left).store(how, std::sync::atomic::Ordering::SeqCst);
    libc::syscall(libc::SYS_futex, plan.left, libc::FUTEX_WAKE, 1);
}

/// A raw syscall's -1 means failure (errno set).
///
/// # Safety
/// Only in the child between clone and execve (async-signal-safe, nothing allocated), with
/// `plan` prepared by the parent before clone (the child has its own copy of it).
unsafe fn check(plan: &ChildPlan, step: Step, ret: libc::c_long) {
    if ret < 0 {
        fail(plan, step)
    }
}

/// Moves `fd` to `target`, clearing CLOEXEC when it is already there.
///
/// # Safety
/// Only in the child between clone and execve (async-signal-safe, nothing allocated), with
/// `plan` prepared by the parent before clone (the child has its own copy of it).
unsafe fn install(plan: &ChildPlan, fd: RawFd, target: RawFd) {
    if fd == target {
        check(
            plan,
            Step::Stdio,
            libc::fcntl(fd, libc::F_SETFD, 0) as libc::c_long,
        );
    } else {
        check(plan, Step::Stdio, libc::dup2(fd, target) as libc::c_long);
    }
}

/// The child between clone and execve. Only async-signal-safe raw syscalls; nothing allocated.
///
/// # Safety
/// Only in the child between clone and execve (async-signal-safe, nothing allocated), with
/// `plan` prepared by the parent before clone (the child has its own copy of it).
unsafe fn child(plan: &ChildPlan) -> ! {
    if plan.unshare_below > 0 {
        // First of all, leave colony-init's fd table with only the fds below the slots.
        let r = libc::syscall(
            libc::SYS_close_range,
            plan.unshare_below as libc::c_uint,
            libc::c_uint::MAX,
            // First give the caller a private fd table (Linux 5.9).
            libc::CLOSE_RANGE_UNSHARE,
        );
        // Before Linux 5.9: a full copy, closed at exec.
        if r < 0 && libc::unshare(libc::CLONE_FILES) < 0 {
            // Still in the shared table: touch nothing; colony-init clones again without it.
            leave_table(plan, crate::kernel::child_fds::CANNOT_LEAVE);
            libc::_exit(127)
        }
        leave_table(plan, crate::kernel::child_fds::LEFT);
    }
    // Default dispositions first, then the empty mask: a pending signal must not run one of
    // colony-init's handlers in the child.
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // Raw rt_sigaction: glibc's wrapper refuses 32 and 33, which may arrive ignored.
        // All-zero is SIG_DFL with no flags, no restorer and an empty mask on every layout.
        let sa = [0u64; 4];
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            sa.as_ptr(),
            std::ptr::null_mut::<u64>(),
            8usize,
        );
    }
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    check(
        plan,
        Step::Signals,
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) as libc::c_long,
    );

    if plan.new_session {
        check(plan, Step::Session, libc::setsid() as libc::c_long);
    }

    // Before the credentials change: raising a hard limit takes CAP_SYS_RESOURCE.
    if plan.nofile.rlim_max > 0 {
        check(
            plan,
            Step::Limits,
            libc::syscall(
                libc::SYS_prlimit64,
                0,
                libc::RLIMIT_NOFILE,
                &plan.nofile as *const libc::rlimit,
                std::ptr::null_mut::<libc::rlimit>(),
            ),
        );
    }

    if let Some(x) = plan.extras {
        if let Err(f) = crate::kernel::exec_setup::apply_privileged(x) {
            fail(plan, step_of(f))
        }
    }

    for &fd in plan.procs {
        check(
            plan,
            Step::Cgroup,
            libc::write(fd, b"0".as_ptr().cast(), 1) as libc::c_long,
        );
    }

    // [sandbox] namespaces and mounts: while the child still holds colony-init's privileges.
    if let Some(sb) = plan.sandbox {
        if sb.enter(plan.sandbox_join).is_err() {
            fail(plan, Step::Sandbox)
        }
    }

    // Sources below 3 could be clobbered by the dup2s: lift them first.
    let lift = |fd: RawFd| -> RawFd {
        if (0..3).contains(&fd) {
            let n = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3);
            if n < 0 {
                fail(plan, Step::Stdio)
            }
            n
        } else {
            fd
        }
    };
    let devnull = lift(plan.devnull);
    let out = if plan.stdout >= 0 {
        lift(plan.stdout)
    } else {
        -1
    };
    let err = if plan.stderr >= 0 {
        lift(plan.stderr)
    } else {
        -1
    };
    install(plan, devnull, 0);
    if out >= 0 {
        install(plan, out, 1);
    }
    if err >= 0 {
        install(plan, err, 2);
    }
    // [socket]: the listening fds at 3.. (the report pipe moves above them if in the way).
    let moved;
    let plan = match crate::kernel::exec_setup::place_listen_fds(plan.listen, plan.errpipe) {
        Ok(keep) if keep == plan.errpipe => plan,
        Ok(keep) => {
            moved = ChildPlan {
                errpipe: keep,
                ..*plan
            };
            &moved
        }
        Err((f, keep)) => fail(
            &ChildPlan {
                errpipe: keep,
                ..*plan
            },
            step_of(f),
        ),
    };

    // Raw syscalls, not glibc's set*id: those broadcast to the parent's other threads, which
    // do not exist in a clone3 child and would hang it.
    let c = plan.creds;
    if let Some(groups) = plan.groups {
        check(
            plan,
            Step::Groups,
            libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()),
        );
    }
    if let Some(gid) = c.gid {
        check(
            plan,
            Step::Gid,
            libc::syscall(libc::SYS_setresgid, gid, gid, gid),
        );
    }
    if let Some(mask) = c.caps {
        if c.drop_bounding {
            for cap in 0..64u64 {
                if mask & (1 << cap) != 0 {
                    continue;
                }
                let r = libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0);
                // EINVAL: beyond cap_last_cap.
                if r < 0 && errno() != libc::EINVAL {
                    fail(plan, Step::Bounding)
                }
            }
        }
        if c.uid.is_some() {
            check(
                plan,
                Step::KeepCaps,
                libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) as libc::c_long,
            );
        }
    }
    if let Some(uid) = c.uid {
        check(
            plan,
            Step::Uid,
            libc::syscall(libc::SYS_setresuid, uid, uid, uid),
        );
    }
    if let Some(mask) = c.caps {
        let hdr = CapHeader {
            version: CAP_VERSION_3,
            pid: 0,
        };
        let lo = mask as u32;
        let hi = (mask >> 32) as u32;
        let data = [
            CapData {
                effective: lo,
                permitted: lo,
                inheritable: lo,
            },
            CapData {
                effective: hi,
                permitted: hi,
                inheritable: hi,
            },
        ];
        check(
            plan,
            Step::Capset,
            libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()),
        );
        if c.ambient {
            for cap in 0..64u64 {
                if mask & (1 << cap) != 0 {
                    check(
                        plan,
                        Step::Ambient,
                        libc::prctl(
                            libc::PR_CAP_AMBIENT,
                            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                            cap as libc::c_ulong,
                            0,
                            0,
                        ) as libc::c_long,
                    );
                }
            }
        }
        if c.uid.is_some() {
            libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0);
        }
    }
    if c.no_new_privs {
        check(
            plan,
            Step::NoNewPrivs,
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) as libc::c_long,
        );
    }
    if let Some(mask) = c.umask {
        libc::umask((mask & 0o7777) as libc::mode_t);
    }
    if plan.unshare_below == 0 {
        // A full copy of colony-init's fd table: what it inherited without CLOEXEC (a
        // jobserver pipe, say) must not reach the program either. Failure (before Linux
        // 5.11) leaves things as they were.
        libc::syscall(
            libc::SYS_close_range,
            (3 + plan.listen.len()) as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    if !plan.cwd.is_null() && libc::chdir(plan.cwd) < 0 {
        let missing_ok = plan.extras.is_some_and(|x| x.cwd_missing_ok);
        if !(missing_ok && errno() == libc::ENOENT) {
            fail(plan, Step::Chdir)
        }
    }
    for slot in plan.pid_slot {
        if !slot.is_null() {
            write_pid(slot, libc::syscall(libc::SYS_getpid) as u32);
        }
    }
    // [sandbox] seccomp filters: last, so every step above stays allowed; execve is in every
    // allow list.
    if let Some(sb) = plan.sandbox {
        if sb.seal().is_err() {
            fail(plan, Step::Seccomp)
        }
    }
    libc::execve(plan.path, plan.argv, plan.envp);
    fail(plan, Step::Exec)
}

fn step_of(f: crate::kernel::exec_setup::Failed) -> Step {
    use crate::kernel::exec_setup::Failed;
    match f {
        Failed::Nice => Step::Nice,
        Failed::OomScore => Step::OomScore,
        Failed::Rlimit => Step::Rlimits,
        Failed::ListenFds => Step::ListenFds,
    }
}

/// Decimal digits of `pid` and a NUL at `at` (at most 11 bytes). No allocation.
///
/// # Safety
/// `at` points to at least 11 writable bytes.
unsafe fn write_pid(at: *mut u8, pid: u32) {
    let mut digits = [0u8; 10];
    let mut n = 0;
    let mut v = pid;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for i in 0..n {
        *at.add(i) = digits[n - 1 - i];
    }
    *at.add(n) = 0;
}

/// pidfd_send_signal: never hits a recycled pid. Written out rather than rustix's, whose
/// `Signal` may not carry the real-time signals `colonyctl signal SIGRTMIN+N` sends.
pub fn send_signal(pidfd: BorrowedFd, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall with an fd we borrow and integers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn waitid(pidfd: BorrowedFd, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
    loop {
        // SAFETY: zeroed siginfo is a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid on a pidfd we borrow, writing into `info`.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | flags,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // SAFETY: waitid filled the SIGCHLD fields (or left them zero with WNOHANG).
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        return Ok(Some(match info.si_code {
            libc::CLD_EXITED => ExitStatus::Code(status),
            _ => ExitStatus::Signal(status),
        }));
    }
}

/// Reaps the process if it has ended (`None`: still running). ECHILD: someone else reaped it.
pub fn try_wait(pidfd: BorrowedFd) -> io::Result<Option<ExitStatus>> {
    waitid(pidfd, libc::WNOHANG)
}

/// Blocks until the process ends and reaps it (for shutdown paths and tests).
pub fn wait(pidfd: BorrowedFd) -> io::Result<ExitStatus> {
    waitid(pidfd, 0)?.ok_or_else(|| io::Error::other("waitid returned no child"))
}

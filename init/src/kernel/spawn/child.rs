//! The child's side of a start, between clone and execve: raw, async-signal-safe syscalls
//! only, on what the parent prepared in a [`ChildPlan`]; a failure goes back as (step, errno).

use std::os::fd::RawFd;

use super::limits::{CapData, CapHeader, CAP_VERSION_3};
use super::{ChildPlan, Step};

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
pub(super) unsafe fn child(plan: &ChildPlan) -> ! {
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
    // [tty]: the terminal at 0 (and 1, 2), made the new session's controlling terminal.
    let tty = plan.extras.and_then(|x| x.tty);
    let term = if plan.tty >= 0 { lift(plan.tty) } else { -1 };
    install(plan, if term >= 0 { term } else { devnull }, 0);
    let (out, err) = match tty {
        Some(t) if term >= 0 && t.output => (term, term),
        _ => (out, err),
    };
    if out >= 0 {
        install(plan, out, 1);
    }
    if err >= 0 {
        install(plan, err, 2);
    }
    if let Some(t) = tty.filter(|_| term >= 0) {
        check(
            plan,
            Step::Tty,
            libc::ioctl(0, libc::TIOCSCTTY, libc::c_int::from(t.force)) as libc::c_long,
        );
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

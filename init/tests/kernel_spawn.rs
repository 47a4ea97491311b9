//! spawn/creds against the real kernel: exec errors, stdio, signals, sessions, credentials.
//! The credential tests need root (they are skipped with a message otherwise).

mod kernel_common;

use std::io::Read;
use std::os::fd::AsFd;
use std::time::Duration;

use colony_init::core::ExitStatus;
use colony_init::kernel::creds::Creds;
use colony_init::kernel::spawn::{self, Placement, SpawnError, Step};
use kernel_common::*;
use units::model::User;

use colony_integration::skip_or_fail;

#[test]
fn runs_a_program_and_reports_its_exit() {
    let (st, out) = run(
        &["sh", "-c", "echo hello; exit 3"],
        &Creds::default(),
        Placement::None,
    );
    assert_eq!(out, "hello\n");
    assert_eq!(st, ExitStatus::Code(3));
}

#[test]
fn stdin_is_dev_null_and_env_is_exact() {
    let (_, out) = run(
        &["sh", "-c", "readlink /proc/self/fd/0; env | sort"],
        &Creds::default(),
        Placement::None,
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("/dev/null"));
    let env: Vec<&str> = lines.filter(|l| !l.starts_with("PWD=")).collect();
    assert_eq!(
        env,
        vec!["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"]
    );
}

#[test]
fn missing_program_is_enoent() {
    let e = spawn_captured(
        &["/nonexistent/prog"],
        &Creds::default(),
        Placement::None,
        false,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            SpawnError::Exec {
                step: Step::Exec,
                errno: libc::ENOENT
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("No such file"), "{e}");

    let e = spawn_captured(
        &["no-such-program-colony"],
        &Creds::default(),
        Placement::None,
        false,
    )
    .unwrap_err();
    assert_eq!(e.errno(), Some(libc::ENOENT), "{e:?}");
}

#[test]
fn not_executable_is_eacces() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("script");
    std::fs::write(&p, "#!/bin/sh\necho hi\n").unwrap();
    let e = spawn_captured(
        &[p.to_str().unwrap()],
        &Creds::default(),
        Placement::None,
        false,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            SpawnError::Exec {
                step: Step::Exec,
                errno: libc::EACCES
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("Permission denied"), "{e}");
}

#[test]
fn bad_directory_is_a_chdir_error() {
    let argv = cstrings(&["/bin/true"]);
    let envp = env();
    let creds = Creds::default();
    let req = spawn::SpawnRequest {
        argv: &argv,
        envp: &envp,
        cwd: Some(c"/nonexistent/dir"),
        creds: &creds,
        stdout: None,
        stderr: None,
        placement: Placement::None,
        new_process_group: false,
        sandbox: None,
        extras: None,
    };
    let e = spawn::spawn(&req).unwrap_err();
    assert!(
        matches!(
            e,
            SpawnError::Exec {
                step: Step::Chdir,
                errno: libc::ENOENT
            }
        ),
        "{e:?}"
    );
}

#[test]
fn signal_mask_and_dispositions_are_reset() {
    // Block SIGTERM and SIGCHLD in this thread (as colony-init's signalfd loop does) and
    // ignore SIGUSR2 process-wide; the child must see none of it.
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::Signal::SIGTERM);
    set.add(nix::sys::signal::Signal::SIGCHLD);
    set.thread_block().unwrap();
    // SAFETY: SIG_IGN installs no handler code.
    unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGUSR2,
            nix::sys::signal::SigHandler::SigIgn,
        )
        .unwrap();
    }
    let (st, out) = run(
        &["cat", "/proc/self/status"],
        &Creds::default(),
        Placement::None,
    );
    assert_eq!(st, ExitStatus::Code(0));
    assert_eq!(field(&out, "SigBlk"), "0000000000000000");
    assert_eq!(field(&out, "SigIgn"), "0000000000000000");

    // A blocked-in-parent SIGTERM reaches the child through its pidfd.
    let (s, _out) =
        spawn_captured(&["sleep", "30"], &Creds::default(), Placement::None, false).unwrap();
    assert_eq!(spawn::try_wait(s.pidfd.as_fd()).unwrap(), None);
    spawn::send_signal(s.pidfd.as_fd(), libc::SIGTERM).unwrap();
    assert_eq!(
        spawn::wait(s.pidfd.as_fd()).unwrap(),
        ExitStatus::Signal(libc::SIGTERM)
    );
    set.thread_unblock().unwrap();
}

#[test]
fn try_wait_reaps_an_exited_child() {
    let (s, mut out) = spawn_captured(
        &["sh", "-c", "exit 7"],
        &Creds::default(),
        Placement::None,
        false,
    )
    .unwrap();
    let mut t = String::new();
    out.read_to_string(&mut t).unwrap();
    let mut got = None;
    wait_until("exit", Duration::from_secs(5), || {
        got = spawn::try_wait(s.pidfd.as_fd()).unwrap();
        got.is_some()
    });
    assert_eq!(got, Some(ExitStatus::Code(7)));
    // Reaped: a second wait finds no child.
    assert!(spawn::try_wait(s.pidfd.as_fd()).is_err());
}

#[test]
fn new_process_group_makes_a_session_leader() {
    let (s, mut out) = spawn_captured(
        &["sh", "-c", "cat /proc/self/stat"],
        &Creds::default(),
        Placement::None,
        true,
    )
    .unwrap();
    let mut t = String::new();
    out.read_to_string(&mut t).unwrap();
    spawn::wait(s.pidfd.as_fd()).unwrap();
    // pid (comm) state ppid pgrp session
    let rest = &t[t.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let pid = t.split_whitespace().next().unwrap();
    // `sh -c cmd` execs cmd in place (dash does for a single command) or forks it:
    // either way the pgrp and session are the sh we started.
    assert_eq!(f[2], s.pid.to_string(), "pgrp; stat {t}, pid {pid}");
    assert_eq!(f[3], s.pid.to_string(), "session");
}

#[test]
fn resolve_exec_finds_bare_names() {
    assert_eq!(
        spawn::resolve_exec("sh", "/nonexistent:/bin:/usr/bin"),
        Some("/bin/sh".into())
    );
    assert_eq!(spawn::resolve_exec("no-such-colony", "/bin:/usr/bin"), None);
    assert_eq!(
        spawn::resolve_exec("./x", "/bin"),
        Some(std::path::PathBuf::from("./x"))
    );
    // A directory or a non-executable file is skipped.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prog"), "").unwrap();
    std::fs::create_dir(dir.path().join("sh")).unwrap();
    let path = format!("{}:/bin", dir.path().display());
    assert_eq!(spawn::resolve_exec("prog", &path), None);
    assert_eq!(spawn::resolve_exec("sh", &path), Some("/bin/sh".into()));
}

fn nobody() -> User {
    User {
        name: "nobody".into(),
        uid: 65534,
        primary_gid: 65534,
    }
}

#[test]
fn nobody_with_net_bind_service_gets_exactly_that() {
    if !is_root() {
        skip_or_fail!("skipped: needs root");
        return;
    }
    let mut u = unit("capped", &["cat", "/proc/self/status"]);
    u.identity.user = Some(nobody());
    u.identity.gid = Some(65534);
    u.capabilities = Some(1 << 10);
    u.no_new_privileges = true;
    u.umask = Some(0o027);
    let creds = Creds::for_unit(&u).unwrap();
    assert_eq!(creds.uid, Some(65534));
    assert_eq!(creds.groups.as_deref(), Some(&[65534][..]));
    let (st, out) = run(&["cat", "/proc/self/status"], &creds, Placement::None);
    assert_eq!(st, ExitStatus::Code(0), "{out}");
    assert_eq!(
        field(&out, "Uid").split_whitespace().collect::<Vec<_>>(),
        ["65534"; 4]
    );
    assert_eq!(
        field(&out, "Gid").split_whitespace().collect::<Vec<_>>(),
        ["65534"; 4]
    );
    assert_eq!(field(&out, "Groups"), "65534");
    for f in ["CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"] {
        assert_eq!(field(&out, f), "0000000000000400", "{f}");
    }
    assert_eq!(field(&out, "NoNewPrivs"), "1");
    assert_eq!(field(&out, "Umask"), "0027");
}

#[test]
fn nobody_without_capabilities_has_none() {
    if !is_root() {
        skip_or_fail!("skipped: needs root");
        return;
    }
    let mut u = unit("plain", &["cat"]);
    u.identity.user = Some(nobody());
    // No group given: the user's primary group, not colony-init's.
    u.identity.gid = None;
    u.identity.supplementary_groups = Some(vec![]);
    let creds = Creds::for_unit(&u).unwrap();
    let (_, out) = run(&["cat", "/proc/self/status"], &creds, Placement::None);
    assert_eq!(
        field(&out, "Gid").split_whitespace().collect::<Vec<_>>(),
        ["65534"; 4]
    );
    assert_eq!(field(&out, "Groups"), "");
    for f in ["CapEff", "CapPrm", "CapAmb"] {
        assert_eq!(field(&out, f), "0000000000000000", "{f}");
    }
    assert_eq!(field(&out, "NoNewPrivs"), "0");
}

#[test]
fn root_unit_with_empty_capabilities_has_none() {
    if !is_root() {
        skip_or_fail!("skipped: needs root");
        return;
    }
    let mut u = unit("rootless", &["cat"]);
    u.capabilities = Some(0);
    let creds = Creds::for_unit(&u).unwrap();
    let (_, out) = run(&["cat", "/proc/self/status"], &creds, Placement::None);
    assert_eq!(field(&out, "Uid").split_whitespace().next(), Some("0"));
    for f in ["CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"] {
        assert_eq!(field(&out, f), "0000000000000000", "{f}");
    }
    // Without the key, a root unit keeps colony-init's set.
    let u = unit("rootful", &["cat"]);
    let creds = Creds::for_unit(&u).unwrap();
    let (_, out) = run(&["cat", "/proc/self/status"], &creds, Placement::None);
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    assert_eq!(field(&out, "CapBnd"), field(&own, "CapBnd"));
    assert_eq!(field(&out, "CapEff"), field(&own, "CapEff"));
}

#[test]
fn non_root_cannot_switch_user() {
    if !is_root() {
        let mut u = unit("other", &["true"]);
        u.identity.user = Some(User {
            name: "root".into(),
            uid: 0,
            primary_gid: 0,
        });
        assert!(Creds::for_unit(&u).is_err());
        return;
    }
    // As root: run the check in a child that became nobody, through our own spawn.
    let exe = std::env::current_exe().unwrap();
    let mut u = unit("x", &[]);
    u.identity.user = Some(nobody());
    u.identity.gid = Some(65534);
    u.identity.supplementary_groups = Some(vec![]);
    let creds = Creds::for_unit(&u).unwrap();
    let (st, out) = run(
        &[
            exe.to_str().unwrap(),
            "--exact",
            "non_root_cannot_switch_user",
            "--nocapture",
        ],
        &creds,
        Placement::None,
    );
    assert_eq!(st, ExitStatus::Code(0), "{out}");
    assert!(out.contains("1 passed"), "{out}");
}

#[test]
fn own_permitted_matches_proc_status() {
    let from_proc = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapPrm:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    assert_eq!(colony_init::kernel::spawn::own_permitted_caps(), from_proc);
}

/// A child keeps none of colony-init's fds, not even one left without CLOEXEC (spawn clones
/// with CLONE_FILES and the child takes a table of only the fds below a few low slots,
/// child_fds.rs); spawns from several threads at once each get their own output pipe.
#[test]
fn a_child_gets_its_own_stdio_and_none_of_the_parents_fds() {
    let null = std::fs::File::open("/dev/null").unwrap();
    // SAFETY: F_DUPFD on an fd we own; the copy (no CLOEXEC) is closed below.
    let stray = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&null), libc::F_DUPFD, 700) };
    assert!(stray >= 700);
    let threads: Vec<_> = (0..6)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..15 {
                    let tag = format!("{t}-{i}");
                    let script = format!("echo {tag}; ls /proc/self/fd");
                    let (st, out) = run(&["sh", "-c", &script], &Creds::default(), Placement::None);
                    assert_eq!(st, ExitStatus::Code(0), "{out}");
                    let mut lines = out.lines();
                    assert_eq!(lines.next(), Some(tag.as_str()), "{out}");
                    let fds: Vec<&str> = lines.collect();
                    assert!(fds.contains(&"1"), "{out}");
                    assert!(!fds.contains(&stray.to_string().as_str()), "{out}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // SAFETY: the fd made above.
    unsafe { libc::close(stray) };
}

/// A child cloned into a frozen cgroup never runs, so it never leaves colony-init's fd
/// table: the spawn gives up after child_fds::LEAVE_LIMIT, kills it and says why, instead of
/// holding PID 1 forever.
#[test]
fn a_child_cloned_into_a_frozen_cgroup_is_killed_not_waited_for() {
    let root = std::path::Path::new("/sys/fs/cgroup/unified");
    if !is_root() || !root.join("cgroup.procs").exists() {
        skip_or_fail!("skipped: needs root and a cgroup2 at {}", root.display());
        return;
    }
    let dir = root.join(format!("colony-test-frozen-{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::write(self.0.join("cgroup.freeze"), "0");
            let _ = std::fs::write(self.0.join("cgroup.kill"), "1");
            for _ in 0..200 {
                if std::fs::remove_dir(&self.0).is_ok() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    let _cleanup = Remove(dir.clone());
    std::fs::write(dir.join("cgroup.freeze"), "1").unwrap();
    let cg = std::fs::File::open(&dir).unwrap();
    let r = spawn_captured(
        &["true"],
        &Creds::default(),
        Placement::CloneInto(cg.as_fd()),
        false,
    );
    match r {
        Err(SpawnError::Setup(e)) => assert!(e.to_string().contains("did not run"), "{e}"),
        Err(e) => panic!("another error: {e}"),
        Ok((s, _)) => panic!("a frozen child was taken as started: pid {}", s.pid),
    }
    // Killed: the cgroup empties (SIGKILL wakes a frozen task to die).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the child is still there"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

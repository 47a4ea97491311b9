//! Shared helpers of the kernel_* tests: unit values, pipes, bounded waits.
#![allow(dead_code)]

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use colony_init::core::ExitStatus;
use colony_init::kernel::creds::Creds;
use colony_init::kernel::spawn::{self, Placement, SpawnRequest, Spawned};
use units::model::{Identity, Log, Ready, Resources, Restart, Stop, Unit};

pub fn unit(name: &str, exec: &[&str]) -> Unit {
    Unit {
        name: name.to_owned(),
        path: PathBuf::from(format!("/nonexistent/{name}.unit")),
        description: None,
        exec: exec.iter().map(|s| s.to_string()).collect(),
        directory: None,
        environment: Default::default(),
        identity: Identity::default(),
        umask: None,
        nofile: None,
        capabilities: None,
        no_new_privileges: false,
        after: vec![],
        requires: vec![],
        tags: vec![],
        enabled: true,
        essential: false,
        extras_json: "{}".to_owned(),
        restart: Restart::default(),
        stop: Stop::default(),
        ready: Ready::default(),
        health: None,
        resources: Resources::default(),
        heartbeat: None,
        timer: None,
        sandbox: None,
        exec_env: Default::default(),
        socket: None,
        tty: None,
        hooks: Default::default(),
        links: Default::default(),
        conditions: Vec::new(),
        instances: None,
        log: Log::default(),
    }
}

pub fn cstrings(v: &[&str]) -> Vec<CString> {
    v.iter().map(|s| CString::new(*s).unwrap()).collect()
}

pub fn env() -> Vec<CString> {
    cstrings(&["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"])
}

pub fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap()
}

/// Spawns argv with its stdout and stderr in a pipe; returns the process and the read end.
pub fn spawn_captured(
    argv: &[&str],
    creds: &Creds,
    placement: Placement,
    new_pg: bool,
) -> Result<(Spawned, std::fs::File), spawn::SpawnError> {
    let (r, w) = pipe();
    let argv = cstrings(argv);
    let envp = env();
    let req = SpawnRequest {
        argv: &argv,
        envp: &envp,
        cwd: Some(c"/"),
        creds,
        stdout: Some(w.as_fd()),
        stderr: Some(w.as_fd()),
        placement,
        new_process_group: new_pg,
        sandbox: None,
        extras: None,
    };
    let s = spawn::spawn(&req)?;
    drop(w);
    Ok((s, std::fs::File::from(r)))
}

/// Runs argv to completion and returns (status, output).
pub fn run(argv: &[&str], creds: &Creds, placement: Placement) -> (ExitStatus, String) {
    let (s, mut out) = spawn_captured(argv, creds, placement, false).expect("spawn");
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    let st = spawn::wait(s.pidfd.as_fd()).unwrap();
    (st, text)
}

/// A `Name:\tvalue` field of a /proc/PID/status text.
pub fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .unwrap_or_else(|| panic!("no {name} in {status}"))
        .trim()
}

/// Waits for `cond` with a bound.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

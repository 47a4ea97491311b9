//! The typed unit model: what a parsed, validated `NAME.unit` file says.
//!
//! Everything here is plain data. Values that colony-init supplies defaults for
//! (restart delays, threshold, stop timeout) are `Option`, so the init's own
//! `--threshold` etc. apply where a unit is silent.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Floors and ceilings of the values that say how often colony-init does something for a
/// unit. Below them a single unit file could keep PID 1's only thread busy (a check, a
/// deadline or a rotation at every turn of the loop); no real service needs less.
pub mod limits {
    use std::time::Duration;

    /// `[health] period` and `timeout`, `[heartbeat] period`, `[ready] watchdog`.
    pub const MIN_PERIOD: Duration = Duration::from_millis(100);
    /// `[timer] every` (a calendar's finest step is a second, too).
    pub const MIN_EVERY: Duration = Duration::from_secs(1);
    /// `[log] max_size`, in bytes.
    pub const MIN_LOG_SIZE: u64 = 16 * 1024;
    /// `[log] keep`: each rotation renames every kept file.
    pub const MAX_LOG_KEEP: u32 = 100;
    /// `[restart] max_failures`.
    pub const MAX_FAILURES: u32 = 1_000_000;
}

/// One unit, as its file describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// The file name without `.unit`.
    pub name: String,
    /// Where it was read from.
    pub path: PathBuf,
    pub description: Option<String>,
    /// argv; `exec[0]` is absolute or a bare name looked up in PATH at spawn time.
    pub exec: Vec<String>,
    pub directory: Option<PathBuf>,
    pub environment: BTreeMap<String, String>,
    pub identity: Identity,
    /// Octal umask, e.g. 0o027.
    pub umask: Option<u32>,
    /// RLIMIT_NOFILE, soft and hard (None: the limit colony-init was started with, with
    /// colony-init's own hard limit, as systemd's services get theirs).
    pub nofile: Option<u64>,
    /// `None`: the key was absent (root keeps its set, others get none).
    /// `Some(mask)`: exactly these capability bits (bit N = capability number N).
    pub capabilities: Option<u64>,
    pub no_new_privileges: bool,
    pub after: Vec<String>,
    pub requires: Vec<String>,
    pub tags: Vec<String>,
    pub enabled: bool,
    pub essential: bool,
    /// `extras` serialised as JSON (`{}` when absent), given as `COLONY_CONFIG`.
    pub extras_json: String,
    pub restart: Restart,
    pub stop: Stop,
    pub ready: Ready,
    /// Boxed, as `timer`: most units have none, and every unit is held for its whole life.
    pub health: Option<Box<Health>>,
    pub resources: Resources,
    pub heartbeat: Option<Heartbeat>,
    pub timer: Option<Box<Timer>>,
    pub log: Log,
    /// `[sandbox]`; boxed, as most units have none.
    pub sandbox: Option<Box<crate::sandbox::Sandbox>>,
    /// Environment files, managed directories, nice, OOM score, IO weight, rlimits,
    /// credentials (`exec_env.rs`).
    pub exec_env: crate::exec_env::ExecEnv,
    /// `[socket]`; boxed, as most units have none.
    pub socket: Option<Box<crate::socket::Socket>>,
    /// `[tty]`: the program on a terminal; boxed, as most units have none.
    pub tty: Option<Box<crate::tty::Tty>>,
    /// `exec_start_pre`, `exec_start_post`, `exec_stop`, `exec_reload`.
    pub hooks: crate::hooks::Hooks,
    /// `wants`, `before`, `conflicts`.
    pub links: Links,
    /// `condition_*` and `assert_*`.
    pub conditions: Vec<crate::conditions::Condition>,
    /// `instances = N` (Supervisor's numprocs): the file is the units `NAME-0`..`NAME-{N-1}`.
    pub instances: Option<u32>,
}

impl Unit {
    /// Started when loaded (and at boot): enabled, and not waiting for a first connection.
    pub fn starts_when_loaded(&self) -> bool {
        self.enabled && !self.socket.as_ref().is_some_and(|s| s.on_demand)
    }
}

/// Dependencies beside `after` and `requires`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Links {
    /// Started with this unit; their failure does not matter to it.
    pub wants: Vec<String>,
    /// Units that start after this one (the reverse of `after`).
    pub before: Vec<String>,
    /// Starting this one stops them, and starting them stops this one.
    pub conflicts: Vec<String>,
}

/// Who the program runs as, resolved against the user database at parse time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Identity {
    /// `None`: colony-init's own user.
    pub user: Option<User>,
    /// Explicit `group`, else the user's primary group; `None` with no user: colony-init's own.
    pub gid: Option<u32>,
    /// Explicit `supplementary_groups` (resolved gids; `Some(vec![])` means none).
    /// `None`: the user's groups from the group database (computed by colony-init at spawn).
    pub supplementary_groups: Option<Vec<u32>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub primary_gid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Restart {
    pub policy: RestartPolicy,
    /// Exit codes that count as success (default `[0]`).
    pub success_codes: Vec<i32>,
    pub delay_min: Option<Duration>,
    pub delay_max: Option<Duration>,
    pub threshold: Option<Duration>,
    /// After this many failed starts in a row (deaths before up) the unit is `failed` and
    /// left alone until started by hand. `None`: no limit.
    pub max_failures: Option<u32>,
}

impl Default for Restart {
    fn default() -> Self {
        Restart {
            policy: RestartPolicy::Always,
            success_codes: vec![0],
            delay_min: None,
            delay_max: None,
            threshold: None,
            max_failures: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    /// Signal number (default SIGTERM).
    pub signal: i32,
    /// `None`: colony-init's `--kill-timeout`.
    pub timeout: Option<Duration>,
    /// SIGHUP right after the stop signal (systemd's `SendSIGHUP=`): a shell learns its
    /// terminal is gone.
    pub sighup: bool,
}

impl Default for Stop {
    fn default() -> Self {
        Stop {
            signal: libc::SIGTERM,
            timeout: None,
            sighup: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum ReadyType {
    /// Up at exec.
    #[default]
    Started,
    /// Up at `READY=1` on NOTIFY_SOCKET.
    Notify,
    /// Up when a TCP connection to this `host:port` succeeds.
    Tcp(String),
    /// Up when this file exists.
    File(PathBuf),
    /// A boot task: up once its program exits with a success code (then `exited`).
    Exited,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ready {
    pub kind: ReadyType,
    /// Not up by then: the start failed (`ready_timeout`). Default 90s for `notify`, `tcp`
    /// and `file`; none for `started` and `exited` (a boot task such as fsck takes its time).
    pub timeout: Option<Duration>,
    /// notify only: `WATCHDOG=1` due this often.
    pub watchdog: Option<Duration>,
    /// Up only once the process has also lived this long (zero: no wait); a death before
    /// is a failed start.
    pub settle: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HealthCheck {
    Http(String),
    Tcp(String),
    Exec(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub check: HealthCheck,
    pub period: Duration,
    pub timeout: Duration,
    pub max_bad: u32,
    pub grace: Duration,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resources {
    /// Bytes.
    pub memory_max: Option<u64>,
    /// Bytes.
    pub memory_high: Option<u64>,
    /// Percent of one CPU (`50%` = 50, `150%` = 150).
    pub cpu_max: Option<u32>,
    /// 1..=10000, cgroup v2 semantics (v1: shares = weight * 1024 / 100).
    pub cpu_weight: Option<u32>,
    pub tasks_max: Option<u64>,
}

impl Resources {
    pub fn any(&self) -> bool {
        self.memory_max.is_some()
            || self.memory_high.is_some()
            || self.cpu_max.is_some()
            || self.cpu_weight.is_some()
            || self.tasks_max.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    /// `None`: RUN/heartbeat/NAME.
    pub file: Option<PathBuf>,
    pub period: Duration,
    pub grace: Duration,
}

/// A cron expression, parsed once; compared by its text.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub text: String,
    pub cron: croner::Cron,
}

impl PartialEq for Calendar {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Timer {
    pub every: Option<Duration>,
    pub calendar: Option<Calendar>,
    pub on_boot: Option<Duration>,
    pub persistent: bool,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Log {
    /// `None`: LOG_DIR/NAME.log.
    pub file: Option<PathBuf>,
    /// Bytes (default 10M).
    pub max_size: u64,
    /// Rotated files kept (default 5).
    pub keep: u32,
    /// Copy each line to colony-init's standard output where it does that (a container;
    /// default true).
    pub console: bool,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            file: None,
            max_size: 10 * 1024 * 1024,
            keep: 5,
            console: true,
        }
    }
}

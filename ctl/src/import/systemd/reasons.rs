//! Why a systemd key has nothing to carry, or cannot be carried; dependency names.

use super::super::draft::unit_name;
use super::super::words::{systemd_bool, systemd_timespan};

/// Units (not targets: see `targets`) whose job is done before colony-init starts any unit.
const REACHED_UNITS: &[&str] = &[
    "systemd-journald.socket",
    "systemd-tmpfiles-setup.service",
    "systemd-remount-fs.service",
];

/// Keys that have nothing to carry because colony already does it, with why.
pub(super) fn same_reason(section: &str, key: &str) -> Option<&'static str> {
    Some(match (section, key) {
        ("Unit", "DefaultDependencies") => "colony adds no implicit dependencies",
        ("Unit", "Documentation") => "documentation only: kept as a comment at the top of the unit",
        ("Service", "GuessMainPID" | "PIDFile") => "colony tracks the process it started itself",
        ("Service", "NotifyAccess") => {
            "colony accepts notifications from any process of the unit (checked by its credentials)"
        }
        ("Service", "RemainAfterExit") => {
            "colony shows a unit whose program ended as it should as `exited`"
        }
        ("Service", "BusName") => {
            "D-Bus names are not watched; the unit is up when its program starts"
        }
        (
            "Service",
            "SyslogIdentifier" | "SyslogFacility" | "SyslogLevel" | "SyslogLevelPrefix"
            | "LogLevelMax",
        ) => "colony writes the unit's stdout and stderr, time-stamped, to its own log file",
        ("Install", "WantedBy" | "RequiredBy" | "UpheldBy") => {
            "colony starts every enabled unit when it starts (enabled = true is the default)"
        }
        ("Timer", "AccuracySec") => "colony runs timers on time (no coalescing)",
        ("Timer", "RemainAfterElapse") => "colony keeps a timer unit loaded between runs",
        _ => return None,
    })
}

/// Switches whose "off" is both systemd's default and what colony does (colony has no
/// sandboxing unless asked, no terminal unless asked, no isolate, ...): writing them off carries them trivially.
const OFF_BY_DEFAULT: &[(&str, &str)] = &[
    ("Service", "PrivateTmp"),
    ("Service", "PrivateDevices"),
    ("Service", "PrivateNetwork"),
    ("Service", "PrivateUsers"),
    ("Service", "PrivateIPC"),
    ("Service", "PrivateMounts"),
    ("Service", "ProtectHostname"),
    ("Service", "ProtectClock"),
    ("Service", "ProtectKernelTunables"),
    ("Service", "ProtectKernelModules"),
    ("Service", "ProtectKernelLogs"),
    ("Service", "ProtectControlGroups"),
    ("Service", "ProtectSystem"),
    ("Service", "ProtectHome"),
    ("Service", "RestrictRealtime"),
    ("Service", "RestrictSUIDSGID"),
    ("Service", "RestrictNamespaces"),
    ("Service", "LockPersonality"),
    ("Service", "MemoryDenyWriteExecute"),
    ("Service", "RemoveIPC"),
    ("Service", "MountAPIVFS"),
    ("Service", "Delegate"),
    ("Service", "TTYReset"),
    ("Service", "TTYVHangup"),
    ("Service", "TTYVTDisallocate"),
    ("Service", "SendSIGHUP"),
    ("Service", "PermissionsStartOnly"),
    ("Unit", "IgnoreOnIsolate"),
    ("Unit", "RefuseManualStart"),
    ("Unit", "RefuseManualStop"),
    ("Unit", "StopWhenUnneeded"),
    ("Unit", "AllowIsolate"),
    ("Timer", "WakeSystem"),
    ("Timer", "FixedRandomDelay"),
];

/// A value that says what colony does anyway: systemd's default where colony behaves the
/// same (`PrivateDevices=no`, `StandardInput=null`, `SendSIGKILL=yes`), or a value whose
/// meaning is colony's behaviour (`IgnoreSIGPIPE=no`: colony leaves SIGPIPE at its default).
/// Such keys are carried trivially: `Some(why)`.
pub(super) fn default_reason(section: &str, key: &str, value: &str) -> Option<&'static str> {
    let v = value.trim();
    let off = || systemd_bool(v) == Some(false);
    if OFF_BY_DEFAULT.contains(&(section, key)) && off() {
        return Some("off: systemd's default, and colony's behaviour");
    }
    let zero = || matches!(systemd_timespan(v), Ok(Some(t)) if t.is_zero());
    Some(match (section, key) {
        ("Service", "StandardInput") if v == "null" => {
            "colony starts every program with stdin on /dev/null"
        }
        ("Service", "SendSIGKILL") if systemd_bool(v) == Some(true) => {
            "colony ends a stop with SIGKILL to everything left after stop.timeout"
        }
        ("Service", "ProtectProc") if v == "default" => "systemd's default: /proc as it is",
        ("Service", "ProcSubset") if v == "all" => "systemd's default: all of /proc",
        ("Service", "IgnoreSIGPIPE") if systemd_bool(v) == Some(false) => {
            "colony starts programs with SIGPIPE at its default disposition"
        }
        ("Unit", "IgnoreOnIsolate") if systemd_bool(v) == Some(true) => {
            "colony has no isolate: no unit is ever stopped by one"
        }
        ("Timer", "RandomizedDelaySec") if zero() => "no random delay, as colony's timers",
        _ => return None,
    })
}

/// Keys colony cannot carry, with why and what to do instead.
pub(super) fn drop_reason(section: &str, key: &str) -> String {
    let k = key;
    if k.starts_with("Limit") {
        return "not a resource limit colony knows (see `limits` in colony.unit(5))".into();
    }
    if k.starts_with("Condition") || k.starts_with("Assert") {
        return "colony has no condition of this kind (see colony.unit(5) for the ones it has): check it in the program or a wrapper script".into();
    }
    if k.starts_with("Protect")
        || k.starts_with("Private")
        || k.starts_with("Restrict")
        || k.ends_with("Paths")
        || k.ends_with("Directories")
        || k.starts_with("SystemCall")
        || k.starts_with("Lock")
        || k.starts_with("Memory") && k.contains("Deny")
        || matches!(
            k,
            "DynamicUser"
                | "RootDirectory"
                | "RootImage"
                | "MountAPIVFS"
                | "KeyringMode"
                | "DevicePolicy"
                | "DeviceAllow"
                | "IPAddressDeny"
                | "IPAddressAllow"
                | "SecureBits"
                | "RemoveIPC"
                | "Delegate"
                | "TemporaryFileSystem"
                | "BindPaths"
                | "BindReadOnlyPaths"
        )
    {
        return "colony's [sandbox] has no such key (see colony.unit(5) for the ones it has)"
            .into();
    }
    if k.ends_with("Directory") && k != "WorkingDirectory"
        || k.ends_with("DirectoryMode")
        || k == "RuntimeDirectoryPreserve"
    {
        return "colony makes runtime, state, cache and logs directories only: create this one (owned by the unit's user) before the unit starts".into();
    }
    match (section, k) {
        ("Service", "ExecStopPost" | "ExecCondition") => {
            "colony has no such hook: fold this command into a wrapper script (exec_stop runs before the stop signal, exec_start_pre before the program)".into()
        }
        ("Unit", "PartOf" | "OnFailure" | "OnSuccess" | "PropagatesReloadTo" | "ReloadPropagatedFrom" | "JoinsNamespaceOf" | "Upholds" | "StopWhenUnneeded" | "RefuseManualStart" | "RefuseManualStop" | "AllowIsolate" | "JobTimeoutSec" | "FailureAction" | "SuccessAction") => {
            "colony has no such relation between units".into()
        }
        ("Service", "IOSchedulingClass" | "IOSchedulingPriority" | "CPUSchedulingPolicy" | "CPUSchedulingPriority" | "CPUAffinity" | "NUMAPolicy" | "TimerSlackNSec") => {
            "colony sets nice, oom_score_adj and io_weight only: wrap the program in `ionice`/`taskset`/`chrt` for this".into()
        }
        ("Service", "PassEnvironment" | "UnsetEnvironment") => {
            "colony gives a unit exactly its `environment` (plus COLONY_*): set the values there".into()
        }
        ("Service", "RestartPreventExitStatus" | "RestartForceExitStatus") => {
            "colony decides restarts by restart.policy and success_codes only".into()
        }
        ("Service", "SendSIGKILL" | "SendSIGHUP" | "FinalKillSignal" | "KillMode" | "RestartKillSignal" | "TimeoutAbortSec") => {
            "colony always stops the whole unit: the stop signal, then SIGKILL to everything left after stop.timeout".into()
        }
        ("Service", "StandardInput" | "TTYPath" | "TTYReset" | "TTYVHangup" | "TTYVTDisallocate" | "UtmpIdentifier" | "UtmpMode") => {
            "colony starts a program with stdin on /dev/null, or on a terminal with [tty] (StandardInput=tty, tty-force or tty-fail, with TTYPath= a terminal below /dev)".into()
        }
        ("Service", "Slice") => "each colony unit has its own cgroup below colony's".into(),
        ("Install", "Alias" | "Also" | "DefaultInstance") => "colony has no aliases or install-time links".into(),
        ("Timer", "RandomizedDelaySec" | "FixedRandomDelay") => "colony timers run at the scheduled time, with no random delay".into(),
        ("Timer", "WakeSystem") => "colony does not wake a suspended machine".into(),
        ("Service", "RuntimeMaxSec") => "colony bounds the run time of timer units only ([timer] timeout)".into(),
        ("Service", "IgnoreSIGPIPE") => "colony starts programs with default signal dispositions (SIGPIPE not ignored)".into(),
        _ if k.starts_with("Memory") || k.starts_with("IO") || k.starts_with("CPU") || k.starts_with("Startup") || k.starts_with("Managed") || k.starts_with("IP") => {
            "colony has no such resource control (memory_max, memory_high, cpu_max, cpu_weight, tasks_max only)".into()
        }
        _ => format!("colony has no equivalent of [{section}] {k}"),
    }
}

/// A dependency name to a unit name, or why it cannot be one.
pub(super) fn dep_name(n: &str) -> Result<String, (bool, String)> {
    if REACHED_UNITS.contains(&n) {
        return Err((
            true,
            format!("{n} is reached before colony-init starts any unit (file systems are mounted first)"),
        ));
    }
    if let Some(stem) = n.strip_suffix(".service") {
        // An instance (`P@I`, `I` perhaps a specifier such as %i) keeps its `@`.
        return Ok(match stem.split_once('@') {
            Some((p, i)) if !i.is_empty() => {
                let i: String = i
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '%') {
                            c
                        } else {
                            '-'
                        }
                    })
                    .collect();
                format!("{}@{i}", unit_name(p))
            }
            _ => unit_name(stem),
        });
    }
    if n.ends_with(".socket") {
        return Err((
            false,
            format!("{n}: colony has no socket activation: the program must open its own socket (check its options, e.g. a --listen or a port setting)"),
        ));
    }
    let kind = n.rsplit_once('.').map(|x| x.1).unwrap_or("unit");
    Err((
        false,
        format!(
            "{n}: colony has no {kind} units; if a colony unit provides it (e.g. brings the network up), name that unit instead"
        ),
    ))
}

/// Where systemd looks for unit files, most local first.
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// Whether systemd would find unit `n` (`X.service`, or an instance `P@I.service` of the
/// template `P@.service`) here or beside `beside` (the directory imported from).
pub(super) fn installed(n: &str, beside: Option<&std::path::Path>) -> bool {
    let template = n
        .split_once('@')
        .and_then(|(p, rest)| rest.rsplit_once('.').map(|(_, ext)| format!("{p}@.{ext}")));
    let names: Vec<&str> = std::iter::once(n).chain(template.as_deref()).collect();
    UNIT_DIRS
        .iter()
        .map(std::path::Path::new)
        .chain(beside)
        .any(|d| names.iter().any(|f| d.join(f).exists()))
}

//! systemd `.service` and `.timer` files (with their drop-ins) to units.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::calendar;
use super::draft::{unit_name, Draft, Entry, Fate, V};
use super::words::{fmt_duration, fmt_size, size, systemd_bool, systemd_timespan, systemd_words};

/// One `Key=Value` of a unit file or drop-in.
#[derive(Debug, Clone)]
struct Item {
    section: String,
    key: String,
    value: String,
    origin: String,
}

/// Read a unit file's assignments, in order (sections, comments, `\` continuations).
fn parse_file(path: &Path, items: &mut Vec<Item>) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let shown = path.display().to_string();
    let mut section = String::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, raw)) = lines.next() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            match line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                Some(s) => section = s.to_string(),
                None => return Err(format!("{shown}:{}: bad section header `{line}`", n + 1)),
            }
            continue;
        }
        let mut full = line.to_string();
        while full.ends_with('\\') {
            full.pop();
            full.push(' ');
            match lines.next() {
                Some((_, next)) => {
                    let t = next.trim();
                    if t.starts_with('#') || t.starts_with(';') {
                        continue;
                    }
                    full.push_str(t);
                }
                None => break,
            }
        }
        let Some((k, v)) = full.split_once('=') else {
            return Err(format!("{shown}:{}: `{line}` is not KEY=VALUE", n + 1));
        };
        items.push(Item {
            section: section.clone(),
            key: k.trim().to_string(),
            value: v.trim().to_string(),
            origin: format!("{shown}:{}", n + 1),
        });
    }
    Ok(())
}

/// `foo@bar.service` -> (`foo`, Some(`bar`), `service`).
fn split_name(full: &str) -> (String, Option<String>, String) {
    let (stem, suffix) = full.rsplit_once('.').unwrap_or((full, ""));
    match stem.split_once('@') {
        Some((p, i)) => (p.to_string(), Some(i.to_string()), suffix.to_string()),
        None => (stem.to_string(), None, suffix.to_string()),
    }
}

/// The file to read for `path`: itself, or for an instance `foo@bar.service` that has no
/// file of its own, its template `foo@.service`.
fn resolve(path: &Path) -> Result<PathBuf, String> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
    let (prefix, inst, suffix) = split_name(file);
    if inst.is_some_and(|i| !i.is_empty()) {
        let t = path.with_file_name(format!("{prefix}@.{suffix}"));
        if t.is_file() {
            return Ok(t);
        }
    }
    Err(format!("{}: no such file", path.display()))
}

/// The unit file and its drop-ins (`NAME.d/*.conf`, and the template's for an instance),
/// sorted by file name as systemd applies them.
fn load(path: &Path, full: &str) -> Result<(Vec<Item>, Vec<PathBuf>), String> {
    let main = resolve(path)?;
    let mut items = Vec::new();
    parse_file(&main, &mut items)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let (prefix, inst, suffix) = split_name(full);
    let mut dirs = Vec::new();
    if inst.is_some() {
        dirs.push(dir.join(format!("{prefix}@.{suffix}.d")));
    }
    dirs.push(dir.join(format!("{full}.d")));
    let mut confs: BTreeMap<String, PathBuf> = BTreeMap::new();
    for d in dirs {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.ends_with(".conf") {
                    confs.insert(name, e.path());
                }
            }
        }
    }
    let mut used = vec![main];
    for p in confs.into_values() {
        parse_file(&p, &mut items)?;
        used.push(p);
    }
    Ok((items, used))
}

const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Targets that colony-init has reached before it starts any unit (file systems mounted,
/// early boot done), so ordering after them is already true.
const REACHED_TARGETS: &[&str] = &[
    "sysinit.target",
    "basic.target",
    "local-fs.target",
    "local-fs-pre.target",
    "paths.target",
    "sockets.target",
    "timers.target",
    "slices.target",
    "swap.target",
    "systemd-journald.socket",
    "systemd-tmpfiles-setup.service",
    "systemd-remount-fs.service",
];

/// Keys that have nothing to carry because colony already does it, with why.
fn same_reason(section: &str, key: &str) -> Option<&'static str> {
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

/// Keys colony cannot carry, with why and what to do instead.
fn drop_reason(section: &str, key: &str) -> String {
    let k = key;
    if k.starts_with("Limit") {
        return "colony sets only the open-files limit (nofile): wrap the program in `prlimit` for others".into();
    }
    if k.starts_with("Condition") || k.starts_with("Assert") {
        return "colony starts a unit unconditionally: check the condition in the program or a wrapper script".into();
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
        return "colony has no sandboxing of this kind (only user, groups, capabilities and no_new_privileges)".into();
    }
    if k.ends_with("Directory") && k != "WorkingDirectory"
        || k.ends_with("DirectoryMode")
        || k == "RuntimeDirectoryPreserve"
    {
        return "colony creates no directories for a unit: create it (owned by the unit's user) before the unit starts".into();
    }
    match (section, k) {
        ("Service", "ExecStartPre" | "ExecStartPost" | "ExecStop" | "ExecStopPost" | "ExecCondition") => {
            "colony runs one program per unit: fold this command into a wrapper script that ends with `exec` of the program".into()
        }
        ("Service", "ExecReload") => {
            "colony has no reload command: use `colonyctl signal SIGHUP NAME` (or `colonyctl restart NAME`)".into()
        }
        ("Unit" | "Service", "StartLimitBurst" | "StartLimitIntervalSec" | "StartLimitInterval" | "StartLimitAction") => {
            "colony never gives up restarting: it backs off, doubling the delay up to restart.delay_max".into()
        }
        ("Unit", "Before") => "colony orders from the later unit: add this unit to the other's `after`".into(),
        ("Unit", "Conflicts" | "PartOf" | "OnFailure" | "OnSuccess" | "PropagatesReloadTo" | "ReloadPropagatedFrom" | "JoinsNamespaceOf" | "Upholds" | "StopWhenUnneeded" | "RefuseManualStart" | "RefuseManualStop" | "AllowIsolate" | "JobTimeoutSec" | "FailureAction" | "SuccessAction") => {
            "colony has no such relation between units".into()
        }
        ("Service", "Nice" | "OOMScoreAdjust" | "IOSchedulingClass" | "IOSchedulingPriority" | "CPUSchedulingPolicy" | "CPUSchedulingPriority" | "CPUAffinity" | "NUMAPolicy" | "TimerSlackNSec") => {
            "colony sets no scheduling priority: wrap the program in `nice`/`ionice`/`taskset` if it needs one".into()
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
        ("Service", "StandardInput" | "TTYPath" | "TTYReset" | "TTYVHangup") => {
            "colony starts every program with stdin on /dev/null".into()
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

/// The parsed source and the unit being made from it.
struct Sd {
    items: Vec<Item>,
    done: Vec<bool>,
    d: Draft,
    /// Full systemd name (`redis-server.service`).
    full: String,
    user: Option<String>,
    env: Vec<(String, String)>,
    is_timer_job: bool,
}

impl Sd {
    fn src(&self, i: usize) -> String {
        let it = &self.items[i];
        let v = if it.value.chars().count() > 100 {
            format!("{}...", it.value.chars().take(97).collect::<String>())
        } else {
            it.value.clone()
        };
        format!("{}={v}", it.key)
    }

    fn origin(&self, i: usize) -> String {
        self.items[i].origin.clone()
    }

    fn indices(&self, section: &str, key: &str) -> Vec<usize> {
        (0..self.items.len())
            .filter(|&i| self.items[i].section == section && self.items[i].key == key)
            .collect()
    }

    fn mark(&mut self, i: usize, to: Option<String>, fate: Fate) {
        let (o, s) = (self.origin(i), self.src(i));
        self.d.note(&o, &s, to, fate);
        self.done[i] = true;
    }

    fn carry(&mut self, i: usize, k: &str, v: V) {
        let (o, s) = (self.origin(i), self.src(i));
        self.d.carry(&o, &s, k, v);
        self.done[i] = true;
    }

    fn approx(&mut self, i: usize, k: &str, v: V, why: impl Into<String>) {
        let (o, s) = (self.origin(i), self.src(i));
        self.d.approx(&o, &s, k, v, why);
        self.done[i] = true;
    }

    fn same(&mut self, i: usize, why: impl Into<String>) {
        self.mark(i, None, Fate::Same(why.into()));
    }

    fn drop_it(&mut self, i: usize, why: impl Into<String>) {
        self.mark(i, None, Fate::Dropped(why.into()));
    }

    /// The last assignment of a single-valued key; earlier ones are reported as overridden.
    /// An empty last value resets the key: `None`.
    fn last(&mut self, section: &str, key: &str) -> Option<usize> {
        let all = self.indices(section, key);
        let (&last, earlier) = all.split_last()?;
        for &i in earlier {
            let why = format!("overridden by {}", self.items[last].origin);
            self.same(i, why);
        }
        if self.items[last].value.is_empty() {
            self.same(last, "empty: resets the key to its default");
            return None;
        }
        Some(last)
    }

    /// The assignments of a list key since the last empty one (which resets the list).
    fn list(&mut self, section: &str, key: &str) -> Vec<usize> {
        let all = self.indices(section, key);
        let reset = all.iter().rposition(|&i| self.items[i].value.is_empty());
        match reset {
            Some(r) => {
                let at = self.items[all[r]].origin.clone();
                for &i in &all[..r] {
                    self.same(i, format!("reset by the empty assignment at {at}"));
                }
                self.same(all[r], "empty: resets the list");
                all[r + 1..].to_vec()
            }
            None => all,
        }
    }

    /// The value with systemd's specifiers (`%n %N %p %i %I %j %u %h %t %S %C %L %E %T %V %%`)
    /// expanded.
    fn expand(&mut self, i: usize) -> String {
        let v = self.items[i].value.clone();
        self.expand_str(&v)
    }

    fn expand_str(&mut self, s: &str) -> String {
        if !s.contains('%') {
            return s.to_string();
        }
        let (prefix, inst, _) = split_name(&self.full);
        let inst = inst.unwrap_or_default();
        let user = self.user.clone().unwrap_or_else(|| "root".into());
        let mut out = String::new();
        let mut it = s.chars();
        while let Some(c) = it.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let Some(sp) = it.next() else {
                out.push('%');
                break;
            };
            let rep = match sp {
                '%' => "%".to_string(),
                'n' => self.full.clone(),
                'N' => self
                    .full
                    .rsplit_once('.')
                    .map(|x| x.0)
                    .unwrap_or(&self.full)
                    .to_string(),
                'p' => prefix.clone(),
                'P' => unescape(&prefix),
                'i' => inst.clone(),
                'I' => unescape(&inst),
                'j' => prefix.rsplit('-').next().unwrap_or(&prefix).to_string(),
                'u' => user.clone(),
                'h' => home_of(&user).unwrap_or_else(|| {
                    self.d
                        .warnings
                        .push(format!("%h: no home directory known for user `{user}`"));
                    format!("/home/{user}")
                }),
                't' => "/run".into(),
                'S' => "/var/lib".into(),
                'C' => "/var/cache".into(),
                'L' => "/var/log".into(),
                'E' => "/etc".into(),
                'T' => "/tmp".into(),
                'V' => "/var/tmp".into(),
                other => {
                    self.d.warnings.push(format!(
                        "specifier %{other} is not expanded by the import; the unit has it literally"
                    ));
                    format!("%{other}")
                }
            };
            out.push_str(&rep);
        }
        out
    }
}

/// systemd's name unescaping: `-` is `/`, `\xNN` a byte.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '-' => out.push('/'),
            '\\' if it.peek() == Some(&'x') => {
                it.next();
                let h: String = (0..2).filter_map(|_| it.next()).collect();
                match u8::from_str_radix(&h, 16) {
                    Ok(b) => out.push(b as char),
                    Err(_) => out.push_str(&format!("\\x{h}")),
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn home_of(user: &str) -> Option<String> {
    if user == "root" {
        return Some("/root".into());
    }
    nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .map(|u| u.dir.to_string_lossy().to_string())
}

/// The variables of an `EnvironmentFile=`: `KEY=VALUE` lines, `#`/`;` comments, optional
/// `export`, single or double quotes, `\` continuations.
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        let mut line = l.trim().to_string();
        while line.ends_with('\\') {
            line.pop();
            match lines.next() {
                Some(n) => line.push_str(n.trim()),
                None => break,
            }
        }
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(&line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let val = if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
            v[1..v.len() - 1].to_string()
        } else if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
            let mut o = String::new();
            let mut it = v[1..v.len() - 1].chars();
            while let Some(c) = it.next() {
                if c == '\\' {
                    match it.next() {
                        Some(x @ ('"' | '\\' | '$' | '`')) => o.push(x),
                        Some(x) => {
                            o.push('\\');
                            o.push(x);
                        }
                        None => o.push('\\'),
                    }
                } else {
                    o.push(c);
                }
            }
            o
        } else {
            v.to_string()
        };
        out.push((k.trim().to_string(), val));
    }
    Ok(out)
}

/// Expand `$VAR` (a whole word: split into words) and `${VAR}` (in place) in an argv, as
/// systemd does for ExecStart. Returns the new argv and the names that were not set.
fn expand_vars(argv: &[String], env: &[(String, String)]) -> (Vec<String>, Vec<String>) {
    let get = |k: &str| {
        env.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let mut missing = Vec::new();
    let mut out = Vec::new();
    let is_name = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !s.as_bytes()[0].is_ascii_digit()
    };
    for w in argv {
        if let Some(name) = w.strip_prefix('$').filter(|n| is_name(n)) {
            match get(name) {
                Some(v) => out.extend(v.split_whitespace().map(str::to_string)),
                None => missing.push(name.to_string()),
            }
            continue;
        }
        let mut s = String::new();
        let mut rest = w.as_str();
        while let Some(p) = rest.find('$') {
            s.push_str(&rest[..p]);
            let after = &rest[p + 1..];
            if let Some(a) = after.strip_prefix('$') {
                s.push('$');
                rest = a;
            } else if let Some(inner) = after.strip_prefix('{') {
                match inner.find('}') {
                    Some(e) if is_name(&inner[..e]) => {
                        match get(&inner[..e]) {
                            Some(v) => s.push_str(&v),
                            None => missing.push(inner[..e].to_string()),
                        }
                        rest = &inner[e + 1..];
                    }
                    _ => {
                        s.push('$');
                        rest = after;
                    }
                }
            } else {
                s.push('$');
                rest = after;
            }
        }
        s.push_str(rest);
        out.push(s);
    }
    (out, missing)
}

/// A dependency name to a unit name, or why it cannot be one.
fn dep_name(n: &str) -> Result<String, (bool, String)> {
    if let Some(stem) = n.strip_suffix(".service") {
        return Ok(unit_name(stem));
    }
    if REACHED_TARGETS.contains(&n) {
        return Err((
            true,
            format!("{n} is reached before colony-init starts any unit (file systems are mounted first)"),
        ));
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

/// Import a set of systemd files: each `.timer` is merged with the service it activates
/// (which is then not imported on its own); every other `.service` becomes a unit.
pub fn import(paths: &[PathBuf]) -> Result<(Vec<Draft>, Vec<Entry>), String> {
    let mut out = Vec::new();
    let mut general = Vec::new();
    // A masked unit (a link to /dev/null) has nothing to import.
    let masked = |p: &Path| std::fs::canonicalize(p).is_ok_and(|c| c == Path::new("/dev/null"));
    let paths: Vec<PathBuf> = paths
        .iter()
        .filter(|p| {
            if masked(p) {
                general.push(Entry {
                    origin: p.display().to_string(),
                    source: "(link to /dev/null)".into(),
                    to: None,
                    fate: Fate::Same("a masked unit: nothing to import".into()),
                });
                false
            } else {
                true
            }
        })
        .cloned()
        .collect();
    let paths = &paths[..];
    let mut consumed: BTreeSet<PathBuf> = BTreeSet::new();
    for p in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "timer"))
    {
        match import_timer(p) {
            Ok((d, service)) => {
                consumed.insert(service);
                out.push(d);
            }
            Err(e) => general.push(unimportable(p, e)),
        }
    }
    for p in paths
        .iter()
        .filter(|p| p.extension().is_none_or(|e| e != "timer"))
    {
        let canon = std::fs::canonicalize(p).unwrap_or(p.clone());
        if consumed.contains(&canon) || consumed.contains(p) {
            continue;
        }
        let full = p
            .file_name()
            .and_then(|f| f.to_str())
            .ok_or_else(|| format!("{}: not a file name", p.display()))?
            .to_string();
        if !full.ends_with(".service") {
            return Err(format!(
                "{}: only .service and .timer files can be imported from systemd",
                p.display()
            ));
        }
        match load(p, &full).and_then(|(items, used)| service(items, used, &full, None)) {
            Ok(d) => out.push(d),
            Err(e) => general.push(unimportable(p, e)),
        }
    }
    Ok((out, general))
}

/// A file that makes no unit: reported, not fatal, so one odd file does not stop the import
/// of a whole directory.
fn unimportable(p: &Path, why: String) -> Entry {
    Entry {
        origin: p.display().to_string(),
        source: "(the whole file)".into(),
        to: None,
        fate: Fate::Dropped(why),
    }
}

fn import_timer(path: &Path) -> Result<(Draft, PathBuf), String> {
    let full = path
        .file_name()
        .and_then(|f| f.to_str())
        .ok_or_else(|| format!("{}: not a file name", path.display()))?
        .to_string();
    let (titems, tused) = load(path, &full)?;
    // The service: Unit= of the timer, else the timer's own name.
    let svc_name = titems
        .iter()
        .rev()
        .find(|i| i.section == "Timer" && i.key == "Unit" && !i.value.is_empty())
        .map(|i| i.value.clone())
        .unwrap_or_else(|| format!("{}.service", full.trim_end_matches(".timer")));
    let svc_path = path.with_file_name(&svc_name);
    let (sitems, sused) = load(&svc_path, &svc_name).map_err(|e| {
        format!(
            "{}: its service {svc_name} cannot be read ({e}); a timer is imported together with its service",
            path.display()
        )
    })?;
    let canon = std::fs::canonicalize(&svc_path).unwrap_or(svc_path.clone());
    let d = service(sitems, sused, &svc_name, Some((titems, tused, full)))?;
    Ok((d, canon))
}

type TimerSrc = (Vec<Item>, Vec<PathBuf>, String);

fn service(
    items: Vec<Item>,
    used: Vec<PathBuf>,
    full: &str,
    timer: Option<TimerSrc>,
) -> Result<Draft, String> {
    let n = items.len();
    let timer_name = timer.as_ref().map(|t| t.2.clone());
    let base = timer_name.as_deref().unwrap_or(full);
    let stem = base.rsplit_once('.').map(|x| x.0).unwrap_or(base);
    // A template imported without an instance is named after its prefix.
    let stem = stem.strip_suffix('@').unwrap_or(stem);
    let name = unit_name(stem);
    let mut d = Draft::new(&name, used[0].clone());
    d.sources = used.clone();
    d.header.push(format!(
        "Imported from {} by colonyctl import.",
        used.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if name != stem {
        d.warnings.push(format!(
            "named `{name}`: `{stem}` is not a valid unit name (A-Z a-z 0-9 _ . - only)"
        ));
    }
    let mut sd = Sd {
        items,
        done: vec![false; n],
        d,
        full: full.to_string(),
        user: None,
        env: Vec::new(),
        is_timer_job: timer.is_some(),
    };
    if let Some((titems, tused, _)) = timer {
        let base = sd.items.len();
        sd.items.extend(titems);
        sd.done.resize(sd.items.len(), false);
        sd.d.sources.extend(tused.iter().cloned());
        sd.d.header[0] = format!(
            "Imported from {} by colonyctl import.",
            sd.d.sources
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        // Timer items live in their own section so service keys never mix with them.
        for it in &mut sd.items[base..] {
            if it.section != "Timer" {
                it.section = format!("timer:{}", it.section);
            }
        }
    }
    let (_, inst, _) = split_name(full);
    if inst.as_deref() == Some("") {
        sd.d.warnings.push(format!(
            "{full} is a template: %i is empty; import an instance (NAME@INSTANCE.service) to fill it"
        ));
    }
    translate(&mut sd)?;
    enabled(&mut sd, timer_name.as_deref().unwrap_or(full));
    // Nothing dropped silently: every assignment not handled above gets its fate here.
    for i in 0..sd.items.len() {
        if sd.done[i] {
            continue;
        }
        let (sec, key) = (sd.items[i].section.clone(), sd.items[i].key.clone());
        let real = sec.strip_prefix("timer:").unwrap_or(&sec).to_string();
        match same_reason(&real, &key) {
            Some(why) => sd.same(i, why),
            None => {
                let why = drop_reason(&real, &key);
                sd.drop_it(i, why)
            }
        }
    }
    Ok(sd.d)
}

fn translate(sd: &mut Sd) -> Result<(), String> {
    // [Unit]
    if let Some(i) = sd.last("Unit", "Description") {
        let v = sd.expand(i);
        sd.carry(i, "description", V::s(v));
    }
    if let Some(i) = sd.last("timer:Unit", "Description") {
        if sd.d.has("description") {
            sd.same(i, "the service's description is used");
        } else {
            let v = sd.expand(i);
            sd.carry(i, "description", V::s(v));
        }
    }
    for i in sd.list("Unit", "Documentation") {
        let v = sd.expand(i);
        sd.d.header.push(format!("Documentation: {v}"));
        sd.same(
            i,
            "documentation only: kept as a comment at the top of the unit",
        );
    }

    // Identity.
    if let Some(i) = sd.last("Service", "DynamicUser") {
        if systemd_bool(&sd.items[i].value) == Some(true) {
            sd.drop_it(
                i,
                "colony has no dynamic users: create a system user and set `user`",
            );
        } else {
            sd.same(i, "no dynamic user: the default");
        }
    }
    if let Some(i) = sd.last("Service", "User") {
        let v = sd.expand(i);
        sd.user = Some(v.clone());
        if v.bytes().all(|b| b.is_ascii_digit()) {
            match v.parse::<i64>() {
                Ok(n) => sd.carry(i, "user", V::Int(n)),
                Err(_) => sd.drop_it(i, "not a valid uid"),
            }
        } else {
            sd.carry(i, "user", V::s(v));
        }
    }
    if let Some(i) = sd.last("Service", "Group") {
        let v = sd.expand(i);
        sd.carry(i, "group", V::s(v));
    }
    let groups = sd.list("Service", "SupplementaryGroups");
    for i in groups {
        let v = sd.expand(i);
        match systemd_words(&v) {
            Ok(w) => {
                sd.d.push_strs("supplementary_groups", &w);
                let to = format!("supplementary_groups += {}", V::strs(&w));
                sd.mark(i, Some(to), Fate::Carried);
            }
            Err(e) => sd.drop_it(i, format!("cannot be split: {e}")),
        }
    }
    if let Some(i) = sd.last("Service", "LimitNOFILE") {
        // N, or SOFT:HARD; colony's nofile sets both, so SOFT:HARD becomes the hard one.
        let v = sd.items[i].value.clone();
        let n = |s: &str| {
            s.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=1_073_741_816).contains(n))
        };
        match v.split_once(':') {
            None => match n(&v) {
                Some(x) => sd.carry(i, "nofile", V::Int(x as i64)),
                None => sd.drop_it(i, "colony's nofile is a number from 1 to 1073741816"),
            },
            Some((soft, hard)) => match (n(soft), n(hard)) {
                (Some(a), Some(b)) if a == b => sd.carry(i, "nofile", V::Int(b as i64)),
                (Some(_), Some(b)) => sd.approx(
                    i,
                    "nofile",
                    V::Int(b as i64),
                    "colony's nofile sets the soft and the hard limit: both are the hard one",
                ),
                _ => sd.drop_it(i, "colony's nofile is a number from 1 to 1073741816"),
            },
        }
    }
    if let Some(i) = sd.last("Service", "UMask") {
        let v = sd.items[i].value.clone();
        match units::values::parse_umask(&v) {
            Ok(m) => sd.carry(i, "umask", V::s(format!("{m:04o}"))),
            Err(e) => sd.drop_it(i, e),
        }
    }
    if let Some(i) = sd.last("Service", "WorkingDirectory") {
        let mut v = sd.expand(i);
        let optional = v.starts_with('-');
        if optional {
            v.remove(0);
        }
        if v == "~" {
            let user = sd.user.clone().unwrap_or_else(|| "root".into());
            match home_of(&user) {
                Some(h) => v = h,
                None => {
                    sd.drop_it(i, format!("~ is the home of `{user}`, who is not known here: set `directory` by hand"));
                    v.clear();
                }
            }
        }
        if !v.is_empty() {
            if !v.starts_with('/') {
                sd.drop_it(i, "not an absolute path");
            } else if optional {
                sd.approx(
                    i,
                    "directory",
                    V::s(v),
                    "the `-` (ignore a missing directory) is not carried: colony fails the start if it is missing",
                );
            } else {
                sd.carry(i, "directory", V::s(v));
            }
        }
    }

    // Environment: Environment= first, EnvironmentFile= over it, as systemd does.
    for i in sd.list("Service", "Environment") {
        let v = sd.expand(i);
        match systemd_words(&v) {
            Ok(words) => {
                let mut set = Vec::new();
                let mut bad = Vec::new();
                for w in words {
                    match w.split_once('=') {
                        Some((k, val)) if !k.is_empty() => {
                            sd.d.table_set("environment", k, V::s(val));
                            sd.env.push((k.to_string(), val.to_string()));
                            set.push(format!("{k} = {}", V::s(val)));
                        }
                        _ => bad.push(w),
                    }
                }
                let to = Some(format!("environment: {}", set.join(", ")));
                if bad.is_empty() {
                    sd.mark(i, to, Fate::Carried);
                } else {
                    sd.mark(
                        i,
                        to,
                        Fate::Approx(format!("not assignments, skipped: {}", bad.join(" "))),
                    );
                }
            }
            Err(e) => sd.drop_it(i, format!("cannot be split: {e}")),
        }
    }
    for i in sd.list("Service", "EnvironmentFile") {
        let mut v = sd.expand(i);
        let optional = v.starts_with('-');
        if optional {
            v.remove(0);
        }
        match read_env_file(Path::new(&v)) {
            Ok(vars) => {
                let mut set = Vec::new();
                for (k, val) in vars {
                    sd.d.table_set("environment", &k, V::s(val.as_str()));
                    set.push(format!("{k} = {}", V::s(val.as_str())));
                    sd.env.push((k, val));
                }
                let to = Some(format!("environment: {}", set.join(", ")));
                sd.mark(
                    i,
                    to,
                    Fate::Approx(format!(
                        "the values were read from {v} now; colony does not re-read the file: import again after changing it"
                    )),
                );
            }
            Err(e) if optional => sd.same(
                i,
                format!("optional and not readable here ({e}): nothing to carry"),
            ),
            Err(e) => sd.drop_it(
                i,
                format!("cannot read {v} ({e}): copy its variables into `environment`"),
            ),
        }
    }

    // Type and the command.
    let ty_i = sd.last("Service", "Type");
    let ty = ty_i
        .map(|i| sd.items[i].value.clone())
        .unwrap_or_else(|| "simple".into());
    let execs = sd.list("Service", "ExecStart");
    let Some((&first, more)) = execs.split_first() else {
        return Err(format!(
            "{}: no ExecStart: there is no program to run",
            sd.d.sources[0].display()
        ));
    };
    for &i in more {
        sd.drop_it(
            i,
            "colony runs one program per unit: put the commands in a script (or import them as separate units)",
        );
    }
    exec_start(sd, first)?;

    let notify = matches!(ty.as_str(), "notify" | "notify-reload");
    if let Some(i) = ty_i {
        match ty.as_str() {
            "simple" | "exec" | "idle" => sd.same(i, "a colony unit is up when its program starts"),
            "notify" => sd.carry(i, "ready.type", V::s("notify")),
            "notify-reload" => sd.approx(
                i,
                "ready.type",
                V::s("notify"),
                "reloads are not requested by colony (use `colonyctl signal SIGHUP NAME`)",
            ),
            "oneshot" if sd.is_timer_job => {
                sd.same(i, "a timer unit runs its job to the end each time")
            }
            "oneshot" => {
                if sd.indices("Service", "Restart").is_empty() {
                    sd.approx(
                        i,
                        "restart.policy",
                        V::s("never"),
                        "colony runs it once and shows it `exited`; units that name it in `after` wait only for its start",
                    );
                } else {
                    sd.same(i, "runs once; see Restart=");
                }
            }
            "forking" => sd.drop_it(
                i,
                "colony supervises a program in the foreground: make the daemon stay in the foreground (for example --daemonize no, -f, --foreground or -D) or it will look like it exited",
            ),
            "dbus" => sd.approx(
                i,
                "ready.type",
                V::s("started"),
                "D-Bus readiness is not watched: the unit is up when its program starts",
            ),
            other => sd.drop_it(i, format!("unknown Type `{other}`")),
        }
    }

    // Restart.
    let restart_i = sd.last("Service", "Restart");
    if sd.is_timer_job {
        if let Some(i) = restart_i {
            sd.same(
                i,
                "a timer unit's job is not restarted; it runs again at its next time",
            );
        }
    } else if let Some(i) = restart_i {
        match sd.items[i].value.as_str() {
            "no" => sd.carry(i, "restart.policy", V::s("never")),
            "always" => sd.carry(i, "restart.policy", V::s("always")),
            "on-failure" => sd.carry(i, "restart.policy", V::s("on-failure")),
            "on-abnormal" | "on-abort" | "on-watchdog" => sd.approx(
                i,
                "restart.policy",
                V::s("on-failure"),
                "colony restarts on any failure: a bad exit code too, not only signals and timeouts",
            ),
            "on-success" => sd.drop_it(i, "colony has no restart on success only"),
            other => sd.drop_it(i, format!("unknown Restart `{other}`")),
        }
    } else if !sd.d.has("restart.policy") {
        sd.d.carry(
            "(systemd default)",
            "Restart= (not set)",
            "restart.policy",
            V::s("never"),
        );
    }
    if let Some(i) = sd.last("Service", "RestartSec") {
        if sd.is_timer_job {
            sd.same(i, "a timer unit's job is not restarted");
        } else {
            match systemd_timespan(&sd.items[i].value) {
                Ok(Some(t)) => {
                    let s = fmt_duration(t);
                    sd.carry(i, "restart.delay_min", V::s(s.as_str()));
                    let max = sd.last("Service", "RestartMaxDelaySec");
                    match max.map(|m| (m, systemd_timespan(&sd.items[m].value))) {
                        Some((m, Ok(Some(mx)))) if mx >= t => sd.approx(
                            m,
                            "restart.delay_max",
                            V::s(fmt_duration(mx)),
                            "colony doubles the delay after each quick death up to this (RestartSteps are not counted)",
                        ),
                        Some((m, _)) => sd.drop_it(m, "not a time span from RestartSec up"),
                        None => {
                            // A fixed delay, as systemd's: colony's backoff stays at it.
                            sd.d.set("restart.delay_max", V::s(s));
                        }
                    }
                }
                Ok(None) => sd.drop_it(i, "an infinite restart delay is not a restart"),
                Err(e) => sd.drop_it(i, e),
            }
        }
    }
    if let Some(i) = sd.last("Service", "RestartSteps") {
        sd.same(
            i,
            "colony doubles the restart delay from delay_min to delay_max",
        );
    }
    let codes = sd.list("Service", "SuccessExitStatus");
    for i in codes {
        let words = systemd_words(&sd.items[i].value).unwrap_or_default();
        let mut nums = Vec::new();
        let mut sigs = Vec::new();
        for w in words {
            match w.parse::<i64>() {
                Ok(n) if (0..=255).contains(&n) => nums.push(n),
                _ => sigs.push(w),
            }
        }
        if nums.is_empty() {
            sd.drop_it(
                i,
                format!(
                    "colony counts a death by signal ({}) as a failure, except in its own stop",
                    sigs.join(" ")
                ),
            );
            continue;
        }
        let mut cur: Vec<i64> = match sd.d.get("restart.success_codes") {
            Some(V::Arr(a)) => a
                .iter()
                .filter_map(|v| match v {
                    V::Int(n) => Some(*n),
                    _ => None,
                })
                .collect(),
            _ => vec![0],
        };
        for n in nums {
            if !cur.contains(&n) {
                cur.push(n);
            }
        }
        let v = V::Arr(cur.into_iter().map(V::Int).collect());
        if sigs.is_empty() {
            sd.carry(i, "restart.success_codes", v);
        } else {
            sd.approx(
                i,
                "restart.success_codes",
                v,
                format!(
                    "signals not carried ({}): colony counts a death by signal as a failure",
                    sigs.join(" ")
                ),
            );
        }
    }

    // Stopping.
    if let Some(i) = sd.last("Service", "KillSignal") {
        let v = sd.items[i].value.clone();
        match units::values::parse_signal(&v) {
            Ok(_) => sd.carry(i, "stop.signal", V::s(v)),
            Err(e) => sd.drop_it(i, e),
        }
    }
    if let Some(i) = sd.last("Service", "KillMode") {
        if sd.items[i].value == "control-group" {
            sd.same(i, "colony stops the whole unit (its cgroup)");
        }
    }
    let stop_i = sd.last("Service", "TimeoutStopSec");
    let both_i = sd.last("Service", "TimeoutSec");
    let start_i = sd.last("Service", "TimeoutStartSec");
    if let Some(i) = stop_i {
        match systemd_timespan(&sd.items[i].value) {
            Ok(Some(t)) if !t.is_zero() => sd.carry(i, "stop.timeout", V::s(fmt_duration(t))),
            Ok(_) => sd.drop_it(
                i,
                "colony always ends a stop with SIGKILL after stop.timeout (default: colony-init's --kill-timeout)",
            ),
            Err(e) => sd.drop_it(i, e),
        }
    }
    if let Some(i) = both_i {
        let set_stop = stop_i.is_none();
        let set_ready = notify && start_i.is_none();
        match systemd_timespan(&sd.items[i].value) {
            _ if !set_stop && !set_ready => {
                sd.same(i, "TimeoutStartSec= and TimeoutStopSec= say more precisely")
            }
            Ok(Some(t)) if !t.is_zero() => {
                let v = fmt_duration(t);
                let mut to = Vec::new();
                if set_stop {
                    sd.d.set("stop.timeout", V::s(v.as_str()));
                    to.push(format!("stop.timeout = {}", V::s(v.as_str())));
                }
                if set_ready {
                    sd.d.set("ready.timeout", V::s(v.as_str()));
                    to.push(format!("ready.timeout = {}", V::s(v.as_str())));
                }
                sd.mark(i, Some(to.join(", ")), Fate::Carried);
            }
            Ok(_) => sd.drop_it(
                i,
                "colony's stop and ready timeouts are finite: set them long enough",
            ),
            Err(e) => sd.drop_it(i, e),
        }
    }
    if stop_i.is_none() && both_i.is_none() {
        sd.d.carry(
            "(systemd default)",
            "TimeoutStopSec= (not set)",
            "stop.timeout",
            V::s("1m 30s"),
        );
    }
    if let Some(i) = start_i {
        if notify {
            match systemd_timespan(&sd.items[i].value) {
                Ok(Some(t)) if !t.is_zero() => sd.carry(i, "ready.timeout", V::s(fmt_duration(t))),
                Ok(_) => sd.drop_it(
                    i,
                    "colony's ready timeout is finite: set [ready] timeout long enough",
                ),
                Err(e) => sd.drop_it(i, e),
            }
        } else {
            sd.same(
                i,
                "a unit that is not Type=notify is up at exec: nothing to time out",
            );
        }
    }
    if let Some(i) = sd.last("Service", "WatchdogSec") {
        match systemd_timespan(&sd.items[i].value) {
            Ok(Some(t)) if t.is_zero() => sd.same(i, "0: no watchdog"),
            Ok(Some(t)) if notify => sd.carry(i, "ready.watchdog", V::s(fmt_duration(t))),
            Ok(Some(_)) => sd.drop_it(i, "colony's watchdog needs Type=notify"),
            Ok(None) => sd.same(i, "infinity: no watchdog"),
            Err(e) => sd.drop_it(i, e),
        }
    }
    if let Some(i) = sd.last("Service", "RuntimeMaxSec") {
        if sd.is_timer_job {
            match systemd_timespan(&sd.items[i].value) {
                Ok(Some(t)) => sd.carry(i, "timer.timeout", V::s(fmt_duration(t))),
                Ok(None) => sd.same(i, "infinity: no limit"),
                Err(e) => sd.drop_it(i, e),
            }
        }
    }

    resources(sd);
    capabilities(sd);
    if let Some(i) = sd.last("Service", "NoNewPrivileges") {
        match systemd_bool(&sd.items[i].value) {
            Some(b) => sd.carry(i, "no_new_privileges", V::Bool(b)),
            None => sd.drop_it(i, "not a boolean"),
        }
    }
    dependencies(sd);
    logging(sd);
    if sd.is_timer_job {
        timer(sd)?;
    }
    Ok(())
}

/// The directories of a host's systemd units: a file read from one of them can be looked up
/// in the host's enablement links.
const SYSTEM_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// Whether `full` (e.g. `ssh.service`) is enabled on this host: a link to it in some
/// `*.wants/` or `*.requires/` directory of the system unit directories.
fn enabled_on_host(full: &str) -> bool {
    SYSTEM_DIRS.iter().any(|d| {
        std::fs::read_dir(d).is_ok_and(|rd| {
            rd.flatten().any(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                (n.ends_with(".wants") || n.ends_with(".requires"))
                    && e.path().join(full).symlink_metadata().is_ok()
            })
        })
    })
}

/// `enabled`: systemd starts a unit at boot only when it is enabled (an [Install] section
/// and its links) or pulled in by another; a static unit (no [Install]) only when pulled in.
/// `full` is the file that decides: the timer for a timer unit.
fn enabled(sd: &mut Sd, full: &str) {
    let section = if sd.is_timer_job {
        "timer:Install"
    } else {
        "Install"
    };
    let install = sd.items.iter().any(|i| {
        i.section == section
            && matches!(i.key.as_str(), "WantedBy" | "RequiredBy" | "UpheldBy")
            && !i.value.is_empty()
    });
    let file =
        sd.d.sources
            .iter()
            .rev()
            .find(|p| {
                p.file_name().is_some_and(|f| {
                    f.to_string_lossy().ends_with(if sd.is_timer_job {
                        ".timer"
                    } else {
                        ".service"
                    })
                })
            })
            .cloned()
            .unwrap_or_default();
    let on_host = SYSTEM_DIRS
        .iter()
        .any(|d| file.parent() == Some(Path::new(d)));
    if !install {
        sd.d.approx(
            "(no [Install] section)",
            "[Install] absent: a static unit",
            "enabled",
            V::Bool(false),
            "systemd starts a static unit only when another unit pulls it in; colony starts it with a unit that `requires` it, or on `colonyctl start`",
        );
    } else if on_host && !enabled_on_host(full) {
        sd.d.carry(
            "(this machine)",
            &format!(
                "{full} is not enabled here (no link in {}/*.wants)",
                SYSTEM_DIRS[0]
            ),
            "enabled",
            V::Bool(false),
        );
    } else if on_host {
        sd.d.same(
            "(this machine)",
            &format!("{full} is enabled here"),
            "enabled = true is the default",
        );
    }
}

fn exec_start(sd: &mut Sd, i: usize) -> Result<(), String> {
    let raw = sd.items[i].value.clone();
    let mut rest = raw.as_str();
    let mut prefixes = String::new();
    while let Some(c) = rest.chars().next().filter(|c| "-@:+!".contains(*c)) {
        prefixes.push(c);
        rest = &rest[c.len_utf8()..];
    }
    let words = systemd_words(rest).map_err(|e| format!("{}: ExecStart: {e}", sd.origin(i)))?;
    let mut words: Vec<String> = words.iter().map(|w| sd.expand_str(w)).collect();
    if words.is_empty() {
        return Err(format!("{}: ExecStart has no command", sd.origin(i)));
    }
    let mut notes = Vec::new();
    if prefixes.contains('@') && words.len() >= 2 {
        let argv0 = words.remove(1);
        notes.push(format!(
            "argv[0] `{argv0}` (@) is not carried: the program sees its path"
        ));
    }
    if !prefixes.contains(':') {
        let (expanded, missing) = expand_vars(&words, &sd.env);
        if expanded != words {
            notes.push("variables were expanded now, from this unit's environment".to_string());
        }
        if !missing.is_empty() {
            notes.push(format!(
                "not set, expanded to nothing: ${}",
                missing.join(", $")
            ));
        }
        words = expanded;
    }
    if prefixes.contains('-') {
        notes.push(
            "`-` (a failing exit ignored) is not carried: colony judges the exit by restart.success_codes".into(),
        );
    }
    if prefixes.contains('+') {
        notes.push(
            "`+` (full privileges) is not carried: user and capabilities apply to the program"
                .into(),
        );
    }
    if words[0].contains('/') && !words[0].starts_with('/') {
        return Err(format!(
            "{}: ExecStart: `{}` is a relative path",
            sd.origin(i),
            words[0]
        ));
    }
    let v = V::strs(&words);
    if notes.is_empty() {
        sd.carry(i, "exec", v);
    } else {
        sd.approx(i, "exec", v, notes.join("; "));
    }
    Ok(())
}

fn resources(sd: &mut Sd) {
    for (key, to) in [
        ("MemoryMax", "resources.memory_max"),
        ("MemoryLimit", "resources.memory_max"),
        ("MemoryHigh", "resources.memory_high"),
    ] {
        if let Some(i) = sd.last("Service", key) {
            let v = sd.items[i].value.clone();
            if v.ends_with('%') {
                sd.drop_it(
                    i,
                    "a share of the machine's memory has no colony form: give a size",
                );
                continue;
            }
            match size(&v) {
                Ok(Some(0)) => sd.drop_it(i, "0 has no colony form"),
                Ok(Some(n)) => sd.carry(i, to, V::s(fmt_size(n))),
                Ok(None) => sd.same(i, "infinity: no limit, colony's default"),
                Err(e) => sd.drop_it(i, e),
            }
        }
    }
    if let Some(i) = sd.last("Service", "CPUQuota") {
        let v = sd.items[i].value.clone();
        match v
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<f64>().ok())
        {
            Some(p) if p > 0.0 => {
                let whole = p.ceil() as u64;
                if (whole as f64 - p).abs() < f64::EPSILON {
                    sd.carry(i, "resources.cpu_max", V::s(format!("{whole}%")));
                } else {
                    sd.approx(
                        i,
                        "resources.cpu_max",
                        V::s(format!("{whole}%")),
                        "rounded up to a whole percent",
                    );
                }
            }
            _ => sd.drop_it(i, "not a percentage"),
        }
    }
    if let Some(i) = sd.last("Service", "CPUWeight") {
        match sd.items[i].value.parse::<i64>() {
            Ok(n) if (1..=10000).contains(&n) => sd.carry(i, "resources.cpu_weight", V::Int(n)),
            _ => sd.drop_it(i, "colony's cpu_weight is a number from 1 to 10000"),
        }
    }
    if let Some(i) = sd.last("Service", "CPUShares") {
        match sd.items[i].value.parse::<i64>() {
            Ok(n) if n > 0 => sd.approx(
                i,
                "resources.cpu_weight",
                V::Int((n * 100 / 1024).clamp(1, 10000)),
                "converted from cgroup v1 shares (1024 = weight 100)",
            ),
            _ => sd.drop_it(i, "not a number of shares"),
        }
    }
    if let Some(i) = sd.last("Service", "TasksMax") {
        let v = sd.items[i].value.clone();
        if v == "infinity" {
            sd.same(i, "infinity: no limit, colony's default");
        } else {
            match v.parse::<i64>() {
                Ok(n) if n > 0 => sd.carry(i, "resources.tasks_max", V::Int(n)),
                _ => sd.drop_it(
                    i,
                    "colony's tasks_max is a number of tasks (a percentage has no colony form)",
                ),
            }
        }
    }
}

/// A capability list assignment: the names (checked), or `~` for all but them.
fn cap_set(value: &str) -> Result<BTreeSet<String>, String> {
    let (invert, list) = match value.strip_prefix('~') {
        Some(r) => (true, r),
        None => (false, value),
    };
    let mut set = BTreeSet::new();
    for w in list.split_whitespace() {
        let up = w.to_ascii_uppercase();
        units::values::parse_capability(&up)?;
        set.insert(up);
    }
    Ok(if invert {
        ALL_CAPS
            .iter()
            .filter(|c| !set.contains(**c) && units::values::parse_capability(c).is_ok())
            .map(|c| c.to_string())
            .collect()
    } else {
        set
    })
}

fn capabilities(sd: &mut Sd) {
    let mut sets: Vec<(usize, bool)> = Vec::new();
    let mut bounding: Option<BTreeSet<String>> = None;
    let mut ambient: Option<BTreeSet<String>> = None;
    for (key, is_bounding) in [
        ("CapabilityBoundingSet", true),
        ("AmbientCapabilities", false),
    ] {
        for i in sd.list("Service", key) {
            match cap_set(&sd.items[i].value) {
                Ok(s) => {
                    let slot = if is_bounding {
                        &mut bounding
                    } else {
                        &mut ambient
                    };
                    slot.get_or_insert_with(BTreeSet::new).extend(s);
                    sets.push((i, is_bounding));
                }
                Err(e) => sd.drop_it(i, e),
            }
        }
    }
    if sets.is_empty() {
        return;
    }
    let root = sd.user.as_deref().is_none_or(|u| u == "root" || u == "0");
    let result: Option<BTreeSet<String>> = match (root, &bounding, &ambient) {
        (true, Some(b), _) => Some(b.clone()),
        (true, None, _) => None,
        (false, b, Some(a)) => Some(match b {
            Some(b) => a.intersection(b).cloned().collect(),
            None => a.clone(),
        }),
        (false, _, None) => None,
    };
    match result {
        Some(caps) => {
            let list: Vec<String> = caps.into_iter().collect();
            let v = V::strs(&list);
            let to = format!("capabilities = {v}");
            sd.d.set("capabilities", v);
            for (i, _) in sets {
                sd.mark(i, Some(to.clone()), Fate::Carried);
            }
        }
        None => {
            for (i, is_bounding) in sets {
                let why = if root {
                    "a root program keeps its capabilities (colony's default without `capabilities`)"
                } else if is_bounding {
                    "a non-root program has no capabilities unless ambient: nothing to bound"
                } else {
                    "ambient capabilities for root are its own"
                };
                sd.same(i, why);
            }
        }
    }
}

fn dependencies(sd: &mut Sd) {
    for (key, to, note) in [
        ("After", "after", None),
        ("Requires", "requires", None),
        (
            "BindsTo",
            "requires",
            Some("colony stops this unit when the other stops, but does not follow its restarts"),
        ),
        (
            "Requisite",
            "requires",
            Some("colony starts the other unit too instead of failing when it is down"),
        ),
        (
            "Wants",
            "after",
            Some(
                "colony's `after` only orders: the other unit starts only if it is enabled itself",
            ),
        ),
    ] {
        for i in sd.list("Unit", key) {
            let v = sd.expand(i);
            let origin = sd.origin(i);
            let own = sd.d.name.clone();
            sd.done[i] = true;
            // One report line per name, so a line that mixes services and targets says
            // exactly which were carried.
            for n in v.split_whitespace() {
                let src = format!("{key}={n}");
                match dep_name(n) {
                    Ok(u) if u == own => sd.d.same(&origin, &src, "names this unit itself"),
                    Ok(u) => {
                        sd.d.push_strs(to, std::slice::from_ref(&u));
                        let t = Some(format!("{to} += {}", V::strs(&[u])));
                        let fate = match note {
                            Some(n) => Fate::Approx(n.to_string()),
                            None => Fate::Carried,
                        };
                        sd.d.note(&origin, &src, t, fate);
                    }
                    Err((true, why)) => sd.d.same(&origin, &src, why),
                    Err((false, why)) => sd.d.drop_key(&origin, &src, why),
                }
            }
        }
    }
}

fn logging(sd: &mut Sd) {
    let mut file: Option<String> = None;
    for key in ["StandardOutput", "StandardError"] {
        if let Some(i) = sd.last("Service", key) {
            let v = sd.expand(i);
            let target = ["file:", "append:", "truncate:"]
                .iter()
                .find_map(|p| v.strip_prefix(p));
            match (v.as_str(), target) {
                (_, Some(path)) if file.is_none() || file.as_deref() == Some(path) => {
                    file = Some(path.to_string());
                    sd.approx(
                        i,
                        "log.file",
                        V::s(path),
                        "colony writes stdout and stderr together, each line time-stamped, and rotates the file",
                    );
                }
                (_, Some(_)) => sd.drop_it(i, "colony writes stdout and stderr to one file"),
                (
                    "journal" | "journal+console" | "syslog" | "syslog+console" | "kmsg"
                    | "kmsg+console" | "inherit" | "console",
                    _,
                ) => sd.same(
                    i,
                    "colony writes the unit's output to its log file (LOG_DIR/NAME.log)",
                ),
                ("null", _) => {
                    sd.drop_it(i, "colony always keeps the unit's output in its log file")
                }
                _ => sd.drop_it(i, "colony writes the unit's output to its log file only"),
            }
        }
    }
}

fn timer(sd: &mut Sd) -> Result<(), String> {
    let cals = sd.list("Timer", "OnCalendar");
    let mut first = true;
    for i in cals {
        let v = sd.items[i].value.clone();
        if !first {
            sd.drop_it(
                i,
                "colony takes one calendar per unit: make another unit for this schedule",
            );
            continue;
        }
        match calendar::to_cron(&v) {
            Ok((cron, note)) => match units::values::parse_calendar(&cron) {
                Ok(_) => {
                    first = false;
                    match note {
                        Some(n) => sd.approx(i, "timer.calendar", V::s(cron), n),
                        None => sd.carry(i, "timer.calendar", V::s(cron)),
                    }
                }
                Err(e) => sd.drop_it(i, format!("became `{cron}`, which is not valid: {e}")),
            },
            Err(e) => sd.drop_it(i, e),
        }
    }
    for (key, to, note) in [
        ("OnUnitActiveSec", "timer.every", None),
        (
            "OnUnitInactiveSec",
            "timer.every",
            Some("colony counts from the previous start, not from its end"),
        ),
        (
            "OnBootSec",
            "timer.on_boot",
            Some("counted from colony-init's start (the boot, when it is PID 1)"),
        ),
        ("OnStartupSec", "timer.on_boot", None),
        (
            "OnActiveSec",
            "timer.on_boot",
            Some("counted from colony-init's start, not from the timer's activation"),
        ),
    ] {
        let all = sd.list("Timer", key);
        for (n, i) in all.iter().copied().enumerate() {
            if sd.d.has(to) || n > 0 {
                sd.drop_it(i, format!("colony takes one `{to}` per unit"));
                continue;
            }
            match systemd_timespan(&sd.items[i].value) {
                Ok(Some(t)) if !t.is_zero() || to == "timer.on_boot" => match note {
                    Some(nt) => sd.approx(i, to, V::s(fmt_duration(t)), nt),
                    None => sd.carry(i, to, V::s(fmt_duration(t))),
                },
                Ok(_) => sd.drop_it(i, "not a finite, non-zero time span"),
                Err(e) => sd.drop_it(i, e),
            }
        }
    }
    if let Some(i) = sd.last("Timer", "Persistent") {
        match systemd_bool(&sd.items[i].value) {
            Some(b) => sd.carry(i, "timer.persistent", V::Bool(b)),
            None => sd.drop_it(i, "not a boolean"),
        }
    }
    if let Some(i) = sd.last("Timer", "Unit") {
        sd.same(i, "the service is merged into this timer unit");
    }
    for i in 0..sd.items.len() {
        if !sd.done[i] && sd.items[i].section == "timer:Install" {
            sd.same(
                i,
                "colony runs every enabled timer unit (enabled = true is the default)",
            );
        }
    }
    if !["timer.every", "timer.calendar", "timer.on_boot"]
        .iter()
        .any(|k| sd.d.has(k))
    {
        return Err(format!(
            "{}: the timer has no schedule colony can run (see the report); nothing imported",
            sd.d.sources
                .last()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables() {
        let env = vec![
            ("OPTS".to_string(), "-a -b".to_string()),
            ("P".into(), "6379".into()),
        ];
        let argv: Vec<String> = ["/x", "$OPTS", "--port=${P}", "$$HOME", "$NOPE"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (out, missing) = expand_vars(&argv, &env);
        assert_eq!(out, vec!["/x", "-a", "-b", "--port=6379", "$HOME"]);
        assert_eq!(missing, vec!["NOPE"]);
    }

    #[test]
    fn names() {
        assert_eq!(
            split_name("getty@tty1.service"),
            ("getty".into(), Some("tty1".into()), "service".into())
        );
        assert_eq!(unescape("dev-sda1"), "dev/sda1");
        assert_eq!(dep_name("db.service"), Ok("db".into()));
        assert!(matches!(dep_name("network.target"), Err((false, _))));
        assert!(matches!(dep_name("local-fs.target"), Err((true, _))));
    }
}

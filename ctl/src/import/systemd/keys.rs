//! Resources, capabilities, dependencies and logging.

use std::collections::BTreeSet;

use super::super::draft::{Fate, V};
use super::super::words::{fmt_size, size};
use super::reasons::{dep_name, installed};
use super::source::Sd;
use super::targets::{self, Meaning};

pub(super) const ALL_CAPS: &[&str] = &[
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

pub(super) fn resources(sd: &mut Sd) {
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
pub(super) fn cap_set(value: &str) -> Result<BTreeSet<String>, String> {
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

pub(super) fn capabilities(sd: &mut Sd) {
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

pub(super) fn dependencies(sd: &mut Sd) {
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
        ("Wants", "wants", None),
        ("Before", "before", None),
        ("Conflicts", "conflicts", None),
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
                if key == "Before" && targets::REACHED.contains(&n) {
                    sd.d.before_early_boot.push((origin.clone(), src));
                    continue;
                }
                if n.ends_with(".target") {
                    match targets::meaning(key, n) {
                        Meaning::Same(why) => sd.d.same(&origin, &src, why),
                        Meaning::Dropped(why) => sd.d.drop_key(&origin, &src, why),
                        Meaning::After { unit, .. } if unit == own => {
                            sd.d.same(&origin, &src, "names this unit itself")
                        }
                        Meaning::After { unit, note } => {
                            let u = [unit.to_string()];
                            sd.d.push_strs("after", &u);
                            let t = Some(format!("after += {}", V::strs(&u)));
                            sd.d.note(&origin, &src, t, Fate::Approx(note));
                        }
                    }
                    continue;
                }
                match dep_name(n) {
                    Ok(u) if u == own => sd.d.same(&origin, &src, "names this unit itself"),
                    Ok(u) => {
                        // Ordering on (or wanting) a unit systemd would not find has no
                        // effect there: moot if colony will not have it either.
                        let beside = sd.d.sources.first().and_then(|p| p.parent());
                        if matches!(key, "After" | "Before" | "Wants") && !installed(n, beside) {
                            sd.d.absent.insert(u.clone());
                        }
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

/// `RequiresMountsFor=`: the file systems of these paths mounted first. colony mounts what
/// /etc/fstab lists in one boot task (`mount-all` of examples/machine): ordering after it
/// covers any path.
pub(super) fn mounts_for(sd: &mut Sd) {
    for i in sd.list("Unit", "RequiresMountsFor") {
        let u = ["mount-all".to_string()];
        sd.d.push_strs("after", &u);
        sd.mark(
            i,
            Some(format!("after += {}", V::strs(&u))),
            Fate::Approx(
                "examples/machine/mount-all.unit mounts every file system of /etc/fstab (these paths' among them) when colony-init boots a machine".into(),
            ),
        );
    }
}

pub(super) fn logging(sd: &mut Sd) {
    let mut file: Option<String> = None;
    for key in ["StandardOutput", "StandardError"] {
        if let Some(i) = sd.last("Service", key) {
            // Already carried as `[tty] output`.
            if sd.done[i] {
                continue;
            }
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

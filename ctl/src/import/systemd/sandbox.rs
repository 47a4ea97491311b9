//! systemd's sandbox directives to `[sandbox]`.

use super::super::draft::{Fate, V};
use super::super::words::{systemd_bool, systemd_words};
use super::source::Sd;

/// Booleans whose `yes` is the key of the same meaning.
const SWITCHES: &[(&str, &str)] = &[
    ("PrivateTmp", "sandbox.private_tmp"),
    ("PrivateDevices", "sandbox.private_devices"),
    ("PrivateNetwork", "sandbox.private_network"),
    ("ProtectKernelTunables", "sandbox.protect_kernel_tunables"),
    ("ProtectKernelModules", "sandbox.protect_kernel_modules"),
    ("ProtectKernelLogs", "sandbox.protect_kernel_logs"),
    ("ProtectControlGroups", "sandbox.protect_control_groups"),
    (
        "MemoryDenyWriteExecute",
        "sandbox.memory_deny_write_execute",
    ),
    ("RestrictRealtime", "sandbox.restrict_realtime"),
    ("RestrictSUIDSGID", "sandbox.restrict_suid_sgid"),
    ("LockPersonality", "sandbox.lock_personality"),
    ("ProtectHostname", "sandbox.protect_hostname"),
    ("ProtectClock", "sandbox.protect_clock"),
];

pub(super) fn sandbox(sd: &mut Sd) {
    for (key, to) in SWITCHES {
        if let Some(i) = sd.last("Service", key) {
            // `no` is left to the defaults' report line.
            if systemd_bool(&sd.items[i].value) == Some(true) {
                sd.carry(i, to, V::Bool(true));
            }
        }
    }
    if let Some(i) = sd.last("Service", "ProtectSystem") {
        let v = sd.items[i].value.trim().to_string();
        match (systemd_bool(&v), v.as_str()) {
            (Some(true), _) => sd.carry(i, "sandbox.protect_system", V::Bool(true)),
            (Some(false), _) => {}
            (None, "full" | "strict") => sd.carry(i, "sandbox.protect_system", V::s(v)),
            _ => sd.drop_it(i, "ProtectSystem= is yes, no, full or strict"),
        }
    }
    if let Some(i) = sd.last("Service", "ProtectHome") {
        let v = sd.items[i].value.trim().to_string();
        match (systemd_bool(&v), v.as_str()) {
            (Some(true), _) => sd.carry(i, "sandbox.protect_home", V::Bool(true)),
            (Some(false), _) => {}
            (None, "read-only" | "tmpfs") => sd.carry(i, "sandbox.protect_home", V::s(v)),
            _ => sd.drop_it(i, "ProtectHome= is yes, no, read-only or tmpfs"),
        }
    }
    if let Some(i) = sd.last("Service", "ProtectProc") {
        let v = sd.items[i].value.trim().to_string();
        match v.as_str() {
            "default" => {}
            "invisible" | "noaccess" | "ptraceable" => sd.carry(i, "sandbox.protect_proc", V::s(v)),
            _ => sd.drop_it(
                i,
                "ProtectProc= is default, invisible, noaccess or ptraceable",
            ),
        }
    }
    if let Some(i) = sd.last("Service", "RestrictNamespaces") {
        let v = sd.items[i].value.trim().to_string();
        match systemd_bool(&v) {
            Some(true) => sd.carry(i, "sandbox.restrict_namespaces", V::Bool(true)),
            Some(false) => {}
            None => sd.drop_it(
                i,
                "colony's restrict_namespaces denies every kind of namespace or none: set restrict_namespaces = true if the program needs none",
            ),
        }
    }
    // The *Directories= spellings are systemd's older names of the same keys.
    for (keys, to) in [
        (
            ["ReadWritePaths", "ReadWriteDirectories"],
            "sandbox.read_write_paths",
        ),
        (
            ["ReadOnlyPaths", "ReadOnlyDirectories"],
            "sandbox.read_only_paths",
        ),
        (
            ["InaccessiblePaths", "InaccessibleDirectories"],
            "sandbox.inaccessible_paths",
        ),
    ] {
        for key in keys {
            paths(sd, key, to);
        }
    }
    binds(sd);
    syscalls(sd);
    families(sd);
    if let Some(i) = sd.last("Service", "SystemCallArchitectures") {
        if sd.items[i].value.trim() == "native" {
            sd.same(
                i,
                "colony's filters kill a call of any other architecture than the machine's",
            );
        }
    }
}

/// A path list item: `-` kept, `+` (relative to RootDirectory=) taken off with a note.
fn path_items(v: &str) -> Result<(Vec<String>, bool), String> {
    let words = systemd_words(v)?;
    let mut plus = false;
    let mut out = Vec::new();
    for w in words {
        let (dash, rest) = match w.strip_prefix('-') {
            Some(r) => ("-", r),
            None => ("", w.as_str()),
        };
        let rest = match rest.strip_prefix('+') {
            Some(r) => {
                plus = true;
                r
            }
            None => rest,
        };
        units::sandbox::parse_path(&format!("{dash}{rest}"))?;
        out.push(format!("{dash}{rest}"));
    }
    Ok((out, plus))
}

fn paths(sd: &mut Sd, key: &str, to: &str) {
    for i in sd.list("Service", key) {
        let v = sd.expand(i);
        match path_items(&v) {
            Ok((items, plus)) => {
                sd.d.push_strs(to, &items);
                let shown = format!("{to} += {}", V::strs(&items));
                let fate = if plus {
                    Fate::Approx("+ (relative to RootDirectory=) dropped: colony has no root directory, the paths are the host's".into())
                } else {
                    Fate::Carried
                };
                sd.mark(i, Some(shown), fate);
            }
            Err(e) => sd.drop_it(i, e),
        }
    }
}

fn binds(sd: &mut Sd) {
    for (key, read_only) in [("BindPaths", false), ("BindReadOnlyPaths", true)] {
        for i in sd.list("Service", key) {
            let v = sd.expand(i);
            let words = match systemd_words(&v) {
                Ok(w) => w,
                Err(e) => {
                    sd.drop_it(i, e);
                    continue;
                }
            };
            let mut items = Vec::new();
            let mut targets = Vec::new();
            let mut bad = None;
            for w in words {
                match units::sandbox::parse_bind(&w) {
                    Ok(b) => {
                        items.push(w);
                        let t = b.target.display().to_string();
                        targets.push(if b.optional { format!("-{t}") } else { t });
                    }
                    Err(e) => bad = Some(e),
                }
            }
            if let Some(e) = bad {
                sd.drop_it(i, e);
                continue;
            }
            sd.d.push_strs("sandbox.bind_paths", &items);
            let mut shown = format!("sandbox.bind_paths += {}", V::strs(&items));
            let fate = if read_only {
                sd.d.push_strs("sandbox.read_only_paths", &targets);
                shown.push_str(&format!(
                    ", sandbox.read_only_paths += {}",
                    V::strs(&targets)
                ));
                Fate::Approx("a bind mount, then made read-only by read_only_paths".into())
            } else {
                Fate::Carried
            };
            sd.mark(i, Some(shown), fate);
        }
    }
}

fn syscalls(sd: &mut Sd) {
    for i in sd.list("Service", "SystemCallFilter") {
        let v = sd.expand(i);
        let (neg, body) = match v.trim().strip_prefix('~') {
            Some(b) => (true, b.to_string()),
            None => (false, v.trim().to_string()),
        };
        let mut items = Vec::new();
        let mut skipped = Vec::new();
        for w in body.split_whitespace() {
            // NAME:ERRNO: colony has one error number for the whole filter.
            let (name, errno) = match w.split_once(':') {
                Some((n, e)) => (n, Some(e)),
                None => (w, None),
            };
            let item = if neg {
                format!("~{name}")
            } else {
                name.to_string()
            };
            if units::sandbox::parse_syscall_filter([item.as_str()]).is_ok() {
                items.push(item);
                if let Some(e) = errno {
                    skipped.push(format!(":{e} of {name}"));
                }
            } else {
                skipped.push(name.to_string());
            }
        }
        // The mode is the first line's: a later line keeps or flips entries as systemd does.
        sd.d.push_strs("sandbox.system_call_filter", &items);
        let shown = format!("sandbox.system_call_filter += {}", V::strs(&items));
        let fate = if skipped.is_empty() {
            Fate::Carried
        } else {
            Fate::Approx(format!(
                "not carried (unknown to colony, or a per-call errno): {}",
                skipped.join(" ")
            ))
        };
        sd.mark(i, Some(shown), fate);
    }
    if let Some(i) = sd.last("Service", "SystemCallErrorNumber") {
        let v = sd.items[i].value.trim().to_string();
        match units::sandbox::parse_error_number(&v) {
            Ok(_) => sd.carry(i, "sandbox.system_call_error_number", V::s(v)),
            Err(e) => sd.drop_it(i, e),
        }
    }
}

fn families(sd: &mut Sd) {
    let lines = sd.list("Service", "RestrictAddressFamilies");
    let mut mode: Option<bool> = None;
    for i in lines {
        let v = sd.expand(i);
        let v = v.trim();
        if v == "none" {
            sd.carry(
                i,
                "sandbox.restrict_address_families",
                V::strs(&["none".to_string()]),
            );
            mode = Some(false);
            continue;
        }
        let (neg, body) = match v.strip_prefix('~') {
            Some(b) => (true, b),
            None => (false, v),
        };
        if mode.is_some_and(|m| m != neg) {
            sd.drop_it(
                i,
                "flips an earlier list between allowed and denied: write one list of allowed families",
            );
            continue;
        }
        mode = Some(neg);
        let items: Vec<String> = body
            .split_whitespace()
            .map(|f| if neg { format!("~{f}") } else { f.to_string() })
            .collect();
        match units::sandbox::parse_families(items.iter().map(String::as_str)) {
            Ok(_) => {
                sd.d.push_strs("sandbox.restrict_address_families", &items);
                let shown = format!("sandbox.restrict_address_families += {}", V::strs(&items));
                sd.mark(i, Some(shown), Fate::Carried);
            }
            Err((_, e)) => sd.drop_it(i, e),
        }
    }
}

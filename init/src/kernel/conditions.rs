//! Checking a unit's conditions and asserts (`condition_*`, `assert_*`) against this
//! system, as systemd checks `Condition*=`: paths as colony-init sees them (links followed),
//! and colony-init's own user, groups, host name, kernel command line and environment.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use units::conditions::{verdict, Check, Condition};
use units::model::Unit;

use crate::core::Verdict;

/// The verdict on `def`'s conditions (all of them first), then its asserts.
pub fn check(def: &Unit) -> Verdict {
    let results: Vec<(&Condition, bool)> = def.conditions.iter().map(|c| (c, holds(c))).collect();
    if let Err(c) = verdict(results.iter().filter(|(c, _)| !c.assert).copied()) {
        return Verdict::Skip(format!("condition not met: {c}"));
    }
    if let Err(c) = verdict(results.iter().filter(|(c, _)| c.assert).copied()) {
        return Verdict::Fail(format!("assert failed: {c}"));
    }
    Verdict::Pass
}

/// Whether the check of `c` is true (before its `!`).
fn holds(c: &Condition) -> bool {
    let arg = c.arg.as_str();
    let path = Path::new(arg);
    match c.check {
        Check::PathExists => path.exists(),
        Check::PathIsDirectory => path.is_dir(),
        Check::PathIsSymbolicLink => path.is_symlink(),
        Check::PathIsMountPoint => is_mount_point(path),
        Check::PathIsReadWrite => nix::sys::statvfs::statvfs(path)
            .is_ok_and(|s| !s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY)),
        Check::DirectoryNotEmpty => std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some()),
        Check::FileNotEmpty => std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0),
        Check::FileIsExecutable => {
            std::fs::metadata(path).is_ok_and(|m| m.is_file() || m.file_type().is_fifo())
                && nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok()
        }
        Check::User => {
            let me = nix::unistd::getuid().as_raw();
            if arg == "@system" {
                me < 1000
            } else {
                units::values::resolve_user(arg).is_ok_and(|u| u.uid == me)
            }
        }
        Check::Group => units::values::resolve_group(arg).is_ok_and(|g| {
            nix::unistd::getgid().as_raw() == g
                || nix::unistd::getgroups().is_ok_and(|gs| gs.iter().any(|x| x.as_raw() == g))
        }),
        Check::Host => {
            let host = nix::unistd::gethostname().ok();
            host.as_ref()
                .and_then(|h| h.to_str())
                .is_some_and(|h| h.eq_ignore_ascii_case(arg))
                || std::fs::read_to_string("/etc/machine-id").is_ok_and(|m| m.trim() == arg)
        }
        Check::KernelCommandLine => std::fs::read_to_string("/proc/cmdline").is_ok_and(|l| {
            l.split_whitespace().any(|w| {
                w == arg
                    || (!arg.contains('=')
                        && w.strip_prefix(arg).is_some_and(|r| r.starts_with('=')))
            })
        }),
        Check::Environment => match arg.split_once('=') {
            Some((k, v)) => std::env::var_os(k).is_some_and(|x| x == v),
            None => std::env::var_os(arg).is_some(),
        },
        Check::Virtualization => {
            let container = crate::kernel::pid1::container_hints();
            let vm = std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| {
                c.lines()
                    .any(|l| l.starts_with("flags") && l.contains(" hypervisor"))
            });
            match arg {
                "vm" => vm,
                "container" => container,
                "false" | "no" | "0" => !(vm || container),
                _ => vm || container,
            }
        }
        Check::Capability => units::values::parse_capability(arg)
            .is_ok_and(|bit| bounding_set().is_some_and(|set| set & bit != 0)),
        Check::AcPower => on_ac_power() == matches!(arg, "true" | "yes" | "1"),
    }
}

/// colony-init's capability bounding set (`CapBnd` of /proc/self/status).
fn bounding_set() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// As systemd decides it: a mains supply online, or no mains supply known at all.
fn on_ac_power() -> bool {
    let Ok(dir) = std::fs::read_dir("/sys/class/power_supply") else {
        return true;
    };
    let mut mains = false;
    for e in dir.flatten() {
        let read = |f: &str| std::fs::read_to_string(e.path().join(f)).unwrap_or_default();
        if read("type").trim() == "Mains" {
            mains = true;
            if read("online").trim() == "1" {
                return true;
            }
        }
    }
    !mains
}

/// A mount point: on another device than its parent, or listed in /proc/self/mountinfo (a
/// bind mount of the same file system).
fn is_mount_point(path: &Path) -> bool {
    let (Ok(me), Ok(up)) = (std::fs::metadata(path), std::fs::metadata(path.join(".."))) else {
        return false;
    };
    if me.dev() != up.dev() || me.ino() == up.ino() {
        return true;
    }
    let Ok(canon) = std::fs::canonicalize(path) else {
        return false;
    };
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|t| {
        t.lines().any(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|m| unescape(m) == canon.to_string_lossy())
        })
    })
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            let o: String = it.by_ref().take(3).collect();
            match u8::from_str_radix(&o, 8) {
                Ok(b) => out.push(b as char),
                Err(_) => {
                    out.push('\\');
                    out.push_str(&o);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

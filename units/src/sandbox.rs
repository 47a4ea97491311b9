//! `[sandbox]`: a mount namespace and seccomp filters per unit, with systemd.exec(5)'s meaning
//! for each key. Plain data here; colony-init's `kernel/sandbox/` turns it into a plan.

use std::collections::BTreeSet;
use std::path::PathBuf;

pub mod groups;

/// The keys of `[sandbox]`, in the order colony.unit(5) lists them.
pub const KEYS: &[&str] = &[
    "protect_system",
    "protect_home",
    "private_tmp",
    "private_devices",
    "private_network",
    "read_write_paths",
    "read_only_paths",
    "inaccessible_paths",
    "bind_paths",
    "protect_kernel_tunables",
    "protect_kernel_modules",
    "protect_kernel_logs",
    "protect_control_groups",
    "protect_hostname",
    "protect_clock",
    "protect_proc",
    "system_call_filter",
    "system_call_error_number",
    "restrict_address_families",
    "memory_deny_write_execute",
    "restrict_namespaces",
    "restrict_realtime",
    "restrict_suid_sgid",
    "lock_personality",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtectSystem {
    #[default]
    No,
    /// /usr and /boot read-only.
    Yes,
    /// /etc too.
    Full,
    /// The whole tree but /dev, /proc, /sys and `read_write_paths`.
    Strict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtectHome {
    #[default]
    No,
    /// /home, /root and /run/user empty and inaccessible.
    Yes,
    ReadOnly,
    /// An empty tmpfs on each.
    Tmpfs,
}

/// `protect_proc`: which processes' /proc/PID the unit sees (procfs `hidepid=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtectProc {
    /// The host's /proc as it is.
    #[default]
    Default,
    /// Other users' processes are not listed at all.
    Invisible,
    /// Listed, but their directories cannot be read.
    NoAccess,
    /// Only the processes it may ptrace are listed.
    Ptraceable,
}

impl ProtectProc {
    /// The procfs `hidepid=` option.
    pub fn hidepid(self) -> Option<&'static str> {
        match self {
            ProtectProc::Default => None,
            ProtectProc::Invisible => Some("invisible"),
            ProtectProc::NoAccess => Some("noaccess"),
            ProtectProc::Ptraceable => Some("ptraceable"),
        }
    }
}

/// A path of `read_write_paths`, `read_only_paths`, `inaccessible_paths`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPath {
    pub path: PathBuf,
    /// Written with a leading `-`: a missing path is skipped, not an error.
    pub optional: bool,
}

/// One of `bind_paths`: `SRC[:DST]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindPath {
    pub source: PathBuf,
    pub target: PathBuf,
    pub optional: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMode {
    /// Only these (and the `@default` group); the first entry has no `~`.
    Allow,
    /// All but these; the first entry starts with `~`.
    Deny,
}

/// `system_call_filter` resolved to system call names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallFilter {
    pub mode: ListMode,
    pub names: BTreeSet<String>,
}

/// What a filtered system call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyscallAction {
    /// The process is killed (SIGSYS), systemd's default.
    #[default]
    Kill,
    /// The call fails with this errno.
    Errno(i32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressFamilies {
    pub mode: ListMode,
    pub families: BTreeSet<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sandbox {
    pub protect_system: ProtectSystem,
    pub protect_home: ProtectHome,
    pub private_tmp: bool,
    pub private_devices: bool,
    pub private_network: bool,
    pub read_write_paths: Vec<SandboxPath>,
    pub read_only_paths: Vec<SandboxPath>,
    pub inaccessible_paths: Vec<SandboxPath>,
    pub bind_paths: Vec<BindPath>,
    pub protect_kernel_tunables: bool,
    pub protect_kernel_modules: bool,
    pub protect_kernel_logs: bool,
    pub protect_control_groups: bool,
    /// A UTS namespace of its own; changing the host or domain name fails (EPERM).
    pub protect_hostname: bool,
    /// Setting the system clock fails (EPERM) and /dev/rtc* cannot be opened.
    pub protect_clock: bool,
    pub protect_proc: ProtectProc,
    pub system_call_filter: Option<SyscallFilter>,
    pub system_call_error_number: SyscallAction,
    pub restrict_address_families: Option<AddressFamilies>,
    pub memory_deny_write_execute: bool,
    pub restrict_namespaces: bool,
    pub restrict_realtime: bool,
    pub restrict_suid_sgid: bool,
    pub lock_personality: bool,
}

impl Sandbox {
    /// Anything asks for a mount namespace.
    pub fn wants_mounts(&self) -> bool {
        self.protect_system != ProtectSystem::No
            || self.protect_home != ProtectHome::No
            || self.private_tmp
            || self.private_devices
            || !self.read_write_paths.is_empty()
            || !self.read_only_paths.is_empty()
            || !self.inaccessible_paths.is_empty()
            || !self.bind_paths.is_empty()
            || self.protect_kernel_tunables
            || self.protect_kernel_modules
            || self.protect_kernel_logs
            || self.protect_control_groups
            || self.protect_clock
            || self.protect_proc != ProtectProc::Default
    }

    /// Anything asks for a seccomp filter.
    pub fn wants_seccomp(&self) -> bool {
        self.system_call_filter.is_some()
            || self.restrict_address_families.is_some()
            || self.memory_deny_write_execute
            || self.restrict_namespaces
            || self.restrict_realtime
            || self.restrict_suid_sgid
            || self.lock_personality
            || self.protect_kernel_modules
            || self.protect_kernel_logs
            || self.private_devices
            || self.protect_hostname
            || self.protect_clock
    }

    pub fn any(&self) -> bool {
        self.wants_mounts() || self.wants_seccomp() || self.private_network
    }
}

pub fn parse_protect_system(v: &str) -> Result<ProtectSystem, String> {
    match v {
        "full" => Ok(ProtectSystem::Full),
        "strict" => Ok(ProtectSystem::Strict),
        _ => Err(format!(
            "`{v}` is not a protect_system value: write true, false, \"full\" or \"strict\""
        )),
    }
}

pub fn parse_protect_proc(v: &str) -> Result<ProtectProc, String> {
    match v {
        "default" => Ok(ProtectProc::Default),
        "invisible" => Ok(ProtectProc::Invisible),
        "noaccess" => Ok(ProtectProc::NoAccess),
        "ptraceable" => Ok(ProtectProc::Ptraceable),
        _ => Err(format!(
            "`{v}` is not a protect_proc value: write \"default\", \"invisible\", \"noaccess\" or \"ptraceable\""
        )),
    }
}

pub fn parse_protect_home(v: &str) -> Result<ProtectHome, String> {
    match v {
        "read-only" => Ok(ProtectHome::ReadOnly),
        "tmpfs" => Ok(ProtectHome::Tmpfs),
        _ => Err(format!(
            "`{v}` is not a protect_home value: write true, false, \"read-only\" or \"tmpfs\""
        )),
    }
}

fn abs(s: &str) -> Result<PathBuf, String> {
    if s.contains('\0') {
        Err("a path cannot contain a NUL character".into())
    } else if !s.starts_with('/') {
        Err(format!("`{s}` is not an absolute path"))
    } else if s.split('/').any(|c| c == "..") {
        Err(format!("`{s}` holds `..`; write the path without it"))
    } else {
        Ok(PathBuf::from(s))
    }
}

/// `PATH` or `-PATH` (missing: skipped).
pub fn parse_path(s: &str) -> Result<SandboxPath, String> {
    let (optional, p) = match s.strip_prefix('-') {
        Some(p) => (true, p),
        None => (false, s),
    };
    Ok(SandboxPath {
        path: abs(p)?,
        optional,
    })
}

/// `SRC[:DST]`, optionally `-SRC...`.
pub fn parse_bind(s: &str) -> Result<BindPath, String> {
    let (optional, rest) = match s.strip_prefix('-') {
        Some(p) => (true, p),
        None => (false, s),
    };
    let mut parts = rest.split(':');
    let src = parts.next().unwrap_or("");
    let dst = parts.next();
    if let Some(opt) = parts.next() {
        if opt != "rbind" && opt != "norbind" {
            return Err(format!(
                "`{s}`: a bind path is SRC or SRC:DST (options: rbind, norbind)"
            ));
        }
    }
    let source = abs(src)?;
    let target = match dst {
        Some(d) if !d.is_empty() => abs(d)?,
        _ => source.clone(),
    };
    Ok(BindPath {
        source,
        target,
        optional,
    })
}

/// The members of a group, recursively, into `out`. `None`: no such group.
pub fn expand_group(name: &str, out: &mut BTreeSet<String>) -> Option<()> {
    let (_, members) = groups::GROUPS.iter().find(|(g, _)| *g == name)?;
    for m in *members {
        if m.starts_with('@') {
            expand_group(m, out)?;
        } else {
            out.insert((*m).to_string());
        }
    }
    Some(())
}

fn syscall_shaped(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `system_call_filter`: the first entry says allow (no `~`) or deny (`~`); later entries
/// without `~` add to an allow list (remove from a deny list), with `~` the reverse.
pub fn parse_syscall_filter<'a>(
    items: impl IntoIterator<Item = &'a str>,
) -> Result<SyscallFilter, (usize, String)> {
    let mut mode = None;
    let mut names = BTreeSet::new();
    for (i, item) in items.into_iter().enumerate() {
        let (negated, name) = match item.strip_prefix('~') {
            Some(n) => (true, n),
            None => (false, item),
        };
        let m = *mode.get_or_insert(if negated {
            ListMode::Deny
        } else {
            ListMode::Allow
        });
        let mut set = BTreeSet::new();
        if name.starts_with('@') {
            if expand_group(name, &mut set).is_none() {
                let known: Vec<&str> = groups::GROUPS.iter().map(|(g, _)| *g).collect();
                return Err((
                    i,
                    format!(
                        "unknown group `{name}`; the groups are: {}",
                        known.join(" ")
                    ),
                ));
            }
        } else if syscall_shaped(name) {
            set.insert(name.to_string());
        } else {
            return Err((
                i,
                format!("`{item}` is neither a system call name nor a @group (~ in front denies)"),
            ));
        }
        let adds = (m == ListMode::Allow) != negated;
        for s in set {
            if adds {
                names.insert(s);
            } else {
                names.remove(&s);
            }
        }
    }
    let mode = mode.ok_or((
        0,
        "is empty; give at least one system call or @group".into(),
    ))?;
    if mode == ListMode::Allow {
        // As systemd: the calls every process needs (execve among them) stay allowed.
        let _ = expand_group("@default", &mut names);
    }
    Ok(SyscallFilter { mode, names })
}

/// errno names `system_call_error_number` accepts.
pub const ERRNOS: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("EIO", libc::EIO),
    ("EACCES", libc::EACCES),
    ("EFAULT", libc::EFAULT),
    ("EBUSY", libc::EBUSY),
    ("EINVAL", libc::EINVAL),
    ("ENOMEM", libc::ENOMEM),
    ("ENOSYS", libc::ENOSYS),
    ("EROFS", libc::EROFS),
    ("EAFNOSUPPORT", libc::EAFNOSUPPORT),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
    ("ENOTSUP", libc::ENOTSUP),
];

/// An errno name, a number from 1 to 4095, or "kill".
pub fn parse_error_number(s: &str) -> Result<SyscallAction, String> {
    if s == "kill" {
        return Ok(SyscallAction::Kill);
    }
    if let Some((_, n)) = ERRNOS.iter().find(|(name, _)| *name == s) {
        return Ok(SyscallAction::Errno(*n));
    }
    match s.parse::<i32>() {
        Ok(n) if (1..=4095).contains(&n) => Ok(SyscallAction::Errno(n)),
        _ => Err(format!(
            "`{s}` is not an errno: write \"kill\", a number from 1 to 4095, or one of {}",
            ERRNOS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" ")
        )),
    }
}

/// Address family names `restrict_address_families` accepts.
pub const FAMILIES: &[(&str, i32)] = &[
    ("AF_UNIX", libc::AF_UNIX),
    ("AF_LOCAL", libc::AF_UNIX),
    ("AF_INET", libc::AF_INET),
    ("AF_INET6", libc::AF_INET6),
    ("AF_NETLINK", libc::AF_NETLINK),
    ("AF_PACKET", libc::AF_PACKET),
    ("AF_BLUETOOTH", libc::AF_BLUETOOTH),
    ("AF_CAN", libc::AF_CAN),
    ("AF_ALG", libc::AF_ALG),
    ("AF_VSOCK", libc::AF_VSOCK),
    ("AF_XDP", libc::AF_XDP),
    ("AF_KEY", libc::AF_KEY),
    ("AF_APPLETALK", libc::AF_APPLETALK),
    ("AF_X25", libc::AF_X25),
    ("AF_AX25", libc::AF_AX25),
    ("AF_IPX", libc::AF_IPX),
    ("AF_TIPC", libc::AF_TIPC),
    ("AF_RDS", libc::AF_RDS),
];

/// `restrict_address_families`: names, all allowed, or all denied with a leading `~` on the
/// first; `["none"]` denies every family.
pub fn parse_families<'a>(
    items: impl IntoIterator<Item = &'a str>,
) -> Result<AddressFamilies, (usize, String)> {
    let mut mode = None;
    let mut families = BTreeSet::new();
    for (i, item) in items.into_iter().enumerate() {
        if item == "none" && i == 0 {
            mode = Some(ListMode::Allow);
            continue;
        }
        let (negated, name) = match item.strip_prefix('~') {
            Some(n) => (true, n),
            None => (false, item),
        };
        let m = *mode.get_or_insert(if negated {
            ListMode::Deny
        } else {
            ListMode::Allow
        });
        if negated != (m == ListMode::Deny) {
            return Err((
                i,
                "mixes allowed and denied (~) families; write all with ~ or none".into(),
            ));
        }
        match FAMILIES.iter().find(|(n, _)| *n == name) {
            Some((_, f)) => {
                families.insert(*f);
            }
            None => {
                return Err((
                    i,
                    format!(
                        "unknown address family `{name}`; known: {}",
                        FAMILIES
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                ))
            }
        }
    }
    let mode = mode.ok_or((0, "is empty; write [\"none\"] to deny every family".into()))?;
    Ok(AddressFamilies { mode, families })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn filter_lists() {
        let f = parse_syscall_filter(["@system-service", "~@privileged"]).unwrap();
        assert_eq!(f.mode, ListMode::Allow);
        assert!(f.names.contains("read") && f.names.contains("execve"));
        assert!(!f.names.contains("setuid") && !f.names.contains("chown"));
        let d = parse_syscall_filter(["~@mount", "chroot"]).unwrap();
        assert_eq!(d.mode, ListMode::Deny);
        assert!(d.names.contains("mount") && !d.names.contains("chroot"));
        assert!(parse_syscall_filter(["@nope"]).is_err());
        assert!(parse_syscall_filter(["Bad-Name"]).is_err());
    }

    #[test]
    fn every_group_member_is_a_group_or_a_name() {
        for (g, members) in groups::GROUPS {
            let mut s = BTreeSet::new();
            assert!(expand_group(g, &mut s).is_some(), "{g}");
            for m in *members {
                assert!(m.starts_with('@') || syscall_shaped(m), "{m}");
            }
        }
    }

    #[test]
    fn values() {
        assert_eq!(parse_error_number("EPERM"), Ok(SyscallAction::Errno(1)));
        assert_eq!(parse_error_number("kill"), Ok(SyscallAction::Kill));
        assert!(parse_error_number("0").is_err());
        let b = parse_bind("-/srv/data:/data").unwrap();
        assert!(b.optional && b.target == Path::new("/data"));
        assert!(parse_path("relative").is_err() && parse_path("/a/../b").is_err());
        let f = parse_families(["~AF_PACKET"]).unwrap();
        assert_eq!(f.mode, ListMode::Deny);
        assert!(parse_families(["AF_INET", "~AF_UNIX"]).is_err());
        assert!(parse_families(["none"]).unwrap().families.is_empty());
    }
}

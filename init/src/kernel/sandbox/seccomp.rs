//! The seccomp filters of a unit's `[sandbox]`, compiled to BPF in the parent (seccompiler)
//! and installed in the child with one raw seccomp(2) each, just before exec.
//!
//! One filter per kind of answer: the kernel runs every installed filter and takes the
//! strictest result, so the unit's own list, the EPERM denials (outright and by argument),
//! EAFNOSUPPORT for socket families and ENOSYS for the calls whose arguments a filter
//! cannot read (clone3, openat2) stay separate programs, and one more refuses every x32 call
//! where nothing else does. Few and short programs: installing one costs the kernel time in
//! proportion to its length (it is translated, JIT-compiled and run once per call number for
//! its cache of constant answers), and that is most of a sandboxed start.

use std::collections::{BTreeMap, BTreeSet};

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};
use units::sandbox::{ListMode, Sandbox, SyscallAction};

use super::{syscalls, Failed};

/// The compiled programs and the `sock_fprog`s that point into them (for the child).
pub struct Filters {
    progs: Vec<BpfProgram>,
    fprogs: Vec<libc::sock_fprog>,
}

impl Filters {
    pub fn is_empty(&self) -> bool {
        self.progs.is_empty()
    }

    pub fn len(&self) -> usize {
        self.progs.len()
    }

    /// Installs every filter. Only raw syscalls; `Err` with errno set.
    ///
    /// # Safety
    /// Async-signal-safe: for the child between clone and exec.
    pub unsafe fn install(&self) -> Result<(), Failed> {
        for f in &self.fprogs {
            let r = libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                f as *const libc::sock_fprog,
            );
            if r < 0 {
                return Err(Failed);
            }
        }
        Ok(())
    }
}

// SAFETY: the raw pointers in `fprogs` point into `progs`, owned by the same value and never
// changed after `build`; sharing them read-only across threads is sound.
unsafe impl Send for Filters {}
// SAFETY: as above.
unsafe impl Sync for Filters {}

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp filters are not available on this architecture")]
    Arch,
    #[error("building the seccomp filter: {0}")]
    Build(String),
}

/// `__X32_SYSCALL_BIT`, and the highest x32 call number (the compat range ends at 547).
const X32_BIT: i64 = 0x4000_0000;
const X32_LAST: i64 = 547;

fn target() -> Option<TargetArch> {
    if cfg!(target_arch = "x86_64") {
        Some(TargetArch::x86_64)
    } else {
        None
    }
}

fn nr(name: &str) -> Option<i64> {
    syscalls::X86_64
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| syscalls::X86_64[i].1)
}

fn cond(arg: u8, len: Len, op: Op, v: u64) -> Result<SeccompCondition, SeccompError> {
    SeccompCondition::new(arg, len, op, v).map_err(|e| SeccompError::Build(e.to_string()))
}

fn rule(c: Vec<SeccompCondition>) -> Result<SeccompRule, SeccompError> {
    SeccompRule::new(c).map_err(|e| SeccompError::Build(e.to_string()))
}

/// `arg & bit == bit` for this argument.
fn has_bit(arg: u8, bit: u64) -> Result<SeccompRule, SeccompError> {
    rule(vec![cond(arg, Len::Qword, Op::MaskedEq(bit), bit)?])
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    mismatch: SeccompAction,
    matched: SeccompAction,
    arch: TargetArch,
) -> Result<BpfProgram, SeccompError> {
    let f = SeccompFilter::new(rules, mismatch, matched, arch)
        .map_err(|e| SeccompError::Build(e.to_string()))?;
    BpfProgram::try_from(f).map_err(|e| SeccompError::Build(e.to_string()))
}

fn unconditional(names: &BTreeSet<String>) -> BTreeMap<i64, Vec<SeccompRule>> {
    names
        .iter()
        .filter_map(|n| nr(n))
        .map(|n| (n, Vec::new()))
        .collect()
}

/// Every program `sb` asks for (none: an empty set).
pub fn build(sb: &Sandbox) -> Result<Filters, SeccompError> {
    if !sb.wants_seccomp() {
        return Ok(Filters {
            progs: Vec::new(),
            fprogs: Vec::new(),
        });
    }
    let arch = target().ok_or(SeccompError::Arch)?;
    let mut progs = Vec::new();
    let eperm = SeccompAction::Errno(libc::EPERM as u32);

    // Calls denied outright by the protections.
    let mut denied = BTreeSet::new();
    if sb.protect_kernel_modules {
        units::sandbox::expand_group("@module", &mut denied);
    }
    if sb.private_devices {
        units::sandbox::expand_group("@raw-io", &mut denied);
    }
    if sb.protect_kernel_logs {
        denied.insert("syslog".to_string());
    }
    if sb.restrict_namespaces {
        denied.insert("setns".to_string());
    }
    if sb.protect_hostname {
        denied.insert("sethostname".to_string());
        denied.insert("setdomainname".to_string());
    }
    if sb.protect_clock {
        units::sandbox::expand_group("@clock", &mut denied);
    }
    if sb.restrict_realtime {
        // Its attributes are in memory a filter cannot read.
        denied.insert("sched_setattr".to_string());
    }
    // And calls denied for some arguments, in the same program (one answer, EPERM): an
    // empty rule list denies the call whatever its arguments.
    let mut checked: BTreeMap<i64, Vec<SeccompRule>> = unconditional(&denied);
    let outright: BTreeSet<i64> = checked.keys().copied().collect();
    let mut add = |name: &str, r: SeccompRule| {
        if let Some(n) = nr(name).filter(|n| !outright.contains(n)) {
            checked.entry(n).or_default().push(r);
        }
    };
    if sb.memory_deny_write_execute {
        let wx = (libc::PROT_WRITE | libc::PROT_EXEC) as u64;
        add("mmap", has_bit(2, wx)?);
        add("mprotect", has_bit(2, libc::PROT_EXEC as u64)?);
        add("pkey_mprotect", has_bit(2, libc::PROT_EXEC as u64)?);
        add("shmat", has_bit(2, libc::SHM_EXEC as u64)?);
    }
    if sb.restrict_namespaces {
        for flag in [
            libc::CLONE_NEWNS,
            libc::CLONE_NEWCGROUP,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
            0x80, // CLONE_NEWTIME
        ] {
            add("unshare", has_bit(0, flag as u64)?);
            add("clone", has_bit(0, flag as u64)?);
        }
    }
    if sb.restrict_realtime {
        const RESET_ON_FORK: u64 = 0x4000_0000;
        for policy in [
            libc::SCHED_FIFO,
            libc::SCHED_RR,
            6, /* SCHED_DEADLINE */
        ] {
            for p in [policy as u64, policy as u64 | RESET_ON_FORK] {
                add(
                    "sched_setscheduler",
                    rule(vec![cond(1, Len::Dword, Op::Eq, p)?])?,
                );
            }
        }
    }
    if sb.restrict_suid_sgid {
        for bit in [libc::S_ISUID as u64, libc::S_ISGID as u64] {
            add("chmod", has_bit(1, bit)?);
            add("fchmod", has_bit(1, bit)?);
            add("fchmodat", has_bit(2, bit)?);
            add("fchmodat2", has_bit(2, bit)?);
            add("creat", has_bit(1, bit)?);
            let creat = libc::O_CREAT as u64;
            add(
                "open",
                rule(vec![
                    cond(1, Len::Qword, Op::MaskedEq(creat), creat)?,
                    cond(2, Len::Qword, Op::MaskedEq(bit), bit)?,
                ])?,
            );
            add(
                "openat",
                rule(vec![
                    cond(2, Len::Qword, Op::MaskedEq(creat), creat)?,
                    cond(3, Len::Qword, Op::MaskedEq(bit), bit)?,
                ])?,
            );
        }
    }
    if sb.lock_personality {
        add(
            "personality",
            rule(vec![
                cond(0, Len::Dword, Op::Ne, 0)?,
                cond(0, Len::Dword, Op::Ne, 0xffff_ffff)?,
            ])?,
        );
    }
    if !checked.is_empty() {
        progs.push(compile(checked, SeccompAction::Allow, eperm, arch)?);
    }

    if let Some(af) = &sb.restrict_address_families {
        let mut socket = Vec::new();
        match af.mode {
            ListMode::Allow => {
                let mut conds = Vec::new();
                for f in &af.families {
                    conds.push(cond(0, Len::Dword, Op::Ne, *f as u64)?);
                }
                if conds.is_empty() {
                    // ["none"]: every family; a rule needs one condition.
                    conds.push(cond(0, Len::Dword, Op::Ge, 0)?);
                }
                socket.push(rule(conds)?);
            }
            ListMode::Deny => {
                for f in &af.families {
                    socket.push(rule(vec![cond(0, Len::Dword, Op::Eq, *f as u64)?])?);
                }
            }
        }
        if let (Some(n), false) = (nr("socket"), socket.is_empty()) {
            let rules = BTreeMap::from([(n, socket)]);
            let nosupport = SeccompAction::Errno(libc::EAFNOSUPPORT as u32);
            progs.push(compile(rules, SeccompAction::Allow, nosupport, arch)?);
        }
    }

    // Calls whose flags are in memory: ENOSYS, so the C library falls back to the old call,
    // which the filters above can read.
    let mut nosys = BTreeSet::new();
    if sb.restrict_namespaces {
        nosys.insert("clone3".to_string());
    }
    if sb.restrict_suid_sgid {
        nosys.insert("openat2".to_string());
    }
    let nosys = unconditional(&nosys);
    if !nosys.is_empty() {
        let enosys = SeccompAction::Errno(libc::ENOSYS as u32);
        progs.push(compile(nosys, SeccompAction::Allow, enosys, arch)?);
    }

    // x32 calls share x86_64's architecture word with bit 30 set in the number: where the
    // kernel takes them, they would walk past every list here. ENOSYS for all of them, unless
    // the unit's own list is an allow list (it names no x32 call, so it refuses them all) or
    // the kernel refuses them itself. This program is the longest by far (548 calls) and
    // the kernel's cost of installing one grows with its length.
    let list = sb
        .system_call_filter
        .as_ref()
        .map(|f| unit_list(f, table_covers_kernel()));
    let allow_list = matches!(&list, Some((_, ListMode::Allow)));
    if !progs.is_empty() && !allow_list && x32_enabled() {
        let x32: BTreeMap<i64, Vec<SeccompRule>> =
            (0..=X32_LAST).map(|n| (X32_BIT | n, Vec::new())).collect();
        let enosys = SeccompAction::Errno(libc::ENOSYS as u32);
        progs.push(compile(x32, SeccompAction::Allow, enosys, arch)?);
    }

    // The unit's own list, last: it may deny seccomp(2) itself, which installs the others.
    if let Some((rules, mode)) = list {
        let action = match sb.system_call_error_number {
            SyscallAction::Kill => SeccompAction::KillProcess,
            SyscallAction::Errno(n) => SeccompAction::Errno(n as u32),
        };
        let (mismatch, matched) = match mode {
            ListMode::Allow => (action, SeccompAction::Allow),
            ListMode::Deny => (SeccompAction::Allow, action),
        };
        if !(rules.is_empty() && mode == ListMode::Deny) {
            progs.push(compile(rules, mismatch, matched, arch)?);
        }
    }

    let fprogs = progs
        .iter()
        .map(|p| libc::sock_fprog {
            len: p.len() as libc::c_ushort,
            filter: p.as_ptr() as *mut libc::sock_filter,
        })
        .collect();
    Ok(Filters { progs, fprogs })
}

/// The unit's `system_call_filter` as the shorter of the two programs that mean the same:
/// an allow list of N calls is also a deny list of the table's other calls, where the table
/// holds every call of the running kernel (`covers`: numbers it lacks are then unused, and
/// the kernel answers ENOSYS for them). `@system-service` allows about 330 calls and leaves
/// some 50: the kernel's cost of installing a program (translating, JIT-compiling, and
/// running it once per call number for its cache of constant answers) falls about fivefold.
fn unit_list(
    f: &units::sandbox::SyscallFilter,
    covers: bool,
) -> (BTreeMap<i64, Vec<SeccompRule>>, ListMode) {
    let named = unconditional(&f.names);
    if f.mode == ListMode::Deny || !covers {
        return (named, f.mode);
    }
    let rest: BTreeMap<i64, Vec<SeccompRule>> = syscalls::X86_64
        .iter()
        .filter(|(_, n)| !named.contains_key(n))
        .map(|(_, n)| (*n, Vec::new()))
        .collect();
    if rest.len() < named.len() {
        (rest, ListMode::Deny)
    } else {
        (named, ListMode::Allow)
    }
}

/// The running kernel is no newer than the table (its release, `uname -r`, at most
/// [`syscalls::KERNEL`]): the table names every call it has. Checked once.
fn table_covers_kernel() -> bool {
    static COVERS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *COVERS.get_or_init(|| {
        // SAFETY: uname fills the struct it is given; all-zero is a valid utsname.
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: `u` is a valid, writable utsname.
        if unsafe { libc::uname(&mut u) } < 0 {
            return false;
        }
        // SAFETY: the kernel NUL-terminates every field it fills.
        let release = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) };
        release_within(&release.to_string_lossy(), syscalls::KERNEL)
    })
}

/// `release` (`6.1.0-56-amd64`) is at most `max` (major, minor).
fn release_within(release: &str, max: (u32, u32)) -> bool {
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>());
    match (it.next(), it.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor) <= max,
        _ => false,
    }
}

/// The kernel runs x32 calls (a kernel built with CONFIG_X86_X32_ABI and not booted with
/// `syscall.x32=n`): probed once with an x32 getpid, which answers ENOSYS when it does not.
fn x32_enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| {
        if !cfg!(target_arch = "x86_64") {
            return false;
        }
        // SAFETY: getpid takes no arguments and changes nothing, in either ABI.
        let r = unsafe { libc::syscall(X32_BIT | libc::SYS_getpid) };
        !(r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
    })
}

/// The kernel takes seccomp filters (checked once: a filter mode with a null program
/// answers EFAULT where it exists).
pub fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        // SAFETY: a null program is never read: the kernel fails with EFAULT first.
        let r = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                std::ptr::null::<libc::sock_fprog>(),
                0,
                0,
            )
        };
        r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_knows_the_basics() {
        assert!(syscalls::X86_64.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(nr("read"), Some(0));
        assert_eq!(nr("execve"), Some(59));
        assert_eq!(nr("no_such_call"), None);
    }

    #[test]
    fn builds_every_kind() {
        let sb = Sandbox {
            system_call_filter: units::sandbox::parse_syscall_filter([
                "@system-service",
                "~@privileged",
            ])
            .ok(),
            restrict_address_families: units::sandbox::parse_families(["AF_UNIX"]).ok(),
            memory_deny_write_execute: true,
            restrict_namespaces: true,
            restrict_realtime: true,
            restrict_suid_sgid: true,
            lock_personality: true,
            protect_kernel_modules: true,
            ..Sandbox::default()
        };
        let f = build(&sb).unwrap();
        // One EPERM program (denials and argument checks), the families, ENOSYS for
        // clone3/openat2 and the unit's allow list (which refuses x32 calls itself).
        assert_eq!(f.len(), 4);
        assert!(f.progs.iter().all(|p| p.len() < 4096));
    }

    #[test]
    fn an_allow_list_becomes_the_shorter_deny_list_only_on_a_kernel_the_table_covers() {
        let f = units::sandbox::parse_syscall_filter(["@system-service", "~@privileged"]).unwrap();
        let (allowed, mode) = unit_list(&f, false);
        assert_eq!(mode, ListMode::Allow);
        let (denied, mode) = unit_list(&f, true);
        assert_eq!(mode, ListMode::Deny);
        assert!(
            denied.len() < allowed.len(),
            "{} {}",
            denied.len(),
            allowed.len()
        );
        // The two name every call of the table exactly once between them.
        assert!(denied.keys().all(|n| !allowed.contains_key(n)));
        let all: BTreeSet<i64> = syscalls::X86_64.iter().map(|(_, n)| *n).collect();
        assert_eq!(denied.len() + allowed.len(), all.len());
        assert!(denied.contains_key(&nr("mount").unwrap()));
        assert!(
            denied.contains_key(&nr("file_setattr").unwrap()),
            "calls newer than the groups"
        );
        assert!(allowed.contains_key(&nr("read").unwrap()));
        // A short allow list stays one.
        let f = units::sandbox::parse_syscall_filter(["read", "write", "exit_group"]).unwrap();
        assert_eq!(unit_list(&f, true).1, ListMode::Allow);
    }

    #[test]
    fn releases_are_compared_by_major_and_minor() {
        assert!(release_within("6.1.0-56-amd64", (6, 18)));
        assert!(release_within("6.18.44-fc-v470", (6, 18)));
        assert!(!release_within("6.19.0", (6, 18)));
        assert!(!release_within("7.0", (6, 18)));
        assert!(!release_within("garbage", (6, 18)));
    }
}

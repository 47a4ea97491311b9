//! A unit's mount namespace: planned in the parent from `[sandbox]` and the current mount
//! table, carried out in the child with raw syscalls on prepared C strings.
//!
//! In the child: unshare(CLONE_NEWNS) and make every mount a slave (nothing done below
//! reaches the host), bind the paths that need a mount of their own onto themselves, make
//! read-only every mount whose nearest rule says so (mount_setattr, or a bind remount on old
//! kernels; a mount already read-only stays so, a writable rule never loosens one), hide the
//! inaccessible paths, then put the fresh tmpfs on /tmp, /var/tmp and /dev.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use units::sandbox::{ProtectHome, ProtectSystem, Sandbox, SandboxPath};

mod apply;
mod table;

use table::Mount;
pub use table::Table;

/// One step of the child's plan.
enum Op {
    /// mount(src, dst, MS_BIND|MS_REC).
    Bind {
        src: CString,
        dst: CString,
    },
    /// Make this mount read-only, and with `below` every mount under it (one
    /// mount_setattr with AT_RECURSIVE). `flags`: its MS_NOSUID etc.; `below`: the mounts
    /// under it with theirs; both for the remount fallback of old kernels, one mount at a
    /// time.
    ReadOnly {
        path: CString,
        flags: libc::c_ulong,
        below: Option<Vec<(CString, libc::c_ulong)>>,
    },
    Tmpfs {
        dst: CString,
        opts: CString,
        flags: libc::c_ulong,
    },
    Mknod {
        path: CString,
        mode: libc::mode_t,
        dev: libc::dev_t,
    },
    Mkdir {
        path: CString,
        mode: libc::mode_t,
    },
    Symlink {
        target: CString,
        path: CString,
    },
    /// A procfs of the unit's own on /proc, with these options (`hidepid=`).
    Proc {
        opts: CString,
    },
}

/// What the child does before its credentials change.
pub struct MountPlan {
    mounts: bool,
    network: bool,
    /// A UTS namespace of its own (`protect_hostname`).
    uts: bool,
    ops: Vec<Op>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("[sandbox] {key}: {path} does not exist (a leading - makes it optional)")]
    Missing { key: &'static str, path: String },
    #[error("[sandbox] {key}: {path}: {source}")]
    Path {
        key: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("reading the mount table: {0}")]
    MountInfo(std::io::Error),
    #[error("[sandbox]: a path holds a NUL byte")]
    Nul,
    #[error("[sandbox] {key}: {path}: {why}; a mount there could be redirected by that user")]
    Unsafe {
        key: &'static str,
        path: String,
        why: String,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rule {
    ReadOnly,
    Writable,
}

fn cs(p: &Path) -> Result<CString, PlanError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| PlanError::Nul)
}

/// `rule` is `path` or one of its parents.
fn covers(rule: &Path, path: &Path) -> bool {
    path.starts_with(rule)
}

/// The path as the mount table names it (links resolved), or None when it is missing.
fn resolve(
    key: &'static str,
    p: &Path,
    optional: bool,
    builtin: bool,
) -> Result<Option<PathBuf>, PlanError> {
    match std::fs::canonicalize(p) {
        Ok(c) => Ok(Some(c)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if optional || builtin {
                Ok(None)
            } else {
                Err(PlanError::Missing {
                    key,
                    path: p.display().to_string(),
                })
            }
        }
        Err(source) => Err(PlanError::Path {
            key,
            path: p.display().to_string(),
            source,
        }),
    }
}

const KERNEL_TUNABLES: &[&str] = &[
    "/proc/sys",
    "/sys",
    "/proc/sysrq-trigger",
    "/proc/latency_stats",
    "/proc/acpi",
    "/proc/apm",
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/timer_list",
];

/// A path that gets other content mounted on it (a bind from elsewhere, a tmpfs) must not be
/// redirectable by a non-root user between the plan and the child's mount: every directory
/// above it is root's and writable by no one else (a sticky one only where the entry below
/// is root's too).
fn check_target(key: &'static str, p: &Path) -> Result<(), PlanError> {
    let unsafe_at = |why: String| PlanError::Unsafe {
        key,
        path: p.display().to_string(),
        why,
    };
    let mut child_uid = std::fs::symlink_metadata(p)
        .map_err(|source| PlanError::Path {
            key,
            path: p.display().to_string(),
            source,
        })?
        .uid();
    for dir in p.ancestors().skip(1) {
        let m = std::fs::symlink_metadata(dir).map_err(|source| PlanError::Path {
            key,
            path: dir.display().to_string(),
            source,
        })?;
        let mode = m.mode();
        if m.uid() != 0 {
            return Err(unsafe_at(format!(
                "{} belongs to uid {}",
                dir.display(),
                m.uid()
            )));
        }
        let sticky_ok = mode & libc::S_ISVTX != 0 && child_uid == 0;
        if mode & 0o022 != 0 && !sticky_ok {
            return Err(unsafe_at(format!(
                "{} is writable by others ({:o})",
                dir.display(),
                mode & 0o7777
            )));
        }
        child_uid = m.uid();
    }
    Ok(())
}

/// The empty mode-000 file bind-mounted over an inaccessible file: made once in `run_dir`.
fn inaccessible_file(run_dir: &Path) -> Result<CString, PlanError> {
    let p = run_dir.join("inaccessible");
    let ok = |m: &std::fs::Metadata| {
        m.file_type().is_file() && m.len() == 0 && m.mode() & 0o7777 == 0 && m.uid() == 0
    };
    match std::fs::symlink_metadata(&p) {
        Ok(m) if ok(&m) => {}
        _ => {
            let _ = std::fs::remove_file(&p);
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o000)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&p)
                .map_err(|source| PlanError::Path {
                    key: "inaccessible_paths",
                    path: p.display().to_string(),
                    source,
                })?;
        }
    }
    cs(&p)
}

/// The plan for `sb`, against the mount table as it is now. `run_dir`: colony-init's own
/// directory, for the file that hides inaccessible files.
pub fn plan(sb: &Sandbox, run_dir: &Path, table: &mut Table) -> Result<MountPlan, PlanError> {
    let mut out = MountPlan {
        mounts: sb.wants_mounts(),
        network: sb.private_network,
        uts: sb.protect_hostname,
        ops: Vec::new(),
    };
    if !out.mounts {
        return Ok(out);
    }
    let mut table: Vec<Mount> = table.current()?.to_vec();
    // A procfs of its own goes first: the steps below that reach into /proc (hidden files,
    // /proc/sys read-only) then act on it, and the host's mounts below /proc are covered.
    if let Some(hidepid) = sb.protect_proc.hidepid() {
        out.ops.push(Op::Proc {
            opts: CString::new(format!("hidepid={hidepid}")).unwrap_or_default(),
        });
        table.retain(|m| !m.at.starts_with("/proc") || m.at == Path::new("/proc"));
    }

    // Rules: the nearest one above a mount decides.
    let mut rules: Vec<(PathBuf, Rule)> = Vec::new();
    let add = |key: &'static str,
               p: &SandboxPath,
               builtin: bool,
               rule: Rule,
               rules: &mut Vec<(PathBuf, Rule)>|
     -> Result<(), PlanError> {
        if let Some(c) = resolve(key, &p.path, p.optional, builtin)? {
            rules.retain(|(q, _)| q != &c);
            rules.push((c, rule));
        }
        Ok(())
    };
    let builtin = |s: &str| SandboxPath {
        path: PathBuf::from(s),
        optional: true,
    };
    let ro = Rule::ReadOnly;
    let rw = Rule::Writable;
    let system: &[&str] = match sb.protect_system {
        ProtectSystem::No => &[],
        ProtectSystem::Yes => &["/usr", "/boot", "/efi"],
        ProtectSystem::Full => &["/usr", "/boot", "/efi", "/etc"],
        ProtectSystem::Strict => &["/"],
    };
    for s in system {
        add("protect_system", &builtin(s), true, ro, &mut rules)?;
    }
    if sb.protect_system == ProtectSystem::Strict {
        for s in ["/dev", "/proc", "/sys"] {
            add("protect_system", &builtin(s), true, rw, &mut rules)?;
        }
    }
    if sb.protect_home == ProtectHome::ReadOnly {
        for s in ["/home", "/root", "/run/user"] {
            add("protect_home", &builtin(s), true, ro, &mut rules)?;
        }
    }
    if sb.protect_kernel_tunables {
        for s in KERNEL_TUNABLES {
            add("protect_kernel_tunables", &builtin(s), true, ro, &mut rules)?;
        }
    }
    if sb.protect_control_groups {
        add(
            "protect_control_groups",
            &builtin("/sys/fs/cgroup"),
            true,
            ro,
            &mut rules,
        )?;
    }
    for p in &sb.read_only_paths {
        add("read_only_paths", p, false, ro, &mut rules)?;
    }
    for p in &sb.read_write_paths {
        add("read_write_paths", p, false, rw, &mut rules)?;
    }

    // Binds: every rule path that is not a mount yet, and bind_paths; parents first.
    let mut binds: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (p, _) in &rules {
        if !table.iter().any(|m| &m.at == p) {
            binds.push((p.clone(), p.clone()));
        }
    }
    for b in &sb.bind_paths {
        let Some(src) = resolve("bind_paths", &b.source, b.optional, false)? else {
            continue;
        };
        let Some(dst) = resolve("bind_paths", &b.target, b.optional, false)? else {
            continue;
        };
        if src != dst {
            check_target("bind_paths", &dst)?;
        }
        rules.retain(|(q, _)| q != &dst);
        rules.push((dst.clone(), rw));
        binds.push((src, dst));
    }
    binds.sort_by_key(|(_, dst)| dst.components().count());
    for (src, dst) in &binds {
        out.ops.push(Op::Bind {
            src: cs(src)?,
            dst: cs(dst)?,
        });
    }

    // Read-only: every mount (of the table, or bound above) whose nearest rule says so. One
    // call makes a whole subtree read-only where no writable rule lies below its top: on a
    // machine with its dozens of mounts under /sys or /run, a handful of calls.
    let nearest = |at: &Path| {
        rules
            .iter()
            .filter(|(r, _)| covers(r, at))
            .max_by_key(|(r, _)| r.components().count())
            .map(|(_, rule)| *rule)
    };
    let writable_below = |at: &Path| {
        rules
            .iter()
            .any(|(r, rule)| *rule == Rule::Writable && r != at && covers(at, r))
    };
    // Every mount there will be, parents first: the table's, then the binds (flags 0: they
    // take their source's).
    let mut all: Vec<(&Path, bool, libc::c_ulong)> = table
        .iter()
        .map(|m| (m.at.as_path(), m.read_only, m.flags))
        .chain(binds.iter().map(|(_, dst)| (dst.as_path(), false, 0)))
        .collect();
    all.sort_by_key(|(at, _, _)| at.components().count());
    let mut done: Vec<&Path> = Vec::new();
    let mut whole: Vec<&Path> = Vec::new();
    for &(at, read_only, flags) in &all {
        if done.contains(&at) || whole.iter().any(|w| covers(w, at)) {
            continue;
        }
        if nearest(at) != Some(Rule::ReadOnly) {
            continue;
        }
        if !writable_below(at) {
            // AT_RECURSIVE also reaches those already read-only (a no-op for them).
            let below = all
                .iter()
                .filter(|(b, ro, _)| *b != at && covers(at, b) && !ro)
                .map(|(b, _, f)| Ok((cs(b)?, *f)))
                .collect::<Result<Vec<_>, PlanError>>()?;
            whole.push(at);
            out.ops.push(Op::ReadOnly {
                path: cs(at)?,
                flags,
                below: Some(below),
            });
        } else if !read_only {
            done.push(at);
            out.ops.push(Op::ReadOnly {
                path: cs(at)?,
                flags,
                below: None,
            });
        }
    }

    // Hidden paths.
    let mut hidden: Vec<SandboxPath> = sb.inaccessible_paths.clone();
    let mut hidden_builtin = Vec::new();
    if sb.protect_home == ProtectHome::Yes {
        hidden_builtin.extend(["/home", "/root", "/run/user"]);
    }
    if sb.protect_kernel_modules {
        hidden_builtin.extend(["/lib/modules", "/usr/lib/modules"]);
    }
    if sb.protect_kernel_logs {
        hidden_builtin.push("/proc/kmsg");
        if !sb.private_devices {
            hidden_builtin.push("/dev/kmsg");
        }
    }
    if sb.protect_kernel_tunables {
        hidden_builtin.extend(["/proc/kallsyms", "/proc/kcore"]);
    }
    if sb.protect_clock && !sb.private_devices {
        hidden_builtin.extend(["/dev/rtc", "/dev/rtc0", "/dev/rtc1"]);
    }
    let user_hidden = hidden.len();
    hidden.extend(hidden_builtin.iter().map(|s| builtin(s)));
    let mut file_src: Option<CString> = None;
    let mut dir_src: Option<CString> = None;
    let mut seen = Vec::new();
    for (i, h) in hidden.iter().enumerate() {
        let Some(c) = resolve("inaccessible_paths", &h.path, h.optional, i >= user_hidden)? else {
            continue;
        };
        if seen.contains(&c) {
            continue;
        }
        seen.push(c.clone());
        check_target("inaccessible_paths", &c)?;
        let dir = std::fs::metadata(&c).map(|m| m.is_dir()).unwrap_or(false);
        // The first hidden directory gets an empty read-only tmpfs and the first hidden file
        // the empty file, made read-only; the others are binds of those, which take the
        // read-only flag with them (cheaper than a tmpfs each, one call less per file).
        let dst = cs(&c)?;
        if dir {
            match &dir_src {
                Some(src) => out.ops.push(Op::Bind {
                    src: CString::clone(src),
                    dst,
                }),
                None => {
                    out.ops.push(Op::Tmpfs {
                        dst: dst.clone(),
                        opts: c"mode=000".to_owned(),
                        flags: libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    });
                    dir_src = Some(dst);
                }
            }
        } else {
            match &file_src {
                Some(src) => out.ops.push(Op::Bind {
                    src: CString::clone(src),
                    dst,
                }),
                None => {
                    out.ops.push(Op::Bind {
                        src: inaccessible_file(run_dir)?,
                        dst: dst.clone(),
                    });
                    out.ops.push(Op::ReadOnly {
                        path: dst.clone(),
                        flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                        below: None,
                    });
                    file_src = Some(dst);
                }
            }
        }
    }
    if sb.protect_home == ProtectHome::Tmpfs {
        for s in ["/home", "/root", "/run/user"] {
            if Path::new(s).is_dir() {
                out.ops.push(Op::Tmpfs {
                    dst: cs(Path::new(s))?,
                    opts: c"mode=0755".to_owned(),
                    flags: libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                });
            }
        }
    }

    if sb.private_tmp {
        for s in ["/tmp", "/var/tmp"] {
            if Path::new(s).is_dir() {
                out.ops.push(Op::Tmpfs {
                    dst: cs(Path::new(s))?,
                    opts: c"mode=1777".to_owned(),
                    flags: libc::MS_NOSUID | libc::MS_NODEV,
                });
            }
        }
    }
    if sb.private_devices {
        private_dev(&mut out.ops)?;
    }
    Ok(out)
}

/// A tmpfs on /dev with the harmless devices, /dev/shm and the standard links.
fn private_dev(ops: &mut Vec<Op>) -> Result<(), PlanError> {
    let p = |s: &str| cs(Path::new(s));
    ops.push(Op::Tmpfs {
        dst: p("/dev")?,
        opts: c"mode=0755".to_owned(),
        flags: libc::MS_NOSUID | libc::MS_NOEXEC,
    });
    for (name, major, minor) in [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ] {
        ops.push(Op::Mknod {
            path: p(name)?,
            mode: libc::S_IFCHR | 0o666,
            dev: libc::makedev(major, minor),
        });
    }
    ops.push(Op::Mkdir {
        path: p("/dev/shm")?,
        mode: 0o1777,
    });
    for (target, link) in [
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ] {
        ops.push(Op::Symlink {
            target: p(target)?,
            path: p(link)?,
        });
    }
    // /dev/log, where the host has it (a socket or a link to one), stays reachable.
    if let Ok(m) = std::fs::symlink_metadata("/dev/log") {
        if m.file_type().is_symlink() {
            if let Ok(t) = std::fs::read_link("/dev/log") {
                ops.push(Op::Symlink {
                    target: cs(&t)?,
                    path: p("/dev/log")?,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_plans_root_read_only_and_keeps_api_fs() {
        let sb = Sandbox {
            protect_system: ProtectSystem::Strict,
            read_write_paths: vec![SandboxPath {
                path: PathBuf::from("/var/tmp"),
                optional: false,
            }],
            ..Sandbox::default()
        };
        let p = plan(&sb, Path::new("/nonexistent"), &mut Table::default()).unwrap();
        let ro: Vec<String> = p
            .ops
            .iter()
            .filter_map(|o| match o {
                Op::ReadOnly { path, .. } => Some(path.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        assert!(ro.contains(&"/".to_string()), "{ro:?}");
        assert!(
            !ro.iter().any(|p| p == "/proc" || p == "/var/tmp"),
            "{ro:?}"
        );
    }

    #[test]
    fn a_subtree_without_writable_rules_is_made_read_only_in_one_call() {
        let sb = Sandbox {
            protect_system: ProtectSystem::Strict,
            protect_kernel_tunables: true,
            protect_home: ProtectHome::Yes,
            ..Sandbox::default()
        };
        let run = tempfile::tempdir().unwrap();
        let p = plan(&sb, run.path(), &mut Table::default()).unwrap();
        let ro: Vec<(String, bool)> = p
            .ops
            .iter()
            .filter_map(|o| match o {
                Op::ReadOnly { path, below, .. } => {
                    Some((path.to_string_lossy().into_owned(), below.is_some()))
                }
                _ => None,
            })
            .collect();
        // / holds writable rules (/dev, /proc): itself alone. /sys has none below it: once,
        // with every mount under it, and none of those on its own.
        assert!(ro.contains(&("/".to_string(), false)), "{ro:?}");
        assert!(ro.contains(&("/sys".to_string(), true)), "{ro:?}");
        assert!(!ro.iter().any(|(p, _)| p.starts_with("/sys/")), "{ro:?}");
        assert!(
            !ro.iter().any(|(p, _)| p == "/proc" || p == "/dev"),
            "{ro:?}"
        );
        // The hidden directories after the first are binds of it.
        let binds_of_home = p
            .ops
            .iter()
            .filter(|o| matches!(o, Op::Bind { src, .. } if src.as_bytes() == b"/home"))
            .count();
        if Path::new("/home").is_dir() && Path::new("/root").is_dir() {
            assert!(binds_of_home >= 1);
        }
    }

    #[test]
    fn a_target_below_a_users_directory_is_refused() {
        let dir = tempfile::tempdir_in("/tmp").unwrap();
        let inner = dir.path().join("x");
        std::fs::create_dir(&inner).unwrap();
        // A directory writable by others above the target.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            check_target("inaccessible_paths", &inner),
            Err(PlanError::Unsafe { .. })
        ));
        assert!(check_target("inaccessible_paths", Path::new("/usr/lib")).is_ok());
    }

    #[test]
    fn a_missing_path_is_an_error_unless_optional() {
        let mut sb = Sandbox {
            read_only_paths: vec![SandboxPath {
                path: PathBuf::from("/no/such/path"),
                optional: false,
            }],
            ..Sandbox::default()
        };
        assert!(plan(&sb, Path::new("/nonexistent"), &mut Table::default()).is_err());
        sb.read_only_paths[0].optional = true;
        assert!(plan(&sb, Path::new("/nonexistent"), &mut Table::default()).is_ok());
    }
}

//! Conditions and asserts (`condition_path_exists = "/etc/app.conf"`, `assert_user = "root"`
//! ...), systemd's `Condition*=` and `Assert*=`: checked when a start begins, before any
//! hook. A failed condition skips the start (the unit is `skipped`, not failed); a failed
//! assert fails it. A value is one string or an array of them; a leading `!` negates it, and
//! a leading `|` makes it a triggering condition: of those, one passing is enough (the
//! others must all pass), as in systemd.

/// What a condition checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    PathExists,
    PathIsDirectory,
    PathIsSymbolicLink,
    PathIsMountPoint,
    PathIsReadWrite,
    DirectoryNotEmpty,
    FileNotEmpty,
    FileIsExecutable,
    /// colony-init runs as this user (name, uid, or `@system`: a uid below 1000).
    User,
    /// colony-init is in this group (name or gid; its own or a supplementary one).
    Group,
    /// The hostname or the machine id.
    Host,
    /// A word of /proc/cmdline (`quiet`), or `KEY=VALUE`; a bare `KEY` matches `KEY=...` too.
    KernelCommandLine,
    /// `VAR` is set in colony-init's environment, or `VAR=VALUE` is.
    Environment,
    /// Running in a virtual machine or container: `true`, `false`, `vm`, `container`.
    Virtualization,
    /// colony-init's capability bounding set holds this capability (`CAP_SYS_ADMIN`).
    Capability,
    /// `true`: on mains power (or no power supply says otherwise); `false`: on battery.
    AcPower,
}

impl Check {
    pub const ALL: [Check; 16] = [
        Check::PathExists,
        Check::PathIsDirectory,
        Check::PathIsSymbolicLink,
        Check::PathIsMountPoint,
        Check::PathIsReadWrite,
        Check::DirectoryNotEmpty,
        Check::FileNotEmpty,
        Check::FileIsExecutable,
        Check::User,
        Check::Group,
        Check::Host,
        Check::KernelCommandLine,
        Check::Environment,
        Check::Virtualization,
        Check::Capability,
        Check::AcPower,
    ];

    /// The key without its `condition_`/`assert_` prefix.
    pub fn suffix(self) -> &'static str {
        match self {
            Check::PathExists => "path_exists",
            Check::PathIsDirectory => "path_is_directory",
            Check::PathIsSymbolicLink => "path_is_symbolic_link",
            Check::PathIsMountPoint => "path_is_mount_point",
            Check::PathIsReadWrite => "path_is_read_write",
            Check::DirectoryNotEmpty => "directory_not_empty",
            Check::FileNotEmpty => "file_not_empty",
            Check::FileIsExecutable => "file_is_executable",
            Check::User => "user",
            Check::Group => "group",
            Check::Host => "host",
            Check::KernelCommandLine => "kernel_command_line",
            Check::Environment => "environment",
            Check::Virtualization => "virtualization",
            Check::Capability => "capability",
            Check::AcPower => "ac_power",
        }
    }

    /// systemd's name, without `Condition`/`Assert` (`PathExists`).
    pub fn systemd_name(self) -> &'static str {
        match self {
            Check::PathExists => "PathExists",
            Check::PathIsDirectory => "PathIsDirectory",
            Check::PathIsSymbolicLink => "PathIsSymbolicLink",
            Check::PathIsMountPoint => "PathIsMountPoint",
            Check::PathIsReadWrite => "PathIsReadWrite",
            Check::DirectoryNotEmpty => "DirectoryNotEmpty",
            Check::FileNotEmpty => "FileNotEmpty",
            Check::FileIsExecutable => "FileIsExecutable",
            Check::User => "User",
            Check::Group => "Group",
            Check::Host => "Host",
            Check::KernelCommandLine => "KernelCommandLine",
            Check::Environment => "Environment",
            Check::Virtualization => "Virtualization",
            Check::Capability => "Capability",
            Check::AcPower => "ACPower",
        }
    }

    fn takes_path(self) -> bool {
        matches!(
            self,
            Check::PathExists
                | Check::PathIsDirectory
                | Check::PathIsSymbolicLink
                | Check::PathIsMountPoint
                | Check::PathIsReadWrite
                | Check::DirectoryNotEmpty
                | Check::FileNotEmpty
                | Check::FileIsExecutable
        )
    }
}

/// One condition or assert of a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub check: Check,
    /// The value without its `|`/`!` prefixes.
    pub arg: String,
    /// `!`: it passes when the check is false.
    pub negate: bool,
    /// `|`: a triggering condition (one of them passing is enough).
    pub trigger: bool,
    /// An assert (its failure fails the start) rather than a condition (skips it).
    pub assert: bool,
}

impl Condition {
    /// The key it was written under.
    pub fn key(&self) -> String {
        let kind = if self.assert { "assert" } else { "condition" };
        format!("{kind}_{}", self.check.suffix())
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = if self.trigger { "|" } else { "" };
        let n = if self.negate { "!" } else { "" };
        write!(f, "{} = \"{t}{n}{}\"", self.key(), self.arg)
    }
}

/// Every key: `condition_*` then `assert_*`.
pub fn keys() -> impl Iterator<Item = (String, Check, bool)> {
    [false, true].into_iter().flat_map(|assert| {
        Check::ALL.into_iter().map(move |c| {
            let kind = if assert { "assert" } else { "condition" };
            (format!("{kind}_{}", c.suffix()), c, assert)
        })
    })
}

/// Parse one value of `check` (with its `|`/`!` prefixes).
pub fn parse_condition(check: Check, assert: bool, value: &str) -> Result<Condition, String> {
    let mut rest = value.trim();
    let trigger = match rest.strip_prefix('|') {
        Some(r) => {
            rest = r.trim_start();
            true
        }
        None => false,
    };
    let negate = match rest.strip_prefix('!') {
        Some(r) => {
            rest = r.trim_start();
            true
        }
        None => false,
    };
    if rest.is_empty() {
        return Err("is empty".into());
    }
    if rest.contains('\0') {
        return Err("cannot contain a NUL character".into());
    }
    if check.takes_path() && !rest.starts_with('/') {
        return Err(format!("`{rest}` is not an absolute path"));
    }
    if check == Check::Virtualization
        && !matches!(
            rest,
            "true" | "false" | "yes" | "no" | "vm" | "container" | "1" | "0"
        )
    {
        return Err(format!(
            "`{rest}` is not a kind this checks: true, false, vm or container"
        ));
    }
    if check == Check::Capability {
        crate::values::parse_capability(rest)?;
    }
    if check == Check::AcPower && !matches!(rest, "true" | "false" | "yes" | "no" | "1" | "0") {
        return Err(format!("`{rest}` is not true or false"));
    }
    Ok(Condition {
        check,
        arg: rest.to_string(),
        negate,
        trigger,
        assert,
    })
}

/// Whether a set of conditions (or of asserts) passes, given each one's check result: every
/// non-triggering one passes, and if there are triggering ones, at least one of them does.
/// `Err` names the first that failed.
pub fn verdict<'c>(
    conds: impl Iterator<Item = (&'c Condition, bool)>,
) -> Result<(), &'c Condition> {
    let mut first_trigger = None;
    let mut any_trigger_ok = false;
    for (c, holds) in conds {
        let pass = holds != c.negate;
        if c.trigger {
            any_trigger_ok |= pass;
            first_trigger.get_or_insert(c);
        } else if !pass {
            return Err(c);
        }
    }
    match first_trigger {
        Some(c) if !any_trigger_ok => Err(c),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_list_matches_the_checks() {
        for (k, _, _) in keys() {
            assert!(crate::parse::TOP_KEYS.contains(&k.as_str()), "{k}");
        }
    }

    #[test]
    fn prefixes_and_verdicts() {
        let c = parse_condition(Check::PathExists, false, "|!/etc/x").unwrap();
        assert!(c.trigger && c.negate && c.arg == "/etc/x");
        assert!(parse_condition(Check::PathExists, false, "etc").is_err());
        assert!(parse_condition(Check::Virtualization, false, "kvm").is_err());
        let a = parse_condition(Check::Host, false, "a").unwrap();
        let t1 = parse_condition(Check::Host, false, "|b").unwrap();
        let t2 = parse_condition(Check::Host, false, "|c").unwrap();
        assert!(verdict([(&a, true), (&t1, false), (&t2, true)].into_iter()).is_ok());
        assert_eq!(
            verdict([(&a, true), (&t1, false), (&t2, false)].into_iter()),
            Err(&t1)
        );
        assert_eq!(verdict([(&a, false)].into_iter()), Err(&a));
    }
}

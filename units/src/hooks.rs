//! Hooks: the commands a unit runs around its main process (`exec_start_pre`,
//! `exec_start_post`, `exec_stop`, `exec_reload`), as systemd's `ExecStartPre=` etc.
//!
//! Each is a list of command lines, run one after the other with the unit's identity,
//! environment and sandbox, their output in the unit's log. A line is split into words as
//! systemd splits it (quotes, C escapes, no shell); a leading `-` means its failure is
//! ignored. `$MAINPID` (or `${MAINPID}`) in a word is the main process's pid when the hook
//! starts (empty when there is none).

use crate::words::systemd_words;

/// Which hook list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum HookKind {
    /// Before the main process; a failure fails the start.
    StartPre,
    /// After the main process is up (per `[ready]`); a failure fails the start.
    StartPost,
    /// Before the stop signal.
    Stop,
    /// `colonyctl reload NAME`.
    Reload,
}

impl HookKind {
    pub const ALL: [HookKind; 4] = [
        HookKind::StartPre,
        HookKind::StartPost,
        HookKind::Stop,
        HookKind::Reload,
    ];

    /// The unit-file key.
    pub fn key(self) -> &'static str {
        match self {
            HookKind::StartPre => "exec_start_pre",
            HookKind::StartPost => "exec_start_post",
            HookKind::Stop => "exec_stop",
            HookKind::Reload => "exec_reload",
        }
    }
}

impl std::fmt::Display for HookKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// One command line of a hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookCmd {
    /// The words; `argv[0]` is absolute or a bare name found in PATH.
    pub argv: Vec<String>,
    /// The line began with `-`: a failure is logged and the next line runs.
    pub ignore_failure: bool,
}

/// A unit's hooks (all empty: none).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hooks {
    pub start_pre: Vec<HookCmd>,
    pub start_post: Vec<HookCmd>,
    pub stop: Vec<HookCmd>,
    pub reload: Vec<HookCmd>,
}

impl Hooks {
    pub fn get(&self, kind: HookKind) -> &[HookCmd] {
        match kind {
            HookKind::StartPre => &self.start_pre,
            HookKind::StartPost => &self.start_post,
            HookKind::Stop => &self.stop,
            HookKind::Reload => &self.reload,
        }
    }

    pub fn get_mut(&mut self, kind: HookKind) -> &mut Vec<HookCmd> {
        match kind {
            HookKind::StartPre => &mut self.start_pre,
            HookKind::StartPost => &mut self.start_post,
            HookKind::Stop => &mut self.stop,
            HookKind::Reload => &mut self.reload,
        }
    }

    /// The command at `index` of `kind`'s list.
    pub fn cmd(&self, kind: HookKind, index: usize) -> Option<&HookCmd> {
        self.get(kind).get(index)
    }
}

/// At most this many lines in one hook list (each is a process run in turn).
pub const MAX_HOOK_LINES: usize = 64;

/// Parse one hook line: `[-]PROGRAM [ARG...]`.
pub fn parse_hook_line(line: &str) -> Result<HookCmd, String> {
    if line.contains('\0') {
        return Err("a command cannot contain a NUL character".into());
    }
    let t = line.trim_start();
    let (ignore_failure, rest) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    if let Some(c) = rest
        .chars()
        .next()
        .filter(|c| matches!(c, '@' | '+' | '!' | ':'))
    {
        return Err(format!(
            "the prefix `{c}` of systemd is not supported here; only `-` (failure ignored)"
        ));
    }
    let argv = systemd_words(rest)?;
    let Some(first) = argv.first() else {
        return Err("the command is empty".into());
    };
    if first.contains('/') && !first.starts_with('/') {
        return Err(format!(
            "`{first}` is a relative path; give an absolute path or a bare name found in PATH"
        ));
    }
    Ok(HookCmd {
        argv,
        ignore_failure,
    })
}

/// The line that [`parse_hook_line`] reads back as `cmd`.
pub fn render_hook_line(cmd: &HookCmd) -> String {
    let words: Vec<String> = cmd
        .argv
        .iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%$".contains(c));
            if plain {
                w.clone()
            } else {
                let mut q = String::from('"');
                for c in w.chars() {
                    match c {
                        '"' | '\\' => {
                            q.push('\\');
                            q.push(c);
                        }
                        '\n' => q.push_str("\\n"),
                        '\t' => q.push_str("\\t"),
                        c => q.push(c),
                    }
                }
                q.push('"');
                q
            }
        })
        .collect();
    let dash = if cmd.ignore_failure { "-" } else { "" };
    format!("{dash}{}", words.join(" "))
}

/// `argv` with `$MAINPID` and `${MAINPID}` replaced by `main_pid` (empty when `None`).
pub fn expand_mainpid(argv: &[String], main_pid: Option<i32>) -> Vec<String> {
    let pid = main_pid.map(|p| p.to_string()).unwrap_or_default();
    argv.iter()
        .map(|w| w.replace("${MAINPID}", &pid).replace("$MAINPID", &pid))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_as_systemd_does() {
        let c = parse_hook_line("-/bin/sh -c 'echo \"a b\"'").unwrap();
        assert!(c.ignore_failure);
        assert_eq!(c.argv, ["/bin/sh", "-c", "echo \"a b\""]);
        let c = parse_hook_line("kill -HUP $MAINPID").unwrap();
        assert!(!c.ignore_failure);
        assert_eq!(expand_mainpid(&c.argv, Some(42)), ["kill", "-HUP", "42"]);
        assert!(parse_hook_line("  ").is_err());
        assert!(parse_hook_line("-").is_err());
        assert!(parse_hook_line("+/bin/true").is_err());
        assert!(parse_hook_line("bin/true").is_err());
        assert!(parse_hook_line("/bin/echo 'open").is_err());
    }

    #[test]
    fn rendered_lines_read_back() {
        for line in [
            "/bin/true",
            "-/bin/sh -c 'echo \"a b\" \\\\ $MAINPID'",
            "kill -HUP $MAINPID",
            "/bin/printf 'a\\tb\\n' ''",
        ] {
            let c = parse_hook_line(line).unwrap();
            assert_eq!(parse_hook_line(&render_hook_line(&c)).unwrap(), c, "{line}");
        }
    }
}

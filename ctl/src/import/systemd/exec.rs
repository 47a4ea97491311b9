//! The command: `ExecStart=` with its prefixes, variables and environment files.

use std::path::Path;

use super::super::draft::{Fate, V};
use super::super::words::{sh_quote, systemd_words};
use super::source::Sd;

/// `export`, single or double quotes, `\` continuations.
/// The variables of an `EnvironmentFile=`: `KEY=VALUE` lines, `#`/`;` comments, optional
/// `export`, single or double quotes, `\` continuations.
pub(super) fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = crate::import::input::read(path)?;
    if text.contains('\0') {
        return Err("it has a NUL byte: not an environment file".into());
    }
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
        // No `=`, or nothing before it: not an assignment; systemd ignores it too.
        let Some((k, v)) = line.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
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
pub(super) fn expand_vars(argv: &[String], env: &[(String, String)]) -> (Vec<String>, Vec<String>) {
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

/// One `ExecStart=` (or hook) line as an argv: its prefixes, specifiers and variables
/// applied, and notes on what of it is not carried.
pub(super) struct Command {
    pub(super) argv: Vec<String>,
    /// `-`: systemd ignores a failing exit of this command.
    pub(super) ignore_failure: bool,
    pub(super) notes: Vec<String>,
}

/// `$MAINPID` while the variables of a hook line are expanded: colony fills it in.
const MAINPID: &str = "\u{1}MAINPID\u{1}";

/// The line `i` of `ExecStart=` or of a hook (`key`; a hook keeps `$MAINPID`).
pub(super) fn command(sd: &mut Sd, i: usize) -> Result<Command, String> {
    let key = sd.items[i].key.clone();
    let hook = key != "ExecStart";
    let raw = sd.items[i].value.clone();
    let mut rest = raw.as_str();
    let mut prefixes = String::new();
    while let Some(c) = rest.chars().next().filter(|c| "-@:+!".contains(*c)) {
        prefixes.push(c);
        rest = &rest[c.len_utf8()..];
    }
    let words = systemd_words(rest).map_err(|e| format!("{}: {key}: {e}", sd.origin(i)))?;
    let mut words: Vec<String> = words.iter().map(|w| sd.expand_str(w)).collect();
    if words.is_empty() {
        return Err(format!("{}: {key} has no command", sd.origin(i)));
    }
    let mut notes = Vec::new();
    if prefixes.contains('@') && words.len() >= 2 {
        let argv0 = words.remove(1);
        notes.push(format!(
            "argv[0] `{argv0}` (@) is not carried: the program sees its path"
        ));
    }
    if !prefixes.contains(':') {
        if hook {
            for w in &mut words {
                *w = w
                    .replace("${MAINPID}", MAINPID)
                    .replace("$MAINPID", MAINPID);
            }
        }
        let (mut expanded, missing) = expand_vars(&words, &sd.env);
        for w in &mut expanded {
            *w = w.replace(MAINPID, "$MAINPID");
        }
        for w in &mut words {
            *w = w.replace(MAINPID, "$MAINPID");
        }
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
    if words.is_empty() {
        return Err(format!(
            "{}: {key} has no command once its variables are expanded",
            sd.origin(i)
        ));
    }
    if prefixes.contains('+') || prefixes.contains('!') {
        notes.push(
            "`+`/`!` (more privileges) is not carried: the unit's user, capabilities and sandbox apply"
                .into(),
        );
    }
    if words[0].contains('/') && !words[0].starts_with('/') {
        return Err(format!(
            "{}: {key}: `{}` is a relative path",
            sd.origin(i),
            words[0]
        ));
    }
    Ok(Command {
        argv: words,
        ignore_failure: prefixes.contains('-'),
        notes,
    })
}

/// The unit's `exec` from the `ExecStart=` lines in effect: one command as it is; several
/// (only a oneshot has several) run in order through `/bin/sh -c`, each word shell-quoted,
/// stopping at the first that fails as systemd does (a `-` command's failure is ignored).
pub(super) fn exec_start(sd: &mut Sd, lines: &[usize]) -> Result<(), String> {
    let mut cmds = Vec::with_capacity(lines.len());
    for &i in lines {
        cmds.push((i, command(sd, i)?));
    }
    if let [(i, c)] = &cmds[..] {
        let mut notes = c.notes.clone();
        if c.ignore_failure {
            notes.push(
                "`-` (a failing exit ignored) is not carried: colony judges the exit by restart.success_codes".into(),
            );
        }
        let v = V::strs(&c.argv);
        if notes.is_empty() {
            sd.carry(*i, "exec", v);
        } else {
            sd.approx(*i, "exec", v, notes.join("; "));
        }
        return Ok(());
    }
    let script = cmds
        .iter()
        .map(|(_, c)| {
            let line = c
                .argv
                .iter()
                .enumerate()
                .map(|(n, w)| match sh_quote(w) {
                    // `A=b` first would be an assignment to sh.
                    q if n == 0 && q == *w && w.contains('=') => format!("'{w}'"),
                    q => q,
                })
                .collect::<Vec<_>>()
                .join(" ");
            if c.ignore_failure {
                format!("{{ {line} || true; }}")
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join(" && ");
    let v = V::strs(&["/bin/sh", "-c", script.as_str()]);
    let n = cmds.len();
    let to = format!("exec = {v}");
    sd.d.set("exec", v);
    for (k, (i, c)) in cmds.into_iter().enumerate() {
        let mut why = format!(
            "command {} of {n}: the {n} ExecStart= commands run in order through /bin/sh -c (each word shell-quoted), stopping at the first that fails",
            k + 1
        );
        for note in c.notes {
            why.push_str("; ");
            why.push_str(&note);
        }
        sd.mark(i, Some(to.clone()), Fate::Approx(why));
    }
    Ok(())
}

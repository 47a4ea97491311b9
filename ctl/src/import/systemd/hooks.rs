//! `ExecStartPre=`, `ExecStartPost=`, `ExecStop=`, `ExecReload=` to colony's hooks, and
//! `Condition*=`/`Assert*=` to `condition_*`/`assert_*`.

use units::conditions::{parse_condition, Check};
use units::hooks::{render_hook_line, HookCmd};

use super::super::draft::{Fate, V};
use super::super::words::systemd_words;
use super::exec::expand_vars;
use super::source::Sd;

const MAINPID: &str = "\u{1}MAINPID\u{1}";

pub(super) fn hooks(sd: &mut Sd) {
    for (key, to) in [
        ("ExecStartPre", "exec_start_pre"),
        ("ExecStartPost", "exec_start_post"),
        ("ExecStop", "exec_stop"),
        ("ExecReload", "exec_reload"),
    ] {
        for i in sd.list("Service", key) {
            match line(sd, i) {
                Ok((cmd, notes)) => {
                    let text = render_hook_line(&cmd);
                    sd.d.push_strs(to, std::slice::from_ref(&text));
                    let t = Some(format!("{to} += {}", V::strs(&[text])));
                    let fate = if notes.is_empty() {
                        Fate::Carried
                    } else {
                        Fate::Approx(notes.join("; "))
                    };
                    sd.mark(i, t, fate);
                }
                Err(e) => sd.drop_it(i, e),
            }
        }
    }
}

/// One command line: its prefixes, specifiers and variables applied (`$MAINPID` kept).
fn line(sd: &mut Sd, i: usize) -> Result<(HookCmd, Vec<String>), String> {
    let raw = sd.items[i].value.clone();
    let mut rest = raw.as_str();
    let mut prefixes = String::new();
    while let Some(c) = rest.chars().next().filter(|c| "-@:+!".contains(*c)) {
        prefixes.push(c);
        rest = &rest[c.len_utf8()..];
    }
    let words = systemd_words(rest)?;
    let mut words: Vec<String> = words.iter().map(|w| sd.expand_str(w)).collect();
    let mut notes = Vec::new();
    if prefixes.contains('@') && words.len() >= 2 {
        let argv0 = words.remove(1);
        notes.push(format!(
            "argv[0] `{argv0}` (@) is not carried: the program sees its path"
        ));
    }
    if !prefixes.contains(':') {
        let kept: Vec<String> = words
            .iter()
            .map(|w| {
                w.replace("${MAINPID}", MAINPID)
                    .replace("$MAINPID", MAINPID)
            })
            .collect();
        let (expanded, missing) = expand_vars(&kept, &sd.env);
        if expanded != kept {
            notes.push("variables were expanded now, from this unit's environment".into());
        }
        if !missing.is_empty() {
            notes.push(format!(
                "not set, expanded to nothing: ${}",
                missing.join(", $")
            ));
        }
        words = expanded
            .iter()
            .map(|w| w.replace(MAINPID, "$MAINPID"))
            .collect();
    }
    if prefixes.contains('+') || prefixes.contains('!') {
        notes.push(
            "`+`/`!` (more privileges) is not carried: it runs with the unit's user and sandbox"
                .into(),
        );
    }
    let Some(first) = words.first() else {
        return Err("no command once its variables are expanded".into());
    };
    if first.contains('/') && !first.starts_with('/') {
        return Err(format!("`{first}` is a relative path"));
    }
    Ok((
        HookCmd {
            argv: words,
            ignore_failure: prefixes.contains('-'),
        },
        notes,
    ))
}

pub(super) fn conditions(sd: &mut Sd) {
    for assert in [false, true] {
        let kind = if assert { "Assert" } else { "Condition" };
        for check in Check::ALL {
            let key = format!("{kind}{}", check.systemd_name());
            let to = format!("{}_{}", kind.to_lowercase(), check.suffix());
            for i in sd.list("Unit", &key) {
                let v = sd.expand(i);
                match parse_condition(check, assert, &v) {
                    Ok(c) => {
                        let text = format!(
                            "{}{}{}",
                            if c.trigger { "|" } else { "" },
                            if c.negate { "!" } else { "" },
                            c.arg
                        );
                        sd.d.push_strs(&to, std::slice::from_ref(&text));
                        let t = Some(format!("{to} += {}", V::strs(&[text])));
                        sd.mark(i, t, Fate::Carried);
                    }
                    Err(e) => sd.drop_it(i, format!("{key}: {e}")),
                }
            }
        }
    }
}

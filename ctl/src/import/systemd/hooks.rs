//! `ExecStartPre=`, `ExecStartPost=`, `ExecStop=`, `ExecReload=` to colony's hooks, and
//! `Condition*=`/`Assert*=` to `condition_*`/`assert_*`.

use units::conditions::{parse_condition, Check};
use units::hooks::{render_hook_line, HookCmd};

use super::super::draft::{Fate, V};
use super::exec::command;
use super::source::Sd;

pub(super) fn hooks(sd: &mut Sd) {
    for (key, to) in [
        ("ExecStartPre", "exec_start_pre"),
        ("ExecStartPost", "exec_start_post"),
        ("ExecStop", "exec_stop"),
        ("ExecReload", "exec_reload"),
    ] {
        for i in sd.list("Service", key) {
            match command(sd, i) {
                Ok(c) => {
                    let notes = c.notes;
                    let text = render_hook_line(&HookCmd {
                        argv: c.argv,
                        ignore_failure: c.ignore_failure,
                    });
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

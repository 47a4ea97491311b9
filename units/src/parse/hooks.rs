//! The hook keys (`exec_start_pre`, `exec_start_post`, `exec_stop`, `exec_reload`) read
//! from the file (their rules live in `crate::hooks`).

use super::{Cx, Tbl};
use crate::hooks::{parse_hook_line, HookKind, Hooks, MAX_HOOK_LINES};

impl Cx<'_> {
    pub(super) fn hooks(&mut self, top: &Tbl<'_, '_>) -> Hooks {
        let mut hooks = Hooks::default();
        for kind in HookKind::ALL {
            let k = kind.key();
            let Some(lines) = self.strings(
                top,
                k,
                "command lines such as \"/usr/bin/check --config /etc/app.conf\" (a leading - : failure ignored)",
            ) else {
                continue;
            };
            if lines.len() > MAX_HOOK_LINES {
                let span = top.get(k).map(|v| v.span()).unwrap_or(0..0);
                self.err(
                    span,
                    k,
                    format!("at most {MAX_HOOK_LINES} commands; run a script for more"),
                );
                continue;
            }
            for (line, span) in lines {
                match parse_hook_line(line) {
                    Ok(c) => hooks.get_mut(kind).push(c),
                    Err(e) => self.err(span, k, format!("`{line}`: {e}")),
                }
            }
        }
        hooks
    }
}

//! `[tty]` read from the file (the values' rules live in `crate::tty`).

use super::{Cx, Tbl};
use crate::tty::{self, Output, Tty};

impl Cx<'_> {
    pub(super) fn tty(&mut self, top: &Tbl<'_, '_>) -> Option<Tty> {
        let t = self.section(top, "tty")?;
        let mut y = Tty::default();
        if let Some(p) = self.string(&t, "path", "a terminal such as \"/dev/tty1\"") {
            if tty::valid_path(p) {
                y.path = p.into();
            } else {
                let span = t.get("path").map(|v| v.span()).unwrap_or(0..0);
                self.err(
                    span,
                    "tty.path",
                    format!("`{p}` is not a terminal below /dev, such as \"/dev/tty1\""),
                );
            }
        }
        match self.string(&t, "output", "\"tty\" or \"log\"") {
            None | Some("tty") => {}
            Some("log") => y.output = Output::Log,
            Some(other) => {
                let span = t.get("output").map(|v| v.span()).unwrap_or(0..0);
                self.err(
                    span,
                    "tty.output",
                    format!("`{other}`: expected \"tty\" (stdout and stderr on the terminal) or \"log\""),
                );
            }
        }
        y.force = self.boolean(&t, "force").unwrap_or(false);
        y.reset = self.boolean(&t, "reset").unwrap_or(false);
        y.vhangup = self.boolean(&t, "vhangup").unwrap_or(false);
        Some(y)
    }
}

//! `[socket]` read from the file (the values' rules live in `crate::socket`).

use super::{Cx, Tbl};
use crate::socket::{self as so, Socket};

impl Cx<'_> {
    pub(super) fn socket(&mut self, top: &Tbl<'_, '_>) -> Option<Socket> {
        let t = self.section(top, "socket")?;
        let mut s = Socket::default();
        for (text, span) in self
            .strings(&t, "listen", "addresses such as \"tcp:127.0.0.1:8080\"")
            .unwrap_or_default()
        {
            match so::parse_listen(text) {
                Ok(l) if s.listen.contains(&l) => {
                    self.err(span, "socket.listen", format!("`{text}` is given twice"))
                }
                Ok(l) => s.listen.push(l),
                Err(e) => self.err(span, "socket.listen", e),
            }
        }
        let empty = t
            .get("listen")
            .is_some_and(|v| matches!(v.get_ref(), toml::de::DeValue::Array(a) if a.is_empty()));
        if t.get("listen").is_none() || empty {
            self.err(
                t.span.clone(),
                "socket.listen",
                "[socket] needs listen = [\"tcp:127.0.0.1:8080\", ...]",
            );
        }
        if s.listen.len() > so::MAX_LISTEN {
            let span = t.key_span("listen");
            self.err(
                span,
                "socket.listen",
                format!("at most {} sockets", so::MAX_LISTEN),
            );
        }
        s.on_demand = self.boolean(&t, "on_demand").unwrap_or(false);
        if let Some(m) = self.mode(&t, "mode") {
            s.mode = m;
        }
        if let Some(b) = self.integer(&t, "backlog", 1..=65535) {
            s.backlog = b as u32;
        }
        Some(s)
    }
}

//! `wants`, `before`, `conflicts` and the conditions and asserts (`condition_*`,
//! `assert_*`, rules in `crate::conditions`) read from the file.

use toml::de::DeValue;

use super::{Cx, Tbl};
use crate::conditions::{keys, parse_condition, Condition};
use crate::model::Links;

impl Cx<'_> {
    pub(super) fn links(&mut self, top: &Tbl<'_, '_>, name: &str) -> Links {
        let links = Links {
            wants: self.names(top, "wants", "unit"),
            before: self.names(top, "before", "unit"),
            conflicts: self.names(top, "conflicts", "unit"),
        };
        for (k, list) in [
            ("wants", &links.wants),
            ("before", &links.before),
            ("conflicts", &links.conflicts),
        ] {
            if !name.is_empty() && list.iter().any(|d| d == name) {
                let span = top.get(k).map(|v| v.span()).unwrap_or(0..0);
                self.err(span, k, format!("`{name}` names itself"));
            }
        }
        links
    }

    pub(super) fn conditions(&mut self, top: &Tbl<'_, '_>) -> Vec<Condition> {
        let mut out = Vec::new();
        for (k, check, assert) in keys() {
            let Some(v) = top.get(&k) else { continue };
            let values: Vec<(&str, std::ops::Range<usize>)> = match v.get_ref() {
                DeValue::String(s) => vec![(&**s, v.span())],
                DeValue::Array(_) => self
                    .strings(
                        top,
                        &k,
                        "strings such as \"/etc/app.conf\" or \"!/run/flag\"",
                    )
                    .unwrap_or_default(),
                _ => {
                    self.type_err(
                        &k,
                        v,
                        "a string such as \"/etc/app.conf\" (\"!...\" negates) or an array of them",
                    );
                    continue;
                }
            };
            for (s, span) in values {
                match parse_condition(check, assert, s) {
                    Ok(c) => out.push(c),
                    Err(e) => self.err(span, &k, format!("`{s}`: {e}")),
                }
            }
        }
        out
    }
}

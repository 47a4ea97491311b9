//! A unit being built by a translator, and the record of what each source key became.

use std::fmt;
use std::path::PathBuf;

/// A TOML value of a unit file, rendered by hand so that strings are always one-line basic
/// strings and keys keep the order of colony.unit(5).
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Str(String),
    Int(i64),
    Bool(bool),
    Arr(Vec<V>),
    /// An inline table, in insertion order.
    Table(Vec<(String, V)>),
}

impl V {
    pub fn s(s: impl Into<String>) -> V {
        V::Str(s.into())
    }
    pub fn strs<S: AsRef<str>>(items: &[S]) -> V {
        V::Arr(items.iter().map(|s| V::s(s.as_ref())).collect())
    }
}

/// A TOML basic string: quotes, backslashes and control characters escaped.
pub fn quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => o.push_str(&format!("\\u{:04X}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A key, bare when TOML allows it.
pub fn key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        k.to_string()
    } else {
        quote(k)
    }
}

impl fmt::Display for V {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            V::Str(s) => f.write_str(&quote(s)),
            V::Int(n) => write!(f, "{n}"),
            V::Bool(b) => write!(f, "{b}"),
            V::Arr(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            V::Table(kv) => {
                if kv.is_empty() {
                    return f.write_str("{}");
                }
                f.write_str("{ ")?;
                for (i, (k, v)) in kv.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{} = {v}", key(k))?;
                }
                f.write_str(" }")
            }
        }
    }
}

/// What became of one source key.
#[derive(Debug, Clone, PartialEq)]
pub enum Fate {
    /// Translated with the same meaning.
    Carried,
    /// Translated, but colony's meaning differs a little: the note says how.
    Approx(String),
    /// Nothing to write: colony already behaves so (or the key only matters to the old system).
    Same(String),
    /// Not carried over: the reason, and what to do instead where there is something.
    Dropped(String),
}

/// One line of the report: a source key (where it was, what it said) and its fate.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// `FILE:LINE`, or `FILE` for a whole-file fact, or `(default)` for a default made explicit.
    pub origin: String,
    /// The key as the source wrote it, e.g. `ExecStart=/usr/bin/redis-server`.
    pub source: String,
    /// What it became in the unit, e.g. `exec = ["/usr/bin/redis-server"]`.
    pub to: Option<String>,
    pub fate: Fate,
}

/// A unit being built.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The unit name (file `NAME.unit`).
    pub name: String,
    /// The files it was made from.
    pub sources: Vec<PathBuf>,
    /// Comment lines written at the top of the file (without `# `).
    pub header: Vec<String>,
    /// Dotted keys (`restart.policy`) and their values.
    fields: Vec<(String, V)>,
    pub entries: Vec<Entry>,
    /// Things to know about the unit as a whole (a user that does not exist here, ...).
    pub warnings: Vec<String>,
    /// Units it orders itself against (or wants) that the old system would not have found:
    /// such an ordering does nothing there either.
    pub absent: std::collections::BTreeSet<String>,
    /// systemd orders this unit after its early boot (`sysinit.target`), as it does every
    /// unit with default dependencies.
    pub after_early_boot: bool,
    /// The `Before=` lines on a point of systemd's early boot (`sysinit.target`, ...), as
    /// (origin, source): carried once every unit of the import is known.
    pub before_early_boot: Vec<(String, String)>,
}

impl Draft {
    pub fn new(name: impl Into<String>, source: PathBuf) -> Draft {
        Draft {
            name: name.into(),
            sources: vec![source],
            header: Vec::new(),
            fields: Vec::new(),
            entries: Vec::new(),
            warnings: Vec::new(),
            absent: Default::default(),
            after_early_boot: false,
            before_early_boot: Vec::new(),
        }
    }

    pub fn get(&self, k: &str) -> Option<&V> {
        self.fields.iter().find(|(x, _)| x == k).map(|(_, v)| v)
    }

    pub fn has(&self, k: &str) -> bool {
        self.get(k).is_some()
    }

    pub fn set(&mut self, k: &str, v: V) {
        match self.fields.iter_mut().find(|(x, _)| x == k) {
            Some(slot) => slot.1 = v,
            None => self.fields.push((k.to_string(), v)),
        }
    }

    /// Rewrite every string value (and what the report says they became) with `f`.
    pub fn map_strings(&mut self, f: &impl Fn(&str) -> String) {
        fn walk(v: &mut V, f: &impl Fn(&str) -> String) {
            match v {
                V::Str(s) => *s = f(s),
                V::Arr(a) => a.iter_mut().for_each(|x| walk(x, f)),
                V::Table(t) => t.iter_mut().for_each(|(_, x)| walk(x, f)),
                V::Int(_) | V::Bool(_) => {}
            }
        }
        for (_, v) in &mut self.fields {
            walk(v, f);
        }
        for e in &mut self.entries {
            if let Some(t) = e.to.as_mut() {
                *t = f(t);
            }
        }
    }

    pub fn unset(&mut self, k: &str) {
        self.fields.retain(|(x, _)| x != k);
    }

    /// Append strings to an array key, skipping ones already there.
    pub fn push_strs(&mut self, k: &str, items: &[String]) {
        let mut cur = match self.get(k) {
            Some(V::Arr(a)) => a.clone(),
            _ => Vec::new(),
        };
        for i in items {
            let v = V::s(i.as_str());
            if !cur.contains(&v) {
                cur.push(v);
            }
        }
        self.set(k, V::Arr(cur));
    }

    /// Set one entry of an inline-table key (`environment`, `extras`).
    pub fn table_set(&mut self, k: &str, name: &str, v: V) {
        let mut cur = match self.get(k) {
            Some(V::Table(t)) => t.clone(),
            _ => Vec::new(),
        };
        match cur.iter_mut().find(|(x, _)| x == name) {
            Some(slot) => slot.1 = v,
            None => cur.push((name.to_string(), v)),
        }
        self.set(k, V::Table(cur));
    }

    pub fn note(&mut self, origin: &str, source: &str, to: Option<String>, fate: Fate) {
        self.entries.push(Entry {
            origin: origin.to_string(),
            source: source.to_string(),
            to,
            fate,
        });
    }

    /// Set `k = v` and record that `source` became it.
    pub fn carry(&mut self, origin: &str, source: &str, k: &str, v: V) {
        let to = format!("{k} = {v}");
        self.set(k, v);
        self.note(origin, source, Some(to), Fate::Carried);
    }

    /// Set `k = v`, with a note on how the meaning differs.
    pub fn approx(&mut self, origin: &str, source: &str, k: &str, v: V, why: impl Into<String>) {
        let to = format!("{k} = {v}");
        self.set(k, v);
        self.note(origin, source, Some(to), Fate::Approx(why.into()));
    }

    pub fn same(&mut self, origin: &str, source: &str, why: impl Into<String>) {
        self.note(origin, source, None, Fate::Same(why.into()));
    }

    pub fn drop_key(&mut self, origin: &str, source: &str, why: impl Into<String>) {
        self.note(origin, source, None, Fate::Dropped(why.into()));
    }

    /// Take `dep` out of the array key `k` (`after`, `requires`) and turn the report lines
    /// that put it there into "not carried" with `why`; a line is added if none did.
    pub fn unlink(&mut self, k: &str, dep: &str, fate: Fate) {
        if let Some(V::Arr(a)) = self.get(k).cloned() {
            let rest: Vec<V> = a.into_iter().filter(|v| *v != V::s(dep)).collect();
            if rest.is_empty() {
                self.unset(k);
            } else {
                self.set(k, V::Arr(rest));
            }
        }
        let to = format!("{k} += {}", V::strs(&[dep]));
        let mut found = false;
        for e in &mut self.entries {
            if e.to.as_deref() == Some(to.as_str()) {
                e.to = None;
                e.fate = fate.clone();
                found = true;
            }
        }
        if !found {
            self.entries.push(Entry {
                origin: "(import)".into(),
                source: format!("{k} = {}", V::strs(&[dep])),
                to: None,
                fate,
            });
        }
    }

    pub fn dropped(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.fate, Fate::Dropped(_)))
            .count()
    }

    /// The unit file's text: header comments, top-level keys, then each section, in the
    /// order colony.unit(5) lists them.
    pub fn render(&self) -> String {
        let top_rank = |k: &str| {
            units::parse::TOP_KEYS
                .iter()
                .position(|x| *x == k)
                .unwrap_or(usize::MAX)
        };
        let mut out = String::new();
        for h in &self.header {
            if h.is_empty() {
                out.push_str("#\n");
            } else {
                // A comment holds no control character (TOML): a source's `\r` or ESC
                // would make the unit unreadable, a newline would end the comment.
                let h: String = h
                    .chars()
                    .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
                    .collect();
                out.push_str(&format!("# {h}\n"));
            }
        }
        let mut top: Vec<&(String, V)> = self
            .fields
            .iter()
            .filter(|(k, _)| !k.contains('.'))
            .collect();
        top.sort_by_key(|(k, _)| top_rank(k));
        for (k, v) in top {
            out.push_str(&format!("{} = {v}\n", key(k)));
        }
        for (section, keys) in units::parse::SECTIONS {
            let mut here: Vec<(&str, &V)> = self
                .fields
                .iter()
                .filter_map(|(k, v)| {
                    let (s, rest) = k.split_once('.')?;
                    (s == *section).then_some((rest, v))
                })
                .collect();
            if here.is_empty() {
                continue;
            }
            here.sort_by_key(|(k, _)| keys.iter().position(|x| x == k).unwrap_or(usize::MAX));
            out.push_str(&format!("\n[{section}]\n"));
            for (k, v) in here {
                out.push_str(&format!("{} = {v}\n", key(k)));
            }
        }
        out
    }
}

/// A unit name from any name: characters colony does not allow become `-`, and it is cut
/// to 64 characters.
pub fn unit_name(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    while s.starts_with(|c: char| !c.is_ascii_alphanumeric()) {
        s.remove(0);
    }
    s.truncate(64);
    if s.is_empty() {
        s = "unit".into();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_rendering() {
        assert_eq!(quote("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
        assert_eq!(key("LANG"), "LANG");
        assert_eq!(key("a.b"), "\"a.b\"");
        let mut d = Draft::new("x", PathBuf::from("/x"));
        d.set("restart.policy", V::s("never"));
        d.set("exec", V::strs(&["/bin/true"]));
        d.set("description", V::s("X"));
        d.table_set("environment", "A", V::s("1"));
        let text = d.render();
        assert_eq!(
            text,
            "description = \"X\"\nexec = [\"/bin/true\"]\nenvironment = { A = \"1\" }\n\n[restart]\npolicy = \"never\"\n"
        );
    }

    #[test]
    fn names() {
        assert_eq!(unit_name("getty@tty1"), "getty-tty1");
        assert_eq!(unit_name("_x"), "x");
        assert_eq!(unit_name("worker:03"), "worker-03");
    }
}

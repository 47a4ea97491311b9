//! Reading systemd unit files: assignments with their origins, drop-ins, instance names,
//! and the state of one unit being translated ([`Sd`]) with specifier expansion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::super::draft::{Draft, Fate, V};

/// One `Key=Value` of a unit file or drop-in.
#[derive(Debug, Clone)]
pub(super) struct Item {
    pub(super) section: String,
    pub(super) key: String,
    pub(super) value: String,
    pub(super) origin: String,
}

/// Read a unit file's assignments, in order (sections, comments, `\` continuations).
pub(super) fn parse_file(path: &Path, items: &mut Vec<Item>) -> Result<(), String> {
    let text = crate::import::input::read_text(path)?;
    let shown = path.display().to_string();
    // No unit key may hold a NUL (argv and paths become C strings): not a unit file.
    if text.contains('\0') {
        return Err(format!("{shown}: has a NUL byte: not a unit file"));
    }
    let mut section = String::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, raw)) = lines.next() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            match line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                Some(s) => section = s.to_string(),
                None => return Err(format!("{shown}:{}: bad section header `{line}`", n + 1)),
            }
            continue;
        }
        let mut full = line.to_string();
        while full.ends_with('\\') {
            full.pop();
            full.push(' ');
            match lines.next() {
                Some((_, next)) => {
                    let t = next.trim();
                    if t.starts_with('#') || t.starts_with(';') {
                        continue;
                    }
                    full.push_str(t);
                }
                None => break,
            }
        }
        let Some((k, v)) = full.split_once('=') else {
            return Err(format!("{shown}:{}: `{line}` is not KEY=VALUE", n + 1));
        };
        items.push(Item {
            section: section.clone(),
            key: k.trim().to_string(),
            value: v.trim().to_string(),
            origin: format!("{shown}:{}", n + 1),
        });
    }
    Ok(())
}

/// `foo@bar.service` -> (`foo`, Some(`bar`), `service`).
pub(super) fn split_name(full: &str) -> (String, Option<String>, String) {
    let (stem, suffix) = full.rsplit_once('.').unwrap_or((full, ""));
    match stem.split_once('@') {
        Some((p, i)) => (p.to_string(), Some(i.to_string()), suffix.to_string()),
        None => (stem.to_string(), None, suffix.to_string()),
    }
}

/// The file to read for `path`: itself, or for an instance `foo@bar.service` that has no
/// file of its own, its template `foo@.service`.
pub(super) fn resolve(path: &Path) -> Result<PathBuf, String> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
    let (prefix, inst, suffix) = split_name(file);
    if inst.is_some_and(|i| !i.is_empty()) {
        let t = path.with_file_name(format!("{prefix}@.{suffix}"));
        if t.is_file() {
            return Ok(t);
        }
    }
    Err(format!("{}: no such file", path.display()))
}

/// The unit file and its drop-ins (`NAME.d/*.conf`, and the template's for an instance),
/// sorted by file name as systemd applies them.
pub(super) fn load(path: &Path, full: &str) -> Result<(Vec<Item>, Vec<PathBuf>), String> {
    let main = resolve(path)?;
    let mut items = Vec::new();
    parse_file(&main, &mut items)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let (prefix, inst, suffix) = split_name(full);
    let mut dirs = Vec::new();
    if inst.is_some() {
        dirs.push(dir.join(format!("{prefix}@.{suffix}.d")));
    }
    dirs.push(dir.join(format!("{full}.d")));
    let mut confs: BTreeMap<String, PathBuf> = BTreeMap::new();
    for d in dirs {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.ends_with(".conf") {
                    confs.insert(name, e.path());
                }
            }
        }
    }
    let mut used = vec![main];
    for p in confs.into_values() {
        parse_file(&p, &mut items)?;
        used.push(p);
    }
    Ok((items, used))
}

/// The parsed source and the unit being made from it.
pub(super) struct Sd {
    pub(super) items: Vec<Item>,
    pub(super) done: Vec<bool>,
    pub(super) d: Draft,
    /// Full systemd name (`redis-server.service`).
    pub(super) full: String,
    pub(super) user: Option<String>,
    pub(super) env: Vec<(String, String)>,
    pub(super) is_timer_job: bool,
    /// A template (`NAME@.service`): its instance specifiers stay as colony's own.
    pub(super) template: bool,
}

impl Sd {
    pub(super) fn src(&self, i: usize) -> String {
        let it = &self.items[i];
        let v = if it.value.chars().count() > 100 {
            format!("{}...", it.value.chars().take(97).collect::<String>())
        } else {
            it.value.clone()
        };
        format!("{}={v}", it.key)
    }

    pub(super) fn origin(&self, i: usize) -> String {
        self.items[i].origin.clone()
    }

    pub(super) fn indices(&self, section: &str, key: &str) -> Vec<usize> {
        (0..self.items.len())
            .filter(|&i| self.items[i].section == section && self.items[i].key == key)
            .collect()
    }

    pub(super) fn mark(&mut self, i: usize, to: Option<String>, fate: Fate) {
        let (o, s) = (self.origin(i), self.src(i));
        self.d.note(&o, &s, to, fate);
        self.done[i] = true;
    }

    pub(super) fn carry(&mut self, i: usize, k: &str, v: V) {
        let (o, s) = (self.origin(i), self.src(i));
        self.d.carry(&o, &s, k, v);
        self.done[i] = true;
    }

    pub(super) fn approx(&mut self, i: usize, k: &str, v: V, why: impl Into<String>) {
        let (o, s) = (self.origin(i), self.src(i));
        self.d.approx(&o, &s, k, v, why);
        self.done[i] = true;
    }

    pub(super) fn same(&mut self, i: usize, why: impl Into<String>) {
        self.mark(i, None, Fate::Same(why.into()));
    }

    pub(super) fn drop_it(&mut self, i: usize, why: impl Into<String>) {
        self.mark(i, None, Fate::Dropped(why.into()));
    }

    /// The last assignment of a single-valued key; earlier ones are reported as overridden.
    /// An empty last value resets the key: `None`.
    pub(super) fn last(&mut self, section: &str, key: &str) -> Option<usize> {
        let all = self.indices(section, key);
        let (&last, earlier) = all.split_last()?;
        for &i in earlier {
            let why = format!("overridden by {}", self.items[last].origin);
            self.same(i, why);
        }
        if self.items[last].value.is_empty() {
            self.same(last, "empty: resets the key to its default");
            return None;
        }
        Some(last)
    }

    /// The assignments of a list key since the last empty one (which resets the list).
    pub(super) fn list(&mut self, section: &str, key: &str) -> Vec<usize> {
        let all = self.indices(section, key);
        let reset = all.iter().rposition(|&i| self.items[i].value.is_empty());
        match reset {
            Some(r) => {
                let at = self.items[all[r]].origin.clone();
                for &i in &all[..r] {
                    self.same(i, format!("reset by the empty assignment at {at}"));
                }
                self.same(all[r], "empty: resets the list");
                all[r + 1..].to_vec()
            }
            None => all,
        }
    }

    /// The value with systemd's specifiers (`%n %N %p %i %I %j %u %h %t %S %C %L %E %T %V %%`)
    /// expanded.
    pub(super) fn expand(&mut self, i: usize) -> String {
        let v = self.items[i].value.clone();
        self.expand_str(&v)
    }

    pub(super) fn expand_str(&mut self, s: &str) -> String {
        if !s.contains('%') {
            return s.to_string();
        }
        let (prefix, inst, _) = split_name(&self.full);
        let inst = inst.unwrap_or_default();
        let user = self.user.clone().unwrap_or_else(|| "root".into());
        let mut out = String::new();
        let mut it = s.chars();
        while let Some(c) = it.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let Some(sp) = it.next() else {
                out.push('%');
                break;
            };
            // A template's instance specifiers are colony's too, filled in per instance.
            if self.template && matches!(sp, 'i' | 'I' | 'p' | 'n' | 'N') {
                let sp = if sp == 'N' { 'n' } else { sp };
                out.push('%');
                out.push(sp);
                continue;
            }
            let rep = match sp {
                '%' => "%".to_string(),
                'n' => self.full.clone(),
                'N' => self
                    .full
                    .rsplit_once('.')
                    .map(|x| x.0)
                    .unwrap_or(&self.full)
                    .to_string(),
                'p' => prefix.clone(),
                'P' => unescape(&prefix),
                'i' => inst.clone(),
                'I' => unescape(&inst),
                'j' => prefix.rsplit('-').next().unwrap_or(&prefix).to_string(),
                'u' => user.clone(),
                'h' => home_of(&user).unwrap_or_else(|| {
                    self.d
                        .warnings
                        .push(format!("%h: no home directory known for user `{user}`"));
                    format!("/home/{user}")
                }),
                't' => "/run".into(),
                'S' => "/var/lib".into(),
                'C' => "/var/cache".into(),
                'L' => "/var/log".into(),
                'E' => "/etc".into(),
                'T' => "/tmp".into(),
                'V' => "/var/tmp".into(),
                other => {
                    self.d.warnings.push(format!(
                        "specifier %{other} is not expanded by the import; the unit has it literally"
                    ));
                    format!("%{other}")
                }
            };
            out.push_str(&rep);
        }
        out
    }
}

/// systemd's name unescaping: `-` is `/`, `\xNN` a byte.
pub(super) fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '-' => out.push('/'),
            '\\' if it.peek() == Some(&'x') => {
                it.next();
                let h: String = (0..2).filter_map(|_| it.next()).collect();
                match u8::from_str_radix(&h, 16) {
                    Ok(b) => out.push(b as char),
                    Err(_) => out.push_str(&format!("\\x{h}")),
                }
            }
            c => out.push(c),
        }
    }
    out
}

pub(super) fn home_of(user: &str) -> Option<String> {
    if user == "root" {
        return Some("/root".into());
    }
    nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .map(|u| u.dir.to_string_lossy().to_string())
}

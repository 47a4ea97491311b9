//! A directory of units as a whole: cycles (errors) and unknown dependencies (warnings).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use crate::diag::{Diagnostic, LineIndex, Warning};
use crate::model::Unit;
use crate::parse::{load_file, valid_unit_name};

/// Every unit of a directory by name: the unit, or why it is invalid.
pub type UnitSet = BTreeMap<String, Result<Unit, Vec<Diagnostic>>>;

/// `NAME` for a file name `NAME.unit` with a valid NAME; `None` for anything else (dotfiles,
/// editors' and temporary files such as `.web.unit.swp`, `web.unit~`, `#web.unit#`,
/// `web.unit.tmp`), which never start anything.
pub fn unit_file_name(file_name: &str) -> Option<&str> {
    file_name
        .strip_suffix(".unit")
        .filter(|n| valid_unit_name(n))
}

/// Load every `NAME.unit` of `dir` and validate them as a set ([`validate_set`]).
/// Only an unreadable directory is an `Err`; a bad file is an `Err` entry in the map.
/// A template `NAME@.unit` is the entry `NAME@` (checked with a sample instance); a unit
/// with `instances = N` is its N entries `NAME-K`.
pub fn load_dir(dir: &Path) -> Result<UnitSet, std::io::Error> {
    load_dir_with(dir, &BTreeSet::new())
}

/// [`load_dir`], with the instances `NAME@INST` of its templates that are asked for.
pub fn load_dir_with(dir: &Path, instances: &BTreeSet<String>) -> Result<UnitSet, std::io::Error> {
    let mut set = UnitSet::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(f) = file_name.to_str() else {
            continue;
        };
        if let Some(name) = unit_file_name(f) {
            match load_entry(&entry.path()) {
                Ok(u) if u.instances.is_some() => {
                    crate::template_load::numbered(&mut set, &entry.path(), &u);
                }
                r => {
                    set.insert(name.to_string(), r);
                }
            }
        } else if let Some(prefix) = crate::template::template_file_name(f) {
            set.insert(format!("{prefix}@"), load_entry(&entry.path()));
            let mut wanted = instances.clone();
            wanted.extend(crate::template_load::instance_files(dir, prefix));
            crate::template_load::instances(&mut set, &entry.path(), prefix, &wanted);
        }
    }
    validate_set(&mut set);
    Ok(set)
}

/// One `NAME.unit` entry of a directory. Follows symlinks: a linked unit file is a unit file.
fn load_entry(path: &Path) -> Result<Unit, Vec<Diagnostic>> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => load_file(path),
        Ok(_) => Err(vec![Diagnostic::whole_file(
            path,
            "file",
            "not a regular file; a unit is a file NAME.unit",
        )]),
        Err(e) => Err(vec![Diagnostic::whole_file(
            path,
            "file",
            format!("cannot read the unit file: {e}"),
        )]),
    }
}

/// Whole-set checks: a valid unit in a dependency cycle (through `after`/`requires`) becomes
/// invalid. A cycle's diagnostic names every unit of the cycle, at the `after`/`requires`
/// entry that closes it. A dependency on a unit that is not in the set is no error (see
/// [`warnings`]): ordering against it is ignored, and a missing required unit only keeps
/// this one from starting, as in systemd.
pub fn validate_set(set: &mut UnitSet) {
    validate(set);
}

/// Which of a unit's dependency lists names a unit that is not there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DepKey {
    After,
    Requires,
    Wants,
    Before,
    Conflicts,
}

impl DepKey {
    pub fn key(self) -> &'static str {
        match self {
            DepKey::After => "after",
            DepKey::Requires => "requires",
            DepKey::Wants => "wants",
            DepKey::Before => "before",
            DepKey::Conflicts => "conflicts",
        }
    }
}

/// What a dependency on a unit that does not exist means, in words shared by `check` and
/// `status`.
pub fn missing_dependency(key: DepKey, dep: &str) -> String {
    let so = match key {
        DepKey::After => "ordering after it is ignored",
        DepKey::Requires => "this unit cannot start until there is one",
        DepKey::Wants => "nothing is started with this unit for it",
        DepKey::Before => "ordering before it is ignored",
        DepKey::Conflicts => "there is nothing to stop for it",
    };
    format!("no unit `{dep}` (no file {dep}.unit in this directory), so {so}")
}

/// Warnings of a validated set: each `after`/`requires` entry of a valid unit that names no
/// unit of the set, at that entry, with the name it may have meant.
pub fn warnings(set: &UnitSet) -> Vec<Warning> {
    dependency_warnings(set, set.keys().map(String::as_str), |_| true)
}

/// [`warnings`] of the units `of` picks, with hints from `known`.
fn dependency_warnings<'a>(
    set: &UnitSet,
    known: impl Iterator<Item = &'a str> + Clone,
    of: impl Fn(&str) -> bool,
) -> Vec<Warning> {
    let mut out = Vec::new();
    for (_, unit) in set.iter().filter(|(n, _)| of(n)) {
        let Ok(u) = unit else { continue };
        for (key, deps) in [
            (DepKey::After, &u.after),
            (DepKey::Requires, &u.requires),
            (DepKey::Wants, &u.links.wants),
            (DepKey::Before, &u.links.before),
            (DepKey::Conflicts, &u.links.conflicts),
        ] {
            for dep in deps.iter().filter(|d| !set.contains_key(*d)) {
                let hint = crate::diag::nearest(dep, known.clone())
                    .map(|n| format!("; did you mean `{n}`?"))
                    .unwrap_or_default();
                let message = format!("{}{hint}", missing_dependency(key, dep));
                out.push(Warning(locate(u, key.key(), dep, message)));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn validate(set: &mut UnitSet) {
    let mut new_errs: BTreeMap<String, Vec<Diagnostic>> = BTreeMap::new();

    // Cycles through after/requires (and `before`, read as the other unit's `after`)
    // among valid units.
    let mut befores: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (n, u) in set.iter() {
        if let Ok(u) = u {
            for b in &u.links.before {
                befores.entry(b.as_str()).or_default().push(n.as_str());
            }
        }
    }
    let graph: BTreeMap<&str, Vec<&str>> = set
        .iter()
        .filter_map(|(n, u)| u.as_ref().ok().map(|u| (n.as_str(), u)))
        .map(|(n, u)| {
            let mut deps: Vec<&str> = u
                .after
                .iter()
                .chain(u.requires.iter())
                .map(String::as_str)
                .chain(befores.get(n).into_iter().flatten().copied())
                .filter(|d| set.get(*d).is_some_and(|x| x.is_ok()))
                .collect();
            deps.sort_unstable();
            deps.dedup();
            (n, deps)
        })
        .collect();
    for scc in strongly_connected(&graph) {
        let members: BTreeSet<&str> = scc.iter().copied().collect();
        let cyclic = members.len() > 1
            || scc
                .first()
                .is_some_and(|n| graph.get(n).is_some_and(|d| d.contains(n)));
        if !cyclic {
            continue;
        }
        let all: Vec<&str> = members.iter().copied().collect();
        for &start in &members {
            let path = shortest_cycle(&graph, &members, start);
            let next = path.get(1).copied().unwrap_or(start);
            let Some(Ok(u)) = set.get(start) else {
                continue;
            };
            let key = if u.after.iter().any(|d| d == next) {
                "after"
            } else if u.requires.iter().any(|d| d == next) {
                "requires"
            } else {
                "before" // `next` names this unit in its `before`
            };
            let mut msg = format!("dependency cycle: {}", path.join(" -> "));
            if all.len() > path.len().saturating_sub(1) {
                msg.push_str(&format!(" (units in the cycle: {})", all.join(", ")));
            }
            msg.push_str("; remove one of these dependencies");
            new_errs
                .entry(start.to_string())
                .or_default()
                .push(locate(u, key, next, msg));
        }
    }

    // One address in two units' [socket]: the second could never listen on it.
    let mut listeners: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (n, u) in set.iter() {
        if let Ok(u) = u {
            for l in u.socket.iter().flat_map(|s| &s.listen) {
                listeners.entry(l.text()).or_default().push(n);
            }
        }
    }
    for (addr, names) in listeners.iter().filter(|(_, v)| v.len() > 1) {
        for &n in names {
            let Some(Ok(u)) = set.get(n) else { continue };
            let others: Vec<&str> = names.iter().copied().filter(|o| *o != n).collect();
            new_errs
                .entry(n.to_string())
                .or_default()
                .push(Diagnostic::whole_file(
                    &u.path,
                    "socket.listen",
                    format!(
                        "`{addr}` is in the [socket] of {} too; an address belongs to one unit",
                        others.join(", ")
                    ),
                ));
        }
    }

    for (name, mut errs) in new_errs {
        errs.sort();
        errs.dedup();
        set.insert(name, Err(errs));
    }
}

/// Tarjan's algorithm, iterative (no recursion depth to exhaust on a long chain).
fn strongly_connected<'a>(graph: &BTreeMap<&'a str, Vec<&'a str>>) -> Vec<Vec<&'a str>> {
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut low: BTreeMap<&str, usize> = BTreeMap::new();
    let mut on_stack: BTreeSet<&str> = BTreeSet::new();
    let mut stack: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    let mut next = 0usize;
    let empty = Vec::new();
    for &root in graph.keys() {
        if index.contains_key(root) {
            continue;
        }
        // (node, position in its successor list)
        let mut work: Vec<(&str, usize)> = vec![(root, 0)];
        while let Some((v, i)) = work.pop() {
            if i == 0 {
                index.insert(v, next);
                low.insert(v, next);
                next += 1;
                stack.push(v);
                on_stack.insert(v);
            }
            let succ = graph.get(v).unwrap_or(&empty);
            if let Some(&w) = succ.get(i) {
                work.push((v, i + 1));
                if !index.contains_key(w) {
                    work.push((w, 0));
                } else if on_stack.contains(w) {
                    let lw = index[w];
                    let lv = low[v];
                    low.insert(v, lv.min(lw));
                }
                continue;
            }
            // All successors done: fold low into the parent, emit an SCC at its root.
            if low[v] == index[v] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack.remove(w);
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                comp.sort_unstable();
                out.push(comp);
            }
            if let Some(&(parent, _)) = work.last() {
                let lv = low[v];
                let lp = low[parent];
                low.insert(parent, lp.min(lv));
            }
        }
    }
    out
}

/// The shortest path `start -> ... -> start` inside one strongly connected component.
fn shortest_cycle<'a>(
    graph: &BTreeMap<&'a str, Vec<&'a str>>,
    members: &BTreeSet<&'a str>,
    start: &'a str,
) -> Vec<&'a str> {
    let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    let mut seen = BTreeSet::new();
    while let Some(v) = queue.pop_front() {
        for &w in graph.get(v).map(Vec::as_slice).unwrap_or(&[]) {
            if !members.contains(w) {
                continue;
            }
            if w == start {
                // Walk back from v to start, then turn it round.
                let mut back = Vec::new();
                let mut cur = v;
                while cur != start && back.len() <= members.len() {
                    back.push(cur);
                    cur = prev.get(cur).copied().unwrap_or(start);
                }
                let mut path = vec![start];
                path.extend(back.into_iter().rev());
                path.push(start);
                return path;
            }
            if seen.insert(w) {
                prev.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    vec![start, start]
}

/// A diagnostic at the entry `dep` of `key` in the unit's file (read again: the model keeps
/// no spans), or at 1:1 when the file cannot be read or no longer says so.
fn locate(u: &Unit, key: &str, dep: &str, message: String) -> Diagnostic {
    let whole = || Diagnostic::whole_file(&u.path, key, message.clone());
    let Ok(text) = std::fs::read_to_string(&u.path) else {
        return whole();
    };
    let Ok(doc) = DeTable::parse(&text) else {
        return whole();
    };
    let Some((k, v)) = doc.get_ref().get_key_value(key) else {
        return whole();
    };
    let mut span: Range<usize> = k.span();
    if let DeValue::Array(items) = v.get_ref() {
        if let Some(item) = items.iter().find(|i| {
            i.get_ref()
                .as_str()
                .is_some_and(|s| s.strip_suffix(".unit").unwrap_or(s) == dep)
        }) {
            span = item.span();
        }
    }
    LineIndex::new(&text).at(&u.path, &text, span, key, message)
}

/// Every unit `u` names: `after`, `requires`, `before`, `wants`, `conflicts`.
fn named_units(u: &Unit) -> impl Iterator<Item = &String> {
    u.after
        .iter()
        .chain(&u.requires)
        .chain(&u.links.before)
        .chain(&u.links.wants)
        .chain(&u.links.conflicts)
}

/// One file, checked in the context of its directory: it must not be in a cycle with the
/// units it names. Diagnostics name `path` as given. A file whose name is not `NAME.unit` is
/// reported as such. Names of units that are not there are warnings ([`check_file_warned`]).
///
/// Only the files it refers to are read, and what they refer to in turn (a cycle back to it
/// runs through them), not the whole directory: the verdict is the one [`load_dir`] gives
/// this unit, since nothing else can change it.
pub fn check_file(path: &Path) -> Result<Unit, Vec<Diagnostic>> {
    check_file_warned(path).0
}

/// [`check_file`], with the warnings [`warnings`] gives this unit in its directory.
pub fn check_file_warned(path: &Path) -> (Result<Unit, Vec<Diagnostic>>, Vec<Warning>) {
    let name = path
        .file_name()
        .and_then(|f| f.to_str())
        .and_then(unit_file_name);
    let (Some(name), Some(dir)) = (name, path.parent()) else {
        return (load_file(path), Vec::new());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut set = UnitSet::new();
    let mut queue = VecDeque::from([name.to_string()]);
    while let Some(n) = queue.pop_front() {
        if set.contains_key(&n) {
            continue;
        }
        let result = if n == name {
            load_entry(path)
        } else {
            let p = dir.join(format!("{n}.unit"));
            match std::fs::symlink_metadata(&p) {
                // Not in the directory: a warning says so.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                _ => load_entry(&p),
            }
        };
        // An invalid unit orders nothing, so what it names does not matter.
        if let Ok(u) = &result {
            queue.extend(named_units(u).cloned());
        }
        set.insert(n, result);
    }
    validate(&mut set);
    // Hints come from the whole directory, read only when a name is missing; in name
    // order, as `load_dir`'s keys, so a tie picks the same hint.
    let missing = set
        .get(name)
        .and_then(|r| r.as_ref().ok())
        .is_some_and(|u| named_units(u).any(|d| !set.contains_key(d)));
    let warned = if missing {
        let known: Vec<String> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .flatten()
                .filter_map(|e| {
                    let f = e.file_name();
                    f.to_str().and_then(unit_file_name).map(str::to_string)
                })
                .collect::<BTreeSet<String>>()
                .into_iter()
                .collect(),
            Err(_) => set.keys().cloned().collect(),
        };
        dependency_warnings(&set, known.iter().map(String::as_str), |n| n == name)
    } else {
        Vec::new()
    };
    let result = set.remove(name).unwrap_or_else(|| load_file(path));
    (result, warned)
}

//! A directory of units as a whole: unknown dependencies and cycles.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use crate::diag::{Diagnostic, LineIndex};
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
pub fn load_dir(dir: &Path) -> Result<UnitSet, std::io::Error> {
    let mut set = UnitSet::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str().and_then(unit_file_name) else {
            continue;
        };
        let path = entry.path();
        // Follows symlinks: a linked unit file is a unit file.
        let result = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => load_file(&path),
            Ok(_) => Err(vec![Diagnostic::whole_file(
                &path,
                "file",
                "not a regular file; a unit is a file NAME.unit",
            )]),
            Err(e) => Err(vec![Diagnostic::whole_file(
                &path,
                "file",
                format!("cannot read the unit file: {e}"),
            )]),
        };
        set.insert(name.to_string(), result);
    }
    validate_set(&mut set);
    Ok(set)
}

/// Whole-set checks: a valid unit whose `after` or `requires` names a unit that is not in the
/// set, or that is in a dependency cycle, becomes invalid. A cycle's diagnostic names every
/// unit of the cycle, at the `after`/`requires` entry that closes it.
pub fn validate_set(set: &mut UnitSet) {
    let mut new_errs: BTreeMap<String, Vec<Diagnostic>> = BTreeMap::new();

    // Unknown dependencies.
    for (name, unit) in set.iter() {
        let Ok(u) = unit else { continue };
        for (key, deps) in [("after", &u.after), ("requires", &u.requires)] {
            for dep in deps {
                if !set.contains_key(dep) {
                    let hint = crate::diag::nearest(dep, set.keys().map(String::as_str))
                        .map(|n| format!("; did you mean `{n}`?"))
                        .unwrap_or_default();
                    new_errs.entry(name.clone()).or_default().push(locate(
                        u,
                        key,
                        dep,
                        format!("no unit `{dep}` (no file {dep}.unit in this directory){hint}"),
                    ));
                }
            }
        }
    }

    // Cycles through after/requires among valid units.
    let graph: BTreeMap<&str, Vec<&str>> = set
        .iter()
        .filter_map(|(n, u)| u.as_ref().ok().map(|u| (n.as_str(), u)))
        .map(|(n, u)| {
            let mut deps: Vec<&str> = u
                .after
                .iter()
                .chain(u.requires.iter())
                .map(String::as_str)
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
            } else {
                "requires"
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

/// One file, checked in the context of its directory: its `after`/`requires` must name units
/// of that directory, and it must not be in a cycle with them. Diagnostics name `path` as
/// given. A file whose name is not `NAME.unit` is reported as such.
pub fn check_file(path: &Path) -> Result<Unit, Vec<Diagnostic>> {
    let name = path
        .file_name()
        .and_then(|f| f.to_str())
        .and_then(unit_file_name);
    let (Some(name), Some(dir)) = (name, path.parent()) else {
        return load_file(path);
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(mut set) = load_dir(dir) else {
        return load_file(path);
    };
    match set.remove(name) {
        Some(Ok(mut u)) => {
            u.path = path.to_path_buf();
            Ok(u)
        }
        Some(Err(mut errs)) => {
            for d in &mut errs {
                d.file = path.to_path_buf();
            }
            Err(errs)
        }
        // The directory listing did not show it (a race, or an odd mount): alone, then.
        None => load_file(path),
    }
}

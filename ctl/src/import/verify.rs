//! What import makes sure of before it writes: every ordering names a unit that will be
//! there, and every unit passes the checks colony-init and `colonyctl check` apply to the
//! output directory as a whole (the parser, then the set: dependencies, cycles).

use std::collections::BTreeSet;
use std::path::Path;

use super::draft::{Draft, Fate, V};

/// The units of `out` by name (`NAME.unit` files), without reading them.
fn existing(out: &Path) -> BTreeSet<String> {
    let Ok(rd) = std::fs::read_dir(out) else {
        return BTreeSet::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let f = e.file_name();
            units::validate::unit_file_name(f.to_str()?).map(str::to_string)
        })
        .collect()
}

/// Take out of `after`, `requires`, `wants`, `before` and `conflicts` every name that is neither a unit of this import nor
/// a unit already in `out`, each with a "not carried" report line: a unit must not name
/// units that will not be there.
pub fn prune_dependencies(drafts: &mut [Draft], out: &Path) {
    let mut present = existing(out);
    present.extend(drafts.iter().map(|d| d.name.clone()));
    for d in drafts.iter_mut() {
        for key in ["after", "requires", "wants", "before", "conflicts"] {
            let Some(V::Arr(deps)) = d.get(key).cloned() else {
                continue;
            };
            for dep in deps {
                let V::Str(dep) = dep else { continue };
                // An instance `P@I` is there when its template `P@` is.
                let template = dep
                    .split_once('@')
                    .is_some_and(|(p, i)| !i.is_empty() && present.contains(&format!("{p}@")));
                if present.contains(&dep) || template {
                    continue;
                }
                let weak = matches!(key, "after" | "wants" | "before");
                let fate = if weak && d.absent.contains(&dep) {
                    Fate::Same(format!(
                        "`{dep}` is not installed here: the ordering does nothing under systemd either"
                    ))
                } else {
                    Fate::Dropped(format!(
                        "`{dep}` is neither imported here nor a unit in {}: import its file too, or add `{dep}` to `{key}` once {dep}.unit exists",
                        out.display()
                    ))
                };
                d.unlink(key, &dep, fate);
            }
        }
    }
}

/// Check the units as they would be read from `out`, together with the units already
/// there: one line per error (`FILE:LINE:COL: KEY: message`, the file being the unit that
/// would be written). Empty when every unit would load.
pub fn check_output(drafts: &[Draft], out: &Path) -> Vec<String> {
    let mut set = if out.is_dir() {
        match units::validate::load_dir(out) {
            Ok(set) => set,
            Err(e) => return vec![format!("{}: cannot read the directory: {e}", out.display())],
        }
    } else {
        units::validate::UnitSet::new()
    };
    for d in drafts {
        let path = out.join(format!("{}.unit", d.name));
        set.insert(d.name.clone(), units::parse::parse_unit(&path, &d.render()));
    }
    units::validate::validate_set(&mut set);
    let mut errors = Vec::new();
    for d in drafts {
        if let Some(Err(diags)) = set.get(&d.name) {
            let from = d.sources.first().map(|p| p.display().to_string());
            errors.extend(diags.iter().map(|g| match &from {
                Some(f) => format!("{g} (imported from {f})"),
                None => g.to_string(),
            }));
        }
    }
    errors
}

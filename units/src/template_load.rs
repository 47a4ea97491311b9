//! Templates and `instances = N` as a directory is read: each instance parsed from its file
//! with the specifiers filled in (see [`crate::template`]).

use std::collections::BTreeSet;
use std::path::Path;

use crate::diag::Diagnostic;
use crate::model::Unit;
use crate::parse::parse_instance;
use crate::template::{expand, numbered as names, Spec};
use crate::validate::UnitSet;

fn read(path: &Path) -> Result<String, Vec<Diagnostic>> {
    std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic::whole_file(
            path,
            "file",
            format!("cannot read the unit file: {e}"),
        )]
    })
}

/// The units `NAME-0`.. of `u` (`instances = N`), in `set`.
pub(crate) fn numbered(set: &mut UnitSet, path: &Path, u: &Unit) {
    let n = u.instances.unwrap_or(0);
    let text = read(path);
    for (name, k) in names(&u.name, n) {
        let r = text.clone().and_then(|t| {
            let spec = Spec {
                prefix: &u.name,
                instance: &k,
                name: &name,
            };
            parse_instance(path, &name, &expand(&t, spec))
        });
        set.insert(name, r);
    }
}

/// The instances of template `prefix` that `dir` holds as files `PREFIX@INST.unit` (a link
/// to the template, or an empty file: the text is the template's), as systemd enables an
/// instance with a link.
pub(crate) fn instance_files(dir: &Path, prefix: &str) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let f = e.file_name();
            let name = instance_file_name(f.to_str()?)?;
            let p = crate::template::split_instance(name)?.0;
            (p == prefix).then(|| name.to_string())
        })
        .collect()
}

/// `P@I` of an instance file name `P@I.unit`.
pub fn instance_file_name(file_name: &str) -> Option<&str> {
    file_name
        .strip_suffix(".unit")
        .filter(|n| crate::template::split_instance(n).is_some())
}

/// The asked-for instances `PREFIX@INST` of the template at `path`, in `set`.
pub(crate) fn instances(set: &mut UnitSet, path: &Path, prefix: &str, wanted: &BTreeSet<String>) {
    let mine: Vec<&String> = wanted
        .iter()
        .filter(|n| crate::template::split_instance(n).is_some_and(|(p, _)| p == prefix))
        .collect();
    if mine.is_empty() {
        return;
    }
    let text = read(path);
    for name in mine {
        let Some((_, inst)) = crate::template::split_instance(name) else {
            continue;
        };
        let r = text.clone().and_then(|t| {
            let spec = Spec {
                prefix,
                instance: inst,
                name,
            };
            parse_instance(path, name, &expand(&t, spec))
        });
        set.insert(name.clone(), r);
    }
}

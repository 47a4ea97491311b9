//! `colonyctl check FILE|DIR...`: validate unit files without colony-init.

use std::collections::BTreeSet;
use std::path::PathBuf;

use units::diag::{Diagnostic, Warning};
use units::proto::exit;

/// A line of `check`'s output: an error makes its unit invalid, a warning does not.
#[derive(Debug, Clone)]
enum Finding {
    Error(Diagnostic),
    Warning(Warning),
}

impl Finding {
    fn diagnostic(&self) -> &Diagnostic {
        match self {
            Finding::Error(d) | Finding::Warning(Warning(d)) => d,
        }
    }

    fn line(&self) -> String {
        match self {
            Finding::Error(d) => d.to_string(),
            Finding::Warning(w) => w.to_string(),
        }
    }
}

/// Check the given files/directories; prints `FILE:LINE:COL: KEY: message` per error and
/// `FILE:LINE:COL: KEY: warning: message` per warning (a dependency on a unit that is not
/// there) on stdout, in file order, and a one-line summary on stderr. A directory is
/// validated as a whole; a file is validated with the units of its own directory as its
/// possible dependencies, reading only those it refers to (and what they refer to), so its
/// siblings' number costs nothing. Returns the exit code: 0 all valid (warnings or not), 1
/// any invalid, 2 usage (no path, a path that does not exist). With `json`, stdout is one
/// object: `{"checked", "invalid", "errors": [{"file", "line", "col", "key", "message"}],
/// "warnings": [the same]}`.
pub fn run(paths: &[PathBuf], json: bool) -> i32 {
    if paths.is_empty() {
        eprintln!("colonyctl check: name at least one unit file or directory: colonyctl check FILE|DIR...");
        return exit::USAGE;
    }
    let missing: Vec<&PathBuf> = paths.iter().filter(|p| !p.exists()).collect();
    if !missing.is_empty() {
        for p in missing {
            eprintln!(
                "colonyctl check: {}: no such file or directory",
                p.display()
            );
        }
        return exit::USAGE;
    }
    let mut printed = BTreeSet::new();
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    let (mut checked, mut invalid, mut warned) = (0usize, 0usize, 0usize);
    let mut report = |mut found: Vec<Finding>| {
        // In file order, as the user reads the directory.
        found.sort_by(|a, b| a.diagnostic().cmp(b.diagnostic()));
        for f in found {
            let line = f.line();
            if !printed.insert(line.clone()) {
                continue;
            }
            if let Finding::Warning(_) = f {
                warned += 1;
            }
            if json {
                let d = f.diagnostic();
                let v = serde_json::json!({
                    "file": d.file,
                    "line": d.line,
                    "col": d.col,
                    "key": d.key,
                    "message": d.message,
                });
                match f {
                    Finding::Error(_) => errors.push(v),
                    Finding::Warning(_) => warnings.push(v),
                }
            } else {
                println!("{line}");
            }
        }
    };
    for p in paths {
        if p.is_dir() {
            match units::validate::load_dir(p) {
                Ok(set) => {
                    // colony-init ignores misnamed files; say so rather than let a unit vanish.
                    let mut all: Vec<Finding> =
                        misnamed(p).into_iter().map(Finding::Error).collect();
                    checked += all.len();
                    invalid += all.len();
                    if set.is_empty() && all.is_empty() {
                        eprintln!("colonyctl check: {}: no NAME.unit files here", p.display());
                    }
                    all.extend(
                        units::validate::warnings(&set)
                            .into_iter()
                            .map(Finding::Warning),
                    );
                    for (_, r) in set {
                        checked += 1;
                        if let Err(errs) = r {
                            invalid += 1;
                            all.extend(errs.into_iter().map(Finding::Error));
                        }
                    }
                    report(all);
                }
                Err(e) => {
                    invalid += 1;
                    report(vec![Finding::Error(Diagnostic::whole_file(
                        p,
                        "file",
                        format!("cannot read the directory: {e}"),
                    ))]);
                }
            }
        } else {
            checked += 1;
            let (r, warned) = units::validate::check_file_warned(p);
            let mut all: Vec<Finding> = warned.into_iter().map(Finding::Warning).collect();
            if let Err(errs) = r {
                invalid += 1;
                all.extend(errs.into_iter().map(Finding::Error));
            }
            report(all);
        }
    }
    if json {
        let v = serde_json::json!({
            "checked": checked,
            "invalid": invalid,
            "errors": errors,
            "warnings": warnings,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
        );
    }
    let units = if checked == 1 { "unit" } else { "units" };
    let warnings = match warned {
        0 => String::new(),
        1 => ", 1 warning".to_string(),
        n => format!(", {n} warnings"),
    };
    if invalid == 0 {
        eprintln!("{checked} {units} checked, all valid{warnings}");
        exit::OK
    } else {
        eprintln!("{checked} {units} checked, {invalid} invalid{warnings}");
        exit::FAILED
    }
}

/// Files of `dir` that look meant as units (`*.unit`, not hidden) but whose NAME is not a
/// valid unit name, so colony-init would skip them.
fn misnamed(dir: &std::path::Path) -> Vec<Diagnostic> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<Diagnostic> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".unit")?;
            if name.starts_with('.')
                || units::validate::unit_file_name(&name).is_some()
                || units::template::template_file_name(&name).is_some()
                || units::template_load::instance_file_name(&name).is_some()
            {
                return None;
            }
            Some(Diagnostic::whole_file(
                &e.path(),
                "name",
                format!(
                    "`{stem}` is not a valid unit name, so colony-init ignores this file: a unit name is 1-64 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit"
                ),
            ))
        })
        .collect();
    out.sort();
    out
}

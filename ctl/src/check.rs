//! `colonyctl check FILE|DIR...`: validate unit files without colony-init.

use std::collections::BTreeSet;
use std::path::PathBuf;

use units::proto::exit;

/// Check the given files/directories; prints `FILE:LINE:COL: KEY: message` per error on
/// stdout and a one-line summary on stderr. A directory is validated as a whole; a file is
/// validated with the units of its own directory as its possible dependencies.
/// Returns the exit code: 0 all valid, 1 any invalid, 2 usage (no path, a path that does not
/// exist). With `json`, stdout is one object: `{"checked", "invalid", "errors": [{"file",
/// "line", "col", "key", "message"}]}`.
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
    let mut errors = Vec::new();
    let (mut checked, mut invalid) = (0usize, 0usize);
    let mut report = |errs: Vec<units::diag::Diagnostic>| {
        for d in errs {
            let line = d.to_string();
            if printed.insert(line.clone()) {
                if json {
                    errors.push(serde_json::json!({
                        "file": d.file,
                        "line": d.line,
                        "col": d.col,
                        "key": d.key,
                        "message": d.message,
                    }));
                } else {
                    println!("{line}");
                }
            }
        }
    };
    for p in paths {
        if p.is_dir() {
            match units::validate::load_dir(p) {
                Ok(set) => {
                    // colony-init ignores misnamed files; say so rather than let a unit vanish.
                    let mut all = misnamed(p);
                    checked += all.len();
                    invalid += all.len();
                    if set.is_empty() && all.is_empty() {
                        eprintln!("colonyctl check: {}: no NAME.unit files here", p.display());
                    }
                    for (_, r) in set {
                        checked += 1;
                        if let Err(errs) = r {
                            invalid += 1;
                            all.extend(errs);
                        }
                    }
                    // In file order, as the user reads the directory.
                    all.sort();
                    report(all);
                }
                Err(e) => {
                    invalid += 1;
                    report(vec![units::diag::Diagnostic::whole_file(
                        p,
                        "file",
                        format!("cannot read the directory: {e}"),
                    )]);
                }
            }
        } else {
            checked += 1;
            if let Err(errs) = units::validate::check_file(p) {
                invalid += 1;
                report(errs);
            }
        }
    }
    if json {
        let v = serde_json::json!({"checked": checked, "invalid": invalid, "errors": errors});
        println!(
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
        );
    }
    if invalid == 0 {
        eprintln!(
            "{checked} unit{} checked, all valid",
            if checked == 1 { "" } else { "s" }
        );
        exit::OK
    } else {
        eprintln!(
            "{checked} unit{} checked, {invalid} invalid",
            if checked == 1 { "" } else { "s" }
        );
        exit::FAILED
    }
}

/// Files of `dir` that look meant as units (`*.unit`, not hidden) but whose NAME is not a
/// valid unit name, so colony-init would skip them.
fn misnamed(dir: &std::path::Path) -> Vec<units::diag::Diagnostic> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<units::diag::Diagnostic> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".unit")?;
            if name.starts_with('.') || units::validate::unit_file_name(&name).is_some() {
                return None;
            }
            Some(units::diag::Diagnostic::whole_file(
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

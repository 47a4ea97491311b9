//! `colonyctl import`: systemd, supervisord and NColony files to units.
//!
//! The importer's contract (`colonyctl::import::check`): every unit it makes parses with
//! the units parser, or the import reports "a bug of the import"; only a user or group
//! missing from this machine's database is a warning. Names are valid unit names, and the
//! report renders.

use std::path::PathBuf;

use colonyctl::import::{check, report, translate, Format};
use units::parse::valid_unit_name;

/// Write the input's files and translate them as `colonyctl import --from FORMAT ARG`
/// would, ARG being the directory (`dir_arg`) or its file `first`.
pub fn run(data: &[u8], format: Format, first: &str, dir_arg: bool) {
    crate::sandbox();
    let dir = crate::fresh_dir("in");
    // `@IN@` stands for the directory of the input's files, so a seed can name one of them
    // in an absolute path (`EnvironmentFile=@IN@/app.env`).
    let data = replace(data, b"@IN@", dir.as_os_str().as_encoded_bytes());
    let files = crate::split_files(&data, first);
    let written = crate::write_files(&dir, &files);
    let arg = if dir_arg {
        dir.clone()
    } else if written.iter().any(|n| n == first) {
        dir.join(first)
    } else {
        return;
    };
    let Ok(mut t) = translate(Some(format), &[arg]) else {
        // A file the importer refuses as a whole (not its syntax, say): a clean error.
        return;
    };
    for d in &t.drafts {
        assert!(valid_unit_name(&d.name), "unit name {:?}", d.name);
    }
    // Two units of one name: `import` refuses the whole import before checking them.
    let names: std::collections::BTreeSet<&str> =
        t.drafts.iter().map(|d| d.name.as_str()).collect();
    if names.len() < t.drafts.len() {
        return;
    }
    let out: PathBuf = crate::scratch().join("out");
    let errors = check(&mut t.drafts, &out);
    assert!(
        errors.is_empty(),
        "the import made invalid units:\n{}\n---\n{}",
        errors.join("\n"),
        t.drafts
            .iter()
            .map(|d| d.render())
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    // The report, as `import` prints it (text and --json).
    let mut tally = report::Tally::default();
    tally.add(&t.general);
    for e in &t.general {
        let _ = report::entry_line(e);
    }
    for d in &t.drafts {
        let _ = report::unit_report(d);
        tally.add(&d.entries);
    }
    let pct = tally.translated_pct();
    assert!((0.0..=100.0).contains(&pct), "{pct}% translated");
    let _ = report::dropped_by_key(&t.drafts, &t.general);
    let j = report::json(&t.drafts, &t.general, &out, &tally, true);
    assert!(serde_json::to_string(&j).is_ok());
}

fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

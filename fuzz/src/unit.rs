//! Unit files: `units::validate::load_dir`, what colony-init's directory sync and
//! `colonyctl check` run (each file through `units::parse::load_file`, then the set's
//! dependency checks).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, SystemTime};

use units::diag::Diagnostic;
use units::model::{HealthCheck, ReadyType, Unit};
use units::parse::{parse_host_port, parse_http_url, valid_unit_name};
use units::validate::{load_dir, unit_file_name, UnitSet};

pub fn run(data: &[u8]) {
    let dir = crate::fresh_dir("units");
    let files = crate::split_files(data, "fuzz.unit");
    crate::write_files(&dir, &files);
    let text_of: BTreeMap<&str, &[u8]> = files.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let set = load_dir(&dir).expect("the scratch directory is readable");

    // Exactly the entries named NAME.unit with a valid NAME are units.
    let listed: Vec<String> = std::fs::read_dir(&dir)
        .expect("the scratch directory is readable")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let expected: BTreeSet<&str> = listed.iter().filter_map(|n| unit_file_name(n)).collect();
    let got: BTreeSet<&str> = set.keys().map(String::as_str).collect();
    assert_eq!(got, expected, "load_dir took other files than NAME.unit");

    for (name, r) in &set {
        assert!(valid_unit_name(name), "{name:?}");
        // Nothing for a directory named NAME.unit (made by a file NAME.unit/x).
        let text = text_of
            .get(format!("{name}.unit").as_str())
            .copied()
            .unwrap_or_default();
        match r {
            Ok(u) => unit_holds(u, name, &dir, &set),
            Err(diags) => diags_hold(diags, text),
        }
    }
    no_cycle(&set);
}

/// What a unit that parsed promises colony-init.
fn unit_holds(u: &Unit, name: &str, dir: &Path, set: &UnitSet) {
    assert_eq!(u.name, name);
    assert_eq!(u.path, dir.join(format!("{name}.unit")));
    // Everything that becomes a C string at spawn has no NUL.
    assert!(!u.exec.is_empty() && !u.exec[0].is_empty(), "{:?}", u.exec);
    assert!(u.exec.iter().all(|a| !a.contains('\0')), "{:?}", u.exec);
    for (k, v) in &u.environment {
        assert!(!k.is_empty() && !k.contains(['=', '\0']), "{k:?}");
        assert!(!v.contains('\0'), "{v:?}");
    }
    for p in [&u.directory, &u.log.file]
        .into_iter()
        .chain([&u.heartbeat.as_ref().and_then(|h| h.file.clone())])
        .flatten()
    {
        assert!(!p.as_os_str().is_empty());
        assert!(!p.to_string_lossy().contains('\0'), "{p:?}");
    }
    // Dependencies name units of the set (validate_set makes a unit naming others invalid).
    for dep in u.after.iter().chain(&u.requires) {
        assert!(valid_unit_name(dep), "{dep:?}");
        assert!(set.contains_key(dep), "{name} depends on missing {dep}");
    }
    if let Some(w) = u.resources.cpu_weight {
        assert!((1..=10_000).contains(&w), "cpu_weight {w}");
    }
    if let (Some(min), Some(max)) = (u.restart.delay_min, u.restart.delay_max) {
        assert!(min <= max, "delay_min {min:?} > delay_max {max:?}");
    }
    assert!(
        u.stop.signal > 0 && u.stop.signal < 65,
        "signal {}",
        u.stop.signal
    );
    if let ReadyType::Tcp(hp) = &u.ready.kind {
        assert!(parse_host_port(hp).is_ok(), "{hp:?}");
    }
    if let Some(h) = &u.health {
        match &h.check {
            HealthCheck::Http(url) => assert!(parse_http_url(url).is_ok(), "{url:?}"),
            HealthCheck::Tcp(hp) => assert!(parse_host_port(hp).is_ok(), "{hp:?}"),
            HealthCheck::Exec(argv) => assert!(!argv.is_empty() && !argv[0].is_empty()),
        }
    }
    assert!(serde_json_ok(&u.extras_json), "{:?}", u.extras_json);
    // What the loop computes from a timer must come back (croner's search ends).
    if let Some(cal) = u.timer.as_ref().and_then(|t| t.calendar.as_ref()) {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
        let _ = colony_init::core::next_calendar(cal, at, &chrono::Utc);
    }
}

fn serde_json_ok(s: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(s).is_ok_and(|v| v.is_object())
}

/// Every diagnostic is one line at a real position of the file.
fn diags_hold(diags: &[Diagnostic], text: &[u8]) {
    assert!(!diags.is_empty(), "an Err without a diagnostic");
    let lines = text.split(|&b| b == b'\n').count();
    for d in diags {
        let shown = d.to_string();
        assert!(!shown.contains('\n'), "{shown:?}");
        assert!(!d.key.is_empty(), "{shown:?}");
        assert!(d.line >= 1 && d.col >= 1, "{shown:?}");
        assert!(
            d.line <= lines + 1,
            "{shown:?} (the file has {lines} lines)"
        );
    }
}

/// No dependency cycle is left among the valid units (edges to valid units only, as the
/// loop orders starts by them).
fn no_cycle(set: &UnitSet) {
    let graph: BTreeMap<&str, Vec<&str>> = set
        .iter()
        .filter_map(|(n, r)| r.as_ref().ok().map(|u| (n.as_str(), u)))
        .map(|(n, u)| {
            let deps = u
                .after
                .iter()
                .chain(&u.requires)
                .map(String::as_str)
                .filter(|d| set.get(*d).is_some_and(|r| r.is_ok()))
                .collect();
            (n, deps)
        })
        .collect();
    // Kahn: a graph is acyclic iff every node can be removed at in-degree 0.
    let mut indeg: BTreeMap<&str, usize> = graph.keys().map(|&n| (n, 0)).collect();
    for deps in graph.values() {
        for d in deps {
            *indeg.get_mut(d).expect("edges go to valid units") += 1;
        }
    }
    let mut ready: Vec<&str> = indeg
        .iter()
        .filter(|(_, &c)| c == 0)
        .map(|(&n, _)| n)
        .collect();
    let mut removed = 0;
    while let Some(n) = ready.pop() {
        removed += 1;
        for d in &graph[n] {
            let c = indeg.get_mut(d).expect("edges go to valid units");
            *c -= 1;
            if *c == 0 {
                ready.push(d);
            }
        }
    }
    assert_eq!(removed, graph.len(), "a dependency cycle among valid units");
}

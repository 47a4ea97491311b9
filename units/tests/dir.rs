//! A directory as a whole: which files count, unknown dependencies (warnings), cycles.

use std::fs;
use std::path::Path;

use units::validate::{load_dir, unit_file_name, validate_set};

fn write(dir: &Path, name: &str, text: &str) {
    fs::write(dir.join(name), text).unwrap();
}

#[test]
fn unit_file_names() {
    assert_eq!(unit_file_name("web.unit"), Some("web"));
    assert_eq!(unit_file_name("a.b-c_d.unit"), Some("a.b-c_d"));
    for skip in [
        ".web.unit",
        ".web.unit.swp",
        "web.unit~",
        "#web.unit#",
        "web.unit.tmp",
        "web.unit.swp",
        ".unit",
        "web",
        "-web.unit",
        "we b.unit",
        "web.UNIT",
    ] {
        assert_eq!(unit_file_name(skip), None, "{skip}");
    }
}

#[test]
fn loads_only_unit_files_and_validates_the_set() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(p, "db.unit", "exec = [\"/bin/true\"]\n");
    write(
        p,
        "web.unit",
        "exec = [\"/bin/true\"]\nafter = [\"db\"]\nrequires = [\"db\"]\n",
    );
    write(p, "broken.unit", "exec = 1\n");
    for junk in [
        ".db.unit",
        "web.unit~",
        "#web.unit#",
        "web.unit.swp",
        "web.unit.tmp",
        "notes.txt",
    ] {
        write(p, junk, "this is not toml [[[");
    }
    fs::create_dir(p.join("sub.d")).unwrap();
    let set = load_dir(p).unwrap();
    assert_eq!(set.keys().collect::<Vec<_>>(), ["broken", "db", "web"]);
    assert!(set["db"].is_ok());
    assert_eq!(set["web"].as_ref().unwrap().after, ["db"]);
    let e = set["broken"].as_ref().unwrap_err();
    assert_eq!(e[0].to_string(), format!("{}:1:8: exec: expected an argv array such as [\"/usr/bin/program\", \"--flag\"] (for a shell command: [\"/bin/sh\", \"-c\", \"...\"]), found the integer 1", p.join("broken.unit").display()));
}

#[test]
fn unknown_dependency_is_a_warning_at_its_entry() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(
        p,
        "web.unit",
        "exec = [\"/bin/true\"]\n\nafter = [\"dbb\", \"cache\"]\nrequires = [\"ghost\"]\n",
    );
    write(p, "db.unit", "exec = [\"/bin/true\"]\n");
    write(p, "cache.unit", "exec = [\"/bin/true\"]\n");
    let set = load_dir(p).unwrap();
    // Valid, as in systemd: ordering against a missing unit is ignored.
    assert!(set.values().all(|r| r.is_ok()), "{set:?}");
    let w: Vec<String> = units::validate::warnings(&set)
        .iter()
        .map(|w| w.to_string())
        .collect();
    let f = p.join("web.unit").display().to_string();
    assert_eq!(
        w,
        [
            format!("{f}:3:10: after: warning: no unit `dbb` (no file dbb.unit in this directory), so ordering after it is ignored; did you mean `db`?"),
            format!("{f}:4:13: requires: warning: no unit `ghost` (no file ghost.unit in this directory), so this unit cannot start until there is one"),
        ]
    );
}

#[test]
fn depending_on_an_invalid_unit_is_not_unknown() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "a.unit",
        "exec = [\"/bin/true\"]\nrequires = [\"b\"]\n",
    );
    write(d.path(), "b.unit", "exec = 3\n");
    let set = load_dir(d.path()).unwrap();
    assert!(set["a"].is_ok());
    assert!(set["b"].is_err());
}

#[test]
fn every_unit_of_a_cycle_is_invalid_and_named() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(p, "a.unit", "exec = [\"/bin/true\"]\nafter = [\"b\"]\n");
    write(p, "b.unit", "exec = [\"/bin/true\"]\nrequires = [\"c\"]\n");
    write(
        p,
        "c.unit",
        "exec = [\"/bin/true\"]\nafter = [\"x\", \"a\"]\n",
    );
    write(p, "x.unit", "exec = [\"/bin/true\"]\n");
    write(p, "y.unit", "exec = [\"/bin/true\"]\nafter = [\"a\"]\n");
    let set = load_dir(p).unwrap();
    let msg = |n: &str| set[n].as_ref().unwrap_err()[0].to_string();
    let f = |n: &str| p.join(format!("{n}.unit")).display().to_string();
    assert_eq!(
        msg("a"),
        format!(
            "{}:2:10: after: dependency cycle: a -> b -> c -> a; remove one of these dependencies",
            f("a")
        )
    );
    assert_eq!(
        msg("b"),
        format!("{}:2:13: requires: dependency cycle: b -> c -> a -> b; remove one of these dependencies", f("b"))
    );
    assert_eq!(
        msg("c"),
        format!(
            "{}:2:15: after: dependency cycle: c -> a -> b -> c; remove one of these dependencies",
            f("c")
        )
    );
    // Outside the cycle: untouched.
    assert!(set["x"].is_ok() && set["y"].is_ok());
}

#[test]
fn a_larger_knot_names_all_its_units() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(p, "a.unit", "exec = [\"/bin/true\"]\nafter = [\"b\"]\n");
    write(
        p,
        "b.unit",
        "exec = [\"/bin/true\"]\nafter = [\"a\", \"c\"]\n",
    );
    write(p, "c.unit", "exec = [\"/bin/true\"]\nafter = [\"b\"]\n");
    let set = load_dir(p).unwrap();
    for n in ["a", "b", "c"] {
        let m = &set[n].as_ref().unwrap_err()[0].message;
        assert!(m.contains("units in the cycle: a, b, c"), "{n}: {m}");
    }
}

#[test]
fn validate_set_works_on_units_without_files() {
    // Units built in memory (no file to re-read): located at 1:1.
    let mut set = units::validate::UnitSet::new();
    let mut u = units::parse::parse_unit(
        Path::new("/nonexistent/q.unit"),
        "exec = [\"/bin/true\"]\nafter = [\"q2\"]\n",
    )
    .unwrap();
    set.insert("q".into(), Ok(u.clone()));
    u.name = "q2".into();
    u.after = vec!["q".into()];
    u.path = "/nonexistent/q2.unit".into();
    set.insert("q2".into(), Ok(u));
    validate_set(&mut set);
    let e = set["q"].as_ref().unwrap_err();
    assert_eq!(e[0].to_string(), "/nonexistent/q.unit:1:1: after: dependency cycle: q -> q2 -> q; remove one of these dependencies");
}

#[test]
fn a_long_chain_is_fine() {
    let d = tempfile::tempdir().unwrap();
    for i in 0..3000 {
        let after = if i > 0 {
            format!("after = [\"u{}\"]\n", i - 1)
        } else {
            String::new()
        };
        write(
            d.path(),
            &format!("u{i}.unit"),
            &format!("exec = [\"/bin/true\"]\n{after}"),
        );
    }
    let set = load_dir(d.path()).unwrap();
    assert_eq!(set.len(), 3000);
    assert!(set.values().all(|r| r.is_ok()));
}

#[test]
fn check_file_sees_its_siblings() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "web.unit",
        "exec = [\"/bin/true\"]\nafter = [\"db\"]\n",
    );
    let web = d.path().join("web.unit");
    let (r, w) = units::validate::check_file_warned(&web);
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(w.len(), 1);
    assert!(w[0].0.message.contains("no unit `db`"), "{w:?}");
    write(d.path(), "db.unit", "exec = [\"/bin/true\"]\n");
    assert_eq!(units::validate::check_file_warned(&web), (r, vec![]));
}

#[test]
fn unreadable_directory_is_an_io_error() {
    assert!(load_dir(Path::new("/nonexistent/colony/units")).is_err());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, failure_persistence: None, ..Default::default() })]

    /// `check_file` reads only what a unit refers to, and says of it what `load_dir` says.
    #[test]
    fn check_file_agrees_with_the_whole_directory(
        kinds in proptest::collection::vec(0u8..4, 8),
        edges in proptest::collection::vec((0usize..8, 0usize..10, proptest::bool::ANY), 0..20),
    ) {
        // kind 0: absent, 1: broken TOML, 2 and 3: valid with its edges (u8, u9 never exist;
        // `uX` with a typo-like name tests the hints).
        let d = tempfile::tempdir().unwrap();
        for (i, &k) in kinds.iter().enumerate() {
            let text = match k {
                0 => continue,
                1 => "exec = [\"/bin/true\"\n".to_string(),
                _ => {
                    let (mut after, mut requires) = (Vec::new(), Vec::new());
                    for &(a, b, req) in &edges {
                        if a == i && a != b {
                            let dep = format!("u{b}");
                            if req { requires.push(dep) } else { after.push(dep) }
                        }
                    }
                    format!("exec = [\"/bin/true\"]\nafter = {after:?}\nrequires = {requires:?}\n")
                }
            };
            write(d.path(), &format!("u{i}.unit"), &text);
        }
        let set = load_dir(d.path()).unwrap();
        let warnings = units::validate::warnings(&set);
        for (name, want) in &set {
            let path = d.path().join(format!("{name}.unit"));
            let (got, warned) = units::validate::check_file_warned(&path);
            proptest::prop_assert_eq!(&got, want, "{}", name);
            let want_warned: Vec<_> = warnings.iter().filter(|w| w.0.file == path).cloned().collect();
            proptest::prop_assert_eq!(warned, want_warned, "{}", name);
        }
    }
}

/// `colony-init` names colony-init itself (`colonyctl logs colony-init` is its own log): a
/// unit of that name is invalid, with a reason, rather than sharing that file.
#[test]
fn a_unit_named_colony_init_is_refused() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "colony-init.unit", "exec = [\"/bin/true\"]\n");
    let set = load_dir(d.path()).unwrap();
    let errs = set["colony-init"].as_ref().unwrap_err();
    assert!(
        errs.iter().any(|e| e.to_string().contains("reserved")),
        "{errs:?}"
    );
}

//! `colonyctl check`, run as the real binary on the examples and on broken files.

use std::path::{Path, PathBuf};
use std::process::Command;

fn check(args: &[&Path]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_colonyctl"))
        .arg("check")
        .args(args)
        .output()
        .expect("run colonyctl");
    (
        out.status.code().expect("exited"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/units")
}

#[test]
fn the_examples_are_valid_as_a_directory_and_one_by_one() {
    let (code, out, err) = check(&[&examples()]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let mut n = 0;
    for e in std::fs::read_dir(examples()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "unit") {
            let (code, out, err) = check(&[&p]);
            assert_eq!((code, out.as_str()), (0, ""), "{}: {err}", p.display());
            n += 1;
        }
    }
    assert!(n >= 3, "the examples are missing");
}

#[test]
fn broken_files_give_located_errors_and_exit_1() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::write(
        p.join("web.unit"),
        "exec = [\"python3\", \"-m\", \"http.server\"]\n\n[restart]\nrestrat = 1\npolicy = \"sometimes\"\n",
    )
    .unwrap();
    std::fs::write(
        p.join("job.unit"),
        "description = \"no exec\"\n[timer]\nevery = 30\n",
    )
    .unwrap();
    std::fs::write(
        p.join("a.unit"),
        "exec = [\"/bin/true\"]\nafter = [\"b\"]\n",
    )
    .unwrap();
    std::fs::write(
        p.join("b.unit"),
        "exec = [\"/bin/true\"]\nrequires = [\"a\", \"ghost\"]\n",
    )
    .unwrap();
    std::fs::write(p.join("fine.unit"), "exec = [\"/bin/true\"]\n").unwrap();
    std::fs::write(p.join(".fine.unit.swp"), "garbage [[[").unwrap();
    std::fs::write(p.join("my web.unit"), "exec = [\"/bin/true\"]\n").unwrap();
    let f = |n: &str| p.join(n).display().to_string();
    let (code, out, err) = check(&[p]);
    let want = [
        format!(
            "{}:2:10: after: dependency cycle: a -> b -> a; remove one of these dependencies",
            f("a.unit")
        ),
        format!(
            "{}:2:13: requires: dependency cycle: b -> a -> b; remove one of these dependencies",
            f("b.unit")
        ),
        format!(
            "{}:2:18: requires: no unit `ghost` (no file ghost.unit in this directory)",
            f("b.unit")
        ),
        format!(
            "{}:1:1: exec: missing `exec`: every unit needs exec = [\"/path/to/program\", \"arg\", ...]",
            f("job.unit")
        ),
        format!(
            "{}:3:9: timer.every: expected a duration string such as \"30s\", found the integer 30; a bare number has no unit: write \"30s\" for 30 seconds",
            f("job.unit")
        ),
        format!(
            "{}:1:1: name: `my web` is not a valid unit name, so colony-init ignores this file: a unit name is 1-64 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit",
            f("my web.unit")
        ),
        format!(
            "{}:4:1: restart.restrat: unknown key `restrat`; [restart] knows: policy, success_codes, delay_min, delay_max, threshold",
            f("web.unit")
        ),
        format!(
            "{}:5:10: restart.policy: unknown policy `sometimes`; expected one of always, on-failure, never",
            f("web.unit")
        ),
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), want, "stderr: {err}");
    assert_eq!(code, 1);
    assert!(err.contains("6 units checked, 5 invalid"), "{err}");

    // One file alone: its siblings are its possible dependencies; their own errors are not shown.
    let (code, out, _) = check(&[&p.join("fine.unit")]);
    assert_eq!((code, out.as_str()), (0, ""));
    let (code, out, _) = check(&[&p.join("web.unit")]);
    assert_eq!(code, 1);
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[test]
fn top_level_typo_suggests_the_section() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("x.unit");
    std::fs::write(
        &f,
        "exec = [\"/bin/true\"]\nrestrat = { policy = \"never\" }\n",
    )
    .unwrap();
    let (code, out, _) = check(&[&f]);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        format!(
            "{}:2:1: restrat: unknown key `restrat`; did you mean `restart`?\n",
            f.display()
        )
    );
}

#[test]
fn usage_errors_exit_2() {
    let (code, out, err) = check(&[]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    let (code, out, err) = check(&[&examples(), Path::new("/nonexistent/x.unit")]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.contains("/nonexistent/x.unit: no such file or directory"),
        "{err}"
    );
}

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
            "{}:4:1: restart.restrat: unknown key `restrat`; [restart] knows: policy, success_codes, delay_min, delay_max, threshold, max_failures",
            f("web.unit")
        ),
        format!(
            "{}:5:10: restart.policy: unknown policy `sometimes`; expected one of always, on-failure, never",
            f("web.unit")
        ),
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), want, "stderr: {err}");
    assert_eq!(code, 1);
    // b names a missing unit too: a warning, shown once b is valid.
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

/// The file names of the directory opened while `f` runs (inotify `IN_OPEN`).
fn opened_in(dir: &Path, f: impl FnOnce()) -> std::collections::BTreeSet<String> {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).expect("inotify");
    ino.add_watch(dir, AddWatchFlags::IN_OPEN)
        .expect("watch the directory");
    f();
    let mut opened = std::collections::BTreeSet::new();
    loop {
        match ino.read_events() {
            Ok(events) => {
                for e in events {
                    if e.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                        opened.insert("(more than the queue holds)".to_string());
                    }
                    if let Some(name) = e.name {
                        opened.insert(name.to_string_lossy().into_owned());
                    }
                }
            }
            Err(nix::errno::Errno::EAGAIN) => break,
            Err(e) => panic!("inotify read: {e}"),
        }
    }
    opened
}

#[test]
fn check_file_reads_only_the_units_it_refers_to() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let w = |n: &str, text: &str| std::fs::write(p.join(n), text).unwrap();
    w(
        "web.unit",
        "exec = [\"/bin/true\"]\nafter = [\"db\"]\nrequires = [\"cache\"]\n",
    );
    w("db.unit", "exec = [\"/bin/true\"]\nafter = [\"base\"]\n");
    w("cache.unit", "exec = [\"/bin/true\"]\n");
    w("base.unit", "exec = [\"/bin/true\"]\n");
    // Refers to web, but web does not refer to it.
    w("lonely.unit", "exec = [\"/bin/true\"]\nafter = [\"web\"]\n");
    for i in 0..3000 {
        w(
            &format!("other{i}.unit"),
            &format!(
                "exec = [\"/bin/sleep\", \"{i}\"]\nafter = [\"other{}\"]\n",
                i / 2
            ),
        );
    }
    w("broken.unit", "exec = [\"/bin/true\"\n[[[ not TOML\n");
    let mut result = None;
    let opened = opened_in(p, || result = Some(check(&[&p.join("web.unit")])));
    let (code, out, err) = result.unwrap();
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(err.contains("1 unit checked, all valid"), "{err}");
    assert!(!err.contains("broken"), "{err}");
    let opened: Vec<String> = opened.into_iter().collect();
    assert!(
        opened == ["base.unit", "cache.unit", "db.unit", "web.unit"],
        "`check web.unit` read {} files of the directory: {:?}...",
        opened.len(),
        &opened[..opened.len().min(12)]
    );
    // The directory as a whole still shows the broken one.
    let (code, out, _) = check(&[p]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!("{}:", p.join("broken.unit").display())),
        "{out}"
    );
}

#[test]
fn check_file_says_what_check_dir_says_of_it() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let w = |n: &str, text: &str| std::fs::write(p.join(n), text).unwrap();
    w("broken.unit", "exec = [\"/bin/true\"\n");
    w("database.unit", "exec = [\"/bin/true\"]\n");
    // After an invalid unit: it exists, so a is valid (a's own problem is still shown).
    w(
        "a.unit",
        "exec = [\"/bin/true\"]\nafter = [\"broken\"]\n[timer]\nevery = \"1ns\"\n",
    );
    w(
        "a2.unit",
        "exec = [\"/bin/true\"]\nrequires = [\"broken\"]\n",
    );
    // A missing unit, a typo, a cycle through two other files, a unit needing one in a cycle.
    w(
        "b.unit",
        "exec = [\"/bin/true\"]\nafter = [\"broken\", \"ghost\"]\n",
    );
    w("f.unit", "exec = [\"/bin/true\"]\nafter = [\"databse\"]\n");
    w("c.unit", "exec = [\"/bin/true\"]\nafter = [\"d\"]\n");
    w("d.unit", "exec = [\"/bin/true\"]\nrequires = [\"e\"]\n");
    w(
        "e.unit",
        "exec = [\"/bin/true\"]\nafter = [\"broken\", \"c\"]\n",
    );
    w("g.unit", "exec = [\"/bin/true\"]\nrequires = [\"c\"]\n");
    for i in 0..50 {
        w(&format!("other{i}.unit"), "exec = [\"/bin/true\"]\n");
    }
    let (_, dir_out, _) = check(&[p]);
    let mut invalid = 0;
    for name in ["a", "a2", "b", "f", "c", "d", "e", "g"] {
        let file = p.join(format!("{name}.unit"));
        let prefix = format!("{}:", file.display());
        let want: Vec<&str> = dir_out.lines().filter(|l| l.starts_with(&prefix)).collect();
        let (code, out, err) = check(&[&file]);
        assert_eq!(out.lines().collect::<Vec<_>>(), want, "{name}: {err}");
        let errors = want.iter().any(|l| !l.contains(": warning: "));
        assert_eq!(code, if errors { 1 } else { 0 }, "{name}");
        invalid += usize::from(errors);
    }
    // What each one should say, so the comparison above is not of two empty outputs.
    assert_eq!(invalid, 4, "{dir_out}");
    for fragment in [
        "a.unit:4:9: timer.every: must be at least 1s",
        "b.unit:2:20: after: warning: no unit `ghost`",
        "f.unit:2:10: after: warning: no unit `databse` (no file databse.unit in this directory), so ordering after it is ignored; did you mean `database`?",
        "c.unit:2:10: after: dependency cycle: c -> d -> e -> c",
        "d.unit:2:13: requires: dependency cycle: d -> e -> c -> d",
        "e.unit:2:20: after: dependency cycle: e -> c -> d -> e",
    ] {
        assert!(dir_out.contains(fragment), "{fragment}\n{dir_out}");
    }
}

/// The README's own `web.unit` (`after = ["db"]`, and no db.unit beside it), saved alone:
/// valid, with a warning at the entry, as systemd treats ordering against a missing unit.
#[test]
fn the_readme_web_unit_alone_is_valid_with_a_warning() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let after = readme
        .split_once("/web.unit`")
        .expect("the README shows a web.unit")
        .1;
    let text = after
        .split_once("```toml\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("a toml block after it")
        .0;
    assert!(text.contains("after = [\"db\"]"), "{text}");
    let d = tempfile::tempdir().unwrap();
    let web = d.path().join("web.unit");
    std::fs::write(&web, text).unwrap();
    for target in [&web, d.path()] {
        let (code, out, err) = check(&[target]);
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(
            out,
            format!(
                "{}:6:10: after: warning: no unit `db` (no file db.unit in this directory), so ordering after it is ignored\n",
                web.display()
            ),
            "{err}"
        );
        assert!(
            err.contains("1 unit checked, all valid, 1 warning"),
            "{err}"
        );
    }
    // JSON: the warning in its own list, no errors.
    let out = Command::new(env!("CARGO_BIN_EXE_colonyctl"))
        .args(["check", "--json"])
        .arg(&web)
        .output()
        .expect("run colonyctl");
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["invalid"], 0);
    assert_eq!(v["errors"], serde_json::json!([]));
    assert_eq!(v["warnings"][0]["key"], "after");
    assert_eq!(v["warnings"][0]["line"], 6);
}

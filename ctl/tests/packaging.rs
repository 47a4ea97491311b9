//! The man pages and the Debian package (packaging/): the pages render without warnings and
//! cover every unit key and every colonyctl command; the .deb holds what it should, installs
//! (into a root of its own), works, and purges cleanly.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn man_dir() -> PathBuf {
    root().join("packaging/man")
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The page as plain text (roff escapes of `-` and quotes undone).
fn page_text(name: &str) -> String {
    std::fs::read_to_string(man_dir().join(name))
        .unwrap()
        .replace("\\-", "-")
        .replace("\\(dq", "\"")
}

#[test]
fn man_pages_render_without_warnings() {
    if !have("groff") || !have("man") {
        eprintln!("groff or man is not installed: apt-get install groff-base man-db");
        return;
    }
    for page in ["colonyctl.1", "colony.unit.5", "colony-init.8"] {
        let p = man_dir().join(page);
        let g = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(g.status.success(), "{page}");
        assert_eq!(
            String::from_utf8_lossy(&g.stderr),
            "",
            "{page}: groff warnings"
        );
        let m = Command::new("man")
            .arg("-l")
            .arg(&p)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        assert!(m.status.success(), "man -l {page}");
        let text = String::from_utf8_lossy(&m.stdout);
        assert!(text.contains("NAME"), "{page}: {text}");
    }
}

#[test]
fn unit_page_covers_every_key_of_the_parser() {
    let text = page_text("colony.unit.5");
    // Split into sections at `.SH`; keys are `.B key` lines right after `.TP`.
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    let mut prev_tp = false;
    for l in text.lines() {
        if let Some(h) = l.strip_prefix(".SH ") {
            sections.push((h.trim().to_string(), Vec::new()));
        } else if prev_tp {
            if let (Some(k), Some(s)) = (l.strip_prefix(".B "), sections.last_mut()) {
                s.1.push(k.trim().to_string());
            }
        }
        prev_tp = l == ".TP";
    }
    let keys_of = |h: &str| -> Vec<String> {
        sections
            .iter()
            .find(|(s, _)| s == h)
            .map(|(_, k)| k.clone())
            .unwrap_or_else(|| panic!("no section {h} in colony.unit.5"))
    };
    let top = keys_of("TOP-LEVEL KEYS");
    for k in units::parse::TOP_KEYS {
        if units::parse::SECTIONS.iter().any(|(s, _)| s == k) {
            keys_of(&format!("[{k}]"));
            continue;
        }
        assert!(
            top.contains(&k.to_string()),
            "top-level key {k} is not in colony.unit.5"
        );
    }
    for (s, keys) in units::parse::SECTIONS {
        let documented = keys_of(&format!("[{s}]"));
        for k in *keys {
            assert!(
                documented.contains(&k.to_string()),
                "[{s}] {k} is not in colony.unit.5"
            );
        }
        // And nothing documented that the parser does not know.
        for d in &documented {
            assert!(
                keys.contains(&d.as_str()),
                "[{s}] {d} is documented but unknown"
            );
        }
    }
}

#[test]
fn colonyctl_page_covers_every_command() {
    let help = Command::new(env!("CARGO_BIN_EXE_colonyctl"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 10, "{help}");
    let page = page_text("colonyctl.1");
    for c in commands {
        assert!(page.contains(c), "colonyctl {c} is not in colonyctl.1");
    }
    // import is documented even before it is wired into the CLI.
    assert!(page.contains("import") && page.contains("--strict"));
}

/// colony-init's binary next to colonyctl's: `cargo test --workspace` builds it (init has
/// integration tests); `cargo test -p colonyctl` alone does not. (Building it from here would
/// wait on the build directory lock that the running cargo holds.)
fn colony_init_bin() -> Option<PathBuf> {
    let init = PathBuf::from(env!("CARGO_BIN_EXE_colonyctl")).with_file_name("colony-init");
    init.exists().then_some(init)
}

#[test]
fn debian_package_builds_installs_and_purges() {
    if !have("dpkg-deb") {
        eprintln!("dpkg-deb is not installed: not a Debian system, nothing to check");
        return;
    }
    let Some(init) = colony_init_bin() else {
        eprintln!("no colony-init binary next to colonyctl: run `cargo build -p colony-init` (or cargo test --workspace)");
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let b = Command::new(root().join("packaging/deb/build"))
        .arg("--colonyctl")
        .arg(env!("CARGO_BIN_EXE_colonyctl"))
        .arg("--colony-init")
        .arg(init)
        .arg("--out")
        .arg(out.path())
        .args(["--version", env!("CARGO_PKG_VERSION")])
        .output()
        .unwrap();
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let deb = PathBuf::from(String::from_utf8(b.stdout).unwrap().trim());
    assert!(deb.exists());

    let field = |f: &str| {
        let o = Command::new("dpkg-deb")
            .arg("-f")
            .arg(&deb)
            .arg(f)
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    assert_eq!(field("Package"), "colony");
    assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"));

    let list = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    for path in [
        "./sbin/colony-init",
        "./usr/bin/colonyctl",
        "./usr/share/man/man1/colonyctl.1.gz",
        "./usr/share/man/man5/colony.unit.5.gz",
        "./usr/share/man/man8/colony-init.8.gz",
        "./usr/share/bash-completion/completions/colonyctl",
        "./usr/share/zsh/vendor-completions/_colonyctl",
        "./usr/share/fish/vendor_completions.d/colonyctl.fish",
        "./etc/colony/units/README",
        "./usr/share/doc/colony/copyright",
        "./usr/share/doc/colony/examples/web.unit",
    ] {
        assert!(list.contains(path), "{path} not in the package:\n{list}");
    }
    assert!(list.contains("-rwxr-xr-x root/root"), "{list}");

    // Installed with dpkg into a root of its own (the host's package database is not
    // touched): the packaged colonyctl checks the packaged examples, `man colony.unit`
    // finds its page, and a purge removes every file.
    let r = tempfile::tempdir().unwrap();
    let admin = r.path().join("var/lib/dpkg");
    for d in ["info", "updates", "triggers"] {
        std::fs::create_dir_all(admin.join(d)).unwrap();
    }
    std::fs::write(admin.join("status"), "").unwrap();
    let dpkg = |args: &[&str]| {
        let o = Command::new("dpkg")
            .arg(format!("--root={}", r.path().display()))
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "dpkg {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    };
    // libc6 is in the host, not in this empty root.
    dpkg(&["--force-depends", "-i", deb.to_str().unwrap()]);
    let x = r.path();
    let check = Command::new(x.join("usr/bin/colonyctl"))
        .arg("check")
        .arg(x.join("usr/share/doc/colony/examples"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(x.join("sbin/colony-init").exists());
    let bash =
        std::fs::read_to_string(x.join("usr/share/bash-completion/completions/colonyctl")).unwrap();
    assert!(bash.contains("colonyctl"));
    if have("man") {
        let m = Command::new("man")
            .arg("-M")
            .arg(x.join("usr/share/man"))
            .arg("colony.unit")
            .env("MANPAGER", "cat")
            .output()
            .unwrap();
        assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
        assert!(String::from_utf8_lossy(&m.stdout).contains("memory_max"));
    }
    dpkg(&["-P", "colony"]);
    let mut left = Vec::new();
    let mut stack = vec![x.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.starts_with(&admin) {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                left.push(p);
            }
        }
    }
    assert!(left.is_empty(), "left after purge: {left:?}");
}

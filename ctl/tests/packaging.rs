//! The man pages and the Debian package (packaging/): the pages render without warnings and
//! cover every unit key and every colonyctl command; the .deb holds what it should, installs
//! (into a root of its own), works, and purges cleanly.

use std::path::{Path, PathBuf};
use std::process::Command;

use colony_integration::skip_or_fail;

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
        skip_or_fail!("groff or man is not installed: apt-get install groff-base man-db");
        return;
    }
    for page in [
        "colonyctl.1",
        "colony.unit.5",
        "colony-init.8",
        "colony-web.8",
    ] {
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

/// A binary of the package next to colonyctl's: `cargo build --workspace --bins` (as
/// test-all runs before the tests) builds them; `cargo test -p colonyctl` alone does not.
/// (Building them from here would wait on the build directory lock that the running cargo
/// holds.)
fn sibling_bin(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_colonyctl")).with_file_name(name);
    p.exists().then_some(p)
}

/// colony-init, colony-web and colony-fleet next to colonyctl, or what is missing.
fn package_bins() -> Result<[PathBuf; 3], String> {
    let [init, web, fleet] = ["colony-init", "colony-web", "colony-fleet"].map(sibling_bin);
    match (init, web, fleet) {
        (Some(i), Some(w), Some(f)) => Ok([i, w, f]),
        _ => Err(
            "colony-init, colony-web or colony-fleet is not built next to colonyctl: \
             cargo build -p colony-init -p colony-web -p colony-fleet (or cargo build --workspace --bins)"
                .into(),
        ),
    }
}

/// The packaged daemons answer `--version` (they run, with the libraries they link).
fn runs(bin: &Path) {
    let o = Command::new(bin).arg("--version").output().unwrap();
    assert!(
        o.status.success(),
        "{} --version: {}",
        bin.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn debian_package_builds_installs_and_purges() {
    if !have("dpkg-deb") {
        skip_or_fail!("dpkg-deb is not installed: not a Debian system, nothing to check");
        return;
    }
    let [init, web, fleet] = match package_bins() {
        Ok(b) => b,
        Err(e) => {
            skip_or_fail!("SKIP: {e}");
            return;
        }
    };
    let out = tempfile::tempdir().unwrap();
    let b = Command::new(root().join("packaging/deb/build"))
        .arg("--colonyctl")
        .arg(env!("CARGO_BIN_EXE_colonyctl"))
        .arg("--colony-init")
        .arg(init)
        .arg("--colony-web")
        .arg(web)
        .arg("--colony-fleet")
        .arg(fleet)
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
    // The upgrade re-executes a running colony-init into the new binary.
    let postinst = Command::new("dpkg-deb")
        .arg("-I")
        .arg(&deb)
        .arg("postinst")
        .output()
        .unwrap();
    let postinst = String::from_utf8_lossy(&postinst.stdout);
    assert!(
        postinst.contains("colonyctl --timeout 60s reexec"),
        "{postinst}"
    );

    let list = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    for path in [
        "./sbin/colony-init",
        "./usr/bin/colonyctl",
        "./usr/bin/colony-web",
        "./usr/bin/colony-fleet",
        "./usr/share/man/man1/colonyctl.1.gz",
        "./usr/share/man/man5/colony.unit.5.gz",
        "./usr/share/man/man8/colony-init.8.gz",
        "./usr/share/man/man8/colony-web.8.gz",
        "./usr/share/bash-completion/completions/colonyctl",
        "./usr/share/zsh/vendor-completions/_colonyctl",
        "./usr/share/fish/vendor_completions.d/colonyctl.fish",
        "./etc/colony/units/README",
        "./usr/share/doc/colony/copyright",
        "./usr/share/doc/colony/examples/web.unit",
        "./usr/share/doc/colony/examples/colony-web.unit",
        "./usr/share/doc/colony/examples/colony-fleet.unit",
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
        // The root has no shell: the postinst runs outside it, and sees DPKG_ROOT set.
        let o = Command::new("dpkg")
            .arg(format!("--root={}", r.path().display()))
            .arg("--force-script-chrootless")
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
    runs(&x.join("usr/bin/colony-web"));
    runs(&x.join("usr/bin/colony-fleet"));
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

/// The completion scripts the packages ship (packaging/completions/) are the ones colonyctl
/// prints now (regenerate: packaging/deb/cargo-deb does, or `colonyctl completions SHELL`).
#[test]
fn shipped_completions_are_current() {
    for (shell, file) in [
        ("bash", "colonyctl.bash"),
        ("zsh", "_colonyctl"),
        ("fish", "colonyctl.fish"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_colonyctl"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(o.status.success());
        let shipped = std::fs::read(root().join("packaging/completions").join(file)).unwrap();
        assert!(
            shipped == o.stdout,
            "packaging/completions/{file} is stale: colonyctl completions {shell} > packaging/completions/{file}"
        );
        assert!(String::from_utf8_lossy(&shipped).contains("__complete-targets"));
    }
}

/// Held while a test changes this machine's package database: the other worktrees on this
/// machine run the same test.
fn host_package_lock() -> std::fs::File {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("colony-deb-install-test.lock"))
        .unwrap();
    // SAFETY: flock on a descriptor we own; blocks until the other test is done.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(r, 0, "flock");
    f
}

/// dpkg with its lock waited for (apt may be busy on a shared machine), bounded.
fn dpkg_host(args: &[&str]) -> std::process::Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let o = Command::new("dpkg").args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        let locked = !o.status.success() && err.contains("lock");
        if !locked || std::time::Instant::now() > deadline {
            return o;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// `dpkg-query`'s view of package `colony`: None when dpkg knows nothing of it.
fn colony_status() -> Option<String> {
    let o = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Abbrev}", "colony"])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&o.stdout).trim().to_string();
    // "un" (unknown/not-installed) or nothing: absent.
    (o.status.success() && !s.is_empty() && !s.starts_with("un")).then_some(s)
}

/// Purges the package if the test ends early, so a failure leaves nothing installed.
struct Installed(bool);

impl Drop for Installed {
    fn drop(&mut self) {
        if self.0 {
            let _ = dpkg_host(&["--purge", "colony"]);
        }
    }
}

/// The package as cargo-deb builds it, installed on this machine with `dpkg -i` (as the
/// issue's CI does; as root), used, and purged: nothing is left. Its only maintainer script,
/// the postinst, re-executes a colony-init that runs on /run/colony and touches nothing else,
/// so installing starts nothing. Never touches a colony package it did not install, nor
/// overwrites a file that is already there.
#[test]
fn cargo_deb_package_installs_with_dpkg_and_purges_cleanly() {
    if !have("dpkg") || !have("dpkg-deb") || !have("dpkg-query") {
        skip_or_fail!("SKIP: not a Debian system (no dpkg)");
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        skip_or_fail!("SKIP: installing a package with dpkg -i needs root");
        return;
    }
    if let Err(e) = package_bins() {
        skip_or_fail!("SKIP: {e}");
        return;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let works = || {
        Command::new(&cargo)
            .args(["deb", "--version"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !works() {
        // Cached in ~/.cargo/bin: only the first run pays for it.
        let i = Command::new(&cargo)
            .args(["install", "cargo-deb", "--locked"])
            .status()
            .unwrap();
        assert!(
            i.success() && works(),
            "cargo install cargo-deb --locked failed"
        );
    }

    let out = tempfile::tempdir().unwrap();
    // The binaries cargo test built (dev profile): no release build in the test run.
    let b = Command::new(root().join("packaging/deb/cargo-deb"))
        .args(["--profile", "dev", "--no-build", "--out"])
        .arg(out.path())
        .env("CARGO", &cargo)
        .output()
        .unwrap();
    assert!(
        b.status.success(),
        "packaging/deb/cargo-deb: {}",
        String::from_utf8_lossy(&b.stderr)
    );
    let deb = PathBuf::from(String::from_utf8(b.stdout).unwrap().trim());
    assert!(deb.exists(), "{}", deb.display());
    let debs = deb.to_str().unwrap();

    // Control members: no maintainer scripts, /etc/colony/units/README a conffile.
    let ctrl = out.path().join("control");
    let e = Command::new("dpkg-deb")
        .args(["-e", debs])
        .arg(&ctrl)
        .status()
        .unwrap();
    assert!(e.success());
    let members: Vec<String> = std::fs::read_dir(&ctrl)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for script in ["preinst", "prerm", "postrm", "config", "triggers"] {
        assert!(
            !members.iter().any(|m| m == script),
            "{script}: {members:?}"
        );
    }
    // The one maintainer script: an upgrade re-executes a running colony-init into the new
    // binary, and does nothing where none runs (as here: the install below must not fail).
    let postinst = std::fs::read_to_string(ctrl.join("postinst")).unwrap();
    assert!(
        postinst.contains("colonyctl --timeout 60s reexec"),
        "{postinst}"
    );
    assert!(
        postinst.contains("[ -p /run/colony/control ]"),
        "{postinst}"
    );
    assert!(members.iter().any(|m| m == "conffiles"), "{members:?}");
    assert_eq!(
        std::fs::read_to_string(ctrl.join("conffiles"))
            .unwrap()
            .trim(),
        "/etc/colony/units/README"
    );
    let control = std::fs::read_to_string(ctrl.join("control")).unwrap();
    assert!(control.contains("Package: colony\n"), "{control}");

    // What it installs: files, and directories (that may or may not exist already).
    let list = Command::new("dpkg-deb")
        .args(["-c", debs])
        .output()
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    let entries: Vec<(bool, PathBuf)> = list
        .lines()
        .filter_map(|l| {
            let path = l.split_whitespace().last()?;
            let p = PathBuf::from(path.trim_start_matches('.'));
            (p != Path::new("/")).then_some((l.starts_with('d'), p))
        })
        .collect();
    let files: Vec<&PathBuf> = entries.iter().filter(|(d, _)| !d).map(|(_, p)| p).collect();
    for want in [
        "/sbin/colony-init",
        "/usr/bin/colonyctl",
        "/usr/bin/colony-web",
        "/usr/bin/colony-fleet",
        "/usr/share/man/man1/colonyctl.1.gz",
        "/usr/share/man/man5/colony.unit.5.gz",
        "/usr/share/man/man8/colony-init.8.gz",
        "/usr/share/man/man8/colony-web.8.gz",
        "/usr/share/bash-completion/completions/colonyctl",
        "/usr/share/zsh/vendor-completions/_colonyctl",
        "/usr/share/fish/vendor_completions.d/colonyctl.fish",
        "/etc/colony/units/README",
        "/usr/share/doc/colony/copyright",
        "/usr/share/doc/colony/examples/web.unit",
        "/usr/share/doc/colony/examples/colony-web.unit",
        "/usr/share/doc/colony/examples/colony-fleet.unit",
    ] {
        assert!(
            files.iter().any(|f| f == &Path::new(want)),
            "{want}:\n{list}"
        );
    }

    let _lock = host_package_lock();
    if let Some(s) = colony_status() {
        skip_or_fail!("SKIP: a colony package is known to dpkg already ({s}); not touching it");
        return;
    }
    if let Some(f) = files.iter().find(|f| f.exists()) {
        eprintln!(
            "SKIP: {} exists already; installing would overwrite it",
            f.display()
        );
        return;
    }
    let new_dirs: Vec<&PathBuf> = entries
        .iter()
        .filter(|(d, p)| *d && !p.exists())
        .map(|(_, p)| p)
        .collect();

    let mut installed = Installed(true);
    let o = dpkg_host(&["-i", debs]);
    assert!(
        o.status.success(),
        "dpkg -i: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(colony_status().is_some_and(|s| s.starts_with("ii")));
    for f in &files {
        assert!(f.exists(), "{} not installed", f.display());
    }
    let check = Command::new("/usr/bin/colonyctl")
        .args(["check", "/usr/share/doc/colony/examples"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "colonyctl check: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    runs(Path::new("/usr/bin/colony-web"));
    runs(Path::new("/usr/bin/colony-fleet"));
    if have("man") {
        let m = Command::new("man")
            .arg("colony.unit")
            .env_remove("MANPATH")
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        assert!(
            m.status.success(),
            "man colony.unit: {}",
            String::from_utf8_lossy(&m.stderr)
        );
        let page = String::from_utf8_lossy(&m.stdout);
        assert!(
            page.contains("memory_max") && page.contains("restart"),
            "{page}"
        );
    }
    let comp = Command::new("bash")
        .args([
            "--norc",
            "-c",
            "source /usr/share/bash-completion/completions/colonyctl && complete -p colonyctl",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&comp.stdout).contains("_colonyctl_targets"),
        "{}",
        String::from_utf8_lossy(&comp.stderr)
    );

    installed.0 = false;
    let o = dpkg_host(&["--purge", "colony"]);
    assert!(
        o.status.success(),
        "dpkg --purge: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(colony_status(), None, "dpkg still knows colony");
    for f in &files {
        assert!(!f.exists(), "{} left after purge", f.display());
    }
    for d in &new_dirs {
        assert!(!d.exists(), "{} left after purge", d.display());
    }
}

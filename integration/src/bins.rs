//! Finding the real binaries under test.
//!
//! Integration tests of one crate cannot name another crate's binaries with
//! `CARGO_BIN_EXE_*`, so [`bin`] looks in the target directory (`$CARGO_TARGET_DIR`, else
//! `<workspace>/target`), profile `debug`, and runs `cargo build -p <crate>` once per test
//! process first, so a test never runs a stale binary. Set `COLONY_BIN_DIR` to test
//! binaries built elsewhere (no build is attempted then).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn crate_of(name: &str) -> &'static str {
    match name {
        "colony-init" => "colony-init",
        "colonyctl" => "colonyctl",
        "colony-fleet" => "colony-fleet",
        "colony-web" => "colony-web",
        _ => panic!("unknown binary {name}"),
    }
}

/// The workspace root (the integration crate lives one level below it).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration/ has a parent")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_root().join(d)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// The path of binary `name` (`colony-init`, `colonyctl`), built if needed.
pub fn bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("COLONY_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let path = target_dir().join("debug").join(name);
    let krate = crate_of(name);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if !built.iter().any(|k| k == krate) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace_root())
            .args(["build", "--quiet", "-p", krate, "--bin", name])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build -p {krate} failed");
        built.push(krate.to_string());
    }
    assert!(path.exists(), "{} missing after build", path.display());
    path
}

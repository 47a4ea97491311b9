//! colony-web started for a colony-init, for its tests and its benchmark.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::{free_port, wait_for, Colony, SOON};

/// A running colony-web, ended (by its pid) on drop.
pub struct Web {
    pub child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn passwd(exe: &Path, cfg: &Path, name: &str, role: &str, pw: &str) {
    let mut c = Command::new(exe)
        .arg("--config")
        .arg(cfg)
        .args(["passwd", name, "--role", role])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("colony-web");
    c.stdin
        .take()
        .expect("colony-web")
        .write_all(format!("{pw}\n").as_bytes())
        .expect("colony-web");
    assert!(c.wait().expect("colony-web").success());
}

/// colony-web (the binary `exe`) for `c`, with `extra` in its web.toml and users `op`
/// (operator, password `op-pw`) and `view` (viewer).
pub fn start(exe: &Path, c: &Colony, extra: &str) -> Web {
    let dir = tempfile::tempdir().expect("colony-web");
    let port = free_port();
    let cfg = dir.path().join("web.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:{port}\"\nrun_dir = \"{}\"\nusers_file = \"{}\"\n{extra}",
            c.run.display(),
            dir.path().join("users").display()
        ),
    )
    .expect("colony-web");
    passwd(exe, &cfg, "op", "operator", "op-pw");
    passwd(exe, &cfg, "view", "viewer", "view-pw");
    let child = Command::new(exe)
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("colony-web");
    wait_for("colony-web listening", SOON, || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    Web { child, port, dir }
}

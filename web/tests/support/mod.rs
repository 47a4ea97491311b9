//! What colony-web's tests share: colony-web started for a colony-init, with two users.

// Each test crate uses its own part of this.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use colony_integration::web::Web;
use colony_integration::webdriver::Browser;
use colony_integration::Colony;

/// colony-web for `c` (sampling every second), with users `op` (operator, password
/// `op-pw`) and `view` (viewer).
pub fn start_web(c: &Colony, extra: &str) -> Web {
    colony_integration::web::start(
        Path::new(env!("CARGO_BIN_EXE_colony-web")),
        c,
        &format!("sample_every = \"1s\"\n{extra}"),
    )
}

/// Log in through the form, as a user would.
pub fn log_in(b: &Browser, port: u16, user: &str, pw: &str) {
    b.goto(&format!("http://127.0.0.1:{port}/login"));
    b.type_into(&b.wait_find("input[name=user]"), user);
    b.type_into(&b.wait_find("input[name=password]"), pw);
    b.click(&b.wait_find("form[action='/login'] button"));
}

/// Save a screenshot as DIR/NAME.png when asked to (and check it is a PNG either way).
pub fn screenshot(b: &Browser, name: &str) {
    let png = b.screenshot();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
    if let Some(dir) = std::env::var_os("COLONY_WEB_SCREENSHOTS") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

/// How many points the first graph of the open page has (0: none yet).
pub fn graph_points(b: &Browser) -> u64 {
    b.js(
        "var p=document.querySelector('svg.graph polyline');\
         return p?p.getAttribute('points').trim().split(' ').length:0",
        serde_json::json!([]),
    )
    .as_u64()
    .unwrap_or(0)
}

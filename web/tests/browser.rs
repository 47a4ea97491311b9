//! colony-web in a real Chromium (Debian's `chromium` and `chromium-driver`, through
//! WebDriver) against a real colony-init with real units: logging in, the live overview (a
//! filtered one too, and a unit added), a restart from a button, the live log tail, graphs, and what a viewer or a forged form may
//! not do. With env `COLONY_WEB_SCREENSHOTS=DIR` (the README's are `docs/`), the overview
//! and a unit page are saved there as PNG.

use std::io::Write;

use colony_integration::webdriver::{can_run, Browser};
use colony_integration::{wait_for, Colony, SOON};
use serde_json::json;

mod support;
use support::{graph_points, log_in, screenshot, start_web};

/// `fetch(path, {method: POST, body})` from the page, with its cookie; the HTTP status.
/// The body is read, so that the connection goes back to Chromium's pool (6 per host).
fn post_from_page(b: &Browser, path: &str, body: &str) -> u64 {
    b.js_async(
        "var cb=arguments[arguments.length-1];\
         fetch(arguments[0],{method:'POST',headers:{'Content-Type':'application/x-www-form-urlencoded'},body:arguments[1]})\
         .then(function(r){return r.text().then(function(){cb(r.status)})},function(e){cb(-1)})",
        json!([path, body]),
    )
    .as_u64()
    .unwrap_or(0)
}

/// A cell of a unit's row in the open page (`data-k` = pid, restarts, ...).
fn cell(b: &Browser, unit: &str, k: &str) -> String {
    b.text(&format!("tr[data-unit='{unit}'] [data-k={k}]"))
}

fn pid_of(c: &Colony, unit: &str) -> i64 {
    c.unit(unit).and_then(|u| u["pid"].as_i64()).unwrap_or(0)
}

#[test]
fn the_dashboard_in_a_real_browser() {
    if !can_run() {
        return;
    }
    let c = Colony::new();
    let fifo = c.dir.path().join("talk");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    c.write_unit(
        "alpha",
        "exec = [\"sh\", \"-c\", \"echo hello from alpha; exec sleep 100000\"]\ntags = [\"web\"]\n[restart]\ndelay_min = \"0s\"\n",
    );
    c.write_unit("beta", "exec = [\"sleep\", \"100000\"]\ntags = [\"db\"]\n");
    // Writes to its log whatever the test writes into the FIFO.
    c.write_unit(
        "talker",
        &format!(
            "exec = [\"sh\", \"-c\", \"while true; do cat {}; done\"]\ntags = [\"web\"]\n",
            fifo.display()
        ),
    );
    let c = c.start();
    for u in ["alpha", "beta", "talker"] {
        c.wait_state(u, "running");
    }
    let w = start_web(&c, "");
    let base = format!("http://127.0.0.1:{}", w.port);
    let b = Browser::start(1280, 900);

    // Not logged in: the login page. A wrong password is refused and lets nobody in.
    b.goto(&format!("{base}/"));
    assert!(b.url().ends_with("/login"), "{}", b.url());
    log_in(&b, w.port, "op", "wrong");
    wait_for("the refusal", SOON, || {
        b.text("p.err")
            .contains("Wrong user or password")
            .then_some(())
    });
    b.goto(&format!("{base}/"));
    assert!(b.url().ends_with("/login"), "still out: {}", b.url());

    // In: the overview lists every unit.
    log_in(&b, w.port, "op", "op-pw");
    b.wait_find("table#units");
    for u in ["alpha", "beta", "talker"] {
        assert!(
            b.find(&format!("tr[data-unit='{u}']")).is_some(),
            "{u} listed"
        );
    }
    assert_eq!(cell(&b, "alpha", "pid"), pid_of(&c, "alpha").to_string());

    // A unit killed from outside: its restart shows in the open page, without a reload.
    b.js("window.colonyMarker = 1", json!([]));
    let (old_pid, old_restarts) = (pid_of(&c, "alpha"), cell(&b, "alpha", "restarts"));
    // SAFETY: signalling a process of this test's own colony-init, by its PID.
    unsafe { libc::kill(old_pid as i32, libc::SIGKILL) };
    let new_pid = wait_for("the restart in the open page", SOON, || {
        let pid = cell(&b, "alpha", "pid");
        let restarts = cell(&b, "alpha", "restarts");
        (!pid.is_empty() && pid != old_pid.to_string() && restarts != old_restarts).then_some(pid)
    });
    assert_eq!(
        b.js("return window.colonyMarker", json!([])),
        json!(1),
        "no reload"
    );
    c.wait_state("alpha", "running");
    assert_eq!(new_pid, pid_of(&c, "alpha").to_string());
    screenshot(&b, "web-overview");

    // A filtered overview stays as it is when a unit outside its filter changes (beta,
    // killed), and follows the units it shows (alpha, killed after: once its new pid shows,
    // beta's events were through the page too).
    b.goto(&format!("{base}/?q=alpha"));
    b.wait_find("tr[data-unit='alpha']");
    assert!(b.find("tr[data-unit='beta']").is_none(), "filtered");
    b.js("window.colonyMarker = 3", json!([]));
    let beta_pid = pid_of(&c, "beta");
    // SAFETY: signalling a process of this test's own colony-init, by its PID.
    unsafe { libc::kill(beta_pid as i32, libc::SIGKILL) };
    c.wait_unit("beta", "beta's exit seen", |u| {
        u["pid"].as_i64() != Some(beta_pid)
    });
    let old_pid = pid_of(&c, "alpha");
    // SAFETY: as above.
    unsafe { libc::kill(old_pid as i32, libc::SIGKILL) };
    wait_for("alpha's restart in the filtered page", SOON, || {
        let pid = cell(&b, "alpha", "pid");
        (!pid.is_empty() && pid != old_pid.to_string()).then_some(())
    });
    assert_eq!(
        b.js("return window.colonyMarker", json!([])),
        json!(3),
        "no reload for a unit outside the filter"
    );
    c.wait_state("alpha", "running");
    c.wait_state("beta", "running");

    // A unit new to colony-init (a file added, `reload`) appears in the open overview.
    b.goto(&format!("{base}/"));
    b.wait_find("tr[data-unit='alpha']");
    c.write_unit("gamma", "exec = [\"sleep\", \"100000\"]\n");
    assert_eq!(c.ctl(&["reload"]).status.code(), Some(0));
    wait_for("gamma in the open overview", SOON, || {
        b.find("tr[data-unit='gamma']").map(|_| ())
    });

    // Restart from a button on the unit page: the new pid shows.
    b.goto(&format!("{base}/unit/beta"));
    b.wait_find("span[data-k=pid]");
    let old_pid = pid_of(&c, "beta").to_string();
    assert_eq!(b.text("span[data-k=pid]"), old_pid);
    b.click(&b.wait_find("form button[name=action][value=restart]"));
    wait_for("beta's new pid in the page", SOON, || {
        let pid = b.text("span[data-k=pid]");
        (!pid.is_empty() && pid != old_pid).then_some(())
    });
    c.wait_unit("beta", "restarted", |u| {
        u["state"] == "running" && u["pid"].as_i64().map(|p| p.to_string()) != Some(old_pid.clone())
    });
    wait_for("the page to show colony-init's pid", SOON, || {
        (b.text("span[data-k=pid]") == pid_of(&c, "beta").to_string()).then_some(())
    });

    // A line the unit writes appears in the open tail.
    b.goto(&format!("{base}/unit/talker"));
    b.wait_find("#log[data-live='1']");
    b.js("window.colonyMarker = 2", json!([]));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .unwrap()
        .write_all(b"a line from the talker unit\n")
        .unwrap();
    wait_for("the line in the open tail", SOON, || {
        b.text("#log")
            .contains("a line from the talker unit")
            .then_some(())
    });
    assert_eq!(
        b.js("return window.colonyMarker", json!([])),
        json!(2),
        "no reload"
    );

    // Graphs: colony-web samples every second; after a few samples a graph has points.
    let points = wait_for("a graph with points", SOON, || {
        b.goto(&format!("{base}/unit/talker"));
        Some(graph_points(&b)).filter(|n| *n >= 3)
    });
    assert!(points >= 3);
    screenshot(&b, "web-unit");

    // A forged POST (no CSRF token, or a wrong one) is refused, and nothing is done.
    let alpha = pid_of(&c, "alpha");
    assert_eq!(
        post_from_page(&b, "/action", "target=alpha&action=stop&back=/"),
        403
    );
    assert_eq!(
        post_from_page(&b, "/action", "csrf=forged&target=alpha&action=stop&back=/"),
        403
    );
    assert_eq!(c.unit("alpha").unwrap()["state"], "running");
    assert_eq!(pid_of(&c, "alpha"), alpha);

    // A viewer sees the units but no buttons, and is refused an action (403).
    b.click(&b.wait_find("form[action='/logout'] button"));
    wait_for("logged out", SOON, || {
        b.url().ends_with("/login").then_some(())
    });
    log_in(&b, w.port, "view", "view-pw");
    b.wait_find("tr[data-unit='alpha']");
    assert!(b.find("input[name=csrf]").is_none(), "no action forms");
    assert_eq!(post_from_page(&b, "/api/v1/units/alpha/restart", ""), 403);
    assert_eq!(
        post_from_page(&b, "/action", "target=alpha&action=restart&back=/"),
        403
    );
    assert_eq!(pid_of(&c, "alpha"), alpha, "alpha untouched");
}

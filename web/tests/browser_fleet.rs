//! colony-web's fleet pages in a real Chromium, on a real fleet: etcd and two hosts, each a
//! network namespace with its own colony-init and colony-fleet (the harness of
//! `colony_integration::fleet`). Hosts up with their leader and labels, where applications
//! run and why one waits, a host's graphs, fleet stop/start from the page's buttons, and the
//! open page following the fleet live (an application stopped, started and added from
//! outside shows without a reload).
//! With `COLONY_WEB_SCREENSHOTS=DIR`, the fleet page is saved as DIR/web-fleet.png.

use colony_integration::fleet::{self, Fleet, LONG, SLEEPER};
use colony_integration::webdriver::{self, Browser};
use colony_integration::{wait_for, Colony};
use serde_json::json;

mod support;
use support::{graph_points, log_in, screenshot, start_web};

/// The text of a cell (`data-k`) in an application's row.
fn app_cell(b: &Browser, app: &str, k: &str) -> String {
    b.text(&format!("tr[data-app='{app}'] [data-k={k}]"))
}

#[test]
fn the_fleet_pages_in_a_real_browser() {
    if !webdriver::can_run() || !fleet::can_run() {
        return;
    }
    let mut f = Fleet::new(1, "");
    f.add_host("h1", "arch = \"arm\"");
    f.add_host("h2", "arch = \"x86\"");
    f.wait_hosts_up(&["h1", "h2"]);
    f.apply("shop", SLEEPER);
    let shop_on = f.wait_runs_somewhere("shop", LONG);
    f.apply(
        "batch",
        &format!("{SLEEPER}[placement]\nhosts = [\"h9\"]\n"),
    );

    // colony-web on the operator's machine: its own colony-init, and the fleet's etcd.
    let fleet_toml = f.tmp.path().join("web-fleet.toml");
    std::fs::write(
        &fleet_toml,
        format!("host = \"operator\"\nendpoints = {:?}\n", f.etcd.endpoints),
    )
    .unwrap();
    let c = Colony::new();
    c.write_unit("local", SLEEPER);
    let c = c.start();
    c.wait_state("local", "running");
    let w = start_web(&c, &format!("fleet = \"{}\"\n", fleet_toml.display()));
    let base = format!("http://127.0.0.1:{}", w.port);
    let b = Browser::start(1280, 800);
    log_in(&b, w.port, "op", "op-pw");
    b.wait_find("table#units");

    // Hosts: both up, the leader named, their labels; where shop runs; why batch waits.
    b.goto(&format!("{base}/fleet"));
    b.wait_find("table#hosts");
    for (h, label) in [("h1", "arch=arm"), ("h2", "arch=x86")] {
        let row = b.text(&format!("tr[data-host='{h}']"));
        assert!(row.contains("up") && row.contains(label), "{h}: {row}");
    }
    let leader = f.leader().expect("a leader");
    assert_eq!(b.text("#leader"), leader);
    assert_eq!(app_cell(&b, "shop", "hosts"), shop_on);
    wait_for("batch waiting for h9", LONG, || {
        b.goto(&format!("{base}/fleet"));
        app_cell(&b, "batch", "why").contains("h9").then_some(())
    });

    // A host's graphs: colony-web samples the fleet every second.
    wait_for("h1's load graph with points", LONG, || {
        b.goto(&format!("{base}/fleet/host/h1"));
        Some(graph_points(&b)).filter(|n| *n >= 3)
    });
    assert_eq!(b.text("h1"), "Host h1");

    // Fleet stop from the page's button: shop stops everywhere; start: it runs again.
    b.goto(&format!("{base}/fleet"));
    screenshot(&b, "web-fleet");
    b.click(&b.wait_find("tr[data-app='shop'] form button[name=action][value=stop]"));
    f.wait_runs_on("shop", &[], LONG);
    wait_for("shop stopped in the page", LONG, || {
        b.goto(&format!("{base}/fleet"));
        b.text("tr[data-app='shop'] .st")
            .eq("stopped")
            .then_some(())
    });
    b.click(&b.wait_find("tr[data-app='shop'] form button[name=action][value=start]"));
    let again = f.wait_runs_somewhere("shop", LONG);
    wait_for("shop running in the page", LONG, || {
        b.goto(&format!("{base}/fleet"));
        (app_cell(&b, "shop", "hosts") == again).then_some(())
    });

    // Live: the open page follows changes made outside it, without a reload (colony-web
    // watches the fleet's keys in etcd and tells the page over its event stream).
    b.goto(&format!("{base}/fleet"));
    b.wait_find("table#apps");
    b.js("window.notReloaded = true", json!([]));
    let same_page = || b.js("return window.notReloaded === true", json!([])) == json!(true);
    assert!(f.ctl(&["stop", "shop"]).status.success());
    f.wait_runs_on("shop", &[], LONG);
    wait_for("shop stopped in the open page", LONG, || {
        (b.text("tr[data-app='shop'] .st") == "stopped").then_some(())
    });
    assert!(same_page(), "the page was reloaded");
    assert!(f.ctl(&["start", "shop"]).status.success());
    let again = f.wait_runs_somewhere("shop", LONG);
    wait_for("shop running again in the open page", LONG, || {
        (app_cell(&b, "shop", "hosts") == again).then_some(())
    });
    f.apply("extra", SLEEPER);
    wait_for("a new application in the open page", LONG, || {
        b.find("tr[data-app='extra']").map(|_| ())
    });
    assert!(same_page(), "the page was reloaded");

    // A viewer sees the fleet but may not stop an application.
    let v = Browser::start(1024, 700);
    log_in(&v, w.port, "view", "view-pw");
    v.wait_find("table#units");
    v.goto(&format!("{base}/fleet"));
    v.wait_find("table#apps");
    assert!(v.find("tr[data-app='shop'] form").is_none(), "no buttons");
    let status = v.js_async(
        "var cb=arguments[arguments.length-1];\
         fetch('/api/v1/fleet/apps/shop/stop',{method:'POST'})\
         .then(function(r){return r.text().then(function(){cb(r.status)})},function(){cb(-1)})",
        json!([]),
    );
    assert_eq!(status, json!(403));
    assert_eq!(f.running_on("shop"), [again]);
}

//! colony-web over HTTP against a real colony-init with real units: logins, the overview,
//! actions (and their refusals: no CSRF token, a viewer), /metrics, the event stream, TLS.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use colony_integration::{wait_for, Colony, SOON};

mod support;
use support::start_web;

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request (Connection: close), the whole response back.
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(SOON)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_string(),
    }
}

fn basic(user: &str, pw: &str) -> String {
    use std::fmt::Write as _;
    // A tiny base64 for the test (no dependency).
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let data = format!("{user}:{pw}").into_bytes();
    let mut out = String::from("Basic ");
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                let _ = out.write_char(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// Log in through the form; the session cookie (`colony_session=...`).
fn login(port: u16, user: &str, pw: &str) -> String {
    let r = http(
        port,
        "POST",
        "/login",
        &[FORM],
        &format!("user={user}&password={pw}"),
    );
    assert_eq!(r.status, 303, "{r:?}");
    let c = r.header("set-cookie").expect("a cookie").to_string();
    c.split(';').next().unwrap().to_string()
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=csrf value=\"").expect("a CSRF field") + 17;
    page[at..].split('"').next().unwrap().to_string()
}

fn colony_with_units() -> Colony {
    let c = Colony::new();
    c.write_unit(
        "alpha",
        "exec = [\"sh\", \"-c\", \"echo hello from alpha; exec sleep 100000\"]\ntags = [\"web\"]\n[restart]\ndelay_min = \"0s\"\n",
    );
    c.write_unit("beta", "exec = [\"sleep\", \"100000\"]\ntags = [\"db\"]\n");
    let c = c.start();
    c.wait_state("alpha", "running");
    c.wait_state("beta", "running");
    c
}

#[test]
fn logins_are_checked_and_cookies_are_safe() {
    let c = colony_with_units();
    let w = start_web(&c, "");
    let bad = http(w.port, "POST", "/login", &[FORM], "user=op&password=wrong");
    assert_eq!(bad.status, 401);
    assert!(bad.body.contains("Wrong user or password"));
    assert!(bad.header("set-cookie").is_none());
    // A second bad try is held back (slowed), and still refused.
    let t = std::time::Instant::now();
    assert_eq!(
        http(w.port, "POST", "/login", &[FORM], "user=op&password=wrong2").status,
        401
    );
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );

    let r = http(
        w.port,
        "POST",
        "/login",
        &[FORM],
        "user=view&password=view-pw",
    );
    assert_eq!(r.status, 303);
    let cookie = r.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "no TLS: {cookie}");

    // Without credentials: browsers to the login page, scripts 401.
    let r = http(w.port, "GET", "/", &[("Accept", "text/html")], "");
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
    let r = http(w.port, "GET", "/api/v1/units", &[], "");
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some());
    let r = http(
        w.port,
        "GET",
        "/api/v1/units",
        &[("Authorization", &basic("op", "nope"))],
        "",
    );
    assert_eq!(r.status, 401);
}

#[test]
fn overview_api_metrics_and_events_show_the_units() {
    let c = colony_with_units();
    // One sample at the start, the next in an hour: what follows a unit's restart below is
    // the event stream and the units it touched read again, not the sampler.
    let w = colony_integration::web::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_colony-web")),
        &c,
        "sample_every = \"1h\"\n",
    );
    let cookie = login(w.port, "view", "view-pw");
    let page = http(w.port, "GET", "/", &[("Cookie", &cookie)], "");
    assert_eq!(page.status, 200);
    for s in [
        "data-unit=\"alpha\"",
        "data-unit=\"beta\"",
        "class=\"st running\"",
        "@web",
        "/api/v1/events",
    ] {
        assert!(page.body.contains(s), "{s} not in the page:\n{}", page.body);
    }
    // A viewer's page has no action forms.
    assert!(!page.body.contains("name=csrf"));
    let filtered = http(w.port, "GET", "/?q=%40db", &[("Cookie", &cookie)], "");
    assert!(
        filtered.body.contains("data-unit=\"beta\"")
            && !filtered.body.contains("data-unit=\"alpha\"")
    );

    let auth = basic("view", "view-pw");
    let r = http(
        w.port,
        "GET",
        "/api/v1/units",
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(r.status, 200, "{r:?}");
    let units: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(units.as_array().unwrap().len(), 2);
    let r = http(
        w.port,
        "GET",
        "/api/v1/units/alpha",
        &[("Authorization", &auth)],
        "",
    );
    let alpha: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(alpha["state"], "running");
    assert_eq!(
        http(
            w.port,
            "GET",
            "/api/v1/units/nope",
            &[("Authorization", &auth)],
            ""
        )
        .status,
        404
    );
    assert_eq!(
        http(
            w.port,
            "GET",
            "/api/v1/units/..%2F..%2Fetc",
            &[("Authorization", &auth)],
            ""
        )
        .status,
        404
    );

    let unit = http(w.port, "GET", "/unit/alpha", &[("Cookie", &cookie)], "");
    assert!(
        unit.body.contains("hello from alpha"),
        "log tail:\n{}",
        unit.body
    );
    assert!(
        unit.body.contains("echo hello from alpha; exec sleep"),
        "definition"
    );

    let m = http(w.port, "GET", "/metrics", &[("Authorization", &auth)], "");
    assert_eq!(m.status, 200);
    assert!(
        m.body
            .contains("colony_unit_up{unit=\"alpha\",tag=\"web\"} 1"),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains("colony_unit_state{unit=\"beta\",tag=\"db\",state=\"running\"} 1"),
        "{}",
        m.body
    );

    // The event stream: a unit killed from outside shows as it happens.
    let mut s = TcpStream::connect(("127.0.0.1", w.port)).unwrap();
    s.set_read_timeout(Some(SOON)).unwrap();
    s.write_all(
        format!("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // Headers first: the stream is open.
    while !String::from_utf8_lossy(&got).contains("text/event-stream") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let pid = alpha["pid"].as_i64().unwrap() as i32;
    // SAFETY: kill(2) on the unit's process, which this test's colony-init started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    while !String::from_utf8_lossy(&got).contains("\"to\":\"backoff\"") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).contains("killed by SIGKILL"));

    // The units colony-web keeps follow the stream: alpha as colony-init has it once it runs
    // again, down to what no event carries (its last exit), in the API and in /metrics.
    let now = c.wait_unit("alpha", "alpha running again", |u| {
        u["state"] == "running" && u["pid"].as_i64() != Some(pid as i64)
    });
    assert_eq!(now["last_exit"]["signal"], "SIGKILL", "{now}");
    let fields = ["state", "pid", "restarts", "last_exit", "error", "ready"];
    let seen = wait_for("alpha's restart in /api/v1/units", SOON, || {
        let r = http(
            w.port,
            "GET",
            "/api/v1/units",
            &[("Authorization", &auth)],
            "",
        );
        let all: serde_json::Value = serde_json::from_str(&r.body).ok()?;
        let a = all
            .as_array()?
            .iter()
            .find(|u| u["name"] == "alpha")?
            .clone();
        fields.iter().all(|f| a[f] == now[f]).then_some(a)
    });
    assert_eq!(seen["restarts"], 1);
    let m = http(w.port, "GET", "/metrics", &[("Authorization", &auth)], "");
    assert!(
        m.body
            .contains("colony_unit_restarts{unit=\"alpha\",tag=\"web\"} 1\n"),
        "{}",
        m.body
    );
}

#[test]
fn actions_need_an_operator_and_a_csrf_token() {
    let c = colony_with_units();
    let w = start_web(&c, "");
    let old = c.unit("alpha").unwrap()["pid"].as_i64().unwrap();
    let op = login(w.port, "op", "op-pw");
    let page = http(w.port, "GET", "/", &[("Cookie", &op)], "");
    let csrf = csrf_of(&page.body);

    // A forged form (no token, or a wrong one) is refused, and nothing happens.
    let r = http(
        w.port,
        "POST",
        "/action",
        &[FORM, ("Cookie", &op)],
        "target=alpha&action=restart&back=/",
    );
    assert_eq!(r.status, 403, "{r:?}");
    let r = http(
        w.port,
        "POST",
        "/action",
        &[FORM, ("Cookie", &op)],
        "csrf=00&target=alpha&action=restart&back=/",
    );
    assert_eq!(r.status, 403);
    // A viewer: 403, by session and by Basic.
    let view = login(w.port, "view", "view-pw");
    let r = http(
        w.port,
        "POST",
        "/action",
        &[FORM, ("Cookie", &view)],
        &format!("csrf={csrf}&target=alpha&action=restart"),
    );
    assert_eq!(r.status, 403);
    let r = http(
        w.port,
        "POST",
        "/api/v1/units/alpha/restart",
        &[("Authorization", &basic("view", "view-pw"))],
        "",
    );
    assert_eq!(r.status, 403);
    assert_eq!(c.unit("alpha").unwrap()["pid"].as_i64(), Some(old));

    // The operator's form works (redirect back), and the new pid shows on the page.
    let r = http(
        w.port,
        "POST",
        "/action",
        &[FORM, ("Cookie", &op)],
        &format!("csrf={csrf}&target=alpha&action=restart&back=/"),
    );
    assert_eq!((r.status, r.header("location")), (303, Some("/")));
    let new = wait_for("alpha restarted", SOON, || {
        let u = c.unit("alpha")?;
        let p = u["pid"].as_i64()?;
        (p != old && u["state"] == "running").then_some(p)
    });
    let page = http(w.port, "GET", "/", &[("Cookie", &op)], "");
    assert!(
        page.body.contains(&format!("<td data-k=pid>{new}</td>")),
        "{}",
        page.body
    );

    // The API with Basic: waits for the result.
    let r = http(
        w.port,
        "POST",
        "/api/v1/units/beta/stop",
        &[("Authorization", &basic("op", "op-pw"))],
        "",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.unit("beta").unwrap()["state"], "stopped");
    let r = http(
        w.port,
        "POST",
        "/api/v1/units/@db/start",
        &[("Authorization", &basic("op", "op-pw"))],
        "",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.unit("beta").unwrap()["state"], "running");
    let r = http(
        w.port,
        "POST",
        "/api/v1/units/nope/start",
        &[("Authorization", &basic("op", "op-pw"))],
        "",
    );
    assert_eq!(r.status, 404, "{r:?}");
    // A body over the limit is refused, and the server goes on.
    let big = "x".repeat(64 * 1024);
    let r = http(w.port, "POST", "/action", &[FORM, ("Cookie", &op)], &big);
    assert_eq!(r.status, 413, "{:?}", r.status);
    assert_eq!(
        http(
            w.port,
            "GET",
            "/api/v1/units",
            &[("Authorization", &basic("op", "op-pw"))],
            ""
        )
        .status,
        200
    );
}

#[test]
fn other_addresses_need_tls_or_the_insecure_switch_and_tls_works() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("web.toml");
    std::fs::write(&cfg, "listen = \"0.0.0.0:9\"\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_colony-web"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("[tls]"));

    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(dir.path().join("key.pem"))
        .arg("-out")
        .arg(dir.path().join("cert.pem"))
        .output();
    if !ok.as_ref().is_ok_and(|o| o.status.success()) {
        colony_integration::skip_or_fail!("skipped: openssl cannot make a certificate: {ok:?}");
        return;
    }
    let c = colony_with_units();
    let w = start_web(
        &c,
        &format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            dir.path().join("cert.pem").display(),
            dir.path().join("key.pem").display()
        ),
    );
    let url = format!("https://127.0.0.1:{}/login", w.port);
    let o = Command::new("curl")
        .args(["-sk", "-i", "-d", "user=op&password=op-pw", &url])
        .output();
    let Ok(o) = o else {
        colony_integration::skip_or_fail!("skipped: no curl");
        return;
    };
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("HTTP/1.1 303"), "{text}");
    let cookie = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie"))
        .unwrap_or("");
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // Plain HTTP on the TLS port is not served.
    let r = http(w.port, "GET", "/api/v1/units", &[], "");
    assert_ne!(r.status, 200);
}

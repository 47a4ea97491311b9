//! A real Chromium driven through WebDriver (Debian's `chromium` and `chromium-driver`):
//! the W3C protocol is JSON over HTTP, so a few requests on a `TcpStream` are the whole
//! client. colony-web's browser tests and its benchmark use it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::{free_port, skip_or_fail, wait_for, SOON};

/// The key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one headless Chromium session; both end on drop.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

/// A page element, as WebDriver names it.
#[derive(Debug, Clone)]
pub struct Element(String);

/// One HTTP/1.1 exchange with chromedriver (Connection: close); the JSON body back.
fn exchange(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(120))).ok();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("write to chromedriver");
    // chromedriver keeps the connection open whatever we ask: read by Content-Length.
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let (split, head) = loop {
        let n = s.read(&mut buf).expect("read chromedriver's answer");
        assert!(n > 0, "chromedriver closed the connection");
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break (i, String::from_utf8_lossy(&raw[..i]).to_ascii_lowercase());
        }
    };
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let body = &raw[split + 4..];
        let done = match length {
            Some(l) => body.len() >= l,
            None if chunked => body.windows(5).any(|w| w == b"0\r\n\r\n"),
            None => false,
        };
        if done {
            break;
        }
        let n = s.read(&mut buf).expect("read chromedriver's answer");
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let mut payload = raw[split + 4..].to_vec();
    if chunked {
        payload = dechunk(&payload);
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let v = serde_json::from_slice(&payload).unwrap_or(Value::Null);
    (status, v)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}

/// Are Chromium and chromedriver installed? Says why not (a failure under CI).
pub fn can_run() -> bool {
    for (c, pkg) in [
        ("chromium", "chromium"),
        ("chromedriver", "chromium-driver"),
    ] {
        if !crate::fleet::have(c) {
            skip_or_fail!("SKIP browser tests: `{c}` is missing (apt-get install {pkg})");
            return false;
        }
    }
    true
}

impl Browser {
    /// chromedriver on a free port, and a headless Chromium of `width` x `height`.
    pub fn start(width: u32, height: u32) -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run chromedriver");
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
        };
        wait_for("chromedriver to listen", SOON, || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                // Root in a container: no sandbox, no /dev/shm of size; no GPU.
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--no-first-run", "--disable-extensions",
                         format!("--window-size={width},{height}")]
            }
        }}});
        let (status, v) = exchange(port, "POST", "/session", Some(&caps));
        assert_eq!(status, 200, "a Chromium session: {v}");
        b.session = v["value"]["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        b
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let p = format!("/session/{}{path}", self.session);
        let (status, v) = exchange(self.port, method, &p, body.as_ref());
        assert_eq!(status, 200, "WebDriver {method} {path}: {v}");
        v["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The first element matching a CSS selector, if any.
    pub fn find(&self, css: &str) -> Option<Element> {
        let p = format!("/session/{}/element", self.session);
        let (status, v) = exchange(
            self.port,
            "POST",
            &p,
            Some(&json!({"using": "css selector", "value": css})),
        );
        (status == 200).then(|| Element(v["value"][ELEMENT].as_str().unwrap_or("").to_string()))
    }

    /// The element, waited for (bounded).
    pub fn wait_find(&self, css: &str) -> Element {
        wait_for(&format!("an element {css}"), SOON, || self.find(css))
    }

    pub fn click(&self, e: &Element) {
        self.cmd("POST", &format!("/element/{}/click", e.0), Some(json!({})));
    }

    pub fn type_into(&self, e: &Element, text: &str) {
        self.cmd(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        );
    }

    /// Run `script` (a function body; `arguments` are `args`) in the page; its result.
    pub fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Run an async `script` whose last argument is the callback to call with the result.
    pub fn js_async(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// `textContent` of the first element matching `css` ("" when there is none).
    pub fn text(&self, css: &str) -> String {
        self.js(
            "var e=document.querySelector(arguments[0]);return e?e.textContent:''",
            json!([css]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let b = self.cmd("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(b.as_str().unwrap_or_default())
            .expect("a base64 screenshot")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let p = format!("/session/{}", self.session);
            let _ = std::panic::catch_unwind(|| exchange(self.port, "DELETE", &p, None));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

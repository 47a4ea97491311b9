use super::conn::http_verdict;
use super::*;

#[test]
fn far_future_durations_saturate() {
    let now = Instant::now();
    assert!(after(now, Duration::MAX) > now + Duration::from_secs(86400));
    assert_eq!(
        after(now, Duration::from_secs(5)),
        now + Duration::from_secs(5)
    );
}

#[test]
fn http_urls() {
    assert_eq!(
        parse_http_url("http://127.0.0.1:8080/healthz").unwrap(),
        ("127.0.0.1:8080".into(), "/healthz".into())
    );
    assert_eq!(
        parse_http_url("http://localhost").unwrap(),
        ("localhost:80".into(), "/".into())
    );
    assert_eq!(
        parse_http_url("http://[::1]:9/x?y=1").unwrap(),
        ("[::1]:9".into(), "/x?y=1".into())
    );
    assert!(parse_http_url("https://a/").is_err());
    assert!(parse_http_url("http:///x").is_err());
}

#[test]
fn http_answers() {
    assert!(matches!(
        http_verdict(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false),
        ConnStep::Good
    ));
    assert!(matches!(
        http_verdict(b"HTTP/1.0 302 Found\r\nLocation: /\r\n\r\n", false),
        ConnStep::Good
    ));
    assert!(matches!(
        http_verdict(b"HTTP/1.1 500 Internal\r\n\r\n", false),
        ConnStep::Bad(_)
    ));
    assert!(matches!(
        http_verdict(b"HTTP/1.1 200 OK\r\n", false),
        ConnStep::Pending
    ));
    assert!(matches!(
        http_verdict(b"HTTP/1.1 200 OK\r\n", true),
        ConnStep::Bad(_)
    ));
    assert!(matches!(
        http_verdict(b"\x00\x01garbage\r\n\r\n", false),
        ConnStep::Bad(_)
    ));
}

fn wait_actions(p: &mut Probes, bound: Duration) -> Vec<Action> {
    let end = Instant::now() + bound;
    loop {
        if bound.is_zero() {
            let mut fds = [nix::poll::PollFd::new(p.fd(), nix::poll::PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut fds, 100u16);
            return p.on_event();
        }
        let mut fds = [nix::poll::PollFd::new(p.fd(), nix::poll::PollFlags::POLLIN)];
        let left = end.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let _ = nix::poll::poll(&mut fds, ms);
        let a = p.on_event();
        if !a.is_empty() || Instant::now() >= end {
            return a;
        }
    }
}

#[test]
fn tcp_readiness_retries_until_a_listener_appears() {
    // A free port: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut p = Probes::new().unwrap();
    let a = p.start_ready("u", &ReadyType::Tcp(format!("127.0.0.1:{port}")));
    assert!(a.is_empty());
    // Some attempts fail (refused) and back off; nothing is ready.
    assert!(wait_actions(&mut p, Duration::from_millis(150)).is_empty());
    let _l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let a = wait_actions(&mut p, Duration::from_secs(5));
    assert_eq!(a, vec![Action::Ready("u".into())]);
    assert!(!p.is_probing("u"));
}

#[test]
fn file_readiness_sees_a_file_made_in_a_new_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sub/deeper/ready");
    let mut p = Probes::new().unwrap();
    assert!(p
        .start_ready("u", &ReadyType::File(file.clone()))
        .is_empty());
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    assert!(wait_actions(&mut p, Duration::from_millis(100)).is_empty());
    std::fs::write(&file, b"").unwrap();
    let a = wait_actions(&mut p, Duration::from_secs(5));
    assert_eq!(a, vec![Action::Ready("u".into())]);
    // Already there: ready at once.
    assert_eq!(
        p.start_ready("v", &ReadyType::File(file)),
        vec![Action::Ready("v".into())]
    );
}

/// A real HTTP server on a thread answers 200 then 500: good, then bad twice, fault.
#[test]
fn http_health_good_then_bad_until_fault() {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        for (i, s) in l.incoming().take(3).enumerate() {
            let mut s = s.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let code = if i == 0 { "200 OK" } else { "500 Oops" };
            let _ = write!(s, "HTTP/1.1 {code}\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let mut p = Probes::new().unwrap();
    let h = Health {
        check: HealthCheck::Http(format!("http://127.0.0.1:{port}/healthz")),
        period: Duration::from_millis(50),
        timeout: Duration::from_secs(2),
        max_bad: 2,
        grace: Duration::from_millis(10),
    };
    p.start_health("u", &h);
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        let a = wait_actions(&mut p, Duration::ZERO);
        if let Some(t) = p.health_text("u") {
            if seen.last() != Some(&t) {
                seen.push(t);
            }
        }
        if !a.is_empty() {
            assert_eq!(a, vec![Action::Fault("u".into())]);
            break;
        }
    }
    assert_eq!(seen, vec!["good", "bad 1", "bad 2"]);
    assert!(!p.is_probing("u"));
    assert_eq!(p.health_text("u").as_deref(), Some("bad 2"));
    server.join().unwrap();
}

#[test]
fn a_silent_server_times_out_as_bad() {
    // Accepts (the kernel's backlog does) but never answers.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut p = Probes::new().unwrap();
    let h = Health {
        check: HealthCheck::Http(format!("http://127.0.0.1:{port}/")),
        period: Duration::from_secs(60),
        timeout: Duration::from_millis(100),
        max_bad: 1,
        grace: Duration::ZERO,
    };
    p.start_health("u", &h);
    let a = wait_actions(&mut p, Duration::from_secs(5));
    assert_eq!(a, vec![Action::Fault("u".into())]);
    drop(l);
}

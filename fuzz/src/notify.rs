//! sd_notify datagrams: `colony_init::kernel::notify::parse`, then `interpret` as the loop runs it.

use std::time::Instant;

use colony_init::kernel::notify::{interpret, parse, Members, Msg, Order, MAX_DATAGRAM, MAX_STATUS};

pub fn run(data: &[u8]) {
    let parsed = parse(data);
    // Dropped whole exactly when oversize or holding a NUL.
    let malformed = data.len() > MAX_DATAGRAM || data.contains(&0);
    assert_eq!(parsed.is_none(), malformed, "{parsed:?}");
    let Some(msgs) = parsed else { return };

    let lines = data.split(|&b| b == b'\n').count();
    assert!(
        msgs.len() <= lines,
        "{} messages from {lines} lines",
        msgs.len()
    );
    for m in &msgs {
        match m {
            Msg::Status(t) => {
                assert!(t.len() <= MAX_STATUS, "STATUS= of {} bytes kept", t.len());
                assert!(!t.contains(['\n', '\0']));
            }
            Msg::MainPid(p) => assert!(*p > 0, "MAINPID={p}"),
            _ => {}
        }
    }
    // Written back as lines, the messages read the same.
    let again = parse(render(&msgs).as_bytes());
    assert_eq!(again.as_ref(), Some(&msgs), "not stable through rendering");

    // No unit has members here, so a MAINPID= is refused; nothing else may fail.
    let members = Members::default();
    for notify_type in [false, true] {
        let orders = interpret("u", notify_type, &msgs, &members);
        for o in orders {
            if let Order::Extend(d) = o {
                // What the loop does with it: no overflow, however far.
                let now = Instant::now();
                assert!(colony_init::probe::after(now, d) >= now);
            }
        }
    }
}

/// One line per message, no newline at the end: never longer than the datagram read.
fn render(msgs: &[Msg]) -> String {
    let lines: Vec<String> = msgs
        .iter()
        .map(|m| match m {
            Msg::Ready => "READY=1".to_string(),
            Msg::Reloading => "RELOADING=1".to_string(),
            Msg::Stopping => "STOPPING=1".to_string(),
            Msg::Status(t) => format!("STATUS={t}"),
            Msg::MainPid(p) => format!("MAINPID={p}"),
            Msg::Watchdog => "WATCHDOG=1".to_string(),
            Msg::WatchdogTrigger => "WATCHDOG=trigger".to_string(),
            Msg::ExtendTimeout(d) => format!("EXTEND_TIMEOUT_USEC={}", d.as_micros()),
        })
        .collect();
    lines.join("\n")
}

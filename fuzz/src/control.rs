//! Control FIFO requests: the bytes go through a real `RUN/control` FIFO into
//! `ControlFifo::read_requests` (line framing, oversize lines, `\r`), which parses each
//! line with `units::proto::Request::parse`.

use std::os::fd::OwnedFd;
use std::sync::Mutex;

use colony_init::control::ControlFifo;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use units::proto::{valid_reply_name, Request, RequestError, MAX_REQUEST};

/// Below the FIFO's 64 KiB capacity, so one write carries the whole input.
const MAX_INPUT: usize = 60 * 1024;

struct Fifo {
    reader: ControlFifo,
    writer: OwnedFd,
}

fn fifo() -> &'static Mutex<Fifo> {
    static F: std::sync::OnceLock<Mutex<Fifo>> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let run = crate::fresh_dir("run");
        let reader = ControlFifo::create(&run, None).expect("create the control FIFO");
        let writer = open(
            reader.path(),
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .expect("open the control FIFO for writing");
        Mutex::new(Fifo { reader, writer })
    })
}

pub fn run(data: &[u8]) {
    if data.len() > MAX_INPUT {
        return;
    }
    let mut f = fifo().lock().unwrap_or_else(|e| e.into_inner());
    let mut rest = data;
    while !rest.is_empty() {
        let n = nix::unistd::write(&f.writer, rest).expect("write to the control FIFO");
        rest = &rest[n..];
    }
    let got = f.reader.read_requests();
    assert_eq!(
        got,
        model(data),
        "framing differs from one request per line"
    );
    for r in &got {
        match r {
            Ok(req) => request_holds(req),
            Err(RequestError::BadReplyName(n)) => assert!(!valid_reply_name(n), "{n:?}"),
            Err(_) => {}
        }
    }
}

/// What a reader of the whole input must return: each line (split at `\n`, a final `\r`
/// dropped) parsed; blank lines skipped; a line over MAX_REQUEST one `TooLong`.
fn model(data: &[u8]) -> Vec<Result<Request, RequestError>> {
    let mut out = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        if line.len() > MAX_REQUEST {
            out.push(Err(RequestError::TooLong));
        } else if !line.iter().all(u8::is_ascii_whitespace) {
            out.push(Request::parse(line.strip_suffix(b"\r").unwrap_or(line)));
        }
    }
    out
}

fn request_holds(req: &Request) {
    assert!(!req.verb.is_empty());
    for w in std::iter::once(&req.verb).chain(&req.args) {
        assert!(!w.is_empty() && !w.contains(char::is_whitespace), "{w:?}");
        assert!(!w.contains(|c: char| c.is_control()), "{w:?}");
    }
    if let Some(name) = &req.reply {
        // A bare name in RUN/reply, never a path.
        assert!(valid_reply_name(name), "{name:?}");
        assert!(
            !name.contains('/') && name != "." && name != "..",
            "{name:?}"
        );
    }
    // The line colonyctl would write reads back as the same request.
    let line = req.to_line();
    assert!(line.len() <= MAX_REQUEST + 1, "{} bytes", line.len());
    let back = Request::parse(line.trim_end_matches('\n').as_bytes());
    assert_eq!(back.as_ref(), Ok(req), "{line:?}");
}

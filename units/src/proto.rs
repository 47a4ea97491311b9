//! The control protocol between colonyctl (or a shell) and colony-init.
//!
//! A request is one line of at most [`MAX_REQUEST`] bytes written in one `write(2)` to
//! `RUN/control`, whitespace-separated words:
//!
//! ```text
//! [reply=NAME] VERB [ARG...]
//! ```
//!
//! `echo 'restart redis' > RUN/control` is a request without a reply. With `reply=NAME`,
//! colony-init opens the FIFO `RUN/reply/NAME` (a bare name, never a path) and writes one
//! JSON [`Reply`] to it, then closes it. Verbs: `status [TARGET...]`, `start|stop|restart
//! [--no-block] TARGET...`, `restart-all`, `reload`, `signal SIGNAL TARGET...`, `timers`,
//! `info` (paths), `poweroff|reboot|halt`.

use serde::{Deserialize, Serialize};

/// PIPE_BUF: a request of at most this many bytes is written atomically.
pub const MAX_REQUEST: usize = 4096;

/// Exit codes of colonyctl (SPEC.md).
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const NOT_RUNNING: i32 = 3;
    pub const NO_SUCH_UNIT: i32 = 4;
    pub const NO_ANSWER: i32 = 5;
}

/// A parsed request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub reply: Option<String>,
    pub verb: String,
    pub args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request is longer than {MAX_REQUEST} bytes")]
    TooLong,
    #[error("request is not valid UTF-8")]
    NotUtf8,
    #[error("request has control characters")]
    Control,
    #[error("empty request")]
    Empty,
    #[error("bad reply name {0:?}: a bare file name in RUN/reply is expected")]
    BadReplyName(String),
}

/// A reply FIFO name: a bare file name, no `/`, not `.`/`..`, printable ASCII.
pub fn valid_reply_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Request {
    /// Parse one line (without its newline).
    pub fn parse(line: &[u8]) -> Result<Request, RequestError> {
        if line.len() > MAX_REQUEST {
            return Err(RequestError::TooLong);
        }
        let text = std::str::from_utf8(line).map_err(|_| RequestError::NotUtf8)?;
        if text
            .chars()
            .any(|c| c.is_control() && c != '\t' && c != '\r')
        {
            return Err(RequestError::Control);
        }
        let mut words = text.split_whitespace().peekable();
        let mut reply = None;
        if let Some(first) = words.peek() {
            if let Some(name) = first.strip_prefix("reply=") {
                if !valid_reply_name(name) {
                    return Err(RequestError::BadReplyName(name.to_string()));
                }
                reply = Some(name.to_string());
                words.next();
            }
        }
        let verb = words.next().ok_or(RequestError::Empty)?.to_string();
        Ok(Request {
            reply,
            verb,
            args: words.map(str::to_string).collect(),
        })
    }

    /// The line to write (with a trailing newline).
    pub fn to_line(&self) -> String {
        let mut s = String::new();
        if let Some(r) = &self.reply {
            s.push_str("reply=");
            s.push_str(r);
            s.push(' ');
        }
        s.push_str(&self.verb);
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s.push('\n');
        s
    }
}

/// The one JSON document written to a reply FIFO.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Reply {
    pub ok: bool,
    /// colonyctl's exit code for this answer (see [`exit`]).
    pub code: i32,
    /// One line for the user when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Verb-specific payload: `status` -> `[UnitStatus]`, `timers` -> `[TimerStatus]`,
    /// `info` -> [`Info`].
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Reply {
    /// Success with a payload (`serde_json::Value::Null` for none).
    pub fn ok(data: serde_json::Value) -> Reply {
        Reply {
            ok: true,
            code: exit::OK,
            error: None,
            data,
        }
    }

    /// A refusal or failure: `code` from [`exit`], `error` one line saying what to do.
    pub fn error(code: i32, error: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            code,
            error: Some(error.into()),
            data: serde_json::Value::Null,
        }
    }

    /// The bytes for the reply FIFO: the JSON document and a newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = serde_json::to_vec(self).unwrap_or_else(|e| {
            // Not reachable for these types; PID 1 still must not panic on it.
            format!(r#"{{"ok":false,"code":1,"error":"cannot encode the reply: {e}"}}"#)
                .into_bytes()
        });
        b.push(b'\n');
        b
    }
}

/// How a unit last ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct LastExit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// e.g. "SIGKILL".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// oom, heartbeat, watchdog, health, ready_timeout, stopped, timeout, exec
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Detail, e.g. the exec error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HeartbeatStatus {
    pub file: String,
    /// Age of the last beat (file mtime), null if never.
    pub age_ms: Option<u64>,
}

/// One entry of `status --json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct UnitStatus {
    pub name: String,
    /// stopped starting running stopping backoff exited failed waiting invalid
    pub state: String,
    pub pid: Option<i32>,
    pub restarts: u64,
    /// RFC 3339: when it entered this state.
    pub since: String,
    pub last_exit: Option<LastExit>,
    pub ready: bool,
    pub health: Option<String>,
    pub status_text: Option<String>,
    pub cgroup: Option<String>,
    pub memory_bytes: Option<u64>,
    pub cpu_usec: Option<u64>,
    pub tasks: Option<u64>,
    pub error: Option<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
    pub enabled: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<HeartbeatStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where its output goes (for `colonyctl logs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_file: Option<String>,
}

/// One entry of `timers --json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct TimerStatus {
    pub name: String,
    pub schedule: String,
    pub next: Option<String>,
    pub last: Option<String>,
    /// e.g. "exit 0 in 1.2s", "SIGKILL in 3s", null before the first run.
    pub last_result: Option<String>,
    pub skipped: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_skip: Option<String>,
    pub running: bool,
}

/// `info`: where this colony-init keeps things.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Info {
    pub pid: i32,
    pub units_dir: String,
    pub run_dir: String,
    pub log_dir: String,
    pub state_dir: String,
    /// "machine", "container", "plain", "entrypoint"
    pub mode: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shell_request() {
        let r = Request::parse(b"restart redis").unwrap();
        assert_eq!(r.verb, "restart");
        assert_eq!(r.args, vec!["redis"]);
        assert_eq!(r.reply, None);
    }

    #[test]
    fn parses_reply_and_round_trips() {
        let r = Request::parse(b"reply=c-1.2 status a @web").unwrap();
        assert_eq!(r.reply.as_deref(), Some("c-1.2"));
        assert_eq!(
            Request::parse(r.to_line().trim_end().as_bytes()).unwrap(),
            r
        );
    }

    #[test]
    fn reply_helpers_round_trip() {
        let r = Reply::error(exit::NO_SUCH_UNIT, "no such unit x");
        let back: Reply = serde_json::from_slice(&r.to_bytes()).unwrap();
        assert_eq!(back, r);
        assert!(!back.ok);
        let r = Reply::ok(serde_json::json!([1, 2]));
        assert!(r.to_bytes().ends_with(b"]}\n"));
        assert_eq!(serde_json::from_slice::<Reply>(&r.to_bytes()).unwrap(), r);
    }

    #[test]
    fn rejects_hostile_reply_names_and_garbage() {
        for bad in [
            "reply=../x status",
            "reply=/etc/shadow status",
            "reply=.. status",
        ] {
            assert!(Request::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(Request::parse(b"\xff\xfe"), Err(RequestError::NotUtf8));
        assert_eq!(Request::parse(b"   "), Err(RequestError::Empty));
        assert_eq!(Request::parse(&[b'a'; 5000]), Err(RequestError::TooLong));
        assert_eq!(Request::parse(b"status\x00x"), Err(RequestError::Control));
    }
}

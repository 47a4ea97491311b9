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
//! [--no-block] TARGET...`, `restart-all`, `reload`, `reload-unit
//! TARGET...`, `signal SIGNAL TARGET...`, `timers`,
//! `info` (paths), `poweroff|reboot|halt`, `subscribe` (the event stream: the reply FIFO
//! stays open, a [`Subscribed`] line then one [`Event`] line per state change).

use serde::{Deserialize, Serialize};

/// The control FIFO's name in RUN.
pub const CONTROL_FIFO: &str = "control";

/// The directory in RUN that holds the clients' reply FIFOs.
pub const REPLY_DIR: &str = "reply";

/// PIPE_BUF: a request of at most this many bytes is written atomically.
pub const MAX_REQUEST: usize = 4096;

/// Exit codes of colonyctl (colonyctl(1), EXIT STATUS).
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const NOT_RUNNING: i32 = 3;
    pub const NO_SUCH_UNIT: i32 = 4;
    pub const NO_ANSWER: i32 = 5;
}

/// Declares [`Verb`] from one list of `Variant => "word"`, so the enum, its words and
/// [`Verb::ALL`] cannot disagree.
macro_rules! verbs {
    ($($(#[$doc:meta])* $v:ident => $word:literal,)*) => {
        /// What a request asks colony-init to do: the first word of the line (after
        /// `reply=NAME`). colonyctl writes it and colony-init reads it through this one type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Verb {
            $($(#[$doc])* $v,)*
        }

        impl Verb {
            /// Every verb, in the order declared.
            pub const ALL: &'static [Verb] = &[$(Verb::$v,)*];

            /// The word on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Verb::$v => $word,)*
                }
            }
        }
    };
}

verbs! {
    /// `status [TARGET...]`
    Status => "status",
    /// `start [--no-block] TARGET...`
    Start => "start",
    /// `stop [--no-block] TARGET...`
    Stop => "stop",
    /// `restart [--no-block] TARGET...`
    Restart => "restart",
    /// `restart-all`
    RestartAll => "restart-all",
    /// `reload`: read the units directory again.
    Reload => "reload",
    /// `reload-unit [--no-block] TARGET...`: run each unit's `exec_reload` (`colonyctl reload
    /// NAME`); answered once the unit is ready again.
    ReloadUnit => "reload-unit",
    /// `signal SIGNAL TARGET...`
    Signal => "signal",
    /// `timers`
    Timers => "timers",
    /// `info`: where this colony-init keeps things ([`Info`]).
    Info => "info",
    /// `subscribe`: the reply FIFO stays open; first a [`Subscribed`] line (the status of
    /// every unit), then one [`Event`] line per state change.
    Subscribe => "subscribe",
    /// `poweroff` (PID 1 of a machine only).
    Poweroff => "poweroff",
    /// `reboot` (PID 1 of a machine only).
    Reboot => "reboot",
    /// `halt` (PID 1 of a machine only).
    Halt => "halt",
    /// `reexec [--binary PATH]`: hand everything to a new image of colony-init (answered
    /// by the new image once it took over; a refusal by the running one).
    Reexec => "reexec",
    /// `version`: the running colony-init's version, when it started and was re-executed.
    Version => "version",
    /// Debug builds of colony-init only: panic while handling it, to prove in a test that a
    /// panic is caught and the loop goes on. A release build answers it as unknown.
    Panic => "__panic",
}

impl std::str::FromStr for Verb {
    type Err = UnknownVerb;

    fn from_str(s: &str) -> Result<Verb, UnknownVerb> {
        Verb::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownVerb(s.to_string()))
    }
}

impl std::fmt::Display for Verb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that is no [`Verb`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown command {0:?}; see colonyctl --help")]
pub struct UnknownVerb(pub String);

/// A parsed request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub reply: Option<String>,
    pub verb: Verb,
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
    /// The line is well formed but its verb is unknown; `reply` is kept so the client can
    /// be told.
    #[error("{verb}")]
    UnknownVerb {
        reply: Option<String>,
        verb: UnknownVerb,
    },
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
        let word = words.next().ok_or(RequestError::Empty)?;
        let verb = word.parse().map_err(|verb| RequestError::UnknownVerb {
            reply: reply.clone(),
            verb,
        })?;
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
        s.push_str(self.verb.as_str());
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
    /// `info` -> [`Info`], a failed `start`/`restart` -> `[StartFailure]`.
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
    /// While `stopping`: processes of a unit without a cgroup that escaped its process
    /// group (e.g. a `setsid` daemon), killed and not gone yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leftover_pids: Vec<i32>,
}

/// `data` of a `start`/`restart` reply that failed: one entry per unit that did not come
/// up. Small on purpose: colonyctl reads the last lines from `log_file` itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct StartFailure {
    pub name: String,
    /// Its state now (`backoff`, `failed`, `stopped`...).
    pub state: String,
    pub last_exit: Option<LastExit>,
    /// Where its output goes.
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

/// The first line of a subscription: `status` of every unit, and how many events this
/// reply FIFO lost when it was last dropped for not reading (0 for a new subscriber).
/// A [`Reply`] too (its extra field ignored).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Subscribed {
    pub ok: bool,
    pub code: i32,
    #[serde(default)]
    pub data: Vec<UnitStatus>,
    #[serde(default)]
    pub lost: u64,
}

/// One state change on the event stream (each line after [`Subscribed`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Event {
    /// RFC 3339.
    pub time: String,
    pub unit: String,
    /// The state it left (`null`: the unit is new).
    pub from: Option<String>,
    /// The state it entered (`null`: the unit is gone, its file removed).
    pub to: Option<String>,
    pub pid: Option<i32>,
    /// How its process ended, or why it is in `to`.
    pub reason: Option<String>,
    pub restarts: u64,
}

/// Bounds of the event stream.
pub mod events {
    /// Subscribers at once; one more is refused.
    pub const MAX_SUBSCRIBERS: usize = 16;
    /// Bytes of events that may wait for one subscriber (beyond its first line) before it
    /// is dropped.
    pub const BACKLOG: usize = 256 * 1024;
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
        assert_eq!(r.verb, Verb::Restart);
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
    fn every_verb_round_trips_and_parses() {
        for &v in Verb::ALL {
            assert_eq!(v.as_str().parse::<Verb>(), Ok(v));
            assert_eq!(v.to_string(), v.as_str());
            let r = Request {
                reply: Some("c-1".into()),
                verb: v,
                args: vec!["a".into()],
            };
            assert_eq!(Request::parse(r.to_line().trim_end().as_bytes()), Ok(r));
            let bare = Request::parse(v.as_str().as_bytes()).unwrap();
            assert_eq!((bare.verb, bare.reply), (v, None));
        }
        let words: std::collections::HashSet<_> = Verb::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(words.len(), Verb::ALL.len(), "two verbs share a word");
    }

    #[test]
    fn unknown_verb_keeps_the_reply_name() {
        assert_eq!(
            Request::parse(b"reply=c-9 stpo web"),
            Err(RequestError::UnknownVerb {
                reply: Some("c-9".into()),
                verb: UnknownVerb("stpo".into()),
            })
        );
        assert_eq!(
            Request::parse(b"Status"),
            Err(RequestError::UnknownVerb {
                reply: None,
                verb: UnknownVerb("Status".into()),
            })
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

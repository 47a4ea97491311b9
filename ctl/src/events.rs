//! `colonyctl events [--json] [TARGET...]`: the event stream of colony-init, as `docker
//! events` prints Docker's. One line per state change, as it happens, until Ctrl-C.

use std::collections::HashSet;
use std::io::Write;

use units::proto::{exit, Event, Subscribed};

use crate::client::Client;
use crate::CliError;

/// Which units' events to print: all, or those named (NAME, NAME.unit) or tagged (@TAG,
/// as the status at the start of the stream tags them).
struct Filter {
    names: HashSet<String>,
    tags: HashSet<String>,
    /// Units that had a tag of `tags` at the start.
    tagged: HashSet<String>,
}

impl Filter {
    fn new(targets: &[String]) -> Filter {
        let mut f = Filter {
            names: HashSet::new(),
            tags: HashSet::new(),
            tagged: HashSet::new(),
        };
        for t in targets {
            match t.strip_prefix('@') {
                Some(tag) => f.tags.insert(tag.to_string()),
                None => f
                    .names
                    .insert(t.strip_suffix(".unit").unwrap_or(t).to_string()),
            };
        }
        f
    }

    fn all(&self) -> bool {
        self.names.is_empty() && self.tags.is_empty()
    }

    fn learn(&mut self, s: &Subscribed) {
        for u in &s.data {
            if u.tags.iter().any(|t| self.tags.contains(t)) {
                self.tagged.insert(u.name.clone());
            }
        }
    }

    fn wants(&self, unit: &str) -> bool {
        self.all() || self.names.contains(unit) || self.tagged.contains(unit)
    }
}

/// One event as a line: `TIME UNIT FROM -> TO [pid N] [restarts N] [(REASON)]`.
pub fn text(e: &Event) -> String {
    let mut s = format!(
        "{} {} {} -> {}",
        e.time,
        e.unit,
        e.from.as_deref().unwrap_or("(new)"),
        e.to.as_deref().unwrap_or("(removed)")
    );
    if let Some(p) = e.pid {
        s.push_str(&format!(" pid {p}"));
    }
    if e.restarts > 0 {
        s.push_str(&format!(" restarts {}", e.restarts));
    }
    if let Some(r) = &e.reason {
        s.push_str(&format!(" ({r})"));
    }
    s
}

/// Print events until Ctrl-C (exit 0) or colony-init ends (exit 5). A stream colony-init
/// dropped because we did not keep up is taken up again at once, saying how many events
/// were lost.
pub fn run(client: &Client, targets: &[String], json: bool) -> Result<i32, CliError> {
    let mut filter = Filter::new(targets);
    let mut name: Option<String> = None;
    loop {
        let mut first = true;
        let mut failure = None;
        let r = client.subscribe(name.as_deref(), |line| {
            if std::mem::take(&mut first) {
                match serde_json::from_slice::<Subscribed>(line) {
                    Ok(s) if s.ok => {
                        if s.lost > 0 {
                            eprintln!("colonyctl: {} events were lost (not read in time)", s.lost);
                        }
                        filter.learn(&s);
                    }
                    Ok(_) | Err(_) => {
                        let r: Result<units::proto::Reply, _> = serde_json::from_slice(line);
                        failure = Some(match r {
                            Ok(r) => crate::reply_error(&r),
                            Err(e) => CliError::failed(format!(
                                "colony-init's answer is not understood ({e}); is colonyctl the same version?"
                            )),
                        });
                        return false;
                    }
                }
                return true;
            }
            let Ok(e) = serde_json::from_slice::<Event>(line) else {
                return true;
            };
            if !filter.wants(&e.unit) {
                return true;
            }
            let mut out = std::io::stdout().lock();
            let w = if json {
                out.write_all(line)
            } else {
                writeln!(out, "{}", text(&e))
            };
            // The reader went away (`| head`): done.
            w.and_then(|()| out.flush()).is_ok()
        });
        match r {
            Ok(n) => {
                if let Some(f) = failure {
                    return Err(f);
                }
                if first {
                    // Closed before the first line: colony-init ended.
                    return Err(CliError::new(
                        exit::NO_ANSWER,
                        "colony-init closed the event stream",
                    ));
                }
                // Dropped (we were slow) or colony-init ended: try again under the same
                // name, to be told what was lost.
                name = Some(n);
            }
            Err(e) if e.code > 128 => return Ok(exit::OK),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_line_says_the_move_and_why() {
        let e = Event {
            time: "2026-12-05T05:00:00Z".into(),
            unit: "web".into(),
            from: Some("running".into()),
            to: Some("backoff".into()),
            pid: None,
            reason: Some("killed by SIGKILL".into()),
            restarts: 2,
        };
        assert_eq!(
            text(&e),
            "2026-12-05T05:00:00Z web running -> backoff restarts 2 (killed by SIGKILL)"
        );
    }

    #[test]
    fn filter_by_name_and_tag() {
        let mut f = Filter::new(&["a.unit".into(), "@db".into()]);
        f.learn(&Subscribed {
            ok: true,
            data: vec![units::proto::UnitStatus {
                name: "pg".into(),
                tags: vec!["db".into()],
                ..Default::default()
            }],
            ..Default::default()
        });
        assert!(f.wants("a") && f.wants("pg") && !f.wants("b"));
        assert!(Filter::new(&[]).wants("anything"));
    }
}

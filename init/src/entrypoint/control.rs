//! Entrypoint mode's control FIFO (only with `--run-dir` or `COLONY_RUN_DIR`): `version`
//! and `reexec [--binary PATH]`, so a container's colony-init can be upgraded in place with
//! CMD running on. Every other request is answered with an error: there are no units.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::SystemTime;

use units::proto::{self, Reply, Request, Verb};

use crate::control::ControlFifo;
use crate::handover::{self, EntrypointSnap, KeptFd, Role, State};

pub(super) struct Control {
    fifo: ControlFifo,
    started: SystemTime,
    reexecuted: Option<SystemTime>,
    reexecs: u64,
}

impl Control {
    /// The FIFO in `run_dir` (made, or `kept` from the previous image); `None` when it
    /// cannot be made (said on stderr: CMD runs regardless).
    pub(super) fn open(
        run_dir: &Path,
        kept: Option<OwnedFd>,
        st: Option<&State>,
    ) -> Option<Control> {
        let fifo = match kept {
            Some(fd) => ControlFifo::adopt(run_dir, fd),
            None => ControlFifo::create(run_dir, None),
        };
        match fifo {
            Ok(fifo) => Some(Control {
                fifo,
                started: st.and_then(|s| s.started).unwrap_or_else(SystemTime::now),
                reexecuted: st.and_then(|s| s.reexecuted),
                reexecs: st.map_or(0, |s| s.reexecs),
            }),
            Err(e) => {
                eprintln!("colony-init: no control FIFO ({e}): reexec and version are off");
                None
            }
        }
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fifo.fd()
    }

    fn version(&self) -> serde_json::Value {
        let t = crate::core::rfc3339;
        serde_json::json!({
            "version": crate::version(),
            "started": t(self.started),
            "reexecuted": self.reexecuted.map(t),
            "reexecs": self.reexecs,
            "pid": std::process::id(),
        })
    }

    /// Answer one reply FIFO with what its pipe takes at once (replies here are small).
    pub(super) fn reply(&mut self, name: &str, r: &Reply) {
        if let Ok(mut w) = self.fifo.open_reply(name) {
            w.set_reply(r);
            let _ = w.write_some();
        }
        self.fifo.keep_reserve();
    }

    /// The new image answers the reexec that made it.
    pub(super) fn answer_reexec(&mut self, st: &State) {
        if let Some(name) = &st.reply {
            let r = Reply::ok(self.version());
            self.reply(name, &r);
        }
    }

    /// Read and answer what is in the FIFO; a reexec that goes through does not return.
    pub(super) fn on_readable(&mut self, snap: impl Fn() -> EntrypointSnap) {
        for req in self.fifo.read_requests() {
            let Ok(req) = req else { continue };
            let answer = match req.verb {
                Verb::Version => Reply::ok(self.version()),
                Verb::Reexec => self.reexec(&req, snap()),
                v => Reply::error(
                    proto::exit::FAILED,
                    format!(
                        "colony-init runs one command here (entrypoint mode): {v} is not available"
                    ),
                ),
            };
            if let Some(name) = req.reply.as_deref() {
                self.reply(name, &answer);
            }
        }
    }

    fn reexec(&mut self, req: &Request, snap: EntrypointSnap) -> Reply {
        let refuse = |e: String| {
            eprintln!("colony-init: reexec refused: {e}");
            Reply::error(proto::exit::FAILED, format!("reexec refused: {e}"))
        };
        let args: Vec<&str> = req.args.iter().map(String::as_str).collect();
        let binary = match handover::target(&args) {
            Ok(b) => b,
            Err(e) => return Reply::error(proto::exit::USAGE, e),
        };
        if let Err(e) = handover::executable(&binary) {
            return refuse(e);
        }
        let fd = self.fifo.fd().as_raw_fd();
        let state = State {
            version: handover::VERSION,
            writer: crate::version(),
            started: Some(self.started),
            reexecuted: Some(SystemTime::now()),
            reexecs: self.reexecs + 1,
            fds: vec![KeptFd {
                fd,
                role: Role::Control,
            }],
            reply: req.reply.clone(),
            control_partial: self.fifo.partial().to_vec(),
            entrypoint: Some(snap),
            ..State::default()
        };
        let memfd = match handover::to_memfd(&state) {
            Ok(m) => m,
            Err(e) => return refuse(format!("cannot write the handover state: {e}")),
        };
        let _ = handover::set_keep(self.fifo.fd(), true);
        if let Err(e) = handover::run_check(&binary, memfd.as_raw_fd()) {
            let _ = handover::set_keep(self.fifo.fd(), false);
            return refuse(e);
        }
        let err = handover::exec_with_state(&binary, memfd.as_fd().as_raw_fd());
        let _ = handover::set_keep(self.fifo.fd(), false);
        refuse(format!("exec {}: {err}", binary.display()))
    }
}

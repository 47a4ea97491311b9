//! The event stream's subscribers: reply FIFOs kept open, written without ever blocking.
//!
//! Each subscriber has its first line (the status of every unit) and then a queue of event
//! lines, written as its pipe takes them. One whose queue of events grows past
//! [`events::BACKLOG`] bytes does not keep up: it is dropped (its FIFO closed, so its client
//! reads EOF), and its reply FIFO's name is remembered with how far the stream was, so a
//! subscription again under that name is told how many events it lost. At most
//! [`events::MAX_SUBSCRIBERS`] at once.
//!
//! The loop registers each fd in its epoll: for `EPOLLOUT` while something waits to be
//! written, else for nothing (a FIFO's writer still gets `EPOLLERR` when its reader closes),
//! so an idle subscriber costs no wakeup. A `colonyctl reexec` hands them over
//! ([`Subscribers::snapshot`], [`Subscribers::restore`]): each FIFO stays open across exec
//! with what it has not been written yet, and the stream goes on from the new image. Any
//! other restart of the loop closes every stream, and clients subscribe again.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

use nix::errno::Errno;
use units::proto::events;

/// Dropped subscribers remembered for their `lost` count.
const REMEMBERED: usize = 64;

/// What the loop should do with a subscriber's epoll registration.
#[derive(Debug, PartialEq, Eq)]
pub enum Interest {
    /// Bytes wait: register for `EPOLLOUT`.
    Out,
    /// All written: register for nothing (only `EPOLLERR`, when its reader goes).
    Idle,
}

/// Why a subscriber was taken out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// Its client closed the FIFO.
    Closed,
    /// It did not keep up; this many events were lost.
    Dropped(u64),
}

/// A subscriber taken out: unregister and close `fd`.
#[derive(Debug)]
pub struct Removed {
    pub token: u64,
    pub name: String,
    pub fd: OwnedFd,
    pub why: Gone,
}

#[derive(Debug)]
struct Sub {
    token: u64,
    name: String,
    fd: OwnedFd,
    /// Lines to write, oldest first (the first line, then events).
    queue: VecDeque<Vec<u8>>,
    /// Bytes of the front line already written.
    done: usize,
    /// Event bytes queued (the first line aside).
    backlog: usize,
    /// Event lines queued.
    events: u64,
    /// The first line is not fully written yet.
    first_pending: bool,
    /// Registered for `EPOLLOUT` now.
    out: bool,
}

impl Sub {
    /// Write what the pipe takes. `Ok(true)`: nothing waits any more.
    fn flush(&mut self) -> io::Result<bool> {
        while let Some(line) = self.queue.front() {
            match nix::unistd::write(&self.fd, &line[self.done..]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.done += n;
                    if self.done == line.len() {
                        if self.first_pending {
                            self.first_pending = false;
                        } else {
                            self.backlog -= line.len();
                            self.events -= 1;
                        }
                        self.queue.pop_front();
                        self.done = 0;
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Ok(false),
                Err(e) => return Err(io::Error::from_raw_os_error(e as i32)),
            }
        }
        Ok(true)
    }

    fn interest(&self) -> Interest {
        if self.queue.is_empty() {
            Interest::Idle
        } else {
            Interest::Out
        }
    }
}

/// Every subscriber, and the names of those dropped lately.
#[derive(Debug, Default)]
pub struct Subscribers {
    subs: Vec<Sub>,
    /// Events published so far.
    seq: u64,
    /// Dropped subscribers: reply FIFO name, `seq` of the first event it lost.
    dropped: VecDeque<(String, u64)>,
}

/// A change of a subscriber's epoll registration for the loop to make.
#[derive(Debug)]
pub enum Update {
    Modify { token: u64, interest: Interest },
    Remove(Removed),
}

/// A subscriber as a reexec hands it over: its FIFO by fd number (kept open across exec)
/// and the lines not written yet, the first of them possibly cut where a write stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubSnap {
    pub name: String,
    pub fd: RawFd,
    pub queue: Vec<Vec<u8>>,
    /// The front of `queue` is (the rest of) its first line, not an event.
    pub first_pending: bool,
}

/// Every subscriber, the count of events published, the dropped ones remembered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubscribersSnap {
    pub subs: Vec<SubSnap>,
    pub seq: u64,
    pub dropped: Vec<(String, u64)>,
}

impl Subscribers {
    pub fn new() -> Self {
        Self::default()
    }

    /// What a new image needs to go on with every stream.
    pub fn snapshot(&self) -> SubscribersSnap {
        SubscribersSnap {
            subs: self
                .subs
                .iter()
                .map(|s| SubSnap {
                    name: s.name.clone(),
                    fd: s.fd.as_raw_fd(),
                    queue: s
                        .queue
                        .iter()
                        .enumerate()
                        .map(|(i, l)| {
                            if i == 0 {
                                l[s.done..].to_vec()
                            } else {
                                l.clone()
                            }
                        })
                        .collect(),
                    first_pending: s.first_pending,
                })
                .collect(),
            seq: self.seq,
            dropped: self.dropped.iter().cloned().collect(),
        }
    }

    /// The subscribers of a snapshot; `adopt` owns each one's fd and gives it a token (None:
    /// that stream is gone). Returns each kept one's token and the registration it needs.
    pub fn restore(
        snap: SubscribersSnap,
        mut adopt: impl FnMut(&SubSnap) -> Option<(u64, OwnedFd)>,
    ) -> (Self, Vec<(u64, Interest)>) {
        let mut out = Subscribers {
            subs: Vec::new(),
            seq: snap.seq,
            dropped: snap
                .dropped
                .into_iter()
                .rev()
                .take(REMEMBERED)
                .rev()
                .collect(),
        };
        let mut regs = Vec::new();
        for s in snap.subs.into_iter().take(events::MAX_SUBSCRIBERS) {
            let Some((token, fd)) = adopt(&s) else {
                continue;
            };
            let queue: VecDeque<Vec<u8>> = s.queue.into_iter().filter(|l| !l.is_empty()).collect();
            let first_pending = s.first_pending && !queue.is_empty();
            let events_from = usize::from(first_pending);
            let sub = Sub {
                token,
                name: s.name,
                fd,
                backlog: queue.iter().skip(events_from).map(Vec::len).sum(),
                events: queue.len().saturating_sub(events_from) as u64,
                queue,
                done: 0,
                first_pending,
                out: false,
            };
            let interest = sub.interest();
            out.subs.push(Sub {
                out: interest == Interest::Out,
                ..sub
            });
            regs.push((token, interest));
        }
        (out, regs)
    }

    pub fn len(&self) -> usize {
        self.subs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.subs.len() >= events::MAX_SUBSCRIBERS
    }

    /// How many events the reply FIFO `name` lost when it was last dropped (forgotten once
    /// asked); 0 if it was not.
    pub fn take_lost(&mut self, name: &str) -> u64 {
        match self.dropped.iter().position(|(n, _)| n == name) {
            Some(i) => {
                let (_, from) = self.dropped.remove(i).unwrap_or_default();
                self.seq.saturating_sub(from)
            }
            None => 0,
        }
    }

    /// Take in a subscriber (the caller checked [`is_full`](Self::is_full)) and write its
    /// first line as far as the pipe takes it. `Err`: its client is gone already.
    pub fn add(
        &mut self,
        token: u64,
        name: String,
        fd: OwnedFd,
        first: Vec<u8>,
    ) -> Result<Interest, io::Error> {
        let mut s = Sub {
            token,
            name,
            fd,
            queue: VecDeque::from([first]),
            done: 0,
            backlog: 0,
            events: 0,
            first_pending: true,
            out: false,
        };
        s.flush()?;
        let i = s.interest();
        s.out = i == Interest::Out;
        self.subs.push(s);
        Ok(i)
    }

    /// The fd of subscriber `token`, to register it.
    pub fn fd(&self, token: u64) -> Option<BorrowedFd<'_>> {
        self.subs
            .iter()
            .find(|s| s.token == token)
            .map(|s| s.fd.as_fd())
    }

    /// Count `n` events published (also with no subscriber: the dropped ones' `lost`).
    pub fn count(&mut self, n: u64) {
        self.seq += n;
    }

    /// Queue one event line (counted already with [`count`](Self::count)) for every
    /// subscriber and write what each pipe takes; returns the registrations to change.
    pub fn publish(&mut self, line: &[u8]) -> Vec<Update> {
        let mut updates = Vec::new();
        let mut i = 0;
        while i < self.subs.len() {
            let s = &mut self.subs[i];
            s.queue.push_back(line.to_vec());
            s.backlog += line.len();
            s.events += 1;
            if s.backlog > events::BACKLOG {
                let lost = s.events;
                updates.push(Update::Remove(self.remove_at(i, Gone::Dropped(lost))));
                continue;
            }
            if !s.out {
                match s.flush() {
                    Ok(_) => {
                        if s.interest() == Interest::Out {
                            s.out = true;
                            updates.push(Update::Modify {
                                token: s.token,
                                interest: Interest::Out,
                            });
                        }
                    }
                    Err(_) => {
                        updates.push(Update::Remove(self.remove_at(i, Gone::Closed)));
                        continue;
                    }
                }
            }
            i += 1;
        }
        updates
    }

    /// Its fd is writable, or reported an error (`err`: the client closed it).
    pub fn on_ready(&mut self, token: u64, err: bool) -> Option<Update> {
        let i = self.subs.iter().position(|s| s.token == token)?;
        let s = &mut self.subs[i];
        let flushed = if err {
            Err(io::ErrorKind::BrokenPipe.into())
        } else {
            s.flush()
        };
        match flushed {
            Ok(true) if s.out => {
                s.out = false;
                Some(Update::Modify {
                    token,
                    interest: Interest::Idle,
                })
            }
            Ok(_) => None,
            Err(_) => Some(Update::Remove(self.remove_at(i, Gone::Closed))),
        }
    }

    fn remove_at(&mut self, i: usize, why: Gone) -> Removed {
        let s = self.subs.remove(i);
        if let Gone::Dropped(lost) = why {
            if self.dropped.len() >= REMEMBERED {
                self.dropped.pop_front();
            }
            self.dropped.retain(|(n, _)| *n != s.name);
            self.dropped
                .push_back((s.name.clone(), self.seq.saturating_sub(lost)));
        }
        Removed {
            token: s.token,
            name: s.name,
            fd: s.fd,
            why,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn pipe() -> (std::fs::File, OwnedFd) {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK).expect("pipe");
        (std::fs::File::from(r), w)
    }

    fn read_all(r: &mut std::fs::File) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        out
    }

    #[test]
    fn a_reader_gets_the_first_line_then_every_event() {
        let mut subs = Subscribers::new();
        let (mut r, w) = pipe();
        assert_eq!(
            subs.add(1, "c".into(), w, b"first\n".to_vec()).unwrap(),
            Interest::Idle
        );
        subs.count(2);
        assert!(subs.publish(b"e1\n").is_empty());
        assert!(subs.publish(b"e2\n").is_empty());
        assert_eq!(read_all(&mut r), b"first\ne1\ne2\n");
    }

    #[test]
    fn one_that_does_not_read_is_dropped_and_told_what_it_lost() {
        let mut subs = Subscribers::new();
        let (_r, w) = pipe();
        subs.add(1, "slow".into(), w, b"first\n".to_vec()).unwrap();
        let line = vec![b'x'; 1023];
        let mut line = line;
        line.push(b'\n');
        let mut removed = None;
        let mut sent = 0u64;
        // The pipe (64 KiB) fills, then the backlog: bounded, never blocking.
        for _ in 0..1000 {
            subs.count(1);
            sent += 1;
            for u in subs.publish(&line) {
                if let Update::Remove(r) = u {
                    removed = Some(r);
                }
            }
            if removed.is_some() {
                break;
            }
        }
        let removed = removed.expect("dropped");
        let Gone::Dropped(lost) = removed.why else {
            panic!("{:?}", removed.why)
        };
        assert!(lost > 200 && lost < sent, "{lost} of {sent}");
        assert!(subs.is_empty());
        subs.count(5);
        assert_eq!(subs.take_lost("slow"), lost + 5);
        assert_eq!(subs.take_lost("slow"), 0, "told once");
    }

    #[test]
    fn a_snapshot_goes_on_where_the_writes_stopped() {
        let (mut r, w) = pipe();
        let mut subs = Subscribers::new();
        subs.count(5);
        subs.add(1, "f".into(), w, b"first\n".to_vec()).unwrap();
        assert_eq!(read_all(&mut r), b"first\n");
        subs.count(1);
        subs.publish(b"e1\n");
        // A line half written: its rest comes first from the restored stream.
        subs.subs[0].queue.push_back(b"e2\n".to_vec());
        subs.subs[0].done = 1;
        let snap = subs.snapshot();
        assert_eq!(snap.subs[0].queue, vec![b"2\n".to_vec()]);
        let fds: Vec<OwnedFd> = subs.subs.drain(..).map(|s| s.fd).collect();
        let mut fds = fds.into_iter();
        let (mut back, regs) = Subscribers::restore(snap, |_| Some((7, fds.next()?)));
        assert_eq!(regs, vec![(7, Interest::Out)]);
        assert_eq!(back.seq, 6);
        assert_eq!(back.on_ready(7, false).map(|_| ()), Some(()));
        back.count(1);
        back.publish(b"e3\n");
        assert_eq!(read_all(&mut r), b"e1\n2\ne3\n");
    }

    #[test]
    fn a_closed_reader_is_removed_as_closed() {
        let mut subs = Subscribers::new();
        let (r, w) = pipe();
        subs.add(7, "c".into(), w, b"first\n".to_vec()).unwrap();
        drop(r);
        subs.count(1);
        let u = subs.publish(b"e\n");
        assert!(matches!(
            &u[..],
            [Update::Remove(Removed {
                token: 7,
                why: Gone::Closed,
                ..
            })]
        ));
        assert_eq!(subs.take_lost("c"), 0);
    }
}

//! Real FIFOs in a temporary RUN directory: hostile reply FIFOs (symlinks, hard links,
//! non-FIFOs, paths), garbage on the control FIFO, slow and many clients.

use super::*;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};
use units::proto::{Reply, Verb};

fn run_dir() -> (tempfile::TempDir, ControlFifo) {
    let tmp = tempfile::tempdir().unwrap();
    let c = ControlFifo::create(&tmp.path().join("run"), None).unwrap();
    (tmp, c)
}

fn writer(c: &ControlFifo) -> OwnedFd {
    open(
        c.path(),
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .unwrap()
}

fn write_all(fd: &OwnedFd, mut data: &[u8]) {
    while !data.is_empty() {
        let n = nix::unistd::write(fd, data).unwrap();
        data = &data[n..];
    }
}

fn reply_fifo(run: &Path, name: &str) -> OwnedFd {
    let p = run.join("reply").join(name);
    mkfifo(&p, Mode::from_bits_truncate(0o600)).unwrap();
    open(
        &p,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .unwrap()
}

#[test]
fn creates_run_layout_with_modes_and_replaces_stale_fifo() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("a/run");
    let c = ControlFifo::create(&run, None).unwrap();
    let m = std::fs::symlink_metadata(run.join("control")).unwrap();
    assert!(m.file_type().is_fifo());
    assert_eq!(m.mode() & 0o7777, 0o600);
    assert_eq!(m.uid(), nix::unistd::geteuid().as_raw());
    let r = std::fs::symlink_metadata(run.join("reply")).unwrap();
    assert!(r.is_dir());
    assert_eq!(r.mode() & 0o7777, 0o1733);
    assert_eq!(
        std::fs::metadata(&run).unwrap().mode() & 0o7777,
        0o755,
        "RUN"
    );
    // A second colony-init on the same RUN is refused while the first reads it.
    assert!(matches!(
        ControlFifo::create(&run, None),
        Err(ControlError::Busy(_))
    ));
    drop(c);
    // Stale FIFO (nobody reads it) and a stray file are replaced; so are stale reply FIFOs.
    mkfifo(
        &run.join("reply/ctl-1-dead"),
        Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    std::fs::write(run.join("reply/not-a-fifo"), b"").unwrap();
    let c = ControlFifo::create(&run, None).unwrap();
    assert!(!run.join("reply/ctl-1-dead").exists());
    assert!(run.join("reply/not-a-fifo").exists());
    drop(c);
    std::fs::remove_file(run.join("control")).unwrap();
    std::fs::write(run.join("control"), b"junk").unwrap();
    let c = ControlFifo::create(&run, None).unwrap();
    assert!(std::fs::symlink_metadata(c.path())
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(matches!(
        ControlFifo::create(&tmp.path().join("b"), Some("no-such-group-colony")),
        Err(ControlError::NoSuchGroup(_))
    ));
}

#[test]
fn an_existing_run_dir_keeps_its_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("shared");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let _c = ControlFifo::create(&run, None).unwrap();
    assert_eq!(std::fs::metadata(&run).unwrap().mode() & 0o7777, 0o1777);
    // The reply directory is ours: it always gets 1733, even where the umask cut it.
    std::fs::set_permissions(run.join("reply"), std::fs::Permissions::from_mode(0o700)).unwrap();
    drop(_c);
    let _c = ControlFifo::create(&run, None).unwrap();
    assert_eq!(
        std::fs::metadata(run.join("reply")).unwrap().mode() & 0o7777,
        0o1733
    );
}

#[test]
fn control_group_makes_it_0620_and_group_owned() {
    let tmp = tempfile::tempdir().unwrap();
    let group = nix::unistd::Group::from_gid(nix::unistd::getegid())
        .unwrap()
        .unwrap();
    let c = ControlFifo::create(&tmp.path().join("run"), Some(&group.name)).unwrap();
    let m = std::fs::metadata(c.path()).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o620);
    assert_eq!(m.gid(), group.gid.as_raw());
}

#[test]
fn every_verb_is_read_from_the_fifo() {
    let (_t, mut c) = run_dir();
    let w = writer(&c);
    for &v in Verb::ALL {
        write_all(&w, format!("reply=c-1 {} a\n", v.as_str()).as_bytes());
        let got = c.read_requests();
        assert_eq!(got.len(), 1, "{v}: {got:?}");
        assert_eq!(got[0].as_ref().map(|r| r.verb), Ok(v));
    }
    // A misspelt verb is an error that still names the reply FIFO, so it can be answered.
    write_all(&w, b"reply=c-2 stpo a\n");
    assert!(matches!(
        &c.read_requests()[..],
        [Err(RequestError::UnknownVerb { reply: Some(r), .. })] if r == "c-2"
    ));
}

#[test]
fn parses_lines_from_shell_writes() {
    let (_t, mut c) = run_dir();
    let w = writer(&c);
    assert!(c.read_requests().is_empty(), "nothing written yet");
    write_all(&w, b"restart redis\nreply=c-1 status a @web\r\n\n   \n");
    let got = c.read_requests();
    assert_eq!(got.len(), 2, "{got:?}");
    let r0 = got[0].as_ref().unwrap();
    assert_eq!(
        (r0.verb, r0.args.clone()),
        (Verb::Restart, vec!["redis".to_string()])
    );
    let r1 = got[1].as_ref().unwrap();
    assert_eq!(r1.reply.as_deref(), Some("c-1"));
    assert_eq!(r1.args, vec!["a", "@web"]);
    // No newline: the end of the writes ends the request; it is not glued to the next one.
    write_all(&w, b"stop x");
    let got = c.read_requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].as_ref().unwrap().verb, Verb::Stop);
    write_all(&w, b"start y\n");
    assert_eq!(c.read_requests()[0].as_ref().unwrap().args, vec!["y"]);
    // The last writer closing is no EOF storm and no phantom request.
    drop(w);
    assert!(c.read_requests().is_empty());
}

#[test]
fn oversize_and_binary_lines_are_dropped_and_the_next_line_parses() {
    let (_t, mut c) = run_dir();
    let w = writer(&c);
    let mut data = vec![b'a'; 5000];
    data.push(b'\n');
    data.extend_from_slice(b"\xff\xfe\x00\x01garbage\n");
    data.extend_from_slice(b"status\x00evil\n");
    data.extend_from_slice(b"reply=../../etc/shadow status\n");
    data.extend_from_slice(b"status good\n");
    write_all(&w, &data);
    let got = c.read_requests();
    assert_eq!(
        got.iter()
            .map(|r| r.as_ref().err().cloned())
            .collect::<Vec<_>>(),
        vec![
            Some(RequestError::TooLong),
            Some(RequestError::NotUtf8),
            Some(RequestError::Control),
            Some(RequestError::BadReplyName("../../etc/shadow".into())),
            None
        ]
    );
    assert_eq!(got[4].as_ref().unwrap().args, vec!["good"]);

    // Exactly MAX_REQUEST is fine, one more byte is not.
    let mut ok = b"status ".to_vec();
    ok.resize(MAX_REQUEST, b'x');
    ok.push(b'\n');
    let mut bad = b"status ".to_vec();
    bad.resize(MAX_REQUEST + 1, b'x');
    bad.push(b'\n');
    write_all(&w, &ok);
    write_all(&w, &bad);
    let got = c.read_requests();
    assert!(got[0].is_ok());
    assert_eq!(got[1], Err(RequestError::TooLong));
    assert_eq!(got.len(), 2);
}

#[test]
fn an_oversized_line_split_over_reads_is_dropped_up_to_its_newline() {
    let (_t, mut c) = run_dir();
    let mut out = Vec::new();
    // One long line arriving in three pieces, then a good line in the last piece.
    c.feed(&[b'z'; 3000], &mut out);
    c.feed(&[b'z'; 3000], &mut out);
    c.feed(b"zzzz\nstart ok\n", &mut out);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0], Err(RequestError::TooLong));
    assert_eq!(out[1].as_ref().unwrap().args, vec!["ok"]);
}

#[test]
fn a_flood_is_read_within_the_budget() {
    let (_t, mut c) = run_dir();
    let w = writer(&c);
    // Room for more than one budget in the pipe (root may raise the pipe size).
    let size = nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20)).unwrap();
    assert!(size as usize > READ_BUDGET);
    let line = b"status\n";
    let lines = (READ_BUDGET + READ_BUDGET / 2) / line.len();
    write_all(&w, &line.repeat(lines));
    let first = c.read_requests();
    assert!(!first.is_empty());
    assert!(first.len() * line.len() <= READ_BUDGET + 16 * 1024);
    assert!(first.len() < lines, "one call took the whole flood");
    let second = c.read_requests();
    assert_eq!(first.len() + second.len(), lines);
    assert!(first.iter().chain(&second).all(|r| r.is_ok()));
}

#[test]
fn hostile_reply_names_are_rejected() {
    let (tmp, mut c) = run_dir();
    let run = tmp.path().join("run");
    let reply = run.join("reply");
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, b"root:secret\n").unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    mkfifo(&outside.join("x"), Mode::from_bits_truncate(0o600)).unwrap();
    let _outside_reader = open(
        &outside.join("x"),
        OFlag::O_RDONLY | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .unwrap();
    std::os::unix::fs::symlink(&secret, reply.join("link")).unwrap();
    std::os::unix::fs::symlink("/dev/null", reply.join("null")).unwrap();
    std::fs::write(reply.join("file"), b"").unwrap();
    std::os::unix::fs::symlink(&outside, reply.join("dirlink")).unwrap();
    std::fs::create_dir(reply.join("dir")).unwrap();
    let _r2 = reply_fifo(&run, "two");
    std::fs::hard_link(reply.join("two"), reply.join("two-b")).unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(reply.join("sock")).unwrap();

    let mut err = |name: &str| c.open_reply(name).err().map(|e| e.to_string());
    for name in ["link", "null", "file", "dir", "sock"] {
        let e = err(name).unwrap_or_default();
        assert!(
            e.contains("not a FIFO") || e.contains("ELOOP"),
            "{name}: {e}"
        );
    }
    assert!(err("two").unwrap().contains("more than one link"));
    for name in ["dirlink/x", "../control", "..", ".", "", "/etc/shadow"] {
        assert!(
            matches!(c.open_reply(name), Err(ControlError::BadName(_))),
            "{name}"
        );
    }
    // The openat2 layer alone (should a name ever slip past the name check).
    let dir = c.reply_dir.as_fd();
    for name in [
        "dirlink/x",
        "../control",
        "..",
        outside.join("x").to_str().unwrap(),
    ] {
        match open_reply_in(dir, name) {
            Err(ControlError::Open { source, .. }) => {
                assert!(
                    matches!(source, Errno::ELOOP | Errno::EXDEV),
                    "{name}: {source}"
                )
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // Nothing was written anywhere.
    assert_eq!(std::fs::read(&secret).unwrap(), b"root:secret\n");
    assert_eq!(std::fs::read(reply.join("file")).unwrap(), b"");
    // No such FIFO, and a FIFO whose client left.
    assert!(matches!(
        c.open_reply("missing"),
        Err(ControlError::Open {
            source: Errno::ENOENT,
            ..
        })
    ));
    mkfifo(&reply.join("gone"), Mode::from_bits_truncate(0o600)).unwrap();
    assert!(matches!(
        c.open_reply("gone"),
        Err(ControlError::ClientGone(_))
    ));
}

#[test]
fn a_reply_reaches_its_client_whole() {
    let (tmp, mut c) = run_dir();
    let run = tmp.path().join("run");
    let r = reply_fifo(&run, "ok-1");
    let mut w = c.open_reply("ok-1").unwrap();
    let reply = Reply {
        ok: true,
        code: 0,
        error: None,
        data: serde_json::json!({"hello": "world"}),
    };
    w.set_reply(&reply);
    assert!(w.write_some().unwrap());
    drop(w);
    let got = read_to_eof(&r, Duration::from_secs(5));
    assert_eq!(serde_json::from_slice::<Reply>(&got).unwrap(), reply);
}

#[test]
fn a_client_that_never_reads_does_not_block() {
    let (tmp, mut c) = run_dir();
    let run = tmp.path().join("run");
    let r = reply_fifo(&run, "slow");
    let mut w = c.open_reply("slow").unwrap();
    w.set_bytes(vec![b'x'; 1 << 20]);
    let t = Instant::now();
    assert!(
        !w.write_some().unwrap(),
        "a 1 MiB reply cannot fit the pipe"
    );
    assert!(!w.write_some().unwrap());
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(w.remaining() > 0 && w.remaining() < 1 << 20);
    // The client goes away: the writer gets an error, not a signal death or a hang.
    drop(r);
    assert!(w.write_some().is_err());
}

/// Read a reply FIFO the way colonyctl does: poll until the writer closed after opening.
fn read_to_eof(fd: &OwnedFd, limit: Duration) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no EOF within {limit:?}");
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        let ms = PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap();
        if poll(&mut fds, ms).unwrap() == 0 {
            continue;
        }
        loop {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(Errno::EAGAIN) => break,
                Err(e) => panic!("{e}"),
            }
        }
    }
}

#[test]
fn twenty_concurrent_clients_each_get_their_own_whole_reply() {
    let (tmp, mut c) = run_dir();
    let run = tmp.path().join("run");
    const N: usize = 20;
    const PAD: usize = 150_000; // bigger than a pipe: written in pieces
    let clients: Vec<_> = (0..N)
        .map(|i| {
            let run = run.clone();
            std::thread::spawn(move || {
                let name = format!("c-{i}");
                let r = reply_fifo(&run, &name);
                let w = open(
                    &run.join("control"),
                    OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .unwrap();
                let line = format!("reply={name} status unit-{i}\n");
                assert_eq!(nix::unistd::write(&w, line.as_bytes()).unwrap(), line.len());
                drop(w);
                let got = read_to_eof(&r, Duration::from_secs(30));
                let reply: Reply = serde_json::from_slice(&got).unwrap();
                std::fs::remove_file(run.join("reply").join(&name)).unwrap();
                (i, reply)
            })
        })
        .collect();

    // The server: one thread, non-blocking, driven by poll as the event loop drives epoll.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut writers: Vec<ReplyWriter> = Vec::new();
    let mut served = 0;
    while served < N || !writers.is_empty() {
        assert!(Instant::now() < deadline, "server stuck: {served} served");
        let mut fds = vec![PollFd::new(c.fd(), PollFlags::POLLIN)];
        fds.extend(
            writers
                .iter()
                .map(|w| PollFd::new(w.fd(), PollFlags::POLLOUT)),
        );
        poll(&mut fds, PollTimeout::from(1000u16)).unwrap();
        let readable = fds[0].revents().unwrap().contains(PollFlags::POLLIN);
        let ready: Vec<bool> = fds[1..]
            .iter()
            .map(|f| !f.revents().unwrap().is_empty())
            .collect();
        drop(fds);
        let mut keep = Vec::new();
        for (mut w, ready) in writers.drain(..).zip(ready) {
            if !ready || !w.write_some().unwrap() {
                keep.push(w);
            }
        }
        writers = keep;
        if readable {
            for req in c.read_requests() {
                let req = req.unwrap();
                served += 1;
                let mut w = c.open_reply(req.reply.as_deref().unwrap()).unwrap();
                w.set_reply(&Reply {
                    ok: true,
                    code: 0,
                    error: None,
                    data: serde_json::json!({"unit": req.args[0], "pad": "p".repeat(PAD)}),
                });
                if !w.write_some().unwrap() {
                    writers.push(w);
                }
            }
        }
    }
    for h in clients {
        let (i, reply) = h.join().unwrap();
        assert_eq!(reply.data["unit"], format!("unit-{i}"));
        assert_eq!(reply.data["pad"].as_str().unwrap().len(), PAD);
    }
}

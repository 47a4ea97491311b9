//! Real pipes and real files.

use super::*;
use std::os::fd::AsFd;

fn write_all(fd: &OwnedFd, mut data: &[u8]) {
    while !data.is_empty() {
        let n = nix::unistd::write(fd, data).unwrap();
        data = &data[n..];
    }
}

/// The text after the time stamp of each line, checking the stamp's shape.
fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let (stamp, rest) = l.split_at(24);
            assert!(
                chrono::DateTime::parse_from_rfc3339(stamp).is_ok() && stamp.ends_with('Z'),
                "bad stamp in {l:?}"
            );
            assert_eq!(&rest[..1], " ");
            rest[1..].to_string()
        })
        .collect()
}

#[test]
fn lines_are_time_stamped_and_partial_lines_wait_for_their_end() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("deep/dir/web.log");
    let mut log = LogFile::open(&path, 0, 5).unwrap();
    let (r, w) = log_pipe().unwrap();
    write_all(&w, b"hello\nwor");
    let d = log.drain(r.as_fd(), 1 << 20).unwrap();
    assert_eq!(
        d,
        Drain {
            eof: false,
            more: false
        }
    );
    assert_eq!(lines(&path), vec!["hello"]);
    write_all(&w, b"ld\r\n\nlast without newline");
    log.drain(r.as_fd(), 1 << 20).unwrap();
    assert_eq!(lines(&path), vec!["hello", "world", ""]);
    log.write_note("colony: exited with code 1").unwrap();
    drop(w);
    let d = log.drain(r.as_fd(), 1 << 20).unwrap();
    assert!(d.eof);
    log.flush_partial().unwrap(); // nothing left: no empty line

    assert_eq!(
        lines(&path),
        vec![
            "hello",
            "world",
            "",
            "colony: exited with code 1",
            "last without newline"
        ]
    );
}

#[test]
fn a_partial_line_is_flushed_on_demand() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("p.log");
    let mut log = LogFile::open(&path, 0, 1).unwrap();
    let (r, w) = log_pipe().unwrap();
    write_all(&w, b"Password: ");
    log.drain(r.as_fd(), 1 << 20).unwrap();
    assert!(lines(&path).is_empty());
    log.flush_partial().unwrap();
    log.write_note("colony: exited with code 1").unwrap();
    assert_eq!(
        lines(&path),
        vec!["Password: ", "colony: exited with code 1"]
    );
}

#[test]
fn the_pipe_ends_have_the_right_flags() {
    let (r, w) = log_pipe().unwrap();
    let rf = OFlag::from_bits_truncate(fcntl(&r, FcntlArg::F_GETFL).unwrap());
    assert!(rf.contains(OFlag::O_NONBLOCK));
    let wf = OFlag::from_bits_truncate(fcntl(&w, FcntlArg::F_GETFL).unwrap());
    assert!(
        !wf.contains(OFlag::O_NONBLOCK),
        "the child gets a blocking pipe"
    );
    for fd in [&r, &w] {
        let fdf = fcntl(fd, FcntlArg::F_GETFD).unwrap();
        assert!(fdf & libc::FD_CLOEXEC != 0);
    }
}

#[test]
fn rotation_keeps_keep_files_each_within_max_size() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("u.log");
    let mut log = LogFile::open(&path, 1000, 2).unwrap();
    let (r, w) = log_pipe().unwrap();
    // 100 lines of ~60 bytes each with the stamp: ~6 KB, several rotations.
    for i in 0..100 {
        write_all(
            &w,
            format!("line {i:03} ..............................\n").as_bytes(),
        );
        log.drain(r.as_fd(), 1 << 20).unwrap();
    }
    let p1 = tmp.path().join("u.log.1");
    let p2 = tmp.path().join("u.log.2");
    assert!(!tmp.path().join("u.log.3").exists(), "keep = 2");
    for p in [&path, &p1, &p2] {
        let len = std::fs::metadata(p).unwrap().len();
        assert!(len <= 1000 && len > 0, "{p:?}: {len}");
    }
    // Newest last in u.log, the older ones in .1 then .2, none lost in between.
    let all: Vec<String> = [&p2, &p1, &path].iter().flat_map(|p| lines(p)).collect();
    assert_eq!(
        all.last().unwrap(),
        "line 099 .............................."
    );
    let first: u32 = all[0][5..8].parse().unwrap();
    for (k, l) in all.iter().enumerate() {
        assert_eq!(l[5..8].parse::<u32>().unwrap(), first + k as u32);
    }

    // keep = 0: a full file starts again, nothing kept.
    let path0 = tmp.path().join("z.log");
    let mut log0 = LogFile::open(&path0, 200, 0).unwrap();
    for i in 0..20 {
        log0.write_note(&format!("colony: note {i:02} .........."))
            .unwrap();
    }
    assert!(!tmp.path().join("z.log.1").exists());
    assert!(std::fs::metadata(&path0).unwrap().len() <= 200);
    assert_eq!(lines(&path0).last().unwrap(), "colony: note 19 ..........");
}

#[test]
fn a_flood_respects_the_budget_and_long_lines_are_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("flood.log");
    let mut log = LogFile::open(&path, 0, 1).unwrap();
    let (r, w) = log_pipe().unwrap();
    // One 40 KiB line without a newline, then more: fills the 64 KiB pipe.
    write_all(&w, &vec![b'x'; 40 * 1024]);
    write_all(&w, &b"y\n".repeat(10 * 1024));
    let d = log.drain(r.as_fd(), 8 * 1024).unwrap();
    assert_eq!(
        d,
        Drain {
            eof: false,
            more: true
        }
    );
    // 8 KiB read: half of a cut line, nothing written yet.
    assert!(lines(&path).is_empty());
    let mut rounds = 1;
    loop {
        let d = log.drain(r.as_fd(), 8 * 1024).unwrap();
        rounds += 1;
        if !d.more {
            break;
        }
        assert!(rounds < 100);
    }
    // 40 KiB + 20 KiB in 8 KiB budgets: 8 rounds, the 8th finds the pipe empty.
    assert_eq!(rounds, 8);
    let got = lines(&path);
    assert_eq!(got[0].len(), MAX_LINE);
    assert_eq!(got[1].len(), MAX_LINE);
    assert_eq!(got[2], format!("{}y", "x".repeat(40 * 1024 - 2 * MAX_LINE)));
    assert_eq!(got.len(), 3 + 10 * 1024 - 1);
}

#[test]
fn a_full_disk_is_an_error_not_a_panic_and_reading_goes_on() {
    // /dev/full: every write fails with ENOSPC. It is no regular file, so it never rotates
    // (renaming /dev/full would be a disaster).
    let mut log = LogFile::open(Path::new("/dev/full"), 10, 3).unwrap();
    let (r, w) = log_pipe().unwrap();
    write_all(&w, &b"lost line\n".repeat(1000));
    let e = log.drain(r.as_fd(), 1 << 20).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
    // The pipe was emptied all the same: the unit is not blocked by colony.
    let mut buf = [0u8; 16];
    assert_eq!(nix::unistd::read(&r, &mut buf), Err(Errno::EAGAIN));
    assert!(log.write_note("x").is_err());
    assert!(Path::new("/dev/full").exists());
    assert!(!Path::new("/dev/full.1").exists());
}

#[test]
fn a_log_file_that_cannot_be_reopened_is_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let path = dir.join("u.log");
    let mut log = LogFile::open(&path, 50, 1).unwrap();
    log.write_note("colony: one ...............").unwrap();
    // The directory disappears: rotation cannot reopen, an error, no panic.
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(log.write_note("colony: two ...............").is_err());
    std::fs::create_dir(&dir).unwrap();
    log.write_note("colony: three").unwrap();
    assert_eq!(lines(&path), vec!["colony: three"]);
}

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
    let mut log = LogFile::open(&path, 0, 5, None).unwrap();
    let (r, w) = log_pipe().unwrap();
    write_all(&w, b"hello\nwor");
    let d = log.drain(r.as_fd(), 1 << 20, None).unwrap();
    assert_eq!(
        d,
        Drain {
            eof: false,
            more: false
        }
    );
    assert_eq!(lines(&path), vec!["hello"]);
    write_all(&w, b"ld\r\n\nlast without newline");
    log.drain(r.as_fd(), 1 << 20, None).unwrap();
    assert_eq!(lines(&path), vec!["hello", "world", ""]);
    log.write_note("colony: exited with code 1").unwrap();
    drop(w);
    let d = log.drain(r.as_fd(), 1 << 20, None).unwrap();
    assert!(d.eof);
    log.flush_partial(None).unwrap(); // nothing left: no empty line

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
    let mut log = LogFile::open(&path, 0, 1, None).unwrap();
    let (r, w) = log_pipe().unwrap();
    write_all(&w, b"Password: ");
    log.drain(r.as_fd(), 1 << 20, None).unwrap();
    assert!(lines(&path).is_empty());
    log.flush_partial(None).unwrap();
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
    let mut log = LogFile::open(&path, 1000, 2, None).unwrap();
    let (r, w) = log_pipe().unwrap();
    // 100 lines of ~60 bytes each with the stamp: ~6 KB, several rotations.
    for i in 0..100 {
        write_all(
            &w,
            format!("line {i:03} ..............................\n").as_bytes(),
        );
        log.drain(r.as_fd(), 1 << 20, None).unwrap();
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
    let mut log0 = LogFile::open(&path0, 200, 0, None).unwrap();
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
    let mut log = LogFile::open(&path, 0, 1, None).unwrap();
    let (r, w) = log_pipe().unwrap();
    // One 40 KiB line without a newline, then more: fills the 64 KiB pipe.
    write_all(&w, &vec![b'x'; 40 * 1024]);
    write_all(&w, &b"y\n".repeat(10 * 1024));
    let d = log.drain(r.as_fd(), 8 * 1024, None).unwrap();
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
        let d = log.drain(r.as_fd(), 8 * 1024, None).unwrap();
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
    let mut log = LogFile::open(Path::new("/dev/full"), 10, 3, None).unwrap();
    let (r, w) = log_pipe().unwrap();
    write_all(&w, &b"lost line\n".repeat(1000));
    let e = log.drain(r.as_fd(), 1 << 20, None).unwrap_err();
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
    let mut log = LogFile::open(&path, 50, 1, None).unwrap();
    log.write_note("colony: one ...............").unwrap();
    // The directory disappears: rotation cannot reopen, an error, no panic.
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(log.write_note("colony: two ...............").is_err());
    std::fs::create_dir(&dir).unwrap();
    log.write_note("colony: three").unwrap();
    assert_eq!(lines(&path), vec!["colony: three"]);
}

#[test]
fn a_symlinked_log_file_is_not_written_through() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("root-file");
    std::fs::write(&target, "untouched\n").unwrap();
    let path = tmp.path().join("app.log");
    symlink(&target, &path).unwrap();
    let e = LogFile::open(&path, 0, 1, None).unwrap_err();
    assert!(
        e.is_refusal() && e.to_string().contains("symbolic link"),
        "{e}"
    );
    // A link in the directory part too.
    symlink(tmp.path(), tmp.path().join("via")).unwrap();
    let e = LogFile::open(&tmp.path().join("via/x.log"), 0, 1, None).unwrap_err();
    assert!(e.is_refusal(), "{e}");
    assert!(!tmp.path().join("x.log").exists());
    // A hard link to the file: refused as well.
    std::fs::remove_file(&path).unwrap();
    std::fs::hard_link(&target, &path).unwrap();
    assert!(LogFile::open(&path, 0, 1, None).is_err());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched\n");
}

#[test]
fn rotation_and_reopening_never_follow_a_planted_link() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("root-file");
    std::fs::write(&target, "untouched\n").unwrap();
    let dir = tmp.path().join("d");
    let path = dir.join("u.log");
    let mut log = LogFile::open(&path, 60, 2, None).unwrap();
    log.write_note("colony: one ...............").unwrap();
    // The unit's user replaces the log and a numbered one by links to a file of root's.
    std::fs::remove_file(&path).unwrap();
    symlink(&target, &path).unwrap();
    symlink(&target, dir.join("u.log.1")).unwrap();
    // Rotation moves the links themselves and makes a fresh file.
    log.write_note("colony: two ...............").unwrap();
    log.write_note("colony: three .............").unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched\n");
    assert_eq!(lines(&path), vec!["colony: three ............."]);
    assert!(std::fs::symlink_metadata(dir.join("u.log.2"))
        .unwrap()
        .file_type()
        .is_symlink());
    // A link put in place while the file is closed (after a failed write) is refused at
    // the re-open: an error, nothing written through.
    log.set_limits(0, 2);
    log.file = None;
    std::fs::remove_file(&path).unwrap();
    symlink(&target, &path).unwrap();
    let e = log.write_note("colony: four").unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched\n");
}

#[test]
fn with_a_control_group_log_files_are_group_readable() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to chown");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let gid = Gid::from_raw(100);
    // A new file, and an existing one of an older colony-init (0600 root:root).
    let new = tmp.path().join("new.log");
    let old = tmp.path().join("old.log");
    std::fs::write(&old, "").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o600)).unwrap();
    for p in [&new, &old] {
        let mut log = LogFile::open(p, 100, 1, Some(gid)).unwrap();
        // Rotated files get the same.
        for _ in 0..3 {
            log.write_note("colony: a line of about sixty bytes ......")
                .unwrap();
        }
        for f in [p.clone(), PathBuf::from(format!("{}.1", p.display()))] {
            let m = std::fs::metadata(&f).unwrap();
            assert_eq!((m.gid(), m.mode() & 0o7777), (100, 0o640), "{f:?}");
        }
    }
    // Without a group: created 0640, the group is left alone.
    let plain = tmp.path().join("plain.log");
    LogFile::open(&plain, 0, 1, None).unwrap();
    let m = std::fs::metadata(&plain).unwrap();
    assert_eq!((m.gid(), m.mode() & 0o777), (0, 0o640));
}

/// Log files in one directory share its fd (10,000 units in LOG_DIR hold one directory fd, not
/// 10,000); the directory is closed with its last log file, and rotation still works in it.
#[test]
fn log_files_in_one_directory_share_its_fd() {
    let tmp = tempfile::tempdir().unwrap();
    let a = LogFile::open(&tmp.path().join("logs/a.log"), 0, 1, None).unwrap();
    let mut b = LogFile::open(&tmp.path().join("logs/b.log"), 16, 1, None).unwrap();
    let c = LogFile::open(&tmp.path().join("other/c.log"), 0, 1, None).unwrap();
    assert!(Rc::ptr_eq(&a.dir, &b.dir));
    assert!(!Rc::ptr_eq(&a.dir, &c.dir));
    let weak = Rc::downgrade(&c.dir);
    drop(c);
    assert!(
        weak.upgrade().is_none(),
        "the last log file closes its directory"
    );
    drop(a);
    b.write_note("a line longer than sixteen bytes").unwrap();
    b.write_note("another line past the limit").unwrap();
    assert_eq!(lines(&tmp.path().join("logs/b.log.1")).len(), 1);
}

#[test]
fn each_line_is_copied_once_to_the_console_without_its_stamp() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("web.log");
    let mut log = LogFile::open(&path, 0, 5, None).unwrap();
    let (r, w) = log_pipe().unwrap();
    let (cr, cw) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).unwrap();
    let mut console = Console::from_fd(cw).unwrap();
    fn copy(console: &mut Console) -> Option<ConsoleCopy<'_>> {
        Some(ConsoleCopy {
            console,
            unit: "web",
        })
    }
    write_all(&w, b"hello\r\nwor");
    log.drain(r.as_fd(), 1 << 20, copy(&mut console)).unwrap();
    write_all(&w, b"ld\nno end");
    log.drain(r.as_fd(), 1 << 20, copy(&mut console)).unwrap();
    log.flush_partial(copy(&mut console)).unwrap();
    let mut buf = [0u8; 4096];
    let n = nix::unistd::read(&cr, &mut buf).unwrap();
    assert_eq!(
        std::str::from_utf8(&buf[..n]).unwrap(),
        "web| hello\nweb| world\nweb| no end\n"
    );
    assert_eq!(lines(&path), vec!["hello", "world", "no end"]);
}

//! `[tty]` on a real pseudo-terminal the test makes (posix_openpt): the unit's program has
//! it as stdin, stdout and stderr and as its session's controlling terminal (`tty` names it,
//! /proc/PID/stat's session, tty_nr and foreground group say so), reads what the test types
//! on the master side; `vhangup` hangs up a file of the terminal opened before the start, and
//! `reset` brings back the modes the test turned off.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use colony_integration::{Colony, SOON};
use nix::fcntl::OFlag;
use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};

/// A new pseudo-terminal: its master and the path of its slave.
fn pty() -> (File, String) {
    let m = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).unwrap();
    nix::pty::grantpt(&m).unwrap();
    nix::pty::unlockpt(&m).unwrap();
    let path = nix::pty::ptsname_r(&m).unwrap();
    let fd: OwnedFd = m.into();
    (File::from(fd), path)
}

fn open_slave(path: &str) -> File {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(path)
        .unwrap()
}

/// Reads the master until `needle` has come (bounded by `SOON`); returns all read so far.
fn read_until(master: &mut File, seen: &mut String, needle: &str) {
    let end = Instant::now() + SOON;
    while !seen.contains(needle) {
        let left = end.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no {needle:?} on the terminal; read {seen:?}"
        );
        let mut p = [libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let ms = left.min(Duration::from_secs(1)).as_millis() as libc::c_int;
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(p.as_mut_ptr(), 1, ms) } > 0 {
            let mut buf = [0u8; 4096];
            let n = master.read(&mut buf).unwrap();
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
}

#[test]
fn program_on_a_terminal_has_it_as_controlling_tty() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root (vhangup takes CAP_SYS_ADMIN)");
        return;
    }
    let (mut master, slave) = pty();
    // A file of the terminal opened before the start, with echo and canonical input off.
    let before = open_slave(&slave);
    let mut t = tcgetattr(before.as_fd()).unwrap();
    t.local_flags.remove(LocalFlags::ECHO | LocalFlags::ICANON);
    tcsetattr(before.as_fd(), SetArg::TCSANOW, &t).unwrap();

    let c = Colony::new();
    c.write_unit(
        "term",
        &format!(
            "exec = [\"/bin/sh\", \"-c\", '''tty; while read line; do echo \"got $line\"; done''']\n[tty]\npath = \"{slave}\"\nreset = true\nvhangup = true\n"
        ),
    );
    let c = c.start();
    let u = c.wait_state("term", "running");
    let pid = u["pid"].as_i64().unwrap();
    let mut seen = String::new();
    read_until(&mut master, &mut seen, &format!("{slave}\r\n"));
    // The reset sequence came first.
    assert!(seen.starts_with("\x1bc"), "{seen:?}");

    // Its session's controlling terminal: session leader, tty_nr the pts, in the foreground.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<i64> = stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .skip(1)
        .take(6)
        .map(|x| x.parse().unwrap())
        .collect();
    let (session, tty_nr, tpgid) = (f[2], f[3], f[4]);
    let rdev = std::fs::metadata(&slave).unwrap().rdev();
    let (major, minor) = (libc::major(rdev) as i64, libc::minor(rdev) as i64);
    assert_eq!(session, pid, "{stat}");
    assert_eq!(
        tty_nr,
        (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12),
        "{stat}"
    );
    assert_eq!(tpgid, pid, "{stat}");

    // vhangup: the file opened before is hung up.
    let e = (&before).write(b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    // reset: echo and canonical input are back.
    let now = tcgetattr(open_slave(&slave).as_fd()).unwrap();
    assert!(
        now.local_flags
            .contains(LocalFlags::ECHO | LocalFlags::ICANON),
        "{:?}",
        now.local_flags
    );

    // It reads what is typed on the terminal.
    master.write_all(b"hello\n").unwrap();
    read_until(&mut master, &mut seen, "got hello\r\n");
}

/// `[stop] sighup`: SIGHUP right after the stop signal (systemd's `SendSIGHUP=`), so a shell
/// learns its terminal is gone. The program waits for both before it exits; without the
/// SIGHUP it would be killed at the stop timeout with only `term` written.
#[test]
fn sighup_follows_the_stop_signal() {
    let c = Colony::new();
    let out = c.dir.path().join("signals");
    c.write_unit(
        "hup",
        &format!(
            "exec = [\"/bin/sh\", \"-c\", '''trap \"echo hup >> {0}; h=1\" HUP; trap \"echo term >> {0}; t=1\" TERM; echo up > {0}.up; until [ \"$h$t\" = 11 ]; do sleep 100 & wait $!; done; exit 0''']\n[stop]\nsighup = true\ntimeout = \"30s\"\n",
            out.display()
        ),
    );
    let c = c.start();
    c.wait_state("hup", "running");
    colony_integration::wait_for("the traps set", SOON, || {
        out.with_extension("up").exists().then_some(())
    });
    let o = c.ctl(&["stop", "hup"]);
    assert!(o.status.success(), "{o:?}");
    let u = c.wait_state("hup", "stopped");
    let got = std::fs::read_to_string(&out).unwrap();
    let mut lines: Vec<&str> = got.lines().collect();
    lines.sort();
    assert_eq!(lines, ["hup", "term"], "{u}");
    // It exited by itself (status 0), not killed at the timeout.
    assert_eq!(u["last_exit"]["code"], serde_json::json!(0), "{u}");
}

/// `tty_nr` of /proc/PID/stat.
fn tty_nr(pid: u32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(4)
        .unwrap()
        .parse()
        .unwrap()
}

/// A terminal that is another session's controlling terminal: without `force` the start
/// fails and says why; with `force = true` the unit takes it and the other session loses it.
#[test]
fn a_terminal_held_by_another_session_needs_force() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (_master, slave) = pty();
    // A session of the test's own with the terminal as its controlling terminal.
    let mut holder = std::process::Command::new("setsid")
        .args(["--ctty", "sleep", "100000"])
        .stdin(open_slave(&slave))
        .spawn()
        .unwrap();
    colony_integration::wait_for("the holder's controlling terminal", SOON, || {
        (tty_nr(holder.id()) != 0).then_some(())
    });
    let c = Colony::new();
    let unit = |force: bool| {
        format!("exec = [\"/bin/sleep\", \"100000\"]\n[tty]\npath = \"{slave}\"\nforce = {force}\n")
    };
    c.write_unit("term", &unit(false));
    let c = c.start();
    c.wait_unit("term", "a start refused for the terminal", |u| {
        u["last_exit"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("controlling terminal"))
    });
    assert_ne!(tty_nr(holder.id()), 0);
    c.write_unit("term", &unit(true));
    let u = c.wait_state("term", "running");
    assert_ne!(tty_nr(u["pid"].as_i64().unwrap() as u32), 0);
    assert_eq!(tty_nr(holder.id()), 0, "the holder lost it");
    holder.kill().unwrap();
    holder.wait().unwrap();
}

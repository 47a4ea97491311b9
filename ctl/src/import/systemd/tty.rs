//! `StandardInput=tty` and its company (`TTYPath=`, `TTYReset=`, `TTYVHangup=`,
//! `TTYVTDisallocate=`, `StandardOutput=tty`, `StandardError=tty`, `UtmpIdentifier=`) as
//! `[tty]`: a getty, a rescue shell, a first-boot dialogue on a terminal.

use super::super::draft::{Fate, V};
use super::super::words::systemd_bool;
use super::source::Sd;

/// The last assignment of `key` in [Service], without reporting the earlier ones (the
/// general pass does, or `logging` for the output keys).
fn last_of(sd: &Sd, key: &str) -> Option<usize> {
    sd.indices("Service", key).last().copied()
}

pub(super) fn tty(sd: &mut Sd) {
    let Some(input) = last_of(sd, "StandardInput") else {
        return;
    };
    let force = match sd.items[input].value.trim() {
        "tty" => false,
        "tty-force" => true,
        "tty-fail" => false,
        _ => return,
    };
    let waits = sd.items[input].value.trim() == "tty";
    // The terminal: TTYPath=, else systemd's /dev/console.
    let path = match sd.last("Service", "TTYPath") {
        Some(i) => {
            let p = sd.expand(i);
            if !units::tty::valid_path(&p) {
                sd.drop_it(i, "not a terminal below /dev");
                return;
            }
            sd.carry(i, "tty.path", V::s(p.as_str()));
            p
        }
        None => {
            sd.d.set("tty.path", V::s("/dev/console"));
            "/dev/console".into()
        }
    };
    if force {
        sd.carry(input, "tty.force", V::Bool(true));
    } else if waits {
        sd.approx(
            input,
            "tty.force",
            V::Bool(false),
            format!("the program runs on {path} as its controlling terminal; where another session controls it, systemd waits for it to be released, colony's start fails and the restart policy tries again"),
        );
    } else {
        sd.carry(input, "tty.force", V::Bool(false));
    }
    for (key, to) in [("TTYReset", "tty.reset"), ("TTYVHangup", "tty.vhangup")] {
        if let Some(i) = sd.last("Service", key) {
            match systemd_bool(&sd.items[i].value) {
                Some(b) => sd.carry(i, to, V::Bool(b)),
                None => sd.drop_it(i, "not a boolean"),
            }
        }
    }
    if let Some(i) = sd.last("Service", "TTYVTDisallocate") {
        let on = systemd_bool(&sd.items[i].value);
        let resets = sd.d.get("tty.reset") == Some(&V::Bool(true));
        match on {
            Some(false) => sd.same(i, "off: systemd's default, and colony's behaviour"),
            Some(true) if resets => sd.mark(
                i,
                Some("tty.reset = true".into()),
                Fate::Approx("colony does not deallocate the virtual console: the reset sequence of `reset` clears its screen before each start, not its scrollback".into()),
            ),
            _ => sd.drop_it(i, "colony does not deallocate virtual consoles (`reset = true` clears the screen)"),
        }
    }
    // stdout and stderr: on the terminal when systemd puts them there (`tty`, or `inherit`,
    // its default with a terminal input); stderr follows stdout under colony.
    let value = |sd: &Sd, i: Option<usize>| i.map(|i| sd.items[i].value.trim().to_string());
    let (out_i, err_i) = (last_of(sd, "StandardOutput"), last_of(sd, "StandardError"));
    let out = value(sd, out_i).unwrap_or_else(|| "inherit".into());
    let err = value(sd, err_i).unwrap_or_else(|| "inherit".into());
    let out_tty = matches!(out.as_str(), "tty" | "inherit");
    let err_tty = err == "tty" || (err == "inherit" && out_tty);
    if out_tty {
        if let Some(i) = out_i {
            sd.carry(i, "tty.output", V::s("tty"));
        }
        match err_i {
            Some(i) if err_tty => sd.carry(i, "tty.output", V::s("tty")),
            Some(i) => sd.approx(
                i,
                "tty.output",
                V::s("tty"),
                "colony puts stderr where stdout goes: on the terminal",
            ),
            None => {}
        }
    } else {
        // The output keys themselves are read by `logging`.
        sd.d.set("tty.output", V::s("log"));
        if let Some(i) = err_i.filter(|_| err_tty) {
            sd.approx(
                i,
                "tty.output",
                V::s("log"),
                "colony puts stderr where stdout goes: in the unit's log",
            );
        }
    }
    for key in ["UtmpIdentifier", "UtmpMode"] {
        if let Some(i) = sd.last("Service", key) {
            sd.mark(
                i,
                None,
                Fate::Approx("colony writes no utmp/wtmp records of its own for the unit (systemd's INIT_PROCESS and DEAD_PROCESS); agetty and login write theirs, so `who` and `last` still list the logins on the terminal".into()),
            );
        }
    }
}

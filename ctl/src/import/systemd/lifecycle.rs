//! The service's type and command, restarts, stopping and timeouts.

use super::super::draft::{Fate, V};
use super::super::words::{fmt_duration, systemd_bool, systemd_timespan, systemd_words};
use super::exec::exec_start;
use super::source::Sd;
use units::model::limits::MIN_PERIOD;

pub(super) fn lifecycle(sd: &mut Sd) -> Result<(), String> {
    // Type and the command.
    let ty_i = sd.last("Service", "Type");
    let ty = ty_i
        .map(|i| sd.items[i].value.clone())
        .unwrap_or_else(|| "simple".into());
    let execs = sd.list("Service", "ExecStart");
    let Some((&first, more)) = execs.split_first() else {
        return Err(format!(
            "{}: no ExecStart: there is no program to run",
            sd.d.sources[0].display()
        ));
    };
    if ty == "oneshot" {
        exec_start(sd, &execs)?;
    } else {
        // systemd itself refuses such a unit: only a oneshot runs several commands.
        for &i in more {
            sd.drop_it(
                i,
                "only a Type=oneshot service may have several ExecStart= (systemd refuses this unit): the first is carried",
            );
        }
        exec_start(sd, &[first])?;
    }

    let notify = matches!(ty.as_str(), "notify" | "notify-reload");
    // What has a start to time out: a notify service, or a boot task (up at its exit).
    let waits = notify || (ty == "oneshot" && !sd.is_timer_job);
    if let Some(i) = ty_i {
        match ty.as_str() {
            "simple" | "exec" | "idle" => sd.same(i, "a colony unit is up when its program starts"),
            "notify" => sd.carry(i, "ready.type", V::s("notify")),
            "notify-reload" => sd.approx(
                i,
                "ready.type",
                V::s("notify"),
                "reloads are not requested by colony (use `colonyctl signal SIGHUP NAME`)",
            ),
            "oneshot" if sd.is_timer_job => {
                sd.same(i, "a timer unit runs its job to the end each time")
            }
            "oneshot" => boot_task(sd, i),
            "forking" => sd.drop_it(
                i,
                "colony supervises a program in the foreground: make the daemon stay in the foreground (for example --daemonize no, -f, --foreground or -D) or it will look like it exited",
            ),
            "dbus" => sd.approx(
                i,
                "ready.type",
                V::s("started"),
                "D-Bus readiness is not watched: the unit is up when its program starts",
            ),
            other => sd.drop_it(i, format!("unknown Type `{other}`")),
        }
    }

    // Restart.
    let restart_i = sd.last("Service", "Restart");
    if sd.is_timer_job {
        if let Some(i) = restart_i {
            sd.same(
                i,
                "a timer unit's job is not restarted; it runs again at its next time",
            );
        }
    } else if let Some(i) = restart_i {
        match sd.items[i].value.as_str() {
            "no" => sd.carry(i, "restart.policy", V::s("never")),
            "always" => sd.carry(i, "restart.policy", V::s("always")),
            "on-failure" => sd.carry(i, "restart.policy", V::s("on-failure")),
            "on-abnormal" | "on-abort" | "on-watchdog" => sd.approx(
                i,
                "restart.policy",
                V::s("on-failure"),
                "colony restarts on any failure: a bad exit code too, not only signals and timeouts",
            ),
            "on-success" => sd.drop_it(i, "colony has no restart on success only"),
            other => sd.drop_it(i, format!("unknown Restart `{other}`")),
        }
    } else if !sd.d.has("restart.policy") {
        sd.d.carry(
            "(systemd default)",
            "Restart= (not set)",
            "restart.policy",
            V::s("never"),
        );
    }
    if let Some(i) = sd.last("Service", "RestartSec") {
        if sd.is_timer_job {
            sd.same(i, "a timer unit's job is not restarted");
        } else {
            match systemd_timespan(&sd.items[i].value) {
                Ok(Some(t)) => {
                    let s = fmt_duration(t);
                    sd.carry(i, "restart.delay_min", V::s(s.as_str()));
                    let max = sd.last("Service", "RestartMaxDelaySec");
                    match max.map(|m| (m, systemd_timespan(&sd.items[m].value))) {
                        Some((m, Ok(Some(mx)))) if mx >= t => sd.approx(
                            m,
                            "restart.delay_max",
                            V::s(fmt_duration(mx)),
                            "colony doubles the delay after each quick death up to this (RestartSteps are not counted)",
                        ),
                        Some((m, _)) => sd.drop_it(m, "not a time span from RestartSec up"),
                        None => {
                            // A fixed delay, as systemd's: colony's backoff stays at it.
                            sd.d.set("restart.delay_max", V::s(s));
                        }
                    }
                }
                Ok(None) => sd.drop_it(i, "an infinite restart delay is not a restart"),
                Err(e) => sd.drop_it(i, e),
            }
        }
    }
    if let Some(i) = sd.last("Service", "RestartSteps") {
        sd.same(
            i,
            "colony doubles the restart delay from delay_min to delay_max",
        );
    }
    let codes = sd.list("Service", "SuccessExitStatus");
    for i in codes {
        let words = systemd_words(&sd.items[i].value).unwrap_or_default();
        let mut nums = Vec::new();
        let mut sigs = Vec::new();
        for w in words {
            match w.parse::<i64>().ok().or_else(|| exit_status_name(&w)) {
                Some(n) if (0..=255).contains(&n) => nums.push(n),
                _ => sigs.push(w),
            }
        }
        if nums.is_empty() {
            sd.drop_it(
                i,
                format!(
                    "colony counts a death by signal ({}) as a failure, except in its own stop",
                    sigs.join(" ")
                ),
            );
            continue;
        }
        let mut cur: Vec<i64> = match sd.d.get("restart.success_codes") {
            Some(V::Arr(a)) => a
                .iter()
                .filter_map(|v| match v {
                    V::Int(n) => Some(*n),
                    _ => None,
                })
                .collect(),
            _ => vec![0],
        };
        for n in nums {
            if !cur.contains(&n) {
                cur.push(n);
            }
        }
        let v = V::Arr(cur.into_iter().map(V::Int).collect());
        if sigs.is_empty() {
            sd.carry(i, "restart.success_codes", v);
        } else {
            sd.approx(
                i,
                "restart.success_codes",
                v,
                format!(
                    "signals not carried ({}): colony counts a death by signal as a failure",
                    sigs.join(" ")
                ),
            );
        }
    }

    // Stopping.
    if let Some(i) = sd.last("Service", "KillSignal") {
        let v = sd.items[i].value.clone();
        match units::values::parse_signal(&v) {
            Ok(_) => sd.carry(i, "stop.signal", V::s(v)),
            Err(e) => sd.drop_it(i, e),
        }
    }
    // colony's stop: the stop signal to the main process, then SIGKILL to whatever is left
    // in the unit once the main process has exited (or at stop.timeout).
    if let Some(i) = sd.last("Service", "KillMode") {
        match sd.items[i].value.as_str() {
            "control-group" => sd.same(i, "colony stops the whole unit (its cgroup)"),
            "mixed" => sd.same(
                i,
                "colony sends the stop signal to the main process and SIGKILL to the rest of the unit, as mixed does",
            ),
            _ => {}
        }
    }
    // SendSIGHUP=: SIGHUP after the stop signal, to what the stop signal reached: under
    // colony (and KillMode=mixed) the main process; under KillMode=control-group, all.
    if let Some(i) = sd.last("Service", "SendSIGHUP") {
        let mixed = sd
            .indices("Service", "KillMode")
            .last()
            .is_some_and(|&k| sd.items[k].value.trim() == "mixed");
        match systemd_bool(&sd.items[i].value) {
            Some(true) if mixed => sd.carry(i, "stop.sighup", V::Bool(true)),
            Some(true) => sd.approx(
                i,
                "stop.sighup",
                V::Bool(true),
                "SIGHUP right after the stop signal, to the main process as the stop signal goes under colony; systemd sends both to every process of the unit (KillMode=control-group)",
            ),
            Some(false) => sd.same(i, "off: systemd's default, and colony's behaviour"),
            None => sd.drop_it(i, "not a boolean"),
        }
    }
    let stop_i = sd.last("Service", "TimeoutStopSec");
    let both_i = sd.last("Service", "TimeoutSec");
    let start_i = sd.last("Service", "TimeoutStartSec");
    if let Some(i) = stop_i {
        match timeout(&sd.items[i].value) {
            Ok(Timeout::Finite(t)) => sd.carry(i, "stop.timeout", V::s(fmt_duration(t))),
            Ok(Timeout::None) => sd.approx(i, "stop.timeout", V::s(NO_TIMEOUT), NO_TIMEOUT_NOTE),
            Err(e) => sd.drop_it(i, e),
        }
    }
    if let Some(i) = both_i {
        let set_stop = stop_i.is_none();
        let set_ready = waits && start_i.is_none();
        match timeout(&sd.items[i].value) {
            _ if !set_stop && !set_ready => {
                sd.same(i, "TimeoutStartSec= and TimeoutStopSec= say more precisely")
            }
            Ok(span) => {
                let v = match span {
                    Timeout::Finite(t) => fmt_duration(t),
                    Timeout::None => NO_TIMEOUT.to_string(),
                };
                let mut to = Vec::new();
                if set_stop {
                    sd.d.set("stop.timeout", V::s(v.as_str()));
                    to.push(format!("stop.timeout = {}", V::s(v.as_str())));
                }
                if set_ready {
                    sd.d.set("ready.timeout", V::s(v.as_str()));
                    to.push(format!("ready.timeout = {}", V::s(v.as_str())));
                }
                let fate = match span {
                    Timeout::Finite(_) => Fate::Carried,
                    Timeout::None => Fate::Approx(NO_TIMEOUT_NOTE.into()),
                };
                sd.mark(i, Some(to.join(", ")), fate);
            }
            Err(e) => sd.drop_it(i, e),
        }
    }
    if stop_i.is_none() && both_i.is_none() {
        sd.d.carry(
            "(systemd default)",
            "TimeoutStopSec= (not set)",
            "stop.timeout",
            V::s("1m 30s"),
        );
    }
    if let Some(i) = start_i {
        if waits {
            match timeout(&sd.items[i].value) {
                Ok(Timeout::Finite(t)) => sd.carry(i, "ready.timeout", V::s(fmt_duration(t))),
                Ok(Timeout::None) => {
                    sd.approx(i, "ready.timeout", V::s(NO_TIMEOUT), NO_TIMEOUT_NOTE)
                }
                Err(e) => sd.drop_it(i, e),
            }
        } else {
            sd.same(
                i,
                "a unit that is not Type=notify or oneshot is up at exec: nothing to time out",
            );
        }
    }
    if let Some(i) = sd.last("Service", "WatchdogSec") {
        match systemd_timespan(&sd.items[i].value) {
            Ok(Some(t)) if t.is_zero() => sd.same(i, "0: no watchdog"),
            Ok(Some(t)) if notify && t < MIN_PERIOD => sd.approx(
                i,
                "ready.watchdog",
                V::s(fmt_duration(MIN_PERIOD)),
                "colony's shortest watchdog period",
            ),
            Ok(Some(t)) if notify => sd.carry(i, "ready.watchdog", V::s(fmt_duration(t))),
            Ok(Some(_)) => sd.drop_it(i, "colony's watchdog needs Type=notify"),
            Ok(None) => sd.same(i, "infinity: no watchdog"),
            Err(e) => sd.drop_it(i, e),
        }
    }
    if let Some(i) = sd.last("Service", "RuntimeMaxSec") {
        if sd.is_timer_job {
            match systemd_timespan(&sd.items[i].value) {
                // systemd reads 0 as infinity here (config_parse_sec_fix_0).
                Ok(Some(t)) if !t.is_zero() => sd.carry(i, "timer.timeout", V::s(fmt_duration(t))),
                Ok(_) => sd.same(i, "infinity (or 0, which systemd reads so): no limit"),
                Err(e) => sd.drop_it(i, e),
            }
        }
    }
    Ok(())
}

/// What colony writes for systemd's "no timeout" (`0` or `infinity`): its stop and ready
/// timeouts are always finite, so the longest that reads plainly.
const NO_TIMEOUT: &str = "3650d";
const NO_TIMEOUT_NOTE: &str =
    "no timeout in systemd; colony's timeouts are finite: 3650d (ten years) stands for none";

/// A timeout of systemd: a span, or none at all (`0` and `infinity` both mean none).
enum Timeout {
    Finite(std::time::Duration),
    None,
}

fn timeout(v: &str) -> Result<Timeout, String> {
    Ok(match systemd_timespan(v)? {
        Some(t) if !t.is_zero() => Timeout::Finite(t),
        _ => Timeout::None,
    })
}

/// The exit status names systemd accepts in `SuccessExitStatus=` (BSD's sysexits.h, without
/// their `EX_`), as numbers.
fn exit_status_name(w: &str) -> Option<i64> {
    const NAMES: [&str; 15] = [
        "USAGE",
        "DATAERR",
        "NOINPUT",
        "NOUSER",
        "NOHOST",
        "UNAVAILABLE",
        "SOFTWARE",
        "OSERR",
        "OSFILE",
        "CANTCREAT",
        "IOERR",
        "TEMPFAIL",
        "PROTOCOL",
        "NOPERM",
        "CONFIG",
    ];
    let name = w.strip_prefix("EX_").unwrap_or(w);
    NAMES.iter().position(|n| *n == name).map(|p| 64 + p as i64)
}

/// `Type=oneshot` (not a timer's job): a boot task, up once its program exits with success,
/// as systemd counts a oneshot started; with `RemainAfterExit=yes` it stays up (`exited`)
/// as colony shows every boot task.
fn boot_task(sd: &mut Sd, i: usize) {
    let remain = sd.last("Service", "RemainAfterExit");
    match remain.map(|r| (r, systemd_bool(&sd.items[r].value))) {
        Some((r, Some(true))) => {
            sd.carry(i, "ready.type", V::s("exited"));
            sd.same(
                r,
                "a boot task stays `exited` (up) once its program ended with success",
            );
        }
        _ => sd.approx(
            i,
            "ready.type",
            V::s("exited"),
            "a boot task: what names it in `after`/`requires` starts once it exited with success; colony then shows it `exited` (up), where systemd without RemainAfterExit=yes shows it inactive",
        ),
    }
}

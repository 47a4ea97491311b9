//! `[Timer]`: the schedule of a timer unit.

use super::super::calendar;
use super::super::draft::V;
use super::super::words::{fmt_duration, systemd_bool, systemd_timespan};
use super::source::Sd;
use units::model::limits::MIN_EVERY;

pub(super) fn timer(sd: &mut Sd) -> Result<(), String> {
    let cals = sd.list("Timer", "OnCalendar");
    let mut first = true;
    for i in cals {
        let v = sd.items[i].value.clone();
        if !first {
            sd.drop_it(
                i,
                "colony takes one calendar per unit: make another unit for this schedule",
            );
            continue;
        }
        match calendar::to_cron(&v) {
            Ok((cron, note)) => match units::values::parse_calendar(&cron) {
                Ok(_) => {
                    first = false;
                    match note {
                        Some(n) => sd.approx(i, "timer.calendar", V::s(cron), n),
                        None => sd.carry(i, "timer.calendar", V::s(cron)),
                    }
                }
                Err(e) => sd.drop_it(i, format!("became `{cron}`, which is not valid: {e}")),
            },
            Err(e) => sd.drop_it(i, e),
        }
    }
    for (key, to, note) in [
        ("OnUnitActiveSec", "timer.every", None),
        (
            "OnUnitInactiveSec",
            "timer.every",
            Some("colony counts from the previous start, not from its end"),
        ),
        (
            "OnBootSec",
            "timer.on_boot",
            Some("counted from colony-init's start (the boot, when it is PID 1)"),
        ),
        ("OnStartupSec", "timer.on_boot", None),
        (
            "OnActiveSec",
            "timer.on_boot",
            Some("counted from colony-init's start, not from the timer's activation"),
        ),
    ] {
        let all = sd.list("Timer", key);
        for (n, i) in all.iter().copied().enumerate() {
            if sd.d.has(to) || n > 0 {
                sd.drop_it(i, format!("colony takes one `{to}` per unit"));
                continue;
            }
            match systemd_timespan(&sd.items[i].value) {
                Ok(Some(t)) if to == "timer.every" && !t.is_zero() && t < MIN_EVERY => {
                    let why = match note {
                        Some(nt) => format!("colony's shortest interval; {nt}"),
                        None => "colony's shortest interval".to_string(),
                    };
                    sd.approx(i, to, V::s(fmt_duration(MIN_EVERY)), why)
                }
                Ok(Some(t)) if !t.is_zero() || to == "timer.on_boot" => match note {
                    Some(nt) => sd.approx(i, to, V::s(fmt_duration(t)), nt),
                    None => sd.carry(i, to, V::s(fmt_duration(t))),
                },
                Ok(_) => sd.drop_it(i, "not a finite, non-zero time span"),
                Err(e) => sd.drop_it(i, e),
            }
        }
    }
    if let Some(i) = sd.last("Timer", "Persistent") {
        match systemd_bool(&sd.items[i].value) {
            Some(b) => sd.carry(i, "timer.persistent", V::Bool(b)),
            None => sd.drop_it(i, "not a boolean"),
        }
    }
    if let Some(i) = sd.last("Timer", "Unit") {
        sd.same(i, "the service is merged into this timer unit");
    }
    for i in 0..sd.items.len() {
        if !sd.done[i] && sd.items[i].section == "timer:Install" {
            sd.same(
                i,
                "colony runs every enabled timer unit (enabled = true is the default)",
            );
        }
    }
    if !["timer.every", "timer.calendar", "timer.on_boot"]
        .iter()
        .any(|k| sd.d.has(k))
    {
        return Err(format!(
            "{}: the timer has no schedule colony can run (see the report); nothing imported",
            sd.d.sources
                .last()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ));
    }
    Ok(())
}

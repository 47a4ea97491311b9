//! `[Install]` and this machine's enablement links: the unit's `enabled`.

use std::path::Path;

use super::super::draft::V;
use super::source::Sd;

/// The directories of a host's systemd units: a file read from one of them can be looked up
/// in the host's enablement links.
pub(super) const SYSTEM_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// Whether `full` (e.g. `ssh.service`) is enabled on this host: a link to it in some
/// `*.wants/` or `*.requires/` directory of the system unit directories.
pub(super) fn enabled_on_host(full: &str) -> bool {
    SYSTEM_DIRS.iter().any(|d| {
        std::fs::read_dir(d).is_ok_and(|rd| {
            rd.flatten().any(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                (n.ends_with(".wants") || n.ends_with(".requires"))
                    && e.path().join(full).symlink_metadata().is_ok()
            })
        })
    })
}

/// `enabled`: systemd starts a unit at boot only when it is enabled (an [Install] section
/// and its links) or pulled in by another; a static unit (no [Install]) only when pulled in.
/// `full` is the file that decides: the timer for a timer unit.
pub(super) fn enabled(sd: &mut Sd, full: &str) {
    let section = if sd.is_timer_job {
        "timer:Install"
    } else {
        "Install"
    };
    let install = sd.items.iter().any(|i| {
        i.section == section
            && matches!(i.key.as_str(), "WantedBy" | "RequiredBy" | "UpheldBy")
            && !i.value.is_empty()
    });
    let file =
        sd.d.sources
            .iter()
            .rev()
            .find(|p| {
                p.file_name().is_some_and(|f| {
                    f.to_string_lossy().ends_with(if sd.is_timer_job {
                        ".timer"
                    } else {
                        ".service"
                    })
                })
            })
            .cloned()
            .unwrap_or_default();
    let on_host = SYSTEM_DIRS
        .iter()
        .any(|d| file.parent() == Some(Path::new(d)));
    if !install {
        sd.d.approx(
            "(no [Install] section)",
            "[Install] absent: a static unit",
            "enabled",
            V::Bool(false),
            "systemd starts a static unit only when another unit pulls it in; colony starts it with a unit that `requires` it, or on `colonyctl start`",
        );
    } else if on_host && !enabled_on_host(full) {
        sd.d.carry(
            "(this machine)",
            &format!(
                "{full} is not enabled here (no link in {}/*.wants)",
                SYSTEM_DIRS[0]
            ),
            "enabled",
            V::Bool(false),
        );
    } else if on_host {
        sd.d.same(
            "(this machine)",
            &format!("{full} is enabled here"),
            "enabled = true is the default",
        );
    }
}

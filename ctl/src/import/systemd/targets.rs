//! What a systemd target means to colony, by the dependency key that names it: colony has
//! no target units, but most targets name a point colony reaches in its own way.

/// How one `KEY=NAME.target` dependency translates.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Meaning {
    /// Already true under colony (or moot): nothing to write.
    Same(String),
    /// Ordering after a colony unit that does the target's job; the note says how it differs.
    After { unit: &'static str, note: String },
    /// No counterpart: why, and what to do instead.
    Dropped(String),
}

/// Targets that colony-init has reached before it starts any unit (file systems mounted,
/// early boot done), so ordering after them is already true.
pub(super) const REACHED: &[&str] = &[
    "sysinit.target",
    "basic.target",
    "local-fs.target",
    "local-fs-pre.target",
    "paths.target",
    "sockets.target",
    "timers.target",
    "slices.target",
    "swap.target",
];

/// Targets that stand for a mode colony-init never enters: leaving them is moot.
const MODES: &[&str] = &[
    "initrd-switch-root.target",
    "initrd.target",
    "initrd-root-fs.target",
    "initrd-fs.target",
    "initrd-root-device.target",
    "emergency.target",
    "rescue.target",
];

/// Points colony-init never reaches (initrd, rescue, sleep, the shutdown's last steps,
/// runlevels, offline updates): ordering after one waits for nothing.
fn never_reached(target: &str) -> bool {
    MODES.contains(&target)
        || target.starts_with("initrd")
        || target.starts_with("runlevel")
        || target.starts_with("system-update")
        || [
            "sleep.target",
            "suspend.target",
            "hibernate.target",
            "hybrid-sleep.target",
            "suspend-then-hibernate.target",
            "umount.target",
            "final.target",
            "shutdown.target",
            "reboot.target",
            "poweroff.target",
            "halt.target",
            "kexec.target",
        ]
        .contains(&target)
}

/// systemd's passive targets: only a unit that provides one pulls it in. Nothing does under
/// colony (unless a unit is written for it), so ordering on one, or wanting it, is moot.
const PASSIVE: &[&str] = &[
    "getty-pre.target",
    "network-pre.target",
    "nss-lookup.target",
    "nss-user-lookup.target",
    "remote-fs-pre.target",
    "cryptsetup-pre.target",
    "remote-cryptsetup.target",
    "time-set.target",
    "time-sync.target",
    "first-boot-complete.target",
    "rpcbind.target",
];

/// Targets that a unit of `examples/machine/` provides when colony-init boots a machine.
const PROVIDED: &[(&str, &str, &str)] = &[
    (
        "network.target",
        "network",
        "examples/machine/network.unit brings the network up",
    ),
    (
        "network-online.target",
        "network",
        "examples/machine/network.unit brings the network up (and is up once it is configured)",
    ),
    (
        "remote-fs.target",
        "mount-all",
        "examples/machine/mount-all.unit mounts what /etc/fstab lists, remote file systems too",
    ),
];

/// `key` is the systemd dependency (`After`, `Before`, `Wants`, `Requires`, `Conflicts`, ...).
pub(super) fn meaning(key: &str, target: &str) -> Meaning {
    let orders_after = matches!(
        key,
        "After" | "Wants" | "Requires" | "BindsTo" | "Requisite"
    );
    let at_shutdown = matches!(key, "Conflicts" | "Before");
    if orders_after && REACHED.contains(&target) {
        return Meaning::Same(format!(
            "{target} is reached before colony-init starts any unit (file systems are mounted first)"
        ));
    }
    if at_shutdown && target == "shutdown.target" {
        return Meaning::Same(
            "colony-init stops every unit at shutdown, in reverse order of `after`".into(),
        );
    }
    if matches!(key, "After" | "Wants" | "Before") && PASSIVE.contains(&target) {
        return Meaning::Same(format!(
            "{target} is a passive target: only a unit that provides it pulls it in, and none does under colony, so this orders nothing (if a colony unit does that job, name it in `after`)"
        ));
    }
    if key == "After" && never_reached(target) {
        return Meaning::Same(format!(
            "colony-init never reaches {target}: ordering after it waits for nothing"
        ));
    }
    if at_shutdown && MODES.contains(&target) {
        return Meaning::Same(format!(
            "{target}: colony-init has no initrd, rescue or emergency mode to leave"
        ));
    }
    if orders_after {
        if let Some((_, unit, how)) = PROVIDED.iter().find(|(t, _, _)| *t == target) {
            return Meaning::After {
                unit,
                note: format!(
                    "{how} when colony-init boots a machine; where no unit has that name (a container, a host whose network and mounts are up before colony), ordering after a missing unit is only a warning"
                ),
            };
        }
    }
    if key == "Before" && REACHED.contains(&target) {
        return Meaning::Dropped(format!(
            "{target}: colony has no early-boot phase: make this a boot task ([ready] type = \"exited\") and name it in the `after` of the units that need it"
        ));
    }
    if key == "Before" {
        return Meaning::Same(format!(
            "{target}: colony has no target units: nothing waits for one, so this orders nothing"
        ));
    }
    Meaning::Dropped(format!(
        "{target}: colony has no target units; if a colony unit provides it, name that unit instead"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_reads_a_target_its_own_way() {
        let same = |k: &str, t: &str| matches!(meaning(k, t), Meaning::Same(_));
        let dropped = |k: &str, t: &str| matches!(meaning(k, t), Meaning::Dropped(_));
        let after = |k: &str, t: &str| match meaning(k, t) {
            Meaning::After { unit, .. } => Some(unit),
            _ => None,
        };
        assert!(same("After", "local-fs.target"));
        assert!(dropped("Before", "local-fs.target"));
        assert!(same("Conflicts", "shutdown.target"));
        assert!(same("After", "shutdown.target"));
        assert!(dropped("Requires", "shutdown.target"));
        assert!(same("Conflicts", "rescue.target"));
        assert_eq!(after("Wants", "network-online.target"), Some("network"));
        assert_eq!(after("After", "remote-fs.target"), Some("mount-all"));
        assert!(same("Before", "network.target"));
        assert!(same("After", "sleep.target"));
        assert!(dropped("Requires", "sleep.target"));
        assert!(same("After", "nss-user-lookup.target"));
        assert!(dropped("Requires", "nss-user-lookup.target"));
        assert!(dropped("After", "multi-user.target"));
    }
}

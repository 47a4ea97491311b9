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
        assert!(matches!(
            meaning("After", "local-fs.target"),
            Meaning::Same(_)
        ));
        assert!(matches!(
            meaning("Before", "local-fs.target"),
            Meaning::Dropped(_)
        ));
        assert!(matches!(
            meaning("Conflicts", "shutdown.target"),
            Meaning::Same(_)
        ));
        assert!(matches!(
            meaning("After", "shutdown.target"),
            Meaning::Dropped(_)
        ));
        assert!(matches!(
            meaning("Conflicts", "rescue.target"),
            Meaning::Same(_)
        ));
        assert!(matches!(
            meaning("Wants", "network-online.target"),
            Meaning::After {
                unit: "network",
                ..
            }
        ));
        assert!(matches!(
            meaning("After", "remote-fs.target"),
            Meaning::After {
                unit: "mount-all",
                ..
            }
        ));
        assert!(matches!(
            meaning("Before", "network.target"),
            Meaning::Same(_)
        ));
        assert!(matches!(
            meaning("After", "sleep.target"),
            Meaning::Dropped(_)
        ));
    }
}

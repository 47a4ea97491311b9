//! `Before=sysinit.target` (and the other points of systemd's early boot): systemd orders
//! every unit with default dependencies after sysinit.target, so a unit before it runs
//! before all of them. colony has no such point: the unit is ordered `before` each unit of
//! the same import that systemd would start after it.

use super::super::draft::{Draft, Fate, V};

/// Carry each draft's `Before=` on an early-boot target as `before` the drafts that have
/// systemd's default dependencies; without any, the line is not carried.
pub(super) fn order_early(drafts: &mut [Draft]) {
    let later: Vec<String> = drafts
        .iter()
        .filter(|d| d.after_early_boot && !d.name.ends_with('@'))
        .map(|d| d.name.clone())
        .collect();
    for d in drafts.iter_mut() {
        let lines = std::mem::take(&mut d.before_early_boot);
        if lines.is_empty() {
            continue;
        }
        // Not before a unit it is itself ordered after (or needs): that would be a cycle.
        let own: Vec<V> = ["after", "requires", "wants"]
            .iter()
            .filter_map(|k| match d.get(k) {
                Some(V::Arr(a)) => Some(a.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        let names: Vec<String> = later
            .iter()
            .filter(|n| **n != d.name && !own.contains(&V::s(n.as_str())))
            .cloned()
            .collect();
        for (origin, src) in lines {
            let target = src.split_once('=').map(|x| x.1).unwrap_or_default();
            if names.is_empty() {
                d.drop_key(
                    &origin,
                    &src,
                    format!(
                        "{target}: colony has no early-boot phase, and no unit imported with this one has systemd's default dependencies: make this a boot task ([ready] type = \"exited\") and name it in the `after` of the units that need it"
                    ),
                );
                continue;
            }
            d.push_strs("before", &names);
            d.note(
                &origin,
                &src,
                Some(format!("before += [{} units]", names.len())),
                Fate::Approx(format!(
                    "systemd starts every unit with default dependencies after {target}: this one is ordered before each such unit imported with it; a unit written later must name it in `after` itself, and where systemd's {target} only wants it, colony keeps what is ordered after a failed boot task from starting"
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn draft(name: &str, default_deps: bool, early: bool) -> Draft {
        let mut d = Draft::new(name, PathBuf::from(format!("/x/{name}.service")));
        d.after_early_boot = default_deps;
        if early {
            d.before_early_boot
                .push(("x:1".into(), "Before=sysinit.target".into()));
        }
        d
    }

    #[test]
    fn early_unit_is_before_the_units_with_default_dependencies() {
        let mut ds = vec![
            draft("sysctl", false, true),
            draft("tmpfiles", false, true),
            draft("nginx", true, false),
            draft("getty@", true, false),
            draft("cron", true, false),
        ];
        ds[1].push_strs("after", &["cron".to_string()]);
        order_early(&mut ds);
        assert_eq!(ds[0].get("before"), Some(&V::strs(&["nginx", "cron"])));
        // Not before what it is after itself.
        assert_eq!(ds[1].get("before"), Some(&V::strs(&["nginx"])));
        assert!(matches!(ds[0].entries[0].fate, Fate::Approx(_)));
        // Alone, there is nothing to order.
        let mut alone = vec![draft("sysctl", false, true)];
        order_early(&mut alone);
        assert_eq!(alone[0].get("before"), None);
        assert!(matches!(alone[0].entries[0].fate, Fate::Dropped(_)));
    }
}

//! Placement: which hosts each application runs on. A pure function of the applications,
//! the hosts that are up and the current assignments, so the leader's choice is testable and
//! a new leader carries on where the last one stopped.

use std::collections::{BTreeMap, BTreeSet};

use crate::app::{glob, AppRecord, Strategy};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostInfo {
    pub labels: BTreeMap<String, String>,
    /// 1-minute load average divided by the CPU count.
    pub load_per_cpu: f64,
    /// False while its colony-init does not answer: what runs there stays, nothing new
    /// is placed there.
    pub accepting: bool,
}

#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    /// app -> the hosts it is assigned to.
    pub assign: BTreeMap<String, BTreeSet<String>>,
    /// app -> why it runs on fewer hosts than it should.
    pub why: BTreeMap<String, String>,
}

fn matches(app: &AppRecord, name: &str, labels: Option<&BTreeMap<String, String>>) -> bool {
    let p = &app.placement;
    let by_name = p.hosts.is_empty() || p.hosts.iter().any(|g| glob(g, name));
    // A lost host's labels are unknown: judged by name alone.
    let by_labels = match labels {
        None => true,
        Some(l) => p.labels.iter().all(|(k, v)| l.get(k) == Some(v)),
    };
    by_name && by_labels
}

fn describe(app: &AppRecord) -> String {
    let p = &app.placement;
    let mut parts = Vec::new();
    if !p.hosts.is_empty() {
        parts.push(format!("hosts {}", p.hosts.join(",")));
    }
    if !p.labels.is_empty() {
        let l: Vec<String> = p.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.push(format!("labels {}", l.join(",")));
    }
    if parts.is_empty() {
        "any host".to_string()
    } else {
        parts.join(" and ")
    }
}

/// Place every application. Running copies stay where they are while their host is up and
/// still matches; only missing replicas are placed, by the application's strategy.
pub fn place(
    apps: &BTreeMap<String, AppRecord>,
    up: &BTreeMap<String, HostInfo>,
    current: &BTreeMap<String, BTreeSet<String>>,
) -> Outcome {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for hosts in current.values() {
        for h in hosts {
            *count.entry(h.clone()).or_default() += 1;
        }
    }
    let mut out = Outcome::default();
    for (name, app) in apps {
        let now: Vec<&String> = current
            .get(name)
            .map(|s| s.iter().collect())
            .unwrap_or_default();
        for h in &now {
            if let Some(c) = count.get_mut(h.as_str()) {
                *c = c.saturating_sub(1);
            }
        }
        if !app.enabled {
            out.assign.insert(name.clone(), BTreeSet::new());
            out.why
                .insert(name.clone(), "stopped (fleet start runs it)".to_string());
            continue;
        }
        let want = app.placement.replicas as usize;
        let mut chosen: BTreeSet<String> = BTreeSet::new();
        let mut lost_kept = Vec::new();
        for h in &now {
            if chosen.len() >= want {
                break;
            }
            match up.get(h.as_str()) {
                Some(info) if matches(app, h, Some(&info.labels)) => {
                    chosen.insert((*h).clone());
                }
                // Not movable: it waits for its own host to come back.
                None if !app.placement.movable && matches(app, h, None) => {
                    chosen.insert((*h).clone());
                    lost_kept.push((*h).clone());
                }
                _ => {}
            }
        }
        let mut candidates: Vec<(&String, &HostInfo)> = up
            .iter()
            .filter(|(h, info)| {
                info.accepting && !chosen.contains(*h) && matches(app, h, Some(&info.labels))
            })
            .collect();
        match app.placement.strategy {
            Strategy::Config => {
                let rank = |h: &str| {
                    app.placement
                        .hosts
                        .iter()
                        .position(|g| glob(g, h))
                        .unwrap_or(usize::MAX)
                };
                candidates.sort_by(|a, b| rank(a.0).cmp(&rank(b.0)).then(a.0.cmp(b.0)));
            }
            Strategy::LeastLoaded => {
                // Applications placed in this same round count too, so a batch is not piled
                // onto the host that was idle a moment ago.
                let key = |h: &str, i: &HostInfo| {
                    i.load_per_cpu + 0.25 * count.get(h).copied().unwrap_or(0) as f64
                };
                candidates.sort_by(|a, b| {
                    key(a.0, a.1)
                        .partial_cmp(&key(b.0, b.1))
                        .unwrap_or(std::cmp::Ordering::Equal)
                        .then(a.0.cmp(b.0))
                });
            }
            Strategy::Spread => {
                let key = |h: &str| count.get(h).copied().unwrap_or(0);
                candidates.sort_by(|a, b| key(a.0).cmp(&key(b.0)).then(a.0.cmp(b.0)));
            }
        }
        for (h, _) in candidates {
            if chosen.len() >= want {
                break;
            }
            chosen.insert(h.clone());
        }
        for h in &chosen {
            *count.entry(h.clone()).or_default() += 1;
        }
        if !lost_kept.is_empty() {
            out.why.insert(
                name.clone(),
                format!(
                    "waiting for host {} to come back (not movable)",
                    lost_kept.join(", ")
                ),
            );
        } else if chosen.len() < want {
            let why = if chosen.is_empty() {
                format!("waiting: no host that is up matches {}", describe(app))
            } else {
                format!(
                    "{} of {want} replicas: only {} host(s) up match {}",
                    chosen.len(),
                    chosen.len(),
                    describe(app)
                )
            };
            out.why.insert(name.clone(), why);
        }
        out.assign.insert(name.clone(), chosen);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Placement;

    fn app(name: &str, p: Placement) -> (String, AppRecord) {
        (
            name.to_string(),
            AppRecord {
                name: name.to_string(),
                unit: String::new(),
                placement: p,
                enabled: true,
            },
        )
    }

    type Spec<'a> = (&'a str, f64, &'a [(&'a str, &'a str)]);

    fn hosts(list: &[Spec]) -> BTreeMap<String, HostInfo> {
        list.iter()
            .map(|(n, l, labels)| {
                (
                    n.to_string(),
                    HostInfo {
                        accepting: true,
                        load_per_cpu: *l,
                        labels: labels
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    },
                )
            })
            .collect()
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn config_takes_the_first_listed_host_that_is_up() {
        let apps = BTreeMap::from([app(
            "a",
            Placement {
                hosts: vec!["h3".into(), "h1".into()],
                ..Default::default()
            },
        )]);
        let up = hosts(&[("h1", 0.0, &[]), ("h2", 0.0, &[]), ("h3", 0.0, &[])]);
        let o = place(&apps, &up, &BTreeMap::new());
        assert_eq!(o.assign["a"], set(&["h3"]));
        let up = hosts(&[("h1", 0.0, &[]), ("h2", 0.0, &[])]);
        let o = place(&apps, &up, &BTreeMap::new());
        assert_eq!(o.assign["a"], set(&["h1"]));
        // Sticky: h3 coming back does not move it.
        let up = hosts(&[("h1", 0.0, &[]), ("h3", 0.0, &[])]);
        let o = place(
            &apps,
            &up,
            &BTreeMap::from([("a".to_string(), set(&["h1"]))]),
        );
        assert_eq!(o.assign["a"], set(&["h1"]));
    }

    #[test]
    fn least_loaded_spread_labels_replicas() {
        let up = hosts(&[
            ("h1", 0.9, &[("arch", "arm")]),
            ("h2", 0.1, &[("arch", "x86")]),
            ("h3", 0.5, &[("arch", "arm")]),
        ]);
        let apps = BTreeMap::from([
            app(
                "ll",
                Placement {
                    strategy: Strategy::LeastLoaded,
                    ..Default::default()
                },
            ),
            app(
                "arm",
                Placement {
                    labels: BTreeMap::from([("arch".into(), "arm".into())]),
                    strategy: Strategy::LeastLoaded,
                    replicas: 3,
                    ..Default::default()
                },
            ),
        ]);
        let o = place(&apps, &up, &BTreeMap::new());
        assert_eq!(o.assign["ll"], set(&["h2"]));
        assert_eq!(o.assign["arm"], set(&["h1", "h3"]));
        assert!(o.why["arm"].contains("2 of 3"), "{:?}", o.why);
        let apps: BTreeMap<_, _> = (0..6)
            .map(|i| {
                app(
                    &format!("s{i}"),
                    Placement {
                        strategy: Strategy::Spread,
                        ..Default::default()
                    },
                )
            })
            .collect();
        let o = place(&apps, &up, &BTreeMap::new());
        let mut per: BTreeMap<&str, usize> = BTreeMap::new();
        for hs in o.assign.values() {
            for h in hs {
                *per.entry(h.as_str()).or_default() += 1;
            }
        }
        assert_eq!(per.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
    }

    #[test]
    fn lost_hosts_movable_or_not_and_waiting() {
        let up = hosts(&[("h2", 0.0, &[])]);
        let current = BTreeMap::from([
            ("m".to_string(), set(&["h1"])),
            ("f".to_string(), set(&["h1"])),
        ]);
        let apps = BTreeMap::from([
            app("m", Placement::default()),
            app(
                "f",
                Placement {
                    movable: false,
                    ..Default::default()
                },
            ),
            app(
                "w",
                Placement {
                    hosts: vec!["board-*".into()],
                    ..Default::default()
                },
            ),
        ]);
        let o = place(&apps, &up, &current);
        assert_eq!(o.assign["m"], set(&["h2"]));
        assert_eq!(o.assign["f"], set(&["h1"]));
        assert!(o.why["f"].contains("h1"));
        assert!(o.assign["w"].is_empty());
        assert!(o.why["w"].contains("board-*"), "{:?}", o.why);
        // A host whose colony-init does not answer keeps what it runs, gets nothing new.
        let mut up = hosts(&[("h1", 0.0, &[]), ("h2", 0.0, &[])]);
        up.get_mut("h1").unwrap().accepting = false;
        let current = BTreeMap::from([("m".to_string(), set(&["h1"]))]);
        let apps = BTreeMap::from([
            app("m", Placement::default()),
            app(
                "n",
                Placement {
                    hosts: vec!["h1".into()],
                    ..Default::default()
                },
            ),
        ]);
        let o = place(&apps, &up, &current);
        assert_eq!(o.assign["m"], set(&["h1"]));
        assert!(o.assign["n"].is_empty());
    }
}

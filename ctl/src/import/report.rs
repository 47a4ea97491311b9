//! The report: for every source key, what it became or why it was not carried.

use super::draft::{Draft, Entry, Fate};

/// Counts of entries by fate.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub carried: usize,
    pub approx: usize,
    pub same: usize,
    pub dropped: usize,
}

impl Tally {
    pub fn add(&mut self, entries: &[Entry]) {
        for e in entries {
            match e.fate {
                Fate::Carried => self.carried += 1,
                Fate::Approx(_) => self.approx += 1,
                Fate::Same(_) => self.same += 1,
                Fate::Dropped(_) => self.dropped += 1,
            }
        }
    }
    pub fn total(&self) -> usize {
        self.carried + self.approx + self.same + self.dropped
    }
    /// Per cent of keys translated (carried, approximated, or already colony's behaviour).
    pub fn translated_pct(&self) -> f64 {
        if self.total() == 0 {
            return 100.0;
        }
        100.0 * (self.total() - self.dropped) as f64 / self.total() as f64
    }
    pub fn line(&self) -> String {
        format!(
            "{} keys: {} carried, {} approximated, {} already so in colony, {} not carried",
            self.total(),
            self.carried,
            self.approx,
            self.same,
            self.dropped
        )
    }
}

/// One entry as a report line.
pub fn entry_line(e: &Entry) -> String {
    let to =
        e.to.as_deref()
            .map(|t| format!(" -> {t}"))
            .unwrap_or_default();
    match &e.fate {
        Fate::Carried => format!("  carried     {}  {}{to}", e.origin, e.source),
        Fate::Approx(why) => format!("  approx      {}  {}{to}  ({why})", e.origin, e.source),
        Fate::Same(why) => format!("  same        {}  {}: {why}", e.origin, e.source),
        Fate::Dropped(why) => format!("  NOT CARRIED {}  {}: {why}", e.origin, e.source),
    }
}

fn entry_json(e: &Entry) -> serde_json::Value {
    let (fate, note) = match &e.fate {
        Fate::Carried => ("carried", None),
        Fate::Approx(w) => ("approx", Some(w)),
        Fate::Same(w) => ("same", Some(w)),
        Fate::Dropped(w) => ("dropped", Some(w)),
    };
    serde_json::json!({
        "origin": e.origin,
        "source": e.source,
        "to": e.to,
        "fate": fate,
        "note": note,
    })
}

/// `import --json`: the units (with their text), every source key's fate, and the totals.
pub fn json(
    drafts: &[Draft],
    general: &[Entry],
    out_dir: &std::path::Path,
    tally: &Tally,
    dry_run: bool,
) -> serde_json::Value {
    let units: Vec<serde_json::Value> = drafts
        .iter()
        .map(|d| {
            serde_json::json!({
                "name": d.name,
                "path": out_dir.join(format!("{}.unit", d.name)),
                "sources": d.sources,
                "text": d.render(),
                "warnings": d.warnings,
                "keys": d.entries.iter().map(entry_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "dry_run": dry_run,
        "units": units,
        "general": general.iter().map(entry_json).collect::<Vec<_>>(),
        "keys": {
            "carried": tally.carried,
            "approx": tally.approx,
            "same": tally.same,
            "dropped": tally.dropped,
        },
        "translated_pct": tally.translated_pct(),
    })
}

/// The report of one unit.
pub fn unit_report(d: &Draft) -> String {
    let mut out = format!(
        "{}.unit  (from {})\n",
        d.name,
        d.sources
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    // In source order: by file (as listed in sources), then line; defaults last.
    let rank = |e: &Entry| -> (usize, usize) {
        match e.origin.rsplit_once(':') {
            Some((file, line)) => {
                let f = d
                    .sources
                    .iter()
                    .position(|s| s.display().to_string() == file)
                    .unwrap_or(usize::MAX - 1);
                (f, line.parse().unwrap_or(0))
            }
            None => (usize::MAX, 0),
        }
    };
    let mut entries: Vec<&Entry> = d.entries.iter().collect();
    entries.sort_by_key(|e| rank(e));
    for e in entries {
        out.push_str(&entry_line(e));
        out.push('\n');
    }
    for w in &d.warnings {
        out.push_str(&format!("  warning     {w}\n"));
    }
    let mut t = Tally::default();
    t.add(&d.entries);
    out.push_str(&format!("  {}\n", t.line()));
    out
}

/// The keys not carried over, most frequent first: `LimitNOFILE (3), PrivateTmp (2)`.
pub fn dropped_by_key(drafts: &[Draft], general: &[Entry]) -> String {
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let all = drafts
        .iter()
        .flat_map(|d| d.entries.iter())
        .chain(general.iter());
    for e in all.filter(|e| matches!(e.fate, Fate::Dropped(_))) {
        let key = e
            .source
            .split('=')
            .next()
            .unwrap_or(&e.source)
            .trim()
            .to_string();
        *counts.entry(key).or_default() += 1;
    }
    let mut v: Vec<(String, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.iter()
        .map(|(k, n)| format!("{k} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

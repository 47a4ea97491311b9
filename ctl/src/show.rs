//! `colonyctl show NAME`: the unit as colony-init reads it, every key with its default filled
//! in, as TOML a unit file could hold. Values colony-init decides from its own options (a
//! restart delay, the stop timeout) are shown with colony-init's defaults and a comment
//! naming the option.

use std::time::Duration;

mod exec_env;

use toml_edit::{value, Array, DocumentMut, InlineTable, Item, Table, Value};
use units::model::{HealthCheck, ReadyType, RestartPolicy, Unit};

/// colony-init's defaults for what a unit leaves to it (its `--help` lists them).
const INIT_DEFAULTS: &[(&str, &str, &str)] = &[
    ("delay_min", "1s", "--min-restart-delay"),
    ("delay_max", "1h", "--max-restart-delay"),
    ("threshold", "1s", "--threshold"),
    ("timeout", "5s", "--kill-timeout"),
];

/// `90s`, `500ms`, `1h`: the shortest exact spelling `parse_duration` reads back.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) || ms == 0 {
        if !d.subsec_nanos().is_multiple_of(1_000_000) {
            return format!("{}us", d.as_micros());
        }
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    match s {
        _ if s.is_multiple_of(86400) => format!("{}d", s / 86400),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// `10M`, `512K`, or bytes.
pub fn size(n: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if n != 0 && n.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

fn strings<'a>(v: impl IntoIterator<Item = &'a String>) -> Item {
    let mut a = Array::new();
    for s in v {
        a.push(s.as_str());
    }
    value(a)
}

fn signal(n: i32) -> Item {
    match units::values::signal_name(n) {
        Some(s) => value(s),
        None => value(i64::from(n)),
    }
}

fn capability_names(mask: u64) -> Item {
    let mut a = Array::new();
    for c in caps::all() {
        if c.index() < 64 && mask & c.bitmask() != 0 {
            a.push(c.to_string());
        }
    }
    value(a)
}

/// A value colony-init decides when the unit is silent: its default, with a comment.
fn or_init(t: &mut Table, key: &str, v: Option<Duration>) {
    match v {
        Some(d) => t[key] = value(duration(d)),
        None => {
            let (_, default, option) = INIT_DEFAULTS
                .iter()
                .find(|(k, _, _)| *k == key)
                .copied()
                .unwrap_or((key, "", ""));
            let mut v = Value::from(default);
            v.decor_mut().set_suffix(format!(
                "  # colony-init's {option}: {default} unless it was started with another"
            ));
            t[key] = Item::Value(v);
        }
    }
}

fn opt_duration(t: &mut Table, key: &str, v: Option<Duration>) {
    if let Some(d) = v {
        t[key] = value(duration(d));
    }
}

/// Where colony-init keeps things, for the paths a unit leaves to it.
#[derive(Debug, Clone, Default)]
pub struct Places {
    /// RUN (heartbeat files).
    pub run_dir: Option<std::path::PathBuf>,
    /// LOG_DIR as colony-init recorded it.
    pub log_dir: Option<std::path::PathBuf>,
}

/// The TOML text of `u` with every key colony-init uses.
pub fn render(u: &Unit, places: &Places) -> String {
    let mut doc = DocumentMut::new();
    doc.decor_mut().set_prefix(format!(
        "# {}: every key, defaults filled in (`colonyctl cat {}`: the file as written)\n",
        u.path.display(),
        u.name
    ));
    if let Some(d) = &u.description {
        doc["description"] = value(d.as_str());
    }
    doc["exec"] = strings(&u.exec);
    if let Some(d) = &u.directory {
        doc["directory"] = value(d.to_string_lossy().as_ref());
    }
    let mut env = InlineTable::new();
    for (k, v) in &u.environment {
        env.insert(k, v.as_str().into());
    }
    doc["environment"] = value(env);
    // No user: colony-init's own (there is no key for that).
    if let Some(user) = &u.identity.user {
        doc["user"] = value(user.name.as_str());
    }
    if let Some(g) = u.identity.gid {
        doc["group"] = value(i64::from(g));
    }
    if let Some(gs) = &u.identity.supplementary_groups {
        let mut a = Array::new();
        for g in gs {
            a.push(i64::from(*g));
        }
        doc["supplementary_groups"] = value(a);
    }
    if let Some(m) = u.umask {
        doc["umask"] = value(format!("{m:04o}"));
    }
    if let Some(n) = u.nofile {
        doc["nofile"] = value(n as i64);
    }
    if let Some(mask) = u.capabilities {
        doc["capabilities"] = capability_names(mask);
    }
    doc["no_new_privileges"] = value(u.no_new_privileges);
    doc["after"] = strings(&u.after);
    doc["requires"] = strings(&u.requires);
    doc["tags"] = strings(&u.tags);
    doc["enabled"] = value(u.enabled);
    doc["essential"] = value(u.essential);
    if let Some(n) = u.instances {
        doc["instances"] = value(i64::from(n));
    }
    doc["wants"] = strings(&u.links.wants);
    doc["before"] = strings(&u.links.before);
    doc["conflicts"] = strings(&u.links.conflicts);
    for c in &u.conditions {
        let text = format!(
            "{}{}{}",
            if c.trigger { "|" } else { "" },
            if c.negate { "!" } else { "" },
            c.arg
        );
        let key = c.key();
        let mut arr = match doc.get(&key).and_then(|i| i.as_array()) {
            Some(a) => a.clone(),
            None => Array::new(),
        };
        arr.push(text);
        doc[key.as_str()] = value(arr);
    }
    for kind in units::hooks::HookKind::ALL {
        let lines = u.hooks.get(kind);
        if !lines.is_empty() {
            let lines: Vec<String> = lines.iter().map(units::hooks::render_hook_line).collect();
            doc[kind.key()] = strings(&lines);
        }
    }
    // `extras` as written (JSON of a TOML table converts back losslessly).
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_str(&u.extras_json) {
        if !o.is_empty() {
            if let Ok(text) = toml::to_string(&serde_json::json!({ "extras": o })) {
                if let Ok(d) = text.parse::<DocumentMut>() {
                    if let Some(x) = d.get("extras") {
                        doc["extras"] = x.clone();
                    }
                }
            }
        }
    }

    let mut restart = Table::new();
    restart["policy"] = value(match u.restart.policy {
        RestartPolicy::Always => "always",
        RestartPolicy::OnFailure => "on-failure",
        RestartPolicy::Never => "never",
    });
    let mut codes = Array::new();
    for c in &u.restart.success_codes {
        codes.push(i64::from(*c));
    }
    restart["success_codes"] = value(codes);
    or_init(&mut restart, "delay_min", u.restart.delay_min);
    or_init(&mut restart, "delay_max", u.restart.delay_max);
    or_init(&mut restart, "threshold", u.restart.threshold);
    // No limit (the default) has no value to show.
    if let Some(n) = u.restart.max_failures {
        restart["max_failures"] = value(i64::from(n));
    }
    doc["restart"] = Item::Table(restart);

    let mut stop = Table::new();
    stop["signal"] = signal(u.stop.signal);
    or_init(&mut stop, "timeout", u.stop.timeout);
    if u.stop.sighup {
        stop["sighup"] = value(true);
    }
    doc["stop"] = Item::Table(stop);

    let mut ready = Table::new();
    match &u.ready.kind {
        ReadyType::Started => ready["type"] = value("started"),
        ReadyType::Notify => ready["type"] = value("notify"),
        ReadyType::Exited => ready["type"] = value("exited"),
        ReadyType::Tcp(a) => {
            ready["type"] = value("tcp");
            ready["address"] = value(a.as_str());
        }
        ReadyType::File(p) => {
            ready["type"] = value("file");
            ready["path"] = value(p.to_string_lossy().as_ref());
        }
    }
    opt_duration(&mut ready, "timeout", u.ready.timeout);
    opt_duration(&mut ready, "watchdog", u.ready.watchdog);
    ready["settle"] = value(duration(u.ready.settle));
    doc["ready"] = Item::Table(ready);

    if let Some(h) = &u.health {
        let mut t = Table::new();
        match &h.check {
            HealthCheck::Http(url) => t["http"] = value(url.as_str()),
            HealthCheck::Tcp(a) => t["tcp"] = value(a.as_str()),
            HealthCheck::Exec(argv) => t["exec"] = strings(argv),
        }
        t["period"] = value(duration(h.period));
        t["timeout"] = value(duration(h.timeout));
        t["max_bad"] = value(i64::from(h.max_bad));
        t["grace"] = value(duration(h.grace));
        doc["health"] = Item::Table(t);
    }

    let r = &u.resources;
    if r.any() {
        let mut t = Table::new();
        if let Some(b) = r.memory_max {
            t["memory_max"] = value(size(b));
        }
        if let Some(b) = r.memory_high {
            t["memory_high"] = value(size(b));
        }
        if let Some(p) = r.cpu_max {
            t["cpu_max"] = value(format!("{p}%"));
        }
        if let Some(w) = r.cpu_weight {
            t["cpu_weight"] = value(i64::from(w));
        }
        if let Some(n) = r.tasks_max {
            t["tasks_max"] = value(n as i64);
        }
        doc["resources"] = Item::Table(t);
    }

    if let Some(hb) = &u.heartbeat {
        let mut t = Table::new();
        let file = match (&hb.file, &places.run_dir) {
            (Some(f), _) => f.to_string_lossy().into_owned(),
            (None, Some(run)) => run.join("heartbeat").join(&u.name).display().to_string(),
            (None, None) => format!("RUN/heartbeat/{}", u.name),
        };
        t["file"] = value(file);
        t["period"] = value(duration(hb.period));
        t["grace"] = value(duration(hb.grace));
        doc["heartbeat"] = Item::Table(t);
    }

    if let Some(tm) = &u.timer {
        let mut t = Table::new();
        opt_duration(&mut t, "every", tm.every);
        if let Some(c) = &tm.calendar {
            t["calendar"] = value(c.text.as_str());
        }
        opt_duration(&mut t, "on_boot", tm.on_boot);
        t["persistent"] = value(tm.persistent);
        opt_duration(&mut t, "timeout", tm.timeout);
        doc["timer"] = Item::Table(t);
    }

    let mut log = Table::new();
    let file = match (&u.log.file, &places.log_dir) {
        (Some(f), _) => f.to_string_lossy().into_owned(),
        (None, Some(d)) => d.join(format!("{}.log", u.name)).display().to_string(),
        (None, None) => format!("LOG_DIR/{}.log", u.name),
    };
    log["file"] = value(file);
    log["max_size"] = value(size(u.log.max_size));
    log["keep"] = value(i64::from(u.log.keep));
    doc["log"] = Item::Table(log);
    exec_env::render(&mut doc, u);
    // A blank line before each section, as people write them.
    for (_, item) in doc.as_table_mut().iter_mut() {
        if let Item::Table(t) = item {
            t.decor_mut().set_prefix("\n");
        }
    }
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_back() {
        for d in [
            Duration::from_millis(500),
            Duration::from_secs(90),
            Duration::from_secs(3600),
            Duration::from_secs(86400 * 2),
            Duration::from_secs(120),
            Duration::from_micros(1500),
        ] {
            assert_eq!(units::values::parse_duration(&duration(d)), Ok(d), "{d:?}");
        }
        for n in [0, 1, 1024, 10 << 20, 3 << 30, 12345] {
            assert_eq!(units::values::parse_size(&size(n)), Ok(n), "{n}");
        }
    }

    #[test]
    fn show_fills_in_defaults_and_reads_back_as_the_same_unit() {
        let path = std::path::Path::new("/u/web.unit");
        let text = "# mine\nexec = [\"/bin/web\", \"-p\", \"80\"]\ntags = [\"front\"]\n\
            exec_start_pre = [\"-/bin/check 'a b'\"]\nexec_reload = [\"/bin/kill -HUP $MAINPID\"]\n\
            wants = [\"m\"]\nbefore = [\"n\"]\nconflicts = [\"o\"]\ninstances = 2\n\
            condition_path_exists = [\"/etc/a\", \"|!/etc/b\"]\nassert_host = \"h\"\n[health]\ntcp = \"127.0.0.1:80\"\n[resources]\nmemory_max = \"256M\"\n[log]\nkeep = 2\n";
        let unit = units::parse::parse_unit(path, text).unwrap();
        let shown = render(&unit, &Places::default());
        let t: toml::Table = shown.parse().unwrap();
        // Every section, defaults filled in.
        assert_eq!(t["enabled"].as_bool(), Some(true));
        assert_eq!(t["restart"]["policy"].as_str(), Some("always"));
        assert_eq!(t["stop"]["signal"].as_str(), Some("SIGTERM"));
        assert_eq!(t["ready"]["type"].as_str(), Some("started"));
        assert_eq!(t["ready"]["settle"].as_str(), Some("0ms"));
        assert_eq!(t["health"]["period"].as_str(), Some("10s"));
        assert_eq!(t["log"]["max_size"].as_str(), Some("10M"));
        assert_eq!(t["log"]["keep"].as_integer(), Some(2));
        assert!(shown.contains("# colony-init's --kill-timeout"), "{shown}");
        // What it says is the same unit (but for what colony-init's options decide and the
        // placeholders of where files go).
        let mut back: toml::Table = shown.parse().unwrap();
        back["log"].as_table_mut().unwrap().remove("file");
        let again = units::parse::parse_unit(path, &toml::to_string(&back).unwrap()).unwrap();
        let mut want = unit.clone();
        want.restart.delay_min = again.restart.delay_min;
        want.restart.delay_max = again.restart.delay_max;
        want.restart.threshold = again.restart.threshold;
        want.stop.timeout = again.stop.timeout;
        assert_eq!(again, want);
    }
}

/// The running colony-init's `version` (and a reexec's answer).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct InitVersion {
    pub version: String,
    pub started: String,
    pub reexecuted: Option<String>,
    #[serde(default)]
    pub reexecs: u64,
    #[serde(default)]
    pub pid: u32,
}

impl InitVersion {
    pub(crate) fn describe(&self) -> String {
        format!(
            "colony-init {} (pid {}), started {}, {}",
            self.version,
            self.pid,
            self.started,
            match &self.reexecuted {
                Some(t) => format!("last re-executed {t} ({} reexecs)", self.reexecs),
                None => "never re-executed".to_string(),
            }
        )
    }
}

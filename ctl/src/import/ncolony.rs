//! NColony's configuration directory (one JSON file per process, as `ncolony ctl add`
//! writes it) to units.

use std::path::{Path, PathBuf};

use serde_json::Value as J;

use super::draft::{unit_name, Draft, Fate, V};

/// The JSON files of a config directory, or the file itself.
pub fn files(p: &Path) -> Result<Vec<PathBuf>, String> {
    if p.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| format!("{}: {e}", p.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        v.sort();
        Ok(v)
    } else {
        Ok(vec![p.to_path_buf()])
    }
}

/// Does this text look like an NColony process file?
pub fn looks_like(text: &str) -> bool {
    serde_json::from_str::<J>(text)
        .ok()
        .is_some_and(|j| j.get("args").is_some_and(|a| a.is_array()))
}

fn has_nul(j: &J) -> bool {
    match j {
        J::String(s) => s.contains('\0'),
        J::Array(a) => a.iter().any(has_nul),
        J::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// The program a unit can run: an absolute path or a bare name looked up in PATH.
fn program_ok(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("the program is empty".into());
    }
    if p.contains('/') && !p.starts_with('/') {
        return Err(format!(
            "`{p}` is relative to NColony's working directory, which is not known here: give an absolute path"
        ));
    }
    Ok(())
}

fn to_v(j: &J) -> Option<V> {
    Some(match j {
        J::String(s) => V::s(s.as_str()),
        J::Bool(b) => V::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => V::Int(i),
            None => V::s(n.to_string()),
        },
        J::Array(a) => V::Arr(a.iter().filter_map(to_v).collect()),
        J::Object(o) => V::Table(
            o.iter()
                .filter_map(|(k, v)| to_v(v).map(|v| (k.clone(), v)))
                .collect(),
        ),
        J::Null => return None,
    })
}

fn secs(j: Option<&J>) -> Option<f64> {
    j.and_then(|v| v.as_f64()).filter(|f| *f >= 0.0)
}

/// A century in milliseconds: NColony takes any float, colony's durations stop short of
/// u64::MAX milliseconds (`1e300` became "18446744073709551615ms", which no parser reads).
const MAX_MS: f64 = 100.0 * 365.25 * 86400.0 * 1000.0;

fn dur(s: f64) -> String {
    let ms = (s * 1000.0).round().min(MAX_MS) as u64;
    super::words::fmt_duration(std::time::Duration::from_millis(ms))
}

/// The names of NColony's helper programs, which colony does itself.
const HELPERS: &[(&str, &str)] = &[
    (
        "ncolony-beatcheck",
        "colony checks heartbeats itself ([heartbeat] of each unit)",
    ),
    (
        "ncolony_beatcheck",
        "colony checks heartbeats itself ([heartbeat] of each unit)",
    ),
    (
        "ncolony-httpcheck",
        "colony checks health itself ([health] of each unit)",
    ),
    (
        "ncolony_httpcheck",
        "colony checks health itself ([health] of each unit)",
    ),
];

pub enum Outcome {
    Unit(Box<Draft>),
    /// A helper that colony replaces: the reason.
    Helper(String),
}

pub fn import_file(path: &Path) -> Result<Outcome, String> {
    let text = crate::import::input::read_text(path)?;
    let j: J =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let obj = j
        .as_object()
        .ok_or_else(|| format!("{}: not a JSON object", path.display()))?;
    if has_nul(&j) {
        return Err(format!(
            "{}: a string holds a NUL character (\\u0000), which no argument, path or variable can",
            path.display()
        ));
    }
    let shown = path.display().to_string();
    let o = shown.as_str();
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().to_string())
        .unwrap_or_default();
    let raw = file.strip_suffix(".json").unwrap_or(&file).to_string();
    let args: Vec<String> = match obj.get("args").and_then(|a| a.as_array()) {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{shown}: args: every element must be a string"))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(format!("{shown}: no \"args\": there is no program to run")),
    };
    for (h, why) in HELPERS {
        if args.iter().any(|a| a == h) {
            return Ok(Outcome::Helper((*why).to_string()));
        }
    }
    let name = unit_name(&raw);
    let mut d = Draft::new(&name, path.to_path_buf());
    d.header.push(format!(
        "Imported from {shown} (NColony) by colonyctl import."
    ));
    if name != raw {
        d.warnings
            .push(format!("named `{name}`: `{raw}` is not a valid unit name"));
    }
    let args_src = format!(
        "args={}",
        serde_json::to_string(&obj["args"]).unwrap_or_default()
    );
    // A process run by ncolony-scheduler is a timer job.
    if let Some(pos) = args
        .iter()
        .position(|a| a == "ncolony-scheduler" || a == "ncolony_scheduler")
    {
        let mut job = Vec::new();
        let (mut freq, mut timeout, mut grace) = (None, None, None);
        let mut it = args[pos + 1..].iter();
        while let Some(a) = it.next() {
            let (k, v) = match a.split_once('=') {
                Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
                _ => (a.clone(), None),
            };
            let mut val = || v.clone().or_else(|| it.next().cloned());
            match k.as_str() {
                "--arg" => job.extend(val()),
                "--frequency" => freq = val().and_then(|x| x.parse::<f64>().ok()),
                "--timeout" => timeout = val().and_then(|x| x.parse::<f64>().ok()),
                "--grace" => grace = val().and_then(|x| x.parse::<f64>().ok()),
                _ => {}
            }
        }
        let Some(f) = freq.filter(|f| *f > 0.0) else {
            return Err(format!("{shown}: ncolony-scheduler without --frequency"));
        };
        if job.is_empty() {
            return Err(format!("{shown}: ncolony-scheduler without --arg"));
        }
        program_ok(&job[0]).map_err(|e| format!("{shown}: --arg: {e}"))?;
        d.approx(
            o,
            &args_src,
            "exec",
            V::strs(&job),
            "the job of ncolony-scheduler, run by colony's timer directly",
        );
        d.set("timer.every", V::s(dur(f)));
        d.note(
            o,
            "--frequency",
            Some(format!("timer.every = \"{}\"", dur(f))),
            Fate::Carried,
        );
        if let Some(t) = timeout.filter(|t| *t > 0.0) {
            d.set("timer.timeout", V::s(dur(t)));
            d.note(
                o,
                "--timeout",
                Some(format!("timer.timeout = \"{}\"", dur(t))),
                Fate::Carried,
            );
        }
        if let Some(g) = grace.filter(|g| *g > 0.0) {
            d.set("stop.timeout", V::s(dur(g)));
            d.note(
                o,
                "--grace",
                Some(format!("stop.timeout = \"{}\"", dur(g))),
                Fate::Carried,
            );
        }
    } else {
        program_ok(&args[0]).map_err(|e| format!("{shown}: args: {e}"))?;
        d.carry(o, &args_src, "exec", V::strs(&args));
    }
    for (k, v) in obj {
        let src = format!("{k}={}", serde_json::to_string(v).unwrap_or_default());
        match k.as_str() {
            "args" => {}
            "env" => match v.as_object() {
                Some(env) => {
                    let mut set = Vec::new();
                    let mut approx = false;
                    let mut skipped = Vec::new();
                    for (ek, ev) in env {
                        // No process can have a variable named "" or "A=B".
                        if ek.is_empty() || ek.contains('=') {
                            skipped.push(format!("{ek:?}"));
                            continue;
                        }
                        let s = match ev {
                            J::String(s) => s.clone(),
                            other => {
                                approx = true;
                                other.to_string()
                            }
                        };
                        set.push(format!("{ek} = {}", V::s(s.as_str())));
                        d.table_set("environment", ek, V::s(s));
                    }
                    let to = Some(format!("environment: {}", set.join(", ")));
                    let fate = if !skipped.is_empty() {
                        Fate::Approx(format!("not variable names, skipped: {}", skipped.join(", ")))
                    } else if approx {
                        Fate::Approx("values that were not strings were written as their JSON text".into())
                    } else {
                        Fate::Carried
                    };
                    d.note(o, &src, to, fate);
                }
                None => d.drop_key(o, &src, "not an object"),
            },
            "env_inherit" => d.drop_key(o, &src, "colony gives a unit exactly its `environment` (plus COLONY_*): set the values there"),
            "uid" => match v.as_i64() {
                Some(n) if u32::try_from(n).is_ok() => d.carry(o, &src, "user", V::Int(n)),
                _ => d.drop_key(o, &src, "not a uid"),
            },
            "gid" => match v.as_i64() {
                Some(n) if u32::try_from(n).is_ok() => d.carry(o, &src, "group", V::Int(n)),
                _ => d.drop_key(o, &src, "not a gid"),
            },
            "group" => match v.as_array() {
                Some(g) => {
                    let tags: Vec<String> = g.iter().filter_map(|x| x.as_str()).map(unit_name).collect();
                    d.push_strs("tags", &tags);
                    d.note(o, &src, Some(format!("tags = {}", V::strs(&tags))), Fate::Approx("restart a group with `colonyctl restart @TAG`".into()));
                }
                None => d.drop_key(o, &src, "not a list of group names"),
            },
            "ncolony.beatcheck" => beatcheck(&mut d, o, &src, v, &name),
            "ncolony.httpcheck" => httpcheck(&mut d, o, &src, v),
            "extras" if v.is_object() => {
                if let Some(V::Table(t)) = to_v(v) {
                    for (ek, ev) in t {
                        d.table_set("extras", &ek, ev);
                    }
                }
                d.note(o, &src, Some("extras".into()), Fate::Carried);
            }
            _ => match to_v(v) {
                Some(x) => {
                    let to = format!("extras.{k} = {x}");
                    d.table_set("extras", k, x);
                    d.note(o, &src, Some(to), Fate::Approx("an extra of `ncolony ctl add --extras`: given to the program in COLONY_CONFIG".into()));
                }
                None => d.drop_key(o, &src, "null has no TOML form"),
            },
        }
    }
    // Programs written for NColony read these.
    d.table_set("environment", "NCOLONY_NAME", V::s(raw.as_str()));
    d.table_set("environment", "NCOLONY_CONFIG", V::s(text.trim_end()));
    d.note(o, "NCOLONY_NAME, NCOLONY_CONFIG (set by NColony)", Some("environment.NCOLONY_NAME, environment.NCOLONY_CONFIG".into()), Fate::Approx("kept for programs written for NColony (the file's text as it is now); colony also gives COLONY_UNIT and COLONY_CONFIG (the extras)".into()));
    if !d.has("timer.every") {
        d.same("(ncolony defaults)", "restart always, --threshold 1, --killtime 5, --minrestartdelay 1, --maxrestartdelay 3600", "colony-init's defaults are the same (restart always, threshold 1s, kill timeout 5s, delays 1s to 1h)");
    }
    Ok(Outcome::Unit(Box::new(d)))
}

fn beatcheck(d: &mut Draft, o: &str, src: &str, v: &J, name: &str) {
    let period = secs(v.get("period"));
    let grace = secs(v.get("grace"));
    let status = v.get("status").and_then(|s| s.as_str());
    let Some(period) = period.filter(|p| *p > 0.0) else {
        d.drop_key(o, src, "no period");
        return;
    };
    let mut to = Vec::new();
    let mut notes = Vec::new();
    d.set("heartbeat.period", V::s(dur(period)));
    to.push(format!("heartbeat.period = \"{}\"", dur(period)));
    if let Some(g) = grace {
        // NColony's grace counts periods.
        let g = dur(g * period);
        d.set("heartbeat.grace", V::s(g.as_str()));
        to.push(format!("heartbeat.grace = \"{g}\""));
    }
    if let Some(s) = status {
        let p = Path::new(s);
        if p.is_absolute() {
            let file = if p.is_dir() {
                p.join(name)
            } else {
                p.to_path_buf()
            };
            d.set("heartbeat.file", V::s(file.display().to_string()));
            to.push(format!(
                "heartbeat.file = {}",
                V::s(file.display().to_string())
            ));
        } else {
            notes.push(format!("the relative status path `{s}` is not carried: the program finds its file in COLONY_HEARTBEAT"));
        }
    }
    let fate = if notes.is_empty() {
        Fate::Carried
    } else {
        Fate::Approx(notes.join("; "))
    };
    d.note(o, src, Some(to.join(", ")), fate);
}

fn httpcheck(d: &mut Draft, o: &str, src: &str, v: &J) {
    let Some(url) = v.get("url").and_then(|u| u.as_str()) else {
        d.drop_key(o, src, "no url");
        return;
    };
    if let Err(e) = units::parse::parse_http_url(url) {
        d.drop_key(o, src, e);
        return;
    }
    let period = secs(v.get("period")).filter(|p| *p > 0.0).unwrap_or(10.0);
    let timeout = secs(v.get("timeout"))
        .filter(|t| *t > 0.0)
        .unwrap_or(period)
        .min(period);
    let max_bad = v.get("maxBad").and_then(|m| m.as_i64()).unwrap_or(0).max(0) + 1;
    let grace = secs(v.get("grace")).unwrap_or(0.0) * period;
    d.set("health.http", V::s(url));
    d.set("health.period", V::s(dur(period)));
    d.set("health.timeout", V::s(dur(timeout)));
    d.set("health.max_bad", V::Int(max_bad));
    d.set("health.grace", V::s(dur(grace)));
    d.note(
        o,
        src,
        Some(format!(
            "[health] http = {}, period = \"{}\", timeout = \"{}\", max_bad = {max_bad}, grace = \"{}\"",
            V::s(url),
            dur(period),
            dur(timeout),
            dur(grace)
        )),
        Fate::Carried,
    );
}

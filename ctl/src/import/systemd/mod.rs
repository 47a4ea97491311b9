//! systemd `.service` and `.timer` files (with their drop-ins) to units.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::draft::{unit_name, Draft, Entry, Fate, V};
use super::words::systemd_bool;
use install::enabled;
use keys::{capabilities, dependencies, logging, resources};
use reasons::{default_reason, drop_reason, same_reason};
use source::{load, split_name, Item, Sd};

mod early;
mod exec;
mod exec_env;
mod hooks;
mod identity;
mod install;
mod keys;
mod lifecycle;
mod reasons;
mod sandbox;
mod source;
mod start_limit;
mod targets;
mod timer;
mod tty;

/// Import a set of systemd files: each `.timer` is merged with the service it activates
/// (which is then not imported on its own); every other `.service` becomes a unit.
pub fn import(paths: &[PathBuf]) -> Result<(Vec<Draft>, Vec<Entry>), String> {
    let mut out = Vec::new();
    let mut general = Vec::new();
    // A masked unit (a link to /dev/null) has nothing to import.
    let masked = |p: &Path| std::fs::canonicalize(p).is_ok_and(|c| c == Path::new("/dev/null"));
    let paths: Vec<PathBuf> = paths
        .iter()
        .filter(|p| {
            if masked(p) {
                general.push(Entry {
                    origin: p.display().to_string(),
                    source: "(link to /dev/null)".into(),
                    to: None,
                    fate: Fate::Same("a masked unit: nothing to import".into()),
                });
                false
            } else {
                true
            }
        })
        .cloned()
        .collect();
    // An alias (a link to another unit file also imported, e.g. udev.service to
    // systemd-udevd.service) is that unit: imported once, under the name it links to.
    let canon: Vec<Option<PathBuf>> = paths
        .iter()
        .map(|p| std::fs::canonicalize(p).ok())
        .collect();
    let paths: Vec<PathBuf> = paths
        .iter()
        .enumerate()
        .filter(|(i, p)| {
            let target = match &canon[*i] {
                Some(c) if c.file_name() != p.file_name() => c,
                _ => return true,
            };
            let imported = canon
                .iter()
                .zip(&paths)
                .any(|(c, q)| c.as_ref() == Some(target) && q.file_name() == target.file_name());
            if imported {
                general.push(Entry {
                    origin: p.display().to_string(),
                    source: format!("(link to {})", target.display()),
                    to: None,
                    fate: Fate::Same(format!(
                        "an alias of {}: imported once, under that name",
                        target
                            .file_name()
                            .map(|f| f.to_string_lossy())
                            .unwrap_or_default()
                    )),
                });
            }
            !imported
        })
        .map(|(_, p)| p.clone())
        .collect();
    // A timer template has no instance to fill %i with.
    let paths: Vec<PathBuf> = paths
        .into_iter()
        .filter(|p| match template_refusal(p) {
            Some(e) => {
                general.push(e);
                false
            }
            None => true,
        })
        .collect();
    let paths = &paths[..];
    let mut consumed: BTreeSet<PathBuf> = BTreeSet::new();
    for p in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "timer"))
    {
        match import_timer(p) {
            Ok((d, service)) => {
                consumed.insert(service);
                out.push(d);
            }
            Err(e) => general.push(unimportable(p, e)),
        }
    }
    // Each `.socket` is paired with its service (Service=, else its own name).
    let mut sockets: Vec<(PathBuf, PathBuf)> = Vec::new();
    for p in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "socket"))
    {
        match socket_service(p) {
            Ok(svc)
                if paths
                    .iter()
                    .any(|q| q == &svc || std::fs::canonicalize(q).is_ok_and(|c| c == svc)) =>
            {
                sockets.push((p.clone(), svc))
            }
            Ok(svc) => general.push(unimportable(
                p,
                format!(
                    "its service {} is not among the files imported: import both together",
                    svc.display()
                ),
            )),
            Err(e) => general.push(unimportable(p, e)),
        }
    }
    for p in paths
        .iter()
        .filter(|p| p.extension().is_none_or(|e| e != "timer" && e != "socket"))
    {
        let canon = std::fs::canonicalize(p).unwrap_or(p.clone());
        if consumed.contains(&canon) || consumed.contains(p) {
            continue;
        }
        let full = p
            .file_name()
            .and_then(|f| f.to_str())
            .ok_or_else(|| format!("{}: not a file name", p.display()))?
            .to_string();
        if !full.ends_with(".service") {
            return Err(format!(
                "{}: only .service, .socket and .timer files can be imported from systemd",
                p.display()
            ));
        }
        // Its socket, if one of the files is (`[socket]`, started on demand).
        let sock = sockets.iter().find(|(_, svc)| svc == &canon || svc == p);
        let loaded = load(p, &full).and_then(|(mut items, mut used)| {
            if let Some((sp, _)) = sock {
                socket_items(sp, &mut items, &mut used)?;
            }
            Ok((items, used))
        });
        match loaded.and_then(|(items, used)| service(items, used, &full, None)) {
            Ok(d) => out.push(d),
            Err(e) => general.push(unimportable(p, e)),
        }
    }
    early::order_early(&mut out);
    Ok((out, general))
}

/// The report line of a timer template (`NAME@.timer`), which is not imported: colony's
/// templates are services; an instance (`NAME@INSTANCE.timer`) is. A service template
/// becomes a template `NAME@.unit`.
fn template_refusal(p: &Path) -> Option<Entry> {
    let full = p.file_name()?.to_str()?;
    let (prefix, inst, suffix) = split_name(full);
    if inst.as_deref() != Some("") || suffix != "timer" {
        return None;
    }
    let dir = p.parent().unwrap_or(Path::new("."));
    Some(unimportable(
        p,
        format!(
            "a timer template (its %i is the instance name): colony's templates are services; import an instance instead, e.g. `colonyctl import {}` (read from this file, named {}-INSTANCE)",
            dir.join(format!("{prefix}@INSTANCE.{suffix}")).display(),
            unit_name(&prefix)
        ),
    ))
}

/// A file that makes no unit: reported, not fatal, so one odd file does not stop the import
/// of a whole directory.
fn unimportable(p: &Path, why: String) -> Entry {
    Entry {
        origin: p.display().to_string(),
        source: "(the whole file)".into(),
        to: None,
        fate: Fate::Dropped(why),
    }
}

fn import_timer(path: &Path) -> Result<(Draft, PathBuf), String> {
    let full = path
        .file_name()
        .and_then(|f| f.to_str())
        .ok_or_else(|| format!("{}: not a file name", path.display()))?
        .to_string();
    let (titems, tused) = load(path, &full)?;
    // The service: Unit= of the timer, else the timer's own name.
    let svc_name = titems
        .iter()
        .rev()
        .find(|i| i.section == "Timer" && i.key == "Unit" && !i.value.is_empty())
        .map(|i| i.value.clone())
        .unwrap_or_else(|| format!("{}.service", full.trim_end_matches(".timer")));
    let svc_path = path.with_file_name(&svc_name);
    let (sitems, sused) = load(&svc_path, &svc_name).map_err(|e| {
        format!(
            "{}: its service {svc_name} cannot be read ({e}); a timer is imported together with its service",
            path.display()
        )
    })?;
    let canon = std::fs::canonicalize(&svc_path).unwrap_or(svc_path.clone());
    let d = service(sitems, sused, &svc_name, Some((titems, tused, full)))?;
    Ok((d, canon))
}

/// The service a `.socket` activates: `Service=`, else the socket's own name.
fn socket_service(path: &Path) -> Result<PathBuf, String> {
    let full = path
        .file_name()
        .and_then(|f| f.to_str())
        .ok_or_else(|| format!("{}: not a file name", path.display()))?
        .to_string();
    let (items, _) = load(path, &full)?;
    let svc = items
        .iter()
        .rev()
        .find(|i| i.section == "Socket" && i.key == "Service" && !i.value.is_empty())
        .map(|i| i.value.clone())
        .unwrap_or_else(|| format!("{}.service", full.trim_end_matches(".socket")));
    let p = path.with_file_name(svc);
    Ok(std::fs::canonicalize(&p).unwrap_or(p))
}

/// A `.socket`'s assignments added to its service's, in sections of their own.
fn socket_items(path: &Path, items: &mut Vec<Item>, used: &mut Vec<PathBuf>) -> Result<(), String> {
    let full = path
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default()
        .to_string();
    let (sitems, sused) = load(path, &full)?;
    for mut it in sitems {
        it.section = format!("socket:{}", it.section);
        items.push(it);
    }
    used.extend(sused);
    Ok(())
}

type TimerSrc = (Vec<Item>, Vec<PathBuf>, String);

fn service(
    items: Vec<Item>,
    used: Vec<PathBuf>,
    full: &str,
    timer: Option<TimerSrc>,
) -> Result<Draft, String> {
    let n = items.len();
    let timer_name = timer.as_ref().map(|t| t.2.clone());
    let base = timer_name.as_deref().unwrap_or(full);
    let stem = base.rsplit_once('.').map(|x| x.0).unwrap_or(base);
    let template = split_name(full).1.as_deref() == Some("");
    if template && timer.is_some() {
        return Err(format!(
            "{full} is a template (%i is empty): a timer imports an instance"
        ));
    }
    // `NAME@.service` is the template `NAME@.unit`.
    let name = match stem.strip_suffix('@') {
        Some(p) if template => format!("{}@", unit_name(p)),
        _ => unit_name(stem),
    };
    let mut d = Draft::new(&name, used[0].clone());
    d.sources = used.clone();
    d.header.push(format!(
        "Imported from {} by colonyctl import.",
        used.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if name != stem {
        d.warnings.push(format!(
            "named `{name}`: `{stem}` is not a valid unit name (A-Z a-z 0-9 _ . - only)"
        ));
    }
    let mut sd = Sd {
        items,
        done: vec![false; n],
        d,
        full: full.to_string(),
        user: None,
        env: Vec::new(),
        is_timer_job: timer.is_some(),
        template,
    };
    if let Some((titems, tused, _)) = timer {
        let base = sd.items.len();
        sd.items.extend(titems);
        sd.done.resize(sd.items.len(), false);
        sd.d.sources.extend(tused.iter().cloned());
        sd.d.header[0] = format!(
            "Imported from {} by colonyctl import.",
            sd.d.sources
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        // Timer items live in their own section so service keys never mix with them.
        for it in &mut sd.items[base..] {
            if it.section != "Timer" {
                it.section = format!("timer:{}", it.section);
            }
        }
    }
    // systemd gives a unit default dependencies (after sysinit.target, among others)
    // unless it says DefaultDependencies=no; the key itself is reported with the rest.
    sd.d.after_early_boot = sd
        .items
        .iter()
        .rev()
        .find(|it| it.section == "Unit" && it.key == "DefaultDependencies")
        .is_none_or(|it| systemd_bool(&it.value) != Some(false));
    translate(&mut sd)?;
    enabled(&mut sd, timer_name.as_deref().unwrap_or(full));
    // Nothing dropped silently: every assignment not handled above gets its fate here.
    for i in 0..sd.items.len() {
        if sd.done[i] {
            continue;
        }
        let (sec, key) = (sd.items[i].section.clone(), sd.items[i].key.clone());
        let real = sec
            .strip_prefix("timer:")
            .or_else(|| sec.strip_prefix("socket:"))
            .unwrap_or(&sec)
            .to_string();
        let value = sd.items[i].value.clone();
        match same_reason(&real, &key).or_else(|| default_reason(&real, &key, &value)) {
            Some(why) => sd.same(i, why),
            None => {
                let why = drop_reason(&real, &key);
                sd.drop_it(i, why)
            }
        }
    }
    Ok(sd.d)
}

fn translate(sd: &mut Sd) -> Result<(), String> {
    // [Unit]
    if let Some(i) = sd.last("Unit", "Description") {
        let v = sd.expand(i);
        sd.carry(i, "description", V::s(v));
    }
    if let Some(i) = sd.last("timer:Unit", "Description") {
        if sd.d.has("description") {
            sd.same(i, "the service's description is used");
        } else {
            let v = sd.expand(i);
            sd.carry(i, "description", V::s(v));
        }
    }
    for i in sd.list("Unit", "Documentation") {
        let v = sd.expand(i);
        sd.d.header.push(format!("Documentation: {v}"));
        sd.same(
            i,
            "documentation only: kept as a comment at the top of the unit",
        );
    }
    identity::identity(sd);
    identity::environment(sd);
    exec_env::exec_env(sd);
    exec_env::socket(sd);
    lifecycle::lifecycle(sd)?;
    start_limit::start_limit(sd);
    resources(sd);
    capabilities(sd);
    sandbox::sandbox(sd);
    if let Some(i) = sd.last("Service", "NoNewPrivileges") {
        match systemd_bool(&sd.items[i].value) {
            Some(b) => sd.carry(i, "no_new_privileges", V::Bool(b)),
            None => sd.drop_it(i, "not a boolean"),
        }
    }
    dependencies(sd);
    keys::mounts_for(sd);
    hooks::hooks(sd);
    hooks::conditions(sd);
    tty::tty(sd);
    logging(sd);
    if sd.is_timer_job {
        timer::timer(sd)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::exec::expand_vars;
    use super::reasons::dep_name;
    use super::source::{split_name, unescape};

    #[test]
    fn variables() {
        let env = vec![
            ("OPTS".to_string(), "-a -b".to_string()),
            ("P".into(), "6379".into()),
        ];
        let argv: Vec<String> = ["/x", "$OPTS", "--port=${P}", "$$HOME", "$NOPE"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (out, missing) = expand_vars(&argv, &env);
        assert_eq!(out, vec!["/x", "-a", "-b", "--port=6379", "$HOME"]);
        assert_eq!(missing, vec!["NOPE"]);
    }

    #[test]
    fn names() {
        assert_eq!(
            split_name("getty@tty1.service"),
            ("getty".into(), Some("tty1".into()), "service".into())
        );
        assert_eq!(unescape("dev-sda1"), "dev/sda1");
        assert_eq!(dep_name("db.service"), Ok("db".into()));
        assert_eq!(dep_name("pg@%i.service"), Ok("pg@%i".into()));
        assert_eq!(dep_name("getty@tty1.service"), Ok("getty@tty1".into()));
        assert!(matches!(
            dep_name("systemd-remount-fs.service"),
            Err((true, _))
        ));
        assert!(matches!(dep_name("dbus.socket"), Err((false, _))));
    }
}

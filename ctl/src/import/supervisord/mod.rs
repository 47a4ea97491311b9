//! supervisord's `supervisord.conf` (and its `[include]` files) to units: one per process of
//! every `[program:x]`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::draft::{unit_name, Draft, Entry, Fate, V};
use super::words::{fmt_size, shell_words, size};
use units::model::limits::{MAX_FAILURES, MAX_LOG_KEEP, MIN_LOG_SIZE};

mod ini;
pub mod limits;
mod numprocs;
mod values;

use ini::{glob, parse_ini, Section};
use numprocs as numprocs_unit;
use values::{boolean, int};
pub use values::{env_pairs, expand};

/// The most processes of one `[program]` (`numprocs`): each becomes a unit file.
const MAX_NUMPROCS: i64 = 10_000;

/// What a supervisord import makes: the units and the facts about the file as a whole.
pub struct Batch {
    pub drafts: Vec<Draft>,
    pub general: Vec<Entry>,
}

fn general(origin: &str, source: &str, to: Option<String>, fate: Fate) -> Entry {
    Entry {
        origin: origin.to_string(),
        source: source.to_string(),
        to,
        fate,
    }
}

pub fn import(paths: &[PathBuf]) -> Result<Batch, String> {
    let mut sections = Vec::new();
    let mut general_entries = Vec::new();
    let mut seen = BTreeSet::new();
    // (file, included): supervisord follows [include] only in the files it was given.
    let mut queue: Vec<(PathBuf, bool)> = paths.iter().rev().map(|p| (p.clone(), false)).collect();
    let mut files = Vec::new();
    while let Some((p, included)) = queue.pop() {
        let canon = std::fs::canonicalize(&p).unwrap_or(p.clone());
        if !seen.insert(canon) {
            continue;
        }
        let secs = parse_ini(&p)?;
        for s in &secs {
            if s.name == "include" && included {
                general_entries.push(general(&s.origin, "[include]", None, Fate::Dropped("supervisord does not follow [include] in an included file; name that file on the command line".into())));
            } else if s.name == "include" {
                for it in &s.items {
                    if it.key != "files" {
                        general_entries.push(general(
                            &it.origin,
                            &format!("{}={}", it.key, it.value),
                            None,
                            Fate::Dropped("[include] knows only `files`".into()),
                        ));
                        continue;
                    }
                    let mut found = Vec::new();
                    for pat in it.value.split_whitespace() {
                        let pat = expand(pat, &here_vars(&s.here)).unwrap_or(pat.to_string());
                        let pat = if Path::new(&pat).is_absolute() {
                            PathBuf::from(&pat)
                        } else {
                            s.here.join(&pat)
                        };
                        for f in glob(&pat) {
                            found.push(f.display().to_string());
                            queue.insert(0, (f, true));
                        }
                    }
                    general_entries.push(general(
                        &it.origin,
                        &format!("files={}", it.value),
                        Some(format!(
                            "read {}",
                            if found.is_empty() {
                                "no file (nothing matches)".to_string()
                            } else {
                                found.join(", ")
                            }
                        )),
                        Fate::Carried,
                    ));
                }
            }
        }
        files.push(p);
        sections.extend(secs);
    }

    // [supervisord] environment applies to every program.
    let mut global_env: Vec<(String, String, String)> = Vec::new();
    let mut floors: Vec<limits::Floor> = Vec::new();
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in &sections {
        let kind = s.name.split(':').next().unwrap_or("");
        match kind {
            "supervisord" => {
                for it in &s.items {
                    let src = format!("{}={}", it.key, it.value);
                    if it.key == "environment" {
                        match expand(&it.value, &here_vars(&s.here)).and_then(|v| env_pairs(&v)) {
                            Ok(pairs) => {
                                for (k, v) in pairs {
                                    global_env.push((k, v, it.origin.clone()));
                                }
                                general_entries.push(general(&it.origin, &src, Some("environment of every unit".into()), Fate::Carried));
                            }
                            Err(e) => general_entries.push(general(&it.origin, &src, None, Fate::Dropped(e))),
                        }
                    } else if let Some(f) = limits::floor(&it.key, &it.value, &it.origin) {
                        match f {
                            Ok(f) => {
                                general_entries.push(general(&it.origin, &src, Some("limits of every unit".into()), Fate::Carried));
                                floors.push(f);
                            }
                            Err(e) => general_entries.push(general(&it.origin, &src, None, Fate::Dropped(e))),
                        }
                    } else {
                        general_entries.push(general(&it.origin, &src, None, Fate::Same("configures supervisord itself; colony-init has its own options".into())));
                    }
                }
            }
            "group" => {
                let g = s.name.split_once(':').map(|x| x.1).unwrap_or("").to_string();
                for it in &s.items {
                    let src = format!("{}={}", it.key, it.value);
                    if it.key == "programs" {
                        let progs: Vec<String> = it.value.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect();
                        general_entries.push(general(&it.origin, &src, Some(format!("tags += [\"{}\"] in the units of {}", unit_name(&g), progs.join(", "))), Fate::Carried));
                        for p in progs {
                            groups.entry(p).or_default().push(g.clone());
                        }
                    } else if it.key == "priority" {
                        general_entries.push(general(&it.origin, &src, None, Fate::Dropped("colony orders units by their programs' priority (after), not by group".into())));
                    } else {
                        general_entries.push(general(&it.origin, &src, None, Fate::Dropped(format!("unknown key of [{}]", s.name))));
                    }
                }
            }
            "program" | "include" => {}
            "unix_http_server" | "inet_http_server" | "supervisorctl" | "rpcinterface" | "ctlplugin" => {
                general_entries.push(general(&s.origin, &format!("[{}]", s.name), None, Fate::Same("the control channel of supervisord: colonyctl talks to colony-init through its FIFO".into())));
            }
            "eventlistener" => general_entries.push(general(&s.origin, &format!("[{}]", s.name), None, Fate::Dropped("colony has no event listeners: `colonyctl status --json` shows the states".into()))),
            "fcgi-program" => general_entries.push(general(&s.origin, &format!("[{}]", s.name), None, Fate::Dropped("colony opens no sockets for programs: run it as a [program] that listens itself".into()))),
            _ => general_entries.push(general(&s.origin, &format!("[{}]", s.name), None, Fate::Dropped("an unknown section".into()))),
        }
    }

    let programs: Vec<&Section> = sections
        .iter()
        .filter(|s| s.name.starts_with("program:"))
        .collect();
    // Priority levels, for `after`.
    let prio_of = |s: &Section| -> i64 {
        s.items
            .iter()
            .rev()
            .find(|i| i.key == "priority")
            .and_then(|i| int(&i.value))
            .unwrap_or(999)
    };
    let mut drafts = Vec::new();
    let mut names_by_prog: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut prio: BTreeMap<String, i64> = BTreeMap::new();
    for s in &programs {
        let prog = s
            .name
            .split_once(':')
            .map(|x| x.1)
            .unwrap_or("")
            .trim()
            .to_string();
        let mut ds = program(s, &prog, &global_env, groups.get(&prog))?;
        for d in &mut ds {
            limits::apply(d, &floors);
        }
        names_by_prog.insert(prog.clone(), ds.iter().map(|d| d.name.clone()).collect());
        prio.insert(prog, prio_of(s));
        drafts.extend(ds);
    }
    // `after`: the units of the nearest lower priority level.
    let levels: BTreeSet<i64> = prio.values().copied().collect();
    for s in &programs {
        let prog = s
            .name
            .split_once(':')
            .map(|x| x.1)
            .unwrap_or("")
            .trim()
            .to_string();
        let p = prio[&prog];
        let lower = levels.range(..p).next_back().copied();
        let before: Vec<String> = match lower {
            Some(l) => prio
                .iter()
                .filter(|(_, v)| **v == l)
                .flat_map(|(k, _)| names_by_prog[k].clone())
                .collect(),
            None => Vec::new(),
        };
        let item = s.items.iter().rev().find(|i| i.key == "priority").cloned();
        for d in drafts
            .iter_mut()
            .filter(|d| names_by_prog[&prog].contains(&d.name))
        {
            let (origin, src) = match &item {
                Some(i) => (i.origin.clone(), format!("priority={}", i.value)),
                None => (
                    "(supervisord default)".to_string(),
                    "priority= (not set: 999)".to_string(),
                ),
            };
            if before.is_empty() {
                if item.is_some() || levels.len() > 1 {
                    d.same(
                        &origin,
                        &src,
                        "the lowest priority here: starts first, nothing to wait for",
                    );
                }
                continue;
            }
            d.push_strs("after", &before);
            d.note(
                &origin,
                &src,
                Some(format!("after += {}", V::strs(&before))),
                Fate::Approx(format!(
                    "ordered after the next lower priority ({}); colony waits until they are up, supervisord only started them first",
                    lower.unwrap_or_default()
                )),
            );
        }
    }
    Ok(Batch {
        drafts,
        general: general_entries,
    })
}

fn here_vars(here: &Path) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    v.insert("here".to_string(), here.display().to_string());
    v.insert(
        "host_node_name".to_string(),
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().to_string())
            .unwrap_or_default(),
    );
    for (k, val) in std::env::vars() {
        v.insert(format!("ENV_{k}"), val);
    }
    v
}

fn program(
    s: &Section,
    prog: &str,
    global_env: &[(String, String, String)],
    groups: Option<&Vec<String>>,
) -> Result<Vec<Draft>, String> {
    let last = |k: &str| s.items.iter().rev().find(|i| i.key == k);
    let numprocs = match last("numprocs") {
        Some(i) => int(&i.value)
            .filter(|n| (1..=MAX_NUMPROCS).contains(n))
            .ok_or_else(|| {
                format!(
                    "{}: numprocs must be a number from 1 to {MAX_NUMPROCS}",
                    i.origin
                )
            })?,
        None => 1,
    };
    let start = match last("numprocs_start") {
        Some(i) => {
            int(&i.value).ok_or_else(|| format!("{}: numprocs_start must be a number", i.origin))?
        }
        None => 0,
    };
    let pname = last("process_name")
        .map(|i| i.value.clone())
        .unwrap_or_else(|| "%(program_name)s".into());
    if numprocs > 1 && !pname.contains("process_num") {
        return Err(format!(
            "{}: numprocs = {numprocs} needs a process_name with %(process_num)s, as supervisord requires",
            s.origin
        ));
    }
    let group = groups
        .and_then(|g| g.first())
        .cloned()
        .unwrap_or_else(|| prog.to_string());
    let end = start
        .checked_add(numprocs)
        .ok_or_else(|| format!("{}: numprocs_start + numprocs is out of range", s.origin))?;
    // Numbered from 0: one unit with `instances`; else a unit file per process.
    let one = numprocs > 1 && numprocs_unit::fits(start);
    let nums: Vec<String> = if one {
        vec![numprocs_unit::SENTINEL.to_string()]
    } else {
        (start..end).map(|n| n.to_string()).collect()
    };
    let mut out = Vec::new();
    for n in nums {
        let mut vars = here_vars(&s.here);
        vars.insert("program_name".into(), prog.to_string());
        vars.insert("group_name".into(), group.clone());
        vars.insert("process_num".into(), n);
        vars.insert("numprocs".into(), numprocs.to_string());
        let raw = if one {
            prog.to_string()
        } else {
            expand(&pname, &vars).map_err(|e| format!("{}: process_name: {e}", s.origin))?
        };
        vars.insert("process_name".into(), raw.clone());
        let name = unit_name(&raw);
        let mut d = Draft::new(
            &name,
            PathBuf::from(s.origin.rsplit_once(':').map(|x| x.0).unwrap_or(&s.origin)),
        );
        d.header.push(format!(
            "Imported from [{}] at {} by colonyctl import.",
            s.name, s.origin
        ));
        if name != raw {
            d.warnings
                .push(format!("named `{name}`: `{raw}` is not a valid unit name"));
        }
        for (k, v, origin) in global_env {
            d.table_set("environment", k, V::s(v.as_str()));
            d.note(
                origin,
                &format!("[supervisord] environment {k}"),
                Some(format!("environment.{k} = {}", V::s(v.as_str()))),
                Fate::Carried,
            );
        }
        if let Some(gs) = groups {
            let tags: Vec<String> = gs.iter().map(|g| unit_name(g)).collect();
            d.push_strs("tags", &tags);
        }
        program_keys(&mut d, s, &vars, numprocs)?;
        if one {
            numprocs_unit::finish(&mut d, &name, &pname, numprocs);
        }
        out.push(d);
    }
    Ok(out)
}

fn program_keys(
    d: &mut Draft,
    s: &Section,
    vars: &BTreeMap<String, String>,
    numprocs: i64,
) -> Result<(), String> {
    // Later assignments of a key win (configparser); earlier ones are reported.
    let mut last_of: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, it) in s.items.iter().enumerate() {
        last_of.insert(it.key.as_str(), i);
    }
    let mut stdout_file: Option<String> = None;
    for (i, it) in s.items.iter().enumerate() {
        let o = it.origin.as_str();
        let src = format!("{}={}", it.key, it.value.replace('\n', " "));
        if last_of[it.key.as_str()] != i {
            d.same(
                o,
                &src,
                format!("overridden by {}", s.items[last_of[it.key.as_str()]].origin),
            );
            continue;
        }
        let val = match expand(&it.value, vars) {
            Ok(v) => v,
            Err(e) => {
                d.drop_key(o, &src, e);
                continue;
            }
        };
        let v = val.trim();
        match it.key.as_str() {
            "command" => {
                let words = shell_words(v).map_err(|e| format!("{o}: command: {e}"))?;
                if words.is_empty() {
                    return Err(format!("{o}: command is empty"));
                }
                if words[0].contains('/') && !words[0].starts_with('/') {
                    let abs = s.here.join(&words[0]);
                    let mut w = words.clone();
                    w[0] = abs.display().to_string();
                    d.approx(o, &src, "exec", V::strs(&w), "the relative program path was made absolute from the config file's directory");
                } else {
                    d.carry(o, &src, "exec", V::strs(&words));
                }
            }
            "process_name" | "numprocs" | "numprocs_start" => {
                d.note(o, &src, Some(format!("unit `{}`", d.name)), if numprocs > 1 || it.key == "process_name" { Fate::Carried } else { Fate::Same("one process".into()) });
            }
            "directory" if v.starts_with('/') => d.carry(o, &src, "directory", V::s(v)),
            "directory" => d.drop_key(o, &src, "not an absolute path (supervisord takes it from its own working directory): set `directory` by hand"),
            "user" if v.is_empty() => d.drop_key(o, &src, "empty: no user named"),
            "user" => {
                // Digits are a uid, which must fit: a failed parse was uid 0 (root).
                if v.bytes().all(|b| b.is_ascii_digit()) {
                    match v.parse::<u32>() {
                        Ok(uid) => d.carry(o, &src, "user", V::Int(uid.into())),
                        Err(_) => d.drop_key(o, &src, "a uid out of range"),
                    }
                } else {
                    d.carry(o, &src, "user", V::s(v));
                }
            }
            "umask" => match units::values::parse_umask(v) {
                Ok(m) => d.carry(o, &src, "umask", V::s(format!("{m:04o}"))),
                Err(e) => d.drop_key(o, &src, e),
            },
            "environment" => match env_pairs(v) {
                Ok(pairs) => {
                    let mut set = Vec::new();
                    for (k, val) in pairs {
                        set.push(format!("{k} = {}", V::s(val.as_str())));
                        d.table_set("environment", &k, V::s(val));
                    }
                    d.note(o, &src, Some(format!("environment: {}", set.join(", "))), Fate::Carried);
                }
                Err(e) => d.drop_key(o, &src, e),
            },
            "autostart" => match boolean(v) {
                Some(b) => d.carry(o, &src, "enabled", V::Bool(b)),
                None => d.drop_key(o, &src, "not a boolean"),
            },
            "autorestart" => match v.to_ascii_lowercase().as_str() {
                "true" => d.carry(o, &src, "restart.policy", V::s("always")),
                "false" => d.carry(o, &src, "restart.policy", V::s("never")),
                "unexpected" => d.carry(o, &src, "restart.policy", V::s("on-failure")),
                _ => d.drop_key(o, &src, "expected true, false or unexpected"),
            },
            "startsecs" => match int(v) {
                Some(n) if n >= 0 => start_secs(d, o, &src, n),
                _ => d.drop_key(o, &src, "not a number of seconds: supervisord refuses such a config, so colony's [ready] settle is not set"),
            },
            "startretries" => match int(v) {
                Some(n) if n >= 0 => start_retries(d, o, &src, n),
                _ => d.drop_key(o, &src, "not a number of retries: supervisord refuses such a config, so colony's [restart] max_failures is not set"),
            },
            "exitcodes" => {
                let codes: Result<Vec<i64>, _> = v.split(',').map(|c| c.trim().parse::<i64>()).collect();
                match codes {
                    Ok(c) if c.iter().all(|n| (0..=255).contains(n)) => d.carry(o, &src, "restart.success_codes", V::Arr(c.into_iter().map(V::Int).collect())),
                    _ => d.drop_key(o, &src, "not a list of exit codes from 0 to 255"),
                }
            }
            "stopsignal" => match units::values::parse_signal(v) {
                Ok(_) => {
                    // `TERM` -> `SIGTERM`; a number stays a number.
                    let named = format!("SIG{}", v.to_ascii_uppercase().trim_start_matches("SIG"));
                    let sig = if units::values::parse_signal(&named).is_ok() { named } else { v.to_string() };
                    d.carry(o, &src, "stop.signal", V::s(sig))
                }
                Err(e) => d.drop_key(o, &src, e),
            },
            "stopwaitsecs" => match int(v) {
                Some(n) if n > 0 => d.carry(o, &src, "stop.timeout", V::s(format!("{n}s"))),
                _ => d.drop_key(o, &src, "not a number of seconds"),
            },
            "stopasgroup" | "killasgroup" => {
                if boolean(v) == Some(true) {
                    d.same(o, &src, "colony always signals and kills the whole unit (its cgroup)");
                } else {
                    d.note(o, &src, None, Fate::Approx("colony signals the whole unit (its cgroup), not only the main process".into()));
                }
            }
            "redirect_stderr" => {
                if boolean(v) == Some(true) {
                    d.same(o, &src, "colony writes stdout and stderr to the same log");
                } else {
                    d.note(o, &src, None, Fate::Approx("colony writes stderr to the same log as stdout".into()));
                }
            }
            "stdout_logfile" | "logfile" => match v {
                "AUTO" => d.same(o, &src, "colony keeps a log per unit (LOG_DIR/NAME.log)"),
                "NONE" => d.drop_key(o, &src, "colony always keeps the unit's output in its log file"),
                p if p.starts_with('/') => {
                    stdout_file = Some(p.to_string());
                    d.approx(o, &src, "log.file", V::s(p), "stdout and stderr go to this file, each line time-stamped");
                }
                _ => d.drop_key(o, &src, "not an absolute path"),
            },
            "stderr_logfile" => match v {
                "AUTO" => d.same(o, &src, "colony writes stderr to the unit's log"),
                p if stdout_file.as_deref() == Some(p) => d.same(o, &src, "the same file as stdout"),
                _ => d.drop_key(o, &src, "colony writes stderr to the same log file as stdout"),
            },
            "stdout_logfile_maxbytes" | "logfile_maxbytes" => match size(v) {
                Ok(Some(0)) => d.drop_key(o, &src, "colony always rotates the log: set a size"),
                Ok(Some(n)) if n < MIN_LOG_SIZE => d.approx(o, &src, "log.max_size", V::s(fmt_size(MIN_LOG_SIZE)), "colony's smallest log size"),
                Ok(Some(n)) => d.carry(o, &src, "log.max_size", V::s(fmt_size(n))),
                _ => d.drop_key(o, &src, "not a size"),
            },
            "stdout_logfile_backups" | "logfile_backups" => match int(v) {
                Some(n) if (0..=i64::from(MAX_LOG_KEEP)).contains(&n) => d.carry(o, &src, "log.keep", V::Int(n)),
                Some(n) if (0..=1000).contains(&n) => d.approx(o, &src, "log.keep", V::Int(MAX_LOG_KEEP.into()), "colony keeps at most 100 rotated files"),
                _ => d.drop_key(o, &src, "not a number from 0 to 1000"),
            },
            "stderr_logfile_maxbytes" | "stderr_logfile_backups" => d.same(o, &src, "stderr shares the unit's log, rotated by log.max_size and log.keep"),
            "priority" => {}
            "serverurl" => d.same(o, &src, "colonyctl needs no server URL"),
            _ => d.drop_key(o, &src, format!("colony has no equivalent of supervisord's `{}`", it.key)),
        }
    }
    // supervisord's defaults where they differ from colony's.
    if !s.items.iter().any(|i| i.key == "autorestart") {
        d.carry(
            "(supervisord default)",
            "autorestart= (not set: unexpected)",
            "restart.policy",
            V::s("on-failure"),
        );
    }
    if !s.items.iter().any(|i| i.key == "startsecs") {
        start_secs(
            d,
            "(supervisord default)",
            "startsecs= (not set: 1)",
            DEFAULT_STARTSECS,
        );
    }
    if !s.items.iter().any(|i| i.key == "startretries") {
        start_retries(
            d,
            "(supervisord default)",
            "startretries= (not set: 3)",
            DEFAULT_STARTRETRIES,
        );
    }
    retries_without_autorestart(d);
    if !s.items.iter().any(|i| i.key == "stopwaitsecs") {
        d.carry(
            "(supervisord default)",
            "stopwaitsecs= (not set: 10)",
            "stop.timeout",
            V::s("10s"),
        );
    }
    if !d.has("exec") {
        return Err(format!("{}: [{}] has no command", s.origin, s.name));
    }
    Ok(())
}

/// supervisord's defaults of `startsecs` and `startretries`.
const DEFAULT_STARTSECS: i64 = 1;
const DEFAULT_STARTRETRIES: i64 = 3;

/// `startsecs`: supervisord moves a process from STARTING to RUNNING once it has lived this
/// long, and counts a death before as a failed start: `[ready] settle`. The same span is
/// also the backoff threshold, so that a death during it grows the delay as supervisord's
/// BACKOFF does.
fn start_secs(d: &mut Draft, origin: &str, src: &str, secs: i64) {
    let span = V::s(format!("{secs}s"));
    d.set("restart.threshold", span.clone());
    if secs == 0 {
        d.unset("ready.settle");
        d.note(
            origin,
            src,
            Some(format!("restart.threshold = {span}")),
            Fate::Approx(
                "no [ready] settle: up at once, as supervisord's RUNNING at once; colony still backs off deaths sooner than 0.1s".into(),
            ),
        );
        return;
    }
    d.set("ready.settle", span.clone());
    d.note(
        origin,
        src,
        Some(format!("ready.settle = {span}, restart.threshold = {span}")),
        Fate::Approx(format!(
            "up once it has lived {secs}s, as supervisord's RUNNING; a death sooner is a failed start (counted by restart.max_failures) and also grows the backoff (restart.threshold): colony doubles the delay from restart.delay_min where supervisord added a second per try"
        )),
    );
}

/// `startretries`: supervisord gives up (FATAL) when a start fails after this many retries,
/// so after the first try and `startretries` more: `max_failures = startretries + 1`.
fn start_retries(d: &mut Draft, origin: &str, src: &str, retries: i64) {
    let tries = retries.saturating_add(1);
    let m = tries.min(i64::from(MAX_FAILURES));
    d.set("restart.max_failures", V::Int(m));
    let to = format!("restart.max_failures = {m}");
    if tries > m {
        d.note(
            origin,
            src,
            Some(to),
            Fate::Approx(format!("colony's largest max_failures is {MAX_FAILURES}")),
        );
    } else {
        d.note(
            origin,
            src,
            Some(format!(
                "{to} (the first start and {retries} retries; then `failed` until started by hand, as supervisord's FATAL)"
            )),
            Fate::Carried,
        );
    }
}

/// supervisord retries a start that fails (a death within startsecs) whatever autorestart
/// says; colony's `restart.policy = "never"` retries nothing, so say so where it matters.
fn retries_without_autorestart(d: &mut Draft) {
    if d.get("restart.policy") != Some(&V::s("never")) {
        return;
    }
    for e in &mut d.entries {
        let is_retries = e.source.starts_with("startretries=");
        if is_retries
            && e.to
                .as_deref()
                .is_some_and(|t| t.starts_with("restart.max_failures"))
        {
            e.fate = Fate::Approx(
                "with autorestart=false supervisord still retries a start that fails; colony (restart.policy = \"never\") does not: the first failed start leaves the unit `failed`".into(),
            );
        }
    }
}

#[cfg(test)]
mod tests;

//! TOML text to a typed unit, with located errors.
//!
//! The file is parsed with toml's span-keeping `DeTable`, then every table is walked against
//! the schema below: an unknown key is an error (with the nearest known key as a hint), a
//! wrong type or a bad value is an error that says what a right one looks like, and only an
//! absent key takes its default. Every problem found is reported, sorted by position.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::diag::{nearest, Diagnostic, LineIndex};
use crate::model::limits::{MAX_FAILURES, MAX_LOG_KEEP, MIN_EVERY, MIN_LOG_SIZE, MIN_PERIOD};
use crate::model::{
    Health, HealthCheck, Heartbeat, Identity, Log, Ready, ReadyType, Resources, Restart,
    RestartPolicy, Stop, Timer, Unit,
};
use crate::values;

mod deps;
mod exec_env;
mod hooks;
mod sandbox;
mod socket;
mod tty;

/// Keys of the top level of a unit file (sections included).
pub const TOP_KEYS: &[&str] = &[
    "description",
    "exec",
    "directory",
    "environment",
    "user",
    "group",
    "supplementary_groups",
    "umask",
    "nofile",
    "capabilities",
    "no_new_privileges",
    "after",
    "requires",
    "tags",
    "enabled",
    "essential",
    "extras",
    "restart",
    "stop",
    "ready",
    "health",
    "resources",
    "heartbeat",
    "timer",
    "log",
    "sandbox",
    // read by parse/exec_env.rs
    "environment_file",
    "runtime_directory",
    "runtime_directory_mode",
    "runtime_directory_preserve",
    "state_directory",
    "state_directory_mode",
    "cache_directory",
    "cache_directory_mode",
    "logs_directory",
    "logs_directory_mode",
    "nice",
    "oom_score_adj",
    "io_weight",
    "limits",
    "load_credential",
    "socket",
    "tty",
    // hooks (parse/hooks.rs)
    "exec_start_pre",
    "exec_start_post",
    "exec_stop",
    "exec_reload",
    // templates (crate::template)
    "instances",
    // dependencies (parse/deps.rs)
    "wants",
    "before",
    "conflicts",
    // conditions and asserts (parse/deps.rs, crate::conditions)
    "condition_path_exists",
    "condition_path_is_directory",
    "condition_path_is_symbolic_link",
    "condition_path_is_mount_point",
    "condition_path_is_read_write",
    "condition_directory_not_empty",
    "condition_file_not_empty",
    "condition_file_is_executable",
    "condition_user",
    "condition_group",
    "condition_host",
    "condition_kernel_command_line",
    "condition_environment",
    "condition_virtualization",
    "condition_capability",
    "condition_ac_power",
    "assert_path_exists",
    "assert_path_is_directory",
    "assert_path_is_symbolic_link",
    "assert_path_is_mount_point",
    "assert_path_is_read_write",
    "assert_directory_not_empty",
    "assert_file_not_empty",
    "assert_file_is_executable",
    "assert_user",
    "assert_group",
    "assert_host",
    "assert_kernel_command_line",
    "assert_environment",
    "assert_virtualization",
    "assert_capability",
    "assert_ac_power",
];

/// Each section and its keys.
pub const SECTIONS: &[(&str, &[&str])] = &[
    (
        "restart",
        &[
            "policy",
            "success_codes",
            "delay_min",
            "delay_max",
            "threshold",
            "max_failures",
        ],
    ),
    ("stop", &["signal", "timeout", "sighup"]),
    (
        "ready",
        &["type", "address", "path", "timeout", "watchdog", "settle"],
    ),
    (
        "health",
        &[
            "http", "tcp", "exec", "period", "timeout", "max_bad", "grace",
        ],
    ),
    (
        "resources",
        &[
            "memory_max",
            "memory_high",
            "cpu_max",
            "cpu_weight",
            "tasks_max",
        ],
    ),
    ("heartbeat", &["file", "period", "grace"]),
    (
        "timer",
        &["every", "calendar", "on_boot", "persistent", "timeout"],
    ),
    ("log", &["file", "max_size", "keep", "console"]),
    ("sandbox", crate::sandbox::KEYS),
    ("socket", crate::socket::KEYS),
    ("tty", crate::tty::KEYS),
];

/// Default `[ready] timeout` for the types that wait for something.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(90);

/// A unit name: 1-64 characters of `A-Z a-z 0-9 _ . -`, starting with a letter or digit.
pub fn valid_unit_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Names a unit cannot take: `colonyctl logs colony-init` reads colony-init's own log, which
/// a unit's log of that name would share.
pub const RESERVED_NAMES: &[&str] = &["colony-init"];

const NAME_RULE: &str =
    "a unit name is 1-64 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit";

/// Read and parse one unit file. An instance file `NAME@INST.unit` is read as its
/// template `NAME@.unit` beside it, with the instance filled in.
pub fn load_file(path: &Path) -> Result<Unit, Vec<Diagnostic>> {
    let file = path.file_name().and_then(|f| f.to_str());
    if let Some((prefix, inst)) = file
        .and_then(crate::template_load::instance_file_name)
        .and_then(crate::template::split_instance)
    {
        let template = path.with_file_name(format!("{prefix}@.unit"));
        let name = format!("{prefix}@{inst}");
        return match std::fs::read_to_string(&template) {
            Ok(t) => {
                let spec = crate::template::Spec {
                    prefix,
                    instance: inst,
                    name: &name,
                };
                parse_instance(path, &name, &crate::template::expand(&t, spec))
            }
            Err(e) => Err(vec![Diagnostic::whole_file(
                path,
                "file",
                format!("an instance of {}: cannot read it: {e}", template.display()),
            )]),
        };
    }
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => parse_unit(path, &text),
            Err(e) => {
                // Point at the first bad byte.
                let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
                let text = String::from_utf8_lossy(good);
                let li = LineIndex::new(&text);
                Err(vec![li.at(
                    path,
                    &text,
                    text.len()..text.len(),
                    "syntax",
                    "the file is not valid UTF-8 text",
                )])
            }
        },
        Err(e) => Err(vec![Diagnostic::whole_file(
            path,
            "file",
            format!("cannot read the unit file: {e}"),
        )]),
    }
}

/// Parse the text of `path` (named `NAME.unit`) into a unit, or every problem found in it.
/// A template `NAME@.unit` is checked as its instance `NAME@instance` (the unit is named
/// `NAME@`).
pub fn parse_unit(path: &Path, text: &str) -> Result<Unit, Vec<Diagnostic>> {
    let file = path.file_name().and_then(|f| f.to_str());
    if let Some(prefix) = file.and_then(crate::template::template_file_name) {
        let name = format!("{prefix}@");
        let sample = format!("{prefix}@{}", crate::template::SAMPLE_INSTANCE);
        let spec = crate::template::Spec {
            prefix,
            instance: crate::template::SAMPLE_INSTANCE,
            name: &sample,
        };
        let text = crate::template::expand(text, spec);
        return parse_named(path, &text, |cx| {
            cx.template = true;
            Some(name)
        });
    }
    parse_named(path, text, |cx| file_unit_name(cx, path))
}

/// Parse an instance `name` (`NAME@INST`, or `NAME-K` of `instances = N`) of the file at
/// `path`, whose text has its specifiers filled in already.
pub fn parse_instance(path: &Path, name: &str, text: &str) -> Result<Unit, Vec<Diagnostic>> {
    parse_named(path, text, |_| Some(name.to_string()))
}

fn parse_named(
    path: &Path,
    text: &str,
    name_of: impl FnOnce(&mut Cx<'_>) -> Option<String>,
) -> Result<Unit, Vec<Diagnostic>> {
    let mut cx = Cx {
        file: path,
        text,
        lines: LineIndex::new(text),
        errs: Vec::new(),
        template: false,
    };
    let name = name_of(&mut cx);
    parse_body(cx, path, text, name)
}

/// The unit name of a file `NAME.unit` (errors in `cx`).
fn file_unit_name(cx: &mut Cx<'_>, path: &Path) -> Option<String> {
    match path.file_name().and_then(|f| f.to_str()) {
        Some(f) => match f.strip_suffix(".unit") {
            Some(n) if RESERVED_NAMES.contains(&n) => {
                cx.errs.push(Diagnostic::whole_file(
                    path,
                    "name",
                    format!("`{n}` is reserved: it names colony-init itself (its own log is LOG_DIR/{n}.log)"),
                ));
                None
            }
            Some(n) if valid_unit_name(n) => Some(n.to_string()),
            Some(n) => {
                cx.errs.push(Diagnostic::whole_file(
                    path,
                    "name",
                    format!("`{n}` is not a valid unit name: {NAME_RULE}"),
                ));
                None
            }
            None => {
                cx.errs.push(Diagnostic::whole_file(
                    path,
                    "name",
                    format!("`{f}` does not end in `.unit`: a unit file is named NAME.unit"),
                ));
                None
            }
        },
        None => {
            cx.errs.push(Diagnostic::whole_file(
                path,
                "name",
                "the path has no file name; a unit file is named NAME.unit",
            ));
            None
        }
    }
}

fn parse_body(
    mut cx: Cx<'_>,
    path: &Path,
    text: &str,
    name: Option<String>,
) -> Result<Unit, Vec<Diagnostic>> {
    let doc = match DeTable::parse(text) {
        Ok(d) => d,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let msg = e.message().trim().replace('\n', "; ");
            // Name the key of a duplicate, which TOML's message leaves out.
            let key = match text.get(span.clone()) {
                Some(k) if msg.contains("duplicate key") && !k.is_empty() && k.len() <= 64 => {
                    k.trim_matches('"').to_string()
                }
                _ => "syntax".to_string(),
            };
            cx.err(span, &key, format!("invalid TOML: {msg}"));
            return Err(cx.finish());
        }
    };
    let unit = cx.unit(path, name.as_deref().unwrap_or(""), doc.get_ref());
    match unit {
        Some(u) if cx.errs.is_empty() => Ok(u),
        _ => Err(cx.finish()),
    }
}

type Val<'i> = Spanned<DeValue<'i>>;

/// One table of the file, with the path used to name its keys in errors.
struct Tbl<'t, 'i> {
    t: &'t DeTable<'i>,
    /// `""` at the top level, else the section name.
    section: &'static str,
    /// Where to point for an error about the table as a whole (its header key).
    span: Range<usize>,
}

impl<'t, 'i> Tbl<'t, 'i> {
    fn key(&self, k: &str) -> String {
        if self.section.is_empty() {
            k.to_string()
        } else {
            format!("{}.{k}", self.section)
        }
    }
    fn get(&self, k: &str) -> Option<&'t Val<'i>> {
        self.t.get(k)
    }
    fn key_span(&self, k: &str) -> Range<usize> {
        self.t
            .get_key_value(k)
            .map(|(k, _)| k.span())
            .unwrap_or_else(|| self.span.clone())
    }
}

struct Cx<'a> {
    file: &'a Path,
    text: &'a str,
    lines: LineIndex,
    errs: Vec<Diagnostic>,
    /// A template checked with a sample instance: a user or group that names its instance
    /// (`user = "%i"`) is checked per instance, when one is started.
    template: bool,
}

fn found(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => {
            let s: &str = s;
            if s.chars().count() > 40 {
                "a string".into()
            } else {
                format!("the string {s:?}")
            }
        }
        DeValue::Integer(i) => format!("the integer {}", i.as_str()),
        DeValue::Float(f) => format!("the float {}", f.as_str()),
        DeValue::Boolean(b) => format!("{b}"),
        DeValue::Datetime(_) => "a date-time".into(),
        DeValue::Array(_) => "an array".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

fn int_of(v: &DeValue<'_>) -> Option<i128> {
    match v {
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

impl<'a> Cx<'a> {
    fn err(&mut self, span: Range<usize>, key: &str, msg: impl Into<String>) {
        let d = self.lines.at(self.file, self.text, span, key, msg);
        self.errs.push(d);
    }

    fn finish(&mut self) -> Vec<Diagnostic> {
        let mut v = std::mem::take(&mut self.errs);
        v.sort();
        v.dedup();
        v
    }

    fn type_err(&mut self, key: &str, v: &Val<'_>, expected: &str) {
        self.err(
            v.span(),
            key,
            format!("expected {expected}, found {}", found(v.get_ref())),
        );
    }

    /// Report every key of `t` not in `known`, with a hint.
    fn unknown_keys(&mut self, t: &Tbl<'_, '_>, known: &[&str]) {
        for (k, _) in t.t.iter() {
            let name: &str = k.get_ref();
            if known.contains(&name) {
                continue;
            }
            let hint = if let Some(near) = nearest(name, known.iter().copied()) {
                format!("did you mean `{near}`?")
            } else {
                let homes: Vec<String> = SECTIONS
                    .iter()
                    .filter(|(_, keys)| keys.contains(&name))
                    .map(|(s, _)| format!("[{s}]"))
                    .collect();
                let homes = homes.join(" or ");
                if t.section.is_empty() {
                    if homes.is_empty() {
                        format!("the known keys are: {}", known.join(", "))
                    } else {
                        format!("`{name}` is a key of {homes}: put it below that section's line")
                    }
                } else if TOP_KEYS.contains(&name) {
                    format!(
                        "`{name}` is a top-level key: put it above the first [section] of the file"
                    )
                } else if !homes.is_empty() {
                    format!("`{name}` is a key of {homes}, not of [{}]", t.section)
                } else {
                    format!("[{}] knows: {}", t.section, known.join(", "))
                }
            };
            let key = t.key(name);
            self.err(k.span(), &key, format!("unknown key `{name}`; {hint}"));
        }
    }

    fn string<'v>(&mut self, t: &Tbl<'v, '_>, k: &str, expected: &str) -> Option<&'v str> {
        let v = t.get(k)?;
        match v.get_ref() {
            DeValue::String(s) => Some(s),
            _ => {
                self.type_err(&t.key(k), v, expected);
                None
            }
        }
    }

    fn boolean(&mut self, t: &Tbl<'_, '_>, k: &str) -> Option<bool> {
        let v = t.get(k)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            DeValue::String(s) if matches!(&**s, "true" | "false") => {
                self.err(
                    v.span(),
                    &t.key(k),
                    format!("expected true or false without quotes, found the string \"{s}\""),
                );
                None
            }
            _ => {
                self.type_err(&t.key(k), v, "true or false");
                None
            }
        }
    }

    /// A string value checked by `parse`; its error message is reported at the value.
    fn parsed<T>(
        &mut self,
        t: &Tbl<'_, '_>,
        k: &str,
        expected: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let s = self.string(t, k, expected)?;
        match parse(s) {
            Ok(v) => Some(v),
            Err(e) => {
                let span = t.get(k).map(|v| v.span()).unwrap_or(0..0);
                self.err(span, &t.key(k), e);
                None
            }
        }
    }

    fn duration(&mut self, t: &Tbl<'_, '_>, k: &str) -> Option<Duration> {
        let v = t.get(k)?;
        if let Some(n) = int_of(v.get_ref()) {
            self.err(
                v.span(),
                &t.key(k),
                format!(
                    "expected a duration string such as \"30s\", found the integer {n}; a bare number has no unit: write \"{n}s\" for {n} seconds"
                ),
            );
            return None;
        }
        self.parsed(
            t,
            k,
            "a duration string such as \"500ms\", \"30s\" or \"1h 30m\"",
            |s| values::parse_duration(s).map_err(|e| format!("bad duration `{s}`: {e}")),
        )
    }

    /// A duration that must not be zero.
    fn positive_duration(&mut self, t: &Tbl<'_, '_>, k: &str) -> Option<Duration> {
        let d = self.duration(t, k)?;
        if d.is_zero() {
            let span = t.get(k).map(|v| v.span()).unwrap_or(0..0);
            self.err(span, &t.key(k), "must be longer than 0");
            return None;
        }
        Some(d)
    }

    /// A duration of at least `floor`; `why` says what a shorter one would do.
    fn duration_at_least(
        &mut self,
        t: &Tbl<'_, '_>,
        k: &str,
        floor: Duration,
        why: &str,
    ) -> Option<Duration> {
        let d = self.duration(t, k)?;
        if d < floor {
            let span = t.get(k).map(|v| v.span()).unwrap_or(0..0);
            self.err(
                span,
                &t.key(k),
                format!(
                    "must be at least {} ({why})",
                    humantime::format_duration(floor)
                ),
            );
            return None;
        }
        Some(d)
    }

    fn size(&mut self, t: &Tbl<'_, '_>, k: &str) -> Option<u64> {
        let v = t.get(k)?;
        if let DeValue::Integer(_) = v.get_ref() {
            return match int_of(v.get_ref()).and_then(|n| u64::try_from(n).ok()) {
                Some(n) => Some(n),
                None => {
                    self.err(
                        v.span(),
                        &t.key(k),
                        "a size is not negative; write \"256M\" or a number of bytes",
                    );
                    None
                }
            };
        }
        self.parsed(
            t,
            k,
            "a size such as \"512K\", \"256M\" or \"2G\"",
            values::parse_size,
        )
    }

    fn integer(
        &mut self,
        t: &Tbl<'_, '_>,
        k: &str,
        range: std::ops::RangeInclusive<i128>,
    ) -> Option<i128> {
        let v = t.get(k)?;
        let expected = format!("an integer from {} to {}", range.start(), range.end());
        match int_of(v.get_ref()) {
            Some(n) if range.contains(&n) => Some(n),
            Some(n) => {
                self.err(
                    v.span(),
                    &t.key(k),
                    format!("{n} is out of range; expected {expected}"),
                );
                None
            }
            None => {
                if let DeValue::String(s) = v.get_ref() {
                    if s.trim().parse::<i128>().is_ok() {
                        self.err(
                            v.span(),
                            &t.key(k),
                            format!(
                                "expected {expected} without quotes, found the string {:?}",
                                &**s
                            ),
                        );
                        return None;
                    }
                }
                self.type_err(&t.key(k), v, &expected);
                None
            }
        }
    }

    /// An array of strings, each with its span.
    fn strings<'v>(
        &mut self,
        t: &Tbl<'v, '_>,
        k: &str,
        expected: &str,
    ) -> Option<Vec<(&'v str, Range<usize>)>> {
        let v = t.get(k)?;
        let DeValue::Array(items) = v.get_ref() else {
            self.type_err(&t.key(k), v, &format!("an array of {expected}"));
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push((&**s, item.span())),
                _ => {
                    self.type_err(&t.key(k), item, expected);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// An array of string-or-integer ids (groups), resolved with `resolve`.
    fn ids(
        &mut self,
        t: &Tbl<'_, '_>,
        k: &str,
        resolve: impl Fn(&str) -> Result<u32, String>,
    ) -> Option<Vec<u32>> {
        let v = t.get(k)?;
        let DeValue::Array(items) = v.get_ref() else {
            self.type_err(&t.key(k), v, "an array of group names or gids");
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            let r = match item.get_ref() {
                DeValue::String(s) => resolve(s),
                DeValue::Integer(_) => match int_of(item.get_ref()) {
                    Some(n) => resolve(&n.to_string()),
                    None => Err("gid out of range".into()),
                },
                _ => {
                    self.type_err(&t.key(k), item, "a group name or gid");
                    ok = false;
                    continue;
                }
            };
            match r {
                Ok(g) => out.push(g),
                Err(e) => {
                    self.err(item.span(), &t.key(k), e);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// An absolute path.
    fn abs_path(&mut self, t: &Tbl<'_, '_>, k: &str) -> Option<PathBuf> {
        self.parsed(t, k, "an absolute path such as \"/var/lib/app\"", |s| {
            if s.contains('\0') {
                Err("a path cannot contain a NUL character".into())
            } else if !s.starts_with('/') {
                Err(format!("`{s}` is not an absolute path; write it from the root, such as \"/var/lib/app\""))
            } else {
                Ok(PathBuf::from(s))
            }
        })
    }

    /// An argv: a non-empty array of strings whose first is absolute or a bare name.
    fn argv(&mut self, t: &Tbl<'_, '_>, k: &str) -> Option<Vec<String>> {
        const SHAPE: &str = "an argv array such as [\"/usr/bin/program\", \"--flag\"] (for a shell command: [\"/bin/sh\", \"-c\", \"...\"])";
        let v = t.get(k)?;
        if !matches!(v.get_ref(), DeValue::Array(_)) {
            self.type_err(&t.key(k), v, SHAPE);
            return None;
        }
        let items = self.strings(t, k, "strings")?;
        let Some((first, span0)) = items.first() else {
            self.err(v.span(), &t.key(k), format!("is empty; expected {SHAPE}"));
            return None;
        };
        let mut ok = true;
        if first.is_empty() {
            self.err(
                span0.clone(),
                &t.key(k),
                "the program (first element) is empty",
            );
            ok = false;
        } else if first.contains('/') && !first.starts_with('/') {
            self.err(
                span0.clone(),
                &t.key(k),
                format!("`{first}` is a relative path; give an absolute path or a bare name found in PATH"),
            );
            ok = false;
        }
        for (s, span) in &items {
            if s.contains('\0') {
                self.err(
                    span.clone(),
                    &t.key(k),
                    "an argument cannot contain a NUL character",
                );
                ok = false;
            }
        }
        ok.then(|| items.iter().map(|(s, _)| s.to_string()).collect())
    }

    /// A list of unit names (after, requires) or tags.
    fn names(&mut self, t: &Tbl<'_, '_>, k: &str, what: &str) -> Vec<String> {
        let Some(items) = self.strings(t, k, &format!("{what} names")) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (s, span) in items {
            // `after = ["db.unit"]` means db, as colonyctl accepts NAME.unit.
            let s = if what == "unit" {
                s.strip_suffix(".unit").unwrap_or(s)
            } else {
                s
            };
            let instance = what == "unit" && crate::template::split_instance(s).is_some();
            if valid_unit_name(s) || instance {
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_string());
                }
            } else {
                self.err(
                    span,
                    &t.key(k),
                    format!(
                        "`{s}` is not a valid {what} name: {}",
                        NAME_RULE.replace("a unit name", "a name")
                    ),
                );
            }
        }
        out
    }

    /// `host:port` as a TCP address.
    fn address(&mut self, t: &Tbl<'_, '_>, k: &str) -> Option<String> {
        self.parsed(t, k, "an address such as \"127.0.0.1:8080\"", |s| {
            parse_host_port(s).map(|()| s.to_string())
        })
    }

    /// The section `name`, if present, checked for unknown keys.
    fn section<'t, 'i>(&mut self, top: &Tbl<'t, 'i>, name: &'static str) -> Option<Tbl<'t, 'i>> {
        let v = top.get(name)?;
        let keys = SECTIONS
            .iter()
            .find(|(s, _)| *s == name)
            .map(|(_, k)| *k)
            .unwrap_or(&[]);
        match v.get_ref() {
            DeValue::Table(t) => {
                let tbl = Tbl {
                    t,
                    section: name,
                    span: top.key_span(name),
                };
                self.unknown_keys(&tbl, keys);
                Some(tbl)
            }
            _ => {
                self.err(
                    top.key_span(name),
                    name,
                    format!(
                        "`{name}` is a section, found {}; write a [{name}] line with its keys ({}) below it",
                        found(v.get_ref()),
                        keys.join(", ")
                    ),
                );
                None
            }
        }
    }

    fn unit(&mut self, path: &Path, name: &str, doc: &DeTable<'_>) -> Option<Unit> {
        let top = Tbl {
            t: doc,
            section: "",
            span: 0..0,
        };
        self.unknown_keys(&top, TOP_KEYS);

        let description = self
            .string(&top, "description", "a string")
            .map(str::to_string);
        let exec = self.argv(&top, "exec");
        if top.get("exec").is_none() {
            self.errs.push(Diagnostic::whole_file(
                self.file,
                "exec",
                "missing `exec`: every unit needs exec = [\"/path/to/program\", \"arg\", ...]",
            ));
        }
        let (directory, work_dir, work_dir_missing) = self.work_dir(&top);
        let environment = self.environment(&top);
        let identity = self.identity(&top);
        let umask = match top.get("umask") {
            Some(v) if matches!(v.get_ref(), DeValue::Integer(_)) => {
                let radix = match v.get_ref() {
                    DeValue::Integer(i) => i.radix(),
                    _ => 10,
                };
                match int_of(v.get_ref()) {
                    Some(n) if radix == 8 && (0..=0o777).contains(&n) => Some(n as u32),
                    _ => {
                        self.err(
                            v.span(),
                            "umask",
                            "a umask is octal: write it as a string such as \"0027\" (or 0o027)",
                        );
                        None
                    }
                }
            }
            _ => self.parsed(
                &top,
                "umask",
                "an octal string such as \"0027\"",
                values::parse_umask,
            ),
        };
        // The kernel's most (fs.nr_open cannot go past it).
        let (mut exec_env, limits_nofile) = self.exec_env(&top);
        exec_env.work_dir = work_dir;
        exec_env.work_dir_missing = work_dir_missing;
        let nofile = self
            .integer(&top, "nofile", 1..=1_073_741_816)
            .map(|n| n as u64)
            .or(limits_nofile);
        let capabilities = self
            .strings(
                &top,
                "capabilities",
                "capability names such as \"CAP_NET_BIND_SERVICE\"",
            )
            .and_then(|caps| {
                let mut mask = 0u64;
                let mut ok = true;
                for (c, span) in caps {
                    match values::parse_capability(c) {
                        Ok(bit) => mask |= bit,
                        Err(e) => {
                            self.err(span, "capabilities", e);
                            ok = false;
                        }
                    }
                }
                ok.then_some(mask)
            });
        let no_new_privileges = self.boolean(&top, "no_new_privileges").unwrap_or(false);
        let after = self.names(&top, "after", "unit");
        let requires = self.names(&top, "requires", "unit");
        for (k, list) in [("after", &after), ("requires", &requires)] {
            if !name.is_empty() && list.iter().any(|d| d == name) {
                let span = top.get(k).map(|v| v.span()).unwrap_or(0..0);
                self.err(
                    span,
                    k,
                    format!("`{name}` names itself; a unit cannot wait for itself"),
                );
            }
        }
        let tags = self.names(&top, "tags", "tag");
        let enabled = self.boolean(&top, "enabled").unwrap_or(true);
        let essential = self.boolean(&top, "essential").unwrap_or(false);
        let extras_json = self.extras(&top);

        let mut restart = self.restart(&top);
        let stop = self.stop(&top);
        let ready = self.ready(&top);
        // A boot task runs once: it is restarted only when its [restart] policy says so.
        let policy_set = top
            .get("restart")
            .is_some_and(|r| matches!(r.get_ref(), DeValue::Table(t) if t.contains_key("policy")));
        if ready.kind == ReadyType::Exited && !policy_set {
            restart.policy = RestartPolicy::Never;
        }
        let health = self.health(&top).map(Box::new);
        let resources = self.resources(&top);
        let heartbeat = self.heartbeat(&top);
        let timer = self.timer(&top).map(Box::new);
        let log = self.log(&top);
        let sandbox = self.sandbox(&top).map(Box::new);
        let socket = self.socket(&top).map(Box::new);
        let tty = self.tty(&top).map(Box::new);
        let hooks = self.hooks(&top);
        let links = self.links(&top, name);
        let conditions = self.conditions(&top);
        let instances = self
            .integer(
                &top,
                "instances",
                1..=i128::from(crate::template::MAX_INSTANCES),
            )
            .map(|n| n as u32);

        Some(Unit {
            name: name.to_string(),
            path: path.to_path_buf(),
            description,
            exec: exec?,
            directory,
            environment,
            identity,
            umask,
            nofile,
            capabilities,
            no_new_privileges,
            after,
            requires,
            tags,
            enabled,
            essential,
            extras_json,
            restart,
            stop,
            ready,
            health,
            resources,
            heartbeat,
            timer,
            log,
            sandbox,
            exec_env,
            socket,
            tty,
            hooks,
            links,
            conditions,
            instances,
        })
    }

    fn environment(&mut self, top: &Tbl<'_, '_>) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let Some(v) = top.get("environment") else {
            return env;
        };
        let DeValue::Table(t) = v.get_ref() else {
            self.type_err("environment", v, "a table such as { LANG = \"C.UTF-8\" }");
            return env;
        };
        for (k, val) in t.iter() {
            let name: &str = k.get_ref();
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                self.err(
                    k.span(),
                    "environment",
                    format!("`{name}` is not a valid variable name (not empty, no `=`, no NUL)"),
                );
                continue;
            }
            match val.get_ref() {
                DeValue::String(s) if !s.contains('\0') => {
                    env.insert(name.to_string(), s.to_string());
                }
                DeValue::String(_) => self.err(
                    val.span(),
                    &format!("environment.{name}"),
                    "a value cannot contain a NUL character",
                ),
                DeValue::Integer(i) => {
                    let shown = i.to_string();
                    self.err(
                        val.span(),
                        &format!("environment.{name}"),
                        format!("environment values are strings: write {name} = \"{shown}\""),
                    )
                }
                DeValue::Boolean(b) => self.err(
                    val.span(),
                    &format!("environment.{name}"),
                    format!("environment values are strings: write {name} = \"{b}\""),
                ),
                _ => self.type_err(&format!("environment.{name}"), val, "a string"),
            }
        }
        env
    }

    fn identity(&mut self, top: &Tbl<'_, '_>) -> Identity {
        let id_text = |v: &Val<'_>| -> Option<String> {
            match v.get_ref() {
                DeValue::String(s) => Some(s.to_string()),
                DeValue::Integer(_) => int_of(v.get_ref()).map(|n| n.to_string()),
                _ => None,
            }
        };
        let negative = |v: &Val<'_>| int_of(v.get_ref()).is_some_and(|n| n < 0);
        let mut user = None;
        if let Some(v) = top.get("user").filter(|v| {
            let neg = negative(v);
            if neg {
                self.err(
                    v.span(),
                    "user",
                    "a uid is not negative; give a user name or a uid",
                );
            }
            !neg
        }) {
            match id_text(v) {
                Some(s) => match values::resolve_user(&s) {
                    Ok(u) => user = Some(u),
                    Err(_) if self.template => {}
                    Err(e) => self.err(v.span(), "user", e),
                },
                None => self.type_err("user", v, "a user name or uid"),
            }
        }
        let mut gid = None;
        if let Some(v) = top.get("group").filter(|v| {
            let neg = negative(v);
            if neg {
                self.err(
                    v.span(),
                    "group",
                    "a gid is not negative; give a group name or a gid",
                );
            }
            !neg
        }) {
            match id_text(v) {
                Some(s) => match values::resolve_group(&s) {
                    Ok(g) => gid = Some(g),
                    Err(_) if self.template => {}
                    Err(e) => self.err(v.span(), "group", e),
                },
                None => self.type_err("group", v, "a group name or gid"),
            }
        }
        let supplementary_groups = self.ids(top, "supplementary_groups", values::resolve_group);
        Identity {
            gid: gid.or(user.as_ref().map(|u| u.primary_gid)),
            user,
            supplementary_groups,
        }
    }

    fn extras(&mut self, top: &Tbl<'_, '_>) -> String {
        let Some(v) = top.get("extras") else {
            return "{}".into();
        };
        if !matches!(v.get_ref(), DeValue::Table(_)) {
            self.type_err("extras", v, "a table such as { shard = 3 }");
            return "{}".into();
        }
        match to_json(v) {
            Ok(j) => j.to_string(),
            Err((span, msg)) => {
                self.err(span, "extras", msg);
                "{}".into()
            }
        }
    }

    fn restart(&mut self, top: &Tbl<'_, '_>) -> Restart {
        let mut r = Restart::default();
        let Some(t) = self.section(top, "restart") else {
            return r;
        };
        if let Some(p) = self.parsed(
            &t,
            "policy",
            "one of \"always\", \"on-failure\", \"never\"",
            values::parse_restart_policy,
        ) {
            r.policy = p;
        }
        if let Some(v) = t.get("success_codes") {
            match v.get_ref() {
                DeValue::Array(items) => {
                    let mut codes = Vec::new();
                    for item in items.iter() {
                        match int_of(item.get_ref()) {
                            Some(n) => match i64::try_from(n)
                                .map_err(|_| {
                                    format!(
                                        "exit code {n} is out of range; exit codes are 0 to 255"
                                    )
                                })
                                .and_then(values::parse_success_code)
                            {
                                Ok(c) => {
                                    if !codes.contains(&c) {
                                        codes.push(c)
                                    }
                                }
                                Err(e) => self.err(item.span(), "restart.success_codes", e),
                            },
                            None => self.type_err(
                                "restart.success_codes",
                                item,
                                "an exit code from 0 to 255",
                            ),
                        }
                    }
                    r.success_codes = codes;
                }
                _ => self.type_err(
                    "restart.success_codes",
                    v,
                    "an array of exit codes such as [0, 143]",
                ),
            }
        }
        r.delay_min = self.duration(&t, "delay_min");
        r.delay_max = self.duration(&t, "delay_max");
        r.threshold = self.duration(&t, "threshold");
        r.max_failures = self
            .integer(&t, "max_failures", 1..=i128::from(MAX_FAILURES))
            .map(|n| n as u32);
        if let (Some(min), Some(max)) = (r.delay_min, r.delay_max) {
            if min > max {
                self.err(
                    t.key_span("delay_max"),
                    "restart.delay_max",
                    format!(
                        "delay_max ({}) is shorter than delay_min ({}); backoff grows from delay_min up to delay_max",
                        humantime::format_duration(max),
                        humantime::format_duration(min)
                    ),
                );
            }
        }
        r
    }

    fn stop(&mut self, top: &Tbl<'_, '_>) -> Stop {
        let mut s = Stop::default();
        let Some(t) = self.section(top, "stop") else {
            return s;
        };
        if let Some(v) = t.get("signal") {
            let r = match v.get_ref() {
                DeValue::String(x) => Some(values::parse_signal(x)),
                DeValue::Integer(_) => Some(match int_of(v.get_ref()) {
                    Some(n) => values::parse_signal(&n.to_string()),
                    None => Err("no such signal".into()),
                }),
                _ => None,
            };
            match r {
                Some(Ok(n)) => s.signal = n,
                Some(Err(e)) => self.err(v.span(), "stop.signal", e),
                None => self.type_err("stop.signal", v, "a signal such as \"SIGTERM\""),
            }
        }
        s.timeout = self.duration(&t, "timeout");
        s.sighup = self.boolean(&t, "sighup").unwrap_or(false);
        s
    }

    fn ready(&mut self, top: &Tbl<'_, '_>) -> Ready {
        let Some(t) = self.section(top, "ready") else {
            return Ready::default();
        };
        const TYPES: [&str; 5] = ["started", "notify", "tcp", "file", "exited"];
        let ty = match self.string(
            &t,
            "type",
            "one of \"started\", \"notify\", \"tcp\", \"file\", \"exited\"",
        ) {
            None => Some("started"),
            Some(s) if TYPES.contains(&s) => Some(s),
            Some(s) => {
                let hint = match nearest(s, TYPES) {
                    Some(n) => format!("did you mean `{n}`?"),
                    None => "expected one of started, notify, tcp, file, exited".into(),
                };
                let span = t.get("type").map(|v| v.span()).unwrap_or(0..0);
                self.err(span, "ready.type", format!("unknown type `{s}`; {hint}"));
                None
            }
        };
        let address = self.address(&t, "address");
        let path = self.abs_path(&t, "path");
        let timeout = self.positive_duration(&t, "timeout");
        let watchdog = self.duration_at_least(
            &t,
            "watchdog",
            MIN_PERIOD,
            "a shorter watchdog makes colony-init spin",
        );
        let kind = match ty {
            Some("notify") => ReadyType::Notify,
            Some("exited") => ReadyType::Exited,
            Some("tcp") => match address.clone() {
                Some(a) => ReadyType::Tcp(a),
                None => {
                    if t.get("address").is_none() {
                        self.err(
                            t.key_span("type"),
                            "ready.address",
                            "type = \"tcp\" needs address = \"HOST:PORT\" (up when a connection to it succeeds)",
                        );
                    }
                    ReadyType::Started
                }
            },
            Some("file") => match path.clone() {
                Some(p) => ReadyType::File(p),
                None => {
                    if t.get("path").is_none() {
                        self.err(
                            t.key_span("type"),
                            "ready.path",
                            "type = \"file\" needs path = \"/absolute/path\" (up when this file exists)",
                        );
                    }
                    ReadyType::Started
                }
            },
            _ => ReadyType::Started,
        };
        if let Some(ty) = ty {
            if ty != "tcp" && t.get("address").is_some() {
                self.err(
                    t.key_span("address"),
                    "ready.address",
                    format!("address applies only to type = \"tcp\" (this is type = \"{ty}\")"),
                );
            }
            if ty != "file" && t.get("path").is_some() {
                self.err(
                    t.key_span("path"),
                    "ready.path",
                    format!("path applies only to type = \"file\" (this is type = \"{ty}\")"),
                );
            }
            if ty != "notify" && t.get("watchdog").is_some() {
                self.err(
                    t.key_span("watchdog"),
                    "ready.watchdog",
                    format!("watchdog applies only to type = \"notify\" (this is type = \"{ty}\")"),
                );
            }
            if ty == "started" && t.get("timeout").is_some() {
                self.err(
                    t.key_span("timeout"),
                    "ready.timeout",
                    "timeout applies only to type notify, tcp, file or exited: a \"started\" unit is up at exec",
                );
            }
        }
        let timeout = match kind {
            ReadyType::Started => None,
            ReadyType::Exited => timeout,
            _ => Some(timeout.unwrap_or(DEFAULT_READY_TIMEOUT)),
        };
        let settle = self.duration(&t, "settle").unwrap_or_default();
        Ready {
            kind,
            timeout,
            watchdog,
            settle,
        }
    }

    fn health(&mut self, top: &Tbl<'_, '_>) -> Option<Health> {
        let t = self.section(top, "health")?;
        let present: Vec<&str> = ["http", "tcp", "exec"]
            .into_iter()
            .filter(|k| t.get(k).is_some())
            .collect();
        let check = match present.as_slice() {
            [] => {
                self.err(
                    t.span.clone(),
                    "health",
                    "[health] needs one check: http = \"http://HOST:PORT/PATH\", tcp = \"HOST:PORT\" or exec = [argv]",
                );
                None
            }
            ["http"] => self
                .parsed(
                    &t,
                    "http",
                    "a URL such as \"http://127.0.0.1:8080/healthz\"",
                    |s| parse_http_url(s).map(|()| s.to_string()),
                )
                .map(HealthCheck::Http),
            ["tcp"] => self.address(&t, "tcp").map(HealthCheck::Tcp),
            ["exec"] => self.argv(&t, "exec").map(HealthCheck::Exec),
            many => {
                let second = many[1];
                self.err(
                    t.key_span(second),
                    &format!("health.{second}"),
                    format!(
                        "[health] takes exactly one check, found {}; keep one",
                        many.join(" and ")
                    ),
                );
                None
            }
        };
        let period = self.duration_at_least(
            &t,
            "period",
            MIN_PERIOD,
            "a shorter period makes colony-init spin",
        );
        let timeout = self.duration_at_least(
            &t,
            "timeout",
            MIN_PERIOD,
            "a shorter timeout fails healthy checks",
        );
        let max_bad = self.integer(&t, "max_bad", 1..=1_000_000);
        let grace = self.duration(&t, "grace");
        Some(Health {
            check: check?,
            period: period.unwrap_or(Duration::from_secs(10)),
            timeout: timeout.unwrap_or(Duration::from_secs(2)),
            max_bad: max_bad.map(|n| n as u32).unwrap_or(3),
            grace: grace.unwrap_or(Duration::from_secs(30)),
        })
    }

    fn resources(&mut self, top: &Tbl<'_, '_>) -> Resources {
        let Some(t) = self.section(top, "resources") else {
            return Resources::default();
        };
        let mut r = Resources {
            memory_max: self.size(&t, "memory_max"),
            memory_high: self.size(&t, "memory_high"),
            ..Resources::default()
        };
        for k in ["memory_max", "memory_high"] {
            let v = if k == "memory_max" {
                r.memory_max
            } else {
                r.memory_high
            };
            if v == Some(0) {
                self.err(
                    t.get(k).map(|v| v.span()).unwrap_or(0..0),
                    &t.key(k),
                    "must be more than 0 (omit the key for no limit)",
                );
            }
        }
        if let Some(v) = t.get("cpu_max") {
            if let Some(n) = int_of(v.get_ref()) {
                self.err(
                    v.span(),
                    "resources.cpu_max",
                    format!("expected a percentage string such as \"50%\", found the integer {n}; write \"{n}%\""),
                );
            } else {
                r.cpu_max = self.parsed(
                    &t,
                    "cpu_max",
                    "a percentage such as \"50%\"",
                    values::parse_cpu_max,
                );
            }
        }
        r.cpu_weight = self.integer(&t, "cpu_weight", 1..=10_000).map(|n| n as u32);
        r.tasks_max = self
            .integer(&t, "tasks_max", 1..=(u32::MAX as i128))
            .map(|n| n as u64);
        r
    }

    fn heartbeat(&mut self, top: &Tbl<'_, '_>) -> Option<Heartbeat> {
        let t = self.section(top, "heartbeat")?;
        Some(Heartbeat {
            file: self.abs_path(&t, "file"),
            period: self
                .duration_at_least(
                    &t,
                    "period",
                    MIN_PERIOD,
                    "a shorter period makes colony-init spin",
                )
                .unwrap_or(Duration::from_secs(30)),
            grace: self
                .duration(&t, "grace")
                .unwrap_or(Duration::from_secs(60)),
        })
    }

    fn timer(&mut self, top: &Tbl<'_, '_>) -> Option<Timer> {
        let t = self.section(top, "timer")?;
        let timer = Timer {
            every: self.duration_at_least(
                &t,
                "every",
                MIN_EVERY,
                "a shorter interval makes colony-init spin; a program that runs all the time is a service, not a timer",
            ),
            calendar: self.parsed(
                &t,
                "calendar",
                "a cron expression such as \"0 3 * * *\"",
                values::parse_calendar,
            ),
            on_boot: self.duration(&t, "on_boot"),
            persistent: self.boolean(&t, "persistent").unwrap_or(false),
            timeout: self.positive_duration(&t, "timeout"),
        };
        if ["every", "calendar", "on_boot"]
            .iter()
            .all(|k| t.get(k).is_none())
        {
            self.err(
                t.span.clone(),
                "timer",
                "a timer needs at least one of every = \"15m\", calendar = \"0 3 * * *\" or on_boot = \"2m\"",
            );
        }
        Some(timer)
    }

    fn log(&mut self, top: &Tbl<'_, '_>) -> Log {
        let mut l = Log::default();
        let Some(t) = self.section(top, "log") else {
            return l;
        };
        l.file = self.abs_path(&t, "file");
        if let Some(s) = self.size(&t, "max_size") {
            if s < MIN_LOG_SIZE {
                self.err(
                    t.get("max_size").map(|v| v.span()).unwrap_or(0..0),
                    "log.max_size",
                    format!(
                        "must be at least {}K, such as \"10M\" (a smaller file rotates at almost every line, and rotating stalls colony-init)",
                        MIN_LOG_SIZE >> 10
                    ),
                );
            }
            l.max_size = s;
        }
        let max = i128::from(MAX_LOG_KEEP);
        match t.get("keep") {
            Some(v) if int_of(v.get_ref()).is_some_and(|n| n > max) => self.err(
                v.span(),
                "log.keep",
                format!(
                    "must be at most {MAX_LOG_KEEP} (each rotation renames every kept file, so more stalls colony-init; archive old logs elsewhere)"
                ),
            ),
            _ => {
                if let Some(k) = self.integer(&t, "keep", 0..=max) {
                    l.keep = k as u32;
                }
            }
        }
        if let Some(c) = self.boolean(&t, "console") {
            l.console = c;
        }
        l
    }
}

/// `HOST:PORT`, with a non-empty host (IPv6 in brackets) and a port from 1 to 65535.
pub fn parse_host_port(s: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "`{s}` is not HOST:PORT; an address looks like \"127.0.0.1:8080\" or \"[::1]:8080\""
        )
    };
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty()
        || host.chars().any(|c| c.is_whitespace() || c == '/')
        || (host.contains(':') && !(host.starts_with('[') && host.ends_with(']')))
    {
        return Err(bad());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!(
            "`{s}` has no valid port (1 to 65535); an address looks like \"127.0.0.1:8080\""
        )),
    }
}

/// `http://HOST[:PORT][/PATH]`.
pub fn parse_http_url(s: &str) -> Result<(), String> {
    const HINT: &str = "a URL looks like \"http://127.0.0.1:8080/healthz\"";
    let Some(rest) = s.strip_prefix("http://") else {
        return Err(if s.starts_with("https://") {
            format!("`{s}`: https is not supported by the health check; use http:// (or a tcp or exec check)")
        } else {
            format!("`{s}` is not an http:// URL; {HINT}")
        });
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if authority.is_empty() || authority.contains(char::is_whitespace) || authority.contains('@') {
        return Err(format!("`{s}` has no valid host; {HINT}"));
    }
    let port_ok = |p: &str| p.parse::<u16>().map(|p| p > 0).unwrap_or(false);
    let ok = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, "")) => !h.is_empty(),
            Some((h, rest)) => !h.is_empty() && rest.strip_prefix(':').is_some_and(port_ok),
            None => false,
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => !h.is_empty() && port_ok(p),
            None => true,
        }
    };
    if !ok {
        return Err(format!(
            "`{s}` has no valid HOST[:PORT] (port 1 to 65535); {HINT}"
        ));
    }
    Ok(())
}

/// Any TOML value to JSON (for `extras`): a date-time becomes its string.
fn to_json(v: &Val<'_>) -> Result<serde_json::Value, (Range<usize>, String)> {
    use serde_json::Value as J;
    Ok(match v.get_ref() {
        DeValue::String(s) => J::String(s.to_string()),
        DeValue::Integer(_) => match int_of(v.get_ref()).and_then(|n| i64::try_from(n).ok()) {
            Some(n) => J::from(n),
            None => return Err((v.span(), "integer out of range".into())),
        },
        DeValue::Float(f) => {
            let x: f64 = f.as_str().replace('_', "").parse().unwrap_or(f64::NAN);
            match serde_json::Number::from_f64(x) {
                Some(n) => J::Number(n),
                None => {
                    return Err((
                        v.span(),
                        format!("{} cannot be given as JSON; use a string", f.as_str()),
                    ))
                }
            }
        }
        DeValue::Boolean(b) => J::Bool(*b),
        DeValue::Datetime(d) => J::String(d.to_string()),
        DeValue::Array(a) => J::Array(a.iter().map(to_json).collect::<Result<_, _>>()?),
        DeValue::Table(t) => {
            let mut m = serde_json::Map::new();
            for (k, x) in t.iter() {
                m.insert(k.get_ref().to_string(), to_json(x)?);
            }
            J::Object(m)
        }
    })
}

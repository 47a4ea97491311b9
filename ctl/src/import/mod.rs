//! `colonyctl import`: translate systemd, supervisord and NColony configurations into units.
//!
//! Each translator turns its source into [`draft::Draft`]s: the unit's keys plus a report
//! entry for every source key (carried, approximated, already colony's behaviour, or not
//! carried with the reason). This module guesses formats, drops orderings to units that will
//! not be in the output directory and checks the units there as a whole, as `colonyctl check`
//! does ([`verify`]: a unit that would not load fails the import, and nothing is written),
//! prints the report and writes the files atomically.

pub mod calendar;
pub mod draft;
pub mod input;
pub mod ncolony;
pub mod report;
pub mod supervisord;
pub mod systemd;
pub mod verify;
pub mod words;

use std::collections::BTreeSet;
use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use draft::{Draft, Entry, Fate};
use units::proto::exit;

/// The arguments of `colonyctl import [--from systemd|supervisord|ncolony] [--out DIR]
/// [--dry-run] [--strict] FILE...`.
#[derive(Debug, Clone, Default)]
pub struct ImportArgs {
    /// `systemd`, `supervisord` or `ncolony`; guessed from each file when absent.
    pub from: Option<String>,
    /// Where to write the units (default: the current directory; created if missing).
    pub out: Option<PathBuf>,
    /// Print the units and the report; write nothing.
    pub dry_run: bool,
    /// Any key not carried over is an error (exit 1, nothing written).
    pub strict: bool,
    pub files: Vec<PathBuf>,
    /// The report as one JSON object on stdout instead of text.
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    Systemd,
    Supervisord,
    Ncolony,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "systemd" => Some(Format::Systemd),
            "supervisord" | "supervisor" => Some(Format::Supervisord),
            "ncolony" => Some(Format::Ncolony),
            _ => None,
        }
    }
}

/// Guess the format of a file: `.service`/`.timer` are systemd's (and a directory with
/// them), a `[program:` section is supervisord's, a JSON object with `args` (or a directory
/// of them) is NColony's.
pub fn guess(path: &Path) -> Result<Format, String> {
    if path.is_dir() {
        // systemd's unit directories hold .service/.timer files; NColony's config directory
        // holds bare JSON files.
        let systemd = std::fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .flatten()
            .any(|e| {
                let p = e.path();
                p.extension()
                    .is_some_and(|x| x == "service" || x == "timer" || x == "socket")
            });
        return Ok(if systemd {
            Format::Systemd
        } else {
            Format::Ncolony
        });
    }
    if path
        .extension()
        .is_some_and(|e| e == "service" || e == "timer" || e == "socket")
    {
        return Ok(Format::Systemd);
    }
    let text = input::read_text(path)?;
    if text.contains("[program:") || text.contains("[supervisord]") || text.contains("[include]") {
        return Ok(Format::Supervisord);
    }
    if ncolony::looks_like(&text) {
        return Ok(Format::Ncolony);
    }
    Err(format!(
        "{}: cannot tell its format; give --from systemd, supervisord or ncolony",
        path.display()
    ))
}

/// The units made from the inputs, and the report entries that belong to no one unit.
pub struct Translation {
    pub drafts: Vec<Draft>,
    pub general: Vec<Entry>,
}

/// Translate the inputs (no checking, no writing).
pub fn translate(from: Option<Format>, files: &[PathBuf]) -> Result<Translation, String> {
    let mut by: [(Format, Vec<PathBuf>); 3] = [
        (Format::Systemd, Vec::new()),
        (Format::Supervisord, Vec::new()),
        (Format::Ncolony, Vec::new()),
    ];
    for f in files {
        let fmt = match from {
            Some(x) => x,
            None => guess(f)?,
        };
        let slot = &mut by
            .iter_mut()
            .find(|(k, _)| *k == fmt)
            .expect("every format has a slot")
            .1;
        if fmt == Format::Systemd && f.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(f)
                .map_err(|e| format!("{}: {e}", f.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension()
                        .is_some_and(|e| e == "service" || e == "timer" || e == "socket")
                })
                .collect();
            v.sort();
            slot.extend(v);
        } else {
            slot.push(f.clone());
        }
    }
    let mut t = Translation {
        drafts: Vec::new(),
        general: Vec::new(),
    };
    for (fmt, paths) in by {
        if paths.is_empty() {
            continue;
        }
        match fmt {
            Format::Systemd => {
                let (d, g) = systemd::import(&paths)?;
                t.drafts.extend(d);
                t.general.extend(g);
            }
            Format::Supervisord => {
                let b = supervisord::import(&paths)?;
                t.drafts.extend(b.drafts);
                t.general.extend(b.general);
            }
            Format::Ncolony => {
                for p in paths {
                    for f in ncolony::files(&p)? {
                        match ncolony::import_file(&f)? {
                            ncolony::Outcome::Unit(d) => t.drafts.push(*d),
                            ncolony::Outcome::Helper(why) => t.general.push(Entry {
                                origin: f.display().to_string(),
                                source: "args=[... ncolony helper ...]".into(),
                                to: None,
                                fate: Fate::Same(why),
                            }),
                        }
                    }
                }
            }
        }
    }
    Ok(t)
}

/// Write `text` to `path` atomically without replacing anything: a temporary file in the
/// same directory, synced, then renamed with RENAME_NOREPLACE (or linked, where the file
/// system does not support that).
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let file = path.file_name().unwrap_or_default().to_string_lossy();
    // Not ending in `.unit`, so a watching colony-init never reads it half-written.
    let tmp = dir.join(format!(".{file}.import-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&tmp)?;
    let res = (|| {
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        let from = CString::new(tmp.as_os_str().as_bytes())?;
        let to = CString::new(path.as_os_str().as_bytes())?;
        // SAFETY: both are valid NUL-terminated paths; AT_FDCWD with paths is plain renameat2.
        // The raw syscall: musl's libc has no renameat2 wrapper (the static build links this).
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::ENOSYS) {
            std::fs::hard_link(&tmp, path)?;
            std::fs::remove_file(&tmp)?;
            return Ok(());
        }
        Err(e)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    res
}

/// `colonyctl import`, printing to stdout and stderr. Returns the exit code.
pub fn run(args: ImportArgs) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(args, &mut stdout.lock(), &mut stderr.lock())
}

/// `colonyctl import` with its output (units in dry-run, the report) to `out` and errors to
/// `err`.
pub fn run_with(args: ImportArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    // With --json the text goes nowhere and `out` gets the JSON report instead.
    let mut sink = std::io::sink();
    let (out, json_out): (&mut dyn Write, Option<&mut dyn Write>) = if args.json {
        (&mut sink, Some(out))
    } else {
        (out, None)
    };
    macro_rules! fail {
        ($code:expr, $($t:tt)*) => {{
            let _ = writeln!(err, "colonyctl import: {}", format!($($t)*));
            return $code;
        }};
    }
    if args.files.is_empty() {
        fail!(exit::USAGE, "name at least one file: colonyctl import [--from systemd|supervisord|ncolony] [--out DIR] [--dry-run] [--strict] FILE...");
    }
    let from = match args.from.as_deref() {
        None => None,
        Some(s) => match Format::parse(s) {
            Some(f) => Some(f),
            None => fail!(
                exit::USAGE,
                "--from {s}: expected systemd, supervisord or ncolony"
            ),
        },
    };
    for f in &args.files {
        let instance_ok = f
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains('@'))
            && f.extension()
                .is_some_and(|e| e == "service" || e == "timer" || e == "socket");
        if !f.exists() && !instance_ok {
            fail!(exit::USAGE, "{}: no such file or directory", f.display());
        }
    }
    let out_dir = args.out.clone().unwrap_or_else(|| PathBuf::from("."));
    let mut t = match translate(from, &args.files) {
        Ok(t) => t,
        Err(e) => fail!(exit::FAILED, "{e}"),
    };
    if t.drafts.is_empty() {
        let _ = write_general(out, &t.general);
        fail!(
            exit::FAILED,
            "nothing to import: no service or program found in the given files"
        );
    }
    let mut seen = BTreeSet::new();
    for d in &t.drafts {
        if !seen.insert(d.name.clone()) {
            fail!(exit::FAILED, "two units would be named `{}`; import them separately into different --out directories", d.name);
        }
    }
    verify::prune_dependencies(&mut t.drafts, &out_dir);
    let errors = verify::check_output(&t.drafts, &out_dir);

    if args.dry_run {
        for d in &t.drafts {
            let _ = writeln!(
                out,
                "# ---- {} ----",
                out_dir.join(format!("{}.unit", d.name)).display()
            );
            let _ = writeln!(out, "{}", d.render());
        }
    }
    let _ = writeln!(out, "# colonyctl import report");
    let _ = write_general(out, &t.general);
    let mut tally = report::Tally::default();
    tally.add(&t.general);
    for d in &t.drafts {
        let _ = write!(out, "{}", report::unit_report(d));
        tally.add(&d.entries);
    }
    let _ = writeln!(
        out,
        "total: {} units; {}; {:.0}% translated",
        t.drafts.len(),
        tally.line(),
        tally.translated_pct()
    );
    if tally.dropped > 0 {
        let _ = writeln!(
            out,
            "not carried, by key: {}",
            report::dropped_by_key(&t.drafts, &t.general)
        );
    }
    if let Some(j) = json_out {
        let v = report::json(&t.drafts, &t.general, &out_dir, &tally, args.dry_run);
        let _ = writeln!(
            j,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
        );
    }
    if !errors.is_empty() {
        for e in &errors {
            let _ = writeln!(err, "colonyctl import: {e}");
        }
        fail!(
            exit::FAILED,
            "{} error(s) above: these units would not load here; nothing written",
            errors.len()
        );
    }
    if args.strict && tally.dropped > 0 {
        fail!(
            exit::FAILED,
            "--strict: {} key(s) not carried over (NOT CARRIED above); nothing written",
            tally.dropped
        );
    }
    if args.dry_run {
        return exit::OK;
    }
    // Refuse before writing anything: no file is replaced unless it is identical.
    let mut plan = Vec::new();
    let mut conflicts = Vec::new();
    for d in &t.drafts {
        let path = out_dir.join(format!("{}.unit", d.name));
        let text = d.render();
        match std::fs::read(&path) {
            Ok(cur) if cur == text.as_bytes() => {
                let _ = writeln!(out, "unchanged {}", path.display());
            }
            Ok(_) => conflicts.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => plan.push((path, text)),
            Err(e) => fail!(exit::FAILED, "{}: {e}", path.display()),
        }
    }
    if !conflicts.is_empty() {
        for c in &conflicts {
            let _ = writeln!(err, "colonyctl import: {} exists with other content; move it away (or import into another --out DIR) to replace it", c.display());
        }
        fail!(exit::FAILED, "nothing written");
    }
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        fail!(exit::FAILED, "cannot create {}: {e}", out_dir.display());
    }
    for (path, text) in plan {
        match write_new(&path, &text) {
            Ok(()) => {
                let _ = writeln!(out, "wrote {}", path.display());
            }
            Err(e) => fail!(exit::FAILED, "cannot write {}: {e}", path.display()),
        }
    }
    exit::OK
}

fn write_general(out: &mut dyn Write, general: &[Entry]) -> std::io::Result<()> {
    if general.is_empty() {
        return Ok(());
    }
    writeln!(out, "(configuration as a whole)")?;
    for e in general {
        writeln!(out, "{}", report::entry_line(e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The syntaxes of other systems come from files the world wrote: no input may panic.
    #[test]
    fn random_text_never_panics() {
        const ALPHABET: &[char] = &[
            'a', 'Z', '0', '9', ' ', '\t', '\n', '"', '\'', '\\', '$', '{', '}', '%', '(', ')',
            ',', '=', ':', '-', '.', '*', '/', '~', '@', 'x', 's', 'd', 'é', '日', ';', '#', '[',
            ']', '!', '?',
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut vars = std::collections::BTreeMap::new();
        vars.insert("program_name".to_string(), "p".to_string());
        vars.insert("process_num".to_string(), "7".to_string());
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let s: String = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            let _ = super::words::systemd_words(&s);
            let _ = super::words::shell_words(&s);
            let _ = super::words::systemd_timespan(&s);
            let _ = super::words::size(&s);
            let _ = super::calendar::to_cron(&s);
            let _ = super::supervisord::expand(&s, &vars);
            let _ = super::supervisord::env_pairs(&s);
            let _ = super::ncolony::looks_like(&s);
        }
    }
}

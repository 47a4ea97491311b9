//! What the fuzz targets share: a scratch directory, multi-file inputs, a filesystem
//! sandbox for the importers, and the properties each parser must keep.
//!
//! Every target asserts properties, not only "no panic"; a failed assertion is a crash to
//! libFuzzer, kept in `artifacts/TARGET/`.

pub mod control;
pub mod import;
pub mod notify;
pub mod unit;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Files of one input, at most this many.
const MAX_FILES: usize = 8;

/// `/dev/shm/colony-fuzz-PID` (tmpfs: a file per input costs microseconds), removed at exit.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        // A run that crashed (abort: no atexit) left its directory: remove the dead ones.
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("colony-fuzz-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = base.join(format!("colony-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        extern "C" fn remove_scratch() {
            if let Some(d) = DIR.get() {
                let _ = std::fs::remove_dir_all(d);
            }
        }
        // SAFETY: registers a plain extern "C" function with no arguments.
        unsafe { libc::atexit(remove_scratch) };
        dir
    })
}

/// An empty directory `scratch()/NAME` (emptied of what the last input left).
pub fn fresh_dir(name: &str) -> PathBuf {
    let d = scratch().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create a scratch subdirectory");
    d
}

/// The files of a multi-file input. A line `--- NAME` starts the file NAME (a relative
/// path of at most two components, e.g. `x.service.d/10.conf`); the text before the first
/// such line is the file `first` (none if that text is empty). Bad names are skipped with their text, so every input
/// means something and the seeds stay readable.
pub fn split_files<'a>(data: &'a [u8], first: &str) -> Vec<(String, &'a [u8])> {
    let mut out: Vec<(Option<String>, &'a [u8])> = Vec::new();
    let mut name = Some(first.to_string());
    let mut start = 0;
    let mut pos = 0;
    while pos <= data.len() {
        let end = data[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |i| pos + i);
        let line = &data[pos..end];
        if let Some(n) = line.strip_prefix(b"--- ") {
            out.push((name.take(), &data[start..pos]));
            name = safe_name(n);
            start = (end + 1).min(data.len());
        }
        pos = end + 1;
    }
    out.push((name, &data[start..]));
    if out.len() > 1 && out[0].1.is_empty() {
        out.remove(0);
    }
    let mut files: Vec<(String, &[u8])> = Vec::new();
    for (n, text) in out {
        let Some(n) = n else { continue };
        if files.len() == MAX_FILES {
            break;
        }
        // A later file of the same name replaces the earlier one.
        files.retain(|(m, _)| *m != n);
        files.push((n, text));
    }
    files
}

fn safe_name(n: &[u8]) -> Option<String> {
    let n = std::str::from_utf8(n).ok()?.trim_end_matches('\r');
    if n.is_empty() || n.len() > 100 || n.chars().any(char::is_control) {
        return None;
    }
    let parts: Vec<&str> = n.split('/').collect();
    if parts.len() > 2
        || parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return None;
    }
    Some(n.to_string())
}

/// Write the files of an input under `dir`; the names written. A name that clashes with
/// another (a file where a directory is needed) is skipped.
pub fn write_files(dir: &Path, files: &[(String, &[u8])]) -> Vec<String> {
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            if std::fs::create_dir_all(parent).is_err() {
                continue;
            }
        }
        if std::fs::write(&path, text).is_ok() {
            written.push(name.clone());
        }
    }
    written
}

/// Confine this process's file access to the scratch directory (anything), the fuzz
/// directory (libFuzzer's corpus and artifacts) and the user and group databases (read),
/// with Landlock. The importers read what their input names (`EnvironmentFile=`,
/// `[include] files = /dev/*`): without this a fuzzed path reads /dev/zero forever or
/// blocks on a terminal. Refuses to go on where the kernel cannot enforce it.
pub fn sandbox() {
    use landlock::{
        path_beneath_rules, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr,
        RulesetStatus, ABI,
    };
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let abi = ABI::V1;
        let all = AccessFs::from_all(abi);
        let read = AccessFs::from_read(abi);
        let rw = [scratch(), Path::new(env!("CARGO_MANIFEST_DIR"))];
        let ro: Vec<&str> = [
            "/etc/passwd",
            "/etc/group",
            "/etc/nsswitch.conf",
            "/etc/ld.so.cache",
        ]
        .into_iter()
        .filter(|p| Path::new(p).exists())
        .collect();
        let status = Ruleset::default()
            .handle_access(all)
            .and_then(|r| r.create())
            .and_then(|r| r.add_rules(path_beneath_rules(rw, all)))
            .and_then(|r| r.add_rules(path_beneath_rules(ro, read)))
            .and_then(|r| r.restrict_self())
            .expect("landlock ruleset");
        assert_eq!(
            status.ruleset,
            RulesetStatus::FullyEnforced,
            "the importer targets need Landlock (Linux 5.13+, CONFIG_SECURITY_LANDLOCK) \
             so that a path in a fuzzed file cannot reach the host's files"
        );
    });
}

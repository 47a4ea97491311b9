//! What a unit's process is given besides its argv and identity: environment files, the
//! directories colony-init makes for it, scheduling (nice, OOM score, IO weight), resource
//! limits (rlimits) and credentials. Plain data; colony-init carries it out at each start.

use std::path::PathBuf;

/// Most environment files a unit may name, and the most bytes read of each: the file is read
/// by PID 1 at every start.
pub const MAX_ENV_FILES: usize = 32;
pub const MAX_ENV_FILE_BYTES: u64 = 1 << 20;
/// Most credentials a unit may load, and the most bytes of each (they live in memory).
pub const MAX_CREDENTIALS: usize = 64;
pub const MAX_CREDENTIAL_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExecEnv {
    /// Read at each start, in order; later files override earlier ones, and `environment`
    /// overrides them all.
    pub environment_files: Vec<EnvFile>,
    /// `runtime_directory` & co, in the order given.
    pub directories: Vec<ManagedDir>,
    /// `runtime_directory_preserve`: the runtime directories stay at stop (systemd's
    /// `RuntimeDirectoryPreserve=yes`).
    pub runtime_preserve: bool,
    /// How `directory` (the working directory) is read.
    pub work_dir: WorkDir,
    /// What a missing working directory does.
    pub work_dir_missing: IfMissing,
    /// -20..=19.
    pub nice: Option<i32>,
    /// -1000..=1000.
    pub oom_score_adj: Option<i32>,
    /// 1..=10000 (cgroup v2 `io.weight`).
    pub io_weight: Option<u32>,
    /// Every rlimit but `nofile` (which is `Unit::nofile` when soft and hard are one value).
    pub limits: Vec<Limit>,
    /// `load_credential`: NAME and where it is copied from, sorted by name.
    pub credentials: Vec<(String, CredentialSource)>,
}

/// Where a credential is read from at each start.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum CredentialSource {
    /// An absolute path: the file must be there (a start fails without it).
    File(PathBuf),
    /// A credential name looked up in the credential stores (colony-init's own
    /// `$CREDENTIALS_DIRECTORY`, then /etc/credstore, /run/credstore, /usr/lib/credstore):
    /// the first file of that name is loaded; found in none, the credential is left out,
    /// as systemd does for `LoadCredential=ID`.
    Store(String),
}

impl CredentialSource {
    /// As the unit file writes it: the path, or the name searched for (`""` when it is the
    /// credential's own).
    pub fn as_written(&self, name: &str) -> String {
        match self {
            CredentialSource::File(p) => p.to_string_lossy().into_owned(),
            CredentialSource::Store(s) if s == name => String::new(),
            CredentialSource::Store(s) => s.clone(),
        }
    }
}

impl ExecEnv {
    /// The directories of one kind.
    pub fn dirs(&self, kind: DirKind) -> impl Iterator<Item = &ManagedDir> {
        self.directories.iter().filter(move |d| d.kind == kind)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnvFile {
    pub path: PathBuf,
    pub missing: IfMissing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfMissing {
    /// The start fails.
    #[default]
    Fail,
    /// A leading `-`: the file (or directory) is skipped.
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkDir {
    /// `directory` as written (or none: colony-init's own).
    #[default]
    AsWritten,
    /// `~`: the home directory of the unit's user, from /etc/passwd at each start.
    Home,
}

/// Which base a managed directory is below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DirKind {
    Runtime,
    State,
    Cache,
    Logs,
}

impl DirKind {
    pub const ALL: [DirKind; 4] = [
        DirKind::Runtime,
        DirKind::State,
        DirKind::Cache,
        DirKind::Logs,
    ];

    /// The key naming directories of this kind (`runtime_directory`...).
    pub fn key(self) -> &'static str {
        match self {
            DirKind::Runtime => "runtime_directory",
            DirKind::State => "state_directory",
            DirKind::Cache => "cache_directory",
            DirKind::Logs => "logs_directory",
        }
    }

    /// systemd's environment variable with the full paths (`RUNTIME_DIRECTORY`...).
    pub fn env_var(self) -> &'static str {
        match self {
            DirKind::Runtime => "RUNTIME_DIRECTORY",
            DirKind::State => "STATE_DIRECTORY",
            DirKind::Cache => "CACHE_DIRECTORY",
            DirKind::Logs => "LOGS_DIRECTORY",
        }
    }

    /// The base for root: /run, /var/lib, /var/cache, /var/log.
    pub fn system_base(self) -> &'static str {
        match self {
            DirKind::Runtime => "/run",
            DirKind::State => "/var/lib",
            DirKind::Cache => "/var/cache",
            DirKind::Logs => "/var/log",
        }
    }

    /// The mode when `*_directory_mode` is absent (systemd's default).
    pub const DEFAULT_MODE: u32 = 0o755;
}

/// A directory colony-init creates for the unit before each start, owned by the unit's user.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedDir {
    pub kind: DirKind,
    /// Relative, normalised: no `.`, `..` or empty components.
    pub name: PathBuf,
    pub mode: u32,
}

/// An rlimit, by its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    As,
    Core,
    Cpu,
    Data,
    Fsize,
    Locks,
    Memlock,
    Msgqueue,
    Nice,
    Nofile,
    Nproc,
    Rss,
    Rtprio,
    Rttime,
    Sigpending,
    Stack,
}

impl Resource {
    pub const ALL: [Resource; 16] = [
        Resource::As,
        Resource::Core,
        Resource::Cpu,
        Resource::Data,
        Resource::Fsize,
        Resource::Locks,
        Resource::Memlock,
        Resource::Msgqueue,
        Resource::Nice,
        Resource::Nofile,
        Resource::Nproc,
        Resource::Rss,
        Resource::Rtprio,
        Resource::Rttime,
        Resource::Sigpending,
        Resource::Stack,
    ];

    /// Its key in `limits`.
    pub fn key(self) -> &'static str {
        match self {
            Resource::As => "as",
            Resource::Core => "core",
            Resource::Cpu => "cpu",
            Resource::Data => "data",
            Resource::Fsize => "fsize",
            Resource::Locks => "locks",
            Resource::Memlock => "memlock",
            Resource::Msgqueue => "msgqueue",
            Resource::Nice => "nice",
            Resource::Nofile => "nofile",
            Resource::Nproc => "nproc",
            Resource::Rss => "rss",
            Resource::Rtprio => "rtprio",
            Resource::Rttime => "rttime",
            Resource::Sigpending => "sigpending",
            Resource::Stack => "stack",
        }
    }

    /// systemd's directive for it (`LimitCORE`...).
    pub fn systemd_key(self) -> String {
        format!("Limit{}", self.key().to_ascii_uppercase())
    }

    /// Whether its values are bytes (so "64M" is accepted).
    pub fn is_bytes(self) -> bool {
        matches!(
            self,
            Resource::As
                | Resource::Core
                | Resource::Data
                | Resource::Fsize
                | Resource::Memlock
                | Resource::Msgqueue
                | Resource::Rss
                | Resource::Stack
        )
    }

    /// The kernel's RLIMIT_* number.
    // glibc's RLIMIT_* are u32 already, musl's are c_int.
    #[allow(clippy::unnecessary_cast)]
    pub fn number(self) -> u32 {
        (match self {
            Resource::As => libc::RLIMIT_AS,
            Resource::Core => libc::RLIMIT_CORE,
            Resource::Cpu => libc::RLIMIT_CPU,
            Resource::Data => libc::RLIMIT_DATA,
            Resource::Fsize => libc::RLIMIT_FSIZE,
            Resource::Locks => libc::RLIMIT_LOCKS,
            Resource::Memlock => libc::RLIMIT_MEMLOCK,
            Resource::Msgqueue => libc::RLIMIT_MSGQUEUE,
            Resource::Nice => libc::RLIMIT_NICE,
            Resource::Nofile => libc::RLIMIT_NOFILE,
            Resource::Nproc => libc::RLIMIT_NPROC,
            Resource::Rss => libc::RLIMIT_RSS,
            Resource::Rtprio => libc::RLIMIT_RTPRIO,
            Resource::Rttime => libc::RLIMIT_RTTIME,
            Resource::Sigpending => libc::RLIMIT_SIGPENDING,
            Resource::Stack => libc::RLIMIT_STACK,
        }) as u32
    }

    pub fn from_key(k: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.key() == k)
    }
}

/// `RLIM_INFINITY`.
pub const INFINITY: u64 = u64::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub resource: Resource,
    /// [`INFINITY`] for no limit.
    pub soft: u64,
    pub hard: u64,
}

/// One rlimit value: a number, a size for the byte ones, or "infinity".
fn limit_value(r: Resource, s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t == "infinity" {
        return Ok(INFINITY);
    }
    if r.is_bytes() {
        crate::values::parse_size(t)
    } else {
        t.parse::<u64>()
            .map_err(|_| format!("`{t}` is not a number or \"infinity\""))
    }
}

/// `"SOFT:HARD"` or one value for both.
pub fn parse_limit(r: Resource, s: &str) -> Result<(u64, u64), String> {
    let (soft, hard) = match s.split_once(':') {
        Some((a, b)) => (limit_value(r, a)?, limit_value(r, b)?),
        None => {
            let v = limit_value(r, s)?;
            (v, v)
        }
    };
    if soft > hard {
        return Err(format!(
            "the soft limit {soft} is above the hard limit {hard}"
        ));
    }
    Ok((soft, hard))
}

/// A managed directory's name: relative, no `..`, `.` or empty parts, no NUL.
pub fn parse_dir_name(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() || s.starts_with('/') || s.contains('\0') {
        return Err(format!(
            "`{s}` must be a relative path below the base directory, such as \"redis\""
        ));
    }
    if s.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
        return Err(format!(
            "`{s}` has an empty, `.` or `..` part; write a plain relative path such as \"redis/cache\""
        ));
    }
    Ok(PathBuf::from(s))
}

/// A credential's name: what its file in `$CREDENTIALS_DIRECTORY` is called.
pub fn valid_credential_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s != "."
        && s != ".."
        && !s.contains('/')
        && !s.contains('\0')
}

/// The `KEY=VALUE` lines of an environment file, as systemd reads them: blank lines and
/// lines starting with `#` or `;` are skipped, an `export ` prefix is allowed, a value in
/// double quotes (with `\\` escapes) or single quotes is taken without them, and a line
/// without `=` or with a key that is not a variable name is skipped and counted.
pub fn parse_env_file(text: &str) -> (Vec<(String, String)>, usize) {
    let mut out = Vec::new();
    let mut bad = 0;
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        let l = l.strip_prefix("export ").map(str::trim_start).unwrap_or(l);
        let Some((k, v)) = l.split_once('=') else {
            bad += 1;
            continue;
        };
        let k = k.trim();
        let name_ok = !k.is_empty()
            && !k.starts_with(|c: char| c.is_ascii_digit())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !name_ok || v.contains('\0') {
            bad += 1;
            continue;
        }
        let v = v.trim();
        let v = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
            let mut s = String::new();
            let mut chars = v[1..v.len() - 1].chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        s.push(n);
                    }
                } else {
                    s.push(c);
                }
            }
            s
        } else if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
            v[1..v.len() - 1].to_string()
        } else {
            v.to_string()
        };
        out.push((k.to_string(), v));
    }
    (out, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_read_as_systemd_does() {
        let (vars, bad) = parse_env_file(
            "# comment\n; other\n\nA=1\nexport B = two words \nC=\"q \\\"x\\\" y\"\nD='s'\nnot a line\n1X=no\n=x\nE=a\0b\n",
        );
        assert_eq!(
            vars,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "q \"x\" y".into()),
                ("D".into(), "s".into()),
            ]
        );
        assert_eq!(bad, 4);
    }

    #[test]
    fn limits_take_sizes_pairs_and_infinity() {
        assert_eq!(parse_limit(Resource::Core, "0"), Ok((0, 0)));
        assert_eq!(
            parse_limit(Resource::Memlock, "64M"),
            Ok((64 << 20, 64 << 20))
        );
        assert_eq!(parse_limit(Resource::Nofile, "1024:4096"), Ok((1024, 4096)));
        assert_eq!(
            parse_limit(Resource::Stack, "8M:infinity"),
            Ok((8 << 20, INFINITY))
        );
        assert!(parse_limit(Resource::Nproc, "64M").is_err());
        assert!(parse_limit(Resource::Nofile, "4096:1024").is_err());
    }

    #[test]
    fn directory_names_stay_below_their_base() {
        assert!(parse_dir_name("redis/sub").is_ok());
        for bad in ["", "/run/x", "a/../b", "..", "a//b", "./a"] {
            assert!(parse_dir_name(bad).is_err(), "{bad}");
        }
    }
}

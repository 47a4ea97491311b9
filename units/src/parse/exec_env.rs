//! The top-level keys of [`crate::exec_env`] read from the file.

use std::ops::Range;
use std::path::PathBuf;

use toml::de::DeValue;

use super::{found, int_of, Cx, Tbl};
use crate::exec_env::{
    self as ee, DirKind, EnvFile, ExecEnv, IfMissing, Limit, ManagedDir, Resource, WorkDir,
};

impl Cx<'_> {
    /// Everything of [`ExecEnv`] but the working directory's form (see `unit`), and the
    /// `nofile` of `limits` when it is one value (returned for `Unit::nofile`).
    pub(super) fn exec_env(&mut self, top: &Tbl<'_, '_>) -> (ExecEnv, Option<u64>) {
        let mut e = ExecEnv::default();
        for (s, span) in self.one_or_many(top, "environment_file", "absolute paths") {
            let (missing, p) = match s.strip_prefix('-') {
                Some(p) => (IfMissing::Ignore, p),
                None => (IfMissing::Fail, s),
            };
            if !p.starts_with('/') || p.contains('\0') {
                self.err(
                    span,
                    "environment_file",
                    format!("`{s}` is not an absolute path (a leading - : may be missing)"),
                );
            } else {
                e.environment_files.push(EnvFile {
                    path: PathBuf::from(p),
                    missing,
                });
            }
        }
        if e.environment_files.len() > ee::MAX_ENV_FILES {
            let span = top.key_span("environment_file");
            self.err(
                span,
                "environment_file",
                format!("at most {} files", ee::MAX_ENV_FILES),
            );
        }
        for kind in DirKind::ALL {
            let key = kind.key();
            let mode_key = format!("{key}_mode");
            let mode = self.mode(top, &mode_key).unwrap_or(DirKind::DEFAULT_MODE);
            if top.get(&mode_key).is_some() && top.get(key).is_none() {
                let span = top.key_span(&mode_key);
                self.err(span, &mode_key, format!("has no `{key}` to apply to"));
            }
            for (s, span) in self.one_or_many(top, key, "relative directory names") {
                match ee::parse_dir_name(s) {
                    Ok(name) => e.directories.push(ManagedDir { kind, name, mode }),
                    Err(m) => self.err(span, key, m),
                }
            }
        }
        e.runtime_preserve = self
            .boolean(top, "runtime_directory_preserve")
            .unwrap_or(false);
        e.nice = self.integer(top, "nice", -20..=19).map(|n| n as i32);
        e.oom_score_adj = self
            .integer(top, "oom_score_adj", -1000..=1000)
            .map(|n| n as i32);
        e.io_weight = self.integer(top, "io_weight", 1..=10000).map(|n| n as u32);
        let nofile = self.limits(top, &mut e.limits);
        e.credentials = self.credentials(top);
        (e, nofile)
    }

    /// `directory`: "/path", "-/path" (a missing one is skipped), "~" or "-~" (the user's
    /// home directory).
    pub(super) fn work_dir(&mut self, top: &Tbl<'_, '_>) -> (Option<PathBuf>, WorkDir, IfMissing) {
        let Some(s) = self.string(
            top,
            "directory",
            "an absolute path such as \"/var/lib/app\", or \"~\"",
        ) else {
            return (None, WorkDir::AsWritten, IfMissing::Fail);
        };
        let (missing, p) = match s.strip_prefix('-') {
            Some(p) => (IfMissing::Ignore, p),
            None => (IfMissing::Fail, s),
        };
        if p == "~" {
            return (None, WorkDir::Home, missing);
        }
        if !p.starts_with('/') || p.contains('\0') {
            let span = top.get("directory").map(|v| v.span()).unwrap_or(0..0);
            self.err(
                span,
                "directory",
                format!("`{s}` is not an absolute path; write it from the root, such as \"/var/lib/app\", or \"~\" for the user's home (a leading - : may be missing)"),
            );
            return (None, WorkDir::AsWritten, IfMissing::Fail);
        }
        (Some(PathBuf::from(p)), WorkDir::AsWritten, missing)
    }

    /// A string or an array of strings, each with its span.
    fn one_or_many<'v>(
        &mut self,
        t: &Tbl<'v, '_>,
        k: &str,
        what: &str,
    ) -> Vec<(&'v str, Range<usize>)> {
        let Some(v) = t.get(k) else {
            return Vec::new();
        };
        match v.get_ref() {
            DeValue::String(s) => vec![(&**s, v.span())],
            _ => self.strings(t, k, what).unwrap_or_default(),
        }
    }

    /// An octal mode, as `umask` is written: "0750" or 0o750.
    pub(super) fn mode(&mut self, t: &Tbl<'_, '_>, k: &str) -> Option<u32> {
        let v = t.get(k)?;
        let bad = |cx: &mut Self| {
            cx.err(
                v.span(),
                &t.key(k),
                format!(
                    "expected an octal mode such as \"0750\" (or 0o750), found {}",
                    found(v.get_ref())
                ),
            );
            None
        };
        match v.get_ref() {
            DeValue::Integer(i) if i.radix() == 8 => match int_of(v.get_ref()) {
                Some(n) if (0..=0o7777).contains(&n) => Some(n as u32),
                _ => bad(self),
            },
            DeValue::String(s) => match u32::from_str_radix(s.trim(), 8) {
                Ok(n) if n <= 0o7777 && !s.trim().is_empty() => Some(n),
                _ => bad(self),
            },
            _ => bad(self),
        }
    }

    /// `limits = { core = 0, memlock = "64M", nofile = "1024:4096" }`. Returns `nofile`
    /// when it is one value for soft and hard (it goes to `Unit::nofile`, as the `nofile`
    /// key does); a pair goes into `out`.
    fn limits(&mut self, top: &Tbl<'_, '_>, out: &mut Vec<Limit>) -> Option<u64> {
        let v = top.get("limits")?;
        let DeValue::Table(t) = v.get_ref() else {
            self.type_err(
                "limits",
                v,
                "a table such as { core = 0, memlock = \"64M\" }",
            );
            return None;
        };
        let mut nofile = None;
        for (k, val) in t.iter() {
            let name: &str = k.get_ref();
            let key = format!("limits.{name}");
            let Some(r) = Resource::from_key(name) else {
                let known: Vec<&str> = Resource::ALL.iter().map(|r| r.key()).collect();
                let hint = match crate::diag::nearest(name, known.iter().copied()) {
                    Some(n) => format!("did you mean `{n}`?"),
                    None => format!("the limits are: {}", known.join(", ")),
                };
                self.err(k.span(), &key, format!("unknown limit `{name}`; {hint}"));
                continue;
            };
            let parsed = match val.get_ref() {
                DeValue::Integer(_) => {
                    match int_of(val.get_ref()).and_then(|n| u64::try_from(n).ok()) {
                        Some(n) if n < ee::INFINITY => Ok((n, n)),
                        _ => Err("a limit is a number from 0 (or \"infinity\")".to_string()),
                    }
                }
                DeValue::String(s) => ee::parse_limit(r, s),
                _ => {
                    self.type_err(
                        &key,
                        val,
                        "a number, a string such as \"64M\", \"infinity\" or \"SOFT:HARD\"",
                    );
                    continue;
                }
            };
            match parsed {
                Ok((soft, hard)) if r == Resource::Nofile => {
                    if soft == 0 || hard > 1_073_741_816 {
                        self.err(
                            val.span(),
                            &key,
                            "an open-files limit is from 1 to 1073741816",
                        );
                    } else if soft == hard {
                        nofile = Some(soft);
                    } else {
                        out.push(Limit {
                            resource: r,
                            soft,
                            hard,
                        });
                    }
                }
                Ok((soft, hard)) => out.push(Limit {
                    resource: r,
                    soft,
                    hard,
                }),
                Err(m) => self.err(val.span(), &key, m),
            }
        }
        out.sort_by_key(|l| l.resource);
        if let (Some(n), Some(old)) = (nofile, top.get("nofile")) {
            if int_of(old.get_ref()).is_some_and(|o| o != i128::from(n)) {
                self.err(
                    old.span(),
                    "nofile",
                    "`nofile` and `limits.nofile` differ; give one of them",
                );
            }
        }
        if top.get("nofile").is_some() && out.iter().any(|l| l.resource == Resource::Nofile) {
            self.err(
                top.key_span("nofile"),
                "nofile",
                "`nofile` and `limits.nofile` are both given; give one of them",
            );
        }
        nofile
    }

    /// `load_credential = { NAME = "/PATH" }` (or `""`, or `"OTHER"`: looked up by name in
    /// the credential stores), sorted by name.
    fn credentials(&mut self, top: &Tbl<'_, '_>) -> Vec<(String, ee::CredentialSource)> {
        let Some(v) = top.get("load_credential") else {
            return Vec::new();
        };
        let DeValue::Table(t) = v.get_ref() else {
            self.type_err(
                "load_credential",
                v,
                "a table such as { tls_key = \"/etc/ssl/private/app.key\" }",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, val) in t.iter() {
            let name: &str = k.get_ref();
            let key = format!("load_credential.{name}");
            if !ee::valid_credential_name(name) {
                self.err(
                    k.span(),
                    &key,
                    format!("`{name}` is not a valid credential name (a file name: no `/`, not `.` or `..`)"),
                );
                continue;
            }
            match val.get_ref() {
                DeValue::String(s) if s.starts_with('/') && !s.contains('\0') => {
                    out.push((
                        name.to_string(),
                        ee::CredentialSource::File(PathBuf::from(&**s)),
                    ));
                }
                DeValue::String(s) if s.is_empty() => {
                    out.push((name.to_string(), ee::CredentialSource::Store(name.into())));
                }
                DeValue::String(s) if ee::valid_credential_name(s) => {
                    out.push((name.to_string(), ee::CredentialSource::Store(s.to_string())));
                }
                DeValue::String(s) => self.err(
                    val.span(),
                    &key,
                    format!("`{s}` is neither an absolute path to the file to load nor a credential name to look up in the credential stores (\"\" for `{name}` itself)"),
                ),
                _ => self.type_err(&key, val, "an absolute path, or a credential name"),
            }
        }
        if out.len() > ee::MAX_CREDENTIALS {
            self.err(
                top.key_span("load_credential"),
                "load_credential",
                format!("at most {} credentials", ee::MAX_CREDENTIALS),
            );
        }
        out.sort();
        out
    }
}

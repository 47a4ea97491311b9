//! supervisord's INI files as Python's configparser reads them, and the globs of `[include]`.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub(super) struct Item {
    pub(super) key: String,
    pub(super) value: String,
    pub(super) origin: String,
}

#[derive(Debug, Clone)]
pub(super) struct Section {
    pub(super) name: String,
    pub(super) origin: String,
    /// The directory of the file it is in, `%(here)s`.
    pub(super) here: PathBuf,
    pub(super) items: Vec<Item>,
}

/// Read an INI file as Python's configparser does for supervisord: `key = value` or
/// `key: value`, keys lower-cased, indented continuation lines, `;`/`#` comments (inline
/// ones after whitespace).
pub(super) fn parse_ini(path: &Path) -> Result<Vec<Section>, String> {
    let text = crate::import::input::read_text(path)?;
    let shown = path.display().to_string();
    // No value may hold a NUL (argv and paths become C strings): not a configuration file.
    if text.contains('\0') {
        return Err(format!("{shown}: has a NUL byte: not a configuration file"));
    }
    let here = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."));
    let here = std::fs::canonicalize(here).unwrap_or(here.to_path_buf());
    let mut out: Vec<Section> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let t = raw.trim();
        if t.is_empty() || t.starts_with(';') || t.starts_with('#') {
            continue;
        }
        let line = strip_inline_comment(raw);
        if raw.starts_with(|c: char| c.is_whitespace()) {
            if let Some(it) = out.last_mut().and_then(|s| s.items.last_mut()) {
                it.value.push('\n');
                it.value.push_str(line.trim());
                continue;
            }
        }
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push(Section {
                name: name.trim().to_string(),
                origin: format!("{shown}:{}", n + 1),
                here: here.clone(),
                items: Vec::new(),
            });
            continue;
        }
        let Some(sec) = out.last_mut() else {
            return Err(format!("{shown}:{}: a key before any [section]", n + 1));
        };
        let pos = line.find(['=', ':']);
        let Some(p) = pos else {
            return Err(format!("{shown}:{}: `{line}` is not `key = value`", n + 1));
        };
        sec.items.push(Item {
            key: line[..p].trim().to_ascii_lowercase(),
            value: line[p + 1..].trim().to_string(),
            origin: format!("{shown}:{}", n + 1),
        });
    }
    Ok(out)
}

fn strip_inline_comment(line: &str) -> &str {
    let b = line.as_bytes();
    for i in 1..b.len() {
        if (b[i] == b';' || b[i] == b'#') && b[i - 1].is_ascii_whitespace() {
            return &line[..i];
        }
    }
    line
}

/// Expand `*`, `?` and `[...]` in each component of a path; sorted matches.
pub fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut cur = vec![PathBuf::new()];
    for comp in pattern.components() {
        let c = comp.as_os_str().to_string_lossy().to_string();
        let mut next = Vec::new();
        for base in &cur {
            if c.contains(['*', '?', '[']) {
                let dir = if base.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    base.as_path()
                };
                let mut names: Vec<String> = std::fs::read_dir(dir)
                    .map(|rd| {
                        rd.flatten()
                            .map(|e| e.file_name().to_string_lossy().to_string())
                            .filter(|n| !n.starts_with('.') && wild(&c, n))
                            .collect()
                    })
                    .unwrap_or_default();
                names.sort();
                next.extend(names.into_iter().map(|n| base.join(n)));
            } else {
                next.push(base.join(&c));
            }
        }
        cur = next;
    }
    cur.into_iter().filter(|p| p.exists()).collect()
}

pub(super) fn wild(p: &str, s: &str) -> bool {
    // Memoised on (pattern position, name position): plain backtracking takes time
    // exponential in the number of `*`s (`files = a*****************b` hung the import).
    fn m(p: &[char], i: usize, s: &[char], j: usize, memo: &mut [Option<bool>]) -> bool {
        let key = i * (s.len() + 1) + j;
        if let Some(r) = memo[key] {
            return r;
        }
        let r = match p.get(i) {
            None => j == s.len(),
            Some('*') => (j..=s.len()).any(|k| m(p, i + 1, s, k, memo)),
            Some('?') => j < s.len() && m(p, i + 1, s, j + 1, memo),
            Some('[') => match p[i..].iter().position(|c| *c == ']').map(|e| i + e) {
                None => j < s.len() && s[j] == '[' && m(p, i + 1, s, j + 1, memo),
                Some(_) if j == s.len() => false,
                Some(end) => {
                    let c = s[j];
                    let set = &p[i + 1..end];
                    let (neg, set) = match set.first() {
                        Some('!') | Some('^') => (true, &set[1..]),
                        _ => (false, set),
                    };
                    let mut hit = false;
                    let mut k = 0;
                    while k < set.len() {
                        if k + 2 < set.len() && set[k + 1] == '-' {
                            hit |= set[k] <= c && c <= set[k + 2];
                            k += 3;
                        } else {
                            hit |= set[k] == c;
                            k += 1;
                        }
                    }
                    hit != neg && m(p, end + 1, s, j + 1, memo)
                }
            },
            Some(c) => j < s.len() && s[j] == *c && m(p, i + 1, s, j + 1, memo),
        };
        memo[key] = Some(r);
        r
    }
    let p: Vec<char> = p.chars().collect();
    let s: Vec<char> = s.chars().collect();
    let mut memo = vec![None; (p.len() + 1) * (s.len() + 1)];
    m(&p, 0, &s, 0, &mut memo)
}

//! supervisord's values: `%(name)s` expansion, `environment` pairs, booleans and integers.

use std::collections::BTreeMap;

use super::super::words::shell_words;

/// The widest `%(name)NNd` expansion, in characters.
const MAX_WIDTH: usize = 256;

/// Python `%`-formatting with named values, as supervisord expands `%(here)s`,
/// `%(process_num)02d`, `%(ENV_HOME)s`...
pub fn expand(s: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('%') => out.push('%'),
            Some('(') => {
                let name: String = it.by_ref().take_while(|c| *c != ')').collect();
                let mut flags = String::new();
                while let Some(&f) = it.peek().filter(|c| "-+ 0#".contains(**c)) {
                    flags.push(f);
                    it.next();
                }
                let mut width = String::new();
                while let Some(&d) = it.peek().filter(|c| c.is_ascii_digit()) {
                    width.push(d);
                    it.next();
                }
                let conv = it
                    .next()
                    .ok_or_else(|| format!("`%({name})` has no conversion"))?;
                let val = vars
                    .get(&name)
                    .ok_or_else(|| format!("`%({name})` is not a known expansion"))?;
                // Bounded: a width past u16 panics in format!, and a name needs no more.
                let w: usize = match width.parse::<usize>() {
                    _ if width.is_empty() => 0,
                    Ok(w) if w <= MAX_WIDTH => w,
                    _ => return Err(format!("`%({name})`: a width past {MAX_WIDTH}")),
                };
                let text = match conv {
                    'd' | 'i' => {
                        let n: i64 = val
                            .parse()
                            .map_err(|_| format!("`%({name})d`: `{val}` is not a number"))?;
                        if flags.contains('0') && !flags.contains('-') {
                            format!("{n:0w$}")
                        } else {
                            n.to_string()
                        }
                    }
                    's' | 'r' => val.clone(),
                    other => return Err(format!("`%({name}){other}`: unknown conversion")),
                };
                if text.len() < w && !(flags.contains('0') && matches!(conv, 'd' | 'i')) {
                    if flags.contains('-') {
                        out.push_str(&format!("{text:<w$}"));
                    } else {
                        out.push_str(&format!("{text:>w$}"));
                    }
                } else {
                    out.push_str(&text);
                }
            }
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    Ok(out)
}

/// supervisord's `environment`: `KEY="value",KEY2=value2`.
pub fn env_pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut q: Option<char> = None;
    for c in s.chars() {
        match c {
            '"' | '\'' if q.is_none() => {
                q = Some(c);
                cur.push(c);
            }
            c if Some(c) == q => {
                q = None;
                cur.push(c);
            }
            ',' if q.is_none() => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if q.is_some() {
        return Err("an opening quote is never closed".into());
    }
    parts.push(cur);
    let mut out = Vec::new();
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let (k, v) = p
            .split_once('=')
            .filter(|(k, _)| !k.trim().is_empty())
            .ok_or_else(|| format!("`{p}` is not KEY=value"))?;
        let v = shell_words(v.trim())?.join(" ");
        out.push((k.trim().to_string(), v));
    }
    Ok(out)
}

pub(super) fn boolean(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

pub(super) fn int(s: &str) -> Option<i64> {
    s.trim().parse().ok()
}

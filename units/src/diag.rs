//! Diagnostics: `FILE:LINE:COL: KEY: message`, with suggestions.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in one unit file. Line and column are 1-based; a problem of the whole file
/// (a missing `exec`, an unreadable file) is at 1:1.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    /// The key, dotted for sections (`restart.policy`), or `syntax` for TOML syntax errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.key,
            self.message
        )
    }
}

impl std::error::Error for Diagnostic {}

/// A problem that leaves the unit valid (a dependency on a unit that is not there):
/// `FILE:LINE:COL: KEY: warning: message`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Warning(pub Diagnostic);

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        write!(
            f,
            "{}:{}:{}: {}: warning: {}",
            d.file.display(),
            d.line,
            d.col,
            d.key,
            d.message
        )
    }
}

impl Diagnostic {
    /// A problem of the whole file, reported at 1:1.
    pub fn whole_file(file: &Path, key: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.to_path_buf(),
            line: 1,
            col: 1,
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// All diagnostics of a unit, one per line (what colony-init shows as the unit's `error`).
pub fn render(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Byte offsets to 1-based line and column (the column counts characters, as editors do).
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// (line, col), both 1-based, of byte offset `at` in `text`.
    pub fn line_col(&self, text: &str, at: usize) -> (usize, usize) {
        let at = at.min(text.len());
        let line = match self.starts.binary_search(&at) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.starts.get(line).copied().unwrap_or(0);
        let col = text
            .get(start..at)
            .map(|s| s.chars().count())
            // `at` inside a multi-byte character: count what is whole before it.
            .unwrap_or_else(|| {
                text.get(start..)
                    .unwrap_or("")
                    .char_indices()
                    .take_while(|(i, c)| start + i + c.len_utf8() <= at)
                    .count()
            });
        (line + 1, col + 1)
    }

    pub fn at(
        &self,
        file: &Path,
        text: &str,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> Diagnostic {
        let (line, col) = self.line_col(text, span.start);
        Diagnostic {
            file: file.to_path_buf(),
            line,
            col,
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// The candidate nearest to `word`, if it is near enough to be a likely typo
/// (as rustc does: at most a third of the word's length, at least one edit). The distance
/// is optimal string alignment (Levenshtein plus adjacent transpositions), so that `restrat`
/// is one edit from `restart`.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::osa_distance(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_file_line_col_key_message() {
        let d = Diagnostic {
            file: "a/web.unit".into(),
            line: 3,
            col: 7,
            key: "restart.policy".into(),
            message: "bad".into(),
        };
        assert_eq!(d.to_string(), "a/web.unit:3:7: restart.policy: bad");
    }

    #[test]
    fn line_col_counts_chars() {
        let t = "ab\nçd = 1\n";
        let li = LineIndex::new(t);
        assert_eq!(li.line_col(t, 0), (1, 1));
        assert_eq!(li.line_col(t, 3), (2, 1));
        assert_eq!(li.line_col(t, 5), (2, 2));
        assert_eq!(li.line_col(t, 4), (2, 1)); // inside 'ç'
        assert_eq!(li.line_col(t, 999), (3, 1));
    }

    #[test]
    fn suggestions() {
        assert_eq!(strsim::osa_distance("restrat", "restart"), 1);
        assert_eq!(nearest("restrat", ["restart", "ready"]), Some("restart"));
        assert_eq!(nearest("xyz", ["restart", "ready"]), None);
        assert_eq!(nearest("Exec", ["exec"]), Some("exec"));
    }
}

//! Diagnostics: FILE:LINE:COL: KEY: message, with suggestions.

//! `colonyctl check FILE|DIR...`: validate unit files without colony-init.

/// Check the given files/directories; prints `FILE:LINE:COL: KEY: message` per error.
/// Returns the exit code: 0 all valid, 1 any invalid, 2 usage (e.g. a path that does not exist).
pub fn run(paths: &[std::path::PathBuf]) -> i32 {
    let _ = paths;
    0
}

//! The units directory: reading it whole into the core's `Load`, and telling which
//! directory events matter (editors' temporary files and half-written names never do).

use std::path::Path;

use crate::core::Input;

/// Inotify events on the units directory that may change the set of units.
pub fn watch_mask() -> nix::sys::inotify::AddWatchFlags {
    use nix::sys::inotify::AddWatchFlags as F;
    // CLOSE_WRITE, not MODIFY: a file is read only once its writer closed it.
    F::IN_CLOSE_WRITE | F::IN_MOVED_TO | F::IN_MOVED_FROM | F::IN_DELETE | F::IN_ATTRIB
}

/// Whether a changed file name in the units directory is a unit file.
pub fn is_unit_file(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .and_then(units::validate::unit_file_name)
        .is_some()
}

/// The whole directory as the core's `Load` input. A directory that cannot be read is an
/// error; the caller keeps the units it has.
pub fn read(dir: &Path) -> std::io::Result<Input> {
    let set = units::validate::load_dir(dir)?;
    let units = set
        .into_iter()
        .map(|(name, r)| {
            let r = r.map_err(|diags| {
                diags
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            (name, r)
        })
        .collect();
    Ok(Input::Load(units))
}

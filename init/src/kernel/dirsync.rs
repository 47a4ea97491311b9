//! The units directory: reading it whole into the core's `Load`, and telling which
//! directory events matter (editors' temporary files and half-written names never do).

use std::collections::BTreeSet;
use std::path::Path;

use crate::core::Input;

/// Inotify events on the units directory that may change the set of units.
pub fn watch_mask() -> nix::sys::inotify::AddWatchFlags {
    use nix::sys::inotify::AddWatchFlags as F;
    // CLOSE_WRITE, not MODIFY: a file is read only once its writer closed it.
    F::IN_CLOSE_WRITE | F::IN_MOVED_TO | F::IN_MOVED_FROM | F::IN_DELETE | F::IN_ATTRIB
}

/// Whether a changed file name in the units directory is a unit file (or a template).
pub fn is_unit_file(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|n| {
        units::validate::unit_file_name(n).is_some()
            || units::template::template_file_name(n).is_some()
            || units::template_load::instance_file_name(n).is_some()
    })
}

/// The whole directory as the core's `Load` input, with the instances of templates that
/// were started (`NAME@INST`). A directory that cannot be read is an error; the caller
/// keeps the units it has.
pub fn read(dir: &Path, instances: &BTreeSet<String>) -> std::io::Result<Input> {
    let set = units::validate::load_dir_with(dir, instances)?;
    let units = set
        .into_iter()
        // A template itself runs nothing.
        .filter(|(name, _)| !name.ends_with('@'))
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

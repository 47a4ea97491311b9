//! supervisord's `numprocs` as colony's `instances = N`: one unit file for the N processes,
//! named `NAME-0`..`NAME-{N-1}` by colony, with `%(process_num)` as `%i`.

use super::super::draft::{Draft, Fate, V};

/// `%(process_num)` expands to this while the one draft is made; it then becomes `%i`.
/// Ten digits: wider than any zero padding a process_name asks for (at most 9).
pub(super) const SENTINEL: &str = "8675309421";

/// Whether `numprocs` can be one unit with `instances`: numbering from 0, as colony's.
pub(super) fn fits(start: i64) -> bool {
    start == 0
}

/// Make `d` (built with `process_num` = [`SENTINEL`]) the unit of `n` instances: every
/// `%` of a value escaped (colony reads its specifiers in an instance's file), the sentinel
/// `%i`, and `instances = n`, said on the report lines of `numprocs` and `process_name`.
pub(super) fn finish(d: &mut Draft, prog_name: &str, pname: &str, n: i64) {
    d.map_strings(&|s: &str| s.replace('%', "%%").replace(SENTINEL, "%i"));
    d.set("instances", V::Int(n));
    let exact = pname == "%(program_name)s-%(process_num)d";
    for e in &mut d.entries {
        if e.source.starts_with("numprocs=") {
            e.to = Some(format!("instances = {n}"));
            e.fate = Fate::Carried;
        } else if e.source.starts_with("process_name=") {
            e.to = Some(format!("units {prog_name}-0 .. {prog_name}-{}", n - 1));
            e.fate = if exact {
                Fate::Carried
            } else {
                Fate::Approx(format!(
                    "colony names the processes {prog_name}-0 .. {prog_name}-{}, %(process_num) is %i",
                    n - 1
                ))
            };
        }
    }
}

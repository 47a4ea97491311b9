//! supervisord's `minfds` and `minprocs` ([supervisord]): supervisord raises its own limits to
//! at least these, and every program inherits them; colony sets them per unit.

use super::super::draft::{Draft, Fate, V};

/// One of the two keys, as read: the value and where it was.
#[derive(Debug, Clone)]
pub struct Floor {
    pub key: &'static str,
    pub value: u64,
    pub origin: String,
}

/// `minfds`/`minprocs` as a floor, or why not.
pub fn floor(key: &str, value: &str, origin: &str) -> Option<Result<Floor, String>> {
    let key = match key {
        "minfds" => "minfds",
        "minprocs" => "minprocs",
        _ => return None,
    };
    Some(match value.trim().parse::<u64>() {
        Ok(n) if n > 0 && n <= 1_073_741_816 => Ok(Floor {
            key,
            value: n,
            origin: origin.to_string(),
        }),
        _ => Err(format!("{key} is not a number from 1 to 1073741816")),
    })
}

/// Each floor on a program's unit: `limits.nofile`/`limits.nproc`, soft and hard.
pub fn apply(d: &mut Draft, floors: &[Floor]) {
    for f in floors {
        let limit = if f.key == "minfds" { "nofile" } else { "nproc" };
        d.table_set("limits", limit, V::Int(f.value as i64));
        d.note(
            &f.origin,
            &format!("[supervisord] {}={}", f.key, f.value),
            Some(format!("limits.{limit} = {}", f.value)),
            Fate::Approx(format!(
                "supervisord raises its own limit to at least {} and its programs inherit it; colony sets the unit's soft and hard limit to exactly that",
                f.value
            )),
        );
    }
}

//! Identity, limits, working directory and environment.

use super::super::draft::{Fate, V};
use super::super::words::{systemd_bool, systemd_words};
use super::source::Sd;

pub(super) fn identity(sd: &mut Sd) {
    // Identity.
    if let Some(i) = sd.last("Service", "DynamicUser") {
        if systemd_bool(&sd.items[i].value) == Some(true) {
            sd.drop_it(
                i,
                "colony has no dynamic users: create a system user and set `user`",
            );
        } else {
            sd.same(i, "no dynamic user: the default");
        }
    }
    if let Some(i) = sd.last("Service", "User") {
        let v = sd.expand(i);
        sd.user = Some(v.clone());
        if v.bytes().all(|b| b.is_ascii_digit()) {
            match v.parse::<i64>() {
                Ok(n) => sd.carry(i, "user", V::Int(n)),
                Err(_) => sd.drop_it(i, "not a valid uid"),
            }
        } else {
            sd.carry(i, "user", V::s(v));
        }
    }
    if let Some(i) = sd.last("Service", "Group") {
        let v = sd.expand(i);
        sd.carry(i, "group", V::s(v));
    }
    let groups = sd.list("Service", "SupplementaryGroups");
    for i in groups {
        let v = sd.expand(i);
        match systemd_words(&v) {
            Ok(w) => {
                sd.d.push_strs("supplementary_groups", &w);
                let to = format!("supplementary_groups += {}", V::strs(&w));
                sd.mark(i, Some(to), Fate::Carried);
            }
            Err(e) => sd.drop_it(i, format!("cannot be split: {e}")),
        }
    }
    if let Some(i) = sd.last("Service", "UMask") {
        let v = sd.items[i].value.clone();
        match units::values::parse_umask(&v) {
            Ok(m) => sd.carry(i, "umask", V::s(format!("{m:04o}"))),
            Err(e) => sd.drop_it(i, e),
        }
    }
}

/// Environment= (EnvironmentFile= is exec_env.rs's: colony reads it at each start).
pub(super) fn environment(sd: &mut Sd) {
    for i in sd.list("Service", "Environment") {
        let v = sd.expand(i);
        match systemd_words(&v) {
            Ok(words) => {
                let mut set = Vec::new();
                let mut bad = Vec::new();
                for w in words {
                    match w.split_once('=') {
                        Some((k, val)) if !k.is_empty() => {
                            sd.d.table_set("environment", k, V::s(val));
                            sd.env.push((k.to_string(), val.to_string()));
                            set.push(format!("{k} = {}", V::s(val)));
                        }
                        _ => bad.push(w),
                    }
                }
                let to = Some(format!("environment: {}", set.join(", ")));
                if bad.is_empty() {
                    sd.mark(i, to, Fate::Carried);
                } else {
                    sd.mark(
                        i,
                        to,
                        Fate::Approx(format!("not assignments, skipped: {}", bad.join(" "))),
                    );
                }
            }
            Err(e) => sd.drop_it(i, format!("cannot be split: {e}")),
        }
    }
}

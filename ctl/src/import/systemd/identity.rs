//! Identity, limits, working directory and environment.

use std::path::Path;

use super::super::draft::{Fate, V};
use super::super::words::{systemd_bool, systemd_words};
use super::exec::read_env_file;
use super::source::{home_of, Sd};

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
    if let Some(i) = sd.last("Service", "LimitNOFILE") {
        // N, or SOFT:HARD; colony's nofile sets both, so SOFT:HARD becomes the hard one.
        let v = sd.items[i].value.clone();
        let n = |s: &str| {
            s.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=1_073_741_816).contains(n))
        };
        match v.split_once(':') {
            None => match n(&v) {
                Some(x) => sd.carry(i, "nofile", V::Int(x as i64)),
                None => sd.drop_it(i, "colony's nofile is a number from 1 to 1073741816"),
            },
            Some((soft, hard)) => match (n(soft), n(hard)) {
                (Some(a), Some(b)) if a == b => sd.carry(i, "nofile", V::Int(b as i64)),
                (Some(_), Some(b)) => sd.approx(
                    i,
                    "nofile",
                    V::Int(b as i64),
                    "colony's nofile sets the soft and the hard limit: both are the hard one",
                ),
                _ => sd.drop_it(i, "colony's nofile is a number from 1 to 1073741816"),
            },
        }
    }
    if let Some(i) = sd.last("Service", "UMask") {
        let v = sd.items[i].value.clone();
        match units::values::parse_umask(&v) {
            Ok(m) => sd.carry(i, "umask", V::s(format!("{m:04o}"))),
            Err(e) => sd.drop_it(i, e),
        }
    }
    if let Some(i) = sd.last("Service", "WorkingDirectory") {
        let mut v = sd.expand(i);
        let optional = v.starts_with('-');
        if optional {
            v.remove(0);
        }
        if v == "~" {
            let user = sd.user.clone().unwrap_or_else(|| "root".into());
            match home_of(&user) {
                Some(h) => v = h,
                None => {
                    sd.drop_it(i, format!("~ is the home of `{user}`, who is not known here: set `directory` by hand"));
                    v.clear();
                }
            }
        }
        if !v.is_empty() {
            if !v.starts_with('/') {
                sd.drop_it(i, "not an absolute path");
            } else if optional {
                sd.approx(
                    i,
                    "directory",
                    V::s(v),
                    "the `-` (ignore a missing directory) is not carried: colony fails the start if it is missing",
                );
            } else {
                sd.carry(i, "directory", V::s(v));
            }
        }
    }
}

/// Environment= first, EnvironmentFile= over it, as systemd does.
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
    for i in sd.list("Service", "EnvironmentFile") {
        let mut v = sd.expand(i);
        let optional = v.starts_with('-');
        if optional {
            v.remove(0);
        }
        match read_env_file(Path::new(&v)) {
            Ok(vars) => {
                let mut set = Vec::new();
                for (k, val) in vars {
                    sd.d.table_set("environment", &k, V::s(val.as_str()));
                    set.push(format!("{k} = {}", V::s(val.as_str())));
                    sd.env.push((k, val));
                }
                let to = Some(format!("environment: {}", set.join(", ")));
                sd.mark(
                    i,
                    to,
                    Fate::Approx(format!(
                        "the values were read from {v} now; colony does not re-read the file: import again after changing it"
                    )),
                );
            }
            Err(e) if optional => sd.same(
                i,
                format!("optional and not readable here ({e}): nothing to carry"),
            ),
            Err(e) => sd.drop_it(
                i,
                format!("cannot read {v} ({e}): copy its variables into `environment`"),
            ),
        }
    }
}

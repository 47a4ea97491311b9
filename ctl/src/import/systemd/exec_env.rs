//! systemd's exec keys that colony's `exec_env` carries: EnvironmentFile=,
//! RuntimeDirectory= & co with their modes, WorkingDirectory= forms, Nice=, OOMScoreAdjust=,
//! IOWeight=, Limit*=, LoadCredential=; and a `.socket` unit's listeners as `[socket]`.

use std::path::Path;

use super::super::draft::{Fate, V};
use super::exec::read_env_file;
use super::source::Sd;
use units::exec_env::{self as ee, Resource};
use units::socket as so;

pub(super) fn exec_env(sd: &mut Sd) {
    environment_files(sd);
    working_directory(sd);
    directories(sd);
    scheduling(sd);
    limits(sd);
    credentials(sd);
}

/// `EnvironmentFile=`: colony reads it at each start too. Its variables are read now as
/// well, for `$VAR` in the command (which colony does not expand).
fn environment_files(sd: &mut Sd) {
    let mut files = Vec::new();
    for i in sd.list("Service", "EnvironmentFile") {
        let v = sd.expand(i);
        let path = v.strip_prefix('-').unwrap_or(&v).to_string();
        if !path.starts_with('/') {
            sd.drop_it(i, "not an absolute path");
            continue;
        }
        let to = Some(format!("environment_file: {}", V::s(v.as_str())));
        match read_env_file(Path::new(&path)) {
            Ok(vars) => {
                sd.env.extend(vars);
                sd.mark(i, to, Fate::Carried);
            }
            Err(_) if v.starts_with('-') => sd.mark(i, to, Fate::Carried),
            Err(e) => sd.mark(
                i,
                to,
                Fate::Approx(format!(
                    "cannot be read here ({e}): colony reads it at each start, and a start fails while it is missing; its variables are not used in the command"
                )),
            ),
        }
        files.push(v);
    }
    if !files.is_empty() {
        sd.d.set("environment_file", V::strs(&files));
    }
}

/// `WorkingDirectory=`: a path, `-PATH` (may be missing) or `~` (the user's home).
fn working_directory(sd: &mut Sd) {
    let Some(i) = sd.last("Service", "WorkingDirectory") else {
        return;
    };
    let v = sd.expand(i);
    let bare = v.strip_prefix('-').unwrap_or(&v);
    if bare == "~" || bare.starts_with('/') {
        sd.carry(i, "directory", V::s(v.as_str()));
    } else {
        sd.drop_it(i, "not an absolute path or ~");
    }
}

const DIRS: [(&str, &str); 4] = [
    ("RuntimeDirectory", "runtime_directory"),
    ("StateDirectory", "state_directory"),
    ("CacheDirectory", "cache_directory"),
    ("LogsDirectory", "logs_directory"),
];

fn directories(sd: &mut Sd) {
    for (key, to) in DIRS {
        let mut names = Vec::new();
        for i in sd.list("Service", key) {
            let v = sd.expand(i);
            let mut ok = Vec::new();
            let mut bad = Vec::new();
            for w in v.split_whitespace() {
                // NAME:LINK (a symlink of the name) is systemd 254's; colony makes the name.
                let name = w.split(':').next().unwrap_or(w);
                match ee::parse_dir_name(name) {
                    Ok(_) => ok.push(name.to_string()),
                    Err(e) => bad.push(e),
                }
            }
            let shown = Some(format!("{to}: {}", V::strs(&ok)));
            if bad.is_empty() && !v.contains(':') {
                sd.mark(i, shown, Fate::Carried);
            } else if ok.is_empty() {
                sd.drop_it(i, bad.join("; "));
            } else {
                sd.mark(
                    i,
                    shown,
                    Fate::Approx(format!(
                        "only plain names are carried (no NAME:LINK symlinks){}",
                        if bad.is_empty() {
                            String::new()
                        } else {
                            format!("; skipped: {}", bad.join("; "))
                        }
                    )),
                );
            }
            names.extend(ok);
        }
        if !names.is_empty() {
            sd.d.set(to, V::strs(&names));
        }
        let mode_key = format!("{key}Mode");
        if let Some(i) = sd.last("Service", &mode_key) {
            let v = sd.items[i].value.clone();
            match u32::from_str_radix(v.trim(), 8) {
                Ok(m) if m <= 0o7777 && !names.is_empty() => {
                    sd.carry(i, &format!("{to}_mode"), V::s(format!("{m:04o}")))
                }
                Ok(_) if names.is_empty() => sd.same(i, format!("no {key}= to apply to")),
                _ => sd.drop_it(i, "not an octal mode"),
            }
        }
    }
    if let Some(i) = sd.last("Service", "RuntimeDirectoryPreserve") {
        match sd.items[i].value.trim() {
            "no" | "false" => sd.same(i, "colony removes the runtime directory at stop too"),
            "restart" => sd.same(
                i,
                "colony keeps the runtime directory across automatic restarts too",
            ),
            "yes" | "true" => sd.carry(i, "runtime_directory_preserve", V::Bool(true)),
            _ => sd.drop_it(i, "not yes, no or restart"),
        }
    }
}

fn scheduling(sd: &mut Sd) {
    let int = |sd: &mut Sd, key: &str, to: &str, lo: i64, hi: i64| {
        if let Some(i) = sd.last("Service", key) {
            match sd.items[i].value.trim().parse::<i64>() {
                Ok(n) if (lo..=hi).contains(&n) => sd.carry(i, to, V::Int(n)),
                _ => sd.drop_it(i, format!("not a number from {lo} to {hi}")),
            }
        }
    };
    int(sd, "Nice", "nice", -20, 19);
    int(sd, "OOMScoreAdjust", "oom_score_adj", -1000, 1000);
    int(sd, "IOWeight", "io_weight", 1, 10000);
}

/// One `Limit*=` value in colony's form: systemd's sizes are powers of 1024 as colony's;
/// time-suffixed CPU/RTTIME values are not carried.
fn limit_value(r: Resource, v: &str) -> Result<String, String> {
    let one = |s: &str| -> Result<u64, String> {
        let s = s.trim();
        if s == "infinity" {
            return Ok(ee::INFINITY);
        }
        ee::parse_limit(r, s).map(|(a, _)| a)
    };
    let (soft, hard) = match v.split_once(':') {
        Some((a, b)) => (one(a)?, one(b)?),
        None => {
            let x = one(v)?;
            (x, x)
        }
    };
    let show = |n: u64| {
        if n == ee::INFINITY {
            "infinity".to_string()
        } else {
            n.to_string()
        }
    };
    if soft > hard {
        return Err("the soft limit is above the hard one".into());
    }
    Ok(if soft == hard {
        show(soft)
    } else {
        format!("{}:{}", show(soft), show(hard))
    })
}

fn limits(sd: &mut Sd) {
    for r in Resource::ALL {
        let key = r.systemd_key();
        let Some(i) = sd.last("Service", &key) else {
            continue;
        };
        let v = sd.items[i].value.clone();
        match limit_value(r, &v) {
            Ok(text) => {
                let val = match text.parse::<i64>() {
                    Ok(n) => V::Int(n),
                    Err(_) => V::s(text.as_str()),
                };
                let to = format!("limits.{} = {val}", r.key());
                sd.d.table_set("limits", r.key(), val);
                sd.mark(i, Some(to), Fate::Carried);
            }
            Err(e) => sd.drop_it(
                i,
                format!("{e}: colony's limits take a number, a size, infinity or SOFT:HARD"),
            ),
        }
    }
}

/// `LoadCredential=ID:PATH`; `ID` alone (or a PATH that is a credential name) is looked up
/// in the credential stores, as colony-init does for `load_credential = { ID = "" }`.
fn credentials(sd: &mut Sd) {
    for i in sd.list("Service", "LoadCredential") {
        let v = sd.expand(i);
        let (id, from) = v.split_once(':').unwrap_or((v.as_str(), ""));
        let from = if from == id { "" } else { from };
        let usable = from.starts_with('/') || from.is_empty() || ee::valid_credential_name(from);
        if ee::valid_credential_name(id) && usable {
            sd.d.table_set("load_credential", id, V::s(from));
            sd.mark(
                i,
                Some(format!("load_credential.{id} = {}", V::s(from))),
                Fate::Carried,
            );
        } else {
            sd.drop_it(
                i,
                "neither ID:/PATH nor a credential name to look up (ID, or ID:NAME)",
            );
        }
    }
}

/// A `.socket` unit's keys (merged into its service's items under `socket:Socket`) as
/// `[socket]`; its service is started at the first connection.
pub(super) fn socket(sd: &mut Sd) {
    let mut listen = Vec::new();
    for key in ["ListenStream", "ListenDatagram"] {
        for i in sd.list("socket:Socket", key) {
            let v = sd.expand(i);
            let stream = key == "ListenStream";
            match listen_of(&v, stream) {
                Ok((text, note)) => {
                    let to = Some(format!("socket.listen: {}", V::s(text.as_str())));
                    match note {
                        None => sd.mark(i, to, Fate::Carried),
                        Some(n) => sd.mark(i, to, Fate::Approx(n)),
                    }
                    listen.push(text);
                }
                Err(e) => sd.drop_it(i, e),
            }
        }
    }
    if listen.is_empty() {
        return;
    }
    sd.d.set("socket.listen", V::strs(&listen));
    sd.d.set("socket.on_demand", V::Bool(true));
    if let Some(i) = sd.last("socket:Socket", "SocketMode") {
        match u32::from_str_radix(sd.items[i].value.trim(), 8) {
            Ok(m) if m <= 0o7777 => sd.carry(i, "socket.mode", V::s(format!("{m:04o}"))),
            _ => sd.drop_it(i, "not an octal mode"),
        }
    }
    if let Some(i) = sd.last("socket:Socket", "Backlog") {
        match sd.items[i].value.trim().parse::<i64>() {
            Ok(n) if (1..=65535).contains(&n) => sd.carry(i, "socket.backlog", V::Int(n)),
            _ => sd.drop_it(i, "not a number from 1 to 65535"),
        }
    }
    if let Some(i) = sd.last("socket:Socket", "Accept") {
        match super::super::words::systemd_bool(&sd.items[i].value) {
            Some(false) => sd.same(i, "colony passes the listening sockets, as Accept=no"),
            _ => sd.drop_it(
                i,
                "colony has no per-connection instances (Accept=yes): the service gets the listening socket",
            ),
        }
    }
}

/// `ListenStream=`/`ListenDatagram=` as colony's `listen` text, with a note if it differs.
fn listen_of(v: &str, stream: bool) -> Result<(String, Option<String>), String> {
    let (inet, unix) = if stream {
        ("tcp", "unix")
    } else {
        ("udp", "unix-dgram")
    };
    let (text, note) = if v.starts_with('/') {
        (format!("{unix}:{v}"), None)
    } else if v.starts_with('@') {
        return Err("an abstract socket: colony listens on socket files and IP ports".into());
    } else if let Ok(port) = v.parse::<u16>() {
        (
            format!("{inet}:0.0.0.0:{port}"),
            Some("a bare port is every address: colony listens on IPv4's (0.0.0.0)".into()),
        )
    } else {
        (format!("{inet}:{v}"), None)
    };
    so::parse_listen(&text)
        .map(|_| (text, note))
        .map_err(|e| format!("{e} (a host name is not carried: give an IP address)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_listeners_in_colony_form() {
        assert_eq!(limit_value(Resource::Core, "0").unwrap(), "0");
        assert_eq!(limit_value(Resource::Memlock, "64M").unwrap(), "67108864");
        assert_eq!(
            limit_value(Resource::Nofile, "1024:524288").unwrap(),
            "1024:524288"
        );
        assert_eq!(limit_value(Resource::Core, "infinity").unwrap(), "infinity");
        assert!(limit_value(Resource::Cpu, "5min").is_err());
        assert_eq!(
            listen_of("127.0.0.1:8080", true).unwrap().0,
            "tcp:127.0.0.1:8080"
        );
        assert_eq!(
            listen_of("/run/x.sock", true).unwrap().0,
            "unix:/run/x.sock"
        );
        assert_eq!(listen_of("53", false).unwrap().0, "udp:0.0.0.0:53");
        assert!(listen_of("@abstract", true).is_err());
        assert!(listen_of("localhost:80", true).is_err());
    }
}

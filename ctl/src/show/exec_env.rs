//! `colonyctl show`'s share of the `exec_env` keys, `[socket]` and `[tty]`.

use toml_edit::{value, Array, DocumentMut, InlineTable, Item, Table};
use units::exec_env::{DirKind, IfMissing, WorkDir, INFINITY};
use units::model::Unit;

fn limit(n: u64) -> String {
    if n == INFINITY {
        "infinity".into()
    } else {
        n.to_string()
    }
}

/// The keys of `u.exec_env` (defaults left out where none is meant) and `[socket]`.
pub(super) fn render(doc: &mut DocumentMut, u: &Unit) {
    let e = &u.exec_env;
    let dash = |m: IfMissing| if m == IfMissing::Ignore { "-" } else { "" };
    match (e.work_dir, &u.directory) {
        (WorkDir::Home, _) => doc["directory"] = value(format!("{}~", dash(e.work_dir_missing))),
        (WorkDir::AsWritten, Some(d)) => {
            doc["directory"] = value(format!("{}{}", dash(e.work_dir_missing), d.display()))
        }
        (WorkDir::AsWritten, None) => {}
    }
    if !e.environment_files.is_empty() {
        let mut a = Array::new();
        for f in &e.environment_files {
            a.push(format!("{}{}", dash(f.missing), f.path.display()));
        }
        doc["environment_file"] = value(a);
    }
    for kind in DirKind::ALL {
        let dirs: Vec<_> = e.dirs(kind).collect();
        if let Some(first) = dirs.first() {
            let mut a = Array::new();
            for d in &dirs {
                a.push(d.name.to_string_lossy().as_ref());
            }
            doc[kind.key()] = value(a);
            doc[&format!("{}_mode", kind.key())] = value(format!("{:04o}", first.mode));
        }
    }
    if e.runtime_preserve {
        doc["runtime_directory_preserve"] = value(true);
    }
    for (k, v) in [("nice", e.nice), ("oom_score_adj", e.oom_score_adj)] {
        if let Some(n) = v {
            doc[k] = value(i64::from(n));
        }
    }
    if let Some(w) = e.io_weight {
        doc["io_weight"] = value(i64::from(w));
    }
    if !e.limits.is_empty() {
        let mut t = InlineTable::new();
        for l in &e.limits {
            let v = if l.soft == l.hard {
                limit(l.soft)
            } else {
                format!("{}:{}", limit(l.soft), limit(l.hard))
            };
            t.insert(l.resource.key(), v.into());
        }
        doc["limits"] = value(t);
    }
    if !e.credentials.is_empty() {
        let mut t = InlineTable::new();
        for (k, p) in &e.credentials {
            t.insert(k, p.as_written(k).into());
        }
        doc["load_credential"] = value(t);
    }
    if let Some(s) = &u.socket {
        let mut t = Table::new();
        let mut a = Array::new();
        for l in &s.listen {
            a.push(l.text());
        }
        t["listen"] = value(a);
        t["on_demand"] = value(s.on_demand);
        t["mode"] = value(format!("{:04o}", s.mode));
        t["backlog"] = value(i64::from(s.backlog));
        doc["socket"] = Item::Table(t);
    }
    if let Some(y) = &u.tty {
        let mut t = Table::new();
        t["path"] = value(y.path.to_string_lossy().as_ref());
        t["output"] = value(match y.output {
            units::tty::Output::Tty => "tty",
            units::tty::Output::Log => "log",
        });
        t["force"] = value(y.force);
        t["reset"] = value(y.reset);
        t["vhangup"] = value(y.vhangup);
        doc["tty"] = Item::Table(t);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_exec_env_keys_read_back_as_the_same_unit() {
        let path = std::path::Path::new("/u/web.unit");
        let text = "exec = [\"/bin/web\"]\ndirectory = \"-~\"\nenvironment_file = [\"-/etc/default/web\", \"/etc/web.env\"]\nruntime_directory = [\"web\", \"web/x\"]\nruntime_directory_mode = \"0750\"\nruntime_directory_preserve = true\nlogs_directory = \"web\"\nnice = 3\noom_score_adj = -10\nio_weight = 20\nlimits = { core = 0, stack = \"8M:infinity\" }\nload_credential = { k = \"/etc/k\" }\n[socket]\nlisten = [\"tcp:127.0.0.1:80\", \"unix:/run/web.sock\"]\non_demand = true\n[tty]\npath = \"/dev/tty3\"\nreset = true\n[stop]\nsighup = true\n";
        let unit = units::parse::parse_unit(path, text).unwrap();
        let shown = super::super::render(&unit, &super::super::Places::default());
        let mut back: toml::Table = shown.parse().unwrap();
        back["log"].as_table_mut().unwrap().remove("file");
        let again = units::parse::parse_unit(path, &toml::to_string(&back).unwrap())
            .unwrap_or_else(|e| panic!("{}\n{shown}", units::diag::render(&e)));
        assert_eq!(again.exec_env, unit.exec_env, "{shown}");
        assert_eq!(again.socket, unit.socket, "{shown}");
        assert_eq!(again.tty, unit.tty, "{shown}");
        assert!(unit.tty.is_some());
        assert!(again.stop.sighup);
        assert_eq!(again.directory, unit.directory);
    }
}

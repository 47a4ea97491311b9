//! `colonyctl import` on configuration files as Debian ships them (see
//! tests/fixtures/import/debian/README.md), and on this machine's own systemd units when it
//! has them: every imported unit must pass colony's parser.

use std::path::{Path, PathBuf};

use colonyctl::import::{run_with, ImportArgs};
use units::model::{ReadyType, RestartPolicy};

fn debian() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/debian")
}

fn import(files: Vec<PathBuf>, out: &Path, dry_run: bool) -> (i32, String, String) {
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let code = run_with(
        ImportArgs {
            from: None,
            out: Some(out.to_path_buf()),
            dry_run,
            strict: false,
            files,
            json: false,
        },
        &mut o,
        &mut e,
    );
    (
        code,
        String::from_utf8(o).unwrap(),
        String::from_utf8(e).unwrap(),
    )
}

/// Parse a written unit; only a user or group missing from this machine's database is
/// tolerated (as the import itself does: the unit is meant for the machine that has it).
fn parse(dir: &Path, name: &str) -> Option<units::model::Unit> {
    let path = dir.join(format!("{name}.unit"));
    let text = std::fs::read_to_string(&path).unwrap();
    match units::parse::parse_unit(&path, &text) {
        Ok(u) => Some(u),
        Err(diags) => {
            for d in &diags {
                assert!(
                    matches!(d.key.as_str(), "user" | "group") && d.message.contains("database"),
                    "{name}: {d}\n{text}"
                );
            }
            None
        }
    }
}

fn line<'a>(report: &'a str, needle: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no report line with {needle:?} in:\n{report}"))
}

#[test]
fn debian_services() {
    let out = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = [
        "redis-server.service",
        "nginx.service",
        "ssh.service",
        "cron.service",
    ]
    .iter()
    .map(|f| debian().join(f))
    .collect();
    let (code, rep, err) = import(files, out.path(), false);
    assert_eq!(code, 0, "{rep}\n{err}");
    println!("{rep}");

    // ssh: notify, restart on failure, $SSHD_OPTS unset here expands to nothing.
    let ssh = parse(out.path(), "ssh").expect("root service parses");
    assert_eq!(ssh.exec, ["/usr/sbin/sshd", "-D"]);
    assert_eq!(ssh.ready.kind, ReadyType::Notify);
    assert_eq!(ssh.restart.policy, RestartPolicy::OnFailure);
    assert!(line(&rep, "KillMode=process").contains("NOT CARRIED"));
    assert!(line(&rep, "ExecStartPre=/usr/sbin/sshd -t").contains("NOT CARRIED"));
    assert!(line(&rep, "ExecReload=/bin/kill -HUP $MAINPID").contains("colonyctl signal"));
    assert!(line(&rep, "ExecStart=/usr/sbin/sshd -D $SSHD_OPTS").contains("$SSHD_OPTS"));

    let cron = parse(out.path(), "cron").unwrap();
    assert_eq!(cron.exec, ["/usr/sbin/cron", "-f"]);
    assert!(line(&rep, "After=remote-fs.target").contains("NOT CARRIED"));

    // nginx daemonizes: the report says how to keep it in the foreground.
    parse(out.path(), "nginx").unwrap();
    assert!(line(&rep, "Type=forking").contains("foreground"));

    // redis runs as `redis`, which this machine may not have: then a warning, still written.
    match parse(out.path(), "redis-server") {
        Some(u) => assert_eq!(u.identity.user.unwrap().name, "redis"),
        None => assert!(line(&rep, "warning").contains("redis")),
    }
    let total = line(&rep, "total:");
    assert!(total.contains("4 units"), "{total}");
}

#[test]
fn debian_template_without_instance_is_named_after_its_prefix() {
    let out = tempfile::tempdir().unwrap();
    let (code, rep, err) = import(
        vec![debian().join("redis-server@.service")],
        out.path(),
        false,
    );
    assert_eq!(code, 0, "{rep}\n{err}");
    assert!(out.path().join("redis-server.unit").exists());
    assert!(line(&rep, "warning").contains("template"));
    let _ = parse(out.path(), "redis-server");
}

#[test]
fn supervisor_sample_program_with_every_key() {
    // The sample config's commented-out [program:x] lists every program key with its
    // default: uncomment it (with a user this machine has).
    let sample = std::fs::read_to_string(debian().join("supervisor-sample.conf")).unwrap();
    let mut conf = String::new();
    let mut inside = false;
    for l in sample.lines() {
        if l.starts_with(";[program:theprogramname]") {
            inside = true;
        } else if l.trim().is_empty() {
            inside = false;
        }
        if inside {
            conf.push_str(&l[1..].replace("user=chrism", "user=daemon"));
            conf.push('\n');
        }
    }
    assert!(conf.contains("[program:theprogramname]\ncommand=/bin/cat"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("supervisord.conf");
    std::fs::write(&file, &conf).unwrap();
    let out = dir.path().join("units");
    let (code, rep, err) = import(vec![file], &out, false);
    assert_eq!(code, 0, "{rep}\n{err}");
    let u = parse(&out, "theprogramname").unwrap();
    assert_eq!(u.exec, ["/bin/cat"]);
    assert_eq!(u.stop.signal, libc::SIGQUIT);
    assert_eq!(u.log.file.as_deref(), Some(Path::new("/a/path")));
    assert_eq!(u.log.max_size, 1 << 20);
    assert_eq!(u.log.keep, 10);
    assert_eq!(u.environment["A"], "1");
    assert_eq!(u.restart.policy, RestartPolicy::OnFailure);
    for key in [
        "stdout_capture_maxbytes",
        "stdout_events_enabled",
        "stdout_syslog",
        "startretries",
    ] {
        assert!(
            line(&rep, &format!("{key}=")).contains("NOT CARRIED"),
            "{key}"
        );
    }
    assert!(line(&rep, "stderr_logfile=/a/path").contains("same file"));
    // Every one of the 31 keys has a report line.
    let keys = conf.lines().filter(|l| l.contains('=')).count();
    let lines = rep
        .lines()
        .filter(|l| l.contains("supervisord.conf:"))
        .count();
    assert_eq!(keys, 31);
    assert_eq!(lines, keys, "{rep}\n{conf}");
}

#[test]
fn debian_supervisord_conf_without_programs_says_so() {
    let out = tempfile::tempdir().unwrap();
    let (code, rep, err) = import(
        vec![debian().join("supervisor-debian.conf")],
        out.path(),
        false,
    );
    // Its [include] names /etc/supervisor/conf.d/*.conf; with no program anywhere there is
    // nothing to import, which is an error that says so, after the report.
    if code == 0 {
        assert!(rep.contains("conf.d"), "{rep}");
    } else {
        assert_eq!(code, 1);
        assert!(err.contains("nothing to import"), "{err}");
        assert!(line(&rep, "[unix_http_server]").contains("same"));
    }
}

/// This machine's own units, when it has systemd's directory: the whole directory imports
/// and every unit passes colony's parser (the import checks each with it and fails on any
/// invalid one).
#[test]
fn host_systemd_units_all_import() {
    let dir = Path::new("/lib/systemd/system");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "service" || e == "timer")
            })
            .collect(),
        Err(_) => {
            eprintln!("no {} here: nothing to check", dir.display());
            return;
        }
    };
    files.sort();
    let out = tempfile::tempdir().unwrap();
    let (code, rep, err) = import(files, out.path(), true);
    assert_eq!(code, 0, "{err}");
    let total = line(&rep, "total:");
    println!("{total}");
}

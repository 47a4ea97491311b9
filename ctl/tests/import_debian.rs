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
    let has_redis = nix::unistd::User::from_name("redis")
        .ok()
        .flatten()
        .is_some();
    let (code, rep, err) = import(files.clone(), out.path(), false);
    if !has_redis {
        // A unit whose user this machine lacks would not load here: the import says so and
        // writes nothing. Without it, the others import.
        assert_eq!(code, 1, "{rep}\n{err}");
        assert!(
            line(&err, "redis-server.unit").contains("user database"),
            "{err}"
        );
        let (code, rep, err) = import(files[1..].to_vec(), out.path(), false);
        assert_eq!(code, 0, "{rep}\n{err}");
        return;
    }
    assert_eq!(code, 0, "{rep}\n{err}");
    println!("{rep}");

    // ssh: notify, restart on failure, $SSHD_OPTS unset here expands to nothing.
    let ssh = parse(out.path(), "ssh").expect("root service parses");
    assert_eq!(ssh.exec, ["/usr/sbin/sshd", "-D"]);
    assert_eq!(ssh.ready.kind, ReadyType::Notify);
    assert_eq!(ssh.restart.policy, RestartPolicy::OnFailure);
    assert!(line(&rep, "KillMode=process").contains("NOT CARRIED"));
    assert_eq!(ssh.hooks.start_pre.len(), 1);
    assert!(line(&rep, "ExecStartPre=/usr/sbin/sshd -t").contains("exec_start_pre"));
    assert!(line(&rep, "ExecReload=/bin/kill -HUP $MAINPID").contains("carried"));
    assert!(line(&rep, "ExecStart=/usr/sbin/sshd -D $SSHD_OPTS").contains("$SSHD_OPTS"));

    let cron = parse(out.path(), "cron").unwrap();
    assert_eq!(cron.exec, ["/usr/sbin/cron", "-f"]);
    assert!(line(&rep, "After=remote-fs.target").contains("`mount-all` is neither imported"));
    assert!(line(&rep, "After=nss-user-lookup.target").contains("a passive target"));

    // nginx daemonizes: the report says how to keep it in the foreground.
    parse(out.path(), "nginx").unwrap();
    assert!(line(&rep, "Type=forking").contains("foreground"));

    // redis runs as `redis`; TimeoutStopSec=0 is no timeout: a very long one.
    let redis = parse(out.path(), "redis-server").unwrap();
    assert_eq!(redis.identity.user.unwrap().name, "redis");
    assert!(line(&rep, "TimeoutStopSec=0").contains("3650d"));
    let total = line(&rep, "total:");
    assert!(total.contains("4 units"), "{total}");
}

/// Early boot units and a getty: `Before=sysinit.target` orders the early ones before the
/// units systemd starts after it (not before the template, nor each other), `LoadCredential=ID`
/// is looked up in the credential stores, and getty@'s terminal keys become `[tty]`.
#[test]
fn debian_early_units_credentials_and_getty() {
    use units::exec_env::CredentialSource;
    let out = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = [
        "getty@.service",
        "systemd-sysctl.service",
        "systemd-tmpfiles-setup.service",
        "ssh.service",
        "cron.service",
    ]
    .iter()
    .map(|f| debian().join(f))
    .collect();
    let (code, rep, err) = import(files, out.path(), false);
    assert_eq!(code, 0, "{rep}\n{err}");
    check_dir(out.path());

    let sysctl = parse(out.path(), "systemd-sysctl").unwrap();
    assert_eq!(sysctl.links.before, ["ssh", "cron"]);
    assert!(line(&rep, "Before=sysinit.target").contains("approx"));
    let tmpfiles = parse(out.path(), "systemd-tmpfiles-setup").unwrap();
    assert_eq!(tmpfiles.links.before, ["ssh", "cron"]);
    assert!(tmpfiles.exec_env.credentials.contains(&(
        "login.motd".into(),
        CredentialSource::Store("login.motd".into())
    )));
    assert!(line(&rep, "LoadCredential=login.motd").contains("carried"));

    let getty = parse(out.path(), "getty@").unwrap();
    let t = getty.tty.as_deref().unwrap();
    // Read with the sample instance `instance` in place of %I.
    assert_eq!(t.path, Path::new("/dev/instance"));
    let text = std::fs::read_to_string(out.path().join("getty@.unit")).unwrap();
    assert!(text.contains("[tty]\npath = \"/dev/%I\""), "{text}");
    assert_eq!(t.output, units::tty::Output::Tty);
    assert!(t.reset && t.vhangup && !t.force);
    for key in ["StandardOutput=tty", "TTYPath=", "TTYReset=", "TTYVHangup="] {
        assert!(line(&rep, key).contains("carried"), "{key}");
    }
    assert!(getty.stop.sighup);
    for key in [
        "StandardInput=tty",
        "TTYVTDisallocate=",
        "UtmpIdentifier=",
        "SendSIGHUP=",
    ] {
        assert!(line(&rep, key).contains("approx"), "{key}");
    }
}

#[test]
fn debian_template_becomes_a_template() {
    let out = tempfile::tempdir().unwrap();
    let (code, rep, err) = import(
        vec![debian().join("redis-server@.service")],
        out.path(),
        false,
    );
    if nix::unistd::User::from_name("redis")
        .ok()
        .flatten()
        .is_none()
    {
        // The unit's user is not on this machine: it would not load here.
        assert_eq!(code, 1, "{rep}\n{err}");
        return;
    }
    assert_eq!(code, 0, "{rep}\n{err}");
    let text = std::fs::read_to_string(out.path().join("redis-server@.unit")).unwrap();
    assert!(text.contains("%i"), "{text}");
    parse(out.path(), "redis-server@").unwrap();
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
    ] {
        assert!(
            line(&rep, &format!("{key}=")).contains("NOT CARRIED"),
            "{key}"
        );
    }
    // startsecs=1 and startretries=3: up after a second, failed after four failed starts.
    assert_eq!(u.ready.settle, std::time::Duration::from_secs(1));
    assert_eq!(u.restart.max_failures, Some(4));
    assert!(line(&rep, "startretries=3").contains("the first start and 3 retries"));
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

/// `colonyctl check DIR` (the real binary): the directory as colony-init reads it is valid.
fn check_dir(dir: &Path) -> String {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_colonyctl"))
        .arg("check")
        .arg(dir)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success(),
        "colonyctl check {}: {said}",
        dir.display()
    );
    said.trim().to_string()
}

/// The numbers of a report's `total:` line: units, keys, carried, approximated, already so,
/// not carried.
fn totals(total: &str) -> [usize; 6] {
    let nums: Vec<usize> = total
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(nums.len() >= 6, "{total}");
    [nums[0], nums[1], nums[2], nums[3], nums[4], nums[5]]
}

/// Every `.service` and `.timer` of this machine's systemd directory (a stock Debian 12
/// here, with a few packages added), imported in one go: the import succeeds, every unit it
/// writes passes `colonyctl check` (and the units crate's validation of the directory),
/// each template is refused with a report line, and the share of keys carried is printed.
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
    // Imported as onto a machine that colony-init boots: beside examples/machine's units,
    // which provide what systemd's network and remote-fs targets stand for.
    let out = tempfile::tempdir().unwrap();
    let machine = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/machine");
    let mut seeded = 0;
    for e in std::fs::read_dir(&machine).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "unit") {
            std::fs::copy(e.path(), out.path().join(e.file_name())).unwrap();
            seeded += 1;
        }
    }
    let (code, rep, err) = import(files.clone(), out.path(), false);
    assert_eq!(code, 0, "{err}\n{rep}");

    // Every unit written loads, as a directory (dependencies and cycles included).
    let set = units::validate::load_dir(out.path()).unwrap();
    for (name, u) in &set {
        if let Err(d) = u {
            panic!("{name}: {}", units::diag::render(d));
        }
    }
    let said = check_dir(out.path());
    let written = std::fs::read_dir(out.path()).unwrap().count();
    assert_eq!(written, set.len());
    assert!(written > 0);

    // Each service template is a template NAME@.unit (checked above with the directory);
    // a timer template has its report line, and no unit.
    let named = |suffix: &str| {
        files
            .iter()
            .filter(|p| p.file_name().unwrap().to_string_lossy().ends_with(suffix))
            .count()
    };
    let templates = set.keys().filter(|n| n.ends_with('@')).count();
    // (A link to another template, as autovt@ is to getty@, is an alias of it instead.)
    let aliases = rep
        .lines()
        .filter(|l| l.contains("an alias of") && l.contains("@.service"))
        .count();
    assert_eq!(templates + aliases, named("@.service"), "{rep}");
    let refused = rep
        .lines()
        .filter(|l| l.contains("a timer template"))
        .count();
    assert_eq!(refused, named("@.timer"), "{rep}");

    // man-db's three ExecStart= run in order, through sh.
    if let Some(Ok(u)) = set.get("man-db") {
        assert_eq!(u.exec[..2], ["/bin/sh", "-c"]);
        let script = &u.exec[2];
        let at = |s: &str| {
            script
                .find(s)
                .unwrap_or_else(|| panic!("{s} not in {script}"))
        };
        assert!(at("/usr/bin/install") < at("/usr/bin/find"));
        assert!(at("/usr/bin/find") < at("/usr/bin/mandb"));
    }
    // redis' TimeoutStopSec=0 (no timeout) is a very long one, not colony's default.
    if let Some(Ok(u)) = set.get("redis-server") {
        assert!(u.stop.timeout.unwrap() >= std::time::Duration::from_secs(365 * 86_400));
    }

    let total = line(&rep, "total:");
    let [units, keys, carried, approx, same, dropped] = totals(total);
    assert_eq!(units + seeded, written, "{total}");
    assert_eq!(keys, carried + approx + same + dropped, "{total}");
    let pct = |n: usize| 100.0 * n as f64 / keys as f64;
    println!(
        "{} .service/.timer files in {}, imported beside the {seeded} units of examples/machine; colonyctl check: {said}",
        files.len(),
        dir.display()
    );
    println!("{total}");
    println!(
        "share of keys: {:.0}% carried as they are, {:.0}% approximated, {:.0}% already so in colony ({:.0}% in all); {:.0}% not carried",
        pct(carried),
        pct(approx),
        pct(same),
        pct(carried + approx + same),
        pct(dropped)
    );
    if let Some(l) = rep.lines().find(|l| l.starts_with("not carried, by key:")) {
        println!("{l}");
    }
}

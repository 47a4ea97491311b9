//! `colonyctl import` on realistic fixtures: the units it writes are read back with the real
//! parser (`units::parse`), and the report, --strict, --dry-run and the no-overwrite rule are
//! checked.

use std::path::{Path, PathBuf};
use std::time::Duration;

use colonyctl::import::{run_with, ImportArgs};
use units::model::{HealthCheck, ReadyType, RestartPolicy};

/// A copy of the fixtures in a temporary directory, with `@FIXTURES@` replaced by its path
/// (for the EnvironmentFile= that must be absolute).
fn fixtures() -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import");
    let dst = tempfile::tempdir().unwrap();
    copy_dir(&src, dst.path(), dst.path());
    dst
}

fn copy_dir(from: &Path, to: &Path, root: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target, root);
        } else {
            let text = std::fs::read_to_string(e.path()).unwrap();
            std::fs::write(
                &target,
                text.replace("@FIXTURES@", &root.display().to_string()),
            )
            .unwrap();
        }
    }
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn import(files: &[PathBuf], out: &Path, from: Option<&str>, dry_run: bool, strict: bool) -> Run {
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let code = run_with(
        ImportArgs {
            from: from.map(str::to_string),
            out: Some(out.to_path_buf()),
            dry_run,
            strict,
            files: files.to_vec(),
            json: false,
        },
        &mut o,
        &mut e,
    );
    Run {
        code,
        out: String::from_utf8(o).unwrap(),
        err: String::from_utf8(e).unwrap(),
    }
}

/// Read a written unit back with colony's own parser; it must be valid.
fn unit(dir: &Path, name: &str) -> units::model::Unit {
    let path = dir.join(format!("{name}.unit"));
    match units::parse::load_file(&path) {
        Ok(u) => u,
        Err(d) => panic!(
            "{} is not a valid unit:\n{}\n--- text:\n{}",
            path.display(),
            units::diag::render(&d),
            std::fs::read_to_string(&path).unwrap_or_default()
        ),
    }
}

/// `colonyctl check DIR` (the real binary) on the written units: the directory as a whole
/// (dependencies included) must be valid.
fn check_dir(dir: &Path) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_colonyctl"))
        .arg("check")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "colonyctl check {}: {}{}",
        dir.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn unit_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The report line about a source key, e.g. `LimitNOFILE=`.
fn line<'a>(report: &'a str, needle: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no report line with {needle:?} in:\n{report}"))
}

#[test]
fn systemd_template_instance_with_dropins_specifiers_and_environment_file() {
    let fx = fixtures();
    let out = fx.path().join("units");
    // `sentinel` (Requires=) is a unit of the output directory already; `redis-exporter`
    // (Wants=) is not, nor imported: that ordering is not carried.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("sentinel.unit"), "exec = [\"/bin/true\"]\n").unwrap();
    let r = import(
        &[fx.path().join("systemd/redis-server@cache.service")],
        &out,
        None,
        false,
        false,
    );
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert_eq!(
        unit_files(&out),
        vec!["redis-server-cache.unit", "sentinel.unit"]
    );
    check_dir(&out);
    let u = unit(&out, "redis-server-cache");
    // %I and %i are the instance; the drop-in's `ExecStart=` reset the template's command;
    // ${PORT} comes from the EnvironmentFile, $EXTRA_FLAGS (a whole word) splits.
    assert_eq!(
        u.description.as_deref(),
        Some("Advanced key-value store (cache)")
    );
    assert_eq!(
        u.exec,
        [
            "/usr/bin/redis-server",
            "/etc/redis/redis-cache.conf",
            "--port",
            "6390",
            "--loglevel",
            "notice",
            "--supervised",
            "systemd",
            "--daemonize",
            "no"
        ]
    );
    assert_eq!(u.environment["REDIS_NAME"], "redis-server@cache.service");
    assert_eq!(u.environment["UNIT_PREFIX"], "redis-server");
    assert_eq!(u.environment["LANG"], "C.UTF-8");
    // The environment files are read by colony at each start (and by the import for the
    // command's ${PORT}).
    assert!(!u.environment.contains_key("PORT"));
    let files: Vec<String> = u
        .exec_env
        .environment_files
        .iter()
        .map(|f| format!("{:?} {}", f.missing, f.path.display()))
        .collect();
    assert_eq!(
        files,
        [
            "Ignore /nonexistent/colony-import-test/redis".to_string(),
            format!("Fail {}/systemd/redis.env", fx.path().display())
        ]
    );
    let run: Vec<_> = u
        .exec_env
        .dirs(units::exec_env::DirKind::Runtime)
        .map(|d| (d.name.display().to_string(), d.mode))
        .collect();
    assert_eq!(run, [("redis-cache".to_string(), 0o2755)]);
    assert_eq!(u.identity.user.as_ref().unwrap().name, "daemon");
    assert_eq!(u.identity.gid, Some(1));
    assert_eq!(u.umask, Some(0o007));
    assert!(u.no_new_privileges);
    // Non-root without ambient capabilities: none, as under systemd.
    assert_eq!(u.capabilities, None);
    assert_eq!(u.ready.kind, ReadyType::Notify);
    assert_eq!(u.ready.watchdog, Some(Duration::from_secs(30)));
    assert_eq!(u.ready.timeout, Some(Duration::from_secs(120)));
    assert_eq!(u.restart.policy, RestartPolicy::Always);
    assert_eq!(u.restart.success_codes, vec![0, 3]);
    assert_eq!(u.restart.delay_min, Some(Duration::from_secs(5)));
    assert_eq!(u.restart.delay_max, Some(Duration::from_secs(5)));
    assert_eq!(u.stop.signal, libc::SIGINT);
    assert_eq!(u.resources.memory_max, Some(256 << 20));
    assert_eq!(u.resources.memory_high, Some(200 << 20));
    assert_eq!(u.resources.cpu_max, Some(50));
    assert_eq!(u.resources.cpu_weight, Some(200));
    assert_eq!(u.resources.tasks_max, Some(64));
    assert_eq!(u.requires, ["sentinel"]);
    assert!(u.after.is_empty());
    assert_eq!(u.nofile, Some(65535));

    // The report: every key, with its fate.
    let rep = &r.out;
    assert!(line(rep, "LimitNOFILE=65535").contains("carried"));
    assert!(line(rep, "LimitNOFILE=65535").contains("nofile"));
    assert!(line(rep, "Alias=redis.service").contains("NOT CARRIED"));
    assert!(line(rep, "RuntimeDirectory=redis-%i").contains("runtime_directory"));
    assert!(line(rep, "After=network.target").contains("NOT CARRIED"));
    assert!(line(rep, "After=network.target").contains("`network` is neither imported"));
    assert!(line(rep, "After=local-fs.target").contains("same"));
    assert!(line(rep, "TimeoutStopSec=0").contains("approx"));
    assert!(line(rep, "TimeoutStopSec=0").contains("stop.timeout = \"3650d\""));
    assert!(line(rep, "SuccessExitStatus=3 SIGUSR1").contains("approx"));
    assert!(line(rep, "SuccessExitStatus=3 SIGUSR1").contains("SIGUSR1"));
    assert!(line(rep, "EnvironmentFile=-/nonexistent").contains("carried"));
    assert!(line(rep, "redis.env").contains("environment_file"));
    // Installed nowhere: under systemd it would want nothing either.
    assert!(line(rep, "Wants=redis-exporter.service").contains("same"));
    assert!(line(rep, "Wants=redis-exporter.service").contains("not installed here"));
    assert!(line(rep, "MemoryMax=256M").contains("resources.memory_max = \"256M\""));
    assert!(line(
        rep,
        "ExecStart=/usr/bin/redis-server /etc/redis/redis-%i.conf --supervised"
    )
    .contains("reset by the empty assignment"));
    assert!(line(rep, "CapabilityBoundingSet=").contains("same"));
    assert!(line(rep, "warning").contains("redis-server-cache"));
    // systemd's older spelling of ReadWritePaths= is carried as it.
    assert!(!line(rep, "not carried, by key:").contains("ReadWriteDirectories"));
    assert!(line(rep, "ReadWriteDirectories=").contains("sandbox.read_write_paths"));
    // Every assignment of the three files has a line (nothing dropped silently).
    let count = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .filter(|l| {
                let t = l.trim();
                !t.is_empty() && !t.starts_with('#') && !t.starts_with('[') && t.contains('=')
            })
            .count()
    };
    let sd = fx.path().join("systemd");
    let assignments = count(&sd.join("redis-server@.service"))
        + count(&sd.join("redis-server@.service.d/10-limits.conf"))
        + count(&sd.join("redis-server@cache.service.d/20-port.conf"));
    // `After=` with two names makes two lines (one per name).
    let reported = rep
        .lines()
        .filter(|l| l.contains(&*sd.display().to_string()) && !l.contains("(from"))
        .count();
    assert_eq!(reported, assignments + 1, "{rep}");
}

#[test]
fn systemd_timer_is_merged_with_its_service() {
    let fx = fixtures();
    let out = fx.path().join("units");
    let sd = fx.path().join("systemd");
    let r = import(
        &[
            sd.join("backup.timer"),
            sd.join("backup.service"),
            sd.join("cleanup.timer"),
        ],
        &out,
        None,
        false,
        false,
    );
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    // The services are inside the timer units, not units of their own.
    assert_eq!(unit_files(&out), vec!["backup.unit", "cleanup.unit"]);
    let b = unit(&out, "backup");
    let t = b.timer.as_ref().expect("a timer unit");
    assert_eq!(t.calendar.as_ref().unwrap().text, "30 2 * * 1-5");
    assert_eq!(t.on_boot, Some(Duration::from_secs(300)));
    assert!(t.persistent);
    assert_eq!(t.timeout, Some(Duration::from_secs(3600)));
    assert_eq!(b.description.as_deref(), Some("Back up /etc"));
    // The timer's [Install] decides: enabled.
    assert!(b.enabled);
    assert_eq!(
        b.exec,
        [
            "/bin/sh",
            "-c",
            "tar czf /var/backups/etc-$(date +%F).tgz /etc"
        ]
    );
    let c = unit(&out, "cleanup");
    let t = c.timer.as_ref().unwrap();
    assert_eq!(t.every, Some(Duration::from_secs(900)));
    assert_eq!(t.on_boot, Some(Duration::from_secs(120)));
    assert_eq!(c.exec[0], "/usr/bin/find");
    assert!(line(&r.out, "RandomizedDelaySec=10min").contains("NOT CARRIED"));
    assert!(line(&r.out, "Nice=10").contains("nice = 10"));
    assert!(line(&r.out, "OnCalendar=Mon..Fri").contains("timer.calendar = \"30 2 * * 1-5\""));
    assert!(line(&r.out, "Unit=tmp-clean.service").contains("merged"));
    check_dir(&out);
}

#[test]
fn systemd_defaults_that_differ_are_written_out() {
    let fx = fixtures();
    let out = fx.path().join("units");
    let sd = fx.path().join("systemd");
    let r = import(
        &[sd.join("db.service"), sd.join("simple.service")],
        &out,
        None,
        false,
        true,
    );
    // Both translate completely: --strict passes.
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    let db = unit(&out, "db");
    // Restart= absent is systemd's `no`... but this one says always; TimeoutStopSec= absent is 90s.
    assert_eq!(db.restart.policy, RestartPolicy::Always);
    assert_eq!(db.stop.timeout, Some(Duration::from_secs(90)));
    // Root with a bounding set: exactly that set.
    let mask = units::values::parse_capability("CAP_NET_BIND_SERVICE").unwrap()
        | units::values::parse_capability("CAP_SETUID").unwrap();
    assert_eq!(db.capabilities, Some(mask));
    // No [Install]: a static unit, started only when something requires it.
    assert!(!db.enabled);
    assert!(line(&r.out, "[Install] absent").contains("approx"));
    let s = unit(&out, "simple");
    assert!(s.enabled);
    assert_eq!(s.after, ["db"]);
    assert_eq!(s.restart.policy, RestartPolicy::OnFailure);
    assert_eq!(s.stop.timeout, Some(Duration::from_secs(20)));
    assert_eq!(s.directory.as_deref(), Some(Path::new("/srv/www")));
    assert!(line(&r.out, "simple.unit").contains("simple.service"));
    assert!(r
        .out
        .contains("11 keys: 10 carried, 0 approximated, 1 already so in colony, 0 not carried"));
    check_dir(&out);
}

#[test]
fn supervisord_conf_with_includes_numprocs_groups_and_priorities() {
    let fx = fixtures();
    let out = fx.path().join("units");
    let conf = fx.path().join("supervisord/supervisord.conf");
    let r = import(&[conf], &out, None, false, false);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    // numprocs = 3: one unit with `instances = 3`, read as worker-0 .. worker-2.
    assert_eq!(unit_files(&out), vec!["web.unit", "worker.unit"]);
    assert_eq!(unit(&out, "worker").instances, Some(3));
    let l = line(&r.out, "numprocs=3");
    assert!(l.contains("instances = 3") && l.contains("carried"), "{l}");
    let l = line(&r.out, "process_name=");
    assert!(l.contains("approx") && l.contains("worker-0"), "{l}");
    let set = units::validate::load_dir(&out).unwrap();
    let web = unit(&out, "web");
    assert_eq!(
        web.exec,
        [
            "/usr/bin/gunicorn",
            "--bind",
            "127.0.0.1:8000",
            "--workers",
            "4",
            "app:create_app()"
        ]
    );
    assert_eq!(web.restart.policy, RestartPolicy::Always);
    assert_eq!(web.stop.signal, libc::SIGQUIT);
    assert_eq!(web.stop.timeout, Some(Duration::from_secs(20)));
    assert_eq!(
        web.log.file.as_deref(),
        Some(Path::new("/var/log/app/web.log"))
    );
    assert_eq!(web.log.max_size, 50 << 20);
    assert_eq!(web.log.keep, 3);
    assert_eq!(web.environment["A"], "1,2");
    assert_eq!(web.environment["B"], "x");
    assert_eq!(web.environment["TZ"], "UTC");
    // %(here)s is the directory of supervisord.conf.
    let here = std::fs::canonicalize(fx.path().join("supervisord")).unwrap();
    assert_eq!(web.environment["APP_HOME"], here.display().to_string());
    assert!(web.after.is_empty());
    for n in 0..3 {
        let w = set[&format!("worker-{n}")].clone().unwrap();
        assert_eq!(
            w.exec,
            [
                "/usr/bin/python3",
                "-m",
                "app.worker",
                "--id",
                &n.to_string(),
                "--queue",
                "high priority"
            ]
        );
        assert!(!w.enabled);
        assert_eq!(w.tags, ["workers"]);
        assert_eq!(w.after, ["web"]);
        assert_eq!(w.restart.policy, RestartPolicy::OnFailure);
        assert_eq!(w.restart.success_codes, vec![0, 2]);
        // startsecs=5: up once it has lived 5s, and the backoff threshold with it;
        // startretries=10: the first start and ten retries.
        assert_eq!(w.ready.settle, Duration::from_secs(5));
        assert_eq!(w.restart.threshold, Some(Duration::from_secs(5)));
        assert_eq!(w.restart.max_failures, Some(11));
        // supervisord's stopwaitsecs default, made explicit.
        assert_eq!(w.stop.timeout, Some(Duration::from_secs(10)));
        assert_eq!(w.umask, Some(0o022));
    }
    // supervisord's defaults (startsecs=1, startretries=3), made explicit.
    assert_eq!(web.ready.settle, Duration::from_secs(1));
    assert_eq!(web.restart.max_failures, Some(4));
    let l = line(&r.out, "startretries=10");
    assert!(
        l.contains("carried") && l.contains("max_failures = 11"),
        "{l}"
    );
    assert!(line(&r.out, "startsecs=5").contains("ready.settle = \"5s\""));
    assert!(line(&r.out, "stopasgroup=true").contains("whole unit"));
    assert!(line(&r.out, "killasgroup=true").contains("same"));
    assert!(line(&r.out, "[eventlistener:crashmail]").contains("NOT CARRIED"));
    assert!(line(&r.out, "files=conf.d/*.conf").contains("web.conf"));
    assert!(line(&r.out, "priority=20").contains("after += [\"web\"]"));
    check_dir(&out);
}

#[test]
fn ncolony_config_directory() {
    let fx = fixtures();
    let out = fx.path().join("units");
    let r = import(
        &[fx.path().join("ncolony/config")],
        &out,
        None,
        false,
        false,
    );
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    // The beatcheck helper is not a unit: colony checks heartbeats itself.
    assert_eq!(
        unit_files(&out),
        vec!["demo-server.unit", "logrotate.unit", "sentry.unit"]
    );
    assert!(line(&r.out, "config/beatcheck").contains("heartbeats itself"));
    let s = unit(&out, "sentry");
    assert_eq!(
        s.exec,
        ["/myvenv/bin/sentry", "start", "--config=/etc/sentry.conf"]
    );
    assert_eq!(s.identity.user.as_ref().unwrap().uid, 1);
    assert_eq!(s.identity.gid, Some(1));
    assert_eq!(s.environment["SENTRY_CONF"], "/etc/sentry");
    assert_eq!(s.environment["NCOLONY_NAME"], "sentry");
    let hb = s.heartbeat.as_ref().unwrap();
    assert_eq!(hb.period, Duration::from_secs(10));
    // NColony's grace counts periods.
    assert_eq!(hb.grace, Duration::from_secs(30));
    assert_eq!(hb.file.as_deref(), Some(Path::new("/run/sentry/heart")));
    let d = unit(&out, "demo-server");
    let h = d.health.as_ref().unwrap();
    assert_eq!(h.check, HealthCheck::Http("http://127.0.0.1:8080/".into()));
    assert_eq!(h.period, Duration::from_secs(5));
    assert_eq!(h.timeout, Duration::from_secs(2));
    // NColony restarts when bad checks exceed maxBad.
    assert_eq!(h.max_bad, 3);
    assert_eq!(h.grace, Duration::from_secs(20));
    assert_eq!(d.tags, ["web"]);
    assert_eq!(d.extras_json, r#"{"shard":3}"#);
    assert!(line(&r.out, "env_inherit").contains("NOT CARRIED"));
    let l = unit(&out, "logrotate");
    assert_eq!(l.exec, ["/usr/sbin/logrotate", "/etc/logrotate.conf"]);
    let t = l.timer.as_ref().unwrap();
    assert_eq!(t.every, Some(Duration::from_secs(3600)));
    assert_eq!(t.timeout, Some(Duration::from_secs(60)));
    assert_eq!(l.stop.timeout, Some(Duration::from_secs(5)));
    check_dir(&out);
}

#[test]
fn strict_fails_on_any_untranslated_key_and_writes_nothing() {
    let fx = fixtures();
    let out = fx.path().join("units");
    let r = import(
        &[fx.path().join("systemd/redis-server@cache.service")],
        &out,
        None,
        false,
        true,
    );
    assert_eq!(r.code, 1);
    assert!(r.err.contains("--strict"), "{}", r.err);
    assert!(r.err.contains("nothing written"));
    // The report still says what was not carried.
    assert!(line(&r.out, "Alias=redis.service").contains("NOT CARRIED"));
    assert!(unit_files(&out).is_empty());
}

#[test]
fn dry_run_prints_units_and_report_and_writes_nothing() {
    let fx = fixtures();
    let out = fx.path().join("units");
    let r = import(
        &[fx.path().join("systemd/simple.service")],
        &out,
        None,
        true,
        false,
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(!out.exists());
    assert!(r.out.contains("simple.unit ----"));
    assert!(r
        .out
        .contains("exec = [\"/usr/bin/env\", \"python3\", \"-m\", \"http.server\", \"8080\"]"));
    assert!(r.out.contains("# colonyctl import report"));
    // The printed unit is exactly what a real import writes.
    let r2 = import(
        &[fx.path().join("systemd/simple.service")],
        &out,
        None,
        false,
        false,
    );
    assert_eq!(r2.code, 0);
    let written = std::fs::read_to_string(out.join("simple.unit")).unwrap();
    assert!(r.out.contains(&written));
}

#[test]
fn never_overwrites_a_different_file_and_accepts_an_identical_one() {
    let fx = fixtures();
    let out = fx.path().join("units");
    let files = [
        fx.path().join("systemd/simple.service"),
        fx.path().join("systemd/db.service"),
    ];
    assert_eq!(import(&files, &out, None, false, false).code, 0);
    let before = std::fs::read_to_string(out.join("db.unit")).unwrap();
    // The same import again: identical files are left as they are.
    let again = import(&files, &out, None, false, false);
    assert_eq!(again.code, 0, "{}", again.err);
    assert!(again.out.contains("unchanged"));
    // A hand-edited unit is not replaced, and nothing else is written either.
    std::fs::write(out.join("simple.unit"), "exec = [\"/bin/true\"]\n").unwrap();
    std::fs::remove_file(out.join("db.unit")).unwrap();
    let r = import(&files, &out, None, false, false);
    assert_eq!(r.code, 1);
    assert!(
        r.err.contains("simple.unit exists with other content"),
        "{}",
        r.err
    );
    assert_eq!(
        std::fs::read_to_string(out.join("simple.unit")).unwrap(),
        "exec = [\"/bin/true\"]\n"
    );
    assert!(!out.join("db.unit").exists());
    // No temporary file is left behind.
    assert_eq!(unit_files(&out), vec!["simple.unit"]);
    let _ = before;
}

#[test]
fn usage_errors_exit_2() {
    let fx = fixtures();
    let out = fx.path().join("units");
    assert_eq!(import(&[], &out, None, false, false).code, 2);
    let r = import(
        &[fx.path().join("systemd/simple.service")],
        &out,
        Some("upstart"),
        false,
        false,
    );
    assert_eq!(r.code, 2);
    assert!(r.err.contains("--from upstart"));
    let r = import(
        &[fx.path().join("nope.service.d")],
        &out,
        None,
        false,
        false,
    );
    assert_eq!(r.code, 2);
    assert!(r.err.contains("no such file"));
}

#[test]
fn unknown_format_and_unknown_user() {
    let fx = fixtures();
    let out = fx.path().join("units");
    let odd = fx.path().join("odd.txt");
    std::fs::write(&odd, "hello\n").unwrap();
    let r = import(&[odd], &out, None, false, false);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("--from"), "{}", r.err);

    // A user that does not exist here makes a unit that does not load here: the import
    // fails, names the unit and the error, and writes nothing.
    let svc = fx.path().join("ghost.service");
    std::fs::write(
        &svc,
        "[Service]\nExecStart=/bin/true\nUser=colony-import-no-such-user\n",
    )
    .unwrap();
    let r = import(std::slice::from_ref(&svc), &out, None, false, false);
    assert_eq!(r.code, 1, "{}\n{}", r.out, r.err);
    let e = line(&r.err, "colony-import-no-such-user");
    assert!(
        e.contains(&*out.join("ghost.unit").display().to_string()),
        "{e}"
    );
    assert!(e.contains("user database"), "{e}");
    assert!(e.contains(&*svc.display().to_string()), "{e}");
    assert!(r.err.contains("nothing written"), "{}", r.err);
    assert!(unit_files(&out).is_empty());
}

#[test]
fn format_is_guessed_or_forced() {
    let fx = fixtures();
    let out = fx.path().join("units");
    // A supervisord file whatever its name.
    let conf = fx.path().join("programs.ini");
    std::fs::write(&conf, "[program:cat]\ncommand=cat\nautorestart=false\n").unwrap();
    let r = import(&[conf], &out, None, false, false);
    assert_eq!(r.code, 0, "{}", r.err);
    let u = unit(&out, "cat");
    assert_eq!(u.exec, ["cat"]);
    assert_eq!(u.restart.policy, RestartPolicy::Never);
    // An NColony file with an extension.
    let j = fx.path().join("app.json");
    std::fs::write(&j, r#"{"args": ["/bin/sleep", "1000"]}"#).unwrap();
    let r = import(&[j], &out, Some("ncolony"), false, false);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(unit(&out, "app").exec, ["/bin/sleep", "1000"]);

    // A directory of systemd units: every service and timer in it.
    let sys = fx.path().join("sysdir");
    std::fs::create_dir(&sys).unwrap();
    for f in [
        "backup.timer",
        "backup.service",
        "simple.service",
        "db.service",
    ] {
        std::fs::copy(fx.path().join("systemd").join(f), sys.join(f)).unwrap();
    }
    let out2 = fx.path().join("units2");
    let r = import(&[sys], &out2, None, false, false);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        unit_files(&out2),
        vec!["backup.unit", "db.unit", "simple.unit"]
    );
}

/// Write systemd unit files into `dir`: (file name, text).
fn write_units(dir: &Path, files: &[(&str, &str)]) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    files
        .iter()
        .map(|(name, text)| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        })
        .collect()
}

#[test]
fn systemd_orderings_to_units_outside_the_import_are_dropped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("units");
    // `present` is a unit of the output directory already; `elsewhere` and `db` are not.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("present.unit"), "exec = [\"/bin/true\"]\n").unwrap();
    let files = write_units(
        &dir.path().join("sd"),
        &[
            (
                "web.service",
                "[Unit]\nAfter=api.service present.service elsewhere.service\nRequires=db.service\n\
                 [Service]\nExecStart=/bin/sleep 1000\n",
            ),
            ("api.service", "[Service]\nExecStart=/bin/sleep 1000\n"),
        ],
    );
    let r = import(&files, &out, None, false, false);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    let web = unit(&out, "web");
    assert_eq!(web.after, ["api", "present"]);
    assert!(web.requires.is_empty());
    // `db` is required: not carried. `elsewhere` is installed nowhere, so systemd's own
    // ordering on it does nothing.
    let l = line(&r.out, "Requires=db.service");
    assert!(
        l.contains("NOT CARRIED") && l.contains("neither imported here"),
        "{l}"
    );
    let l = line(&r.out, "After=elsewhere.service");
    assert!(
        l.contains("same") && l.contains("not installed here"),
        "{l}"
    );
    assert!(line(&r.out, "After=api.service").contains("carried"));
    // The directory as colony-init reads it is valid.
    check_dir(&out);
}

#[test]
fn systemd_oneshot_runs_every_exec_start_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let w = work.display().to_string();
    // Words that sh would otherwise split, glob, expand or choke on; a `-` command whose
    // failure is ignored, as systemd does.
    let text = format!(
        "[Service]\nType=oneshot\n\
         ExecStart=/usr/bin/touch \"{w}/a b\" \"{w}/it's\"\n\
         ExecStart=-/bin/false\n\
         ExecStart=/usr/bin/touch {w}/*.gz \"{w}/$$HOME\" \"{w}/;x\"\n"
    );
    let stop = format!(
        "[Service]\nType=oneshot\nExecStart=/bin/false\nExecStart=/usr/bin/touch {w}/never\n"
    );
    let files = write_units(
        &dir.path().join("sd"),
        &[("steps.service", &text), ("halts.service", &stop)],
    );
    let out = dir.path().join("units");
    let r = import(&files, &out, None, false, false);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    let u = unit(&out, "steps");
    assert_eq!(u.exec[..2], ["/bin/sh", "-c"]);
    assert_eq!(u.exec.len(), 3);
    for n in 1..=3 {
        let l = line(&r.out, &format!("command {n} of 3"));
        assert!(l.contains("approx") && l.contains("/bin/sh -c"), "{l}");
    }
    // Run the command as colony-init would: each file, named exactly, in order.
    let st = std::process::Command::new(&u.exec[0])
        .args(&u.exec[1..])
        .status()
        .unwrap();
    assert!(st.success(), "{:?}", u.exec);
    let mut made = unit_files(&work);
    made.sort();
    assert_eq!(made, ["$HOME", "*.gz", ";x", "a b", "it's"], "{:?}", u.exec);

    // A command that fails ends the run: the next one does not run.
    let h = unit(&out, "halts");
    let st = std::process::Command::new(&h.exec[0])
        .args(&h.exec[1..])
        .status()
        .unwrap();
    assert!(!st.success());
    assert!(!work.join("never").exists());
}

#[test]
fn systemd_template_becomes_a_template_and_an_instance_is_imported() {
    let fx = fixtures();
    let out = fx.path().join("units");
    let tpl = fx.path().join("systemd/redis-server@.service");
    let r = import(std::slice::from_ref(&tpl), &out, None, false, false);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert_eq!(unit_files(&out), ["redis-server@.unit"]);
    let text = std::fs::read_to_string(out.join("redis-server@.unit")).unwrap();
    // The instance specifiers stay: colony fills them in per instance.
    assert!(text.contains("/etc/redis/redis-%i.conf"), "{text}");
    assert!(text.contains("(%I)"), "{text}");
    check_dir(&out);
    std::fs::remove_file(out.join("redis-server@.unit")).unwrap();

    // An instance is read from the template, with %i filled.
    let r = import(
        &[fx.path().join("systemd/redis-server@6380.service")],
        &out,
        None,
        false,
        false,
    );
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert_eq!(unit_files(&out), ["redis-server-6380.unit"]);
    let text = std::fs::read_to_string(out.join("redis-server-6380.unit")).unwrap();
    assert!(text.contains("/etc/redis/redis-6380.conf"), "{text}");
    assert!(!text.contains("redis-.conf"), "{text}");
    check_dir(&out);
}

#[test]
fn systemd_no_timeout_becomes_a_very_long_one() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_units(
        &dir.path().join("sd"),
        &[
            (
                "slow.service",
                "[Service]\nExecStart=/bin/sleep 1000\nTimeoutStopSec=infinity\n",
            ),
            (
                "waits.service",
                "[Service]\nType=notify\nExecStart=/bin/sleep 1000\nTimeoutSec=0\n",
            ),
        ],
    );
    let out = dir.path().join("units");
    let r = import(&files, &out, None, false, false);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    let ten_years = Some(Duration::from_secs(3650 * 86_400));
    assert_eq!(unit(&out, "slow").stop.timeout, ten_years);
    let w = unit(&out, "waits");
    assert_eq!(w.stop.timeout, ten_years);
    assert_eq!(w.ready.timeout, ten_years);
    for key in ["TimeoutStopSec=infinity", "TimeoutSec=0"] {
        let l = line(&r.out, key);
        assert!(l.contains("approx") && l.contains("stands for none"), "{l}");
    }
}

#[test]
fn systemd_defaults_are_carried_without_a_report_of_loss() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_units(
        &dir.path().join("sd"),
        &[(
            "plain.service",
            "[Unit]\nStartLimitIntervalSec=0\nIgnoreOnIsolate=yes\nRefuseManualStop=no\n\
             [Service]\nExecStart=/bin/sleep 1000\nPrivateDevices=no\nStandardInput=null\n\
             SuccessExitStatus=DATAERR CANTCREAT\n\
             PrivateTmp=false\nProtectSystem=no\nSendSIGKILL=yes\nIgnoreSIGPIPE=no\n\
             KillMode=control-group\nProtectProc=default\n",
        )],
    );
    let out = dir.path().join("units");
    // --strict: any key not carried fails the import.
    let r = import(&files, &out, None, false, true);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert!(!r.out.contains("NOT CARRIED"), "{}", r.out);
    assert!(line(&r.out, "PrivateDevices=no").contains("same"));
    assert!(line(&r.out, "StandardInput=null").contains("same"));
    // Exit status names are sysexits.h's.
    assert_eq!(unit(&out, "plain").restart.success_codes, [0, 65, 73]);
    // Where colony differs from what the unit asks, it still says so.
    let files = write_units(
        &dir.path().join("sd2"),
        &[(
            "tight.service",
            "[Service]\nExecStart=/bin/sleep 1000\nDeviceAllow=/dev/null rw\nStandardInput=socket\n",
        )],
    );
    let r = import(&files, &dir.path().join("units2"), None, false, false);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert!(line(&r.out, "DeviceAllow=/dev/null rw").contains("NOT CARRIED"));
    assert!(line(&r.out, "StandardInput=socket").contains("NOT CARRIED"));
}

#[test]
fn an_ordering_cycle_fails_the_import_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_units(
        &dir.path().join("sd"),
        &[
            (
                "a.service",
                "[Unit]\nAfter=b.service\n[Service]\nExecStart=/bin/sleep 1000\n",
            ),
            (
                "b.service",
                "[Unit]\nAfter=a.service\n[Service]\nExecStart=/bin/sleep 1000\n",
            ),
        ],
    );
    let out = dir.path().join("units");
    let r = import(&files, &out, None, false, false);
    assert_eq!(r.code, 1, "{}\n{}", r.out, r.err);
    let l = line(&r.err, "dependency cycle");
    assert!(l.contains("a.unit") || l.contains("b.unit"), "{l}");
    assert!(l.contains("imported from"), "{l}");
    assert!(r.err.contains("nothing written"), "{}", r.err);
    assert!(unit_files(&out).is_empty());
}

#[test]
fn systemd_spans_below_colonys_floors_are_raised_to_them() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_units(
        &dir.path().join("sd"),
        &[
            (
                "fast.service",
                "[Service]\nType=notify\nExecStart=/bin/sleep 1000\nWatchdogSec=20ms\n",
            ),
            ("often.timer", "[Timer]\nOnUnitActiveSec=200ms\n"),
            ("often.service", "[Service]\nExecStart=/bin/true\n"),
        ],
    );
    let out = dir.path().join("units");
    let r = import(&files, &out, None, false, false);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert_eq!(
        unit(&out, "fast").ready.watchdog,
        Some(units::model::limits::MIN_PERIOD)
    );
    let often = unit(&out, "often");
    assert_eq!(
        often.timer.as_ref().unwrap().every,
        Some(units::model::limits::MIN_EVERY)
    );
    assert!(line(&r.out, "WatchdogSec=20ms").contains("approx"));
    assert!(line(&r.out, "OnUnitActiveSec=200ms").contains("approx"));
}

#[test]
fn supervisord_startsecs_and_startretries_become_settle_and_max_failures() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("supervisord.conf");
    std::fs::write(
        &conf,
        "[program:plain]\ncommand=/bin/sleep 1000\n\
         [program:slow]\ncommand=/bin/sleep 1000\nstartsecs=10\nstartretries=0\n\
         [program:instant]\ncommand=/bin/sleep 1000\nstartsecs=0\n\
         [program:once]\ncommand=/bin/sleep 1000\nstartretries=2\nautorestart=false\n\
         [program:stubborn]\ncommand=/bin/sleep 1000\nstartretries=5000000\n",
    )
    .unwrap();
    let out = dir.path().join("units");
    let r = import(&[conf], &out, None, false, false);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);

    // Not set: supervisord's startsecs=1 and startretries=3 (four tries in all).
    let plain = unit(&out, "plain");
    assert_eq!(plain.ready.settle, Duration::from_secs(1));
    assert_eq!(plain.restart.max_failures, Some(4));
    let l = line(&r.out, "startsecs= (not set: 1)");
    assert!(
        l.contains("ready.settle = \"1s\"") && l.contains("failed start"),
        "{l}"
    );
    let l = line(&r.out, "startretries= (not set: 3)");
    assert!(
        l.contains("carried")
            && l.contains("max_failures = 4")
            && l.contains("the first start and 3 retries"),
        "{l}"
    );

    let slow = unit(&out, "slow");
    assert_eq!(slow.ready.settle, Duration::from_secs(10));
    assert_eq!(slow.restart.threshold, Some(Duration::from_secs(10)));
    assert_eq!(slow.restart.max_failures, Some(1));
    assert!(line(&r.out, "startsecs=10").contains("grows the backoff"));

    // startsecs=0: up at once, no settle.
    let instant = unit(&out, "instant");
    assert_eq!(instant.ready.settle, Duration::ZERO);
    assert_eq!(instant.restart.threshold, Some(Duration::ZERO));
    assert!(line(&r.out, "startsecs=0").contains("no [ready] settle"));

    // autorestart=false: supervisord still retries a failed start, colony does not.
    let once = unit(&out, "once");
    assert_eq!(once.restart.policy, RestartPolicy::Never);
    assert_eq!(once.restart.max_failures, Some(3));
    let l = line(&r.out, "startretries=2");
    assert!(l.contains("approx") && l.contains("still retries"), "{l}");

    // Past colony's bound: its largest.
    assert_eq!(
        unit(&out, "stubborn").restart.max_failures,
        Some(units::model::limits::MAX_FAILURES)
    );
    assert!(line(&r.out, "startretries=5000000").contains("approx"));
    check_dir(&out);
}

#[test]
fn systemd_start_limit_becomes_max_failures_where_a_crash_loop_reaches_it() {
    let dir = tempfile::tempdir().unwrap();
    let svc = |extra: &str| {
        format!("[Unit]\n{extra}\n[Service]\nExecStart=/bin/sleep 1000\nRestart=always\n")
    };
    let files = write_units(
        &dir.path().join("sd"),
        &[
            ("burst.service", &svc("StartLimitBurst=3\nStartLimitIntervalSec=60")),
            ("dflt.service", &svc("")),
            ("legacy.service", "[Service]\nExecStart=/bin/sleep 1000\nRestart=on-failure\nStartLimitInterval=30\nStartLimitBurst=2\n"),
            ("total.service", &format!("{}RestartSec=1h\n", svc("StartLimitIntervalSec=infinity\nStartLimitBurst=4"))),
            ("spaced.service", &format!("{}RestartSec=5s\n", svc("StartLimitBurst=3\nStartLimitIntervalSec=10s"))),
            ("nolimit.service", &svc("StartLimitIntervalSec=0")),
            ("norestart.service", "[Unit]\nStartLimitBurst=2\n[Service]\nExecStart=/bin/sleep 1000\n"),
            ("reboots.service", &svc("StartLimitAction=reboot")),
        ],
    );
    let out = dir.path().join("units");
    let r = import(&files, &out, None, false, false);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    let max = |name: &str| unit(&out, name).restart.max_failures;

    // Three quick restarts fit in 60s: systemd gives up after 3 starts.
    assert_eq!(max("burst"), Some(3));
    for key in ["StartLimitBurst=3", "StartLimitIntervalSec=60"] {
        let l = line(&r.out, key);
        assert!(
            l.contains("approx")
                && l.contains("max_failures = 3")
                && l.contains("counts failed starts in a row"),
            "{l}"
        );
    }
    // Not set: systemd's 5 starts in 10s, reached at RestartSec=100ms.
    assert_eq!(max("dflt"), Some(5));
    assert_eq!(max("reboots"), Some(5));
    let l = line(&r.out, "StartLimitBurst= (not set: 5 starts in 10s)");
    assert!(
        l.contains("approx") && l.contains("max_failures = 5"),
        "{l}"
    );
    // The old names, in [Service].
    assert_eq!(max("legacy"), Some(2));
    // infinity: the total number of starts.
    assert_eq!(max("total"), Some(4));
    // Three starts 5s apart do not fit in 10s: systemd never gives up, nor does colony.
    assert_eq!(max("spaced"), None);
    let spaced: Vec<&str> = r
        .out
        .lines()
        .filter(|l| l.contains("spaced.service:") && l.contains("StartLimit"))
        .collect();
    assert_eq!(spaced.len(), 2, "{}", r.out);
    assert!(spaced
        .iter()
        .all(|l| l.contains("same") && l.contains("never reaches")));
    // No limit, and no restarts to limit.
    assert_eq!(max("nolimit"), None);
    assert!(line(&r.out, "StartLimitIntervalSec=0").contains("no start rate limit"));
    assert_eq!(max("norestart"), None);
    assert!(line(&r.out, "norestart.service:2  StartLimitBurst=2").contains("nothing is restarted"));
    let l = line(&r.out, "StartLimitAction=reboot");
    assert!(l.contains("NOT CARRIED") && l.contains("essential"), "{l}");
    check_dir(&out);
}

#[test]
fn systemd_sandbox_directives_become_sandbox_keys() {
    use units::sandbox::{ListMode, ProtectHome, ProtectSystem, SyscallAction};
    let dir = tempfile::tempdir().unwrap();
    let files = write_units(
        &dir.path().join("sd"),
        &[(
            "redis.service",
            "[Service]\nExecStart=/usr/bin/redis-server\nProtectSystem=strict\nProtectHome=yes\nPrivateTmp=yes\nPrivateDevices=true\nPrivateNetwork=no\nReadWritePaths=-/var/lib/redis -/var/log/redis\nReadWritePaths=-/run/redis\nReadOnlyPaths=+/etc/redis\nInaccessiblePaths=-/opt/secret\nBindPaths=/srv/data:/data\nBindReadOnlyPaths=/srv/conf:/conf\nProtectKernelTunables=yes\nProtectKernelModules=yes\nProtectKernelLogs=yes\nProtectControlGroups=yes\nSystemCallFilter=@system-service\nSystemCallFilter=~@privileged @resources @known\nSystemCallErrorNumber=EPERM\nSystemCallArchitectures=native\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\nMemoryDenyWriteExecute=true\nRestrictNamespaces=true\nRestrictRealtime=true\nRestrictSUIDSGID=true\nLockPersonality=true\nProtectClock=yes\nProtectHostname=yes\nProtectProc=invisible\nDeviceAllow=/dev/null rw\n",
        )],
    );
    let out = dir.path().join("units");
    let r = import(&files, &out, None, false, false);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    let u = unit(&out, "redis");
    let s = u.sandbox.expect("a [sandbox] section");
    assert_eq!(s.protect_system, ProtectSystem::Strict);
    assert_eq!(s.protect_home, ProtectHome::Yes);
    assert!(s.private_tmp && s.private_devices && !s.private_network);
    assert_eq!(s.read_write_paths.len(), 3);
    assert!(s.read_write_paths.iter().all(|p| p.optional));
    // The bind's target made read-only, and the + path taken as the host's.
    assert_eq!(s.read_only_paths.len(), 2);
    assert_eq!(s.bind_paths.len(), 2);
    assert!(s.protect_kernel_tunables && s.protect_kernel_modules && s.protect_kernel_logs);
    assert!(s.protect_control_groups && s.memory_deny_write_execute);
    assert!(s.restrict_namespaces && s.restrict_realtime && s.restrict_suid_sgid);
    assert!(s.lock_personality);
    let f = s.system_call_filter.unwrap();
    assert_eq!(f.mode, ListMode::Allow);
    assert!(f.names.contains("read") && !f.names.contains("setuid") && !f.names.contains("nice"));
    assert_eq!(
        s.system_call_error_number,
        SyscallAction::Errno(libc::EPERM)
    );
    assert_eq!(s.restrict_address_families.unwrap().families.len(), 3);
    // What differs is said.
    assert!(line(&r.out, "@known").contains("@known"), "{}", r.out);
    assert!(line(&r.out, "ReadOnlyPaths=+/etc/redis").contains("approx"));
    assert!(line(&r.out, "BindReadOnlyPaths").contains("approx"));
    assert!(s.protect_clock && s.protect_hostname);
    assert_eq!(s.protect_proc, units::sandbox::ProtectProc::Invisible);
    assert!(line(&r.out, "ProtectProc=invisible").contains("carried"));
    assert!(line(&r.out, "DeviceAllow").contains("NOT CARRIED"));
}

#[test]
fn systemd_oneshot_becomes_a_boot_task() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_units(
        &dir.path().join("sd"),
        &[
            (
                "networking.service",
                "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/sbin/ifup -a\n\
                 TimeoutStartSec=5min\n",
            ),
            (
                "migrate.service",
                "[Service]\nType=oneshot\nExecStart=/bin/true\n",
            ),
            (
                "app.service",
                "[Unit]\nAfter=networking.service migrate.service\n\
                 [Service]\nExecStart=/bin/sleep 1000\n",
            ),
        ],
    );
    let out = dir.path().join("units");
    let r = import(&files, &out, None, false, false);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    let net = unit(&out, "networking");
    assert_eq!(net.ready.kind, units::model::ReadyType::Exited);
    assert_eq!(net.ready.timeout, Some(std::time::Duration::from_secs(300)));
    assert_eq!(net.restart.policy, units::model::RestartPolicy::Never);
    let l = line(&r.out, "RemainAfterExit=yes");
    assert!(l.contains("exited"), "{l}");
    let m = unit(&out, "migrate");
    assert_eq!(m.ready.kind, units::model::ReadyType::Exited);
    let lines: Vec<&str> = r
        .out
        .lines()
        .filter(|l| l.contains("Type=oneshot"))
        .collect();
    assert_eq!(lines.len(), 2, "{}", r.out);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("carried") && l.contains("exited")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("approx") && l.contains("inactive")),
        "{lines:?}"
    );
    assert_eq!(unit(&out, "app").after, ["networking", "migrate"]);
    check_dir(&out);
}

#[test]
fn systemd_exec_keys_and_a_socket_unit_become_exec_env_keys_and_socket() {
    use units::exec_env::{CredentialSource, DirKind, IfMissing, Resource, WorkDir, INFINITY};
    use units::socket::Listen;
    let fx = fixtures();
    let out = fx.path().join("units");
    let dir = fx.path().join("exec_env");
    let r = import(
        &[dir.join("echo.socket"), dir.join("echo.service")],
        &out,
        None,
        false,
        false,
    );
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert_eq!(unit_files(&out), vec!["echo.unit"]);
    check_dir(&out);
    let u = unit(&out, "echo");
    assert_eq!(u.exec, ["/usr/bin/echo-server", "--port", "7007"]);
    let e = &u.exec_env;
    assert_eq!(e.environment_files.len(), 2);
    assert_eq!(e.environment_files[1].missing, IfMissing::Ignore);
    assert_eq!(e.work_dir, WorkDir::Home);
    assert_eq!(e.work_dir_missing, IfMissing::Ignore);
    let names = |k| {
        e.dirs(k)
            .map(|d| (d.name.display().to_string(), d.mode))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(DirKind::Runtime),
        [("echo".into(), 0o750), ("echo/sub".to_string(), 0o750)]
    );
    assert_eq!(names(DirKind::State), [("echo".to_string(), 0o755)]);
    assert_eq!(names(DirKind::Cache), [("echo".to_string(), 0o755)]);
    assert_eq!(names(DirKind::Logs), [("echo".to_string(), 0o700)]);
    assert_eq!(
        (e.nice, e.oom_score_adj, e.io_weight),
        (Some(5), Some(-100), Some(50))
    );
    let lim = |r| {
        e.limits
            .iter()
            .find(|l| l.resource == r)
            .map(|l| (l.soft, l.hard))
    };
    assert_eq!(lim(Resource::Core), Some((0, 0)));
    assert_eq!(lim(Resource::Memlock), Some((64 << 20, 64 << 20)));
    assert_eq!(lim(Resource::Nofile), Some((1024, 524288)));
    assert_eq!(lim(Resource::Nproc), Some((INFINITY, INFINITY)));
    assert_eq!(lim(Resource::Cpu), None);
    assert_eq!(
        e.credentials,
        [
            (
                "tls_key".to_string(),
                CredentialSource::File("/etc/ssl/private/echo.key".into())
            ),
            ("token".to_string(), CredentialSource::Store("token".into())),
            (
                "zone".to_string(),
                CredentialSource::Store("dns.zone".into())
            ),
        ]
    );
    let s = u.socket.as_deref().unwrap();
    assert!(s.on_demand);
    assert_eq!((s.mode, s.backlog), (0o660, 128));
    assert_eq!(
        s.listen,
        [
            Listen::Tcp("127.0.0.1:7007".parse().unwrap()),
            Listen::Unix("/run/echo/echo.sock".into()),
            Listen::Udp("0.0.0.0:7008".parse().unwrap()),
        ]
    );
    let rep = &r.out;
    assert!(line(rep, "LimitCPU=5min").contains("NOT CARRIED"));
    assert!(line(rep, "LoadCredential=token").contains("carried"));
    assert!(e.runtime_preserve);
    assert!(line(rep, "RuntimeDirectoryPreserve=yes").contains("carried"));
    assert!(line(rep, "LoadCredential=bad/id").contains("NOT CARRIED"));
    assert!(line(rep, "ListenDatagram=7008").contains("approx"));
    assert!(line(rep, "Nice=5").contains("carried"));
    assert!(line(rep, "ListenStream=127.0.0.1:7007").contains("carried"));
}

#[test]
fn a_socket_without_its_service_is_reported() {
    let fx = fixtures();
    let out = fx.path().join("units");
    let r = import(
        &[fx.path().join("exec_env/echo.socket")],
        &out,
        None,
        false,
        false,
    );
    assert!(
        line(&r.out, "echo.socket").contains("import both together"),
        "{}",
        r.out
    );
}

/// A unit file and an alias of it (a link, as udev.service is to systemd-udevd.service)
/// imported together make one unit, not two running the same daemon.
#[test]
fn systemd_alias_links_import_once() {
    let dir = tempfile::tempdir().unwrap();
    let sd = dir.path().join("sd");
    let mut files = write_units(
        &sd,
        &[("udevd.service", "[Service]\nExecStart=/bin/sleep 1000\n")],
    );
    std::os::unix::fs::symlink("udevd.service", sd.join("udev.service")).unwrap();
    files.insert(0, sd.join("udev.service"));
    let out = dir.path().join("units");
    let r = import(&files, &out, None, false, false);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert_eq!(unit_files(&out), vec!["udevd.unit"]);
    assert!(line(&r.out, "udev.service").contains("an alias of udevd.service"));
    check_dir(&out);
}

#[test]
fn supervisord_minfds_and_minprocs_become_every_units_limits() {
    let d = tempfile::tempdir().unwrap();
    let conf = d.path().join("supervisord.conf");
    std::fs::write(
        &conf,
        "[supervisord]\nminfds=4096\nminprocs=300\n[program:a]\ncommand=/bin/cat\n[program:b]\ncommand=/bin/cat\n",
    )
    .unwrap();
    let out = d.path().join("units");
    let r = import(&[conf], &out, Some("supervisord"), false, false);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    check_dir(&out);
    for n in ["a", "b"] {
        let u = unit(&out, n);
        assert_eq!(u.nofile, Some(4096));
        let nproc = u
            .exec_env
            .limits
            .iter()
            .find(|l| l.resource == units::exec_env::Resource::Nproc)
            .map(|l| (l.soft, l.hard));
        assert_eq!(nproc, Some((300, 300)));
    }
    assert!(line(&r.out, "minfds=4096").contains("limits"));
}

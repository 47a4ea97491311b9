//! Every key of a unit file, in its valid and invalid forms (table-driven).

use std::path::Path;
use std::time::Duration;

use units::diag::Diagnostic;
use units::model::{HealthCheck, ReadyType, RestartPolicy, Unit};
use units::parse::parse_unit;

const EXEC: &str = "exec = [\"/bin/true\"]\n";

fn parse(text: &str) -> Result<Unit, Vec<Diagnostic>> {
    parse_unit(Path::new("/etc/colony/units/t.unit"), text)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn defaults_of_a_minimal_unit() {
    let u = parse(EXEC).unwrap();
    assert_eq!(u.name, "t");
    assert_eq!(u.path, Path::new("/etc/colony/units/t.unit"));
    assert_eq!(u.exec, vec!["/bin/true"]);
    assert!(u.enabled);
    assert!(!u.essential);
    assert!(!u.no_new_privileges);
    assert_eq!(u.extras_json, "{}");
    assert_eq!(u.restart.policy, RestartPolicy::Always);
    assert_eq!(u.restart.success_codes, vec![0]);
    assert_eq!(u.restart.delay_min, None);
    assert_eq!(u.stop.signal, libc::SIGTERM);
    assert_eq!(u.stop.timeout, None);
    assert_eq!(u.ready.kind, ReadyType::Started);
    assert_eq!(u.ready.timeout, None);
    assert_eq!(u.log.max_size, 10 << 20);
    assert_eq!(u.log.keep, 5);
    assert_eq!(u.log.file, None);
    assert!(u.log.console);
    assert!(u.health.is_none() && u.heartbeat.is_none() && u.timer.is_none());
    assert!(!u.resources.any());
    assert_eq!(u.capabilities, None);
    assert_eq!(u.umask, None);
    assert_eq!(u.nofile, None);
    assert_eq!(u.identity, Default::default());
}

type Check = fn(&Unit) -> bool;

/// Each text (after `exec`, unless it sets `exec` itself) parses, and the check holds.
#[test]
fn valid_forms() {
    let cases: &[(&str, Check)] = &[
        ("description = \"Redis cache\"", |u| {
            u.description.as_deref() == Some("Redis cache")
        }),
        ("exec = [\"redis-server\", \"--port\", \"6390\"]", |u| {
            u.exec == ["redis-server", "--port", "6390"]
        }),
        ("exec = [\"/usr/bin/env\", \"\"]", |u| u.exec.len() == 2),
        ("directory = \"/var/lib/redis\"", |u| {
            u.directory.as_deref() == Some(Path::new("/var/lib/redis"))
        }),
        ("environment = { LANG = \"C.UTF-8\", EMPTY = \"\" }", |u| {
            u.environment.get("LANG").map(String::as_str) == Some("C.UTF-8")
                && u.environment.get("EMPTY").map(String::as_str) == Some("")
        }),
        ("user = \"root\"", |u| {
            u.identity.user.as_ref().map(|x| (x.uid, x.primary_gid)) == Some((0, 0))
                && u.identity.gid == Some(0)
        }),
        ("user = 0", |u| u.identity.user.as_ref().map(|x| x.name.as_str()) == Some("root")),
        ("user = \"4000123\"", |u| {
            u.identity.user.as_ref().map(|x| (x.uid, x.primary_gid)) == Some((4000123, 4000123))
        }),
        ("user = \"root\"\ngroup = 4000", |u| u.identity.gid == Some(4000)),
        ("group = \"root\"", |u| u.identity.gid == Some(0) && u.identity.user.is_none()),
        ("supplementary_groups = [\"root\", 4001]", |u| {
            u.identity.supplementary_groups == Some(vec![0, 4001])
        }),
        ("supplementary_groups = []", |u| u.identity.supplementary_groups == Some(vec![])),
        ("umask = \"0027\"", |u| u.umask == Some(0o027)),
        ("umask = \"022\"", |u| u.umask == Some(0o022)),
        ("umask = 0o077", |u| u.umask == Some(0o077)),
        ("nofile = 65536", |u| u.nofile == Some(65536)),
        ("capabilities = [\"CAP_NET_BIND_SERVICE\", \"chown\"]", |u| {
            u.capabilities == Some((1 << 10) | 1)
        }),
        ("capabilities = []", |u| u.capabilities == Some(0)),
        ("no_new_privileges = true", |u| u.no_new_privileges),
        ("after = [\"db\", \"db.unit\", \"cache\"]", |u| u.after == ["db", "cache"]),
        ("requires = [\"db\"]", |u| u.requires == ["db"]),
        ("tags = [\"cache\", \"web-1\"]", |u| u.tags == ["cache", "web-1"]),
        ("enabled = false", |u| !u.enabled),
        ("essential = true", |u| u.essential),
        ("extras = { shard = 3, name = \"x\", f = 1.5, list = [1, 2], t = { a = true } }", |u| {
            let v: serde_json::Value = serde_json::from_str(&u.extras_json).unwrap();
            v == serde_json::json!({"shard": 3, "name": "x", "f": 1.5, "list": [1, 2], "t": {"a": true}})
        }),
        ("extras = {}", |u| u.extras_json == "{}"),
        ("[restart]\npolicy = \"on-failure\"", |u| u.restart.policy == RestartPolicy::OnFailure),
        ("[restart]\npolicy = \"never\"", |u| u.restart.policy == RestartPolicy::Never),
        ("[restart]\nsuccess_codes = [0, 143, 255]", |u| u.restart.success_codes == [0, 143, 255]),
        ("[restart]\ndelay_min = \"500ms\"\ndelay_max = \"1h\"\nthreshold = \"2s\"", |u| {
            u.restart.delay_min == Some(Duration::from_millis(500))
                && u.restart.delay_max == Some(secs(3600))
                && u.restart.threshold == Some(secs(2))
        }),
        ("[restart]\nmax_failures = 5", |u| u.restart.max_failures == Some(5)),
        ("[ready]\nsettle = \"1s\"", |u| u.ready.settle == secs(1) && u.ready.kind == ReadyType::Started),
        ("[ready]\ntype = \"notify\"\nsettle = \"500ms\"", |u| u.ready.settle == Duration::from_millis(500)),
        ("[stop]\nsignal = \"SIGINT\"\ntimeout = \"1m 30s\"", |u| {
            u.stop.signal == libc::SIGINT && u.stop.timeout == Some(secs(90))
        }),
        ("[stop]\nsignal = \"QUIT\"", |u| u.stop.signal == libc::SIGQUIT),
        ("[stop]\nsignal = 9", |u| u.stop.signal == 9),
        ("[ready]\ntype = \"started\"", |u| u.ready.kind == ReadyType::Started && u.ready.timeout.is_none()),
        ("[ready]\ntype = \"notify\"\nwatchdog = \"30s\"", |u| {
            u.ready.kind == ReadyType::Notify
                && u.ready.watchdog == Some(secs(30))
                && u.ready.timeout == Some(secs(90))
        }),
        ("[ready]\ntype = \"tcp\"\naddress = \"127.0.0.1:6390\"\ntimeout = \"5s\"", |u| {
            u.ready.kind == ReadyType::Tcp("127.0.0.1:6390".into()) && u.ready.timeout == Some(secs(5))
        }),
        ("[ready]\ntype = \"tcp\"\naddress = \"[::1]:80\"", |u| u.ready.kind == ReadyType::Tcp("[::1]:80".into())),
        ("[ready]\ntype = \"file\"\npath = \"/run/redis/ready\"", |u| {
            u.ready.kind == ReadyType::File("/run/redis/ready".into())
        }),
        ("[ready]\ntype = \"exited\"", |u| {
            u.ready.kind == ReadyType::Exited
                && u.ready.timeout.is_none()
                && u.restart.policy == RestartPolicy::Never
        }),
        ("[ready]\ntype = \"exited\"\ntimeout = \"10m\"\n[restart]\npolicy = \"on-failure\"", |u| {
            u.ready.kind == ReadyType::Exited
                && u.ready.timeout == Some(secs(600))
                && u.restart.policy == RestartPolicy::OnFailure
        }),
        ("[health]\nhttp = \"http://127.0.0.1:6391/healthz\"", |u| {
            u.health.as_ref().is_some_and(|h| {
                h.check == HealthCheck::Http("http://127.0.0.1:6391/healthz".into())
                    && h.period == secs(10)
                    && h.timeout == secs(2)
                    && h.max_bad == 3
                    && h.grace == secs(30)
            })
        }),
        ("[health]\ntcp = \"localhost:80\"\nperiod = \"5s\"\ntimeout = \"1s\"\nmax_bad = 1\ngrace = \"0\"", |u| {
            u.health.as_ref().is_some_and(|h| {
                h.check == HealthCheck::Tcp("localhost:80".into())
                    && h.period == secs(5)
                    && h.timeout == secs(1)
                    && h.max_bad == 1
                    && h.grace == Duration::ZERO
            })
        }),
        ("[health]\nexec = [\"/bin/check\", \"-q\"]", |u| {
            u.health.as_ref().is_some_and(|h| h.check == HealthCheck::Exec(vec!["/bin/check".into(), "-q".into()]))
        }),
        ("[resources]\nmemory_max = \"256M\"\nmemory_high = \"200M\"\ncpu_max = \"150%\"\ncpu_weight = 100\ntasks_max = 64", |u| {
            let r = &u.resources;
            r.memory_max == Some(256 << 20)
                && r.memory_high == Some(200 << 20)
                && r.cpu_max == Some(150)
                && r.cpu_weight == Some(100)
                && r.tasks_max == Some(64)
        }),
        ("[resources]\nmemory_max = 1048576", |u| u.resources.memory_max == Some(1 << 20)),
        ("[heartbeat]", |u| {
            u.heartbeat.as_ref().is_some_and(|h| h.file.is_none() && h.period == secs(30) && h.grace == secs(60))
        }),
        ("[heartbeat]\nfile = \"/run/x/beat\"\nperiod = \"5s\"\ngrace = \"10s\"", |u| {
            u.heartbeat.as_ref().is_some_and(|h| {
                h.file.as_deref() == Some(Path::new("/run/x/beat")) && h.period == secs(5) && h.grace == secs(10)
            })
        }),
        ("[timer]\nevery = \"15m\"", |u| {
            u.timer.as_ref().is_some_and(|t| t.every == Some(secs(900)) && !t.persistent && t.calendar.is_none())
        }),
        ("[timer]\ncalendar = \"0 3 * * *\"\npersistent = true\ntimeout = \"1h\"", |u| {
            u.timer.as_ref().is_some_and(|t| {
                t.calendar.as_ref().map(|c| c.text.as_str()) == Some("0 3 * * *")
                    && t.persistent
                    && t.timeout == Some(secs(3600))
            })
        }),
        ("[timer]\ncalendar = \"30 0 3 * * *\"", |u| u.timer.as_ref().is_some_and(|t| t.calendar.is_some())),
        ("[timer]\non_boot = \"2m\"", |u| u.timer.as_ref().is_some_and(|t| t.on_boot == Some(secs(120)))),
        ("[log]\nfile = \"/var/log/x.log\"\nmax_size = \"1G\"\nkeep = 0", |u| {
            u.log.file.as_deref() == Some(Path::new("/var/log/x.log")) && u.log.max_size == 1 << 30 && u.log.keep == 0
        }),
        // The floors and ceilings themselves are allowed.
        ("[health]\ntcp = \"a:1\"\nperiod = \"100ms\"\ntimeout = \"100ms\"", |u| {
            u.health.as_ref().is_some_and(|h| h.period == Duration::from_millis(100) && h.timeout == Duration::from_millis(100))
        }),
        ("[heartbeat]\nperiod = \"100ms\"", |u| u.heartbeat.as_ref().is_some_and(|h| h.period == Duration::from_millis(100))),
        ("[ready]\ntype = \"notify\"\nwatchdog = \"100ms\"", |u| u.ready.watchdog == Some(Duration::from_millis(100))),
        ("[timer]\nevery = \"1s\"", |u| u.timer.as_ref().is_some_and(|t| t.every == Some(secs(1)))),
        ("[log]\nmax_size = \"16K\"\nkeep = 100", |u| u.log.max_size == 16 << 10 && u.log.keep == 100),
        // No floor: a first restart may be at once, and the core spaces repeated ones.
        ("[restart]\ndelay_min = \"0s\"\ndelay_max = \"0s\"\nthreshold = \"0s\"", |u| {
            u.restart.delay_min == Some(Duration::ZERO) && u.restart.threshold == Some(Duration::ZERO)
        }),
        ("[log]\nconsole = false", |u| !u.log.console),
        ("restart.policy = \"never\"", |u| u.restart.policy == RestartPolicy::Never),
        ("stop = { signal = \"SIGHUP\" }", |u| u.stop.signal == libc::SIGHUP),
    ];
    for (snippet, check) in cases {
        let text = if snippet.starts_with("exec") {
            format!("{snippet}\n")
        } else {
            format!("{EXEC}{snippet}\n")
        };
        match parse(&text) {
            Ok(u) => assert!(check(&u), "check failed for:\n{text}\n{u:#?}"),
            Err(e) => panic!("rejected:\n{text}\n{}", units::diag::render(&e)),
        }
    }
}

/// Each text gives exactly one diagnostic: (text, "LINE:COL: KEY: message fragment").
/// Line 1 is `exec` unless the text starts with `exec` or `#noexec`.
#[test]
fn invalid_forms() {
    let cases: &[(&str, &str, &str)] = &[
        // top level
        (
            "descripton = \"x\"",
            "2:1: descripton",
            "unknown key `descripton`; did you mean `description`?",
        ),
        (
            "policy = \"never\"",
            "2:1: policy",
            "`policy` is a key of [restart]",
        ),
        (
            "zzzzzz = 1",
            "2:1: zzzzzz",
            "the known keys are: description, exec",
        ),
        (
            "description = 3",
            "2:15: description",
            "expected a string, found the integer 3",
        ),
        (
            "#noexec\ndescription = \"x\"",
            "1:1: exec",
            "missing `exec`",
        ),
        (
            "exec = \"/bin/true\"",
            "1:8: exec",
            "expected an argv array",
        ),
        ("exec = []", "1:8: exec", "is empty"),
        (
            "exec = [\"\"]",
            "1:9: exec",
            "the program (first element) is empty",
        ),
        (
            "exec = [\"bin/true\"]",
            "1:9: exec",
            "`bin/true` is a relative path",
        ),
        (
            "exec = [\"/bin/true\", 3]",
            "1:22: exec",
            "expected strings, found the integer 3",
        ),
        (
            "directory = \"var/lib\"",
            "2:13: directory",
            "is not an absolute path",
        ),
        (
            "environment = [\"A=1\"]",
            "2:15: environment",
            "expected a table such as { LANG = \"C.UTF-8\" }",
        ),
        (
            "environment = { PORT = 80 }",
            "2:24: environment.PORT",
            "environment values are strings: write PORT = \"80\"",
        ),
        (
            "environment = { \"A=B\" = \"x\" }",
            "2:17: environment",
            "not a valid variable name",
        ),
        (
            "user = \"no-such-user-xyz\"",
            "2:8: user",
            "no user `no-such-user-xyz`",
        ),
        ("user = true", "2:8: user", "expected a user name or uid"),
        ("user = -1", "2:8: user", "a uid is not negative"),
        ("group = -1", "2:9: group", "a gid is not negative"),
        (
            "restrat = { policy = \"never\" }",
            "2:1: restrat",
            "did you mean `restart`?",
        ),
        (
            "group = \"no-such-group-xyz\"",
            "2:9: group",
            "no group `no-such-group-xyz`",
        ),
        (
            "supplementary_groups = \"adm\"",
            "2:24: supplementary_groups",
            "expected an array of group names or gids",
        ),
        (
            "supplementary_groups = [\"no-such-group-xyz\"]",
            "2:25: supplementary_groups",
            "no group",
        ),
        ("umask = 27", "2:9: umask", "a umask is octal"),
        (
            "nofile = 0",
            "2:10: nofile",
            "expected an integer from 1 to 1073741816",
        ),
        ("umask = \"0999\"", "2:9: umask", "is not an octal umask"),
        (
            "capabilities = [\"CAP_NET_BIND_SERVISE\"]",
            "2:17: capabilities",
            "did you mean `CAP_NET_BIND_SERVICE`?",
        ),
        (
            "capabilities = \"CAP_CHOWN\"",
            "2:16: capabilities",
            "expected an array of capability names",
        ),
        (
            "no_new_privileges = \"yes\"",
            "2:21: no_new_privileges",
            "expected true or false",
        ),
        (
            "after = [\"bad name\"]",
            "2:10: after",
            "is not a valid unit name",
        ),
        ("after = [\"t\"]", "2:9: after", "names itself"),
        (
            "requires = \"db\"",
            "2:12: requires",
            "expected an array of unit names",
        ),
        ("tags = [\"@web\"]", "2:9: tags", "is not a valid tag name"),
        (
            "enabled = \"true\"",
            "2:11: enabled",
            "expected true or false without quotes",
        ),
        (
            "essential = 1",
            "2:13: essential",
            "expected true or false, found the integer 1",
        ),
        (
            "extras = 3",
            "2:10: extras",
            "expected a table such as { shard = 3 }",
        ),
        (
            "extras = { x = nan }",
            "2:16: extras",
            "cannot be given as JSON",
        ),
        (
            "restart = \"always\"",
            "2:1: restart",
            "`restart` is a section",
        ),
        (
            "[[timer]]\nevery = \"1s\"",
            "2:3: timer",
            "`timer` is a section, found an array",
        ),
        // [restart]
        (
            "[restart]\nrestrat = 1",
            "3:1: restart.restrat",
            "[restart] knows: policy, success_codes",
        ),
        (
            "[restart]\npolicyy = \"never\"",
            "3:1: restart.policyy",
            "did you mean `policy`?",
        ),
        (
            "[restart]\npolicy = \"on_failure\"",
            "3:10: restart.policy",
            "did you mean `on-failure`?",
        ),
        (
            "[restart]\npolicy = \"sometimes\"",
            "3:10: restart.policy",
            "expected one of always, on-failure, never",
        ),
        (
            "[restart]\nsuccess_codes = [256]",
            "3:18: restart.success_codes",
            "exit codes are 0 to 255",
        ),
        (
            "[restart]\nsuccess_codes = 0",
            "3:17: restart.success_codes",
            "expected an array of exit codes",
        ),
        (
            "[restart]\ndelay_min = 5",
            "3:13: restart.delay_min",
            "write \"5s\" for 5 seconds",
        ),
        (
            "[restart]\ndelay_max = \"1 parsec\"",
            "3:13: restart.delay_max",
            "a duration looks like",
        ),
        (
            "[restart]\ndelay_min = \"2m\"\ndelay_max = \"1m\"",
            "4:1: restart.delay_max",
            "shorter than delay_min",
        ),
        (
            "[restart]\nthreshold = true",
            "3:13: restart.threshold",
            "expected a duration string",
        ),
        (
            "[restart]\nafter = [\"db\"]",
            "3:1: restart.after",
            "`after` is a top-level key: put it above the first [section]",
        ),
        // [stop]
        (
            "[stop]\nsignal = \"SIGTREM\"",
            "3:10: stop.signal",
            "did you mean `SIGTERM`?",
        ),
        (
            "[stop]\nsignal = 0",
            "3:10: stop.signal",
            "no signal has the number 0",
        ),
        (
            "[stop]\nsignal = [\"TERM\"]",
            "3:10: stop.signal",
            "expected a signal such as \"SIGTERM\"",
        ),
        (
            "[stop]\ntimeout = \"soon\"",
            "3:11: stop.timeout",
            "bad duration `soon`",
        ),
        (
            "[stop]\nperiod = \"1s\"",
            "3:1: stop.period",
            "`period` is a key of [health] or [heartbeat], not of [stop]",
        ),
        // [ready]
        (
            "[ready]\ntype = \"notfy\"",
            "3:8: ready.type",
            "did you mean `notify`?",
        ),
        (
            "[ready]\ntype = \"tcp\"",
            "3:1: ready.address",
            "type = \"tcp\" needs address",
        ),
        (
            "[ready]\ntype = \"file\"",
            "3:1: ready.path",
            "type = \"file\" needs path",
        ),
        (
            "[ready]\ntype = \"tcp\"\naddress = \"localhost\"",
            "4:11: ready.address",
            "is not HOST:PORT",
        ),
        (
            "[ready]\ntype = \"tcp\"\naddress = \"localhost:0\"",
            "4:11: ready.address",
            "has no valid port",
        ),
        (
            "[ready]\ntype = \"file\"\npath = \"ready\"",
            "4:8: ready.path",
            "is not an absolute path",
        ),
        (
            "[ready]\ntype = \"notify\"\naddress = \"a:1\"",
            "4:1: ready.address",
            "address applies only to type = \"tcp\"",
        ),
        (
            "[ready]\ntype = \"tcp\"\naddress = \"a:1\"\npath = \"/x\"",
            "5:1: ready.path",
            "path applies only to type = \"file\"",
        ),
        (
            "[restart]\nmax_failures = 0",
            "3:16: restart.max_failures",
            "0 is out of range; expected an integer from 1 to 1000000",
        ),
        (
            "[ready]\nsettle = 1",
            "3:10: ready.settle",
            "a bare number has no unit",
        ),
        (
            "[ready]\nwatchdog = \"10s\"",
            "3:1: ready.watchdog",
            "watchdog applies only to type = \"notify\"",
        ),
        (
            "[ready]\ntimeout = \"10s\"",
            "3:1: ready.timeout",
            "a \"started\" unit is up at exec",
        ),
        (
            "[ready]\ntype = \"notify\"\nwatchdog = \"0\"",
            "4:12: ready.watchdog",
            "must be at least 100ms (a shorter watchdog makes colony-init spin)",
        ),
        (
            "[ready]\ntype = \"notify\"\nwatchdog = \"99ms\"",
            "4:12: ready.watchdog",
            "must be at least 100ms",
        ),
        // [health]
        (
            "[health]\nperiod = \"1s\"",
            "2:2: health",
            "[health] needs one check",
        ),
        (
            "[health]\nhttp = \"http://a/\"\ntcp = \"a:1\"",
            "4:1: health.tcp",
            "takes exactly one check, found http and tcp",
        ),
        (
            "[health]\nhttp = \"https://a/\"",
            "3:8: health.http",
            "https is not supported",
        ),
        (
            "[health]\nhttp = \"ftp://a/\"",
            "3:8: health.http",
            "is not an http:// URL",
        ),
        (
            "[health]\nhttp = \"http://a:99999/\"",
            "3:8: health.http",
            "no valid HOST[:PORT]",
        ),
        (
            "[health]\ntcp = \"a\"",
            "3:7: health.tcp",
            "is not HOST:PORT",
        ),
        (
            "[health]\nexec = [\"./check\"]",
            "3:9: health.exec",
            "is a relative path",
        ),
        (
            "[health]\ntcp = \"a:1\"\nmax_bad = 0",
            "4:11: health.max_bad",
            "0 is out of range; expected an integer from 1 to 1000000",
        ),
        (
            "[health]\ntcp = \"a:1\"\nmax_bad = \"3\"",
            "4:11: health.max_bad",
            "without quotes",
        ),
        (
            "[health]\ntcp = \"a:1\"\nperiod = \"0\"",
            "4:10: health.period",
            "must be at least 100ms (a shorter period makes colony-init spin)",
        ),
        (
            "[health]\ntcp = \"a:1\"\nperiod = \"1ns\"",
            "4:10: health.period",
            "must be at least 100ms (a shorter period makes colony-init spin)",
        ),
        (
            "[health]\ntcp = \"a:1\"\ntimeout = \"99ms\"",
            "4:11: health.timeout",
            "must be at least 100ms (a shorter timeout fails healthy checks)",
        ),
        (
            "[health]\ntcp = \"a:1\"\ngrace = 30",
            "4:9: health.grace",
            "write \"30s\"",
        ),
        // [resources]
        (
            "[resources]\nmemory_max = \"256Q\"",
            "3:14: resources.memory_max",
            "unknown unit `Q`",
        ),
        (
            "[resources]\nmemory_max = \"0\"",
            "3:14: resources.memory_max",
            "must be more than 0",
        ),
        (
            "[resources]\nmemory_high = -5",
            "3:15: resources.memory_high",
            "a size is not negative",
        ),
        (
            "[resources]\ncpu_max = 50",
            "3:11: resources.cpu_max",
            "write \"50%\"",
        ),
        (
            "[resources]\ncpu_max = \"50\"",
            "3:11: resources.cpu_max",
            "has no `%`",
        ),
        (
            "[resources]\ncpu_max = \"0%\"",
            "3:11: resources.cpu_max",
            "out of range",
        ),
        (
            "[resources]\ncpu_weight = 0",
            "3:14: resources.cpu_weight",
            "expected an integer from 1 to 10000",
        ),
        (
            "[resources]\ncpu_weight = 1.5",
            "3:14: resources.cpu_weight",
            "found the float 1.5",
        ),
        (
            "[resources]\ntasks_max = 0",
            "3:13: resources.tasks_max",
            "out of range",
        ),
        (
            "[resources]\nmemory_maxx = \"1G\"",
            "3:1: resources.memory_maxx",
            "did you mean `memory_max`?",
        ),
        // [heartbeat]
        (
            "[heartbeat]\nfile = \"beat\"",
            "3:8: heartbeat.file",
            "is not an absolute path",
        ),
        (
            "[heartbeat]\nperiod = \"0\"",
            "3:10: heartbeat.period",
            "must be at least 100ms (a shorter period makes colony-init spin)",
        ),
        (
            "[heartbeat]\nperiod = \"1ns\"",
            "3:10: heartbeat.period",
            "must be at least 100ms",
        ),
        (
            "[heartbeat]\ngrace = \"x\"",
            "3:9: heartbeat.grace",
            "bad duration",
        ),
        (
            "[heartbeat]\nperoid = \"1s\"",
            "3:1: heartbeat.peroid",
            "did you mean `period`?",
        ),
        // [timer]
        (
            "[timer]\npersistent = true",
            "2:2: timer",
            "a timer needs at least one of every",
        ),
        (
            "[timer]\nevery = \"0\"",
            "3:9: timer.every",
            "must be at least 1s (a shorter interval makes colony-init spin",
        ),
        (
            "[timer]\nevery = \"1ns\"",
            "3:9: timer.every",
            "must be at least 1s",
        ),
        (
            "[timer]\nevery = \"999ms\"",
            "3:9: timer.every",
            "must be at least 1s",
        ),
        (
            "[timer]\ncalendar = \"* * * *\"",
            "3:12: timer.calendar",
            "has 4 fields",
        ),
        (
            "[timer]\ncalendar = \"0 0 3 * * * 2030\"",
            "3:12: timer.calendar",
            "has 7 fields",
        ),
        (
            "[timer]\ncalendar = \"61 * * * *\"",
            "3:12: timer.calendar",
            "is not a valid cron expression",
        ),
        (
            "[timer]\ncalendar = \"Mon..Fri *-*-* 09:00:00\"",
            "3:12: timer.calendar",
            "has 3 fields",
        ),
        (
            "[timer]\nevery = \"1m\"\npersistent = \"yes\"",
            "4:14: timer.persistent",
            "expected true or false",
        ),
        (
            "[timer]\nevery = \"1m\"\ntimeout = \"0\"",
            "4:11: timer.timeout",
            "must be longer than 0",
        ),
        (
            "[timer]\nevry = \"1m\"\non_boot = \"1s\"",
            "3:1: timer.evry",
            "did you mean `every`?",
        ),
        // [log]
        (
            "[log]\nfile = \"x.log\"",
            "3:8: log.file",
            "is not an absolute path",
        ),
        (
            "[log]\nmax_size = \"0\"",
            "3:12: log.max_size",
            "must be at least 16K",
        ),
        (
            "[log]\nmax_size = \"1\"",
            "3:12: log.max_size",
            "must be at least 16K, such as \"10M\" (a smaller file rotates at almost every line",
        ),
        (
            "[log]\nmax_size = 16383",
            "3:12: log.max_size",
            "must be at least 16K",
        ),
        (
            "[log]\nmax_size = \"ten megs\"",
            "3:12: log.max_size",
            "is not a size",
        ),
        (
            "[log]\nkeep = 5000",
            "3:8: log.keep",
            "must be at most 100 (each rotation renames every kept file",
        ),
        ("[log]\nkeep = 101", "3:8: log.keep", "must be at most 100"),
        (
            "[log]\nkeep = \"3\"",
            "3:8: log.keep",
            "expected an integer from 0 to 100 without quotes",
        ),
        ("[log]\nkeep = -1", "3:8: log.keep", "out of range"),
        // syntax
        ("exec = [\"/bin/true\"", "1:20: syntax", "invalid TOML"),
        (
            "exec = [\"/bin/true\"]\nexec = [\"/bin/false\"]",
            "2:1: exec",
            "invalid TOML: duplicate key",
        ),
        (
            "exec = [\"/bin/true\"]\n[restart]\n[restart]",
            "3:2: restart",
            "invalid TOML",
        ),
    ];
    let mut failures = Vec::new();
    for (snippet, at, fragment) in cases {
        let text = if snippet.starts_with("exec") {
            format!("{snippet}\n")
        } else if let Some(rest) = snippet.strip_prefix("#noexec\n") {
            format!("{rest}\n")
        } else {
            format!("{EXEC}{snippet}\n")
        };
        match parse(&text) {
            Ok(_) => failures.push(format!("accepted:\n{text}")),
            Err(errs) => {
                let lines: Vec<String> = errs.iter().map(|d| d.to_string()).collect();
                let want = format!("/etc/colony/units/t.unit:{at}: ");
                let ok =
                    lines.len() == 1 && lines[0].starts_with(&want) && lines[0].contains(fragment);
                if !ok {
                    failures.push(format!(
                        "text:\n{text}wanted one `{want}...{fragment}...`, got:\n{}\n",
                        lines.join("\n")
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let text = "descripton = 1\nexec = \"x\"\n[stop]\nsignal = \"NOPE\"\n";
    let errs = parse(text).unwrap_err();
    let at: Vec<(usize, usize, &str)> = errs
        .iter()
        .map(|d| (d.line, d.col, d.key.as_str()))
        .collect();
    assert_eq!(
        at,
        vec![(1, 1, "descripton"), (2, 8, "exec"), (4, 10, "stop.signal")]
    );
}

#[test]
fn file_names() {
    let ok = parse_unit(Path::new("web-1_a.b.unit"), EXEC).unwrap();
    assert_eq!(ok.name, "web-1_a.b");
    for bad in [
        ".x.unit",
        "-x.unit",
        "a b.unit",
        "x.toml",
        ".unit",
        &format!("{}.unit", "a".repeat(65)),
    ] {
        let e = parse_unit(Path::new(bad), EXEC).unwrap_err();
        assert_eq!(
            (e[0].line, e[0].col, e[0].key.as_str()),
            (1, 1, "name"),
            "{bad}"
        );
    }
    assert!(parse_unit(Path::new(&format!("{}.unit", "a".repeat(64))), EXEC).is_ok());
}

#[test]
fn load_file_reports_unreadable_and_non_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone.unit");
    let e = units::parse::load_file(&missing).unwrap_err();
    assert_eq!(e[0].key, "file");
    assert!(e[0].message.contains("cannot read"));
    let bin = dir.path().join("bin.unit");
    std::fs::write(&bin, b"exec = [\"/bin/true\"]\ndescription = \"\xff\"\n").unwrap();
    let e = units::parse::load_file(&bin).unwrap_err();
    assert_eq!((e[0].line, e[0].col, e[0].key.as_str()), (2, 16, "syntax"));
}

#[test]
fn the_spec_example_with_every_key_parses() {
    let u = parse(include_str!("full.unit.txt")).unwrap();
    assert_eq!(u.after, ["db"]);
    assert_eq!(u.capabilities, Some(1 << 10));
    assert_eq!(u.ready.kind, ReadyType::Notify);
    assert!(u.timer.is_some() && u.heartbeat.is_some() && u.health.is_some());
    assert_eq!(u.extras_json, "{\"shard\":3}");
}

//! The `exec_env` keys and `[socket]` in their valid and invalid forms, and `[socket]`
//! addresses across a directory.

use std::path::Path;

use units::diag::Diagnostic;
use units::exec_env::{DirKind, IfMissing, Resource, WorkDir, INFINITY};
use units::model::Unit;
use units::parse::parse_unit;
use units::socket::Listen;

const EXEC: &str = "exec = [\"/bin/true\"]\n";

fn parse(text: &str) -> Result<Unit, Vec<Diagnostic>> {
    parse_unit(
        Path::new("/etc/colony/units/t.unit"),
        &format!("{EXEC}{text}"),
    )
}

fn err(text: &str) -> String {
    units::diag::render(&parse(text).expect_err(text))
}

#[test]
fn valid_forms() {
    let u = parse(
        "environment_file = [\"/etc/default/a\", \"-/etc/default/b\"]\n\
         runtime_directory = [\"a\", \"a/b\"]\nruntime_directory_mode = \"0750\"\n\
         state_directory = \"s\"\nlogs_directory = \"l\"\nlogs_directory_mode = 0o700\n\
         nice = -5\noom_score_adj = 1000\nio_weight = 50\ndirectory = \"-~\"\n\
         limits = { core = 0, memlock = \"64M\", stack = \"8M:infinity\", nofile = 4096 }\n\
         load_credential = { key = \"/etc/k\", a = \"/etc/a\", s = \"\", t = \"o.id\" }\n\
         [socket]\nlisten = [\"tcp:127.0.0.1:80\", \"unix:/run/a.sock\"]\non_demand = true\nmode = \"0600\"\nbacklog = 16\n",
    )
    .unwrap();
    let e = &u.exec_env;
    assert_eq!(e.environment_files[1].missing, IfMissing::Ignore);
    assert_eq!(e.dirs(DirKind::Runtime).count(), 2);
    assert!(e.dirs(DirKind::Runtime).all(|d| d.mode == 0o750));
    assert_eq!(e.dirs(DirKind::State).next().unwrap().mode, 0o755);
    assert_eq!(e.dirs(DirKind::Logs).next().unwrap().mode, 0o700);
    assert_eq!(
        (e.nice, e.oom_score_adj, e.io_weight),
        (Some(-5), Some(1000), Some(50))
    );
    assert_eq!(
        (e.work_dir, e.work_dir_missing),
        (WorkDir::Home, IfMissing::Ignore)
    );
    assert_eq!(u.directory, None);
    // limits.nofile with one value is `nofile`.
    assert_eq!(u.nofile, Some(4096));
    let lim: Vec<_> = e
        .limits
        .iter()
        .map(|l| (l.resource, l.soft, l.hard))
        .collect();
    assert_eq!(
        lim,
        [
            (Resource::Core, 0, 0),
            (Resource::Memlock, 64 << 20, 64 << 20),
            (Resource::Stack, 8 << 20, INFINITY)
        ]
    );
    assert_eq!(e.credentials[0].0, "a");
    use units::exec_env::CredentialSource as C;
    assert_eq!(e.credentials[2], ("s".into(), C::Store("s".into())));
    assert_eq!(e.credentials[3], ("t".into(), C::Store("o.id".into())));
    let s = u.socket.unwrap();
    assert!(s.on_demand);
    assert_eq!((s.mode, s.backlog), (0o600, 16));
    assert_eq!(s.listen[1], Listen::Unix("/run/a.sock".into()));
    let u = parse("directory = \"-/srv/x\"\n").unwrap();
    assert_eq!(u.directory.as_deref(), Some(Path::new("/srv/x")));
    assert_eq!(u.exec_env.work_dir_missing, IfMissing::Ignore);
}

#[test]
fn invalid_forms() {
    for (text, want) in [
        ("environment_file = \"etc/x\"", "not an absolute path"),
        ("runtime_directory = \"../x\"", "runtime_directory"),
        ("state_directory = \"/var/lib/x\"", "relative path"),
        (
            "cache_directory_mode = \"0700\"",
            "has no `cache_directory`",
        ),
        (
            "runtime_directory = \"x\"\nruntime_directory_mode = \"0999\"",
            "octal mode",
        ),
        ("nice = 20", "out of range"),
        ("oom_score_adj = -1001", "out of range"),
        ("io_weight = 0", "out of range"),
        ("limits = { cores = 0 }", "did you mean `core`?"),
        ("limits = { nproc = \"64M\" }", "not a number"),
        ("limits = { nofile = \"10:5\" }", "above the hard limit"),
        ("nofile = 10\nlimits = { nofile = 20 }", "give one of them"),
        (
            "load_credential = { \"a/b\" = \"/x\" }",
            "not a valid credential name",
        ),
        (
            "load_credential = { a = \"rel/x\" }",
            "neither an absolute path",
        ),
        ("directory = \"~user\"", "not an absolute path"),
        (
            "[socket]\nlisten = [\"tcp:localhost:80\"]",
            "not an IP address",
        ),
        (
            "[socket]\nlisten = [\"unix:/a\", \"unix:/a\"]",
            "given twice",
        ),
        ("[socket]\non_demand = true", "needs listen"),
        ("[socket]\nlisten = []", "needs listen"),
        (
            "[socket]\nlisten = [\"tcp:127.0.0.1:1\"]\nbacklog = 0",
            "out of range",
        ),
    ] {
        let e = err(text);
        assert!(e.contains(want), "{text}: {e}");
    }
}

#[test]
fn one_address_in_two_units_is_an_error_of_both() {
    let d = tempfile::tempdir().unwrap();
    for n in ["a", "b"] {
        std::fs::write(
            d.path().join(format!("{n}.unit")),
            format!("{EXEC}[socket]\nlisten = [\"tcp:127.0.0.1:8080\"]\n"),
        )
        .unwrap();
    }
    std::fs::write(
        d.path().join("c.unit"),
        format!("{EXEC}[socket]\nlisten = [\"tcp:127.0.0.1:8081\"]\n"),
    )
    .unwrap();
    let mut set = units::validate::load_dir(d.path()).unwrap();
    units::validate::validate_set(&mut set);
    for n in ["a", "b"] {
        let e = units::diag::render(set[n].as_ref().unwrap_err());
        assert!(e.contains("is in the [socket] of"), "{e}");
    }
    assert!(set["c"].is_ok());
}

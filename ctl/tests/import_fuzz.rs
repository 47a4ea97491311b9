//! Inputs the fuzzing campaign (fuzz/, docs/fuzzing.md) found, minimised: each made
//! `colonyctl import` write a unit the units parser refuses ("the import made invalid
//! units (a bug of the import)"). Each must now import cleanly, or be refused with a
//! reason.

use colonyctl::import::{run_with, ImportArgs};

struct Run {
    code: i32,
    out: String,
    err: String,
}

/// `colonyctl import --from FROM --dry-run FILE` of `files` written in a fresh directory;
/// FILE is the first of them.
fn import(from: &str, files: &[(&str, &[u8])]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let code = run_with(
        ImportArgs {
            from: Some(from.to_string()),
            out: Some(dir.path().join("out")),
            dry_run: true,
            strict: false,
            files: vec![dir.path().join(files[0].0)],
            json: false,
        },
        &mut o,
        &mut e,
    );
    let r = Run {
        code,
        out: String::from_utf8_lossy(&o).into_owned(),
        err: String::from_utf8_lossy(&e).into_owned(),
    };
    assert!(
        !r.err.contains("invalid unit"),
        "the import made an invalid unit:\n{}\n{}",
        r.err,
        r.out
    );
    r
}

fn imports(from: &str, files: &[(&str, &[u8])]) -> String {
    let r = import(from, files);
    assert_eq!(r.code, 0, "{}\n{}", r.err, r.out);
    r.out
}

#[test]
fn systemd_nul_byte_in_exec_start_refuses_the_file() {
    let r = import(
        "systemd",
        &[("a.service", b"[Service]\nExecStart=/bin/sys\0temd -x\n")],
    );
    assert_ne!(r.code, 0);
    assert!(r.out.contains("NUL byte"), "{}", r.out);
}

#[test]
fn systemd_nul_byte_in_an_environment_file_is_not_carried() {
    // Found by reading the importer after the fuzzer found the NUL in unit files.
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("b.env");
    std::fs::write(&env, b"A=x\0y\n").unwrap();
    let svc = format!(
        "[Service]\nExecStart=/bin/true\nEnvironmentFile={}\n",
        env.display()
    );
    let out = imports("systemd", &[("a.service", svc.as_bytes())]);
    assert!(out.contains("not an environment file"), "{out}");
}

#[test]
fn systemd_environment_file_line_without_a_name_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("a.env");
    std::fs::write(&env, b"A=1\n=x\n  =y\nB=2\n").unwrap();
    let svc = format!(
        "[Service]\nExecStart=/bin/true\nEnvironmentFile={}\n",
        env.display()
    );
    let out = imports("systemd", &[("a.service", svc.as_bytes())]);
    // colony reads the file at each start (skipping such lines, as systemd does).
    assert!(out.contains("environment_file = ["), "{out}");
    assert!(!out.contains("environment = {"), "{out}");
}

#[test]
fn systemd_control_character_in_a_comment_line() {
    // Documentation= is kept as a comment: a \r or ESC there made the TOML unreadable.
    let out = imports(
        "systemd",
        &[(
            "a.service",
            b"[Unit]\nDocumentation=man:x(1)\r\x1b[0m\n[Service]\nExecStart=/bin/true\n",
        )],
    );
    assert!(out.contains("# Documentation: man:x(1)??[0m"), "{out}");
}

#[test]
fn systemd_timer_job_runtime_max_sec_zero_is_no_limit() {
    let out = imports(
        "systemd",
        &[
            ("b.timer", b"[Timer]\nOnCalendar=daily\n"),
            (
                "b.service",
                b"[Service]\nType=oneshot\nExecStart=/bin/true\nRuntimeMaxSec=0\n",
            ),
        ],
    );
    assert!(!out.contains("timeout = \"0"), "{out}");
}

const PROGRAM: &[u8] = b"[program:web]\ncommand=/bin/true\n";

fn program_with(line: &[u8]) -> Vec<u8> {
    [PROGRAM, line, b"\n"].concat()
}

#[test]
fn supervisord_relative_directory_is_not_carried() {
    let out = imports(
        "supervisord",
        &[("s.conf", &program_with(b"directory=srv/app"))],
    );
    assert!(out.contains("not an absolute path"), "{out}");
}

#[test]
fn supervisord_empty_user_is_not_carried() {
    let out = imports("supervisord", &[("s.conf", &program_with(b"user="))]);
    assert!(out.contains("empty: no user named"), "{out}");
}

#[test]
fn supervisord_uid_past_u32_is_never_root() {
    let out = imports(
        "supervisord",
        &[("s.conf", &program_with(b"user=18446744073709551616"))],
    );
    assert!(out.contains("a uid out of range"), "{out}");
    assert!(!out.contains("user = 0"), "{out}");
}

#[test]
fn supervisord_environment_without_a_name_is_not_carried() {
    let out = imports(
        "supervisord",
        &[("s.conf", &program_with(b"environment=A=1,=x"))],
    );
    assert!(out.contains("is not KEY=value"), "{out}");
}

#[test]
fn supervisord_numeric_stopsignal_stays_a_number() {
    let out = imports("supervisord", &[("s.conf", &program_with(b"stopsignal=3"))]);
    assert!(out.contains("signal = \"3\""), "{out}");
}

#[test]
fn supervisord_nul_byte_refuses_the_file() {
    let r = import("supervisord", &[("s.conf", &program_with(b"user=a\0b"))]);
    assert_ne!(r.code, 0);
    assert!(r.err.contains("NUL byte"), "{}", r.err);
}

#[test]
fn ncolony_relative_program_refuses_the_file() {
    let r = import(
        "ncolony",
        &[("app", br#"{"args": ["venv/bin/python", "-m", "app"]}"#)],
    );
    assert_ne!(r.code, 0);
    assert!(r.err.contains("working directory"), "{}", r.err);
}

#[test]
fn ncolony_nul_in_a_string_refuses_the_file() {
    let r = import(
        "ncolony",
        &[(
            "app",
            br#"{"args": ["/bin/true"], "env": {"A": "x\u0000y"}}"#,
        )],
    );
    assert_ne!(r.code, 0);
    assert!(r.err.contains("NUL"), "{}", r.err);
}

// Found by reading the importer while fuzzing it, confirmed with the fuzz target: a panic
// (overflow, format width) and a hang (fifty million units).

#[test]
fn supervisord_numprocs_start_near_i64_max_is_refused() {
    let conf = program_with(
        b"numprocs=2\nnumprocs_start=9223372036854775807\nprocess_name=x%(process_num)s",
    );
    let r = import("supervisord", &[("s.conf", &conf)]);
    assert_ne!(r.code, 0);
    assert!(r.err.contains("out of range"), "{}", r.err);
}

#[test]
fn supervisord_huge_expansion_width_is_refused() {
    let conf = program_with(b"process_name=x%(process_num)0999999999999d");
    let r = import("supervisord", &[("s.conf", &conf)]);
    assert_ne!(r.code, 0);
    assert!(r.err.contains("a width past"), "{}", r.err);
    let conf = program_with(b"process_name=x%(program_name)70000s");
    let r = import("supervisord", &[("s.conf", &conf)]);
    assert!(r.err.contains("a width past"), "{}", r.err);
}

#[test]
fn supervisord_numprocs_is_bounded() {
    let conf = program_with(b"numprocs=50000000\nprocess_name=x%(process_num)s");
    let r = import("supervisord", &[("s.conf", &conf)]);
    assert_ne!(r.code, 0);
    assert!(r.err.contains("from 1 to 10000"), "{}", r.err);
}

#[test]
fn supervisord_include_pattern_with_many_stars_ends() {
    // Backtracking over each `*` took time exponential in their number: this one hung.
    let stars = "*".repeat(40);
    let conf = format!(
        "[include]\nfiles = conf.{stars}f/x.conf\n{}",
        String::from_utf8_lossy(PROGRAM)
    );
    let out = imports(
        "supervisord",
        &[
            ("s.conf", conf.as_bytes()),
            ("conf.d/a.conf", b"[program:a]\ncommand=/bin/true\n"),
            (
                "conf.ddddddddddddddddddddddddddddddddddddddddddddddd/b.conf",
                b"",
            ),
        ],
    );
    assert!(out.contains("no file (nothing matches)"), "{out}");
}

#[test]
fn ncolony_environment_names_with_equals_or_empty_are_skipped() {
    let out = imports(
        "ncolony",
        &[(
            "app",
            br#"{"args": ["/bin/true"], "env": {"A=B": "1", "": "2", "C": "3"}}"#,
        )],
    );
    assert!(out.contains("environment = { C = \"3\""), "{out}");
    assert!(out.contains("not variable names, skipped"), "{out}");
}

#[test]
fn ncolony_huge_seconds_become_a_duration_the_parser_reads() {
    let out = imports(
        "ncolony",
        &[(
            "app",
            br#"{"args": ["/bin/true"], "ncolony.httpcheck": {"url": "http://127.0.0.1:8080/", "period": 1e300, "grace": 1e300}}"#,
        )],
    );
    assert!(!out.contains("18446744073709551615"), "{out}");
}

#[test]
fn ncolony_uid_and_gid_past_u32_are_not_carried() {
    let out = imports(
        "ncolony",
        &[(
            "app",
            br#"{"args": ["/bin/true"], "uid": 99999999999999995, "gid": 4294967296}"#,
        )],
    );
    assert!(
        out.contains("not a uid") && out.contains("not a gid"),
        "{out}"
    );
}

use super::*;
use units::proto::HeartbeatStatus;

fn now() -> DateTime<Utc> {
    parse_time("2026-11-23T12:00:00Z").unwrap()
}

#[test]
fn durations_and_sizes() {
    assert_eq!(duration(Duration::from_millis(250)), "250ms");
    assert_eq!(duration(Duration::from_secs(3)), "3s");
    assert_eq!(duration(Duration::from_secs(312)), "5m12s");
    assert_eq!(duration(Duration::from_secs(2 * 3600 + 180)), "2h03m");
    assert_eq!(duration(Duration::from_secs(3 * 86400 + 4 * 3600)), "3d04h");
    assert_eq!(bytes(512), "512B");
    assert_eq!(bytes(12 * 1024 * 1024 + 300 * 1024), "12M");
    assert_eq!(bytes(4 * 1024 * 1024 + 512 * 1024), "4.5M");
    assert_eq!(bytes(1 << 30), "1.0G");
}

#[test]
fn last_exit_forms() {
    assert_eq!(last_exit(None), "-");
    let e = |code, signal: Option<&str>, reason: Option<&str>| LastExit {
        code,
        signal: signal.map(Into::into),
        reason: reason.map(Into::into),
        detail: None,
    };
    assert_eq!(last_exit(Some(&e(Some(1), None, None))), "exit 1");
    assert_eq!(
        last_exit(Some(&e(None, Some("SIGKILL"), Some("oom")))),
        "SIGKILL (oom)"
    );
    assert_eq!(last_exit(Some(&e(None, None, Some("exec")))), "exec failed");
}

#[test]
fn status_table_aligns_and_shows_what_needs_attention() {
    let units = vec![
        UnitStatus {
            name: "web".into(),
            state: "running".into(),
            pid: Some(4242),
            restarts: 3,
            since: "2026-11-23T11:54:48Z".into(),
            memory_bytes: Some(3 * 1024 * 1024),
            enabled: true,
            ready: true,
            heartbeat: Some(HeartbeatStatus {
                file: "/run/colony/heartbeat/web".into(),
                age_ms: Some(1500),
            }),
            ..Default::default()
        },
        UnitStatus {
            name: "broken-unit".into(),
            state: "invalid".into(),
            since: "2026-11-23T11:59:58.500+00:00".into(),
            error: Some("broken-unit.unit:3:1: exec: required".into()),
            last_exit: Some(LastExit {
                reason: Some("exec".into()),
                detail: Some("/nope: No such file or directory".into()),
                ..Default::default()
            }),
            warnings: vec!["user: ignored".into()],
            ..Default::default()
        },
    ];
    let out = status(&units, now());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            "NAME         STATE    PID   RESTARTS  SINCE      LAST EXIT    MEMORY",
            "web          running  4242  3         5m12s ago  -            3.0M",
            "    heartbeat: /run/colony/heartbeat/web (last beat 1s ago)",
            "broken-unit  invalid  -     0         1s ago     exec failed  -",
            "    error: broken-unit.unit:3:1: exec: required",
            "    last exit: /nope: No such file or directory",
            "    warning: user: ignored",
        ]
    );
}

#[test]
fn status_shows_what_is_left_of_a_stopping_unit() {
    let units = vec![UnitStatus {
        name: "web".into(),
        state: "stopping".into(),
        since: "2026-11-23T11:59:58.500+00:00".into(),
        leftover_pids: vec![4243, 4250],
        ..Default::default()
    }];
    let out = status(&units, now());
    assert!(
        out.lines()
            .any(|l| l == "    left over: 2 (pids 4243 4250)"),
        "{out}"
    );
}

fn described(name: &str, state: &str, description: &str) -> UnitStatus {
    UnitStatus {
        name: name.into(),
        state: state.into(),
        since: "2026-11-23T11:59:00Z".into(),
        enabled: true,
        ready: true,
        description: Some(description.into()),
        last_exit: Some(LastExit {
            code: Some(1),
            reason: Some("a reason long enough to be cut".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn status_at_80_columns_with_a_long_name_and_a_long_reason() {
    let name = format!("a-unit-with-a-very-long-name-{}", "x".repeat(35));
    let reason = "the program could not be started because its working directory /srv/some/where/deep/inside/a/tree does not exist (create it or change `directory`)";
    let units = vec![
        UnitStatus {
            name: name.clone(),
            state: "failed".into(),
            since: "2026-11-23T11:59:00Z".into(),
            enabled: true,
            last_exit: Some(LastExit {
                reason: Some("exec".into()),
                detail: Some(reason.into()),
                ..Default::default()
            }),
            error: Some(format!("{name}.unit:1:1: exec: {reason}")),
            status_text: Some("x".repeat(200)),
            ..Default::default()
        },
        described(
            "web",
            "running",
            "A description that runs on and on past the edge",
        ),
    ];
    let out = status_styled(
        &units,
        now(),
        Style {
            width: Some(80),
            color: false,
        },
    );
    for l in out.lines() {
        assert!(
            l.chars().count() <= 80,
            "{} chars: {l:?}\n{out}",
            l.chars().count()
        );
    }
    // The long name gave way; its row still shows the state, and every word of the
    // reason is there (wrapped, not cut).
    let row = out.lines().nth(1).unwrap();
    assert!(row.starts_with("a-unit-with") && row.contains('…'), "{out}");
    assert!(row.contains("failed"), "{out}");
    let notes: String = out
        .lines()
        .filter(|l| l.starts_with("    "))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    for word in reason.split(' ') {
        assert!(notes.contains(word), "{word}: {out}");
    }
    assert!(notes.contains(&"x".repeat(60)), "{out}");
    // Whole lines when piped (no width).
    let piped = status_styled(&units, now(), Style::default());
    assert!(piped.contains(&name), "{piped}");
    assert!(piped.contains(reason), "{piped}");
}

#[test]
fn wrap_breaks_at_spaces_and_cuts_long_words() {
    assert_eq!(wrap("a b c", None), vec!["a b c"]);
    assert_eq!(
        wrap("hello world again", Some(11)),
        vec!["hello world", "  again"]
    );
    assert_eq!(
        wrap("abcdefghijkl", Some(5)),
        vec!["abcde", "  fgh", "  ijk", "  l"]
    );
    for l in wrap(&"word ".repeat(50), Some(20)) {
        assert!(l.chars().count() <= 20, "{l:?}");
    }
}

#[test]
fn status_fits_the_width_cutting_description_then_last_exit() {
    let long = "A description long enough that no terminal of 80 columns holds the row";
    let units = vec![
        described("web", "running", long),
        described("db", "failed", "short"),
    ];
    let whole = status_styled(&units, now(), Style::default());
    assert!(whole.lines().any(|l| l.ends_with(long)), "{whole}");
    assert!(whole.lines().next().unwrap().ends_with("DESCRIPTION"));
    for width in [120, 100, 80, 60, 30] {
        let style = Style {
            width: Some(width),
            color: false,
        };
        let out = status_styled(&units, now(), style);
        for l in out.lines() {
            assert!(l.chars().count() <= width, "{width}: {l:?}\n{out}");
        }
        assert!(out.contains('…'), "{out}");
        // The name, state and pid columns are cut last.
        if width >= 60 {
            assert!(
                out.lines().nth(1).unwrap().starts_with("web   running  -"),
                "{out}"
            );
        }
    }
    // At 120 only the description is cut; the last exit stays whole.
    let out = status_styled(
        &units,
        now(),
        Style {
            width: Some(120),
            color: false,
        },
    );
    assert!(
        out.contains("exit 1 (a reason long enough to be cut)"),
        "{out}"
    );
    let out = status_styled(
        &units,
        now(),
        Style {
            width: Some(60),
            color: false,
        },
    );
    assert!(
        !out.contains("exit 1 (a reason long enough to be cut)"),
        "{out}"
    );
}

#[test]
fn colour_marks_the_state_only_when_asked() {
    let units = vec![
        described("web", "running", "w"),
        described("db", "failed", "d"),
        described("job", "backoff", "j"),
        described("off", "stopped", "o"),
    ];
    let plain = status_styled(&units, now(), Style::default());
    assert!(!plain.contains('\x1b'), "{plain}");
    let style = Style {
        width: None,
        color: true,
    };
    let out = status_styled(&units, now(), style);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAME "), "header uncoloured: {out:?}");
    assert!(lines[1].contains("\x1b[32mrunning\x1b[0m"), "{out:?}");
    assert!(lines[2].contains("\x1b[31mfailed\x1b[0m"), "{out:?}");
    assert!(lines[3].contains("\x1b[33mbackoff\x1b[0m"), "{out:?}");
    assert!(!lines[4].contains('\x1b'), "{out:?}");
    // Colour codes do not shift the columns.
    let strip = out
        .replace(GREEN, "")
        .replace(RED, "")
        .replace(YELLOW, "")
        .replace(RESET, "");
    assert_eq!(strip, plain);
    // A cut line that was coloured ends the colour.
    let narrow = Style {
        width: Some(9),
        color: true,
    };
    let out = status_styled(&units, now(), narrow);
    assert!(
        out.lines().nth(1).unwrap().ends_with("\x1b[32mru…\x1b[0m"),
        "{out:?}"
    );
}

#[test]
fn ellipsis() {
    assert_eq!(ellipsize("abcdef", 6), "abcdef");
    assert_eq!(ellipsize("abcdef", 4), "abc…");
    assert_eq!(ellipsize("abcdef", 0), "");
}

#[test]
fn a_running_unit_that_is_not_ready_is_reloading() {
    let mut u = UnitStatus {
        name: "db".into(),
        state: "running".into(),
        enabled: true,
        ..Default::default()
    };
    assert_eq!(state(&u), "running (reloading)");
    u.ready = true;
    assert_eq!(state(&u), "running");
    u.state = "starting".into();
    u.ready = false;
    assert_eq!(state(&u), "starting");
}

#[test]
fn timers_table() {
    let t = vec![TimerStatus {
        name: "backup".into(),
        schedule: "0 3 * * *".into(),
        next: Some("2026-11-23T12:15:00Z".into()),
        last: None,
        last_result: None,
        skipped: 0,
        last_skip: None,
        running: false,
    }];
    let out = timers(&t, now());
    let coloured = Style {
        width: None,
        color: true,
    };
    let mut failed = t.clone();
    failed[0].last_result = Some("exit 3 in 1.0s".into());
    let red = timers_styled(&failed, now(), coloured);
    assert!(red.contains("\x1b[31mexit 3 in 1.0s\x1b[0m"), "{red:?}");
    failed[0].last_result = Some("exit 0 in 1.0s".into());
    let green = timers_styled(&failed, now(), coloured);
    assert!(green.contains("\x1b[32mexit 0 in 1.0s\x1b[0m"), "{green:?}");
    assert!(!timers_styled(&failed, now(), Style::default()).contains('\x1b'));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("UNIT    SCHEDULE   NEXT"), "{out}");
    assert!(lines[1].starts_with("backup  0 3 * * *  "), "{out}");
    assert!(lines[1].contains(" 15m00s  -     -       0"), "{out}");
}

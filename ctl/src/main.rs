//! colonyctl: control colony-init through its control FIFO (colonyctl(1)).

mod check;
mod cli;
mod client;
mod complete;
mod edit;
mod events;
mod logs;
mod render;
mod show;
mod start_failure;
mod unitfile;

use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use cli::{Cli, Cmd, Targets, UnitFile};
use units::proto::{exit, Reply, TimerStatus, UnitStatus, Verb};

/// An error for the user: one line, and an exit code of colonyctl(1) ([`exit`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CliError {
    pub code: i32,
    pub message: String,
}

impl CliError {
    pub fn new(code: i32, message: impl Into<String>) -> CliError {
        CliError {
            code,
            message: message.into(),
        }
    }
    pub fn failed(message: impl Into<String>) -> CliError {
        CliError::new(exit::FAILED, message)
    }
}

/// NAME.unit is NAME; @TAG and names go through as they are (colony-init resolves them).
fn target(t: &str) -> String {
    match t.strip_suffix(".unit") {
        Some(n) if !t.starts_with('@') && !n.is_empty() => n.to_string(),
        _ => t.to_string(),
    }
}

fn targets(ts: &[String]) -> Vec<String> {
    ts.iter().map(|t| target(t)).collect()
}

/// The request line's verb and words for a command that talks to colony-init.
fn request_of(cmd: &Cmd) -> Option<(Verb, Vec<String>)> {
    let with_block = |t: &Targets| {
        let mut a = Vec::new();
        if t.no_block {
            a.push("--no-block".to_string());
        }
        a.extend(targets(&t.targets));
        a
    };
    Some(match cmd {
        Cmd::Status { targets: t, .. } => (Verb::Status, targets(t)),
        Cmd::Start(t) => (Verb::Start, with_block(t)),
        Cmd::Stop(t) => (Verb::Stop, with_block(t)),
        Cmd::Restart(t) => (Verb::Restart, with_block(t)),
        Cmd::RestartAll => (Verb::RestartAll, vec![]),
        Cmd::Reload { targets: t, .. } if t.is_empty() => (Verb::Reload, vec![]),
        Cmd::Reload {
            no_block,
            targets: t,
        } => {
            let mut a = Vec::new();
            if *no_block {
                a.push("--no-block".to_string());
            }
            a.extend(targets(t));
            (Verb::ReloadUnit, a)
        }
        Cmd::Signal { signal, targets: t } => {
            let mut a = vec![signal.clone()];
            a.extend(targets(t));
            (Verb::Signal, a)
        }
        Cmd::Timers => (Verb::Timers, vec![]),
        Cmd::Reexec { binary } => (
            Verb::Reexec,
            match binary {
                // colony-init's working directory is not ours.
                Some(b) => vec![
                    "--binary".to_string(),
                    std::path::absolute(b)
                        .unwrap_or_else(|_| b.clone())
                        .to_string_lossy()
                        .into_owned(),
                ],
                None => vec![],
            },
        ),
        Cmd::Version => (Verb::Version, vec![]),
        Cmd::Poweroff => (Verb::Poweroff, vec![]),
        Cmd::Reboot => (Verb::Reboot, vec![]),
        Cmd::Halt => (Verb::Halt, vec![]),
        _ => return None,
    })
}

/// How long a command waits for its answer unless `--timeout` says otherwise.
fn default_timeout(cmd: &Cmd) -> Duration {
    match cmd {
        Cmd::Start(t) | Cmd::Stop(t) | Cmd::Restart(t) if !t.no_block => Duration::from_secs(120),
        // These wait for a start or a stop too.
        Cmd::Enable(UnitFile { now: true, .. })
        | Cmd::Disable(UnitFile { now: true, .. })
        | Cmd::Remove { .. } => Duration::from_secs(120),
        Cmd::RestartAll => Duration::from_secs(300),
        _ => Duration::from_secs(30),
    }
}

pub(crate) fn reply_error(r: &Reply) -> CliError {
    let code = if r.code == exit::OK {
        exit::FAILED
    } else {
        r.code
    };
    CliError::new(
        code,
        r.error
            .clone()
            .unwrap_or_else(|| "colony-init refused without saying why; see its log".into()),
    )
}

/// Take the payload out of the reply (no copy: a status of 1000 units is ~400 KB).
pub(crate) fn data<T: serde::de::DeserializeOwned>(r: &mut Reply) -> Result<T, CliError> {
    serde_json::from_value(std::mem::take(&mut r.data)).map_err(|e| {
        CliError::failed(format!(
            "colony-init's answer is not understood ({e}); is colonyctl the same version?"
        ))
    })
}

/// A `status` reply, typed (its `data` is null when it failed).
#[derive(serde::Deserialize)]
struct StatusReply {
    ok: bool,
    code: i32,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<Vec<UnitStatus>>,
}

/// Pretty JSON of typed values, written in one go.
fn print_pretty<T: serde::Serialize>(v: &T) {
    use std::io::Write;
    let mut b = serde_json::to_vec_pretty(v).unwrap_or_default();
    b.push(b'\n');
    let _ = std::io::stdout().lock().write_all(&b);
}

fn print_json(v: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

fn run(cli: Cli) -> Result<i32, CliError> {
    let client = client::Client {
        run_dir: client::run_dir(cli.run_dir.as_deref()),
        timeout: cli.timeout.unwrap_or_else(|| default_timeout(&cli.command)),
    };
    if let (Cmd::Status { full, state, .. }, Some((verb, args))) =
        (&cli.command, request_of(&cli.command))
    {
        let mut reply: StatusReply = client.request_as(verb, &args)?;
        if let (Some(units), false) = (reply.data.as_mut(), state.is_empty()) {
            units.retain(|u| state.contains(&u.state));
        }
        // Status shows what it has even with code 3 (a named unit is not running).
        match &reply.data {
            None if cli.json => println!("null"),
            None => {}
            Some(units) if cli.json => print_pretty(units),
            Some(units) => {
                let mut style = render::Style::for_stdout();
                if *full {
                    style.width = None;
                }
                print!(
                    "{}",
                    render::status_styled(units, chrono::Utc::now(), style)
                );
            }
        }
        let reply = Reply {
            ok: reply.ok,
            code: reply.code,
            error: reply.error,
            data: serde_json::Value::Null,
        };
        if !reply.ok {
            if let Some(e) = &reply.error {
                eprintln!("colonyctl: {e}");
            }
            return Ok(reply_error(&reply).code);
        }
        return Ok(reply.code);
    }
    if let Some((verb, args)) = request_of(&cli.command) {
        if matches!(cli.command, Cmd::Version) && !cli.json {
            // Ours first: it is known even when colony-init does not answer.
            println!("colonyctl {}", env!("CARGO_PKG_VERSION"));
        }
        let mut reply = client.request(verb, &args)?;
        match &cli.command {
            Cmd::Version | Cmd::Reexec { .. } if reply.ok => {
                let v: show::InitVersion = data(&mut reply)?;
                match (&cli.command, cli.json) {
                    (Cmd::Version, true) => print_pretty(&serde_json::json!({
                        "colonyctl": env!("CARGO_PKG_VERSION"),
                        "init": v,
                    })),
                    (_, true) => print_pretty(&v),
                    (Cmd::Version, false) => println!("{}", v.describe()),
                    _ => println!("colony-init re-executed: {}", v.describe()),
                }
                Ok(exit::OK)
            }
            Cmd::Timers if reply.ok => {
                if cli.json {
                    print_json(&reply.data);
                } else {
                    let t: Vec<TimerStatus> = data(&mut reply)?;
                    let style = render::Style::for_stdout();
                    print!("{}", render::timers_styled(&t, chrono::Utc::now(), style));
                }
                Ok(exit::OK)
            }
            Cmd::Start(_) | Cmd::Restart(_) if !reply.ok && reply.data.is_array() => {
                // The units that did not come up: say how each ended, with its last lines.
                let failures: Vec<units::proto::StartFailure> = data(&mut reply)?;
                let e = reply_error(&reply);
                if cli.json {
                    print_pretty(&failures);
                }
                eprintln!("colonyctl: {}", e.message);
                let _ = start_failure::report(&failures, &mut std::io::stderr().lock());
                Ok(e.code)
            }
            _ if !reply.ok => Err(reply_error(&reply)),
            _ => {
                if cli.json {
                    print_json(&reply.data);
                } else if let Some(s) = reply.data.as_str() {
                    println!("{s}");
                }
                Ok(reply.code)
            }
        }
    } else {
        match cli.command {
            Cmd::Events { targets } => events::run(&client, &targets, cli.json),
            Cmd::Logs {
                units,
                lines,
                follow,
                since,
                grep,
                log_dir,
            } => logs::run(logs::Args {
                run_dir: client.run_dir.clone(),
                units: units.iter().map(|u| target(u)).collect(),
                lines,
                follow,
                since,
                grep,
                log_dir,
                json: cli.json,
            }),
            Cmd::Add {
                name,
                cmd,
                args,
                env,
                uid,
                gid,
                extras,
                units,
            } => {
                let u = edit::NewUnit {
                    name: edit::unit_name(&name)?,
                    cmd,
                    args,
                    env,
                    uid,
                    gid,
                    extras,
                };
                // Check the arguments before asking colony-init anything.
                edit::render(&u)?;
                let loc = unitfile::locate(&client, units)?;
                let (path, existed) = edit::add(&loc.dir, &u)?;
                let what = if existed { "replaced" } else { "wrote" };
                let loaded = if loc.loads() {
                    Some(unitfile::wait_loaded(&client, &u.name)?)
                } else {
                    None
                };
                if cli.json {
                    print_json(&serde_json::json!({
                        "path": path,
                        "replaced": existed,
                        "loaded": loaded.as_ref().map(|s| &s.state),
                    }));
                } else if let Some(s) = loaded {
                    println!(
                        "{what} {}; colony-init has {} ({})",
                        path.display(),
                        u.name,
                        s.state
                    );
                } else {
                    println!("{what} {}{}", path.display(), loc.reader.note());
                }
                Ok(exit::OK)
            }
            Cmd::Remove { name, units } => {
                let name = edit::unit_name(&name)?;
                let loc = unitfile::locate(&client, units)?;
                unitfile::existing(&loc.dir, &name)?;
                if loc.loads() {
                    unitfile::stop(&client, &name)?;
                }
                let path = edit::remove(&loc.dir, &name)?;
                if loc.loads() {
                    unitfile::wait_dropped(&client, &name)?;
                }
                if cli.json {
                    print_json(&serde_json::json!({"path": path, "removed": true}));
                } else if loc.loads() {
                    println!("removed {}; colony-init has dropped {name}", path.display());
                } else {
                    println!("removed {}{}", path.display(), loc.reader.note());
                }
                Ok(exit::OK)
            }
            Cmd::Enable(f) => enable(&client, f, true),
            Cmd::Disable(f) => enable(&client, f, false),
            Cmd::Cat { name, units } => {
                let name = edit::unit_name(&name)?;
                let loc = unitfile::locate(&client, units)?;
                let path = unitfile::existing(&loc.dir, &name)?;
                let text = std::fs::read(&path).map_err(|e| {
                    CliError::failed(format!("cannot read {}: {e}", path.display()))
                })?;
                use std::io::Write;
                let _ = std::io::stdout().lock().write_all(&text);
                Ok(exit::OK)
            }
            Cmd::Show { name, units } => {
                let name = edit::unit_name(&name)?;
                let loc = unitfile::locate(&client, units)?;
                let path = unitfile::existing(&loc.dir, &name)?;
                match units::parse::load_file(&path) {
                    Ok(u) => {
                        let places = show::Places {
                            log_dir: logs::sources::dirs(&client.run_dir, None)
                                .ok()
                                .map(|d| d.log_dir),
                            run_dir: Some(client.run_dir.clone()),
                        };
                        print!("{}", show::render(&u, &places));
                        Ok(exit::OK)
                    }
                    Err(diags) => {
                        for d in &diags {
                            eprintln!("{d}");
                        }
                        Err(CliError::failed(format!(
                            "{} is not valid (see above; `colonyctl check` says the same)",
                            path.display()
                        )))
                    }
                }
            }
            Cmd::Check { paths } => Ok(check::run(&paths, cli.json)),
            Cmd::Import {
                from,
                out,
                dry_run,
                strict,
                files,
            } => Ok(colonyctl::import::run(colonyctl::import::ImportArgs {
                from,
                out,
                dry_run,
                strict,
                files,
                json: cli.json,
            })),
            Cmd::Fleet { args } => Ok(colonyctl::fleet::run_fleet(colonyctl::fleet::FleetArgs {
                config: cli.fleet,
                json: cli.json,
                args,
            })),
            Cmd::Completions { shell } => {
                print!("{}", complete::script(shell, &mut Cli::command()));
                Ok(exit::OK)
            }
            Cmd::CompleteTargets => {
                // A TAB must neither hang nor print errors: short wait, silence on failure.
                let quick = client::Client {
                    run_dir: client.run_dir.clone(),
                    timeout: cli.timeout.unwrap_or(Duration::from_secs(2)),
                };
                if let Ok(mut reply) = quick.request(Verb::Status, &[]) {
                    if let Ok(units) = data::<Vec<UnitStatus>>(&mut reply) {
                        for t in complete::targets(&units) {
                            println!("{t}");
                        }
                    }
                }
                Ok(exit::OK)
            }
            _ => Err(CliError::failed("internal: command without a handler")),
        }
    }
}

/// `enable`/`disable [--now]`: set `enabled` in the file; with --now, start or stop it too
/// (waiting as `start`/`stop` do).
fn enable(client: &client::Client, f: UnitFile, on: bool) -> Result<i32, CliError> {
    let name = edit::unit_name(&f.name)?;
    let loc = unitfile::locate(client, f.units)?;
    println!("{}", unitfile::enable(client, &loc, &name, on)?);
    if f.now {
        if !loc.loads() {
            return Err(CliError::new(
                exit::NO_ANSWER,
                format!("--now: the file is changed{}", loc.reader.note()),
            ));
        }
        let verb = if on { Verb::Start } else { Verb::Stop };
        let r = client.request(verb, std::slice::from_ref(&name))?;
        if !r.ok {
            return Err(reply_error(&r));
        }
    }
    Ok(exit::OK)
}

/// SIGPIPE's disposition: default (die quietly, as `colonyctl status | head` should) or
/// ignored (while writing the control FIFO, where EPIPE means colony-init just died).
pub fn sigpipe(default: bool) {
    use nix::sys::signal::{signal, SigHandler, Signal};
    let h = if default {
        SigHandler::SigDfl
    } else {
        SigHandler::SigIgn
    };
    // SAFETY: no handler function is installed, only a disposition.
    let _ = unsafe { signal(Signal::SIGPIPE, h) };
}

fn main() -> ExitCode {
    sigpipe(true);
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("colonyctl: {}", e.message.replace('\n', " "));
            e.code
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("colonyctl").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn requests_from_arguments() {
        let cli = parse(&["--json", "status", "web.unit", "@db", "x"]).unwrap();
        assert!(cli.json);
        assert_eq!(
            request_of(&cli.command),
            Some((Verb::Status, vec!["web".into(), "@db".into(), "x".into()]))
        );
        let cli = parse(&["restart", "--no-block", "a", "--timeout", "5s"]).unwrap();
        assert_eq!(cli.timeout, Some(Duration::from_secs(5)));
        assert_eq!(
            request_of(&cli.command),
            Some((Verb::Restart, vec!["--no-block".into(), "a".into()]))
        );
        assert_eq!(default_timeout(&cli.command), Duration::from_secs(30));
        let cli = parse(&["stop", "a"]).unwrap();
        assert_eq!(default_timeout(&cli.command), Duration::from_secs(120));
        let cli = parse(&["signal", "HUP", "a.unit"]).unwrap();
        assert_eq!(
            request_of(&cli.command),
            Some((Verb::Signal, vec!["HUP".into(), "a".into()]))
        );
        assert_eq!(
            request_of(&parse(&["halt"]).unwrap().command),
            Some((Verb::Halt, vec![]))
        );
        assert_eq!(
            request_of(&parse(&["logs", "x", "-n", "5"]).unwrap().command),
            None
        );
    }

    #[test]
    fn usage_errors_are_exit_2() {
        for bad in [
            &["start"][..],
            &["signal", "HUP"],
            &["bogus"],
            &["status", "--timeout", "soon"],
            &["add", "x"],
            &["completions", "tcsh"],
            &["logs", "x", "-n", "-3"],
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), exit::USAGE, "{bad:?}");
        }
    }

    #[test]
    fn add_takes_repeated_and_hyphen_arguments() {
        let cli = parse(&[
            "add",
            "web",
            "--cmd",
            "python3",
            "--arg",
            "-m",
            "--arg",
            "http.server",
            "--env",
            "A=1",
            "--env",
            "B=2",
            "--uid",
            "1000",
            "--units",
            "/tmp/u",
        ])
        .unwrap();
        match cli.command {
            Cmd::Add {
                args,
                env,
                uid,
                units,
                ..
            } => {
                assert_eq!(args, vec!["-m", "http.server"]);
                assert_eq!(env, vec!["A=1", "B=2"]);
                assert_eq!(uid.as_deref(), Some("1000"));
                assert_eq!(units, Some(PathBuf::from("/tmp/u")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn new_verbs_parse() {
        match parse(&["status", "--state", "failed,backoff", "web"])
            .unwrap()
            .command
        {
            Cmd::Status { state, targets, .. } => {
                assert_eq!(state, vec!["failed", "backoff"]);
                assert_eq!(targets, vec!["web"]);
            }
            other => panic!("{other:?}"),
        }
        let cli = parse(&[
            "logs", "a", "b.unit", "-f", "--since", "10m", "--grep", "x|y",
        ])
        .unwrap();
        match cli.command {
            Cmd::Logs {
                units,
                follow,
                since,
                grep,
                lines,
                ..
            } => {
                assert_eq!(units, vec!["a", "b.unit"]);
                assert!(follow);
                assert_eq!(since, Some(Duration::from_secs(600)));
                assert_eq!(grep.as_deref(), Some("x|y"));
                assert_eq!(lines, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["logs"]).unwrap().command,
            Cmd::Logs { .. }
        ));
        let cli = parse(&["disable", "--now", "web"]).unwrap();
        assert!(matches!(
            &cli.command,
            Cmd::Disable(UnitFile { now: true, .. })
        ));
        assert_eq!(default_timeout(&cli.command), Duration::from_secs(120));
        for v in ["cat", "show", "enable"] {
            assert!(parse(&[v, "web"]).is_ok(), "{v}");
            assert_eq!(parse(&[v]).unwrap_err().exit_code(), exit::USAGE, "{v}");
        }
    }

    #[test]
    fn targets_strip_unit_suffix_only_from_names() {
        assert_eq!(target("web.unit"), "web");
        assert_eq!(target("web"), "web");
        assert_eq!(target("@tag.unit"), "@tag.unit");
        assert_eq!(target(".unit"), ".unit");
    }
}

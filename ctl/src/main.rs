//! colonyctl: control colony-init through its control FIFO (SPEC.md "colonyctl").

mod check;
mod client;
mod complete;
mod edit;
mod logs;
mod render;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use units::proto::{exit, Info, Reply, TimerStatus, UnitStatus};

/// An error for the user: one line, and the exit code of SPEC.md.
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

#[derive(Debug, Parser)]
#[command(
    name = "colonyctl",
    version,
    about = "Control colony-init: status, start, stop, logs, unit files",
    after_help = "Exit codes: 0 done, 1 failed, 2 usage, 3 a named unit is not running (status), \
                  4 no such unit, 5 colony-init does not answer."
)]
pub struct Cli {
    /// colony-init's runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]
    #[arg(long, global = true, value_name = "DIR")]
    run_dir: Option<PathBuf>,
    /// Print machine-readable JSON
    #[arg(long, global = true)]
    json: bool,
    /// How long to wait for colony-init's answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]
    #[arg(long, global = true, value_name = "DUR", value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]
    #[arg(long, global = true, value_name = "CONFIG")]
    fleet: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    units::values::parse_duration(s)
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Show units (all when none is named)
    Status {
        /// Whole lines: do not cut columns to the terminal's width
        #[arg(short = 'l', long)]
        full: bool,
        /// NAME, NAME.unit or @TAG
        targets: Vec<String>,
    },
    /// Start units and wait until they are up
    Start(Targets),
    /// Stop units and wait until they are stopped
    Stop(Targets),
    /// Restart units and wait until they are up again
    Restart(Targets),
    /// Restart every unit
    RestartAll,
    /// Re-read the units directory now
    Reload,
    /// Send a signal to units' main processes
    Signal {
        /// e.g. HUP, SIGUSR1, 10
        signal: String,
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// Show a unit's log
    Logs {
        unit: String,
        /// Lines from the end
        #[arg(short = 'n', long = "lines", default_value_t = 10, value_name = "N")]
        lines: usize,
        /// Keep printing what is written (across rotations)
        #[arg(short, long)]
        follow: bool,
    },
    /// Timer units: schedule, next run, last run, last result
    Timers,
    /// Write NAME.unit into the units directory (atomically)
    Add {
        name: String,
        /// The program (absolute, or found in PATH)
        #[arg(long, value_name = "CMD")]
        cmd: String,
        /// An argument (repeat for more)
        #[arg(long = "arg", value_name = "A", allow_hyphen_values = true)]
        args: Vec<String>,
        /// An environment variable (repeat for more)
        #[arg(long = "env", value_name = "K=V")]
        env: Vec<String>,
        /// User (name or uid)
        #[arg(long, value_name = "U")]
        uid: Option<String>,
        /// Group (name or gid)
        #[arg(long, value_name = "G")]
        gid: Option<String>,
        /// Free-form JSON object, given to the program as COLONY_CONFIG
        #[arg(long, value_name = "JSON")]
        extras: Option<String>,
        /// Units directory [default: the one of the running colony-init]
        #[arg(long, value_name = "DIR")]
        units: Option<PathBuf>,
    },
    /// Delete NAME.unit from the units directory
    Remove {
        name: String,
        /// Units directory [default: the one of the running colony-init]
        #[arg(long, value_name = "DIR")]
        units: Option<PathBuf>,
    },
    /// Validate unit files without colony-init
    Check {
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
    },
    /// Translate other supervisors' configs (systemd, supervisord, NColony) into units
    Import {
        /// The source format [default: guessed from each file]
        #[arg(long, value_parser = ["systemd", "supervisord", "ncolony"])]
        from: Option<String>,
        /// Where to write the units [default: the current directory]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Print the units and the report; write nothing
        #[arg(long)]
        dry_run: bool,
        /// Any key not carried over is an error (exit 1, nothing written)
        #[arg(long)]
        strict: bool,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Many hosts: fleet status|hosts|apply APP.toml|remove APP|start APP|stop APP|forget HOST [--endpoints URL,...] (runs colony-fleet ctl)
    #[command(disable_help_flag = true)]
    Fleet {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
    /// Print a shell completion script (unit names and @tags complete from the running colony)
    Completions { shell: clap_complete::Shell },
    /// For the completion scripts: the running colony's unit names and @tags, one a line
    #[command(name = "__complete-targets", hide = true)]
    CompleteTargets,
    /// Power the machine off (colony-init as PID 1 of a machine only)
    Poweroff,
    /// Reboot the machine (colony-init as PID 1 of a machine only)
    Reboot,
    /// Halt the machine (colony-init as PID 1 of a machine only)
    Halt,
}

#[derive(Debug, clap::Args)]
struct Targets {
    /// Return once colony-init has the order, without waiting for the result
    #[arg(long)]
    no_block: bool,
    /// NAME, NAME.unit or @TAG
    #[arg(required = true)]
    targets: Vec<String>,
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
fn request_of(cmd: &Cmd) -> Option<(&'static str, Vec<String>)> {
    let with_block = |t: &Targets| {
        let mut a = Vec::new();
        if t.no_block {
            a.push("--no-block".to_string());
        }
        a.extend(targets(&t.targets));
        a
    };
    Some(match cmd {
        Cmd::Status { targets: t, .. } => ("status", targets(t)),
        Cmd::Start(t) => ("start", with_block(t)),
        Cmd::Stop(t) => ("stop", with_block(t)),
        Cmd::Restart(t) => ("restart", with_block(t)),
        Cmd::RestartAll => ("restart-all", vec![]),
        Cmd::Reload => ("reload", vec![]),
        Cmd::Signal { signal, targets: t } => {
            let mut a = vec![signal.clone()];
            a.extend(targets(t));
            ("signal", a)
        }
        Cmd::Timers => ("timers", vec![]),
        Cmd::Poweroff => ("poweroff", vec![]),
        Cmd::Reboot => ("reboot", vec![]),
        Cmd::Halt => ("halt", vec![]),
        _ => return None,
    })
}

/// How long a command waits for its answer unless `--timeout` says otherwise.
fn default_timeout(cmd: &Cmd) -> Duration {
    match cmd {
        Cmd::Start(t) | Cmd::Stop(t) | Cmd::Restart(t) if !t.no_block => Duration::from_secs(120),
        Cmd::RestartAll => Duration::from_secs(300),
        _ => Duration::from_secs(30),
    }
}

fn reply_error(r: &Reply) -> CliError {
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
fn data<T: serde::de::DeserializeOwned>(r: &mut Reply) -> Result<T, CliError> {
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
    if let (Cmd::Status { full, .. }, Some((verb, args))) = (&cli.command, request_of(&cli.command))
    {
        let reply: StatusReply = client.request_as(verb, &args)?;
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
        let mut reply = client.request(verb, &args)?;
        match &cli.command {
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
            Cmd::Logs {
                unit,
                lines,
                follow,
            } => {
                let name = target(&unit);
                let mut reply = client.request("status", std::slice::from_ref(&name))?;
                if !reply.ok && reply.code != exit::NOT_RUNNING {
                    return Err(reply_error(&reply));
                }
                let units: Vec<UnitStatus> = data(&mut reply)?;
                let Some(file) = units.iter().find_map(|u| u.log_file.clone()) else {
                    return Err(CliError::failed(format!(
                        "unit {name} has no log file colony-init knows of (see its [log] section)"
                    )));
                };
                let path = std::path::Path::new(&file);
                let stdout = std::io::stdout();
                if cli.json {
                    let mut out = logs::JsonLines::new(&name, stdout.lock());
                    logs::show(path, lines, follow, &mut out)?;
                } else {
                    logs::show(path, lines, follow, &mut stdout.lock())?;
                }
                Ok(exit::OK)
            }
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
                let dir = units_dir(&client, units)?;
                let (path, existed) = edit::add(&dir, &u)?;
                let what = if existed { "replaced" } else { "wrote" };
                if cli.json {
                    print_json(&serde_json::json!({"path": path, "replaced": existed}));
                } else {
                    println!("{what} {}", path.display());
                }
                Ok(exit::OK)
            }
            Cmd::Remove { name, units } => {
                let name = edit::unit_name(&name)?;
                let dir = units_dir(&client, units)?;
                let path = edit::remove(&dir, &name)?;
                if cli.json {
                    print_json(&serde_json::json!({"path": path, "removed": true}));
                } else {
                    println!("removed {}", path.display());
                }
                Ok(exit::OK)
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
                if let Ok(mut reply) = quick.request("status", &[]) {
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

/// `--units DIR`, else the directory of the colony-init that owns RUN (`info`).
fn units_dir(client: &client::Client, flag: Option<PathBuf>) -> Result<PathBuf, CliError> {
    if let Some(d) = flag {
        return Ok(d);
    }
    let mut reply = client.request("info", &[]).map_err(|e| {
        if e.code == exit::NO_ANSWER {
            CliError::new(
                e.code,
                format!("{}; or name the directory with --units DIR", e.message),
            )
        } else {
            e
        }
    })?;
    if !reply.ok {
        return Err(reply_error(&reply));
    }
    let info: Info = data(&mut reply)?;
    Ok(PathBuf::from(info.units_dir))
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
            Some(("status", vec!["web".into(), "@db".into(), "x".into()]))
        );
        let cli = parse(&["restart", "--no-block", "a", "--timeout", "5s"]).unwrap();
        assert_eq!(cli.timeout, Some(Duration::from_secs(5)));
        assert_eq!(
            request_of(&cli.command),
            Some(("restart", vec!["--no-block".into(), "a".into()]))
        );
        assert_eq!(default_timeout(&cli.command), Duration::from_secs(30));
        let cli = parse(&["stop", "a"]).unwrap();
        assert_eq!(default_timeout(&cli.command), Duration::from_secs(120));
        let cli = parse(&["signal", "HUP", "a.unit"]).unwrap();
        assert_eq!(
            request_of(&cli.command),
            Some(("signal", vec!["HUP".into(), "a".into()]))
        );
        assert_eq!(
            request_of(&parse(&["halt"]).unwrap().command),
            Some(("halt", vec![]))
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
    fn targets_strip_unit_suffix_only_from_names() {
        assert_eq!(target("web.unit"), "web");
        assert_eq!(target("web"), "web");
        assert_eq!(target("@tag.unit"), "@tag.unit");
        assert_eq!(target(".unit"), ".unit");
    }
}

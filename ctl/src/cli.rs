//! colonyctl's command line: every command, its arguments and their help.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

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
    pub(crate) run_dir: Option<PathBuf>,
    /// Print machine-readable JSON
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// How long to wait for colony-init's answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]
    #[arg(long, global = true, value_name = "DUR", value_parser = parse_duration)]
    pub(crate) timeout: Option<Duration>,
    /// fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]
    #[arg(long, global = true, value_name = "CONFIG")]
    pub(crate) fleet: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Cmd,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    units::values::parse_duration(s)
}

#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
    /// Show units (all when none is named)
    Status {
        /// Whole lines: do not cut columns to the terminal's width
        #[arg(short = 'l', long)]
        full: bool,
        /// Only units in this state (e.g. failed, running; comma-separated for several)
        #[arg(long, value_name = "STATE", value_delimiter = ',')]
        state: Vec<String>,
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
    /// Re-read the units directory now; with units named, run their exec_reload and wait
    /// until they are ready again
    Reload {
        /// Return once colony-init has the order, without waiting for the result
        #[arg(long)]
        no_block: bool,
        /// NAME, NAME.unit or @TAG (none: re-read the units directory)
        targets: Vec<String>,
    },
    /// Send a signal to units' main processes
    Signal {
        /// e.g. HUP, SIGUSR1, 10
        signal: String,
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// Show units' logs (all when none is named; `colony-init`: its own log)
    #[command(
        after_help = "Reads the files (LOG_DIR as colony-init recorded it in RUN, or --log-dir), so \
                      it works when colony-init is not running. Several units: merged in time \
                      order, each line prefixed `NAME| `. `colony-init` names colony-init's own \
                      log. -f ends quietly (exit 0) on Ctrl-C, SIGTERM, SIGHUP or \
                      when the reader goes away (`| head`)."
    )]
    Logs {
        /// NAME or NAME.unit; `colony-init` for colony-init's own log [default: every log]
        units: Vec<String>,
        /// Lines from the end [10; with --since: every line since]
        #[arg(short = 'n', long = "lines", value_name = "N")]
        lines: Option<usize>,
        /// Keep printing what is written (across rotations) until Ctrl-C
        #[arg(short, long)]
        follow: bool,
        /// Only lines written in the last DUR (e.g. 10m, 2h)
        #[arg(long, value_name = "DUR", value_parser = parse_duration)]
        since: Option<Duration>,
        /// Only lines matching this regular expression
        #[arg(long, value_name = "RE")]
        grep: Option<String>,
        /// The log directory [default: the one colony-init recorded in RUN/log-dir]
        #[arg(long, value_name = "DIR")]
        log_dir: Option<PathBuf>,
    },
    /// Timer units: schedule, next run, last run, last result
    Timers,
    /// Print state changes as they happen (with --json: one JSON object a line), until Ctrl-C
    #[command(
        after_help = "Like `docker events`: one line per state change of a unit (time, unit, old                       and new state, pid, restarts, reason). A unit that reads `colonyctl events                       --json` is how to act on a crash (see the example units). @TAG matches the                       units that had the tag when the stream started."
    )]
    Events {
        /// NAME, NAME.unit or @TAG [default: every unit]
        targets: Vec<String>,
    },
    /// Write NAME.unit into the units directory (atomically); return once colony-init has it
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
    /// Stop the unit, delete NAME.unit; return once colony-init has dropped it
    Remove {
        name: String,
        /// Units directory [default: the one of the running colony-init]
        #[arg(long, value_name = "DIR")]
        units: Option<PathBuf>,
    },
    /// Set `enabled = true` in NAME.unit (started with colony-init; --now: start it too)
    Enable(UnitFile),
    /// Set `enabled = false` in NAME.unit (not started with colony-init; --now: stop it too)
    Disable(UnitFile),
    /// Print NAME.unit as written
    Cat {
        name: String,
        /// Units directory [default: the one of the running colony-init]
        #[arg(long, value_name = "DIR")]
        units: Option<PathBuf>,
    },
    /// Print the unit as colony-init reads it: every key, defaults filled in
    Show {
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
    /// Upgrade colony-init in place: hand every unit to a new image of it, keeping its PID
    #[command(
        after_help = "PATH (default: colony-init's own executable as it is on disk now) is first \
                      run in a check mode on the state it is to take over; a binary that is \
                      missing, not executable or fails the check is refused and nothing \
                      changes. Every unit keeps running with its PID, log pipe, restart count, \
                      backoff, readiness and timers; clients waiting for an answer get it."
    )]
    Reexec {
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
    },
    /// colonyctl's version and the running colony-init's: since when, last re-executed when
    Version,
    /// Power the machine off (colony-init as PID 1 of a machine only)
    Poweroff,
    /// Reboot the machine (colony-init as PID 1 of a machine only)
    Reboot,
    /// Halt the machine (colony-init as PID 1 of a machine only)
    Halt,
}

#[derive(Debug, clap::Args)]
pub(crate) struct UnitFile {
    pub(crate) name: String,
    /// Also start (enable) or stop (disable) it now
    #[arg(long)]
    pub(crate) now: bool,
    /// Units directory [default: the one of the running colony-init]
    #[arg(long, value_name = "DIR")]
    pub(crate) units: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Targets {
    /// Return once colony-init has the order, without waiting for the result
    #[arg(long)]
    pub(crate) no_block: bool,
    /// NAME, NAME.unit or @TAG
    #[arg(required = true)]
    pub(crate) targets: Vec<String>,
}

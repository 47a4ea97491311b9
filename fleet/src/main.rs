//! colony-fleet: the agent (`colony-fleet [--config FILE]`) and the operator's commands
//! (`colony-fleet ctl ...`, which `colonyctl fleet ...` runs).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use colony_fleet::config::{self, Config};
use colony_fleet::ctl::{self, Command as Ctl};

#[derive(Parser)]
#[command(
    name = "colony-fleet",
    version,
    about = "Join this host to a colony fleet, on etcd"
)]
struct Cli {
    /// fleet.toml (default /etc/colony/fleet.toml, or $XDG_CONFIG_HOME/colony/fleet.toml)
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<Top>,
}

#[derive(Subcommand)]
enum Top {
    /// Run the agent (the default)
    Run,
    /// Look at and control the fleet
    Ctl {
        /// Print JSON
        #[arg(long, global = true)]
        json: bool,
        /// etcd endpoints (comma-separated), instead of those in the config
        #[arg(long, global = true, value_delimiter = ',')]
        endpoints: Vec<String>,
        #[command(subcommand)]
        cmd: CtlCmd,
    },
}

#[derive(Subcommand)]
enum CtlCmd {
    /// Every host and every application
    Status,
    /// Every host
    Hosts,
    /// Define or change an application from APP.toml
    Apply { file: PathBuf },
    /// Remove an application from the fleet (it stops everywhere)
    Remove { app: String },
    /// Run a stopped application again
    Start { app: String },
    /// Stop an application everywhere, keeping its definition
    Stop { app: String },
    /// Remove a lost host from the fleet for good (refused while it is up)
    Forget { host: String },
    /// Host or application names, one a line (for shell completion)
    #[command(name = "__names", hide = true)]
    Names { which: Names },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Names {
    Hosts,
    Apps,
}

fn load(path: Option<PathBuf>, endpoints: Vec<String>) -> Result<Config, String> {
    let p = path.clone().unwrap_or_else(config::default_path);
    let mut cfg = if path.is_none() && !p.exists() && !endpoints.is_empty() {
        Config::parse(&p, "").map_err(|e| e.to_string())?
    } else {
        Config::load(&p).map_err(|e| e.to_string())?
    };
    if !endpoints.is_empty() {
        cfg.endpoints = endpoints;
    }
    Ok(cfg)
}

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("colony-fleet: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match cli.cmd.unwrap_or(Top::Run) {
        Top::Run => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .init();
            match load(cli.config, Vec::new()) {
                Err(e) => {
                    eprintln!("colony-fleet: {e}");
                    2
                }
                Ok(cfg) => match rt.block_on(colony_fleet::agent::run(cfg)) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("colony-fleet: {e:#}");
                        1
                    }
                },
            }
        }
        Top::Ctl {
            json,
            endpoints,
            cmd,
        } => match load(cli.config, endpoints) {
            Err(e) => {
                eprintln!("colony-fleet: {e} (give --endpoints, or a fleet.toml with --config)");
                2
            }
            Ok(cfg) => {
                let cmd = match cmd {
                    CtlCmd::Status => Ctl::Status,
                    CtlCmd::Hosts => Ctl::Hosts,
                    CtlCmd::Apply { file } => Ctl::Apply(file),
                    CtlCmd::Remove { app } => Ctl::Remove(app),
                    CtlCmd::Start { app } => Ctl::Start(app),
                    CtlCmd::Stop { app } => Ctl::Stop(app),
                    CtlCmd::Forget { host } => Ctl::Forget(host),
                    CtlCmd::Names { which } => Ctl::Names {
                        hosts: matches!(which, Names::Hosts),
                    },
                };
                rt.block_on(ctl::run(&cfg, cmd, json))
            }
        },
    };
    std::process::exit(code);
}

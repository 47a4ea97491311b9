//! colony-web: the dashboard and HTTP API of a colony-init, through its control FIFO.

// Handlers return an axum `Response` as their error: it is what is sent, once per request.
#![allow(clippy::result_large_err)]

mod auth;
mod config;
mod fifo;
mod fleet;
mod fleet_pages;
mod fleet_routes;
mod metrics;
mod pages;
mod routes;
mod serve;
mod state;
mod table;
mod users;

use std::io::Read;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "colony-web",
    version,
    about = "colony's dashboard and HTTP API"
)]
struct Cli {
    /// web.toml [root: /etc/colony/web.toml; else $XDG_CONFIG_HOME/colony/web.toml]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Set a user's password (read from stdin) and role in the users file
    Passwd {
        name: String,
        #[arg(long, value_parser = ["viewer", "operator"])]
        role: String,
        /// The users file [default: users_file of the config]
        #[arg(long, value_name = "FILE")]
        users: Option<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("colony-web: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let path = cli.config.clone().unwrap_or_else(config::default_path);
    let cfg = config::Config::load(&path, cli.config.is_some())?;
    match cli.cmd {
        Some(Cmd::Passwd { name, role, users }) => {
            let mut pw = String::new();
            std::io::stdin().read_to_string(&mut pw)?;
            let pw = pw.lines().next().unwrap_or("").to_string();
            let file = users.unwrap_or(cfg.users_file);
            users::passwd(&file, &name, role.parse().map_err(anyhow::Error::msg)?, &pw)?;
            println!("{name} ({role}) written to {}", file.display());
            Ok(())
        }
        None => serve(cfg),
    }
}

fn serve(cfg: config::Config) -> anyhow::Result<()> {
    let users = users::Users::load(&cfg.users_file)?;
    if users.is_empty() {
        tracing::warn!(file = %cfg.users_file.display(), "no users: nobody can log in (colony-web passwd NAME --role operator)");
    }
    let tls = cfg.tls.as_ref().map(serve::tls_config).transpose()?;
    let fleet = cfg
        .fleet
        .as_deref()
        .map(fleet::Fleet::load)
        .transpose()
        .map_err(|e| anyhow::anyhow!("fleet: {e:#}"))?;
    if tls.is_none() && cfg.insecure_http && !cfg.listen.ip().is_loopback() {
        for _ in 0..3 {
            tracing::error!(listen = %cfg.listen, "INSECURE: serving plain HTTP on a non-loopback address (insecure_http = true): passwords and sessions cross the network in clear text");
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
        tracing::info!(listen = %listener.local_addr()?, tls = tls.is_some(), run_dir = %cfg.run_dir.display(), "colony-web listening");
        let app = state::App::new(cfg, users, fleet);
        state::pump_events(app.clone());
        state::sample(app.clone());
        state::watch_fleet(app.clone());
        let router = routes::router(app);
        tokio::select! {
            _ = serve::serve(listener, router, tls) => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = async {
                if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    s.recv().await;
                }
            } => {}
        }
        Ok(())
    })
}

//! `colonyctl fleet ...`: hands over to `colony-fleet ctl ...`, which holds the etcd client,
//! so colonyctl itself links no async runtime or gRPC stack.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

/// What `colonyctl [--fleet CONFIG] [--json] fleet ARGS...` was given.
#[derive(Debug, Clone, Default)]
pub struct FleetArgs {
    /// `--fleet CONFIG`: the fleet.toml with etcd's endpoints and credentials.
    pub config: Option<PathBuf>,
    pub json: bool,
    /// `status`, `hosts`, `apply APP.toml`, `remove APP`, `start APP`, `stop APP`, `forget HOST`,
    /// and their options (`--endpoints URL,...`).
    pub args: Vec<String>,
}

/// colony-fleet beside colonyctl (both are installed together), else from PATH.
pub fn fleet_binary() -> PathBuf {
    if let Ok(me) = std::env::current_exe() {
        let p = me.with_file_name("colony-fleet");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("colony-fleet")
}

/// The command that does the work: `colony-fleet [--config CONFIG] ctl [--json] ARGS...`.
pub fn fleet_command(args: &FleetArgs) -> Command {
    let mut cmd = Command::new(fleet_binary());
    if let Some(c) = &args.config {
        cmd.arg("--config").arg(c);
    }
    cmd.arg("ctl");
    if args.json {
        cmd.arg("--json");
    }
    cmd.args(args.args.iter().map(OsString::from));
    cmd
}

/// Replace this process with colony-fleet; returns only when that fails (exit code 1).
pub fn run_fleet(args: FleetArgs) -> i32 {
    let err = fleet_command(&args).exec();
    eprintln!(
        "colonyctl: cannot run {}: {err}; install colony-fleet beside colonyctl or in PATH",
        fleet_binary().display()
    );
    units::proto::exit::FAILED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_fleet_command() {
        let c = fleet_command(&FleetArgs {
            config: Some("/etc/f.toml".into()),
            json: true,
            args: vec!["apply".into(), "web.toml".into()],
        });
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--config",
                "/etc/f.toml",
                "ctl",
                "--json",
                "apply",
                "web.toml"
            ]
        );
        assert!(c.get_program().to_string_lossy().ends_with("colony-fleet"));
    }
}

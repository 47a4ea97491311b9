//! colony-init's options and paths (root defaults or XDG).
//!
//! Parsed by hand: colony-init keeps clap out of PID 1 (size), and its options are few.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::core::Defaults;

#[derive(Debug, Clone)]
pub struct Options {
    pub units_dir: PathBuf,
    pub run_dir: PathBuf,
    pub log_dir: PathBuf,
    pub state_dir: PathBuf,
    /// Group allowed to write the control FIFO.
    pub control_group: Option<String>,
    pub defaults: Defaults,
    /// Name of the cgroup colony-init creates below its own for its units.
    pub cgroup_name: String,
    /// `-- CMD ARG...`: entrypoint mode.
    pub entrypoint: Option<Vec<OsString>>,
    /// `-v`: debug logging.
    pub verbose: bool,
    /// `--run-dir` or `COLONY_RUN_DIR` was given (entrypoint mode then has a control FIFO).
    pub run_dir_given: bool,
    /// `--console-logs` (true) / `--no-console-logs` (false): copy unit output to our
    /// standard output. `None`: in a container only.
    pub console_logs: Option<bool>,
    /// Where `load_credential = { NAME = "" }` looks NAME up, in order: colony-init's own
    /// `$CREDENTIALS_DIRECTORY` (when something started it with credentials), then
    /// /etc/credstore, /run/credstore, /usr/lib/credstore; `--credstore DIR` (repeatable)
    /// replaces the list.
    pub credstores: Vec<PathBuf>,
}

/// The credential stores systemd searches, in its order (systemd.exec(5), `LoadCredential=`).
pub const CREDSTORES: [&str; 3] = ["/etc/credstore", "/run/credstore", "/usr/lib/credstore"];

/// The default credential stores: the credentials colony-init was itself given first.
fn default_credstores() -> Vec<PathBuf> {
    let own = std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    own.into_iter()
        .chain(CREDSTORES.iter().map(PathBuf::from))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown option {0}; see colony-init --help")]
    Unknown(String),
    #[error("option {0} needs a value")]
    MissingValue(String),
    #[error("option {option}: {message}")]
    BadValue { option: String, message: String },
    #[error("`--` must be followed by a command")]
    EmptyCommand,
    /// `--help` or `--version`: print this and exit 0.
    #[error("{0}")]
    Info(String),
}

pub const USAGE: &str = "\
usage: colony-init [OPTIONS]                  supervise every unit in the units directory
       colony-init [OPTIONS] -- CMD [ARG...]  run one program: forward signals, reap, exit with its status

options:
  --units DIR              units directory (root: /etc/colony/units; else $XDG_CONFIG_HOME/colony/units)
  --run-dir DIR            runtime directory, env COLONY_RUN_DIR (root: /run/colony; else $XDG_RUNTIME_DIR/colony)
  --log-dir DIR            unit logs (root: /var/log/colony; else $XDG_STATE_HOME/colony/log)
  --state-dir DIR          persistent state (root: /var/lib/colony; else $XDG_STATE_HOME/colony)
  --control-group GROUP    members of GROUP may write the control FIFO too
  --threshold DUR          a death sooner than this after start counts as instant (1s; within 100ms, always)
  --kill-timeout DUR       stop signal to SIGKILL (5s)
  --min-restart-delay DUR  first restart delay (1s)
  --max-restart-delay DUR  longest restart delay (1h)
  --cgroup-name NAME       cgroup created below colony-init's own for its units (colony)
  --no-console-logs        in a container, do not copy unit output to standard output as NAME| LINE
  --console-logs           copy it there outside a container too
  --credstore DIR          look credentials loaded by name up in DIR (repeatable; replaces the default
                           $CREDENTIALS_DIRECTORY, /etc/credstore, /run/credstore, /usr/lib/credstore)
  -v, --verbose            debug logging
";

impl Options {
    /// The defaults for this user (colony-init(8), OPTIONS; the rule is units' `paths`).
    pub fn defaults_for(is_root: bool) -> Options {
        let units::paths::Dirs {
            units: units_dir,
            run: run_dir,
            log: log_dir,
            state: state_dir,
            ..
        } = units::paths::defaults(is_root);
        let run_dir_given = std::env::var_os("COLONY_RUN_DIR").is_some_and(|v| !v.is_empty());
        Options {
            units_dir,
            run_dir,
            log_dir,
            state_dir,
            control_group: None,
            defaults: Defaults::default(),
            cgroup_name: "colony".into(),
            entrypoint: None,
            verbose: false,
            run_dir_given,
            console_logs: None,
            credstores: default_credstores(),
        }
    }

    /// Parse the arguments after argv[0].
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Options, ConfigError> {
        let mut o = Options::defaults_for(nix::unistd::geteuid().is_root());
        let mut args = args.into_iter();
        let mut credstores: Option<Vec<PathBuf>> = None;
        while let Some(arg) = args.next() {
            let arg_s = arg.to_string_lossy().into_owned();
            if arg_s == "--" {
                let cmd: Vec<OsString> = args.by_ref().collect();
                if cmd.is_empty() {
                    return Err(ConfigError::EmptyCommand);
                }
                o.entrypoint = Some(cmd);
                break;
            }
            let (name, inline) = match arg_s.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(OsString::from(v))),
                _ => (arg_s.clone(), None),
            };
            let mut value = |name: &str| -> Result<OsString, ConfigError> {
                match inline.clone() {
                    Some(v) => Ok(v),
                    None => args
                        .next()
                        .ok_or_else(|| ConfigError::MissingValue(name.to_string())),
                }
            };
            let dur = |name: &str, v: OsString| -> Result<Duration, ConfigError> {
                let s = v.to_string_lossy();
                humantime_duration(&s).map_err(|message| ConfigError::BadValue {
                    option: name.to_string(),
                    message,
                })
            };
            match name.as_str() {
                "--units" => o.units_dir = value(&name)?.into(),
                "--run-dir" => {
                    o.run_dir = value(&name)?.into();
                    o.run_dir_given = true;
                }
                "--log-dir" => o.log_dir = value(&name)?.into(),
                "--state-dir" => o.state_dir = value(&name)?.into(),
                "--control-group" => {
                    o.control_group = Some(value(&name)?.to_string_lossy().into_owned())
                }
                "--cgroup-name" => o.cgroup_name = value(&name)?.to_string_lossy().into_owned(),
                "--threshold" => o.defaults.threshold = dur(&name, value(&name)?)?,
                "--kill-timeout" => o.defaults.kill_timeout = dur(&name, value(&name)?)?,
                "--min-restart-delay" => o.defaults.min_restart_delay = dur(&name, value(&name)?)?,
                "--max-restart-delay" => o.defaults.max_restart_delay = dur(&name, value(&name)?)?,
                "-v" | "--verbose" => o.verbose = true,
                "--credstore" => credstores
                    .get_or_insert_with(Vec::new)
                    .push(value(&name)?.into()),
                "--console-logs" => o.console_logs = Some(true),
                "--no-console-logs" => o.console_logs = Some(false),
                "-h" | "--help" => return Err(ConfigError::Info(USAGE.to_string())),
                "-V" | "--version" => {
                    return Err(ConfigError::Info(format!(
                        "colony-init {}\n",
                        crate::version()
                    )))
                }
                // The kernel passes unknown boot parameters to init as arguments: ignore
                // those (no leading dash) rather than refusing to boot.
                other if !other.starts_with('-') && nix::unistd::getpid().as_raw() == 1 => {}
                other => return Err(ConfigError::Unknown(other.to_string())),
            }
        }
        if let Some(c) = credstores {
            o.credstores = c;
        }
        Ok(o)
    }
}

/// A duration as units files write them (`500ms`, `1h 30m`).
fn humantime_duration(s: &str) -> Result<Duration, String> {
    units::values::parse_duration(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, ConfigError> {
        Options::parse(args.iter().map(OsString::from))
    }

    #[test]
    fn entrypoint_takes_everything_after_dashes() {
        let o = parse(&["--kill-timeout", "2s", "--", "sh", "-c", "--units"]).unwrap();
        assert_eq!(o.defaults.kill_timeout, Duration::from_secs(2));
        assert_eq!(
            o.entrypoint.unwrap(),
            vec![OsString::from("sh"), "-c".into(), "--units".into()]
        );
    }

    #[test]
    fn console_logs_follow_the_mode_unless_a_flag_says() {
        assert_eq!(parse(&[]).unwrap().console_logs, None);
        assert_eq!(
            parse(&["--no-console-logs"]).unwrap().console_logs,
            Some(false)
        );
        assert_eq!(parse(&["--console-logs"]).unwrap().console_logs, Some(true));
    }

    #[test]
    fn credstores_default_to_systemds_and_an_option_replaces_them() {
        let d = parse(&[]).unwrap().credstores;
        assert!(d.ends_with(&CREDSTORES.map(PathBuf::from)), "{d:?}");
        let o = parse(&["--credstore", "/a", "--credstore=/b"]).unwrap();
        assert_eq!(o.credstores, [PathBuf::from("/a"), PathBuf::from("/b")]);
    }

    #[test]
    fn options_with_equals_and_errors() {
        let o = parse(&["--units=/x", "--run-dir", "/r"]).unwrap();
        assert_eq!(o.units_dir, PathBuf::from("/x"));
        assert_eq!(o.run_dir, PathBuf::from("/r"));
        assert!(matches!(parse(&["--bogus"]), Err(ConfigError::Unknown(_))));
        assert!(matches!(
            parse(&["--units"]),
            Err(ConfigError::MissingValue(_))
        ));
        assert!(matches!(parse(&["--"]), Err(ConfigError::EmptyCommand)));
        assert!(matches!(
            parse(&["--threshold", "soon"]),
            Err(ConfigError::BadValue { .. })
        ));
    }
}

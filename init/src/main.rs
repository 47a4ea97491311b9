//! colony-init's entry: parse options, pick the mode, run.

use colony_init::config::{ConfigError, Options};

fn main() {
    let opts = match Options::parse(std::env::args_os().skip(1)) {
        Ok(o) => o,
        Err(ConfigError::Info(text)) => {
            print!("{text}");
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("colony-init: {e}");
            std::process::exit(2);
        }
    };
    if let Some(cmd) = opts.entrypoint {
        std::process::exit(colony_init::entrypoint::run(
            cmd,
            opts.defaults.kill_timeout,
        ));
    }
    let _ = opts;
    std::process::exit(0);
}

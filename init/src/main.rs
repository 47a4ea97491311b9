//! colony-init's entry: parse options, pick the mode, run.

#![deny(clippy::unwrap_used, clippy::expect_used)]

use colony_init::config::{ConfigError, Options};
use colony_init::event_loop::Engine;
use colony_init::pid1::{self, Mode};
use tracing::{error, info};

fn main() {
    pin_mmap_threshold();
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
    init_tracing(opts.verbose);

    if let Some(cmd) = opts.entrypoint.clone() {
        std::process::exit(colony_init::entrypoint::run(
            cmd,
            opts.defaults.kill_timeout,
        ));
    }

    let mode = pid1::detect_mode();
    if mode != Mode::Plain {
        for w in pid1::early_setup(mode) {
            tracing::warn!("{w}");
        }
    } else if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(error = %e, "cannot become a child subreaper: orphans go to PID 1");
    }
    info!(?mode, units = %opts.units_dir.display(), run = %opts.run_dir.display(), "colony-init starting");

    let kill_timeout = opts.defaults.kill_timeout;
    let outcome = match Engine::new(opts, mode) {
        Ok(engine) => engine.run(),
        Err(e) => {
            error!(error = %e, "cannot start supervising");
            if mode == Mode::Machine {
                pid1::reap_forever();
            }
            std::process::exit(1);
        }
    };
    if outcome.broken && mode == Mode::Machine {
        // PID 1 never exits on its own fault: keep reaping so the machine stays up.
        pid1::reap_forever();
    }
    if mode == Mode::Machine {
        let action = outcome.power.unwrap_or(pid1::PowerAction::PowerOff);
        pid1::final_shutdown(action, kill_timeout);
    }
    std::process::exit(outcome.code);
}

fn init_tracing(verbose: bool) {
    let level = if verbose {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// glibc raises its mmap threshold each time a big buffer (a `status` reply for 1000 units)
/// is freed, so the next ones come from the heap and stay resident for good. A fixed
/// threshold sends each big buffer to mmap and back to the kernel when it is freed.
fn pin_mmap_threshold() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
    }
}

//! colony-init's entry: parse options, pick the mode, run.

#![deny(clippy::unwrap_used, clippy::expect_used)]

use colony_init::config::{ConfigError, Options};
use colony_init::event_loop::Engine;
use colony_init::handover;
use colony_init::kernel::pid1::{self, Mode};
use tracing::{error, info};

fn main() {
    handover::image_started();
    pin_mmap_threshold();
    let mut raw = std::env::args().skip(1);
    if raw.next().as_deref() == Some(handover::CHECK_OPTION) {
        std::process::exit(handover::check_mode(raw.next().as_deref()));
    }
    let handover_fd = handover::take_env_fd();
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
        let state = handover_fd.and_then(|fd| {
            let r = handover::read_fd(fd);
            // SAFETY: the fd named by the previous image for the state; nothing else owns it.
            drop(unsafe { handover::adopt(fd) });
            r.map_err(|e| eprintln!("colony-init: cannot read the handed-over state: {e}"))
                .ok()
        });
        std::process::exit(colony_init::entrypoint::run(
            cmd,
            opts.defaults.kill_timeout,
            opts.run_dir_given.then(|| opts.run_dir.clone()),
            state,
        ));
    }

    // A reexec: the state the previous image handed over (its fd closed once read).
    let state = handover_fd.and_then(|fd| {
        let r = handover::read_fd(fd);
        // SAFETY: the fd named by the previous image for the state; nothing else owns it.
        drop(unsafe { handover::adopt(fd) });
        r.map_err(|e| error!(error = %e, "cannot read the handed-over state: starting afresh"))
            .ok()
    });
    let mode = pid1::detect_mode();
    if state.is_some() {
        // Mounts, subreaper and the rest were done by the first image.
    } else if mode != Mode::Plain {
        for w in pid1::early_setup(mode) {
            tracing::warn!("{w}");
        }
    } else if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(error = %e, "cannot become a child subreaper: orphans go to PID 1");
    }
    info!(%mode, units = %opts.units_dir.display(), run = %opts.run_dir.display(), "colony-init starting");

    let kill_timeout = opts.defaults.kill_timeout;
    let engine = match state {
        Some(st) => Engine::take_over_from(opts, mode, st),
        None => Engine::new(opts, mode),
    };
    let outcome = match engine {
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
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // stderr, and a copy in LOG_DIR once the loop has opened it (colony_init::self_log).
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let file = tracing_subscriber::fmt::layer()
        .with_writer(colony_init::self_log::Writer)
        .with_ansi(false)
        .without_time();
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::from_level(level))
        .with(stderr)
        .with(file)
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

//! Entrypoint mode (colony-init -- CMD): forward signals, reap, exit with CMD's status.

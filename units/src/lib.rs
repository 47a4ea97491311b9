//! colony's unit-file model, shared by colony-init and colonyctl.
//!
//! - [`model`]: the typed unit (what a valid file says, with defaults filled in);
//! - [`parse`]: TOML text -> [`model::Unit`] with located, helpful errors;
//! - [`values`]: durations, sizes, signals, capabilities, users, cron...;
//! - [`validate`]: a directory as a whole (dependencies, cycles);
//! - [`diag`]: the error type, printed as `FILE:LINE:COL: KEY: message`;
//! - [`exec_env`]: environment files, managed directories, nice, rlimits, credentials;
//! - [`socket`]: `[socket]` (listening sockets passed as `LISTEN_FDS`, on-demand starts);
//! - [`tty`]: `[tty]` (the program on a terminal: its controlling tty, reset, hang-up);
//! - [`sandbox`]: `[sandbox]` (mount namespace and seccomp keys, systemd's syscall groups);
//! - [`proto`]: the control-FIFO protocol and the status/timers JSON shapes;
//! - [`paths`]: the default directories (units, RUN, logs, state) every program agrees on;
//! - [`conditions`]: `condition_*`/`assert_*`, checked when a start begins;
//! - [`hooks`]: commands run around the main process (`exec_start_pre`...);
//! - [`words`]: systemd's word splitting;
//! - [`template`]: `NAME@.unit` templates and `instances = N`;
//! - [`userdb`]: users and groups read from `/etc/passwd` and `/etc/group`, never NSS.

pub mod conditions;
pub mod diag;
pub mod exec_env;
pub mod hooks;
pub mod model;
pub mod parse;
pub mod paths;
pub mod proto;
pub mod sandbox;
pub mod socket;
pub mod template;
pub mod template_load;
pub mod tty;
pub mod userdb;
pub mod validate;
pub mod values;
pub mod words;

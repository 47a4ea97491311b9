//! colony-fleet: supervise applications over many hosts, on etcd.
//!
//! Each host runs colony-init and, as one of its units, a colony-fleet agent. The agents
//! hold leases in etcd, publish their hosts, elect one leader that places applications,
//! and turn their own assignments into unit files that their colony-init runs.

pub mod admit;
pub mod agent;
pub mod app;
pub mod config;
pub mod ctl;
pub mod leader;
pub mod local;
pub mod once;
pub mod place;
pub mod policy;
pub mod reconcile;
pub mod records;
pub mod store;

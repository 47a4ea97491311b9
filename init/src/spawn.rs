//! Starting a unit's process: clone3/fork with an async-signal-safe child path.

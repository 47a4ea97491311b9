//! TOML text to a typed unit, with located errors.

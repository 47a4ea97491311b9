//! colony-init's options and paths (root defaults or XDG).

//! Reaping: unit main processes through their pidfds, orphans by waitpid.

//! Unit output: pipes read by the loop, lines time-stamped into rotated log files.

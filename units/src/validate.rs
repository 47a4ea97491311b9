//! A directory of units as a whole: unknown dependencies and cycles.

//! The units directory: reading it whole, ignoring editors' temporary files.

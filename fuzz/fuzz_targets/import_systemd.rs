#![no_main]

use colonyctl::import::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| colony_fuzz::import::run(data, Format::Systemd, "a.service", true));

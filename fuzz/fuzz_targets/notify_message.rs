#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| colony_fuzz::notify::run(data));

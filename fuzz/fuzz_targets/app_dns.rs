//! The dns decoder on an arbitrary payload. See `props::check_app_dns`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| netanalyzer_fuzz::props::check_app_dns(input));

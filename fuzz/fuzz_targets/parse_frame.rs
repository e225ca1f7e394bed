//! One frame: the first byte selects the link type (and a cut-short
//! capture), the rest is the frame. See `props::check_parse_frame`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| netanalyzer_fuzz::props::check_parse_frame(input));

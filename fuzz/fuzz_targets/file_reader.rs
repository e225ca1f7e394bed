//! Arbitrary bytes as a pcap or pcapng file. See `props::check_file_reader`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| netanalyzer_fuzz::props::check_file_reader(input));

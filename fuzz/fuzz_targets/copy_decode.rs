//! The binary COPY decoder the aggregator reads `raw_packets` through, on
//! arbitrary bytes (byte 0 picks a chunk size): never a panic, and any
//! chunking decodes exactly as one piece. See
//! `netanalyzer-store/tests/copy/props.rs`, shared with the corpus replay
//! in `netanalyzer-store/tests/copy_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../netanalyzer-store/tests/copy/props.rs"]
mod props;

fuzz_target!(|input: &[u8]| {
    props::check_copy_decode(input);
});

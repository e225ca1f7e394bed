//! The batch wire decoder on an arbitrary body. Byte 0 selects the format
//! (bit 0: JSON, else msgpack) and zstd (bit 1); the rest is the body.
//! A decoded batch must re-encode to an equal batch. See
//! `netanalyzer-store/tests/wire/props.rs`, shared with the corpus replay
//! in `netanalyzer-store/tests/wire.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../netanalyzer-store/tests/wire/props.rs"]
mod props;

fuzz_target!(|input: &[u8]| {
    props::check_batch_decode(input);
});

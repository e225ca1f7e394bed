//! A model file (rmp-serde) on arbitrary bytes: refused, or a model that predicts on any row and re-encodes to itself.
//! See `netanalyzer-ml/tests/decode/props.rs`, shared with the corpus
//! replay in `netanalyzer-ml/tests/decode.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../netanalyzer-ml/tests/decode/props.rs"]
mod props;

fuzz_target!(|input: &[u8]| {
    props::check_model_decode(input);
});

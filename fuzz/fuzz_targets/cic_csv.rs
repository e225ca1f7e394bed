//! The CIC CSV reader (all three layouts) on arbitrary bytes: refused, or a full matrix of finite values with a class per row.
//! See `netanalyzer-ml/tests/decode/props.rs`, shared with the corpus
//! replay in `netanalyzer-ml/tests/decode.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../netanalyzer-ml/tests/decode/props.rs"]
mod props;

fuzz_target!(|input: &[u8]| {
    props::check_cic_csv(input);
});

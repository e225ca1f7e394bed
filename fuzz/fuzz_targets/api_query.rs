//! The query API's parameter checks (query string, time window, cursor)
//! on arbitrary bytes (byte 0 picks the endpoint): never a panic, the
//! same answer twice, and a cursor encoded from arbitrary values decodes
//! back to itself. See `netanalyzer-store/tests/api_query/props.rs`,
//! shared with the corpus replay in
//! `netanalyzer-store/tests/api_query_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../netanalyzer-store/tests/api_query/props.rs"]
mod props;

fuzz_target!(|input: &[u8]| {
    props::check_api_query(input);
});

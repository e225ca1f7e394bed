//! Properties of the query API's parameter checks, shared by the fuzz
//! target (`fuzz/fuzz_targets/api_query.rs`) and the corpus replay in
//! `netanalyzer-store/tests/api_query_corpus.rs`.

use netanalyzer_store::server::api::{
    check_query_at, cursor_round_trip, ApiEndpoint, CursorValues,
};

/// The clock of the checks (2023-11-14T22:13:20Z), fixed so that a
/// finding reproduces.
pub const NOW_US: i64 = 1_700_000_000_000_000;

/// The endpoint of selector byte `b`: `f`, `a`, `p`, `t`, `s` name
/// flows, alerts, raw_packets, alltraffic and stats (so seeds are
/// readable text); any other byte picks one by its value.
pub fn endpoint(b: u8) -> ApiEndpoint {
    match b {
        b'f' => ApiEndpoint::Flows,
        b'a' => ApiEndpoint::Alerts,
        b'p' => ApiEndpoint::RawPackets,
        b't' => ApiEndpoint::AllTraffic,
        b's' => ApiEndpoint::Stats,
        _ => ApiEndpoint::ALL[usize::from(b) % ApiEndpoint::ALL.len()],
    }
}

/// Cursor values from the first 25 bytes of `input` (zero-padded): byte
/// 0 picks the kind, then `ts_us` (8 bytes), `rem` (2), `block` (4),
/// `offset` (2) and `id` (8), little-endian.
pub fn cursor_values(input: &[u8]) -> CursorValues {
    let mut b = [0u8; 25];
    let n = input.len().min(25);
    b[..n].copy_from_slice(&input[..n]);
    let i64_at = |i: usize| i64::from_le_bytes(b[i..i + 8].try_into().unwrap());
    let ts_us = i64_at(1);
    let rem = i16::from_le_bytes([b[9], b[10]]);
    let block = u32::from_le_bytes([b[11], b[12], b[13], b[14]]);
    let offset = u16::from_le_bytes([b[15], b[16]]);
    match b[0] % 3 {
        0 => CursorValues::Packet {
            ts_us,
            rem,
            block,
            offset,
        },
        1 => CursorValues::Flow {
            ts_us,
            block,
            offset,
        },
        _ => CursorValues::Alert {
            ts_us,
            id: i64_at(17),
        },
    }
}

/// Byte 0 selects the endpoint ([`endpoint`]); the rest, as text (lossy
/// UTF-8), is the query string. The check never panics and gives the same
/// answer twice; a refusal has a reason. And a cursor encoded from values
/// read off the same bytes ([`cursor_values`]) decodes back to itself,
/// only for its own endpoint, and passes that endpoint's checks.
pub fn check_api_query(input: &[u8]) {
    let Some((&sel, rest)) = input.split_first() else {
        return;
    };
    let e = endpoint(sel);
    let query = String::from_utf8_lossy(rest);
    let first = check_query_at(e, &query, NOW_US);
    let again = check_query_at(e, &query, NOW_US);
    assert_eq!(first, again, "{e:?} {query:?}: not deterministic");
    if let Err(reason) = &first {
        assert!(
            !reason.is_empty(),
            "{e:?} {query:?}: a refusal without reason"
        );
    }
    if let Err(why) = cursor_round_trip(cursor_values(input)) {
        panic!("cursor round trip: {why}");
    }
}

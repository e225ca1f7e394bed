//! Properties of the binary COPY decoder behind `flowdb::PacketFeed`,
//! shared by the fuzz target (`fuzz/fuzz_targets/copy_decode.rs`) and the
//! corpus replay in `netanalyzer-store/tests/copy_corpus.rs`.

use netanalyzer_core::PacketRecord;
use netanalyzer_store::flowdb::decode_copy_stream;

fn decode(bytes: &[u8], chunk: usize) -> Result<Vec<(String, PacketRecord)>, String> {
    let mut out = Vec::new();
    decode_copy_stream(bytes, chunk, &mut |s, r| {
        out.push((s.to_owned(), r.clone()))
    })
    .map(|n| {
        assert_eq!(n as usize, out.len(), "row count and rows delivered differ");
        out
    })
    .map_err(|e| e.to_string())
}

/// Byte 0 picks a chunk size; the rest is a COPY stream. Decoding never
/// panics, and the stream cut into chunks at any size decodes exactly as
/// in one piece: the same rows, or an error in both cases.
pub fn check_copy_decode(input: &[u8]) {
    let Some((&seed, stream)) = input.split_first() else {
        return;
    };
    let whole = decode(stream, stream.len().max(1));
    let chunked = decode(stream, usize::from(seed) + 1);
    match (&whole, &chunked) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "chunking changed the rows"),
        (Err(_), Err(_)) => {}
        _ => panic!("whole {whole:?} vs chunked {chunked:?}"),
    }
}

//! Shared by the integration tests that read the real captures in
//! `../shared/pcaps` (found by `testing::shared_pcaps_or_skip`): their
//! tshark oracle.
#![allow(dead_code)] // each test binary uses a part

use std::io::Read;
use std::path::Path;

/// The oracle text of capture `name` and the suffix it was read from:
/// `NAME.fields.noreasm.tsv` when `prefer_noreasm` and it exists, else
/// `NAME.fields.tsv`; either may be stored gzip-compressed.
///
/// # Panics
/// When the capture has no oracle.
pub fn read_oracle(dir: &Path, name: &str, prefer_noreasm: bool) -> (String, String) {
    let oracle = dir.join("oracle");
    let suffixes: &[&str] = if prefer_noreasm {
        &[".fields.noreasm.tsv", ".fields.tsv"]
    } else {
        &[".fields.tsv"]
    };
    for suffix in suffixes {
        let plain = oracle.join(format!("{name}{suffix}"));
        if plain.is_file() {
            return (
                std::fs::read_to_string(&plain).unwrap(),
                (*suffix).to_owned(),
            );
        }
        let gz = oracle.join(format!("{name}{suffix}.gz"));
        if gz.is_file() {
            let mut s = String::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap())
                .read_to_string(&mut s)
                .unwrap();
            return (s, format!("{suffix}.gz"));
        }
    }
    panic!("no oracle for {name}");
}

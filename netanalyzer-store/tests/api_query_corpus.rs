//! Replays the committed `api_query` fuzz corpus (and any
//! `fuzz/artifacts/api_query/` finds) with the fuzz target's property
//! checks, and pins what the hand-written seeds must be answered.
//!
//! A seed is byte 0 selecting the endpoint (`f` flows, `a` alerts, `p`
//! raw_packets, `t` alltraffic, `s` stats) followed by the query string.

#[path = "api_query/props.rs"]
mod props;

use netanalyzer_store::server::api::check_query_at;
use std::path::{Path, PathBuf};

fn dir(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(sub)
}

fn files(d: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(d) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

#[test]
fn corpus_keeps_the_properties() {
    let seeds = files(&dir("corpus/api_query"));
    assert!(seeds.len() >= 20, "the seed corpus is missing");
    for f in seeds.iter().chain(&files(&dir("artifacts/api_query"))) {
        let bytes = std::fs::read(f).unwrap();
        if std::panic::catch_unwind(|| props::check_api_query(&bytes)).is_err() {
            panic!("{} breaks a property", f.display());
        }
    }
}

/// Seeds named `ok-*` pass the checks, `bad-*` are refused with a reason
/// naming the parameter after `bad-` (up to the next `-`); `found-*` and
/// `repro-*` only need the properties.
#[test]
fn seeds_are_answered_as_named() {
    for f in files(&dir("corpus/api_query")) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&f).unwrap();
        let (sel, query) = bytes.split_first().unwrap();
        let e = props::endpoint(*sel);
        let r = check_query_at(e, &String::from_utf8_lossy(query), props::NOW_US);
        if name.starts_with("ok-") {
            assert_eq!(r, Ok(()), "{name}");
        } else if let Some(rest) = name.strip_prefix("bad-") {
            let param = rest.split('-').next().unwrap();
            let reason = r.expect_err(&name);
            assert!(reason.contains(param), "{name}: {reason}");
        }
    }
}

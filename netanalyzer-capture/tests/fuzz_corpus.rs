//! Replays the committed fuzz corpus as ordinary tests.
//!
//! Every file under `fuzz/corpus/<target>/` (and, when present, every crash
//! reproducer under `fuzz/artifacts/<target>/`) goes through the same
//! property checks as `cargo fuzz run <target>`: they are the file
//! `fuzz/src/props.rs`, included here by path.
//!
//! The seed corpus itself is made by the ignored test `make_corpus` below,
//! from hand-crafted frames, files and payloads and from the traffic
//! generator (see `docs/fuzzing.md`):
//!
//! ```text
//! cargo test -p netanalyzer-capture --test fuzz_corpus -- --ignored make_corpus
//! ```

#[path = "../../fuzz/src/props.rs"]
mod props;

#[path = "fuzz_corpus/seeds.rs"]
mod seeds;

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Runs `check` on every file of the target's corpus and artifacts; fails
/// with the list of files whose check panicked. Returns how many files ran.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let mut files = Vec::new();
    for sub in ["corpus", "artifacts"] {
        let dir = fuzz_dir().join(sub).join(target);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let path = e.expect("read corpus dir").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut failed = Vec::new();
    for path in &files {
        let data = fs::read(path).expect("read corpus file");
        if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs broke a property:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
    files.len()
}

/// The committed corpus must exist, or the replay proves nothing.
fn replay_seeded(target: &str, check: fn(&[u8]), min_files: usize) {
    let n = replay(target, check);
    assert!(
        n >= min_files,
        "{target}: only {n} corpus files (expected >= {min_files}); run make_corpus"
    );
}

#[test]
fn replay_parse_frame() {
    replay_seeded("parse_frame", props::check_parse_frame, 100);
}

#[test]
fn replay_file_reader() {
    replay_seeded("file_reader", props::check_file_reader, 10);
}

#[test]
fn replay_app_dns() {
    replay_seeded("app_dns", props::check_app_dns, 10);
}

#[test]
fn replay_app_http() {
    replay_seeded("app_http", props::check_app_http, 10);
}

#[test]
fn replay_app_tls() {
    replay_seeded("app_tls", props::check_app_tls, 10);
}

/// Every crafted seed passes the checks in memory too (no files needed),
/// so a broken seed builder is caught before it reaches the corpus.
#[test]
fn seeds_pass_the_checks() {
    let mut failed = Vec::new();
    for (target, files) in &seeds::all() {
        let check = check_of(target);
        for (name, data) in files {
            if catch_unwind(AssertUnwindSafe(|| check(data))).is_err() {
                failed.push(format!("{target}/{name}"));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "seeds broke a property:\n{}",
        failed.join("\n")
    );
}

fn check_of(target: &str) -> fn(&[u8]) {
    match target {
        "parse_frame" => props::check_parse_frame,
        "file_reader" => props::check_file_reader,
        "app_dns" => props::check_app_dns,
        "app_http" => props::check_app_http,
        "app_tls" => props::check_app_tls,
        _ => panic!("unknown fuzz target {target}"),
    }
}

/// Writes the seed corpus to `fuzz/corpus/<target>/`. Files named `gen-*`
/// and `craft-*` are replaced; others are kept: minimized fuzzer finds,
/// `repro-*` for a crash reproducer and `found-*` for an input that showed
/// a property to be wrong.
#[test]
#[ignore = "writes fuzz/corpus; run by hand after changing the seeds"]
fn make_corpus() {
    let corpus = seeds::all();
    let mut total = 0usize;
    for (target, files) in &corpus {
        let dir = fuzz_dir().join("corpus").join(target);
        fs::create_dir_all(&dir).expect("create corpus dir");
        for e in fs::read_dir(&dir).expect("read corpus dir") {
            let path = e.expect("dir entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("gen-") || name.starts_with("craft-") {
                fs::remove_file(&path).expect("remove old seed");
            }
        }
        for (name, data) in files {
            assert!(
                name.starts_with("gen-") || name.starts_with("craft-"),
                "seed name {name}"
            );
            fs::write(dir.join(name), data).expect("write seed");
            total += data.len();
        }
        println!("{target}: {} files", files.len());
    }
    println!("total {total} bytes");
    assert!(total < 2 << 20, "corpus over 2 MiB");
}

// ------------------------------------------------------------ findings

/// Found by the `app_dns` target, first taken for a bug: the question name
/// is a pointer (`c0 08`) to a bit-string label of zero bits (`41 00`, RFC
/// 2673) inside the header. tshark 4.0.17 prints this `dns.qry.name` as an
/// empty string (checked on this message in a pcap), and so does `decode`;
/// the record then holds `dns_qname = Some("")`, as tshark's field. The
/// seed `craft-bitstring-pointer-empty-name` keeps it in the corpus.
#[test]
fn dns_pointer_to_empty_bitstring_label_prints_empty_like_tshark() {
    let msg = seeds::DNS_EMPTY_BITSTRING_NAME;
    let view = netanalyzer_capture::app::dns::decode(&msg).expect("tshark decodes it");
    let q = view.question.expect("one question");
    assert_eq!(q.name.to_string(), "");
    assert!(!q.name.is_root() && !q.name.loops() && !q.name.too_long());
}

//! Shared by the ml integration tests.

use std::path::PathBuf;

/// `../shared/mldata/<file>` beside the repository, or `None` (with a
/// printed reason) when it is missing; under `CI=true` a missing file
/// fails the test instead.
pub fn shared_mldata(file: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/mldata")
        .join(file);
    if p.exists() {
        Some(p)
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{} is missing (CI=true)", p.display());
    } else {
        eprintln!("skipped: {} is missing", p.display());
        None
    }
}

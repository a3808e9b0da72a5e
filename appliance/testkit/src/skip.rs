//! Honest skips. A test that cannot run here (a tool, a server or `../shared/data` missing)
//! calls [`skip`], which prints one line of one form, `SKIP: {test}: needs {what}; {how}`,
//! and returns so that the test can return. With `CHRONICLE_REQUIRE_ALL=1` (`.ci/run` sets
//! it) the skip panics with that line instead: CI has every dependency, so a test that would
//! run nothing there is a failure, not a pass.
//!
//! ```no_run
//! let Some(capture) = chronicle_testkit::shared_data("binance-usdm-btcusdt-20240808.gz") else {
//!     return;
//! };
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

/// `1`: every skip is a failure.
pub const REQUIRE_ALL_ENV: &str = "CHRONICLE_REQUIRE_ALL";
/// A file every skip line is appended to (`.ci/run` lists them at the end of the run).
pub const SKIP_LOG_ENV: &str = "CHRONICLE_SKIP_LOG";

/// How CI has `../shared/data`: said by every skip for want of it.
const SHARED_DATA_HOW: &str =
    "the real captures live in ../shared/data beside the repository (CI's checkout has it; \
     ../shared/data/README.md says where each comes from)";

/// The test cannot run here because `what` is missing; `how` says how CI gets it. Prints
/// the `SKIP:` line and returns, or panics with it under `CHRONICLE_REQUIRE_ALL=1`.
pub fn skip(what: &str, how: &str) {
    let line = skip_line(&current_test(), what, how);
    if let Some(log) = std::env::var_os(SKIP_LOG_ENV) {
        append(Path::new(&log), &line);
    }
    if required() {
        panic!("{line}\n({REQUIRE_ALL_ENV}=1: a missing dependency fails the test)");
    }
    // Straight to the process's stderr: the harness captures `eprintln!` of passing tests,
    // which would hide the skip from the run's output.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// `found`, or None after [`skip`] (`what` is missing; `how` says how CI gets it).
pub fn require<T>(found: Option<T>, what: &str, how: &str) -> Option<T> {
    if found.is_none() {
        skip(what, how);
    }
    found
}

/// `../shared/data/` beside the repository: the real captures, never committed.
pub fn shared_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// `../shared/data/{file}`, or None after [`skip`] where it is absent.
pub fn shared_data(file: &str) -> Option<PathBuf> {
    let path = shared_data_dir().join(file);
    if path.exists() {
        return Some(path);
    }
    skip(&path.display().to_string(), SHARED_DATA_HOW);
    None
}

fn required() -> bool {
    std::env::var_os(REQUIRE_ALL_ENV).is_some_and(|v| v == "1")
}

fn skip_line(test: &str, what: &str, how: &str) -> String {
    format!("SKIP: {test}: needs {what}; {how}")
}

/// The test harness names each test's thread after the test; elsewhere (a bench's `main`)
/// the executable names what skipped.
fn current_test() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => std::env::args()
            .next()
            .map(|exe| {
                Path::new(&exe)
                    .file_name()
                    .map_or(exe.clone(), |n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_default(),
    }
}

/// One `write` of a whole line with O_APPEND: the test binaries' threads append at once.
fn append(log: &Path, line: &str) {
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    if let Err(e) = written {
        let _ = writeln!(std::io::stderr(), "{SKIP_LOG_ENV}={}: {e}", log.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_lines_are_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skips.log");
        append(&log, "SKIP: a: needs x; y");
        append(&log, "SKIP: b: needs x; y");
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "SKIP: a: needs x; y\nSKIP: b: needs x; y\n"
        );
    }
}

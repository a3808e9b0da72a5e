//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)] // each test file uses its own subset

use std::path::PathBuf;
use std::process::{Command, Output};

/// `../shared/data/` beside the repository; `None` (and a loud note) where it is absent.
pub fn shared_data(file: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(file);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIP: {} is absent; this test needs ../shared/data beside the repository",
            p.display()
        );
        None
    }
}

pub fn chronicle(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .args(args)
        .output()
        .expect("run chronicle");
    out
}

/// Runs chronicle and asserts success, returning stdout.
pub fn chronicle_ok(args: &[&str]) -> String {
    let out = chronicle(args);
    assert!(
        out.status.success(),
        "chronicle {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8 output")
}

/// A scratch directory on the real disk (not tmpfs), removed on drop.
pub fn scratch() -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tempfile::tempdir_in(base).expect("scratch dir")
}

/// splitmix64: kill moments that reproduce.
pub fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

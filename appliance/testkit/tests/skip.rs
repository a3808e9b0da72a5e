//! A skip is a line of one form and passes; under `CHRONICLE_REQUIRE_ALL=1` it fails, naming
//! what is missing. Each case runs this binary's `child` test in a process of its own (the
//! switch is read from the environment).

use std::process::{Command, Output};

const CHILD: &str = "CHRONICLE_TESTKIT_SKIP_CHILD";

/// Skips for want of a widget, when run as a child; does nothing otherwise.
#[test]
fn child() {
    if std::env::var_os(CHILD).is_some() {
        chronicle_testkit::skip("a widget", "CI installs it");
    }
}

fn run_child(require_all: bool, log: &std::path::Path) -> Output {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "child", "--test-threads=1"])
        .env(CHILD, "1")
        .env(chronicle_testkit::skip::SKIP_LOG_ENV, log)
        .env_remove(chronicle_testkit::skip::REQUIRE_ALL_ENV);
    if require_all {
        c.env(chronicle_testkit::skip::REQUIRE_ALL_ENV, "1");
    }
    c.output().unwrap()
}

#[test]
fn a_skip_passes_and_says_so_past_the_harness_capture() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("skips.log");
    let out = run_child(false, &log);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let line = "SKIP: child: needs a widget; CI installs it";
    assert!(err.lines().any(|l| l == line), "{err}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), format!("{line}\n"));
}

#[test]
fn require_all_turns_the_skip_into_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("skips.log");
    let out = run_child(true, &log);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("SKIP: child: needs a widget; CI installs it")
            && text.contains("CHRONICLE_REQUIRE_ALL=1: a missing dependency fails the test"),
        "{text}"
    );
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("needs a widget"));
}

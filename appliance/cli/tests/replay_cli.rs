//! `chronicle replay` as a user first runs it: no flags beyond the target, in a directory
//! of its own.

mod common;
use common::*;
use std::process::Command;

#[test]
fn replay_without_data_dir_writes_nothing_in_the_working_directory() {
    let dir = scratch();
    let ring = format!("/dev/shm/chronicle-replay-cli-test-{}", std::process::id());
    let out = Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .args(["replay", "--seconds", "1", "--replace", "--target"])
        .arg(format!("shm:{ring}"))
        .current_dir(dir.path())
        .output()
        .expect("run chronicle");
    let _ = std::fs::remove_file(&ring);
    assert!(
        out.status.success(),
        "chronicle replay failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("events sent:"), "no report: {report}");
    // Without --data-dir the instruments' token ids are this run's alone: nothing is written
    // where the user happened to be.
    let left: Vec<_> = dir.path().read_dir().unwrap().collect();
    assert!(
        left.is_empty(),
        "replay wrote into the working directory: {left:?}"
    );
}

#[test]
fn replace_takes_a_stale_ring_but_never_a_live_one() {
    let ring = std::path::PathBuf::from(format!(
        "/dev/shm/chronicle-replay-cli-live-{}",
        std::process::id()
    ));
    let replay = || {
        Command::new(env!("CARGO_BIN_EXE_chronicle"))
            .args([
                "replay",
                "--seconds",
                "1",
                "--replace",
                "--ring-mib",
                "1",
                "--target",
            ])
            .arg(format!("shm:{}", ring.display()))
            .output()
            .expect("run chronicle")
    };
    // This process produces into the ring: --replace must not unlink it from under us.
    let live = chronicle_feed::create(&ring, 1 << 20, chronicle_feed::Access::Owner).unwrap();
    let out = replay();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "replaced a live ring");
    assert!(err.contains(&ring.display().to_string()), "{err}");
    assert!(ring.exists(), "the live ring is still there");
    // Its producer gone, the same ring is stale and replaced.
    drop(live);
    let out = replay();
    let _ = std::fs::remove_file(&ring);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

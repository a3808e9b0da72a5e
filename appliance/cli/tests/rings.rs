//! `/dev/shm` is memory: `chronicle run` creates its rings only once everything else was
//! checked, removes them on every way out it controls (a bad input, an undecodable capture, a
//! core it may not use, a failed shard), names them after the canonical data directory (two
//! data directories never share one), replaces a ring a dead process left, and refuses one a
//! live process produces into.

mod common;
use chronicle_runtime::rings::ring_for;
use common::*;
use std::path::Path;

fn no_ring(data: &Path, what: &str) {
    let ring = ring_for(data, 0);
    assert!(
        !ring.exists(),
        "{what}: {} left behind in /dev/shm",
        ring.display()
    );
}

fn fails(args: &[&str], says: &str) -> String {
    let out = chronicle(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} must fail");
    assert!(err.contains(says), "{args:?}: stderr says `{says}`: {err}");
    err
}

#[test]
fn failing_starts_leave_no_ring() {
    let dir = scratch();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();

    fails(
        &["run", "--input", "nope.gz", "--data-dir", d, "--no-metrics"],
        "nope.gz",
    );
    no_ring(&data, "missing input");

    let garbage = dir.path().join("garbage.dbn");
    std::fs::write(&garbage, b"this is not DBN at all, not even its magic").unwrap();
    let g = garbage.to_str().unwrap();
    fails(
        &[
            "run",
            "--input",
            g,
            "--format",
            "dbn",
            "--data-dir",
            d,
            "--no-metrics",
        ],
        "garbage.dbn",
    );
    no_ring(&data, "undecodable capture");

    let config = dir.path().join("bad-core.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{d}\"\n[metrics]\nenabled = false\n[input]\nkind = \"synthetic\"\nseed = 1\nseconds = 5\n[[shards]]\ncpu = 4000\n"
        ),
    )
    .unwrap();
    fails(
        &["run", "--config", config.to_str().unwrap()],
        "shards[0].cpu = 4000",
    );
    no_ring(&data, "unavailable core");
}

#[test]
fn two_data_dirs_two_rings_and_a_config_run_uses_its_own() {
    let dir = scratch();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let config = dir.path().join("b.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[metrics]\nenabled = false\n[input]\nkind = \"synthetic\"\nseed = 1\nseconds = 5\n",
            b.display()
        ),
    )
    .unwrap();
    let run_a = chronicle(&[
        "run",
        "--seconds",
        "5",
        "--no-metrics",
        "--data-dir",
        a.to_str().unwrap(),
    ]);
    assert!(run_a.status.success());
    let run_b = chronicle(&["run", "--config", config.to_str().unwrap()]);
    assert!(
        run_b.status.success(),
        "{}",
        String::from_utf8_lossy(&run_b.stderr)
    );
    let (ring_a, ring_b) = (ring_for(&a, 0), ring_for(&b, 0));
    assert_ne!(ring_a, ring_b);
    for (out, ring) in [(&run_a, &ring_a), (&run_b, &ring_b)] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("ring {} (", ring.display())),
            "the run names its ring {}: {err}",
            ring.display()
        );
    }
    no_ring(&a, "after a clean run");
    no_ring(&b, "after a clean config run");
}

#[test]
fn a_dead_process_ring_is_replaced_and_a_live_one_refused() {
    let dir = scratch();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let ring = ring_for(&data, 0);
    let args = [
        "run",
        "--seconds",
        "5",
        "--no-metrics",
        "--data-dir",
        data.to_str().unwrap(),
    ];

    // A live producer: its lock is held, the ring is not ours to take.
    let live = chronicle_feed::create(&ring, 1 << 20, chronicle_feed::Access::Owner).unwrap();
    fails(&args, "in use by a live producer");
    assert!(ring.exists(), "a live ring is never removed");

    // The producer is gone (its lock with it), its file stays: stale.
    drop(live);
    assert!(ring.exists());
    let out = chronicle(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("a ring left by a process that is gone; replaced"),
        "the stale ring is reported: {err}"
    );
    no_ring(&data, "after replacing a stale ring");
}

//! The universal reader on every tier: `cat` and `verify` give the same answer whether a
//! partition is warm (`book.q`), cold (`book.q.zst` + `.idx`) or remote (a stub and objects in
//! a real S3-compatible server); a point lookup on an archive decodes only the zstd frames
//! that hold its range; a partition that moves under a reader is resolved again.
//! The cold and remote copies are made here with the archive's own API, so these tests check
//! the reader alone (the tier manager's moves are tested in `appliance/tier`).

mod common;
use chronicle_archive::remote::RemoteStore;
use chronicle_archive::stub::RemoteStub;
use chronicle_archive::testing::{cold_copy, SeaweedFs};
use chronicle_archive::zidx::ZstIndex;
use chronicle_archive::{ARCHIVE_FILE, ARCHIVE_INDEX_FILE, STUB_FILE};
use chronicle_reader::{Partition, Tier, TierRoots, TimeRange};
use common::*;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const KEY: &str = "v1/testvenue/abc/2024-08-08";
const EVENTS: u64 = 60_000;

/// The appliance configuration that names the tier roots (and the object store, if any).
fn config(dir: &Path, warm: &Path, cold: &Path, remote: Option<&SeaweedFs>) -> PathBuf {
    let mut text = format!(
        "data_dir = {:?}\n[tiers]\ncold_dir = {:?}\n",
        warm.display().to_string(),
        cold.display().to_string()
    );
    if let Some(s) = remote {
        text += &format!("[tiers.remote]\n{}", toml::to_string(s.config()).unwrap());
    }
    let path = dir.join(format!("chronicle-{}.toml", remote.is_some()));
    std::fs::write(&path, text).unwrap();
    path
}

/// What `cat` prints for a partition named by `target`: whole, as CSV, and a time range.
fn cat_outputs(target: &str, config: &str) -> [String; 3] {
    let (from, to) = ("2024-08-08T12:00:10Z", "2024-08-08T12:00:12.5Z");
    [
        chronicle_ok(&["cat", "--config", config, target]),
        chronicle_ok(&["cat", "--config", config, "--format", "csv", target]),
        chronicle_ok(&[
            "cat", "--config", config, "--from", from, "--to", to, target,
        ]),
    ]
}

#[test]
fn cat_and_verify_are_the_same_on_every_tier() {
    let tmp = scratch();
    let (warm, cold) = (tmp.path().join("warm"), tmp.path().join("cold"));
    let warm_dir = partition(&warm, EVENTS);
    let cfg = config(tmp.path(), &warm, &cold, None);
    let cfg = cfg.to_str().unwrap();
    let expected = cat_outputs(KEY, cfg);
    assert_eq!(
        expected[0].lines().count() as u64,
        EVENTS + 1,
        "definition + events"
    );
    let range_lines = expected[2].lines().count();
    assert!(range_lines > 1000 && range_lines < 10_000, "{range_lines}");
    let verified = format!("1 segments, {} records verified, 0 torn tails", EVENTS + 1);
    assert!(chronicle_ok(&["verify", "--config", cfg, KEY]).contains(&verified));

    // Cold: the warm copy gone, the key now resolves to the archive.
    let cold_dir = cold.join(KEY);
    cold_copy(&warm_dir, &cold_dir, 64 << 10);
    std::fs::remove_dir_all(&warm_dir).unwrap();
    assert_eq!(cat_outputs(KEY, cfg), expected, "cold, by key");
    let by_path = cold_dir.to_str().unwrap();
    assert_eq!(cat_outputs(by_path, cfg), expected, "cold, by directory");
    let by_file = cold_dir.join(ARCHIVE_FILE);
    assert_eq!(
        cat_outputs(by_file.to_str().unwrap(), cfg),
        expected,
        "cold, by file"
    );
    assert!(chronicle_ok(&["verify", "--config", cfg, KEY]).contains(&verified));
    // The data directory, now empty of partitions: nothing to verify there, and said so; with
    // --config, verify follows the tiers to the moved partition.
    let data = warm.to_str().unwrap();
    let out = chronicle(&["verify", data]);
    assert!(!out.status.success(), "verify of nothing passes");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to verify"));
    assert!(chronicle_ok(&["verify", "--config", cfg, data]).contains(&verified));

    // RemoteCold: both objects uploaded and verified, the stub written, the local archive gone.
    let Some(server) = SeaweedFs::start_or_skip() else {
        return;
    };
    let store = server.store();
    let stub = upload(&store, &cold_dir, Path::new(KEY));
    stub.write(&cold_dir.join(STUB_FILE)).unwrap();
    for f in [ARCHIVE_FILE, ARCHIVE_INDEX_FILE] {
        std::fs::remove_file(cold_dir.join(f)).unwrap();
    }
    let cfg = config(tmp.path(), &warm, &cold, Some(&server));
    let cfg = cfg.to_str().unwrap();
    assert_eq!(cat_outputs(KEY, cfg), expected, "remote, by key");
    assert!(chronicle_ok(&["verify", "--config", cfg, KEY]).contains(&verified));

    // Without the store's configuration the stub cannot be read, and says why.
    let local_only = config(tmp.path(), &warm, &cold, None);
    let out = chronicle(&["cat", "--config", local_only.to_str().unwrap(), KEY]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(STUB_FILE) && err.contains("[tiers.remote]"),
        "{err}"
    );
}

/// Uploads a cold partition's archive and returns the stub that records it.
fn upload(store: &RemoteStore, cold_dir: &Path, key: &Path) -> RemoteStub {
    let up = |f: &str| {
        let k = store.key_for(&key.join(f)).unwrap();
        store.upload(&cold_dir.join(f), &k).unwrap()
    };
    let idx = ZstIndex::read_file(&cold_dir.join(ARCHIVE_INDEX_FILE)).unwrap();
    RemoteStub {
        data: up(ARCHIVE_FILE),
        index: up(ARCHIVE_INDEX_FILE),
        uncompressed_size: idx.table.uncompressed_len(),
        uncompressed_sha256: idx.source_sha256,
    }
}

/// The offsets of the frames a scan of `range` visits.
fn offsets(part: &Partition, range: TimeRange) -> Vec<u64> {
    let mut out = Vec::new();
    part.scan(range, |f| {
        out.push(f.offset);
        ControlFlow::Continue(())
    })
    .unwrap();
    out
}

#[test]
fn a_point_lookup_decodes_only_the_frames_that_hold_its_range() {
    let tmp = scratch();
    let warm_dir = partition(&tmp.path().join("warm"), EVENTS);
    let cold_dir = tmp.path().join("cold").join(KEY);
    cold_copy(&warm_dir, &cold_dir, 16 << 10);
    let warm = Partition::open(&warm_dir).unwrap();
    let cold = Partition::open(&cold_dir).unwrap();
    let idx = ZstIndex::read_file(&cold_dir.join(ARCHIVE_INDEX_FILE)).unwrap();
    let t0 = chronicle_storage::utc::parse_time("2024-08-08T12:00:30Z").unwrap();
    let range = TimeRange {
        from: t0,
        to: t0 + 200_000_000,
    };

    let found = offsets(&cold, range);
    assert_eq!(found, offsets(&warm, range));
    assert_eq!(found.len(), 201, "one event per ms, both ends included");
    // The zstd frames that overlap the index blocks that overlap the range: the most a
    // lookup may decode.
    let mut needed: Vec<usize> = cold
        .index
        .iter()
        .filter(|e| e.overlaps(range.from, range.to))
        .flat_map(|e| idx.table.frames_for(e.offset, e.end()))
        .collect();
    needed.dedup();
    let decoded = cold.body.frames_decoded() as usize;
    // Opening decoded the segment header (frame 0) first.
    assert!(
        decoded >= 1 && decoded <= needed.len() + 1,
        "decoded {decoded} frames, the range needs {needed:?}"
    );
    assert!(
        (decoded as u32) * 10 < idx.table.frame_count(),
        "a point lookup must not decode the file: {decoded} of {} frames",
        idx.table.frame_count()
    );
}

#[test]
fn a_partition_that_moves_under_the_reader_is_resolved_again() {
    let tmp = scratch();
    let (warm, cold) = (tmp.path().join("warm"), tmp.path().join("cold"));
    let warm_dir = partition(&warm, 2_000);
    cold_copy(&warm_dir, &cold.join(KEY), 64 << 10);
    let aside = tmp.path().join("aside");
    let roots = TierRoots {
        cold: Some(cold),
        ..TierRoots::warm_only(warm)
    };
    // The warm copy disappears (a move finished) and, so that the race can be run again,
    // comes back: each state lasts far longer than a resolve-and-open, as for real moves.
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (stop, warm_dir, aside) = (stop.clone(), warm_dir.clone(), aside.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::fs::rename(&warm_dir, &aside).unwrap();
                std::thread::sleep(std::time::Duration::from_micros(300));
                std::fs::rename(&aside, &warm_dir).unwrap();
                std::thread::sleep(std::time::Duration::from_micros(300));
            }
        })
    };
    let key = Path::new(KEY);
    let mut seen = [0u32; 2];
    for _ in 0..3_000 {
        let (tier, part) = roots
            .open(key)
            .expect("some tier always holds the partition");
        seen[(tier == Tier::Cold) as usize] += 1;
        assert_eq!(offsets(&part, TimeRange::ALL).len(), 2_001);
    }
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    assert!(seen[0] > 0 && seen[1] > 0, "both tiers read: {seen:?}");
}

#[test]
fn a_damaged_archive_is_an_error_naming_it() {
    let tmp = scratch();
    let warm_dir = partition(&tmp.path().join("warm"), 20_000);
    let cold_dir = tmp.path().join("cold").join(KEY);
    cold_copy(&warm_dir, &cold_dir, 64 << 10);
    let zst = cold_dir.join(ARCHIVE_FILE);
    let mut bytes = std::fs::read(&zst).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&zst, &bytes).unwrap();
    let target = cold_dir.to_str().unwrap();
    for cmd in ["cat", "verify"] {
        let out = chronicle(&[cmd, target]);
        assert!(!out.status.success(), "{cmd} must fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(zst.to_str().unwrap()), "{cmd}: {err}");
    }
}

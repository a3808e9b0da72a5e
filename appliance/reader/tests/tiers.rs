//! Tier resolution: Hot → Warm → Cold → RemoteCold, the first tier holding a partition wins
//! (also while a move has it in two), a partition that moved away is found where it went, a
//! missing one names the tiers searched, and `days` lists each day once whatever holds it.
//! Partitions are generated; every tier's copy has its own record count, so a read shows
//! which tier answered. (The race of a move finishing between find and open runs in
//! `appliance/cli/tests/tiers.rs`.)

mod common;
use chronicle_archive::remote::{Receipt, RemoteConfig};
use chronicle_archive::stub::RemoteStub;
use chronicle_archive::{ARCHIVE_FILE, ARCHIVE_INDEX_FILE, STUB_FILE};
use chronicle_reader::{Partition, ReadError, Tier, TierRoots};
use chronicle_testkit::data::partition;
use common::*;
use std::path::{Path, PathBuf};

struct Roots {
    tmp: tempfile::TempDir,
    hot: PathBuf,
    warm: PathBuf,
    cold: PathBuf,
}

impl Roots {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let [hot, warm, cold] = ["hot", "warm", "cold"].map(|t| tmp.path().join(t));
        Self {
            tmp,
            hot,
            warm,
            cold,
        }
    }

    /// Every tier configured, RemoteCold with an object store when `remote`.
    fn all(&self, remote: bool) -> TierRoots {
        TierRoots {
            hot: Some(self.hot.clone()),
            warm: self.warm.clone(),
            cold: Some(self.cold.clone()),
            remote: remote.then(store),
        }
    }

    /// A cold copy of a partition of `n` records at KEY.
    fn cold_of(&self, n: u64) -> PathBuf {
        let src = warm(&self.tmp.path().join("src"), n);
        let dir = cold(&src, &self.cold);
        std::fs::remove_dir_all(self.tmp.path().join("src")).unwrap();
        dir
    }
}

/// An object store on a port nothing listens on: configured, never reached by these tests.
fn store() -> RemoteConfig {
    serde_json::from_value(serde_json::json!({
        "endpoint": "http://127.0.0.1:9",
        "bucket": "chronicle-test",
        "allow_http": true,
    }))
    .unwrap()
}

/// A RemoteCold stub in `dir` (its objects exist nowhere: enough to be found).
fn stub(dir: &Path) {
    let receipt = |f: &str| Receipt {
        uri: format!("s3://chronicle-test/{KEY}/{f}"),
        etag: "\"0\"".into(),
        size: 1,
        sha256: [0; 32],
    };
    std::fs::create_dir_all(dir).unwrap();
    RemoteStub {
        data: receipt(ARCHIVE_FILE),
        index: receipt(ARCHIVE_INDEX_FILE),
        uncompressed_size: 1,
        uncompressed_sha256: [0; 32],
    }
    .write(&dir.join(STUB_FILE))
    .unwrap();
}

/// `find`, `locate` and `open` agree on the tier and directory, and the partition opened
/// holds `records`.
fn assert_resolves(roots: &TierRoots, tier: Tier, root: &Path, records: usize) {
    let key = Path::new(KEY);
    let found = roots.find(key).unwrap();
    assert_eq!(found, (tier, root.join(KEY)));
    assert_eq!(roots.locate(key), Some(found));
    let (opened, part) = roots.open(key).unwrap();
    assert_eq!(opened, tier);
    assert_eq!(count(&part), records, "{tier:?}");
}

#[test]
fn hot_then_warm_then_cold_then_remote_cold() {
    let r = Roots::new();
    partition(&r.hot.join(KEY), every_ms(10));
    warm(&r.warm, 20);
    let cold_dir = r.cold_of(30);
    stub(&cold_dir);
    let roots = r.all(false);

    assert_resolves(&roots, Tier::Hot, &r.hot, 10);
    // A hot directory is searched only when configured as the hot root.
    let no_hot = TierRoots {
        hot: None,
        ..roots.clone()
    };
    assert_resolves(&no_hot, Tier::Warm, &r.warm, 20);

    std::fs::remove_dir_all(r.hot.join(KEY)).unwrap();
    assert_resolves(&roots, Tier::Warm, &r.warm, 20);
    std::fs::remove_dir_all(r.warm.join(KEY)).unwrap();
    assert_resolves(&roots, Tier::Cold, &r.cold, 30);

    // The archive uploaded: only the stub is left in the cold root.
    for f in [ARCHIVE_FILE, ARCHIVE_INDEX_FILE] {
        std::fs::remove_file(cold_dir.join(f)).unwrap();
    }
    let key = Path::new(KEY);
    assert_eq!(
        roots.find(key).unwrap(),
        (Tier::RemoteCold, cold_dir.clone())
    );
    let err = roots.open(key).err().expect("no store to read it from");
    let msg = err.to_string();
    assert!(
        matches!(err, ReadError::Unreadable { .. })
            && msg.contains(STUB_FILE)
            && msg.contains("[tiers.remote]"),
        "{msg}"
    );
}

#[test]
fn a_partition_in_two_tiers_during_a_move_is_read_from_the_first() {
    let r = Roots::new();
    let warm_dir = warm(&r.warm, 40);
    // The cold copy is written (a move in progress), the warm one not yet deleted; a different
    // count tells the copies apart.
    r.cold_of(50);
    let roots = r.all(false);
    assert_resolves(&roots, Tier::Warm, &r.warm, 40);
    // The warm copy's segment deleted first (the move's commit order): Cold from then on,
    // even with its meta.json and index still there.
    std::fs::remove_file(warm_dir.join("book.q")).unwrap();
    assert_resolves(&roots, Tier::Cold, &r.cold, 50);
}

#[test]
fn a_partition_that_vanished_is_found_where_it_went() {
    let r = Roots::new();
    let warm_dir = warm(&r.warm, 60);
    let roots = r.all(false);
    let (tier, dir) = roots.find(Path::new(KEY)).unwrap();
    assert_eq!((tier, &dir), (Tier::Warm, &warm_dir));
    // The move finishes after the lookup: the directory found no longer holds it, which the
    // reader tells from damage (so that `open` resolves again)...
    cold(&warm_dir, &r.cold);
    std::fs::remove_dir_all(&warm_dir).unwrap();
    let gone = Partition::open_dir(&dir, None).err().expect("gone");
    assert!(gone.is_vanished(), "{gone}");
    // ...and the next resolution finds the cold copy.
    assert_resolves(&roots, Tier::Cold, &r.cold, 60);

    // Damage is not a vanished partition: it is reported, not resolved around.
    let zst = r.cold.join(KEY).join(ARCHIVE_FILE);
    std::fs::write(&zst, b"not an archive at all").unwrap();
    let damaged = roots.open(Path::new(KEY)).err().expect("damaged");
    assert!(
        !damaged.is_vanished() && damaged.to_string().contains(&*zst.to_string_lossy()),
        "{damaged}"
    );
}

#[test]
fn not_found_names_the_tiers_searched() {
    let r = Roots::new();
    let key = Path::new("v1/binance-usdm/btcusdt/2024-08-09");
    let searched = |roots: &TierRoots| match roots.open(key) {
        Err(ReadError::NotFound { key: k, searched }) => {
            assert_eq!(k, key.display().to_string());
            searched
        }
        other => panic!("{:?}", other.map(|(t, _)| t)),
    };
    let local = format!(
        "Hot {}, Warm {}, Cold {}",
        r.hot.display(),
        r.warm.display(),
        r.cold.display()
    );
    assert_eq!(searched(&r.all(false)), local);
    assert_eq!(
        searched(&r.all(true)),
        format!("{local}, RemoteCold {}", r.cold.display()),
        "RemoteCold is searched (its stubs live in the cold root) only with a store"
    );
    let warm_only = TierRoots::warm_only(r.warm.clone());
    assert_eq!(searched(&warm_only), format!("Warm {}", r.warm.display()));
    let err = warm_only.find(key).unwrap_err().to_string();
    assert!(
        err.contains("2024-08-09") && err.contains("is in no tier"),
        "{err}"
    );
}

#[test]
fn days_lists_each_day_once_whatever_tiers_hold_it() {
    let r = Roots::new();
    let symbol = Path::new("v1/binance-usdm/btcusdt");
    let day = |root: &Path, date: &str| root.join(symbol).join(date);
    // 08: hot and warm; 09: warm and cold (mid-move); 10: cold; 11: remote (a stub).
    for root in [&r.hot, &r.warm] {
        partition(&day(root, "2024-08-08"), every_ms(3));
    }
    let nine = partition(&day(&r.warm, "2024-08-09"), every_ms(3));
    chronicle_archive::testing::cold_copy(&nine, &day(&r.cold, "2024-08-09"), SMALL_FRAMES);
    chronicle_archive::testing::cold_copy(&nine, &day(&r.cold, "2024-08-10"), SMALL_FRAMES);
    stub(&day(&r.cold, "2024-08-11"));
    // Not days: a directory that is not a date, and a date holding no partition files.
    partition(&r.warm.join(symbol).join("notes"), every_ms(1));
    std::fs::create_dir_all(day(&r.warm, "2024-08-12").join("index")).unwrap();

    let all = ["2024-08-08", "2024-08-09", "2024-08-10", "2024-08-11"];
    assert_eq!(r.all(true).days(symbol).unwrap(), all);
    // Stubs are looked for in the cold root with or without a store, as `find` does.
    assert_eq!(r.all(false).days(symbol).unwrap(), all);
    let warm_only = TierRoots::warm_only(r.warm.clone());
    assert_eq!(
        warm_only.days(symbol).unwrap(),
        ["2024-08-08", "2024-08-09"]
    );
    assert!(warm_only
        .days(Path::new("v1/binance-usdm/ethusdt"))
        .unwrap()
        .is_empty());
}

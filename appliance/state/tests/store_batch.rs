//! The snapshot store's batched writes: what a shard's flush does when many tokens cross the
//! snapshot cadence at once.

use chronicle_engine::SNAPSHOT_LEN;
use chronicle_state::audit::{audit, Manifest};
use chronicle_state::store::{Pending, SnapshotStore, BATCH_MAX};
use chronicle_storage::utc;

/// 2024-08-08T00:00:00Z.
const DAY: u64 = 1_723_075_200_000_000_000;

fn pending(token_id: u64, minute: u64) -> Pending {
    let mut bytes = [0u8; SNAPSHOT_LEN];
    bytes[..8].copy_from_slice(&token_id.to_le_bytes());
    bytes[8..16].copy_from_slice(&minute.to_le_bytes());
    Pending {
        token_id,
        bytes,
        clock_ns: DAY + minute * 60_000_000_000,
    }
}

/// A batch larger than one chunk, written three times: every file holds its bytes, the
/// manifest lists every write in order, retention keeps the newest of each token.
#[test]
fn a_batch_is_written_listed_and_pruned_per_token() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = SnapshotStore::new(dir.path(), 2);
    let tokens = BATCH_MAX as u64 + 88;
    // What an interrupted write of an earlier run left behind: removed by the next write.
    std::fs::create_dir_all(store.token_dir(5)).unwrap();
    let leftover = store.token_dir(5).join(".2024-08-07_10-00-00-000.snap.tmp");
    std::fs::write(&leftover, b"half").unwrap();
    for minute in 1..=3 {
        let batch: Vec<Pending> = (1..=tokens).map(|t| pending(t, minute)).collect();
        let paths = store.write_batch(&batch).unwrap();
        assert_eq!(paths.len(), batch.len());
        for (p, path) in batch.iter().zip(&paths) {
            assert_eq!(std::fs::read(path).unwrap(), p.bytes, "{}", path.display());
            assert_eq!(path.parent().unwrap(), store.token_dir(p.token_id));
        }
    }
    for t in 1..=tokens {
        let kept = store.list(t).unwrap();
        assert_eq!(kept.len(), 2, "token {t}: retain 2");
        assert_eq!(std::fs::read(&kept[0]).unwrap(), pending(t, 3).bytes);
        assert_eq!(std::fs::read(&kept[1]).unwrap(), pending(t, 2).bytes);
        let leftovers: Vec<_> = std::fs::read_dir(store.token_dir(t))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "token {t}: {leftovers:?}");
    }
    let date = utc::date_of(DAY);
    let (entries, torn) = Manifest::read(&Manifest::path_for(store.root(), date)).unwrap();
    assert!(!torn);
    let want: Vec<(u64, u64)> = (1..=3)
        .flat_map(|m| (1..=tokens).map(move |t| (t, m)))
        .collect();
    let got: Vec<(u64, u64)> = entries
        .iter()
        .map(|e| {
            let minute = e.file_name[14..16].parse::<u64>().unwrap();
            (e.token_id, minute)
        })
        .collect();
    assert_eq!(got, want, "one entry per write, in write order");
    let report = audit(&store, date).unwrap();
    assert_eq!(report.entries, 3 * tokens as usize);
    assert_eq!(report.verified, 2 * tokens as usize);
    assert_eq!(report.pruned, tokens as usize);
}

/// A batch that fails part-way (a token's directory cannot be made) leaves nothing of it
/// visible and nothing listed; the snapshots written before it stay.
#[test]
fn a_failed_batch_makes_nothing_visible() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = SnapshotStore::new(dir.path(), 2);
    store.write_batch(&[pending(1, 1), pending(2, 1)]).unwrap();
    let manifest = Manifest::path_for(store.root(), utc::date_of(DAY));
    let before = std::fs::read(&manifest).unwrap();
    // A file where token 3's directory should be.
    std::fs::write(store.token_dir(3), b"in the way").unwrap();
    let err = store
        .write_batch(&[pending(1, 2), pending(2, 2), pending(3, 2)])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&store.token_dir(3).display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read(&manifest).unwrap(), before, "nothing listed");
    for t in [1, 2] {
        let kept = store.list(t).unwrap();
        assert_eq!(
            kept.len(),
            1,
            "token {t}: only the first snapshot is visible"
        );
        assert_eq!(std::fs::read(&kept[0]).unwrap(), pending(t, 1).bytes);
    }
    std::fs::remove_file(store.token_dir(3)).unwrap();
    assert_eq!(audit(&store, utc::date_of(DAY)).unwrap().verified, 2);
}

#[test]
#[should_panic(expected = "one snapshot per token in a batch")]
fn a_token_twice_in_a_batch_is_refused() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = SnapshotStore::new(dir.path(), 2);
    let _ = store.write_batch(&[pending(7, 1), pending(7, 2)]);
}

/// A crash in the middle of a manifest append leaves a torn last line: the next write cuts it
/// back rather than weld its own lines onto it, and the day still audits. A manifest that a
/// crash left empty gets its header line.
#[test]
fn a_torn_or_empty_manifest_is_repaired_by_the_next_write() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = SnapshotStore::new(dir.path(), 2);
    store.write_batch(&[pending(1, 1)]).unwrap();
    let date = utc::date_of(DAY);
    let manifest = Manifest::path_for(store.root(), date);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&manifest)
        .unwrap();
    std::io::Write::write_all(&mut f, b"2 2024-08-08_00-01-00-000.snap 3f2a").unwrap();
    drop(f);
    assert!(
        Manifest::read(&manifest).unwrap().1,
        "the last line is torn"
    );
    store.write_batch(&[pending(2, 1)]).unwrap();
    let (entries, torn) = Manifest::read(&manifest).unwrap();
    assert!(!torn);
    let tokens: Vec<u64> = entries.iter().map(|e| e.token_id).collect();
    assert_eq!(tokens, [1, 2]);
    assert_eq!(audit(&store, date).unwrap().verified, 2);

    let next_day = Pending {
        clock_ns: DAY + 86_400_000_000_000,
        ..pending(3, 0)
    };
    let manifest = Manifest::path_for(store.root(), utc::date_of(next_day.clock_ns));
    std::fs::write(&manifest, b"").unwrap();
    store.write_batch(&[next_day]).unwrap();
    let (entries, torn) = Manifest::read(&manifest).unwrap();
    assert_eq!((entries.len(), torn), (1, false));
}

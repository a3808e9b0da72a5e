//! `book.q.zst.remote.json` (docs/formats/remote-stub.md): written atomically, read back equal,
//! and every malformed stub is refused with an error naming the file and the field.

use chronicle_archive::remote::Receipt;
use chronicle_archive::stub::{RemoteStub, MAX_STUB_BYTES, STUB_FILE};
use chronicle_archive::ArchiveError;
use serde_json::{json, Value};
use std::path::Path;

fn stub() -> RemoteStub {
    let receipt = |name: &str, size, fill| Receipt {
        uri: format!("s3://archive-bucket/cold/v1/BINANCE/BTCUSDT/2024-01-02/{name}"),
        etag: format!("\"{name}-etag\""),
        size,
        sha256: [fill; 32],
    };
    RemoteStub {
        data: receipt("book.q.zst", 123_456_789, 0xab),
        index: receipt("book.q.zst.idx", 4_096, 0x01),
        uncompressed_size: 987_654_321,
        uncompressed_sha256: [0x5c; 32],
    }
}

#[test]
fn round_trip_is_atomic_and_has_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = RemoteStub::path_in(dir.path());
    assert_eq!(path.file_name().unwrap(), STUB_FILE);
    let s = stub();
    s.write(&path).unwrap();
    assert_eq!(RemoteStub::read(&path).unwrap(), s);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, [STUB_FILE], "no temporary file is left behind");

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with("}\n"));
    let doc: Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<_> = doc.as_object().unwrap().keys().cloned().collect();
    let want = [
        "version",
        "remote_uri",
        "etag",
        "size",
        "sha256",
        "index",
        "uncompressed_size",
    ];
    assert_eq!(keys[..7], want, "field order of the format doc");
    assert_eq!(keys[7], "uncompressed_sha256");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["size"], 123_456_789);
    assert_eq!(doc["sha256"], "ab".repeat(32));
    assert_eq!(doc["etag"], "\"book.q.zst-etag\"");
    assert_eq!(doc["index"]["remote_uri"], s.index.uri);
    assert_eq!(doc["uncompressed_sha256"], "5c".repeat(32));

    // Rewriting replaces the whole stub.
    let mut t = s.clone();
    t.data.size = 1;
    t.write(&path).unwrap();
    assert_eq!(RemoteStub::read(&path).unwrap(), t);
}

/// Writes `text` as a stub, reads it, and returns the field and message of the error.
fn refused(dir: &Path, text: &str) -> (String, String) {
    let path = dir.join(STUB_FILE);
    std::fs::write(&path, text).unwrap();
    let err = RemoteStub::read(&path).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "names the file: {msg}"
    );
    match err {
        ArchiveError::Stub { field, path: p, .. } if p == path => (field, msg),
        other => panic!("not a Stub error: {other:?}"),
    }
}

#[test]
fn malformed_stubs_name_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let good: Value = serde_json::from_str(&stub().to_json()).unwrap();
    type Edit = fn(&mut Value);
    let cases: [(Edit, &str, &str); 14] = [
        (
            |d| d["version"] = json!(2),
            "version",
            "unsupported version 2",
        ),
        (
            |d| d["version"] = json!("1"),
            "version",
            "unsupported version",
        ),
        (
            |d| drop(d.as_object_mut().unwrap().remove("version")),
            "version",
            "missing",
        ),
        (
            |d| drop(d.as_object_mut().unwrap().remove("etag")),
            "etag",
            "missing field",
        ),
        (|d| d["sha256"] = json!("xyz"), "sha256", "64 lowercase hex"),
        (
            |d| d["sha256"] = json!("AB".repeat(32)),
            "sha256",
            "64 lowercase hex",
        ),
        (
            |d| d["index"]["sha256"] = json!("a".repeat(63)),
            "index.sha256",
            "64 lowercase hex",
        ),
        (
            |d| drop(d["index"].as_object_mut().unwrap().remove("size")),
            "index.size",
            "missing",
        ),
        (|d| d["bogus"] = json!(1), "bogus", "unknown field"),
        (
            |d| d["index"]["bogus"] = json!(1),
            "index.bogus",
            "unknown field",
        ),
        (|d| d["size"] = json!("12"), "size", "invalid type"),
        (
            |d| d["uncompressed_size"] = json!(-1),
            "uncompressed_size",
            "invalid",
        ),
        (
            |d| d["remote_uri"] = json!("http://x/y"),
            "remote_uri",
            "not s3://bucket/key",
        ),
        (|d| d["index"]["etag"] = json!(""), "index.etag", "empty"),
    ];
    for (edit, field, reason) in cases {
        let mut doc = good.clone();
        edit(&mut doc);
        let (got, msg) = refused(dir.path(), &doc.to_string());
        assert_eq!(got, field, "{msg}");
        assert!(msg.contains(reason), "{msg}");
    }
    let (field, msg) = refused(dir.path(), "{\"version\": 1, ");
    assert_eq!(field, "(document)", "{msg}");
    let (field, msg) = refused(dir.path(), "[1, 2]");
    assert_eq!(field, "version", "{msg}");
    let huge = format!(
        "{}{}",
        " ".repeat(MAX_STUB_BYTES as usize),
        stub().to_json()
    );
    let (field, msg) = refused(dir.path(), &huge);
    assert!(
        field == "(document)" && msg.contains("larger than"),
        "{msg}"
    );
}

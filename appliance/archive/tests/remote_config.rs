//! `RemoteConfig` limits, credentials from the environment, and the key layout; no server.

use chronicle_archive::remote::{Credentials, RemoteConfig, RemoteStore, MIN_PART_BYTES};
use chronicle_archive::ArchiveError;
use std::path::Path;

fn config() -> RemoteConfig {
    RemoteConfig::new("https://s3.example.invalid", "archive-bucket")
}

fn creds() -> Credentials {
    Credentials {
        access_key_id: "id".into(),
        secret_access_key: "very-secret".into(),
    }
}

fn refused_field(c: &RemoteConfig) -> String {
    match c.validate().unwrap_err() {
        ArchiveError::RemoteConfig { field, .. } => field,
        other => panic!("{other:?}"),
    }
}

#[test]
fn config_parses_with_defaults_and_refuses_unknown_fields() {
    let c: RemoteConfig = serde_json::from_str(
        r#"{"endpoint": "https://s3.example.invalid", "bucket": "archive-bucket"}"#,
    )
    .unwrap();
    assert_eq!(c, config());
    assert_eq!(c.access_key_id_env, "AWS_ACCESS_KEY_ID");
    assert_eq!(c.secret_access_key_env, "AWS_SECRET_ACCESS_KEY");
    c.validate().unwrap();
    let err = serde_json::from_str::<RemoteConfig>(
        r#"{"endpoint": "https://h", "bucket": "b-b", "secret_access_key": "x"}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown field `secret_access_key`"),
        "{err}"
    );
}

#[test]
fn config_limits_name_the_field() {
    type Edit = fn(&mut RemoteConfig);
    let cases: [(Edit, &str); 11] = [
        (|c| c.endpoint = "http://127.0.0.1:9000".into(), "endpoint"),
        (|c| c.endpoint = "not a url".into(), "endpoint"),
        (|c| c.endpoint = "ftp://h".into(), "endpoint"),
        (
            |c| (c.endpoint, c.allow_http) = ("http://10.1.2.3:9000".into(), true),
            "allow_http",
        ),
        (|c| c.bucket = "Bad_Bucket".into(), "bucket"),
        (|c| c.prefix = "/cold".into(), "prefix"),
        (|c| c.prefix = "a//b".into(), "prefix"),
        (|c| c.request_timeout_secs = 0, "request_timeout_secs"),
        (|c| c.max_retries = 21, "max_retries"),
        (|c| c.part_bytes = MIN_PART_BYTES - 1, "part_bytes"),
        (|c| c.part_bytes = 2 << 30, "part_bytes"),
    ];
    for (edit, field) in cases {
        let mut c = config();
        edit(&mut c);
        assert_eq!(refused_field(&c), field, "{c:?}");
    }
    let mut c = config();
    for loopback in [
        "http://127.0.0.1:9000",
        "http://localhost:9000",
        "http://[::1]:9000",
    ] {
        (c.endpoint, c.allow_http) = (loopback.into(), true);
        c.validate().unwrap();
    }
}

#[test]
fn credentials_come_from_the_named_variables_and_stay_hidden() {
    let mut c = config();
    c.access_key_id_env = "CHRONICLE_TEST_NEVER_SET_KEY_ID".into();
    let err = RemoteStore::connect(&c).unwrap_err().to_string();
    assert!(
        err.contains("CHRONICLE_TEST_NEVER_SET_KEY_ID is not set"),
        "{err}"
    );
    let shown = format!("{:?}", creds());
    assert!(
        shown.contains("id") && !shown.contains("very-secret"),
        "{shown}"
    );
}

#[test]
fn keys_mirror_the_local_layout_under_the_prefix() {
    let mut c = config();
    c.prefix = "cold/eu".into();
    let store = RemoteStore::connect_with(&c, creds()).unwrap();
    let rel = Path::new("v1/BINANCE/BTCUSDT/2024-01-02/book.q.zst");
    let key = store.key_for(rel).unwrap();
    assert_eq!(key, "cold/eu/v1/BINANCE/BTCUSDT/2024-01-02/book.q.zst");
    let uri = store.uri(&key);
    assert_eq!(uri, format!("s3://archive-bucket/{key}"));
    assert_eq!(store.key_of_uri(&uri).unwrap(), key);
    for bad in ["../v1/a/b", "/v1/a/b", "v2/a/b", "v1/../a", "book.q.zst"] {
        let err = store.key_for(Path::new(bad)).unwrap_err().to_string();
        assert!(err.contains(bad), "{err}");
    }
    for bad in [
        "s3://other-bucket/k",
        "s3://archive-bucket/",
        "https://archive-bucket/k",
    ] {
        let err = store.key_of_uri(bad).unwrap_err().to_string();
        assert!(err.contains(bad), "{err}");
    }
    let no_prefix = RemoteStore::connect_with(&config(), creds()).unwrap();
    assert_eq!(no_prefix.key_for(rel).unwrap(), rel.to_str().unwrap());
}

//! The annotated example of docs/ parses (its `[tiers]` too), and bad configurations are refused
//! with a reason.

use chronicle_runtime::config::{Config, Input};

#[test]
fn the_documented_example_parses() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/chronicle.example.toml"
    ))
    .unwrap();
    let c = Config::from_toml(&text).unwrap();
    assert!(matches!(c.input, Input::Udp { .. }));
    assert_eq!(c.shards.len(), 1);
    assert_eq!(c.flush.interval_ms, 250);
    // `[tiers]` parses to what it says (chronicle-tier's tests cover defaults and refusals).
    assert_eq!(
        c.tiers.cold_dir.as_deref(),
        Some(std::path::Path::new("/mnt/hdd/chronicle"))
    );
    assert_eq!(
        (
            c.tiers.warm_to_cold_after_hours,
            c.tiers.cold_to_remote_after_days
        ),
        (24, 365)
    );
    let remote = c.tiers.remote.expect("the example configures a store");
    assert_eq!(remote.bucket, "chronicle-archive");
}

#[test]
fn bad_configurations_say_why() {
    for (text, why) in [
        ("shards = []", "at least one"),
        ("[flush]\ninterval_ms = 0", "positive"),
        ("[snapshots]\nevery_ms = 1000\nretain = 1", "at least 2"),
        ("[snapshots]\nevery_ms = 1100", "multiple"),
        ("[[shards]]\ncpu = 1\nring = \"/dev/shm/a\"\n[[shards]]\ncpu = 1\nring = \"/dev/shm/b\"", "one executor per core"),
        ("colour = \"blue\"", "unknown field"),
    ] {
        let err = Config::from_toml(text).unwrap_err();
        assert!(err.contains(why), "{text}: {err}");
    }
}

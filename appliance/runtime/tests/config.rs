//! The annotated examples of docs/ parse (the production one's `[tiers]` too), and bad
//! configurations are refused with a reason.

use chronicle_runtime::config::{Config, Input};

/// `docs/{name}`, parsed and validated.
fn documented(name: &str) -> Config {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(name);
    Config::load(Some(&path)).unwrap()
}

#[test]
fn the_local_example_parses_and_asks_for_no_particular_core() {
    let c = documented("chronicle.local.toml");
    assert!(matches!(c.input, Input::Udp { ref bind, .. } if bind.starts_with("127.0.0.1:")));
    let d = Config::default();
    assert_eq!(
        (
            c.feed_cpu,
            c.shards.iter().map(|s| s.cpu).collect::<Vec<_>>()
        ),
        (
            d.feed_cpu,
            d.shards.iter().map(|s| s.cpu).collect::<Vec<_>>()
        ),
        "the defaults: core 0 and the last core"
    );
    // Relative to the file: `docs/../data-local`, the root of a clone.
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    assert_eq!(c.data_dir, docs.join("../data-local"));
}

#[test]
fn relative_paths_are_relative_to_the_configuration_file() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    std::fs::create_dir(&site).unwrap();
    let file = site.join("chronicle.toml");
    std::fs::write(
        &file,
        "data_dir = \"data\"\n[input]\nkind = \"capture\"\npath = \"in/day.dbn.zst\"\n\
         [[shards]]\ncpu = 0\nring = \"/dev/shm/absolute-stays\"\n[tiers]\ncold_dir = \"../cold\"\n",
    )
    .unwrap();
    let c = Config::load(Some(&file)).unwrap();
    assert_eq!(c.data_dir, site.join("data"));
    assert_eq!(c.tiers.cold_dir, Some(site.join("../cold")));
    assert_eq!(
        c.shards[0].ring.as_deref(),
        Some(std::path::Path::new("/dev/shm/absolute-stays"))
    );
    let Input::Capture {
        path,
        format,
        venue,
    } = &c.input
    else {
        panic!("a capture input: {:?}", c.input)
    };
    assert_eq!(path, &site.join("in/day.dbn.zst"));
    // `format` and `venue` default as on the command line.
    assert_eq!(format, &None);
    assert_eq!(
        Input::capture_format(path, *format),
        chronicle_import::CaptureFormat::Dbn
    );
    assert_eq!(venue, "binance-usdm");
    // The embedded default's `./data` is the working directory's.
    assert_eq!(
        Config::load(None).unwrap().data_dir,
        std::path::Path::new("./data")
    );
}

#[test]
fn the_documented_example_parses() {
    let c = documented("chronicle.example.toml");
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
        ("[input]\nkind = \"capture\"\npath = \"x\"\nformat = \"pcap\"", "unknown variant `pcap`"),
        ("[[shards]]\nring_bytes = 1048576", "missing field `cpu`"),
    ] {
        let err = Config::from_toml(text).unwrap_err();
        assert!(err.contains(why), "{text}: {err}");
    }
}

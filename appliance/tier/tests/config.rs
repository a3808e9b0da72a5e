//! `[tiers]`: the defaults are the documented ones (`docs/config.md`), and unknown keys or
//! out-of-range values are refused with the key named. (The documented example's `[tiers]` is
//! checked where the whole file is parsed: `chronicle-runtime`'s `tests/config.rs`.)

use chronicle_tier::TierConfig;

fn tiers_of(text: &str) -> Result<TierConfig, String> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let t = doc
        .get("tiers")
        .cloned()
        .unwrap_or(toml::Value::Table(Default::default()));
    let c: TierConfig = t.try_into().map_err(|e: toml::de::Error| e.to_string())?;
    c.validate()?;
    Ok(c)
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = tiers_of("").unwrap();
    assert_eq!(c, TierConfig::default());
    assert_eq!(c.cold_dir, None, "off until a cold root is given");
    assert_eq!(c.warm_to_cold_after().as_secs(), 24 * 3600);
    assert_eq!(c.cold_to_remote_after().as_secs(), 365 * 86_400);
    assert_eq!((c.zstd_level, c.block_bytes), (3, 1 << 20));
    assert!(!c.derive_parquet && c.remote.is_none());
}

#[test]
fn bad_values_say_which() {
    for (text, why) in [
        ("[tiers]\ncolour = 1", "unknown field `colour`"),
        ("[tiers]\nzstd_level = 0", "tiers.zstd_level"),
        ("[tiers]\nblock_bytes = 100", "tiers.block_bytes"),
        ("[tiers]\nscan_interval_s = 0", "tiers.scan_interval_s"),
        (
            "[tiers]\nmax_moves_per_pass = 0",
            "tiers.max_moves_per_pass",
        ),
        (
            "[tiers]\nwarm_to_cold_after_hours = 48\ncold_to_remote_after_days = 1",
            "cold_to_remote_after_days",
        ),
        (
            "[tiers.remote]\nendpoint = \"http://x\"",
            "missing field `bucket`",
        ),
    ] {
        let err = tiers_of(text).unwrap_err();
        assert!(err.contains(why), "{text}: {err}");
    }
}

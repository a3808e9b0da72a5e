//! `[metrics]` in the runtime configuration: loopback 9477 by default, a way to disable it, a
//! bad address refused with a reason, and the documented example says what the docs say.

use chronicle_runtime::config::Config;

#[test]
fn metrics_section() {
    let d = Config::default();
    assert!(d.metrics.enabled);
    assert_eq!(d.metrics.listen, "127.0.0.1:9477");
    let off = Config::from_toml("[metrics]\nenabled = false").unwrap();
    assert!(!off.metrics.enabled);
    let other = Config::from_toml("[metrics]\nlisten = \"127.0.0.1:19477\"").unwrap();
    assert_eq!(other.metrics.listen, "127.0.0.1:19477");
    let err = Config::from_toml("[metrics]\nlisten = \"localhost\"").unwrap_err();
    assert!(err.contains("metrics.listen"), "{err}");
    let err = Config::from_toml("[metrics]\nport = 1").unwrap_err();
    assert!(err.contains("unknown field"), "{err}");
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/chronicle.example.toml"
    ))
    .unwrap();
    let c = Config::from_toml(&example).unwrap();
    assert!(c.metrics.enabled);
    assert_eq!(c.metrics.listen, "127.0.0.1:9477");
}

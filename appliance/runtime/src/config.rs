//! `chronicle run --config FILE`: the appliance's TOML configuration (annotated example:
//! `docs/config.md`). Every field has a default, so the embedded default is `Config::default()`.

use chronicle_etl::LatePolicy;
use chronicle_import::CaptureFormat;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
    pub input: Input,
    /// Core of the feed (UDP handler or replay generator), off the shard cores.
    pub feed_cpu: usize,
    pub shards: Vec<ShardConfig>,
    pub flush: FlushConfig,
    pub snapshots: SnapshotConfig,
    pub partitions: PartitionConfig,
    /// Locked memory each shard registers with io_uring.
    pub io_memory_bytes: usize,
    pub metrics: MetricsConfig,
    /// Tiers beyond the warm `data_dir`: the cold root, ages, the object store (`docs/tiers.md`).
    pub tiers: chronicle_tier::TierConfig,
}

/// The Prometheus endpoint (`docs/observability.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// `/metrics` is served here; loopback by default.
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:9477".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Input {
    /// The replay generator's seeded synthetic model.
    Synthetic { seed: u64, seconds: u64 },
    /// A real capture, replayed as fast as the shards take it.
    Capture {
        path: PathBuf,
        /// Default: from the file name ([`CaptureFormat::of_path`]), as on the command line.
        #[serde(default)]
        format: Option<CaptureFormat>,
        /// The venue of a Binance capture (the capture does not say); DBN names its own.
        #[serde(default = "default_venue")]
        venue: String,
    },
    /// Normalized records in datagrams on this address (the production feed).
    Udp {
        bind: String,
        /// The socket's receive buffer: what carries the feed through a scheduling hiccup
        /// (0 keeps the kernel's default; see `docs/config.md`).
        #[serde(default = "default_recv_buffer_bytes")]
        recv_buffer_bytes: usize,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardConfig {
    pub cpu: usize,
    /// The shard's Zone 1 ring under /dev/shm; by default named after the canonical data
    /// directory (`rings::ring_for`).
    #[serde(default)]
    pub ring: Option<PathBuf>,
    #[serde(default = "default_ring_bytes")]
    pub ring_bytes: usize,
}

/// The venue a Binance capture is imported under unless told: the importer's default.
pub fn default_venue() -> String {
    "binance-usdm".into()
}

impl Input {
    /// The format of a capture input: as configured, else what its file name says.
    pub fn capture_format(path: &Path, format: Option<CaptureFormat>) -> CaptureFormat {
        format.unwrap_or_else(|| CaptureFormat::of_path(path))
    }
}

fn default_recv_buffer_bytes() -> usize {
    chronicle_feed::socket::DEFAULT_RECV_BUFFER_BYTES
}

fn default_ring_bytes() -> usize {
    64 << 20
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlushConfig {
    pub interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotConfig {
    /// Engine snapshots at the first flush after each multiple of this much exchange time.
    pub every_ms: u64,
    pub retain: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PartitionConfig {
    pub late_policy: LatePolicyName,
    pub grace_ms: u64,
    pub inject_book_every_ms: u64,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LatePolicyName {
    Reject,
    LateStream,
}

impl From<LatePolicyName> for LatePolicy {
    fn from(p: LatePolicyName) -> Self {
        match p {
            LatePolicyName::Reject => LatePolicy::Reject,
            LatePolicyName::LateStream => LatePolicy::LateStream,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            data_dir: PathBuf::from("./data"),
            input: Input::Synthetic {
                seed: 20240808,
                seconds: 60,
            },
            feed_cpu: 0,
            // One shard on the last core; the feed takes core 0 (2-core boxes: one each).
            shards: vec![ShardConfig {
                cpu: cores.saturating_sub(1),
                ring: None,
                ring_bytes: default_ring_bytes(),
            }],
            flush: FlushConfig::default(),
            snapshots: SnapshotConfig::default(),
            partitions: PartitionConfig::default(),
            io_memory_bytes: 2 << 20,
            metrics: MetricsConfig::default(),
            tiers: chronicle_tier::TierConfig::default(),
        }
    }
}

impl Default for FlushConfig {
    fn default() -> Self {
        Self { interval_ms: 250 }
    }
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        Self {
            every_ms: 60_000,
            retain: 16,
        }
    }
}

impl Default for PartitionConfig {
    fn default() -> Self {
        Self {
            late_policy: LatePolicyName::Reject,
            grace_ms: 3_600_000,
            inject_book_every_ms: 60_000,
        }
    }
}

impl Config {
    /// The configuration in `path`, or the embedded default; errors name the file. Relative
    /// paths in a file are relative to the file's directory, so a configuration means the same
    /// whatever directory a command runs in (the default's `./data` is the current directory's).
    pub fn load(path: Option<&Path>) -> Result<Self, String> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut c = Self::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        c.resolve_paths(path.parent().unwrap_or(Path::new("")));
        Ok(c)
    }

    /// Joins every relative path of the configuration onto `base`.
    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.data_dir);
        if let Input::Capture { path, .. } = &mut self.input {
            resolve(path);
        }
        for s in &mut self.shards {
            s.ring.as_mut().map(resolve);
        }
        self.tiers.cold_dir.as_mut().map(resolve);
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        let c: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.shards.is_empty() {
            return Err("at least one [[shards]] entry is needed".into());
        }
        if self.flush.interval_ms == 0 {
            return Err("flush.interval_ms must be positive".into());
        }
        if !self
            .snapshots
            .every_ms
            .is_multiple_of(self.flush.interval_ms)
        {
            return Err("snapshots.every_ms must be a multiple of flush.interval_ms".into());
        }
        if self.snapshots.retain < 2 {
            return Err(
                "snapshots.retain must be at least 2 (a damaged newest one needs a fallback)"
                    .into(),
            );
        }
        self.tiers.validate()?;
        if let Input::Udp {
            recv_buffer_bytes, ..
        } = self.input
        {
            let max = chronicle_feed::socket::MAX_RECV_BUFFER_BYTES;
            if recv_buffer_bytes > max {
                return Err(format!(
                    "input.recv_buffer_bytes {recv_buffer_bytes} is above the kernel's limit {max}"
                ));
            }
        }
        if self.metrics.enabled && self.metrics.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "metrics.listen `{}` is not an address:port (e.g. 127.0.0.1:9477)",
                self.metrics.listen
            ));
        }
        let mut cpus: Vec<usize> = self.shards.iter().map(|s| s.cpu).collect();
        cpus.sort();
        cpus.dedup();
        if cpus.len() != self.shards.len() {
            return Err("two shards on one cpu: one executor per core".into());
        }
        Ok(())
    }
}

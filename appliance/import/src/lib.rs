//! chronicle-import: converts real captures into `.q` partitions.
//!
//! A source ([`binance`], [`dbn`]) decodes a venue's format into instruments and events;
//! the [`PartitionSink`] gives them identity and tick ids and writes the partitions.

pub mod binance;
pub mod dbn;
mod error;
mod progress;
mod sink;
mod source;

pub use error::ImportError;

use std::path::Path;

/// The capture formats the importers read, named `binance-capture` and `dbn` on the command
/// line and in a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaptureFormat {
    /// `<receive ns> <combined-stream JSON>` lines, gzip or plain.
    BinanceCapture,
    /// Databento DBN (`.dbn`, `.dbn.zst`, legacy `.dbz`).
    Dbn,
}

impl CaptureFormat {
    /// The format a capture's file name says: `.dbn`, `.dbn.zst` and `.dbz` are DBN, anything
    /// else a Binance capture. Every command that takes `--format` defaults to this.
    pub fn of_path(path: &Path) -> Self {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if [".dbn", ".dbn.zst", ".dbz"]
            .iter()
            .any(|e| name.ends_with(e))
        {
            Self::Dbn
        } else {
            Self::BinanceCapture
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::BinanceCapture => "binance-capture",
            Self::Dbn => "dbn",
        }
    }
}

impl std::str::FromStr for CaptureFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        [Self::BinanceCapture, Self::Dbn]
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("capture format `{s}`: expected binance-capture or dbn"))
    }
}
pub use sink::PartitionSink;
pub use source::{EventSink, Instrument, InstrumentHandle};

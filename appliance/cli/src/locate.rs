//! What `cat` and `verify` are pointed at: a path on any tier, or a partition key resolved
//! through the tier roots of the appliance's configuration (seed 004's universal reader).

use chronicle_reader::{Partition, TierRoots};
use chronicle_runtime::config::Config;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Where {
    /// The appliance's configuration (TOML): its data_dir and [tiers] give the roots a
    /// partition key is resolved in, and [tiers.remote] the object store of RemoteCold.
    /// Without it: the embedded default (./data, warm only).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl Where {
    pub fn roots(&self) -> Result<TierRoots, String> {
        let cfg = Config::load(self.config.as_deref())?;
        Ok(TierRoots {
            hot: None,
            warm: cfg.data_dir,
            cold: cfg.tiers.cold_dir,
            remote: cfg.tiers.remote,
        })
    }

    /// Opens `target`: an existing path (a partition directory of any tier, a `book.q` or a
    /// `book.q.zst`) as it is, otherwise a key `[v1/]{venue}/{symbol}/{date}[/late]` from the
    /// first tier that holds it.
    pub fn open(&self, target: &Path) -> Result<Partition, Box<dyn std::error::Error>> {
        let roots = self.roots()?;
        if target.is_dir() {
            return Ok(Partition::open_dir(target, roots.remote.as_ref())?);
        }
        if target.exists() {
            return Ok(Partition::open(target)?);
        }
        Ok(roots.open(&key_of(target)?)?.1)
    }

    /// The directory of the first tier that holds the partition `key`.
    pub fn locate(
        &self,
        roots: &TierRoots,
        key: &Path,
    ) -> Result<PathBuf, Box<dyn std::error::Error>> {
        Ok(roots.find(&key_of(key)?)?.1)
    }
}

/// `binance-usdm/btcusdt/2024-08-08` and `v1/binance-usdm/btcusdt/2024-08-08` name the same
/// partition.
fn partition_key(arg: &Path) -> PathBuf {
    if arg.starts_with("v1") {
        arg.to_owned()
    } else {
        Path::new("v1").join(arg)
    }
}

/// The partition key `arg` names, or an error saying the path does not exist: an argument that
/// is not an existing path is a key only if it is written as one.
fn key_of(arg: &Path) -> Result<PathBuf, String> {
    if is_key(arg) {
        Ok(partition_key(arg))
    } else {
        Err(format!("{}: no such file or directory", arg.display()))
    }
}

/// Whether `arg` is written as a partition key, `[v1/]{venue}/{symbol}/{YYYY-MM-DD}[/late]`.
fn is_key(arg: &Path) -> bool {
    let key = partition_key(arg);
    let parts: Vec<&str> = key
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .collect();
    let parts = match parts.as_slice() {
        [rest @ .., "late"] => rest,
        all => all,
    };
    matches!(parts, ["v1", _, _, day] if chronicle_storage::utc::parse_iso_date(day).is_some())
}

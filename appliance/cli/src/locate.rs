//! What `cat` and `verify` are pointed at: a path on any tier, or a partition key resolved
//! through the tier roots of the appliance's configuration (seed 004's universal reader).

use chronicle_reader::{Partition, ReadError, TierRoots};
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
        Ok(roots.open(&partition_key(target))?.1)
    }

    /// The directory of the first tier that holds the partition `key`.
    pub fn locate(&self, roots: &TierRoots, key: &Path) -> Result<PathBuf, ReadError> {
        Ok(roots.find(&partition_key(key))?.1)
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

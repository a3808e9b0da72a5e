//! What `cat` and `verify` are pointed at: a path on any tier, or a partition key resolved
//! through the tier roots of the appliance's configuration (the universal reader's resolution,
//! `docs/reader.md`).

use chronicle_reader::{Partition, TierRoots};
use chronicle_runtime::config::Config;
use std::path::{Component, Path, PathBuf};

/// Where the stored data is, the same way for every command that reads or writes a data
/// directory: `--data-dir DIR`, or `--config FILE` (the appliance's `data_dir` and tiers), or
/// the embedded default `./data`.
#[derive(clap::Args)]
pub struct Where {
    /// The appliance's configuration (TOML): its data_dir and [tiers] give the roots a
    /// partition key is resolved in, and [tiers.remote] the object store of RemoteCold
    /// (relative paths in it are relative to the file).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The data directory (warm tier only), instead of a configuration's. Default: ./data.
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    pub data_dir: Option<PathBuf>,
}

impl Where {
    pub fn roots(&self) -> Result<TierRoots, String> {
        let cfg = Config::load(self.config.as_deref())?;
        Ok(TierRoots {
            hot: None,
            warm: self.data_dir.clone().unwrap_or(cfg.data_dir),
            cold: cfg.tiers.cold_dir,
            remote: cfg.tiers.remote,
        })
    }

    /// The warm data directory: where writers (`import`, `engine run`) put what they make.
    pub fn data_dir(&self) -> Result<PathBuf, String> {
        Ok(self.roots()?.warm)
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

    /// What `cat` reads: a partition as [`Where::open`] finds it, or a symbol's days across
    /// the tiers: `[v1/]{venue}/{symbol}` as a key, or a symbol directory of a tier root.
    pub fn target(&self, arg: &Path) -> Result<Target, Box<dyn std::error::Error>> {
        let roots = self.roots()?;
        if arg.is_dir() && is_symbol_dir(arg) {
            // `{root}/v1/{venue}/{symbol}`: its days from every configured tier when `root`
            // is one of them, else from that root alone.
            let root = arg
                .ancestors()
                .nth(3)
                .expect("a symbol dir is three below a root");
            let key = arg.strip_prefix(root).expect("an ancestor").to_owned();
            let same = |r: &Path| std::fs::canonicalize(r).ok() == std::fs::canonicalize(root).ok();
            let configured = same(&roots.warm) || roots.cold.as_deref().is_some_and(same);
            let roots = if configured {
                roots
            } else {
                TierRoots {
                    remote: roots.remote,
                    ..TierRoots::warm_only(root.to_owned())
                }
            };
            return Ok(Target::Symbol { roots, key });
        }
        if !arg.exists() && is_symbol_key(arg) {
            return Ok(Target::Symbol {
                roots,
                key: partition_key(arg),
            });
        }
        Ok(Target::Partition(self.open(arg)?))
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

/// A partition, or every stored day of a symbol.
pub enum Target {
    Partition(Partition),
    Symbol {
        roots: TierRoots,
        /// `v1/{venue}/{symbol}`.
        key: PathBuf,
    },
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

/// The names of a key's components (`v1` first).
fn key_parts(key: &Path) -> Vec<&str> {
    key.components()
        .filter_map(|c| match c {
            Component::Normal(n) => n.to_str(),
            _ => None,
        })
        .collect()
}

/// Whether `arg` is written as a symbol key, `[v1/]{venue}/{symbol}`.
fn is_symbol_key(arg: &Path) -> bool {
    let key = partition_key(arg);
    matches!(key_parts(&key).as_slice(), ["v1", venue, symbol] if !is_date(venue) && !is_date(symbol))
}

/// Whether `dir` is `.../v1/{venue}/{symbol}` and not itself a partition.
fn is_symbol_dir(dir: &Path) -> bool {
    let v1 = dir.parent().and_then(Path::parent);
    v1.and_then(Path::file_name).is_some_and(|n| n == "v1")
        && !dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(is_date)
}

fn is_date(name: &str) -> bool {
    chronicle_storage::utc::parse_iso_date(name).is_some()
}

/// Whether `arg` is written as a partition key, `[v1/]{venue}/{symbol}/{YYYY-MM-DD}[/late]`.
fn is_key(arg: &Path) -> bool {
    let key = partition_key(arg);
    let parts = key_parts(&key);
    let parts = match parts.as_slice() {
        [rest @ .., "late"] => rest,
        all => all,
    };
    matches!(parts, ["v1", _, _, day] if is_date(day))
}

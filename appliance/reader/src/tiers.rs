//! Where partitions live: the tier roots, in the order the universal reader resolves them.

use crate::partition::Partition;
use crate::ReadError;
use chronicle_archive::remote::RemoteConfig;
use chronicle_archive::{ARCHIVE_FILE, STUB_FILE};
use chronicle_storage::partition::SEGMENT_FILE;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A storage tier, in resolution priority order: Hot → Warm → Cold → RemoteCold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Partitions being written (a root of its own only when the appliance writes today's data
    /// elsewhere than the warm root).
    Hot,
    /// `book.q` on NVMe, read with mmap.
    Warm,
    /// `book.q.zst` + `book.q.zst.idx` on the archive disk.
    Cold,
    /// `book.q.zst.remote.json` in the cold root, the bytes in object storage.
    RemoteCold,
}

/// The data directories of each tier. Each root holds the same `v1/{venue}/{symbol}/{date}/`
/// layout; a partition lives in exactly one tier at a time, except during a move, when the
/// reader takes the first tier that has it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierRoots {
    pub hot: Option<PathBuf>,
    pub warm: PathBuf,
    /// Also where RemoteCold stubs live.
    pub cold: Option<PathBuf>,
    /// The object store of RemoteCold (needed to read a partition that lives there).
    pub remote: Option<RemoteConfig>,
}

/// How many times a read re-resolves a partition that vanished between being found and being
/// opened (a tier move finished in between). Two moves cannot both finish in that window
/// unless something is wrong, so a small bound suffices.
const RESOLVE_ATTEMPTS: usize = 4;

impl TierRoots {
    /// Roots with only a warm tier (what `chronicle run` writes to by default).
    pub fn warm_only(warm: PathBuf) -> Self {
        Self {
            warm,
            ..Self::default()
        }
    }

    /// The tiers in resolution order with their roots (RemoteCold stubs live in the cold root).
    fn search_order(&self) -> Vec<(Tier, &Path)> {
        let mut order = Vec::with_capacity(4);
        if let Some(hot) = &self.hot {
            order.push((Tier::Hot, hot.as_path()));
        }
        order.push((Tier::Warm, self.warm.as_path()));
        if let Some(cold) = &self.cold {
            order.push((Tier::Cold, cold.as_path()));
            order.push((Tier::RemoteCold, cold.as_path()));
        }
        order
    }

    /// The first tier, in priority order, whose root holds the partition `key` (a path
    /// relative to the roots: `v1/{venue}/{symbol}/{date}`, optionally ending in `late`).
    pub fn locate(&self, key: &Path) -> Option<(Tier, PathBuf)> {
        self.search_order().into_iter().find_map(|(tier, root)| {
            let dir = root.join(key);
            tier.holds(&dir).then_some((tier, dir))
        })
    }

    /// Opens the partition `key` from the first tier that has it. Never reads two tiers: if the
    /// files vanish between finding and opening (a move just finished), it resolves again.
    pub fn open(&self, key: &Path) -> Result<(Tier, Partition), ReadError> {
        for _ in 0..RESOLVE_ATTEMPTS {
            let (tier, dir) = self.find(key)?;
            match Partition::open_dir(&dir, self.remote.as_ref()) {
                Err(e) if e.is_vanished() => continue,
                r => return r.map(|p| (tier, p)),
            }
        }
        Err(self.not_found(key))
    }

    /// The days stored for the symbol `key` (`v1/{venue}/{symbol}`) on any tier, as
    /// `YYYY-MM-DD` in order; each once, whichever tiers hold it.
    pub fn days(&self, key: &Path) -> Result<Vec<String>, ReadError> {
        let mut days = Vec::new();
        for (tier, root) in self.search_order() {
            for dir in chronicle_storage::fsutil::sorted_entries(&root.join(key))? {
                let name = dir.file_name().unwrap_or_default().to_string_lossy();
                if chronicle_storage::utc::parse_iso_date(&name).is_some() && tier.holds(&dir) {
                    days.push(name.into_owned());
                }
            }
        }
        days.sort();
        days.dedup();
        Ok(days)
    }

    /// [`TierRoots::locate`], or an error naming the roots searched.
    pub fn find(&self, key: &Path) -> Result<(Tier, PathBuf), ReadError> {
        self.locate(key).ok_or_else(|| self.not_found(key))
    }

    /// Names the tiers searched; RemoteCold only when an object store is configured (its
    /// stubs are looked for in the cold root all the same, to say what reading one needs).
    fn not_found(&self, key: &Path) -> ReadError {
        ReadError::NotFound {
            key: key.display().to_string(),
            searched: self
                .search_order()
                .iter()
                .filter(|(t, _)| *t != Tier::RemoteCold || self.remote.is_some())
                .map(|(t, root)| format!("{t:?} {}", root.display()))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

impl Tier {
    /// Whether `dir` holds this tier's files for a partition.
    fn holds(self, dir: &Path) -> bool {
        let file = match self {
            Tier::Hot | Tier::Warm => SEGMENT_FILE,
            Tier::Cold => ARCHIVE_FILE,
            Tier::RemoteCold => STUB_FILE,
        };
        dir.join(file).is_file()
    }
}

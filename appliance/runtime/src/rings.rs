//! The appliance's Zone 1 rings: one per shard, named after the canonical data directory
//! (unless the configuration names them), created only once everything else was checked,
//! and removed on every way out of `run` this process controls (a guard that drops with the
//! run, on an error or a panic too). A ring a dead process left (its producer's lock is free)
//! is replaced, and said so; a ring a live process produces into is never touched.

use crate::RuntimeError;
use chronicle_feed::{Access, AttachOptions, Consumer, Producer};
use std::path::{Path, PathBuf};

/// The ring of shard `shard` of the appliance whose data directory is `data_dir`: named after
/// its canonical path, so that two data directories never share a ring and a rerun replaces
/// its own.
pub fn ring_for(data_dir: &Path, shard: usize) -> PathBuf {
    let abs = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    let key = crate::feed::fnv1a(abs.to_string_lossy().as_bytes());
    PathBuf::from(format!("/dev/shm/chronicle-{key:016x}-shard-{shard}"))
}

/// Rings this process created; removed when dropped.
pub struct Rings {
    paths: Vec<PathBuf>,
}

impl Rings {
    /// Creates a ring at each of `rings` (path, data bytes), with its producer and consumer.
    pub fn create(
        rings: &[(PathBuf, usize)],
    ) -> Result<(Self, Vec<Producer>, Vec<Consumer>), RuntimeError> {
        let mut made = Self { paths: Vec::new() };
        let (mut producers, mut consumers) = (Vec::new(), Vec::new());
        for (path, bytes) in rings {
            if chronicle_feed::remove_stale(path)? {
                eprintln!(
                    "chronicle: {}: a ring left by a process that is gone; replaced",
                    path.display()
                );
            }
            producers.push(chronicle_feed::create(path, *bytes, Access::Owner)?);
            made.paths.push(path.clone());
            consumers.push(chronicle_feed::attach(path, &AttachOptions::default())?);
        }
        Ok((made, producers, consumers))
    }
}

impl Drop for Rings {
    fn drop(&mut self) {
        for p in &self.paths {
            let _ = std::fs::remove_file(p);
        }
    }
}

//! Cold → RemoteCold (the object storage move protocol, `docs/tiers.md`): write the intent →
//! upload `book.q.zst` and `.idx` (each verified by reading it back: size and SHA-256) → write
//! the stub `book.q.zst.remote.json` durably (the commit) → delete the local `.zst`, `.idx` and
//! the intent → fsync the dir. `meta.json`, `index/time.idx` and `derived/` stay local.

use crate::fsops;
use crate::layout::{ColdFiles, Unit, IDX_FILE, ZST_FILE};
use crate::steps::Ctx;
use crate::warm_to_cold::Moved;
use crate::TierError;
use chronicle_archive::remote::RemoteStore;
use chronicle_archive::seekable;
use chronicle_archive::stub::RemoteStub;
use chronicle_storage::fsutil::{fsync_dir, write_atomic};
use chronicle_storage::meta::PartitionMeta;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// The intent file's content: the keys an interrupted upload may have written.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    pub keys: Vec<String>,
}

impl Intent {
    const MAX_BYTES: u64 = 64 << 10;

    pub fn read(path: &Path) -> Result<Self, TierError> {
        let len = std::fs::metadata(path)
            .map_err(|e| TierError::io(path, e))?
            .len();
        let bad = |reason: String| TierError::Unresolved {
            path: path.to_owned(),
            reason,
        };
        if len > Self::MAX_BYTES {
            return Err(bad(format!(
                "{len} bytes, an intent is under {}",
                Self::MAX_BYTES
            )));
        }
        let b = std::fs::read(path).map_err(|e| TierError::io(path, e))?;
        serde_json::from_slice(&b).map_err(|e| bad(format!("field `keys`: {e}")))
    }
}

/// The object keys of a unit's `.zst` and `.idx`.
pub fn keys(store: &RemoteStore, unit: &Unit) -> Result<[String; 2], TierError> {
    Ok([
        store.key_for(&unit.rel.join(ZST_FILE))?,
        store.key_for(&unit.rel.join(IDX_FILE))?,
    ])
}

/// Uploads one cold unit and leaves only its stub (plus meta and index) locally. The caller
/// checked it is due, that it has a `.zst` and `.idx`, and no stub or intent.
pub fn move_unit(ctx: &Ctx, store: &RemoteStore, unit: &Unit) -> Result<Moved, TierError> {
    let started = Instant::now();
    let c = ColdFiles::new(&ctx.cold, unit);
    debug_assert!(
        !c.stub.exists() && !c.intent.exists(),
        "{:?}: reconcile first",
        c.dir
    );
    // Upload only a copy that is whole (a disk error since the cold move must not travel).
    let local = seekable::verify_files(&c.zst, &c.idx)?;
    let [zst_key, idx_key] = keys(store, unit)?;
    let intent = Intent {
        keys: vec![zst_key.clone(), idx_key.clone()],
    };
    write_atomic(
        &c.intent,
        &serde_json::to_vec(&intent).expect("plain struct serializes"),
    )?;
    ctx.step("c2r.intent_written")?;
    let data = store.upload(&c.zst, &zst_key)?;
    ctx.step("c2r.uploaded_zst")?;
    let index = store.upload(&c.idx, &idx_key)?;
    ctx.step("c2r.uploaded_idx")?;
    let stub = RemoteStub {
        data,
        index,
        uncompressed_size: local.uncompressed_len,
        uncompressed_sha256: local.source_sha256,
    };
    stub.write(&c.stub)?;
    ctx.step("c2r.stub_written")?;
    delete_local(ctx, &c)?;
    Ok(Moved {
        records: PartitionMeta::read(&c.meta)?.records,
        bytes_in: stub.data.size + stub.index.size,
        bytes_out: stub.data.size + stub.index.size,
        elapsed: started.elapsed(),
    })
}

/// Deletes the local archive of a unit whose stub is durable: `.zst`, `.idx`, then the
/// intent, then fsyncs the dir. Used by the move and by reconciliation.
pub fn delete_local(ctx: &Ctx, c: &ColdFiles) -> Result<(), TierError> {
    fsops::remove_file(&c.zst)?;
    ctx.step("c2r.deleted_zst")?;
    fsops::remove_file(&c.idx)?;
    fsops::remove_file(&c.intent)?;
    fsync_dir(&c.dir)?;
    ctx.step("c2r.fsynced_dir")
}

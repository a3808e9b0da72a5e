//! Warm → Cold: a closed, verified `book.q` becomes `book.q.zst` + `.idx` (seekable zstd) in
//! the cold root, with its `meta.json`, `index/time.idx` and optionally
//! `derived/book.parquet`. Protocol (`docs/tiers.md`): copy to temporary names → fsync files →
//! verify the copy → rename (the `.zst` last: its name is the commit) → fsync target dirs →
//! delete the source (`book.q` first) → fsync source dir → remove the emptied dirs.

use crate::fsops::{self, copy_to_tmp, fsync_file, remove_empty_dirs, remove_files_durable};
use crate::layout::{tmp_of, ColdFiles, Unit, WarmFiles};
use crate::not_moved::NotMoved;
use crate::steps::Ctx;
use crate::TierError;
use chronicle_archive::seekable::{self, TranscodeOptions};
use chronicle_reader::verify::{verify, Verdict};
use chronicle_storage::fsutil::{create_dir_durable, fsync_dir};
use std::path::Path;
use std::time::Instant;

/// What a finished move did.
#[derive(Debug, Clone)]
pub struct Moved {
    pub records: u64,
    /// Bytes read from the source tier (`book.q`, or `.zst` + `.idx` for an upload).
    pub bytes_in: u64,
    /// Bytes written to the target tier.
    pub bytes_out: u64,
    pub elapsed: std::time::Duration,
}

/// Whether the warm copy of `unit` may move: past its day's late window, its segment left
/// alone for at least that window, and closed (its `meta.json` written). `Ok(None)`: it may;
/// `Ok(Some)`: not yet, and why; `Err`: it never will be as it is.
pub fn closed_reason(ctx: &Ctx, unit: &Unit) -> Result<Option<NotMoved>, TierError> {
    let w = WarmFiles::new(&ctx.warm, unit);
    let grace = ctx.grace.as_nanos() as u64;
    let window_end = unit.day_end_ns() + grace;
    if ctx.now_ns() < window_end {
        return Ok(Some(NotMoved::LateWindow {
            until_ns: window_end,
            written_ns: None,
        }));
    }
    if !w.segment.is_file() {
        return Err(TierError::Refused {
            path: w.dir.clone(),
            reason: "no book.q".into(),
        });
    }
    // A segment written within the window is still at work (an appliance replaying old data
    // writes old dates): not closed yet if it has no meta.json, else still taking records.
    let mtime = fsops::stamp(&w.segment)?.mtime;
    if ctx.now.duration_since(mtime).unwrap_or_default() < ctx.grace {
        let written_ns = mtime
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        return Ok(Some(match w.meta.is_file() {
            true => NotMoved::LateWindow {
                until_ns: written_ns + grace,
                written_ns: Some(written_ns),
            },
            false => NotMoved::NotClosed { written_ns },
        }));
    }
    if !w.meta.is_file() {
        return Err(TierError::Refused {
            path: w.meta.clone(),
            reason: "missing: the partition was never closed".into(),
        });
    }
    Ok(None)
}

/// Moves one unit from warm to cold. The caller checked it is due and that neither a cold
/// copy nor a stub exists (reconciliation ran first).
pub fn move_unit(ctx: &Ctx, unit: &Unit) -> Result<Moved, TierError> {
    let started = Instant::now();
    let w = WarmFiles::new(&ctx.warm, unit);
    let c = ColdFiles::new(&ctx.cold, unit);
    debug_assert!(
        !c.zst.exists() && !c.stub.exists(),
        "{:?}: reconcile first",
        c.dir
    );

    // The source must be whole: a torn tail or damage stays warm for `chronicle verify`.
    let before = fsops::stamp(&w.segment)?;
    let records = match verify_single(&w.segment)? {
        Verdict::Ok { records, .. } => records,
        Verdict::TornTail {
            valid_end, reason, ..
        } => {
            return Err(TierError::Refused {
                path: w.segment.clone(),
                reason: format!("torn tail at byte offset {valid_end} ({reason})"),
            })
        }
    };
    ctx.step("w2c.verified_warm")?;

    // Copy under temporary names.
    create_dir_durable(fsops::parent(&c.index))?;
    let opts = TranscodeOptions {
        block_size: ctx.cfg.block_bytes,
        level: ctx.cfg.zstd_level,
    };
    let t = seekable::transcode(&w.segment, &tmp_of(&c.zst), &tmp_of(&c.idx), &opts)?;
    ctx.step("w2c.transcoded")?;
    let mut temps = vec![(copy_to_tmp(&w.meta, &c.meta)?, c.meta.clone())];
    if w.index.is_file() {
        temps.push((copy_to_tmp(&w.index, &c.index)?, c.index.clone()));
    }
    if ctx.cfg.derive_parquet {
        // The Deriver writes its own temporary, fsyncs and renames it: a derived file
        // without the committed `.zst` is an uncommitted copy all the same.
        chronicle_derive::derive_partition(&w.dir, &c.parquet)?;
    }
    temps.push((tmp_of(&c.idx), c.idx.clone()));
    temps.push((tmp_of(&c.zst), c.zst.clone()));
    ctx.step("w2c.copied")?;
    for (tmp, _) in &temps {
        fsync_file(tmp)?;
    }
    ctx.step("w2c.fsynced_files")?;

    // The copy decodes to exactly the warm bytes.
    let decoded = seekable::verify_files(&tmp_of(&c.zst), &tmp_of(&c.idx))?;
    let read = (t.bytes_in, t.source_sha256);
    if (decoded.uncompressed_len, decoded.source_sha256) != read || t.bytes_in != before.len {
        return Err(TierError::Refused {
            path: tmp_of(&c.zst),
            reason: format!(
                "decodes to {} bytes sha256 {}; book.q has {} bytes, transcode read {} with sha256 {}",
                decoded.uncompressed_len,
                hex(&decoded.source_sha256),
                before.len,
                t.bytes_in,
                hex(&t.source_sha256)
            ),
        });
    }
    ctx.step("w2c.verified_cold")?;

    // Rename: everything else first, the `.zst` last (the commit).
    let (zst, copies) = temps.split_last().expect("the .zst is always copied");
    for (tmp, dst) in copies {
        fsops::rename(tmp, dst)?;
    }
    for dir in dirs_of(copies.iter().map(|(_, d)| d.as_path())) {
        fsync_dir(dir)?;
    }
    ctx.step("w2c.renamed_copies")?;
    fsops::rename(&zst.0, &zst.1)?;
    ctx.step("w2c.renamed")?;
    fsync_dir(&c.dir)?;
    ctx.step("w2c.fsynced_target_dir")?;

    // The source did not change since it was verified (an appliance still appending would
    // have changed its size or mtime): then, and only then, delete it.
    if fsops::stamp(&w.segment)? != before {
        return Err(TierError::Refused {
            path: w.segment.clone(),
            reason: "changed during the move; the next pass reconciles the two copies".into(),
        });
    }
    delete_warm(ctx, unit, &w)?;
    Ok(Moved {
        records,
        bytes_in: before.len,
        bytes_out: t.bytes_out + t.idx_len,
        elapsed: started.elapsed(),
    })
}

/// Deletes a unit's warm files (`book.q` first: without it the warm tier no longer holds
/// the unit), then its emptied directories. Used by the move and by reconciliation.
pub fn delete_warm(ctx: &Ctx, unit: &Unit, w: &WarmFiles) -> Result<(), TierError> {
    remove_files_durable(&[&w.segment])?;
    ctx.step("w2c.deleted_segment")?;
    remove_files_durable(&[&w.meta, &w.index])?;
    ctx.step("w2c.deleted_source")?;
    let stop = ctx.warm.join(unit.symbol_key());
    remove_empty_dirs(fsops::parent(&w.index), &stop)?;
    remove_empty_dirs(&w.dir, &stop)?;
    ctx.step("w2c.fsynced_source_dir")
}

/// Verifies one segment file (its index and meta beside it).
pub fn verify_single(segment: &Path) -> Result<Verdict, TierError> {
    let mut report = verify(segment, None)?;
    debug_assert_eq!(report.files.len(), 1);
    Ok(report.files.pop().expect("one file verified").1)
}

/// The distinct parent directories of `files`, in order.
fn dirs_of<'a>(files: impl Iterator<Item = &'a Path>) -> Vec<&'a Path> {
    let mut dirs: Vec<&Path> = Vec::new();
    for f in files {
        let d = fsops::parent(f);
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

//! Startup (and start-of-pass) reconciliation: every state an interrupted move can leave is
//! resolved so that exactly one complete, verified copy of each unit remains, and the only
//! verified copy is never deleted. The states and their resolutions are the crash matrix of
//! `docs/tiers.md`; each [`State`] below is one row.

use crate::cold_to_remote::{self, Intent};
use crate::fsops::{self, remove_empty_dirs, remove_files_durable};
use crate::layout::{ColdFiles, Unit, WarmFiles};
use crate::steps::Ctx;
use crate::warm_to_cold::{self, hex};
use crate::TierError;
use chronicle_archive::remote::RemoteStore;
use chronicle_archive::seekable::{self, VerifyReport};
use chronicle_archive::stub::RemoteStub;
use chronicle_archive::ArchiveError;
use chronicle_reader::verify::Verdict;
use chronicle_storage::fsutil::fsync_dir;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A leftover state, named as in the crash matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// `.{name}.tier-tmp` / `.{name}.tmp` in the cold unit: never a complete copy.
    TempFiles,
    /// Cold copies without the `.zst` (its rename is the commit), warm `book.q` present.
    UncommittedCopy,
    /// The `.zst` is committed and the warm unit (or part of it) is still there.
    BothCopies,
    /// The warm `book.q` grew after the cold copy was made (the copy is its prefix).
    WarmExtended,
    /// The warm unit's files are gone but its directories are not.
    EmptiedWarmDirs,
    /// An upload intent without a stub: remote objects may exist that nothing points to.
    RemoteWithoutStub,
    /// A stub and local `.zst`/`.idx`/intent: the upload committed, the local delete did not
    /// finish.
    StubWithLocal,
    /// A stub whose remote objects are gone or replaced, while the local archive is whole.
    StubStale,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::TempFiles => "temporary files",
            State::UncommittedCopy => "uncommitted cold copy",
            State::BothCopies => "warm and cold copies",
            State::WarmExtended => "warm copy extended after the cold copy",
            State::EmptiedWarmDirs => "emptied warm directories",
            State::RemoteWithoutStub => "remote objects without a stub",
            State::StubWithLocal => "stub with local archive files",
            State::StubStale => "stub of missing remote objects",
        }
    }
}

/// One leftover resolved.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub unit: PathBuf,
    pub state: State,
    pub action: &'static str,
}

/// Resolves every leftover of one unit. An `Err` leaves the unit as it is (nothing more is
/// attempted on it this pass): `Unresolved` needs an operator, anything else is retried.
pub fn unit(
    ctx: &Ctx,
    store: Option<&RemoteStore>,
    unit: &Unit,
) -> Result<Vec<Resolution>, TierError> {
    let w = WarmFiles::new(&ctx.warm, unit);
    let c = ColdFiles::new(&ctx.cold, unit);
    let mut out = Vec::new();
    let mut resolved = |state, action| {
        out.push(Resolution {
            unit: unit.rel.clone(),
            state,
            action,
        })
    };

    let temps = c.temps()?;
    if !temps.is_empty() {
        let refs: Vec<&Path> = temps.iter().map(PathBuf::as_path).collect();
        remove_files_durable(&refs)?;
        resolved(State::TempFiles, "deleted");
    }

    if c.intent.is_file() && !c.stub.is_file() {
        let store = need_store(store, &c.intent)?;
        for key in Intent::read(&c.intent)?.keys {
            store.delete(&key)?;
        }
        fsops::remove_file(&c.intent)?;
        fsync_dir(&c.dir)?;
        resolved(
            State::RemoteWithoutStub,
            "remote objects deleted, the local archive stays",
        );
    }

    if c.stub.is_file() && [&c.zst, &c.idx, &c.intent].iter().any(|p| p.is_file()) {
        let stub = RemoteStub::read(&c.stub)?;
        let remote = match remote_matches(need_store(store, &c.stub)?, &stub) {
            Ok(()) => true,
            Err(e) if gone(&e) => false,
            Err(e) => return Err(e.into()),
        };
        if remote {
            cold_to_remote::delete_local(ctx, &c)?;
            resolved(
                State::StubWithLocal,
                "remote objects checked (size, ETag); local .zst/.idx deleted",
            );
        } else if c.zst.is_file() && c.idx.is_file() && verify_cold(&c).is_ok() {
            fsops::remove_file(&c.stub)?;
            fsops::remove_file(&c.intent)?;
            fsync_dir(&c.dir)?;
            resolved(
                State::StubStale,
                "stub deleted, the verified local archive stays",
            );
        } else {
            return Err(TierError::Unresolved {
                path: c.stub.clone(),
                reason:
                    "its remote objects are missing or replaced and the local archive is not whole"
                        .into(),
            });
        }
    }

    if c.stub.is_file() && w.any() {
        return Err(TierError::Unresolved {
            path: w.dir.clone(),
            reason: format!(
                "a warm copy exists beside the RemoteCold stub {}",
                c.stub.display()
            ),
        });
    }

    if c.zst.is_file() && w.any() {
        let (state, action) = both_copies(ctx, unit, &w, &c)?;
        resolved(state, action);
    }

    if (c.zst.is_file() || c.stub.is_file()) && !w.any() && w.dir.is_dir() {
        let stop = ctx.warm.join(unit.symbol_key());
        remove_empty_dirs(fsops::parent(&w.index), &stop)?;
        remove_empty_dirs(&w.dir, &stop)?;
        if !w.dir.exists() {
            resolved(State::EmptiedWarmDirs, "removed");
        }
    }

    let partial: Vec<&PathBuf> = c.copies().into_iter().filter(|p| p.is_file()).collect();
    if !c.zst.is_file() && !c.stub.is_file() && !partial.is_empty() {
        if !w.segment.is_file() {
            return Err(TierError::Unresolved {
                path: c.dir.clone(),
                reason: "no book.q.zst, no stub and no warm book.q: no complete copy".into(),
            });
        }
        delete_cold_copy(ctx, unit, &c)?;
        resolved(
            State::UncommittedCopy,
            "partial cold copy deleted, the warm copy stays",
        );
    }
    Ok(out)
}

/// A committed cold copy and warm leftovers: keep the copy that is whole and holds
/// everything; never delete the only verified one.
fn both_copies(
    ctx: &Ctx,
    unit: &Unit,
    w: &WarmFiles,
    c: &ColdFiles,
) -> Result<(State, &'static str), TierError> {
    let cold = verify_cold(c);
    if !w.segment.is_file() {
        // The move deleted book.q (after the commit), not yet meta.json or the index.
        return match cold {
            Ok(_) => {
                warm_to_cold::delete_warm(ctx, unit, w)?;
                Ok((
                    State::BothCopies,
                    "cold copy verified; warm leftovers deleted",
                ))
            }
            Err(e) => Err(TierError::Unresolved {
                path: c.zst.clone(),
                reason: format!(
                    "the warm book.q is gone and the cold copy fails verification: {e}"
                ),
            }),
        };
    }
    let warm_clean = matches!(
        warm_to_cold::verify_single(&w.segment),
        Ok(Verdict::Ok { .. })
    );
    match cold {
        Ok(report) if report.source_sha256 == fsops::sha256_file(&w.segment)? => {
            warm_to_cold::delete_warm(ctx, unit, w)?;
            Ok((
                State::BothCopies,
                "cold copy verified identical; warm deleted",
            ))
        }
        Ok(report) if warm_clean && is_prefix(&w.segment, &report)? => {
            delete_cold_copy(ctx, unit, c)?;
            Ok((
                State::WarmExtended,
                "cold copy deleted; the longer warm copy moves again when due",
            ))
        }
        Err(_) if warm_clean => {
            delete_cold_copy(ctx, unit, c)?;
            Ok((
                State::BothCopies,
                "cold copy fails verification: deleted, the verified warm copy stays",
            ))
        }
        Ok(report) => Err(TierError::Unresolved {
            path: w.segment.clone(),
            reason: format!(
                "differs from the cold copy {} (sha256 {}), which it does not extend",
                c.zst.display(),
                hex(&report.source_sha256)
            ),
        }),
        Err(e) => Err(TierError::Unresolved {
            path: w.segment.clone(),
            reason: format!("neither copy verifies; cold: {e}"),
        }),
    }
}

/// The cold archive of a unit verifies: `.zst` against `.idx`, every frame, SHA-256 of the
/// decoded bytes against the `.idx`, and `meta.json` is there.
fn verify_cold(c: &ColdFiles) -> Result<VerifyReport, TierError> {
    let report = seekable::verify_files(&c.zst, &c.idx)?;
    if !c.meta.is_file() {
        return Err(TierError::Refused {
            path: c.meta.clone(),
            reason: "missing beside a committed book.q.zst".into(),
        });
    }
    Ok(report)
}

/// Whether the cold copy's bytes are the start of `segment` (it grew after the copy).
fn is_prefix(segment: &Path, cold: &VerifyReport) -> Result<bool, TierError> {
    let f = std::fs::File::open(segment).map_err(|e| TierError::io(segment, e))?;
    let len = f.metadata().map_err(|e| TierError::io(segment, e))?.len();
    if len <= cold.uncompressed_len {
        return Ok(false);
    }
    let mut h = Sha256::new();
    let mut r = f.take(cold.uncompressed_len);
    std::io::copy(&mut r, &mut HashWriter(&mut h)).map_err(|e| TierError::io(segment, e))?;
    Ok(<[u8; 32]>::from(h.finalize()) == cold.source_sha256)
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Deletes a unit's cold copy, the `.zst` first (it un-commits the copy), then its emptied
/// directories.
fn delete_cold_copy(ctx: &Ctx, unit: &Unit, c: &ColdFiles) -> Result<(), TierError> {
    let mut files: Vec<&Path> = c.copies().iter().map(|p| p.as_path()).collect();
    files.reverse();
    remove_files_durable(&files)?;
    let stop = ctx.cold.join(unit.symbol_key());
    for dir in [fsops::parent(&c.index), fsops::parent(&c.parquet), &c.dir] {
        remove_empty_dirs(dir, &stop)?;
    }
    Ok(())
}

/// Both objects of a stub are still there with the recorded size and ETag.
fn remote_matches(store: &RemoteStore, stub: &RemoteStub) -> Result<(), ArchiveError> {
    for r in [&stub.data, &stub.index] {
        store.open_recorded(r)?;
    }
    Ok(())
}

/// The object is missing or not the recorded one (as opposed to a store that did not answer).
fn gone(e: &ArchiveError) -> bool {
    matches!(
        e,
        ArchiveError::Mismatch { .. }
            | ArchiveError::Remote {
                source: object_store::Error::NotFound { .. },
                ..
            }
    )
}

fn need_store<'a>(
    store: Option<&'a RemoteStore>,
    path: &Path,
) -> Result<&'a RemoteStore, TierError> {
    store.ok_or_else(|| TierError::Unresolved {
        path: path.to_owned(),
        reason: "resolving it needs the object store, and [tiers.remote] is not configured".into(),
    })
}

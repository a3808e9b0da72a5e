//! The trust layer of the engine state (`docs/state.md`): every snapshot written on a UTC day
//! is listed, with its SHA-256, in `snapshots/manifest/{YYYY-MM-DD}.manifest`; the day's
//! Merkle root over those hashes can be published, and anyone holding a snapshot can prove it
//! belongs to the day.
//!
//! Manifest (text, append-only):
//! ```text
//! chronicle.snapshot-manifest/1
//! {token_id} {file_name} {sha256 of the 336 bytes, hex} {crc32c of the text before it, hex}
//! ```
//! Merkle tree as RFC 6962: leaf = SHA-256(0x00 ‖ sha256), node = SHA-256(0x01 ‖ left ‖
//! right), a tree of n leaves splits at the largest power of two below n. Leaves in manifest
//! order.

use crate::store::SnapshotStore;
use crate::{io, StateError};
use chronicle_storage::fsutil::{create_dir_durable, fsync_dir, sorted_entries};
use chronicle_storage::utc;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const HEADER: &str = "chronicle.snapshot-manifest/1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub token_id: u64,
    pub file_name: String,
    pub sha256: [u8; 32],
}

pub struct Manifest;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

pub fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

impl Manifest {
    pub fn path_for(snapshot_root: &Path, date: time::Date) -> PathBuf {
        snapshot_root
            .join("manifest")
            .join(format!("{}.manifest", utc::iso_date(date)))
    }

    /// Appends entries `(token_id, file_name, snapshot bytes)` durably, with one write and
    /// one fsync, under an exclusive lock of the file (shards share a day's manifest). An
    /// empty file gets the header line first; a torn last line (a crash in the middle of an
    /// append, never listed as complete) is cut back first, so that the new lines do not
    /// weld onto it.
    pub fn append_all(path: &Path, entries: &[(u64, &str, &[u8])]) -> Result<(), StateError> {
        let dir = path.parent().expect("manifest has a parent");
        create_dir_durable(dir)?;
        let mut f = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io(path))?;
        f.lock().map_err(io(path))?;
        let len = f.metadata().map_err(io(path))?.len();
        let whole = whole_lines_len(&f, len).map_err(io(path))?;
        if whole < len {
            f.set_len(whole).map_err(io(path))?;
        }
        let mut text = if whole == 0 {
            format!("{HEADER}\n")
        } else {
            String::new()
        };
        for (token_id, file_name, snapshot) in entries {
            let body = format!("{token_id} {file_name} {}", hex(&sha256(snapshot)));
            text.push_str(&format!("{body} {:08x}\n", crc32c::crc32c(body.as_bytes())));
        }
        f.write_all(text.as_bytes()).map_err(io(path))?;
        f.sync_data().map_err(io(path))?;
        if len == 0 {
            fsync_dir(dir)?;
        }
        Ok(())
    }

    /// The entries of a manifest. A damaged last line is an interrupted append and is
    /// returned as `torn`; a damaged line before the last is an error naming it.
    pub fn read(path: &Path) -> Result<(Vec<Entry>, bool), StateError> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let bad = |line: usize, reason: &str| StateError::Manifest {
            path: path.to_owned(),
            line,
            reason: reason.into(),
        };
        let mut lines = text.split_inclusive('\n').enumerate();
        match lines.next() {
            Some((_, l)) if l.trim_end() == HEADER => {}
            _ => return Err(bad(1, "missing header line")),
        }
        let lines: Vec<(usize, &str)> = lines.collect();
        let mut entries = Vec::with_capacity(lines.len());
        for (k, &(i, raw)) in lines.iter().enumerate() {
            let parsed = raw.strip_suffix('\n').and_then(|l| {
                let (body, crc) = l.rsplit_once(' ')?;
                if u32::from_str_radix(crc, 16).ok()? != crc32c::crc32c(body.as_bytes()) {
                    return None;
                }
                let mut f = body.split(' ');
                let e = Entry {
                    token_id: f.next()?.parse().ok()?,
                    file_name: f.next()?.to_owned(),
                    sha256: unhex32(f.next()?)?,
                };
                f.next().is_none().then_some(e)
            });
            match parsed {
                Some(e) => entries.push(e),
                None if k + 1 == lines.len() => return Ok((entries, true)),
                None => return Err(bad(i + 1, "damaged entry before the last line")),
            }
        }
        Ok((entries, false))
    }
}

/// Bytes of `f` (of length `len`) up to the end of its last whole line: a line is at most
/// a few hundred bytes, so the last newline is in the final 64 KiB or the file is damaged.
fn whole_lines_len(f: &std::fs::File, len: u64) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let start = len.saturating_sub(64 << 10);
    let mut tail = vec![0u8; (len - start) as usize];
    f.read_exact_at(&mut tail, start)?;
    match tail.iter().rposition(|&b| b == b'\n') {
        Some(i) => Ok(start + i as u64 + 1),
        None if start == 0 => Ok(0), // only a torn header: start again
        None => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no line end in the last 64 KiB: not a manifest",
        )),
    }
}

/// RFC 6962 Merkle tree hash over the entries' hashes (SHA-256 of nothing for none).
pub fn merkle_root(hashes: &[[u8; 32]]) -> [u8; 32] {
    match hashes {
        [] => sha256(&[]),
        [one] => {
            let mut h = Sha256::new();
            h.update([0u8]);
            h.update(one);
            h.finalize().into()
        }
        _ => {
            let k = hashes.len().next_power_of_two() / 2;
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(merkle_root(&hashes[..k]));
            h.update(merkle_root(&hashes[k..]));
            h.finalize().into()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    pub manifest: PathBuf,
    pub root_hex: String,
    pub entries: usize,
    /// Snapshot files checked against their entry.
    pub verified: usize,
    /// Entries whose file retention has since deleted (or that a crash never made visible).
    pub pruned: usize,
    /// An interrupted last manifest line was ignored.
    pub torn: bool,
}

/// Verifies a day: every snapshot file of that day matches a manifest entry for its
/// name, and no snapshot of that day is missing from the manifest.
pub fn audit(store: &SnapshotStore, date: time::Date) -> Result<AuditReport, StateError> {
    let path = Manifest::path_for(store.root(), date);
    let (entries, torn) = Manifest::read(&path)?;
    // A name can be listed more than once (a second snapshot in the same millisecond
    // replaces the first): the file must match one of its entries — the last one, unless a
    // crash came between listing the new one and renaming it into place.
    let mut listed: BTreeMap<(u64, &str), Vec<[u8; 32]>> = BTreeMap::new();
    for e in &entries {
        listed
            .entry((e.token_id, e.file_name.as_str()))
            .or_default()
            .push(e.sha256);
    }
    let (mut verified, mut pruned) = (0, 0);
    for ((token, name), hashes) in &listed {
        let file = store.token_dir(*token).join(name);
        match std::fs::read(&file) {
            Ok(b) if hashes.contains(&sha256(&b)) => verified += 1,
            Ok(_) => {
                return Err(StateError::Manifest {
                    path: file,
                    line: 0,
                    reason: "snapshot does not match its manifest hash".into(),
                })
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => pruned += 1,
            Err(err) => return Err(io(&file)(err)),
        }
    }
    // Every snapshot of the day on disk must be listed.
    let prefix = utc::iso_date(date);
    for token_dir in sorted_entries(store.root())? {
        // Token directories are named by number (`manifest/` is not one).
        let Some(token) = token_dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        for snapshot in store.list(token)? {
            let name = snapshot
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            if name.starts_with(&prefix) && !listed.contains_key(&(token, name.as_str())) {
                return Err(StateError::Manifest {
                    path: snapshot,
                    line: 0,
                    reason: format!("snapshot is not listed in {}", path.display()),
                });
            }
        }
    }
    let hashes: Vec<[u8; 32]> = entries.iter().map(|e| e.sha256).collect();
    Ok(AuditReport {
        manifest: path,
        root_hex: hex(&merkle_root(&hashes)),
        entries: entries.len(),
        verified,
        pruned,
        torn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merkle_root_follows_rfc6962_shape() {
        let a = sha256(b"a");
        let b = sha256(b"b");
        let c = sha256(b"c");
        let leaf = |x: &[u8; 32]| merkle_root(std::slice::from_ref(x));
        let node = |l: [u8; 32], r: [u8; 32]| {
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(l);
            h.update(r);
            <[u8; 32]>::from(h.finalize())
        };
        assert_eq!(merkle_root(&[a, b]), node(leaf(&a), leaf(&b)));
        assert_eq!(
            merkle_root(&[a, b, c]),
            node(node(leaf(&a), leaf(&b)), leaf(&c))
        );
        assert_ne!(merkle_root(&[a, b]), merkle_root(&[b, a]));
    }
}

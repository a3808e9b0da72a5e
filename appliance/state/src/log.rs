//! A token's event log: the `book.q` of each of its daily partitions, read back in
//! GlobalTickId order. Around midnight records of two days interleave (a day's writer stays
//! open for stragglers), so the partitions are merged by tick id rather than concatenated.

use crate::error::io;
use crate::position::LogPosition;
use crate::StateError;
use chronicle_protocol::Record;
use chronicle_storage::fsutil::sorted_entries;
use chronicle_storage::partition::PartitionPaths;
use chronicle_storage::segment::{FrameIter, Segment, HEADER_LEN};
use chronicle_storage::utc;
use std::path::PathBuf;
use time::Date;

/// One partition being merged: its date, segment, frame iterator and next record above the
/// resume tick (tick id, end offset, record).
type Head<'a> = (
    Date,
    &'a Segment,
    FrameIter<'a>,
    Option<(u64, u64, Record<'a>)>,
);

pub struct TokenLog {
    /// `v1/{venue}/{symbol_code}` directories: more than one if the code changed (SCD2).
    symbol_dirs: Vec<PathBuf>,
}

impl TokenLog {
    pub fn new(symbol_dirs: Vec<PathBuf>) -> Self {
        Self { symbol_dirs }
    }

    /// The token's partitions with a segment, by date.
    pub fn partitions(&self) -> Result<Vec<(Date, PathBuf)>, StateError> {
        let mut v = Vec::new();
        for dir in &self.symbol_dirs {
            // None for a registered symbol code with nothing written under it yet.
            for day in sorted_entries(dir)? {
                let name = day.file_name().and_then(|n| n.to_str());
                let Some(date) = name.and_then(utc::parse_iso_date) else {
                    continue;
                };
                let seg = PartitionPaths::new(&day).segment;
                if seg.try_exists().map_err(io(&seg))? {
                    v.push((date, seg));
                }
            }
        }
        v.sort();
        Ok(v)
    }

    pub fn segment_for(&self, date: Date) -> Result<Option<PathBuf>, StateError> {
        Ok(self
            .partitions()?
            .into_iter()
            .find(|(d, _)| *d == date)
            .map(|(_, p)| p))
    }

    /// Calls `f` for every record with a tick id above `after_tick`, in tick order, with its
    /// position (just past it). With `after`, partitions before the day preceding it are not
    /// read, and `after`'s own partition is read from `after.offset` on.
    pub fn replay(
        &self,
        after: Option<LogPosition>,
        after_tick: u64,
        mut f: impl FnMut(LogPosition, &Record<'_>) -> Result<(), StateError>,
    ) -> Result<u64, StateError> {
        let first_date = after.map(|p| p.date.previous_day().unwrap_or(p.date));
        let segments: Vec<(Date, Segment)> = self
            .partitions()?
            .into_iter()
            .filter(|(d, _)| first_date.is_none_or(|fd| *d >= fd))
            .map(|(d, p)| Ok((d, Segment::open(&p)?)))
            .collect::<Result<_, StateError>>()?;
        let mut heads: Vec<Head<'_>> = segments
            .iter()
            .map(|(d, s)| {
                let start = match after {
                    Some(p) if p.date == *d => p.offset as usize,
                    _ => HEADER_LEN,
                };
                (*d, s, FrameIter::new(s.bytes(), start), None)
            })
            .collect();
        let mut applied = 0u64;
        let mut last_tick = after_tick;
        loop {
            // Refill each head with its next record above `after_tick`.
            for (_, seg, it, head) in heads.iter_mut() {
                while head.is_none() {
                    let Some(fr) = it.next() else {
                        if let Err((offset, reason)) = it.end() {
                            return Err(seg.corrupt(offset, reason).into());
                        }
                        break;
                    };
                    let rec = fr.record.decode().map_err(|e| StateError::Log {
                        path: seg.path().to_owned(),
                        offset: fr.offset,
                        reason: e.to_string(),
                    })?;
                    if rec.meta.global_tick_id > after_tick {
                        let end = fr.offset + 8 + fr.record.bytes.len() as u64;
                        *head = Some((rec.meta.global_tick_id, end, rec));
                    }
                }
            }
            let Some(i) = (0..heads.len())
                .filter(|&i| heads[i].3.is_some())
                .min_by_key(|&i| heads[i].3.as_ref().map(|h| h.0))
            else {
                return Ok(applied);
            };
            let (date, seg, _, head) = &mut heads[i];
            let (tick, end, rec) = head.take().expect("chosen head is full");
            if tick <= last_tick {
                return Err(StateError::Log {
                    path: seg.path().to_owned(),
                    offset: end,
                    reason: format!("tick id {tick} does not follow {last_tick}: the token's log is out of order"),
                });
            }
            last_tick = tick;
            f(
                LogPosition {
                    date: *date,
                    offset: end,
                },
                &rec,
            )?;
            applied += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_symbol_dir_is_empty_but_an_unreadable_one_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("v1/venue/missing");
        assert!(TokenLog::new(vec![missing])
            .partitions()
            .unwrap()
            .is_empty());

        let not_a_dir = tmp.path().join("code");
        std::fs::write(&not_a_dir, b"x").unwrap();
        let err = TokenLog::new(vec![not_a_dir.clone()])
            .partitions()
            .unwrap_err();
        assert!(
            matches!(&err, StateError::Storage(chronicle_storage::StorageError::Io { path, .. })
                if *path == not_a_dir),
            "{err}"
        );
    }
}

//! The partition layout (`docs/formats/partition.md`) and its writer:
//! `{data_dir}/v1/{venue}/{symbol_code}/{YYYY-MM-DD}/{book.q, meta.json, index/time.idx}`,
//! the date being the **exchange-time** UTC date of every record inside.

use crate::fsutil::create_dir_durable;
use crate::index::{IndexBuilder, IndexEntry, IndexFile, DEFAULT_BLOCK_BYTES};
use crate::meta::{PartitionMeta, TimeRange};
use crate::segment::{frame_len, SegmentHeader, SegmentWriter};
use crate::utc;
use crate::StorageError;
use chronicle_protocol::{type_id, Body, RecordView};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub const SEGMENT_FILE: &str = "book.q";
pub const INDEX_DIR: &str = "index";
pub const INDEX_FILE: &str = "time.idx";

pub fn partition_dir(data_dir: &Path, venue: &str, symbol_code: &str, date: time::Date) -> PathBuf {
    data_dir
        .join("v1")
        .join(venue)
        .join(symbol_code)
        .join(utc::iso_date(date))
}

/// The files of one partition directory.
#[derive(Debug, Clone)]
pub struct PartitionPaths {
    pub dir: PathBuf,
    pub segment: PathBuf,
    pub index: PathBuf,
    pub meta: PathBuf,
}

impl PartitionPaths {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            segment: dir.join(SEGMENT_FILE),
            index: dir.join(INDEX_DIR).join(INDEX_FILE),
            meta: dir.join(crate::meta::FILE_NAME),
        }
    }
}

/// Running statistics that end up in `meta.json`.
struct Stats {
    meta: PartitionMeta,
    gap_flags: BTreeSet<&'static str>,
}

impl Stats {
    /// Identity and policy from `meta`; its counters start at zero (they are recounted from
    /// the segment).
    fn fresh(mut meta: PartitionMeta) -> Self {
        meta.records = 0;
        meta.counts.clear();
        meta.event_time_range = None;
        meta.completeness.gaps = 0;
        Self {
            meta,
            gap_flags: BTreeSet::new(),
        }
    }

    fn note(&mut self, view: &RecordView<'_>) {
        let m = &mut self.meta;
        m.records += 1;
        let kind = type_id::name(view.type_id).unwrap_or("unknown");
        // get_mut first: the hot path must not allocate a key for every record.
        match m.counts.get_mut(kind) {
            Some(c) => *c += 1,
            None => {
                m.counts.insert(kind.to_owned(), 1);
            }
        }
        let ts = view.meta.exchange_ts_ns;
        let (first, last) = match &m.event_time_range {
            Some(r) => (r.first_ns.min(ts), r.last_ns.max(ts)),
            None => (ts, ts),
        };
        m.event_time_range = Some(TimeRange {
            first_ns: first,
            last_ns: last,
            first: String::new(),
            last: String::new(),
        });
        if view.type_id == type_id::GAP_V1 {
            m.completeness.gaps += 1;
            // Counted above either way; a gap that does not decode only lacks its flag name.
            if let Ok(rec) = view.decode() {
                if let Body::Gap(g) = rec.body {
                    self.gap_flags.insert(g.reason.name());
                }
            }
        }
    }

    fn finish(&mut self, segment_bytes: u64) -> PartitionMeta {
        let m = &mut self.meta;
        m.segment_bytes = segment_bytes;
        if let Some(r) = &mut m.event_time_range {
            r.first = utc::rfc3339(r.first_ns);
            r.last = utc::rfc3339(r.last_ns);
        }
        m.completeness.gap_flags = self.gap_flags.iter().map(|s| s.to_string()).collect();
        m.completeness.complete = m.completeness.gaps == 0 && m.completeness.late_records == 0;
        m.ingest_time = utc::rfc3339(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        );
        m.clone()
    }
}

/// Frames handed to another writer: their segment offset and bytes.
pub struct Sealed {
    pub start: u64,
    pub bytes: Vec<u8>,
}

/// What closing a partition leaves to do. A writer with its own files did it all; a sealed
/// one leaves its last index entries and `meta.json` to the files' owner, who writes them
/// once the segment's last frames are durable.
pub struct Closing {
    pub meta: PartitionMeta,
    /// Encoded index entries still to append (empty for a writer with its own files).
    pub index_tail: Vec<u8>,
}

/// Appends records to one partition: segment, then index, then meta. Either it writes its own
/// files (through the page cache: import and tools), or it is *sealed*: it only buffers, and
/// the one owner of its files (the appliance's flush writer) takes the bytes with `seal`.
pub struct PartitionWriter {
    paths: PartitionPaths,
    segment: SegmentWriter,
    index: IndexFile,
    builder: IndexBuilder,
    stats: Stats,
}

impl PartitionWriter {
    /// Opens the partition in `dir`, creating it if needed. An existing segment must carry
    /// the same identity; its torn tail (if any) is cut back and its index rebuilt. `meta`
    /// gives identity and policy; its counters are recomputed from the segment.
    pub fn open(
        dir: &Path,
        header: SegmentHeader,
        meta: PartitionMeta,
    ) -> Result<Self, StorageError> {
        let paths = PartitionPaths::new(dir);
        create_dir_durable(&paths.dir.join(INDEX_DIR))?;
        let mut stats = Stats::fresh(meta);
        let mut builder = IndexBuilder::new(DEFAULT_BLOCK_BYTES);
        if !paths.segment.exists() {
            return Ok(Self {
                segment: SegmentWriter::create(&paths.segment, header)?,
                index: IndexFile::create(&paths.index, DEFAULT_BLOCK_BYTES)
                    .or_else(|_| IndexFile::rewrite(&paths.index, DEFAULT_BLOCK_BYTES, &[]))?,
                paths,
                builder,
                stats,
            });
        }
        let (segment, _repair) = SegmentWriter::open_append(&paths.segment)?;
        let same = |a: &SegmentHeader, b: &SegmentHeader| {
            (
                a.symbol_id,
                a.token_id,
                a.date,
                a.price_exponent,
                a.quantity_exponent,
            ) == (
                b.symbol_id,
                b.token_id,
                b.date,
                b.price_exponent,
                b.quantity_exponent,
            )
        };
        if !same(&segment.header, &header) {
            return Err(StorageError::Invalid {
                path: paths.segment.clone(),
                reason: format!(
                    "existing segment is {:?}, appending {:?}",
                    segment.header, header
                ),
            });
        }
        // Recount the existing records and rebuild the index over them: both are derived.
        let mut entries: Vec<IndexEntry> = Vec::new();
        {
            let seg = crate::segment::Segment::open(&paths.segment)?;
            for f in seg.frames() {
                stats.note(&f.record);
                let flen = frame_len(f.record.bytes.len()) as u32;
                entries.extend(builder.note(f.offset, flen, f.record.meta.exchange_ts_ns));
            }
        }
        entries.extend(builder.finish());
        let index = IndexFile::rewrite(&paths.index, DEFAULT_BLOCK_BYTES, &entries)?;
        Ok(Self {
            paths,
            segment,
            index,
            builder,
            stats,
        })
    }

    /// A sealed writer for a partition that does not exist on disk yet. Touches no file: the
    /// segment header and the index header are the first bytes `seal` hands over, and the
    /// owner creates the files with them (refusing to overwrite one that exists).
    pub fn create_sealed(dir: &Path, header: SegmentHeader, meta: PartitionMeta) -> Self {
        let paths = PartitionPaths::new(dir);
        Self {
            segment: SegmentWriter::sealed_new(&paths.segment, header),
            index: IndexFile::sealed_new(&paths.index, DEFAULT_BLOCK_BYTES),
            paths,
            builder: IndexBuilder::new(DEFAULT_BLOCK_BYTES),
            stats: Stats::fresh(meta),
        }
    }

    /// Gives up this writer's descriptors (after `open` repaired and recounted the files):
    /// from now on its bytes go out through `seal`.
    pub fn into_sealed(self) -> Self {
        Self {
            segment: self.segment.into_sealed(),
            index: self.index.into_sealed(),
            ..self
        }
    }

    pub fn is_sealed(&self) -> bool {
        self.segment.is_sealed()
    }

    pub fn paths(&self) -> &PartitionPaths {
        &self.paths
    }

    pub fn header(&self) -> &SegmentHeader {
        &self.segment.header
    }

    /// Appends one encoded record (validated by the caller's encoder); returns its frame offset.
    pub fn append(&mut self, record: &[u8]) -> Result<u64, StorageError> {
        let view = RecordView::parse(record).map_err(|e| StorageError::Invalid {
            path: self.paths.segment.clone(),
            reason: format!("refusing to append an invalid record: {e}"),
        })?;
        // One token per partition: a record of another would be read as this one's.
        assert_eq!(
            view.meta.token_id,
            self.header().token_id,
            "{}: a record of another token",
            self.paths.segment.display()
        );
        let offset = self.segment.append(record)?;
        assert_eq!(
            self.segment.end_offset(),
            offset + frame_len(record.len()) as u64,
            "frames are contiguous"
        );
        self.stats.note(&view);
        if let Some(e) = self.builder.note(
            offset,
            frame_len(record.len()) as u32,
            view.meta.exchange_ts_ns,
        ) {
            self.index.push(&e);
        }
        Ok(offset)
    }

    /// Counts a record turned away by the late policy (it makes the partition incomplete).
    pub fn note_late(&mut self) {
        self.stats.meta.completeness.late_records += 1;
    }

    pub fn end_offset(&self) -> u64 {
        self.segment.end_offset()
    }

    /// Frames appended but not yet written, and the segment offset where they start.
    pub fn pending(&self) -> (u64, &[u8]) {
        self.segment.pending()
    }

    /// Hands the frames not yet written to the appliance's O_DIRECT flush (appends go on into
    /// `spare`), with the index entries pushed so far, encoded into `index` (they cover only
    /// frames appended before now, so only sealed ones): the flush writer appends them to the
    /// index file ([`Self::index_path`]) once those frames are durable.
    pub fn seal(&mut self, spare: Vec<u8>, index: &mut Vec<u8>) -> Sealed {
        let start = self.segment.pending().0;
        self.index.take_encoded(index);
        Sealed {
            start,
            bytes: self.segment.seal(spare),
        }
    }

    pub fn index_path(&self) -> &Path {
        self.index.path()
    }

    /// Makes every appended record durable through the page cache; index entries only ever
    /// cover durable frames.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.segment.sync()?;
        self.index.sync()
    }

    /// Closes the last index block and makes the final `meta.json`. A writer with its own
    /// files syncs them and writes it; a sealed one (everything sealed first) hands the rest
    /// to its owner, and takes later appends as a reopened partition would.
    pub fn close(&mut self) -> Result<Closing, StorageError> {
        if let Some(e) = self.builder.finish() {
            self.index.push(&e);
        }
        let meta = self.stats.finish(self.segment.end_offset());
        let mut index_tail = Vec::new();
        if self.is_sealed() {
            assert!(
                self.segment.pending().1.is_empty(),
                "a sealed partition is sealed before it closes"
            );
            self.index.take_encoded(&mut index_tail);
        } else {
            self.sync()?;
            meta.write(&self.paths.meta)?;
        }
        Ok(Closing { meta, index_tail })
    }
}

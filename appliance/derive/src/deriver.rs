//! The writer: records in, `book.parquet` out, in bounded memory, never half-visible.

use crate::columns::{schema, Builders};
use crate::decimal::{DecimalScale, Scales};
use crate::row::{row, Scratch};
use crate::DeriveError;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use chronicle_protocol::{DecodeError, RecordView};
use chronicle_reader::render::Scale;
use chronicle_storage::fsutil::{create_dir_durable, fsync_dir};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Schema version, in the footer's key-value metadata (`chronicle.schema`). A change of
/// column meaning or type gets a new version.
pub const SCHEMA_VERSION: &str = "chronicle.book.v1";

/// Rows gathered before they are handed to the Parquet encoder.
const BATCH_ROWS: usize = 8192;
/// Snapshot levels gathered before the same (a deep book's chunks are large rows).
const BATCH_LEVELS: usize = 1 << 16;

/// How row groups are cut and compressed.
#[derive(Debug, Clone, Copy)]
pub struct DeriveOptions {
    /// Most rows in a row group.
    pub row_group_rows: usize,
    /// Most encoded bytes of a row group held in memory before it is written out.
    pub row_group_bytes: usize,
    pub zstd_level: i32,
}

impl Default for DeriveOptions {
    fn default() -> Self {
        Self {
            row_group_rows: 1 << 20,
            row_group_bytes: 64 << 20,
            zstd_level: 3,
        }
    }
}

/// What [`Deriver::finish`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeriveStats {
    pub rows: u64,
    pub row_groups: usize,
    /// Size of the Parquet file.
    pub bytes: u64,
    /// CRC32C of the whole file, for whoever records the move (parquet-rs writes no page
    /// checksums, so this is the file's only one).
    pub crc32c: u32,
}

/// The output file, checksummed as it is written.
struct Checksummed {
    file: File,
    crc: u32,
    len: u64,
}

impl Write for Checksummed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Writes `book.parquet` from records pushed one at a time, in the order given. It writes
/// `.{name}.tmp` beside `out` and renames it over `out` only in [`Deriver::finish`], after an
/// fsync: a crash or an error never leaves a partial file under the final name (the temp file
/// is removed on error or drop, and overwritten by the next attempt after a crash).
pub struct Deriver {
    out: PathBuf,
    tmp: PathBuf,
    writer: ArrowWriter<Checksummed>,
    schema: SchemaRef,
    builders: Builders,
    scratch: Scratch,
    scales: Scales,
    batch_rows: usize,
    batch_levels: usize,
    rows: u64,
    /// A batch was lost to a write error: the file can no longer be completed.
    write_failed: bool,
    finished: bool,
}

impl Deriver {
    /// A deriver for the records of a segment whose exponents are `scale`.
    pub fn create(out: &Path, scale: Scale) -> Result<Self, DeriveError> {
        Self::create_with(out, scale, DeriveOptions::default())
    }

    pub fn create_with(out: &Path, scale: Scale, opts: DeriveOptions) -> Result<Self, DeriveError> {
        assert!(opts.row_group_rows > 0 && opts.row_group_bytes > 0);
        let name = out.file_name().ok_or_else(|| DeriveError::Io {
            path: out.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
        })?;
        let dir = out.parent().unwrap_or(Path::new("."));
        create_dir_durable(dir)?;
        let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(DeriveError::io(&tmp))?;
        let scales = Scales {
            price: DecimalScale::for_exponent(scale.price_exponent),
            quantity: DecimalScale::for_exponent(scale.quantity_exponent),
            price_exponent: scale.price_exponent,
            quantity_exponent: scale.quantity_exponent,
        };
        let schema = Arc::new(schema(&scales));
        let level = ZstdLevel::try_new(opts.zstd_level).map_err(DeriveError::parquet(&tmp))?;
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(opts.row_group_rows))
            .set_max_row_group_bytes(Some(opts.row_group_bytes))
            .set_key_value_metadata(Some(vec![
                KeyValue::new("chronicle.schema".into(), SCHEMA_VERSION.to_owned()),
                KeyValue::new(
                    "chronicle.price_exponent".into(),
                    scale.price_exponent.to_string(),
                ),
                KeyValue::new(
                    "chronicle.quantity_exponent".into(),
                    scale.quantity_exponent.to_string(),
                ),
            ]));
        // Ticks and times only ever grow a little from row to row: deltas, not a dictionary.
        for col in ["global_tick_id", "exchange_ts", "receive_ts"] {
            let col = ColumnPath::from(col);
            props = props
                .set_column_dictionary_enabled(col.clone(), false)
                .set_column_encoding(col, Encoding::DELTA_BINARY_PACKED);
        }
        let file = Checksummed {
            file,
            crc: 0,
            len: 0,
        };
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props.build()))
            .map_err(DeriveError::parquet(&tmp))?;
        Ok(Self {
            out: out.to_owned(),
            tmp,
            writer,
            builders: Builders::new(&schema, BATCH_ROWS),
            schema,
            scratch: Scratch::default(),
            scales,
            batch_rows: 0,
            batch_levels: 0,
            rows: 0,
            write_failed: false,
            finished: false,
        })
    }

    /// Adds one record as one row. A type id newer than this build becomes a header-only row
    /// of type `unknown`; a known type that does not decode, or a value its column cannot
    /// hold exactly, is a [`DeriveError::Record`] that adds nothing (the deriver stays
    /// usable). After any other error the deriver must be dropped.
    pub fn push(&mut self, view: &RecordView<'_>) -> Result<(), DeriveError> {
        assert!(
            !self.write_failed,
            "a Deriver is dropped after a write error"
        );
        let bad = |reason: String| DeriveError::Record {
            path: self.out.clone(),
            global_tick_id: view.meta.global_tick_id,
            reason,
        };
        let rec = match view.decode() {
            Ok(rec) => Some(rec),
            Err(DecodeError::UnknownType { .. }) => None,
            Err(e) => return Err(bad(e.to_string())),
        };
        let r = row(view, rec.as_ref(), &self.scales, &mut self.scratch).map_err(bad)?;
        let levels = r.bids.map_or(0, <[_]>::len) + r.asks.map_or(0, <[_]>::len);
        self.builders.append(&r);
        self.rows += 1;
        self.batch_rows += 1;
        self.batch_levels += levels;
        if self.batch_rows >= BATCH_ROWS || self.batch_levels >= BATCH_LEVELS {
            self.write_batch()?;
        }
        Ok(())
    }

    /// Hands the gathered rows to the encoder, which cuts row groups at the option limits.
    fn write_batch(&mut self) -> Result<(), DeriveError> {
        // Until the encoder has the batch, its rows exist nowhere else.
        self.write_failed = true;
        let batch = RecordBatch::try_new(self.schema.clone(), self.builders.finish()).map_err(
            |source| DeriveError::Arrow {
                path: self.tmp.clone(),
                source,
            },
        )?;
        self.batch_rows = 0;
        self.batch_levels = 0;
        self.writer
            .write(&batch)
            .map_err(DeriveError::parquet(&self.tmp))?;
        self.write_failed = false;
        Ok(())
    }

    /// Writes the footer, fsyncs, and renames the file to its final name (then fsyncs the
    /// directory, so the name survives a crash).
    pub fn finish(mut self) -> Result<DeriveStats, DeriveError> {
        assert!(
            !self.write_failed,
            "a Deriver is dropped after a write error"
        );
        if self.batch_rows > 0 {
            self.write_batch()?;
        }
        let meta = self
            .writer
            .finish()
            .map_err(DeriveError::parquet(&self.tmp))?;
        assert_eq!(
            meta.file_metadata().num_rows() as u64,
            self.rows,
            "every pushed record is one row"
        );
        let file = self.writer.inner();
        file.file.sync_all().map_err(DeriveError::io(&self.tmp))?;
        let (bytes, crc32c) = (file.len, file.crc);
        std::fs::rename(&self.tmp, &self.out).map_err(DeriveError::io(&self.out))?;
        self.finished = true;
        fsync_dir(self.out.parent().unwrap_or(Path::new(".")))?;
        Ok(DeriveStats {
            rows: self.rows,
            row_groups: meta.num_row_groups(),
            bytes,
            crc32c,
        })
    }
}

impl Drop for Deriver {
    fn drop(&mut self) {
        if !self.finished {
            // Best effort: a leftover is overwritten by the next attempt all the same.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

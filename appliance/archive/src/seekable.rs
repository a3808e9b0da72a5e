//! `book.q` → `book.q.zst` in the standard zstd seekable format, and ranged reads back.
//!
//! The `.zst` is independent zstd frames of `block_size` uncompressed bytes (the last one
//! shorter), each with zstd's XXH64 content checksum, followed by the seek table in a
//! skippable frame (magic `0x184D2A5E`, footer magic `0x8F92EAB1`): plain `zstd -d` gives back
//! the `.q`, any seekable reader can seek it. The sidecar `.idx` ([`crate::zidx`]) repeats the
//! frame table so a reader can skip the tail read. Layout: `docs/formats/seekable-zstd.md`.
//!
//! - [`transcode`]: stream a `.q` into `.zst` + `.idx`, fsynced, with the SHA-256 of both.
//! - [`SeekableReader`]: a `.zst` over any [`ReadAt`]; [`SeekableReader::read_range`] decodes
//!   only the frames holding the range and keeps the last one for the next read.
//! - [`verify`]: the `.idx` agrees with the seek table, every frame decodes to its size, the
//!   decoded bytes hash to the SHA-256 the `.idx` recorded.
//! - [`is_zstd`]: tells a `.q.zst` from a `.q` by its first bytes.

use crate::source::LocalFile;
use crate::zidx::{FrameTable, ZstIndex, MAX_BLOCK_SIZE, MAX_FRAMES, MIN_BLOCK_SIZE};
use crate::{ArchiveError, ReadAt};
use chronicle_protocol::wire::{tiles, u32_at};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use zstd::zstd_safe;

/// The first four bytes of every zstd frame (`0xFD2FB528`, little-endian).
pub const ZSTD_MAGIC: [u8; 4] = 0xFD2F_B528u32.to_le_bytes();
/// The magic of the skippable frame that holds the seek table.
pub const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;
/// The magic that ends a seekable `.zst` (the seek table footer's last field).
pub const SEEKABLE_MAGIC: u32 = zeekstd::SEEKABLE_MAGIC_NUMBER;
/// Skippable frame header (magic, frame size) and seek table footer (frame count,
/// descriptor, magic).
const SKIPPABLE_HEADER_LEN: u64 = 8;
const FOOTER_LEN: u64 = 9;
const FOOTER_FRAME_COUNT_AT: usize = 0;
const FOOTER_DESCRIPTOR_AT: usize = 4;
const FOOTER_MAGIC_AT: usize = 5;

const _: () = assert!(tiles(
    &[
        (FOOTER_FRAME_COUNT_AT, 4),
        (FOOTER_DESCRIPTOR_AT, 1),
        (FOOTER_MAGIC_AT, 4),
    ],
    FOOTER_LEN as usize
));
/// Default frame size (`docs/formats/seekable-zstd.md`).
pub const DEFAULT_BLOCK_SIZE: u32 = 1 << 20;
pub const DEFAULT_LEVEL: i32 = 3;
/// The largest range one [`SeekableReader::read_range`] call returns; read more in pieces.
pub const MAX_READ_LEN: u64 = 1 << 30;
/// Bytes of `.q` read per step of [`transcode`] (its memory is this, one zstd context and a
/// 1 MiB output buffer, whatever the `.q`'s size).
const READ_CHUNK: usize = 1 << 20;

/// Length of the seek table [`transcode`] writes for `frame_count` frames (8-byte entries,
/// no per-frame checksum column: the frames carry zstd's own content checksum).
pub const fn seek_table_len(frame_count: u32) -> u64 {
    SKIPPABLE_HEADER_LEN + 8 * frame_count as u64 + FOOTER_LEN
}

/// Whether `first_bytes` (at least 4 bytes of a file) start a zstd frame, i.e. the file is a
/// `.q.zst` rather than a `.q`.
pub fn is_zstd(first_bytes: &[u8]) -> bool {
    first_bytes.starts_with(&ZSTD_MAGIC)
}

#[derive(Clone, Debug)]
pub struct TranscodeOptions {
    /// Uncompressed bytes per frame, [`MIN_BLOCK_SIZE`]..=[`MAX_BLOCK_SIZE`].
    pub block_size: u32,
    /// zstd compression level (zstd's range, negative levels included).
    pub level: i32,
}

impl Default for TranscodeOptions {
    fn default() -> Self {
        Self {
            block_size: DEFAULT_BLOCK_SIZE,
            level: DEFAULT_LEVEL,
        }
    }
}

/// What [`transcode`] wrote; the tier manager and the uploader verify copies against it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranscodeStats {
    /// Length of the `.q` (the uncompressed bytes).
    pub bytes_in: u64,
    /// Length of the `.zst` (frames and seek table).
    pub bytes_out: u64,
    /// Length of the `.idx`.
    pub idx_len: u64,
    pub frames: u32,
    /// SHA-256 of the `.q` bytes (also recorded in the `.idx`).
    pub source_sha256: [u8; 32],
    /// SHA-256 of the `.zst` file.
    pub zst_sha256: [u8; 32],
}

/// A writer that hashes and counts what goes through it.
struct HashingWriter<W> {
    inner: W,
    sha: Sha256,
    len: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl TranscodeOptions {
    /// Block size and level inside their ranges; the error names `object`, the `.q`.
    fn check(&self, object: &Path) -> Result<(), ArchiveError> {
        let levels = zstd_safe::min_c_level()..=zstd_safe::max_c_level();
        let reason = if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&self.block_size) {
            format!(
                "block size {} is outside {MIN_BLOCK_SIZE}..={MAX_BLOCK_SIZE}",
                self.block_size
            )
        } else if !levels.contains(&self.level) {
            format!("zstd level {} is outside {levels:?}", self.level)
        } else {
            return Ok(());
        };
        Err(ArchiveError::Request {
            object: object.display().to_string(),
            reason,
        })
    }
}

fn io_at(path: &Path) -> impl Fn(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Streams `src_q` into `dst_zst` (frames of `opts.block_size` bytes, then the seek table) and
/// its `.idx` into `dst_idx`, creating or truncating both and fsyncing both files. The caller
/// writes to temporary names, then renames and fsyncs the directory. Fails on an empty or
/// oversized `.q`, bad options, or a `.q` that changes length while it is read.
pub fn transcode(
    src_q: &Path,
    dst_zst: &Path,
    dst_idx: &Path,
    opts: &TranscodeOptions,
) -> Result<TranscodeStats, ArchiveError> {
    opts.check(src_q)?;
    let request = |reason: String| ArchiveError::Request {
        object: src_q.display().to_string(),
        reason,
    };
    let mut src = File::open(src_q).map_err(io_at(src_q))?;
    let src_len = src.metadata().map_err(io_at(src_q))?.len();
    if src_len == 0 {
        return Err(request("empty file: nothing to archive".into()));
    }
    let bs = opts.block_size;
    if src_len.div_ceil(u64::from(bs)) > u64::from(MAX_FRAMES) {
        return Err(request(format!(
            "{src_len} bytes need more than {MAX_FRAMES} frames of {bs}"
        )));
    }
    let file = File::create(dst_zst).map_err(io_at(dst_zst))?;
    let mut out = HashingWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        sha: Sha256::new(),
        len: 0,
    };
    let (seek_table, bytes_in, source_sha256) =
        compress_frames(&mut src, src_q, &mut out, dst_zst, opts)?;
    if bytes_in != src_len {
        return Err(request(format!(
            "read {bytes_in} bytes, the file had {src_len} at open: it changed while archived"
        )));
    }
    let table = frame_table(&seek_table, bs);
    let zst_err = io_at(dst_zst);
    std::io::copy(&mut seek_table.into_serializer(), &mut out).map_err(&zst_err)?;
    out.flush().map_err(&zst_err)?;
    let (zst_len, zst_sha256) = (out.len, out.sha.finalize().into());
    let file = out
        .inner
        .into_inner()
        .map_err(|e| zst_err(e.into_error()))?;
    file.sync_all().map_err(&zst_err)?;

    assert_eq!(table.uncompressed_len(), bytes_in);
    assert_eq!(
        zst_len,
        table.compressed_len() + seek_table_len(table.frame_count())
    );
    let object = dst_zst.display().to_string();
    table
        .check(&object, table.compressed_len(), |_| 0)
        .expect("transcode writes a valid table");
    let idx = ZstIndex {
        table,
        zst_len,
        source_sha256,
    };
    idx.write_file(dst_idx)?;
    Ok(TranscodeStats {
        bytes_in,
        bytes_out: zst_len,
        idx_len: idx.encoded_len() as u64,
        frames: idx.table.frame_count(),
        source_sha256,
        zst_sha256,
    })
}

/// Compresses all of `src` into `out` as frames of `opts.block_size` bytes (the last frame
/// ended); returns the seek table, the bytes read and their SHA-256.
fn compress_frames(
    src: &mut impl Read,
    src_path: &Path,
    out: &mut impl Write,
    out_path: &Path,
    opts: &TranscodeOptions,
) -> Result<(zeekstd::SeekTable, u64, [u8; 32]), ArchiveError> {
    let out_err = io_at(out_path);
    let zeekstd_err = |e: zeekstd::Error| out_err(std::io::Error::other(e));
    let mut encoder = zeekstd::EncodeOptions::new()
        .checksum_flag(true)
        .compression_level(opts.level)
        .frame_size_policy(zeekstd::FrameSizePolicy::Uncompressed(opts.block_size))
        .into_raw_encoder()
        .map_err(zeekstd_err)?;
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut compressed = vec![0u8; zstd_safe::CCtx::out_size()];
    let mut sha = Sha256::new();
    let mut bytes_in = 0u64;
    loop {
        let n = src.read(&mut chunk).map_err(io_at(src_path))?;
        if n == 0 {
            break;
        }
        sha.update(&chunk[..n]);
        bytes_in += n as u64;
        let mut pos = 0;
        while pos < n {
            // Ends a full frame before taking more input: frames are exactly block_size.
            let p = encoder
                .compress(&chunk[pos..n], &mut compressed)
                .map_err(zeekstd_err)?;
            assert!(
                p.in_progress() + p.out_progress() > 0,
                "the encoder makes progress"
            );
            out.write_all(&compressed[..p.out_progress()])
                .map_err(&out_err)?;
            pos += p.in_progress();
        }
    }
    loop {
        let p = encoder.end_frame(&mut compressed).map_err(zeekstd_err)?;
        out.write_all(&compressed[..p.out_progress()])
            .map_err(&out_err)?;
        if p.data_left() == 0 {
            break;
        }
    }
    Ok((encoder.into_seek_table(), bytes_in, sha.finalize().into()))
}

/// zeekstd's seek table as our frame table; `block_size` is the size of all frames but the last.
fn frame_table(seek: &zeekstd::SeekTable, block_size: u32) -> FrameTable {
    // Sizes in a seek table are u32 by format, so the casts are exact.
    FrameTable::from_sizes(
        block_size,
        (0..seek.num_frames()).map(|i| {
            (
                seek.frame_size_comp(i).expect("i < num_frames") as u32,
                seek.frame_size_decomp(i).expect("i < num_frames") as u32,
            )
        }),
    )
}

/// Reads and checks the seek table at the end of a seekable `.zst` (two reads: the 9-byte
/// footer, then the whole table, so a remote object costs two ranged GETs). Accepts tables with
/// or without the per-frame checksum column; frames must follow [`FrameTable::check`].
pub fn read_seek_table(src: &dyn ReadAt) -> Result<FrameTable, ArchiveError> {
    let object = src.describe();
    let size = src.size();
    let corrupt = |offset: u64, field: &str, reason: String| ArchiveError::Corrupt {
        object: object.clone(),
        offset,
        field: field.to_owned(),
        reason,
    };
    if size < SKIPPABLE_HEADER_LEN + FOOTER_LEN {
        return Err(corrupt(
            0,
            "seek table",
            format!(
                "the object has {size} bytes, fewer than an empty seek table ({})",
                SKIPPABLE_HEADER_LEN + FOOTER_LEN
            ),
        ));
    }
    let footer_at = size - FOOTER_LEN;
    let mut footer = [0u8; FOOTER_LEN as usize];
    src.read_exact_at(footer_at, &mut footer)?;
    let magic = u32_at(&footer, FOOTER_MAGIC_AT);
    if magic != SEEKABLE_MAGIC {
        return Err(corrupt(
            footer_at + FOOTER_MAGIC_AT as u64,
            "seek table footer magic",
            format!(
                "{magic:#010x}, expected {SEEKABLE_MAGIC:#010x}: not a seekable zstd, or truncated"
            ),
        ));
    }
    let frame_count = u32_at(&footer, FOOTER_FRAME_COUNT_AT);
    if frame_count > MAX_FRAMES {
        return Err(corrupt(
            footer_at,
            "seek table frame count",
            format!("{frame_count} exceeds the limit {MAX_FRAMES}"),
        ));
    }
    let entry_len: u64 = if footer[FOOTER_DESCRIPTOR_AT] & 0x80 != 0 {
        12
    } else {
        8
    };
    let table_len = SKIPPABLE_HEADER_LEN + entry_len * u64::from(frame_count) + FOOTER_LEN;
    let table_at = size.checked_sub(table_len).ok_or_else(|| {
        corrupt(
            footer_at,
            "seek table frame count",
            format!(
                "{frame_count} frames need a {table_len}-byte table, the object has {size} bytes"
            ),
        )
    })?;
    let mut bytes = vec![0u8; table_len as usize];
    src.read_exact_at(table_at, &mut bytes)?;
    let seek = zeekstd::SeekTable::from_seekable(&mut zeekstd::BytesWrapper::new(&bytes))
        .map_err(|e| corrupt(table_at, "seek table", e.to_string()))?;
    assert_eq!(seek.num_frames(), frame_count);
    let block_size = seek
        .frame_size_decomp(0)
        .map_or(MIN_BLOCK_SIZE, |s| s as u32);
    let table = frame_table(&seek, block_size);
    table.check(&object, table_at, |i| {
        table_at + SKIPPABLE_HEADER_LEN + i as u64 * entry_len
    })?;
    Ok(table)
}

/// Ranged reads of a seekable `.zst` held by any [`ReadAt`] (local file, remote object).
/// Decodes only the frames that overlap a requested range and keeps the last decoded frame,
/// so sequential reads decode every frame once.
pub struct SeekableReader<R: ReadAt> {
    src: R,
    object: String,
    table: FrameTable,
    dctx: zstd_safe::DCtx<'static>,
    compressed: Vec<u8>,
    /// Which frame `decoded` holds (the last one decoded), if any.
    cached: Option<usize>,
    decoded: Vec<u8>,
    frames_decoded: u64,
}

impl<R: ReadAt> std::fmt::Debug for SeekableReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeekableReader")
            .field("object", &self.object)
            .field("frames", &self.table.frames.len())
            .field("block_size", &self.table.block_size)
            .field("cached", &self.cached)
            .field("frames_decoded", &self.frames_decoded)
            .finish()
    }
}

impl<R: ReadAt> SeekableReader<R> {
    /// Opens `src` with its `.idx` when the caller has it (no read of `src` at all; its size
    /// must be the one the `.idx` recorded), else from the seek table at the end of `src`.
    /// Opening with a `.idx` does not compare it with the seek table: [`verify`] does.
    pub fn open(src: R, idx: Option<&ZstIndex>) -> Result<Self, ArchiveError> {
        let object = src.describe();
        let table = match idx {
            Some(idx) if idx.zst_len != src.size() => {
                return Err(ArchiveError::Mismatch {
                    object,
                    field: "object size vs the .idx's zst_len".into(),
                    expected: idx.zst_len.to_string(),
                    found: src.size().to_string(),
                })
            }
            Some(idx) => idx.table.clone(),
            None => read_seek_table(&src)?,
        };
        Ok(Self {
            src,
            object,
            table,
            dctx: zstd_safe::DCtx::create(),
            compressed: Vec::new(),
            cached: None,
            decoded: Vec::new(),
            frames_decoded: 0,
        })
    }

    /// Length of the original `.q`.
    pub fn uncompressed_len(&self) -> u64 {
        self.table.uncompressed_len()
    }

    pub fn table(&self) -> &FrameTable {
        &self.table
    }

    /// Frames decompressed since open (a cache hit does not count): a point lookup's cost.
    pub fn frames_decoded(&self) -> u64 {
        self.frames_decoded
    }

    pub fn into_inner(self) -> R {
        self.src
    }

    /// Appends the original bytes `start..end` to `out`, decoding only the frames that hold
    /// them (at most `(end - start) / block_size + 2`). Fails on a range outside the `.q` or
    /// longer than [`MAX_READ_LEN`], and on any frame that does not decode to its stated size.
    pub fn read_range(
        &mut self,
        start: u64,
        end: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), ArchiveError> {
        let len = self.uncompressed_len();
        if start > end || end > len || end - start > MAX_READ_LEN {
            return Err(ArchiveError::Request {
                object: self.object.clone(),
                reason: format!(
                    "range {start}..{end} is not inside 0..{len} or exceeds {MAX_READ_LEN} bytes"
                ),
            });
        }
        out.reserve((end - start) as usize);
        for i in self.table.frames_for(start, end) {
            self.load(i)?;
            let f = &self.table.frames[i];
            let from = start.max(f.uncompressed_offset) - f.uncompressed_offset;
            let to = end.min(f.uncompressed_end()) - f.uncompressed_offset;
            out.extend_from_slice(&self.decoded[from as usize..to as usize]);
        }
        Ok(())
    }

    /// Decodes frame `i` into `self.decoded` unless it is already there.
    fn load(&mut self, i: usize) -> Result<(), ArchiveError> {
        if self.cached == Some(i) {
            return Ok(());
        }
        self.cached = None;
        let f = self.table.frames[i];
        let frame_err = |reason: String| ArchiveError::Frame {
            object: self.object.clone(),
            frame: i as u32,
            offset: f.compressed_offset,
            reason,
        };
        self.compressed.resize(f.compressed_size as usize, 0);
        self.src
            .read_exact_at(f.compressed_offset, &mut self.compressed)?;
        // The table's size must be exactly one frame: a shorter one means the table and the
        // bytes disagree, even if the bytes happen to decode.
        match zstd_safe::find_frame_compressed_size(&self.compressed) {
            Ok(n) if n == self.compressed.len() => {}
            Ok(n) => {
                return Err(frame_err(format!(
                    "the frame is {n} bytes, the table says {}",
                    f.compressed_size
                )))
            }
            Err(code) => {
                let reason = zstd_safe::get_error_name(code);
                return Err(frame_err(format!(
                    "its {} bytes are not one zstd frame: {reason}",
                    f.compressed_size
                )));
            }
        }
        self.decoded.clear();
        self.decoded.reserve_exact(f.uncompressed_size as usize);
        self.frames_decoded += 1;
        let n = self
            .dctx
            .decompress(&mut self.decoded, &self.compressed)
            .map_err(|code| {
                frame_err(format!(
                    "does not decode: {}",
                    zstd_safe::get_error_name(code)
                ))
            })?;
        if n != f.uncompressed_size as usize {
            return Err(frame_err(format!(
                "decodes to {n} bytes, the table says {}",
                f.uncompressed_size
            )));
        }
        self.cached = Some(i);
        Ok(())
    }
}

/// What [`verify`] checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub frames: u32,
    pub uncompressed_len: u64,
    /// SHA-256 of the decoded bytes (equal to the `.idx`'s `source_sha256`).
    pub source_sha256: [u8; 32],
}

/// Checks a `.zst` against its `.idx`: same object size, seek table and `.idx` entries
/// identical, every frame decodes (zstd checksum included) to its stated size, and the decoded
/// bytes hash to the `.idx`'s `source_sha256`. Reads the whole object once.
pub fn verify<R: ReadAt>(zst: R, idx: &ZstIndex) -> Result<VerifyReport, ArchiveError> {
    let object = zst.describe();
    let seek = read_seek_table(&zst)?;
    idx.check_matches(&seek, &format!("{object}: .idx"))?;
    let mut reader = SeekableReader::open(zst, Some(idx))?;
    let mut sha = Sha256::new();
    let mut buf = Vec::with_capacity(idx.table.block_size as usize);
    for f in &idx.table.frames {
        buf.clear();
        reader.read_range(f.uncompressed_offset, f.uncompressed_end(), &mut buf)?;
        sha.update(&buf);
    }
    let source_sha256: [u8; 32] = sha.finalize().into();
    if source_sha256 != idx.source_sha256 {
        return Err(ArchiveError::Mismatch {
            object,
            field: "SHA-256 of the decoded bytes vs the .idx's source_sha256".into(),
            expected: hex::encode(idx.source_sha256),
            found: hex::encode(source_sha256),
        });
    }
    Ok(VerifyReport {
        frames: idx.table.frame_count(),
        uncompressed_len: idx.table.uncompressed_len(),
        source_sha256,
    })
}

/// [`verify`] of local files: `zst` and its `.idx` at `idx`.
pub fn verify_files(zst: &Path, idx: &Path) -> Result<VerifyReport, ArchiveError> {
    verify(LocalFile::open(zst)?, &ZstIndex::read_file(idx)?)
}

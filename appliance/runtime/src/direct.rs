//! The segment's O_DIRECT writer: glommio `DmaFile` over io_uring. Behind this module so that
//! another io_uring runtime could replace glommio.
//!
//! O_DIRECT wants every write aligned (offset and length) to the device's block. A flush
//! therefore rewrites the file's last partial block: it writes `tail ‖ new frames ‖ zeros`
//! from the block boundary before the flush's start, where `tail` is the kept copy of the
//! partial block's valid bytes. The zeros past the valid end are the padding that readers
//! take as a clean end (docs/formats/segment.md); closing truncates them away.

use glommio::io::{DmaBuffer, DmaFile, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Bytes per O_DIRECT write: a multiple of any device's alignment.
pub const CHUNK: usize = 1 << 20;

/// The DMA buffer the flush copies chunks into, allocated once and reused by every flush
/// (a fresh buffer per write would be faulted in anew each time).
#[derive(Default)]
pub struct ChunkPool {
    free: Option<Rc<DmaBuffer>>,
}

impl ChunkPool {
    fn take(&mut self, file: &DmaFile) -> Rc<DmaBuffer> {
        self.free
            .take()
            .unwrap_or_else(|| Rc::new(file.alloc_dma_buffer(CHUNK)))
    }

    /// Keeps a buffer of [`CHUNK`] bytes for reuse (once its write has dropped its share).
    fn put(&mut self, buf: Rc<DmaBuffer>) {
        if buf.len() == CHUNK && Rc::strong_count(&buf) == 1 {
            self.free = Some(buf);
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{}: {op}: {source}", path.display())]
pub struct DirectError {
    pub path: PathBuf,
    pub op: &'static str,
    pub source: std::io::Error,
}

pub struct DirectSegment {
    path: PathBuf,
    file: DmaFile,
    align: u64,
    /// Valid bytes of the last partial block, from its aligned start to the valid end.
    tail: Vec<u8>,
    /// The valid end of the file (everything before it is durable frames or header).
    end: u64,
    pub writes: u64,
    pub bytes_written: u64,
}

fn err<'a>(
    path: &'a Path,
    op: &'static str,
) -> impl FnOnce(glommio::GlommioError<()>) -> DirectError + 'a {
    move |e| DirectError {
        path: path.to_owned(),
        op,
        source: e.into(),
    }
}

impl DirectSegment {
    /// Opens a segment whose valid bytes end at `end`: an existing one (the partition writer
    /// repaired it), or with `end` 0 a new one, created here (never over an existing file).
    pub async fn open(path: &Path, end: u64) -> Result<Self, DirectError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(end == 0)
            .dma_open(path)
            .await
            .map_err(err(
                path,
                if end == 0 {
                    "create O_DIRECT"
                } else {
                    "open O_DIRECT"
                },
            ))?;
        let align = file.alignment().max(512);
        let start = end - end % align;
        let tail = if start == end {
            Vec::new()
        } else {
            let got = file
                .read_at_aligned(start, align as usize)
                .await
                .map_err(err(path, "read tail"))?;
            got[..(end - start) as usize].to_vec()
        };
        Ok(Self {
            path: path.to_owned(),
            file,
            align,
            tail,
            end,
            writes: 0,
            bytes_written: 0,
        })
    }

    pub fn alignment(&self) -> u64 {
        self.align
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `flags:` line of this descriptor in /proc/self/fdinfo (octal), to prove O_DIRECT.
    pub fn fdinfo_flags(&self) -> Option<u32> {
        let info =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", self.file.as_raw_fd())).ok()?;
        let line = info.lines().find(|l| l.starts_with("flags:"))?;
        u32::from_str_radix(line.trim_start_matches("flags:").trim(), 8).ok()
    }

    /// Writes `bytes`, which must start at the valid end, and makes them durable. The aligned
    /// stream `tail ‖ bytes ‖ zeros` goes out in chunks of [`CHUNK`] bytes, one after the
    /// other, copied into the DMA buffer that `pool` keeps for every flush.
    pub async fn append_durable(
        &mut self,
        start: u64,
        bytes: &[u8],
        pool: &mut ChunkPool,
    ) -> Result<(), DirectError> {
        assert_eq!(start, self.end, "appends continue at the valid end");
        if bytes.is_empty() {
            return Ok(());
        }
        let block_start = self.end - self.tail.len() as u64;
        debug_assert_eq!(block_start % self.align, 0);
        let valid = self.tail.len() + bytes.len();
        let padded = valid.div_ceil(self.align as usize) * self.align as usize;
        assert!(
            block_start.is_multiple_of(self.align)
                && (padded as u64).is_multiple_of(self.align)
                && (CHUNK as u64).is_multiple_of(self.align),
            "O_DIRECT writes must be aligned"
        );
        // Byte `i` of the stream `tail ‖ bytes ‖ zeros`, copied by ranges.
        let (tail, align) = (std::mem::take(&mut self.tail), self.align);
        let fill = |dst: &mut [u8], from: usize| {
            let mut at = 0;
            if from < tail.len() {
                let n = (tail.len() - from).min(dst.len());
                dst[..n].copy_from_slice(&tail[from..from + n]);
                at = n;
            }
            let b0 = (from + at).saturating_sub(tail.len());
            if b0 < bytes.len() && at < dst.len() {
                let n = (bytes.len() - b0).min(dst.len() - at);
                dst[at..at + n].copy_from_slice(&bytes[b0..b0 + n]);
                at += n;
            }
            dst[at..].fill(0);
        };
        let mut pos = 0usize;
        let mut result = Ok(());
        while pos < padded && result.is_ok() {
            let len = CHUNK.min(padded - pos);
            let mut buf = if len == CHUNK {
                pool.take(&self.file)
            } else {
                Rc::new(self.file.alloc_dma_buffer(len))
            };
            fill(
                Rc::get_mut(&mut buf)
                    .expect("a pooled buffer is not shared")
                    .as_bytes_mut(),
                pos,
            );
            let at = block_start + pos as u64;
            let r = self.file.write_rc_at(buf.clone(), at).await;
            result = self.finished_write(r, buf, pool);
            pos += len;
        }
        // The new partial block, kept for the next flush.
        let new_end = self.end + bytes.len() as u64;
        let keep = (new_end % align) as usize;
        let mut next = Vec::with_capacity(align as usize);
        next.resize(keep, 0);
        fill(&mut next, valid - keep);
        self.tail = next;
        result?;
        self.file
            .fdatasync()
            .await
            .map_err(err(&self.path, "fdatasync"))?;
        self.end = new_end;
        self.bytes_written += padded as u64;
        Ok(())
    }

    /// One chunk's write ended; its buffer goes back to the pool if it was a pooled one.
    fn finished_write(
        &mut self,
        r: glommio::Result<usize, ()>,
        buf: Rc<DmaBuffer>,
        pool: &mut ChunkPool,
    ) -> Result<(), DirectError> {
        let want = buf.len();
        pool.put(buf);
        self.writes += 1;
        match r {
            Ok(n) if n == want => Ok(()),
            Ok(n) => Err(DirectError {
                path: self.path.clone(),
                op: "write",
                source: std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    format!("short write {n} of {want}"),
                ),
            }),
            Err(e) => Err(err(&self.path, "write")(e)),
        }
    }

    /// Cuts the zero padding and closes the file.
    pub async fn close(self) -> Result<(), DirectError> {
        self.file
            .truncate(self.end)
            .await
            .map_err(err(&self.path, "truncate"))?;
        self.file
            .fdatasync()
            .await
            .map_err(err(&self.path, "fdatasync"))?;
        self.file.close().await.map_err(err(&self.path, "close"))?;
        Ok(())
    }
}

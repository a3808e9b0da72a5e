//! The segment's O_DIRECT writer: glommio `DmaFile` over io_uring. Behind this module so that
//! another io_uring runtime could replace glommio.
//!
//! O_DIRECT wants every write aligned (offset and length) to the device's block. A flush
//! therefore rewrites the file's last partial block: it writes `tail ‖ new frames ‖ zeros`
//! from the block boundary before the flush's start, where `tail` is the kept copy of the
//! partial block's valid bytes. The zeros past the valid end are the padding that readers
//! take as a clean end (docs/formats/segment.md); closing truncates them away.

use glommio::io::{DmaFile, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

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
    /// Opens an existing segment whose valid bytes end at `end` (the partition writer created
    /// or repaired it).
    pub async fn open(path: &Path, end: u64) -> Result<Self, DirectError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(path)
            .await
            .map_err(err(path, "open O_DIRECT"))?;
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

    /// Writes `bytes`, which must start at the valid end, and makes them durable.
    pub async fn append_durable(&mut self, start: u64, bytes: &[u8]) -> Result<(), DirectError> {
        assert_eq!(start, self.end, "appends continue at the valid end");
        if bytes.is_empty() {
            return Ok(());
        }
        let block_start = self.end - self.tail.len() as u64;
        debug_assert_eq!(block_start % self.align, 0);
        let valid = self.tail.len() + bytes.len();
        let padded = valid.div_ceil(self.align as usize) * self.align as usize;
        let mut buf = self.file.alloc_dma_buffer(padded);
        let b = buf.as_bytes_mut();
        b[..self.tail.len()].copy_from_slice(&self.tail);
        b[self.tail.len()..valid].copy_from_slice(bytes);
        b[valid..].fill(0);
        // Keep the new partial block for the next flush before the buffer is handed over.
        let new_end = self.end + bytes.len() as u64;
        let keep = (new_end % self.align) as usize;
        self.tail.clear();
        self.tail.extend_from_slice(&b[valid - keep..valid]);
        assert!(
            block_start % self.align == 0 && padded as u64 % self.align == 0,
            "O_DIRECT write must be aligned"
        );
        let n = self
            .file
            .write_at(buf, block_start)
            .await
            .map_err(err(&self.path, "write"))?;
        if n != padded {
            return Err(DirectError {
                path: self.path.clone(),
                op: "write",
                source: std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    format!("short write {n} of {padded}"),
                ),
            });
        }
        self.file
            .fdatasync()
            .await
            .map_err(err(&self.path, "fdatasync"))?;
        self.end = new_end;
        self.writes += 1;
        self.bytes_written += padded as u64;
        Ok(())
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

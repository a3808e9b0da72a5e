//! Frames: `u32 length | u32 crc32c | record`, and the scan that tells a torn tail from
//! damage in the middle.

use chronicle_protocol::wire::{tiles, u32_at};
use chronicle_protocol::{RecordView, HEADER_LEN, MAX_RECORD_LEN};

pub const FRAME_HEADER_LEN: usize = 8;
const LEN_AT: usize = 0;
const CRC_AT: usize = 4;

const _: () = assert!(tiles(&[(LEN_AT, 4), (CRC_AT, 4)], FRAME_HEADER_LEN));

/// The frame size for a record of `record_len` bytes.
pub const fn frame_len(record_len: usize) -> usize {
    FRAME_HEADER_LEN + record_len
}

/// Appends the frame for an encoded record to `out` (no allocation beyond `out`'s growth).
pub fn encode_frame(record: &[u8], out: &mut Vec<u8>) {
    debug_assert!(record.len().is_multiple_of(8) && record.len() <= MAX_RECORD_LEN);
    let len = (record.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), record);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(record);
}

/// A valid frame: its byte offset in the file and the record it holds.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub offset: u64,
    pub record: RecordView<'a>,
}

/// Why the frame at an offset is not valid (`None` for zero padding).
fn check_frame(buf: &[u8], at: usize) -> Result<Option<RecordView<'_>>, String> {
    let rest = &buf[at..];
    if rest.len() < FRAME_HEADER_LEN {
        return Err(format!("{} bytes left, a frame header needs 8", rest.len()));
    }
    let len = u32_at(rest, LEN_AT) as usize;
    if len == 0 && rest.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    if !(HEADER_LEN..=MAX_RECORD_LEN).contains(&len) || !len.is_multiple_of(8) {
        return Err(format!("frame length {len} is invalid"));
    }
    if rest.len() < FRAME_HEADER_LEN + len {
        return Err(format!(
            "frame of {len} bytes runs past the end ({} bytes left)",
            rest.len() - FRAME_HEADER_LEN
        ));
    }
    let stored = u32_at(rest, CRC_AT);
    let record = &rest[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len];
    let actual = crc32c::crc32c_append(crc32c::crc32c(&rest[LEN_AT..CRC_AT]), record);
    if stored != actual {
        return Err(format!(
            "frame checksum {stored:#010x} != computed {actual:#010x}"
        ));
    }
    let view = RecordView::parse(record).map_err(|e| format!("record: {e}"))?;
    if view.bytes.len() != len {
        return Err(format!(
            "frame length {len} != record length {}",
            view.bytes.len()
        ));
    }
    Ok(Some(view))
}

/// How the frames of a segment end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte up to `end` is valid frames; anything after is zero padding.
    Clean { end: u64 },
    /// The frames are valid up to `valid_end`; what follows is damaged and no valid frame
    /// follows it anywhere: an interrupted append, safe to cut back.
    TornTail { valid_end: u64, reason: String },
}

/// Iterates the valid frames from `start`; stops at padding or the first invalid frame
/// (then `end()` says whether it was a torn tail or corruption in the middle).
pub struct FrameIter<'a> {
    buf: &'a [u8],
    /// File offset of `buf[0]` (non-zero when `buf` is a window decoded from an archive).
    base: u64,
    at: usize,
    done: Option<Result<ScanEnd, (u64, String)>>,
}

impl<'a> FrameIter<'a> {
    pub fn new(buf: &'a [u8], start: usize) -> Self {
        // A start past the end is a caller's bad offset (a damaged index or snapshot): an
        // error at that offset, never a panic.
        let done = (start > buf.len()).then(|| {
            Err((
                start as u64,
                format!("offset past the end ({} bytes)", buf.len()),
            ))
        });
        Self {
            buf,
            base: 0,
            at: start.min(buf.len()),
            done,
        }
    }

    /// Iterates a window of the file: `buf` holds the bytes from file offset `base`, which is
    /// a frame boundary; offsets (frames and errors) are reported as file offsets. Damage is
    /// classified within the window only: the caller knows whether more of the file follows.
    pub fn window(buf: &'a [u8], base: u64) -> Self {
        Self {
            base,
            ..Self::new(buf, 0)
        }
    }

    /// Iterates only up to `end` (an index block's end), which must be a frame boundary.
    pub fn bounded(buf: &'a [u8], start: usize, end: usize) -> Self {
        Self::new(&buf[..end.min(buf.len())], start)
    }

    /// After iteration: how the frames ended. `Err((offset, reason))` is damage followed
    /// by valid data: corruption that must not be skipped.
    pub fn end(&mut self) -> Result<ScanEnd, (u64, String)> {
        while self.next().is_some() {}
        self.done.clone().expect("set when iteration ends")
    }

    fn finish(&mut self, reason: Option<String>) {
        let at = self.base + self.at as u64;
        self.done = Some(match reason {
            None => Ok(ScanEnd::Clean { end: at }),
            Some(reason) => {
                // Damage is a torn tail only if nothing valid follows it: an append that was
                // cut short leaves garbage or zeros after it, never a well-checksummed frame.
                let next_valid = (self.at + 8..self.buf.len())
                    .step_by(8)
                    .find(|&o| matches!(check_frame(self.buf, o), Ok(Some(_))));
                match next_valid {
                    Some(o) => Err((
                        at,
                        format!(
                            "{reason} (a valid frame follows at offset {})",
                            self.base + o as u64
                        ),
                    )),
                    None => Ok(ScanEnd::TornTail {
                        valid_end: at,
                        reason,
                    }),
                }
            }
        });
    }
}

impl<'a> Iterator for FrameIter<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        if self.done.is_some() {
            return None;
        }
        if self.at == self.buf.len() {
            self.finish(None);
            return None;
        }
        match check_frame(self.buf, self.at) {
            Ok(Some(record)) => {
                let f = Frame {
                    offset: self.base + self.at as u64,
                    record,
                };
                self.at += FRAME_HEADER_LEN + record.bytes.len();
                Some(f)
            }
            Ok(None) => {
                self.finish(None);
                None
            }
            Err(reason) => {
                self.finish(Some(reason));
                None
            }
        }
    }
}

/// Walks every frame from `start` and says how they end.
pub fn scan(buf: &[u8], start: usize) -> Result<ScanEnd, (u64, String)> {
    FrameIter::new(buf, start).end()
}

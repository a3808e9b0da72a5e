//! The `.q` segment: one partition's records, in arrival order.
//!
//! ```text
//! [ header: 128 bytes, CRC32C-protected ]
//! [ frame ]*  frame = u32 length | u32 crc32c(length bytes ++ record) | record (length bytes)
//! [ zeros ]   optional padding (an O_DIRECT writer's partial block)
//! ```
//! Every frame starts 8-byte aligned because every record length is a multiple of 8.

mod frame;
mod header;
mod reader;
mod writer;

pub use frame::{encode_frame, frame_len, scan, Frame, FrameIter, ScanEnd, FRAME_HEADER_LEN};
pub use header::{SegmentHeader, FORMAT_VERSION, HEADER_LEN, MAGIC};
pub use reader::Segment;
pub use writer::SegmentWriter;

//! Little-endian field access at byte offsets, for every fixed layout of the appliance (records,
//! segment and index headers, ring and datagram headers, archive indexes, engine snapshots).
//!
//! The caller checks the slice is long enough first: these index like slices do and panic
//! past the end. [`tiles`] pins a layout at compile time.

/// The `u16` at `b[at..at + 2]`.
#[inline]
pub fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// The `u32` at `b[at..at + 4]`.
#[inline]
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The `i32` at `b[at..at + 4]`.
#[inline]
pub fn i32_at(b: &[u8], at: usize) -> i32 {
    u32_at(b, at) as i32
}

/// The `u64` at `b[at..at + 8]`.
#[inline]
pub fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The `i64` at `b[at..at + 8]`.
#[inline]
pub fn i64_at(b: &[u8], at: usize) -> i64 {
    u64_at(b, at) as i64
}

/// Writes `v` at `b[at..at + 2]`.
#[inline]
pub fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

/// Writes `v` at `b[at..at + 4]`.
#[inline]
pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Writes `v` at `b[at..at + 4]`.
#[inline]
pub fn put_i32(b: &mut [u8], at: usize, v: i32) {
    put_u32(b, at, v as u32);
}

/// Writes `v` at `b[at..at + 8]`.
#[inline]
pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Writes `v` at `b[at..at + 8]`.
#[inline]
pub fn put_i64(b: &mut [u8], at: usize, v: i64) {
    put_u64(b, at, v as u64);
}

/// Whether `fields`, `(offset, width)` in layout order, tile `0..len` exactly: the first
/// starts at 0, each starts where the one before ends, the last ends at `len`. So no two
/// overlap and no byte is left out; reserved bytes are listed as fields of their own. For
/// `const _: () = assert!(tiles(..))` beside a layout's offset constants.
pub const fn tiles(fields: &[(usize, usize)], len: usize) -> bool {
    let mut end = 0;
    let mut i = 0;
    while i < fields.len() {
        if fields[i].0 != end {
            return false;
        }
        end += fields[i].1;
        i += 1;
    }
    end == len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_refuses_overlaps_holes_and_short_layouts() {
        assert!(tiles(&[(0, 2), (2, 6)], 8));
        assert!(tiles(&[], 0));
        assert!(!tiles(&[(0, 4), (2, 6)], 8), "overlap");
        assert!(!tiles(&[(0, 2), (4, 4)], 8), "hole");
        assert!(!tiles(&[(0, 2), (2, 4)], 8), "short");
        assert!(!tiles(&[(2, 6)], 8), "not from 0");
    }

    #[test]
    fn reads_what_puts_wrote() {
        let mut b = [0u8; 16];
        put_u16(&mut b, 0, 0x0102);
        put_i32(&mut b, 2, -3);
        put_i64(&mut b, 8, -5);
        assert_eq!(b[..2], [0x02, 0x01]);
        assert_eq!(
            (u16_at(&b, 0), i32_at(&b, 2), i64_at(&b, 8)),
            (0x0102, -3, -5)
        );
        put_u32(&mut b, 2, 7);
        put_u64(&mut b, 8, u64::MAX);
        assert_eq!((u32_at(&b, 2), u64_at(&b, 8)), (7, u64::MAX));
    }
}

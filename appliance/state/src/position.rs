//! EventLogOffset: a token's event log is its daily partitions, so a position needs the
//! partition as well as the byte offset. Both are packed into the snapshot's u64:
//!
//! ```text
//! bits 63..40  partition date, days since 1970-01-01 (UTC)
//! bits 39..0   byte offset in that partition's book.q, just past the record
//! ```
//! 2^40 bytes (1 TiB) per partition and 2^24 days (45,000 years) are limits no day reaches.

use chronicle_storage::utc;
use time::Date;

const OFFSET_BITS: u32 = 40;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogPosition {
    pub date: Date,
    /// Byte offset in `book.q` just past the last applied record.
    pub offset: u64,
}

fn days(date: Date) -> u64 {
    let d = date.to_julian_day() - time::macros::date!(1970 - 01 - 01).to_julian_day();
    assert!(d >= 0, "partitions before 1970 are not representable");
    d as u64
}

impl LogPosition {
    pub fn pack(&self) -> u64 {
        assert!(self.offset <= OFFSET_MASK, "partition larger than 1 TiB");
        (days(self.date) << OFFSET_BITS) | self.offset
    }

    /// `None` for a value no position packs to (a damaged snapshot).
    pub fn unpack(v: u64) -> Option<Self> {
        let days = v >> OFFSET_BITS;
        let date = Date::from_julian_day(
            time::macros::date!(1970 - 01 - 01)
                .to_julian_day()
                .checked_add(i32::try_from(days).ok()?)?,
        )
        .ok()?;
        Some(Self {
            date,
            offset: v & OFFSET_MASK,
        })
    }

    pub fn of(ts_ns_date: u64, offset: u64) -> Self {
        Self {
            date: utc::date_of(ts_ns_date),
            offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks() {
        let p = LogPosition {
            date: time::macros::date!(2024 - 08 - 09),
            offset: 45_853_112,
        };
        let v = p.pack();
        assert_eq!(v >> 40, 19944);
        assert_eq!(LogPosition::unpack(v), Some(p));
        assert_eq!(LogPosition::unpack(u64::MAX), None);
    }
}

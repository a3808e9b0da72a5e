//! UTC calendar helpers. Partitions are cut on exchange time in UTC, never local time.

use time::{Date, OffsetDateTime};

const NS_PER_DAY: u64 = 86_400_000_000_000;

/// The UTC date of a timestamp in ns since the epoch.
pub fn date_of(ts_ns: u64) -> Date {
    Date::from_julian_day(epoch_julian() + (ts_ns / NS_PER_DAY) as i32)
        .expect("u64 ns since 1970 stays within time's date range")
}

/// ns since the epoch of the midnight that starts `date`, UTC (dates before 1970 clamp to 0).
pub fn midnight_ns(date: Date) -> u64 {
    let days = date.to_julian_day() - epoch_julian();
    (days.max(0) as u64) * NS_PER_DAY
}

fn epoch_julian() -> i32 {
    time::macros::date!(1970 - 01 - 01).to_julian_day()
}

/// `YYYYMMDD` as stored in segment headers.
pub fn yyyymmdd(date: Date) -> u32 {
    date.year() as u32 * 10_000 + date.month() as u32 * 100 + date.day() as u32
}

pub fn from_yyyymmdd(v: u32) -> Option<Date> {
    let month = time::Month::try_from((v / 100 % 100) as u8).ok()?;
    Date::from_calendar_date((v / 10_000) as i32, month, (v % 100) as u8).ok()
}

/// `YYYY-MM-DD`, the partition directory name.
pub fn iso_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        date.month() as u8,
        date.day()
    )
}

pub fn parse_iso_date(s: &str) -> Option<Date> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

/// RFC 3339 with nanoseconds, UTC (`2024-08-08T23:54:16.299000000Z`).
pub fn rfc3339(ts_ns: u64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(ts_ns as i128)
        .expect("u64 ns is within time's range");
    format!(
        "{}T{:02}:{:02}:{:02}.{:09}Z",
        iso_date(t.date()),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

/// Accepts ns since the epoch, RFC 3339 (`2024-08-08T23:59:00Z`, with or without
/// fraction or offset), or a bare date (its UTC midnight).
pub fn parse_time(s: &str) -> Option<u64> {
    if let Ok(ns) = s.parse::<u64>() {
        return Some(ns);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return u64::try_from(t.unix_timestamp_nanos()).ok();
    }
    parse_iso_date(s).map(midnight_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        let ts = 1_723_161_600_760_000_000; // 2024-08-09T00:00:00.760Z
        let d = date_of(ts);
        assert_eq!(iso_date(d), "2024-08-09");
        assert_eq!(yyyymmdd(d), 20240809);
        assert_eq!(from_yyyymmdd(20240809), Some(d));
        assert_eq!(midnight_ns(d), 1_723_161_600_000_000_000);
        assert_eq!(iso_date(date_of(ts - 761_000_000)), "2024-08-08");
        assert_eq!(rfc3339(ts), "2024-08-09T00:00:00.760000000Z");
        assert_eq!(parse_time("2024-08-09T00:00:00.76Z"), Some(ts));
        assert_eq!(parse_time("2024-08-09"), Some(1_723_161_600_000_000_000));
        assert_eq!(parse_time("17"), Some(17));
        assert_eq!(parse_time("yesterday"), None);
    }
}

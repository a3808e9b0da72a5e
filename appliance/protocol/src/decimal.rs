//! Scaled-integer decimals: `value = mantissa × 10^exponent`. No floats ever touch a price.

use crate::ParseDecimalError;
use std::fmt;

/// Sentinel for "no value" in a price or quantity field (an empty side of a BBO, an unknown
/// mark price). The same convention as DBN's `UNDEF_PRICE`.
pub const UNDEF: i64 = i64::MAX;

/// A mantissa with its decimal exponent, displayed exactly (`Scaled { mantissa: 5698260,
/// exponent: -2 }` prints `56982.60`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scaled {
    pub mantissa: i64,
    pub exponent: i8,
}

impl fmt::Display for Scaled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.mantissa as i128;
        if self.exponent >= 0 {
            // Exponents are bounded to ±18 on disk, so this cannot overflow an i128.
            return write!(f, "{}", m * 10i128.pow(self.exponent as u32));
        }
        let scale = 10i128.pow(self.exponent.unsigned_abs() as u32);
        let sign = if m < 0 { "-" } else { "" };
        let a = m.abs();
        write!(
            f,
            "{sign}{}.{:0width$}",
            a / scale,
            a % scale,
            width = self.exponent.unsigned_abs() as usize
        )
    }
}

/// `format_scaled(5698260, -2) == "56982.60"`.
pub fn format_scaled(mantissa: i64, exponent: i8) -> String {
    Scaled { mantissa, exponent }.to_string()
}

/// Parses a plain decimal (`-12.340`, `7`, `.5`) into a mantissa at `exponent`. Trailing
/// zeros beyond the exponent are accepted; any other extra precision is an error, never
/// rounded away.
pub fn parse_scaled(text: &str, exponent: i8) -> Result<i64, ParseDecimalError> {
    let syntax = || ParseDecimalError::Syntax {
        text: text.to_owned(),
    };
    let overflow = || ParseDecimalError::Overflow {
        text: text.to_owned(),
        exponent,
    };
    let (neg, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|c| c.is_ascii_digit())
        || !frac_part.bytes().all(|c| c.is_ascii_digit())
    {
        return Err(syntax());
    }
    let frac_trimmed = frac_part.trim_end_matches('0');
    let decimals = frac_trimmed.len() as i32;
    let exp = exponent as i32;
    if decimals > (-exp).max(0) {
        return Err(ParseDecimalError::TooPrecise {
            text: text.to_owned(),
            exponent,
        });
    }
    let mut m: i128 = 0;
    for c in int_part.bytes().chain(frac_trimmed.bytes()) {
        m = m
            .checked_mul(10)
            .and_then(|v| v.checked_add((c - b'0') as i128))
            .ok_or_else(overflow)?;
        if m > i64::MAX as i128 {
            return Err(overflow());
        }
    }
    // m is now value × 10^decimals; bring it to value × 10^-exponent.
    let shift = -exp - decimals;
    if shift > 0 {
        for _ in 0..shift {
            m = m.checked_mul(10).ok_or_else(overflow)?;
            if m > i64::MAX as i128 {
                return Err(overflow());
            }
        }
    } else if shift < 0 {
        // Positive exponent: the value must be a whole multiple of 10^exponent.
        let div = 10i128.pow((-shift) as u32);
        if m % div != 0 {
            return Err(ParseDecimalError::TooPrecise {
                text: text.to_owned(),
                exponent,
            });
        }
        m /= div;
    }
    let v = if neg { -m } else { m };
    // UNDEF is reserved as the "no value" sentinel.
    if v >= UNDEF as i128 {
        return Err(overflow());
    }
    Ok(v as i64)
}

/// The number of significant decimals of a decimal string (`"56982.60"` → 1), used by
/// importers to choose an instrument's exponent before writing its first record.
pub fn significant_decimals(text: &str) -> u8 {
    match text.split_once('.') {
        Some((_, f)) => f.trim_end_matches('0').len().min(u8::MAX as usize) as u8,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_exactly() {
        assert_eq!(format_scaled(5698260, -2), "56982.60");
        assert_eq!(format_scaled(-5, -3), "-0.005");
        assert_eq!(format_scaled(12, 2), "1200");
        assert_eq!(format_scaled(0, -1), "0.0");
    }

    #[test]
    fn parses_and_rejects() {
        assert_eq!(parse_scaled("56982.60", -2), Ok(5698260));
        assert_eq!(parse_scaled("56982.60", -1), Ok(569826));
        assert_eq!(parse_scaled("0.001", -3), Ok(1));
        assert_eq!(parse_scaled("-1.5", -3), Ok(-1500));
        assert_eq!(parse_scaled("1200", 2), Ok(12));
        assert!(matches!(
            parse_scaled("1.25", -1),
            Err(ParseDecimalError::TooPrecise { .. })
        ));
        assert!(matches!(
            parse_scaled("1e5", -1),
            Err(ParseDecimalError::Syntax { .. })
        ));
        assert!(matches!(
            parse_scaled("99999999999999999999", 0),
            Err(ParseDecimalError::Overflow { .. })
        ));
        assert_eq!(significant_decimals("61800.30"), 1);
        assert_eq!(significant_decimals("0.006"), 3);
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_round_trips(m in -(1i64 << 62)..(1i64 << 62), e in -12i8..=0) {
            let s = format_scaled(m, e);
            proptest::prop_assert_eq!(parse_scaled(&s, e), Ok(m));
        }
    }
}

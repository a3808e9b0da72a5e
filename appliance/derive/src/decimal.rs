//! Prices and quantities as Parquet DECIMAL(18, s): exact, and typed for analytics, so
//! `SUM(price)` in DuckDB or polars is exact with no knowledge of chronicle's exponents.

use arrow_schema::DataType;
use chronicle_protocol::{format_scaled, UNDEF};

/// Precision of every decimal column. 18 digits is the most an INT64 holds, so Parquet stores
/// the column as INT64 (dictionary- and delta-encodable, and what DuckDB sums exactly into
/// DECIMAL(38)). A mantissa needing a 19th digit is refused, never wrapped.
pub const PRECISION: u8 = 18;
const LIMIT: i128 = 10i128.pow(PRECISION as u32);

/// One decimal column's scale (digits after the point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecimalScale(pub u8);

impl DecimalScale {
    /// The column for values `mantissa × 10^exponent`. Parquet has no negative scale, so a
    /// positive exponent (a venue quoting in hundreds) gives scale 0 and the mantissa is
    /// multiplied out.
    pub fn for_exponent(exponent: i8) -> Self {
        Self((-(exponent as i16)).max(0) as u8)
    }

    pub fn data_type(self) -> DataType {
        DataType::Decimal128(PRECISION, self.0 as i8)
    }

    /// `mantissa × 10^exponent` as this column's unscaled integer; `None` for `UNDEF` (no
    /// value). An error when the value has more decimals than the column (a definition at a
    /// finer exponent than its segment) or more than [`PRECISION`] digits.
    pub fn unscaled(self, mantissa: i64, exponent: i8) -> Result<Option<i128>, String> {
        if mantissa == UNDEF {
            return Ok(None);
        }
        let shift = exponent as i32 + self.0 as i32;
        let m = mantissa as i128;
        let v = if shift >= 0 {
            // |shift| <= 36 (exponents are within ±18), and 10^36 fits an i128.
            10i128.pow(shift as u32).checked_mul(m)
        } else {
            let div = 10i128.pow((-shift) as u32);
            (m % div == 0).then_some(m / div)
        };
        match v {
            Some(v) if v.abs() < LIMIT => Ok(Some(v)),
            Some(_) | None if shift >= 0 => Err(format!(
                "{} needs more than {PRECISION} digits at scale {}",
                format_scaled(mantissa, exponent),
                self.0
            )),
            _ => Err(format!(
                "{} has more than the column's {} decimals",
                format_scaled(mantissa, exponent),
                self.0
            )),
        }
    }
}

/// The scales of a segment's decimal columns.
#[derive(Debug, Clone, Copy)]
pub struct Scales {
    pub price: DecimalScale,
    pub quantity: DecimalScale,
    pub price_exponent: i8,
    pub quantity_exponent: i8,
}

/// Funding rates are stored in units of 1e-9 whatever the instrument.
pub const FUNDING_RATE: DecimalScale = DecimalScale(9);
pub const FUNDING_RATE_EXPONENT: i8 = -9;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_exactly_and_refuses_what_does_not_fit() {
        let s1 = DecimalScale::for_exponent(-1);
        assert_eq!(s1.unscaled(569826, -1), Ok(Some(569826)));
        assert_eq!(s1.unscaled(-5, -1), Ok(Some(-5)));
        assert_eq!(s1.unscaled(UNDEF, -1), Ok(None));
        // A coarser exponent is multiplied out; a finer one must divide exactly.
        assert_eq!(s1.unscaled(3, 0), Ok(Some(30)));
        assert_eq!(s1.unscaled(120, -2), Ok(Some(12)));
        assert!(s1.unscaled(125, -2).unwrap_err().contains("decimals"));
        // Positive exponents: scale 0, value multiplied out.
        let s0 = DecimalScale::for_exponent(2);
        assert_eq!(s0, DecimalScale(0));
        assert_eq!(s0.unscaled(12, 2), Ok(Some(1200)));
        // Precision 18: the 19th digit is refused, including through an overflow.
        assert_eq!(
            s1.unscaled(999_999_999_999_999_999, -1),
            Ok(Some(999_999_999_999_999_999))
        );
        assert!(s1
            .unscaled(1_000_000_000_000_000_000, -1)
            .unwrap_err()
            .contains("18 digits"));
        assert!(s0
            .unscaled(i64::MAX - 1, 18)
            .unwrap_err()
            .contains("18 digits"));
        assert!(s1.unscaled(i64::MIN, -1).unwrap_err().contains("18 digits"));
    }
}

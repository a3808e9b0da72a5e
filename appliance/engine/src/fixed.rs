//! Integer helpers: saturating narrowing, rounded division, EMA steps, fixed-point log2 and
//! the log2 <-> ppm conversion. No floats; every function is total (no panic on any input).

/// Narrows to i32, saturating. Returns the value and whether it had to be clamped.
#[inline]
pub(crate) fn clamp_i32(v: i128) -> (i32, bool) {
    if v > i32::MAX as i128 {
        (i32::MAX, true)
    } else if v < i32::MIN as i128 {
        (i32::MIN, true)
    } else {
        (v as i32, false)
    }
}

#[inline]
pub(crate) fn sat_i32(v: i128) -> i32 {
    clamp_i32(v).0
}

#[inline]
pub(crate) fn clamp_range(v: i128, lo: i32, hi: i32) -> i32 {
    debug_assert!(lo <= hi);
    v.clamp(lo as i128, hi as i128) as i32
}

/// `n / d` rounded half up (towards +inf), for `d > 0`. Floor-based so that the result does
/// not depend on the sign convention of `/`.
#[inline]
pub(crate) fn div_round(n: i128, d: i128) -> i128 {
    debug_assert!(d > 0);
    let d = d.max(1);
    (n + d / 2).div_euclid(d)
}

/// One step of an exponential moving average with horizon `n` updates:
/// `prev + round((x - prev) / n)`. Stays within [min(prev, x), max(prev, x)].
#[inline]
pub(crate) fn ema_step(prev: i32, x: i32, n: i32) -> i32 {
    debug_assert!(n > 0);
    let step = div_round(x as i128 - prev as i128, n.max(1) as i128);
    sat_i32(prev as i128 + step)
}

/// `10^exp` for `exp <= 18` (larger exponents are clamped to 18: i64 cannot hold 10^19).
#[inline]
pub(crate) fn pow10(exp: u8) -> i64 {
    10i64.pow(exp.min(18) as u32)
}

/// Decimal trailing zeros of a positive integer, capped at 18.
pub(crate) fn decimal_trailing_zeros(mut v: i64) -> u8 {
    let mut zeros = 0u8;
    while v != 0 && v % 10 == 0 && zeros < 18 {
        v /= 10;
        zeros += 1;
    }
    zeros
}

/// Fractional bits of the fixed-point log2 used for open interest.
pub(crate) const LOG2_FRAC_BITS: u32 = 16;

/// `floor(log2(x) * 2^16)` for `x >= 1`; 0 for `x <= 1`. Result is in `0..=63 << 16`, so it
/// always fits an i32. Classic bit-by-bit algorithm: normalize the mantissa to [1, 2) in
/// Q62, then square it 16 times, each squaring yielding one fractional bit.
pub(crate) fn log2_q16(x: i64) -> i32 {
    if x <= 1 {
        return 0;
    }
    let x = x as u64;
    // floor(log2 x), 1..=62.
    let int_part = 63 - x.leading_zeros();
    // Mantissa m in [2^62, 2^63): x scaled so its top bit sits at bit 62.
    let mut m: u128 = if int_part <= 62 {
        (x as u128) << (62 - int_part)
    } else {
        (x as u128) >> (int_part - 62)
    };
    let mut frac: u32 = 0;
    for _ in 0..LOG2_FRAC_BITS {
        m = (m * m) >> 62; // in [2^62, 2^64)
        frac <<= 1;
        if m >= 1u128 << 63 {
            frac |= 1;
            m >>= 1;
        }
    }
    debug_assert!(frac < 1 << LOG2_FRAC_BITS);
    ((int_part << LOG2_FRAC_BITS) | frac) as i32
}

/// ln(2) * 10^6, the factor between one log2 unit and a natural-log ppm.
const LN2_PPM: i128 = 693_147;

/// A Q16 log2 difference as a natural-log return in ppm (≈ percent × 10^4 for small moves).
#[inline]
pub(crate) fn log2_q16_to_ppm(q: i32) -> i32 {
    sat_i32(div_round(q as i128 * LN2_PPM, 1 << LOG2_FRAC_BITS))
}

/// The exact inverse of [`log2_q16_to_ppm`] on its image: one Q16 unit is ~10.58 ppm, so
/// rounding back always lands on the original value.
#[inline]
pub(crate) fn ppm_to_log2_q16(ppm: i32) -> i32 {
    sat_i32(div_round(ppm as i128 * (1 << LOG2_FRAC_BITS), LN2_PPM))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn log2_known_values() {
        assert_eq!(log2_q16(0), 0);
        assert_eq!(log2_q16(1), 0);
        assert_eq!(log2_q16(2), 1 << 16);
        assert_eq!(log2_q16(1024), 10 << 16);
        assert_eq!(log2_q16(i64::MAX) >> 16, 62);
        // log2(3) = 1.5849625 -> 1.5849625 * 65536 = 103872.0
        assert!((log2_q16(3) - 103_872).abs() <= 1);
        // log2(10^6) = 19.931568569 -> 1306236.4
        assert!((log2_q16(1_000_000) - 1_306_236).abs() <= 1);
    }

    #[test]
    fn trailing_zeros() {
        assert_eq!(decimal_trailing_zeros(1), 0);
        assert_eq!(decimal_trailing_zeros(250_000_000), 7);
        assert_eq!(decimal_trailing_zeros(1_000_000_000), 9);
        assert_eq!(decimal_trailing_zeros(0), 0);
        assert_eq!(decimal_trailing_zeros(-100), 2);
    }

    #[test]
    fn rounding_division() {
        assert_eq!(div_round(5, 2), 3);
        assert_eq!(div_round(-5, 2), -2);
        assert_eq!(div_round(-6, 4), -1);
        assert_eq!(div_round(7, 7), 1);
        assert_eq!(ema_step(0, 1000, 16), 63);
        assert_eq!(ema_step(i32::MIN, i32::MAX, 1), i32::MAX);
    }

    proptest! {
        #[test]
        fn ppm_roundtrip_is_exact(q in -(64i32 << 16)..(64i32 << 16)) {
            prop_assert_eq!(ppm_to_log2_q16(log2_q16_to_ppm(q)), q);
        }

        #[test]
        fn log2_is_monotonic(a in 1i64..i64::MAX, b in 1i64..i64::MAX) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(log2_q16(lo) <= log2_q16(hi));
        }

        #[test]
        fn ema_stays_between(prev in any::<i32>(), x in any::<i32>(), n in 1i32..1024) {
            let v = ema_step(prev, x, n);
            prop_assert!(v >= prev.min(x) && v <= prev.max(x));
        }
    }
}

//! The precision the `metrics` table keeps, and why: a compact archive.
//!
//! A metrics row is one player-second; most of its ~150 columns change slowly, but some
//! twenty `f64` columns (cumulative distances, loads, TRIMP, rolling windows) change every
//! second, and a full-precision `f64` that changes every second does not compress: stored
//! as-is they took ~9 bytes each per row (BENCHMARKS.md "Archive"). Their low mantissa bits
//! are noise far below what the sensors resolve (GNSS positions are good to ~1 m), so the
//! archive rounds each value before writing, to one of two resolutions:
//!
//! - [`Resolution::Step`]: to the nearest 1/128 of the column's unit — 7.8 mm for metres,
//!   0.008 m/s, 0.5 s for minutes, 0.008 bpm, 0.008 load or TRIMP units, 1/128 point. Used for
//!   quantities with a unit and a natural scale.
//! - [`Resolution::Relative`]: to 20 significant bits (relative error ≤ 2⁻²¹ ≈ 4.8·10⁻⁷), for
//!   ratios and z-scores whose scale varies (load per metre, vertical share, their changes,
//!   the risk terms' values and thresholds, completeness).
//!
//! Both keep the value a plain `f64` (no decimal types for analysts' tools to convert), make
//! the low bytes of every value zero, and so let Parquet's BYTE_STREAM_SPLIT encoding and
//! zstd compress them to ~1–2 bytes; with rows sorted by player and time within a file, the
//! table takes ≤ 40 bytes per row instead of ~170. Live values on Kafka are not rounded; a
//! value read back from the archive is [`stored`] of the engine's, exactly.

/// How a column is rounded before it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// To the nearest [`STEP`] of the unit.
    Step,
    /// To [`RELATIVE_BITS`] significant bits.
    Relative,
}

/// The step of [`Resolution::Step`], in the column's unit.
pub const STEP: f64 = 1.0 / 128.0;

/// Significant bits kept by [`Resolution::Relative`] (of an `f64`'s 52).
pub const RELATIVE_BITS: u32 = 20;

/// `v` as the archive stores it under `r` (non-finite values unchanged).
pub fn stored(r: Resolution, v: f64) -> f64 {
    if !v.is_finite() {
        return v;
    }
    match r {
        Resolution::Step => (v / STEP).round() * STEP,
        Resolution::Relative => {
            let drop = 52 - RELATIVE_BITS;
            let bits = v.to_bits();
            // Round the magnitude half up; a carry into the exponent is the right result.
            let rounded = bits.wrapping_add(1 << (drop - 1)) & !((1u64 << drop) - 1);
            f64::from_bits(rounded)
        }
    }
}

/// The resolution of an `f64` metrics column, by name: ratios, changes, scores' terms and
/// completeness are relative; everything with a unit is stepped.
pub fn of_column(name: &str) -> Resolution {
    const RELATIVE: [&str; 7] = [
        "load_per_min",
        "load_per_m",
        "vertical_share",
        "post_peak_decrement",
        "last_block_hsr_change",
        "load_per_m_change",
        "vertical_share_change",
    ];
    if RELATIVE.contains(&name)
        || name == "risk_completeness"
        || name.ends_with("_points")
        || name.ends_with("_value")
        || name.ends_with("_threshold")
    {
        Resolution::Relative
    } else {
        Resolution::Step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stepped_values_are_within_half_a_step_and_exact_on_the_grid() {
        for v in [0.0, 1.0, 0.004, 1_234.567_89, 10_432.1, -3.3, 0.5] {
            let s = stored(Resolution::Step, v);
            assert!((s - v).abs() <= STEP / 2.0, "{v} -> {s}");
            assert_eq!(stored(Resolution::Step, s), s, "idempotent at {v}");
            assert_eq!((s / STEP).fract(), 0.0);
        }
        assert_eq!(stored(Resolution::Step, 2.5), 2.5);
    }

    #[test]
    fn relative_values_keep_twenty_bits_and_clear_the_low_four_bytes() {
        for v in [
            1e-9,
            0.012_345_678,
            0.5,
            1.0 / 3.0,
            1.0,
            2.748_281_828,
            1e6 + 0.1,
            -7.25e-3,
        ] {
            let s = stored(Resolution::Relative, v);
            assert!(((s - v) / v).abs() <= 2f64.powi(-21), "{v} -> {s}");
            assert_eq!(s.to_bits() & 0xFFFF_FFFF, 0, "{v}: low bytes not zero");
            assert_eq!(stored(Resolution::Relative, s), s, "idempotent at {v}");
        }
        // Rounding up across a power of two carries into the exponent.
        let just_below_two = f64::from_bits(2.0f64.to_bits() - 1);
        assert_eq!(stored(Resolution::Relative, just_below_two), 2.0);
        assert!(stored(Resolution::Relative, f64::NAN).is_nan());
        assert_eq!(stored(Resolution::Step, f64::INFINITY), f64::INFINITY);
    }

    #[test]
    fn columns_with_a_unit_are_stepped_ratios_and_terms_relative() {
        for c in [
            "distance_m",
            "hsr_m",
            "minutes",
            "load_x",
            "trimp_banister",
            "w5_hsr_m",
            "risk_score",
            "to_red_min",
            "hr_bpm",
        ] {
            assert_eq!(of_column(c), Resolution::Step, "{c}");
        }
        for c in [
            "load_per_m",
            "vertical_share_change",
            "risk_completeness",
            "b_hsr_z_value",
            "d_fatigue_points",
            "b_hsr_z_threshold",
        ] {
            assert_eq!(of_column(c), Resolution::Relative, "{c}");
        }
    }
}

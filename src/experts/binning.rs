//! Per-pixel bin boundaries and 1-byte codes: the form in which a bin's
//! rows are held for tree experts (DESIGN §11).
//!
//! Each pixel gets at most 254 boundaries `b₀ < b₁ < …`, quantiles of a
//! sample of rows, and a value `x` gets the code `#{k : b_k < x}` (0…254):
//! the bins are `(b_{k-1}, b_k]`, so a value equal to a boundary takes the
//! lower code. One byte per pixel holds a row, an eighth of its f64 size.
//!
//! Why trees may be trained on the codes: a tree splits a feature by a
//! threshold, so it only sees the order of a feature's values, and any
//! monotone map of a feature gives the same partitions of the rows.
//! LightGBM itself never splits on raw values either: it first bins every
//! feature into ≤ 255 bins and grows trees on the bin indices. Training on
//! our codes (as the numbers 0…254) is that procedure with our boundaries
//! in place of LightGBM's, and a split `code ≤ c` is the split `x ≤ b_c`.
//! A new row must be coded with the same boundaries before the model sees
//! it, so the boundaries are part of a saved model.
//!
//! Invariants: every boundary is finite, a pixel's boundaries are strictly
//! increasing, and the boundaries depend on the sample as a multiset only
//! (each pixel's values are sorted first), never on the order of its rows.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Codes per pixel at most: 0…254, as LightGBM's default `max_bin` (255).
pub const MAX_CODES: usize = 255;

/// The bin boundaries of every pixel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PixelBinsParts", into = "PixelBinsParts")]
pub struct PixelBins {
    /// Pixel `p`'s boundaries are `bounds[start[p]..start[p + 1]]`.
    start: Vec<usize>,
    bounds: Vec<f64>,
}

/// [`PixelBins`] as stored: the number of boundaries of each pixel and all
/// boundaries, pixel after pixel (two arrays, e.g. two HDF5 datasets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PixelBinsParts {
    /// Boundaries per pixel (≤ 254 each).
    pub counts: Vec<u8>,
    /// The boundaries, pixel after pixel, each pixel's strictly increasing.
    pub bounds: Vec<f64>,
}

impl PixelBins {
    /// Boundaries from a sample of rows (`sample` row-major, `pixels` per
    /// row): per pixel, cuts at the `codes`-quantiles of its values
    /// (`2 ≤ codes ≤ 255`), each placed halfway between the last value of a
    /// run of equal values and the next larger value. A pixel with at most
    /// `codes` distinct values gets one code per value; a constant pixel
    /// gets none (every value codes to 0).
    ///
    /// Errors: an empty sample or one that is not whole rows
    /// ([`Error::Shape`]), `codes` out of range ([`Error::InvalidParameter`]),
    /// a NaN or infinite value ([`Error::NonFinite`], naming the first in
    /// row-major order).
    pub fn fit(sample: &[f64], pixels: usize, codes: usize) -> Result<PixelBins> {
        if pixels == 0 || sample.is_empty() || sample.len() % pixels != 0 {
            return Err(Error::shape(
                "expert binning sample",
                format!("at least one whole row of {pixels} pixels (at least 1)"),
                format!("{} values", sample.len()),
            ));
        }
        if !(2..=MAX_CODES).contains(&codes) {
            return Err(Error::InvalidParameter {
                name: "codes",
                problem: format!("{codes} codes per pixel: must be 2 to {MAX_CODES}"),
            });
        }
        check_finite(sample, pixels, "expert binning sample")?;
        let rows = sample.len() / pixels;
        let mut start = Vec::with_capacity(pixels + 1);
        let mut bounds = Vec::new();
        let mut column = Vec::with_capacity(rows);
        start.push(0);
        for p in 0..pixels {
            column.clear();
            column.extend(sample.iter().skip(p).step_by(pixels));
            column.sort_unstable_by(f64::total_cmp);
            pixel_bounds(&column, codes, &mut bounds);
            start.push(bounds.len());
        }
        Ok(PixelBins { start, bounds })
    }

    /// Pixels per row.
    pub fn pixels(&self) -> usize {
        self.start.len() - 1
    }

    /// The boundaries of pixel `p` (strictly increasing).
    pub fn bounds(&self, p: usize) -> &[f64] {
        &self.bounds[self.start[p]..self.start[p + 1]]
    }

    /// Codes `rows` (row-major, whole rows) into `out` (same length).
    ///
    /// Errors: shapes ([`Error::Shape`]); a NaN or infinite value
    /// ([`Error::NonFinite`], its row within `rows`), with `out` unchanged.
    pub fn encode(&self, rows: &[f64], out: &mut [u8]) -> Result<()> {
        let p = self.pixels();
        if rows.len() % p != 0 || out.len() != rows.len() {
            return Err(Error::shape(
                "rows to code",
                format!("whole rows of {p} pixels and as many codes"),
                format!("{} values and {} codes", rows.len(), out.len()),
            ));
        }
        check_finite(rows, p, "rows to code")?;
        for (x, c) in rows.chunks_exact(p).zip(out.chunks_exact_mut(p)) {
            self.encode_finite(x, c);
        }
        Ok(())
    }

    /// Codes one row whose values are known to be finite (`x`, `out` of
    /// [`Self::pixels`] values). A NaN codes to an unspecified code.
    pub(crate) fn encode_finite(&self, x: &[f64], out: &mut [u8]) {
        for (p, (&v, c)) in x.iter().zip(out.iter_mut()).enumerate() {
            // ≤ 254 boundaries per pixel: the count fits a byte.
            *c = self.bounds(p).partition_point(|&b| b < v) as u8;
        }
    }

    /// Bytes held (for memory plans).
    pub fn bytes(&self) -> u64 {
        (self.start.len() * std::mem::size_of::<usize>() + self.bounds.len() * 8) as u64
    }

    /// The boundaries from their stored form, checked: at most 254 per
    /// pixel, finite, strictly increasing within a pixel, as many as the
    /// counts say. At least one pixel.
    pub fn from_parts(parts: PixelBinsParts) -> Result<PixelBins> {
        let bad = |problem: String| Error::InvalidParameter {
            name: "pixel bins",
            problem,
        };
        let total: usize = parts.counts.iter().map(|&c| usize::from(c)).sum();
        if parts.counts.is_empty() || total != parts.bounds.len() {
            return Err(bad(format!(
                "{} pixels whose counts add up to {total}, and {} boundaries: need ≥ 1 pixel and one boundary per count",
                parts.counts.len(),
                parts.bounds.len()
            )));
        }
        let mut start = Vec::with_capacity(parts.counts.len() + 1);
        start.push(0);
        for (p, &c) in parts.counts.iter().enumerate() {
            let from = start[p];
            let b = &parts.bounds[from..from + usize::from(c)];
            if usize::from(c) >= MAX_CODES
                || b.iter().any(|v| !v.is_finite())
                || b.windows(2).any(|w| w[0] >= w[1])
            {
                return Err(bad(format!(
                    "pixel {p}: {c} boundaries {b:?}: need ≤ {} finite, strictly increasing",
                    MAX_CODES - 1
                )));
            }
            start.push(from + usize::from(c));
        }
        Ok(PixelBins {
            start,
            bounds: parts.bounds,
        })
    }

    /// The stored form ([`PixelBinsParts`]).
    pub fn to_parts(&self) -> PixelBinsParts {
        PixelBinsParts {
            // ≤ 254 per pixel (an invariant of every constructor).
            counts: self.start.windows(2).map(|w| (w[1] - w[0]) as u8).collect(),
            bounds: self.bounds.clone(),
        }
    }
}

impl TryFrom<PixelBinsParts> for PixelBins {
    type Error = Error;
    fn try_from(parts: PixelBinsParts) -> Result<PixelBins> {
        PixelBins::from_parts(parts)
    }
}

impl From<PixelBins> for PixelBinsParts {
    fn from(bins: PixelBins) -> PixelBinsParts {
        bins.to_parts()
    }
}

/// `Err(NonFinite)` naming the first NaN or infinite value of `rows`.
fn check_finite(rows: &[f64], pixels: usize, what: &str) -> Result<()> {
    match rows.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::NonFinite {
            what: what.to_string(),
            row: (i / pixels) as u64,
            column: format!("pixel {}", i % pixels),
            value: rows[i],
        }),
    }
}

/// Appends the boundaries of one pixel from its sorted, finite values.
fn pixel_bounds(sorted: &[f64], codes: usize, out: &mut Vec<f64>) {
    let n = sorted.len();
    let first = out.len();
    let distinct = 1 + sorted.windows(2).filter(|w| w[0] < w[1]).count();
    if distinct <= codes {
        for w in sorted.windows(2).filter(|w| w[0] < w[1]) {
            out.push(midpoint(w[0], w[1]));
        }
        return;
    }
    for k in 1..codes {
        // The cut after rank r, moved up to the end of the run of values
        // equal to sorted[r - 1].
        let r = (k * n / codes).max(1);
        let below = sorted[r - 1];
        let next = r + sorted[r..].partition_point(|&v| v <= below);
        if next < n {
            let b = midpoint(below, sorted[next]);
            if out.len() == first || out[out.len() - 1] < b {
                out.push(b);
            }
        }
    }
}

/// A boundary between `a < b`: halfway, or `a` where rounding would reach
/// `b` (`a` then still codes low and `b` high).
fn midpoint(a: f64, b: f64) -> f64 {
    // Halves first: no overflow between ±f64::MAX.
    let m = a * 0.5 + b * 0.5;
    if a <= m && m < b {
        m
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn sample(rows: usize, pixels: usize, seed: u64) -> Vec<f64> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..rows * pixels)
            .map(|i| (i % pixels) as f64 + rng.random::<f64>() * 3.0)
            .collect()
    }

    fn codes_of(bins: &PixelBins, rows: &[f64]) -> Vec<u8> {
        let mut out = vec![0; rows.len()];
        bins.encode(rows, &mut out).unwrap();
        out
    }

    #[test]
    fn quantile_codes_are_balanced_and_use_every_code() {
        for (rows, pixels, codes) in [(5000, 3, 255), (1000, 7, 16), (20_000, 2, 255)] {
            let x = sample(rows, pixels, rows as u64);
            let bins = PixelBins::fit(&x, pixels, codes).unwrap();
            let c = codes_of(&bins, &x);
            for p in 0..pixels {
                assert_eq!(bins.bounds(p).len(), codes - 1, "pixel {p}");
                let mut count = vec![0usize; codes];
                for row in c.chunks_exact(pixels) {
                    count[usize::from(row[p])] += 1;
                }
                let (lo, hi) = (count.iter().min().unwrap(), count.iter().max().unwrap());
                // Equal-frequency cuts on distinct values: within one row.
                assert!(hi - lo <= 1, "{rows} × {pixels}, {codes} codes: {count:?}");
            }
        }
    }

    #[test]
    fn codes_are_monotone_and_boundaries_take_the_lower_code() {
        let x = sample(2000, 4, 7);
        let bins = PixelBins::fit(&x, 4, 255).unwrap();
        for p in 0..4 {
            let b = bins.bounds(p);
            assert!(b.windows(2).all(|w| w[0] < w[1]));
            let probe: Vec<f64> = (0..4000)
                .map(|i| p as f64 - 0.5 + i as f64 * 0.001)
                .collect();
            let mut last = 0u8;
            for &v in &probe {
                let mut row = vec![0.0; 4];
                row[p] = v;
                let c = codes_of(&bins, &row)[p];
                assert!(c >= last, "pixel {p}: code of {v} is {c} < {last}");
                last = c;
            }
            assert_eq!(last as usize, b.len());
            for (k, &bk) in b.iter().enumerate() {
                let mut row = vec![0.0; 4];
                row[p] = bk;
                assert_eq!(codes_of(&bins, &row)[p] as usize, k, "boundary {k}");
            }
        }
    }

    #[test]
    fn few_distinct_values_get_one_code_each_and_constant_pixels_none() {
        // Pixel 0 constant, pixel 1 three values, pixel 2 two values of
        // unequal frequency; with ties a quantile cut moves past the run.
        let rows: Vec<[f64; 3]> = (0..300)
            .map(|i| {
                [
                    4.25,
                    [0.0, 1.0, 2.5][i % 3],
                    if i < 290 { -1.0 } else { 1e300 },
                ]
            })
            .collect();
        let x: Vec<f64> = rows.iter().flatten().copied().collect();
        let bins = PixelBins::fit(&x, 3, 2).unwrap();
        assert!(bins.bounds(0).is_empty());
        // Three distinct values > 2 codes: one cut, at the end of the run of
        // 1.0 that rank 150 falls in.
        assert_eq!(bins.bounds(1), &[1.75]);
        assert_eq!(bins.bounds(2), &[-0.5 + 1e300 * 0.5]);
        let bins = PixelBins::fit(&x, 3, 255).unwrap();
        assert_eq!(bins.bounds(1), &[0.5, 1.75]);
        let c = codes_of(&bins, &x);
        assert!(c.chunks_exact(3).all(|r| r[0] == 0));
        assert_eq!(&c[..9], &[0, 0, 0, 0, 1, 0, 0, 2, 0]);
        assert_eq!(c[290 * 3 + 2], 1);
        // Values beyond the sample's range take the end codes.
        assert_eq!(codes_of(&bins, &[1e308, -1e308, 1e308]), vec![0, 0, 1]);
    }

    #[test]
    fn boundaries_depend_on_the_rows_not_their_order() {
        let x = sample(3000, 5, 11);
        let bins = PixelBins::fit(&x, 5, 255).unwrap();
        let mut rows: Vec<&[f64]> = x.chunks_exact(5).collect();
        rows.reverse();
        rows.swap(0, 1700);
        let shuffled: Vec<f64> = rows.concat();
        assert_eq!(PixelBins::fit(&shuffled, 5, 255).unwrap(), bins);
        assert_eq!(PixelBins::fit(&x, 5, 255).unwrap(), bins, "deterministic");
    }

    #[test]
    fn nan_and_infinities_are_refused_with_their_position() {
        let mut x = sample(10, 3, 1);
        x[2 * 3 + 1] = f64::NAN;
        x[4 * 3] = f64::INFINITY;
        match PixelBins::fit(&x, 3, 255) {
            Err(Error::NonFinite { row, column, .. }) => {
                assert_eq!((row, column.as_str()), (2, "pixel 1"));
            }
            other => panic!("{other:?}"),
        }
        let bins = PixelBins::fit(&sample(10, 3, 1), 3, 255).unwrap();
        let mut out = vec![7u8; 6];
        let err = bins.encode(&[1.0, 2.0, 3.0, 1.0, f64::NEG_INFINITY, 0.0], &mut out);
        assert!(
            matches!(err, Err(Error::NonFinite { row: 1, .. })),
            "{err:?}"
        );
        assert_eq!(out, vec![7u8; 6], "unchanged on error");
        assert!(matches!(
            PixelBins::fit(&[], 3, 255),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(
            PixelBins::fit(&x[..4], 3, 255),
            Err(Error::Shape { .. })
        ));
        for codes in [0, 1, 256] {
            assert!(matches!(
                PixelBins::fit(&sample(10, 3, 1), 3, codes),
                Err(Error::InvalidParameter { .. })
            ));
        }
    }

    #[test]
    fn stored_form_round_trips_and_is_checked() {
        let bins = PixelBins::fit(&sample(500, 4, 3), 4, 40).unwrap();
        let json = serde_json::to_string(&bins).unwrap();
        assert_eq!(serde_json::from_str::<PixelBins>(&json).unwrap(), bins);
        let parts = bins.to_parts();
        assert_eq!(parts.counts, vec![39; 4]);
        for bad in [
            PixelBinsParts {
                counts: vec![2],
                bounds: vec![1.0, 1.0],
            },
            PixelBinsParts {
                counts: vec![2],
                bounds: vec![1.0],
            },
            PixelBinsParts {
                counts: vec![1],
                bounds: vec![f64::NAN],
            },
            PixelBinsParts {
                counts: vec![255],
                bounds: (0..255).map(f64::from).collect(),
            },
            PixelBinsParts {
                counts: vec![],
                bounds: vec![],
            },
        ] {
            assert!(PixelBins::from_parts(bad.clone()).is_err(), "{bad:?}");
        }
    }
}

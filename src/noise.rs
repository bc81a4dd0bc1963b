//! Deterministic heteroscedastic noise (DESIGN §4, a contract).
//!
//! `noisy[r, i] = max(flux[r, i] + level · error[r, i] · z[r, i], 0)`.
//!
//! The normal deviates z[r, ·] of a row come from their own generator: a
//! Xoshiro256++ whose 256-bit state is expanded by SplitMix64 from one 64-bit
//! key, the key itself a SplitMix64-style mix of (seed, shard index, row index
//! within the shard). z[r, i] is the i-th `StandardNormal` (ziggurat) draw of
//! that stream. Nothing else enters, so the noise of a row is the same for any
//! chunk size, thread count, subset of shards, or resume point — the tests in
//! this module and `tests/reader.rs` pin that.

use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// The SplitMix64 finaliser: a bijective 64-bit mix.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// The 64-bit key of the stream of (seed, shard, row).
#[inline]
pub(crate) fn row_key(seed: u64, shard: u64, row: u64) -> u64 {
    let a = mix64(seed.wrapping_add(GOLDEN));
    let b = mix64(a ^ shard.wrapping_add(GOLDEN.wrapping_mul(2)));
    mix64(b ^ row.wrapping_add(GOLDEN.wrapping_mul(3)))
}

/// The generator of the row `row` of shard `shard`.
pub fn row_stream(seed: u64, shard: u64, row: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(row_key(seed, shard, row))
}

/// The shard index reserved for the test shard's streams
/// (`sweep::test_eval::TEST_SHARD_INDEX`, `synth::TEST_SHARD`): no training
/// shard may take it, or its noise would be the test shard's.
pub const RESERVED_SHARD_INDEX: u64 = u64::MAX;

/// The indices of `count` shards numbered from `first` (`--first-shard-index`),
/// checked: they must not overflow and must stay below
/// [`RESERVED_SHARD_INDEX`]; otherwise the second shard's index would wrap
/// to 0 and reuse the first shard's noise, folds and gate keys.
pub(crate) fn shard_indices(first: u64, count: usize) -> crate::Result<std::ops::Range<u64>> {
    // The reserved index is u64::MAX, so an end (one past the last index)
    // that does not overflow keeps every index below it.
    const _: () = assert!(RESERVED_SHARD_INDEX == u64::MAX);
    let end = u64::try_from(count).ok().and_then(|c| first.checked_add(c));
    match end {
        Some(end) => Ok(first..end),
        None => Err(crate::Error::InvalidParameter {
            name: "first-shard-index",
            problem: format!(
                "{count} shard(s) from index {first} would need indices up to {first} + {count} − 1, \
                 but shard indices must stay below {RESERVED_SHARD_INDEX} (reserved for the test shard's noise)"
            ),
        }),
    }
}

/// `shard_indices` for shards to predict: also the one test shard at
/// [`RESERVED_SHARD_INDEX`], whose noise an experiment drew (predicting it
/// with that index reproduces the experiment's test predictions).
pub fn predicted_shard_indices(first: u64, count: usize) -> crate::Result<()> {
    if first == RESERVED_SHARD_INDEX && count == 1 {
        return Ok(());
    }
    shard_indices(first, count).map(|_| ())
}

/// A noise model: level and seed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoiseModel {
    /// The noise level L (0 = no noise).
    pub level: f64,
    /// The seed of every row stream.
    pub seed: u64,
}

/// The largest noise level accepted: L·error·z must stay far from overflow
/// (a level of 1e308 turned every noisy value into ±inf or 0), and a level
/// beyond this is noise that drowns any spectrum (the reports use 0.2 … 2).
pub const MAX_NOISE_LEVEL: f64 = 1e6;

impl NoiseModel {
    /// A model; `level` must be finite, ≥ 0 and ≤ [`MAX_NOISE_LEVEL`].
    pub fn new(level: f64, seed: u64) -> crate::Result<Self> {
        if !level.is_finite() || !(0.0..=MAX_NOISE_LEVEL).contains(&level) {
            return Err(crate::Error::InvalidParameter {
                name: "noise",
                problem: format!(
                    "the noise level must be finite, ≥ 0 and ≤ {MAX_NOISE_LEVEL:e}, got {level:?}"
                ),
            });
        }
        Ok(NoiseModel { level, seed })
    }

    /// Turns one row of flux into noisy flux in place, given its error.
    /// `flux` and `error` have the same length.
    pub fn apply_row(&self, shard: u64, row: u64, flux: &mut [f64], error: &[f64]) {
        if self.level == 0.0 {
            return;
        }
        let mut rng = row_stream(self.seed, shard, row);
        for (f, &e) in flux.iter_mut().zip(error) {
            let z: f64 = rng.sample(StandardNormal);
            *f = (*f + self.level * e * z).max(0.0);
        }
    }

    /// Applies noise to `rows` consecutive rows (row-major, `pixels` per row)
    /// starting at shard row `first_row`. Rows are independent, so the result
    /// does not depend on `parallel`.
    pub fn apply_rows(
        &self,
        shard: u64,
        first_row: u64,
        pixels: usize,
        flux: &mut [f64],
        error: &[f64],
        parallel: bool,
    ) {
        if self.level == 0.0 || pixels == 0 {
            return;
        }
        let work = |(r, (f, e)): (usize, (&mut [f64], &[f64]))| {
            self.apply_row(shard, first_row + r as u64, f, e)
        };
        if parallel {
            use rayon::prelude::*;
            flux.par_chunks_mut(pixels)
                .zip(error.par_chunks(pixels))
                .enumerate()
                .for_each(work);
        } else {
            flux.chunks_mut(pixels)
                .zip(error.chunks(pixels))
                .enumerate()
                .for_each(work);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, p: usize) -> (Vec<f64>, Vec<f64>) {
        let flux: Vec<f64> = (0..n * p).map(|i| 1.0 + (i % 7) as f64 * 0.1).collect();
        let error: Vec<f64> = (0..n * p).map(|i| 0.2 + (i % 5) as f64 * 0.05).collect();
        (flux, error)
    }

    #[test]
    fn same_noise_for_any_chunking_and_parallelism() {
        let model = NoiseModel::new(1.0, 42).unwrap();
        for &(n, p) in &[(1, 1), (7, 13), (64, 256)] {
            let (flux, error) = rows(n, p);
            let mut whole = flux.clone();
            model.apply_rows(3, 100, p, &mut whole, &error, false);
            for chunk in [1, 2, 5, n] {
                let mut pieces = flux.clone();
                for (c, (f, e)) in pieces
                    .chunks_mut(chunk * p)
                    .zip(error.chunks(chunk * p))
                    .enumerate()
                {
                    model.apply_rows(3, 100 + (c * chunk) as u64, p, f, e, true);
                }
                assert_eq!(whole, pieces, "n={n} p={p} chunk={chunk}");
            }
        }
    }

    #[test]
    fn rows_shards_and_seeds_get_different_streams() {
        let key = |s, sh, r| row_key(s, sh, r);
        assert_ne!(key(1, 0, 0), key(1, 0, 1));
        assert_ne!(key(1, 0, 0), key(1, 1, 0));
        assert_ne!(key(1, 0, 0), key(2, 0, 0));
        assert_ne!(key(1, 0, 1), key(1, 1, 0));
    }

    #[test]
    fn deviates_are_standard_normal_and_clamped() {
        let model = NoiseModel::new(1.0, 7).unwrap();
        let p = 200_000;
        let mut flux = vec![100.0; p];
        let error = vec![1.0; p];
        model.apply_row(0, 0, &mut flux, &error);
        let mean = flux.iter().map(|f| f - 100.0).sum::<f64>() / p as f64;
        let var = flux.iter().map(|f| (f - 100.0 - mean).powi(2)).sum::<f64>() / p as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
        let mut low = vec![0.0; 1000];
        model.apply_row(0, 1, &mut low, &vec![1.0; 1000]);
        assert!(low.iter().all(|&v| v >= 0.0) && low.contains(&0.0));
    }

    #[test]
    fn level_zero_is_identity_and_bad_levels_are_refused() {
        let model = NoiseModel::new(0.0, 1).unwrap();
        let (mut flux, error) = rows(3, 4);
        let before = flux.clone();
        model.apply_rows(0, 0, 4, &mut flux, &error, true);
        assert_eq!(flux, before);
        assert!(NoiseModel::new(-1.0, 0).is_err());
        assert!(NoiseModel::new(f64::NAN, 0).is_err());
    }

    /// Pins the stream itself: changing the generator, the key derivation or
    /// the sampler changes every statistics file, and must be deliberate.
    #[test]
    fn stream_is_pinned() {
        let mut rng = row_stream(42, 0, 0);
        let z: f64 = rng.sample(StandardNormal);
        let again: f64 = row_stream(42, 0, 0).sample(StandardNormal);
        assert_eq!(z.to_bits(), again.to_bits());
        assert_eq!(format!("{:016x}", z.to_bits()), PINNED_Z_4200);
        assert_eq!(row_key(42, 0, 0), row_key(42, 0, 0));
        assert_eq!(format!("{:016x}", row_key(0, 0, 0)), PINNED_KEY_000);
    }
    const PINNED_Z_4200: &str = "bfe5e54bfaaa54ce";
    const PINNED_KEY_000: &str = "1e35cdb4bf4f6f16";
}

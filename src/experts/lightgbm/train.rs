//! Training a LightGBM expert on coded rows.
//!
//! LightGBM's dataset is made from the codes without a row sample: its bin
//! mappers come from, per pixel, the codes the rows take (each non-zero
//! code listed in turn over 255 sample rows; code 0 is LightGBM's zero
//! bin), and with `min_data_in_bin` 1 and `max_bin` 255 LightGBM makes one
//! bin per code. The rows are then pushed in f32 chunks and LightGBM keeps
//! its own 8-bit binned copy. So LightGBM bins exactly as the codes do,
//! from a 255-row sample instead of up to 200,000 rows of P doubles.

use std::ffi::{c_int, CStr};
use std::sync::Arc;

use super::expert::LightGbmExpert;
use super::ffi::{c_string, Dataset, Trainer};
use super::params::LightGbmParams;
use crate::experts::binning::MAX_CODES;
use crate::experts::dataset::CodedRows;
use crate::threads::Cancel;
use crate::{FitError, Result};

/// Rows per chunk pushed into LightGBM's dataset: ≤ 4 MiB of f32 at
/// P = 4096.
const PUSH_VALUES: usize = 1 << 20;

/// Trains a LightGBM expert on `rows` with `params` (checked here);
/// `cancel` is checked before every tree.
///
/// Errors: no rows ([`FitError::TooFewRows`]), a bad parameter
/// ([`crate::Error::InvalidParameter`]), LightGBM refusing a call
/// ([`crate::Error::LightGbm`]), [`crate::Error::Cancelled`].
pub fn train(rows: &CodedRows, params: &LightGbmParams, cancel: &Cancel) -> Result<LightGbmExpert> {
    params.check()?;
    if rows.is_empty() {
        return Err(FitError::TooFewRows {
            model: "a LightGBM expert",
            set: "its training set",
            need: 1,
            rows: 0,
        }
        .into());
    }
    let text = c_string(&params.to_lightgbm(), "passing the parameters")?;
    let data = dataset(rows, &text)?;
    let mut trainer = Trainer::new(&data, &text)?;
    for _ in 0..params.n_estimators {
        cancel.check()?;
        if trainer.grow_tree()? {
            break;
        }
    }
    let model = trainer.model_string()?;
    // LightGBM's copy of the rows goes before the model is loaded again.
    drop(trainer);
    drop(data);
    LightGbmExpert::from_parts(Arc::clone(rows.bins()), model, params.threads)
}

/// LightGBM's dataset of `rows`: bin mappers from the codes present, then
/// the rows in chunks, then the targets.
fn dataset(rows: &CodedRows, params: &CStr) -> Result<Dataset> {
    let (n, p) = (rows.len(), rows.pixels());
    let (mut values, mut indices, sample_rows) = code_sample(rows.codes(), p);
    let mut data =
        Dataset::from_sampled_columns(&mut values, &mut indices, sample_rows, n, params)?;
    drop((values, indices));
    let chunk_rows = (PUSH_VALUES / p).max(1);
    let mut x: Vec<f32> = Vec::with_capacity(chunk_rows.min(n) * p);
    for (i, chunk) in rows.codes().chunks(chunk_rows * p).enumerate() {
        x.clear();
        x.extend(chunk.iter().map(|&c| f32::from(c)));
        data.push_rows(&x, p, i * chunk_rows)?;
    }
    // LightGBM's labels are f32.
    let y: Vec<f32> = rows.targets().iter().map(|&v| v as f32).collect();
    data.set_labels(&y)?;
    Ok(data)
}

/// The sample LightGBM finds its bins from, by pixel: the non-zero codes
/// the rows take, in ascending order, repeated to fill the sample rows
/// (so no pixel looks sparse to LightGBM unless it is), with the rows
/// holding code 0 left out (LightGBM's sparse-column convention: absent
/// means zero). Sample rows: 255, or `n` when fewer rows (every code a
/// pixel takes still appears: a pixel takes at most `n` codes).
fn code_sample(codes: &[u8], p: usize) -> (Vec<Vec<f64>>, Vec<Vec<c_int>>, usize) {
    let n = codes.len() / p;
    let mut present = vec![[0u64; 4]; p];
    for row in codes.chunks_exact(p) {
        for (seen, &c) in present.iter_mut().zip(row) {
            seen[usize::from(c >> 6)] |= 1 << (c & 63);
        }
    }
    let sample_rows = MAX_CODES.min(n);
    let mut values = Vec::with_capacity(p);
    let mut indices = Vec::with_capacity(p);
    for seen in &present {
        let taken: Vec<u8> = (0..=255u8)
            .filter(|&c| seen[usize::from(c >> 6)] & (1 << (c & 63)) != 0)
            .collect();
        let (mut v, mut i) = (Vec::new(), Vec::new());
        if !taken.is_empty() {
            for r in 0..sample_rows {
                let c = taken[r % taken.len()];
                if c != 0 {
                    v.push(f64::from(c));
                    // r < 255: fits.
                    i.push(r as c_int);
                }
            }
        }
        values.push(v);
        indices.push(i);
    }
    (values, indices, sample_rows)
}

#[cfg(test)]
mod tests {
    use super::code_sample;

    #[test]
    fn the_sample_lists_every_code_taken_and_leaves_zeros_out() {
        // 3 rows, 3 pixels: pixel 0 all zero, pixel 1 {0, 4}, pixel 2 {1, 2, 9}.
        let codes = [0, 0, 9, 0, 4, 1, 0, 4, 2];
        let (v, i, rows) = code_sample(&codes, 3);
        assert_eq!(rows, 3);
        assert!(v[0].is_empty() && i[0].is_empty());
        assert_eq!((v[1].as_slice(), i[1].as_slice()), (&[4.0][..], &[1][..]));
        assert_eq!(
            (v[2].as_slice(), i[2].as_slice()),
            (&[1.0, 2.0, 9.0][..], &[0, 1, 2][..])
        );
        let many: Vec<u8> = (0..1000).map(|r| (r % 7) as u8 * 30).collect();
        let (v, i, rows) = code_sample(&many, 1);
        assert_eq!(rows, 255);
        // Codes 30…180 each ~1/7 of the 255 rows, zeros left out.
        assert_eq!(v[0].len(), 255 - 37);
        assert_eq!(v[0].len(), i[0].len());
        assert_eq!(v[0][..6], [30.0, 60.0, 90.0, 120.0, 150.0, 180.0]);
        assert!(i[0].windows(2).all(|w| w[0] < w[1]) && *i[0].last().unwrap() < 255);
    }
}

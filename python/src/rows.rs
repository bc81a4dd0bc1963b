//! The library's per-row definitions, for rows held in numpy: the fold of
//! a row, its noise, its SNR key. With them a Python computation sees the
//! rows exactly as the pass does.

use gramstream::noise::NoiseModel;
use numpy::{PyArray1, PyArray2};
use pyo3::prelude::*;

use crate::convert::{counts1, dims, floats2, mat2, slice, vec1};
use crate::errors::{invalid, shape, IntoPy};

/// The fold of each row: ``rows`` are row numbers within shard
/// ``shard_index`` (the pass's fold assignment, from (seed, shard, row)).
#[pyfunction]
#[pyo3(signature = (rows, *, seed, shard_index, folds))]
pub(crate) fn folds_of<'py>(
    py: Python<'py>,
    rows: &Bound<'py, PyAny>,
    seed: u64,
    shard_index: u64,
    folds: usize,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    if !(1..=64).contains(&folds) {
        return Err(invalid(
            "folds",
            format!("{folds}: folds must be between 1 and 64"),
        ));
    }
    let v: Vec<i64> = counts1(rows, "rows")?
        .into_iter()
        .map(|r| gramstream::partition::fold_of(seed, shard_index, r, folds) as i64)
        .collect();
    Ok(PyArray1::from_vec(py, v))
}

/// The noisy spectra the pass sees: max(flux + L·error·z, 0), z drawn per
/// row from (seed, shard index, row) — rows ``first_row``, ``first_row + 1``,
/// … of shard ``shard_index``. ``noise=0`` returns the flux.
#[pyfunction]
#[pyo3(signature = (flux, error, *, noise, seed, shard_index, first_row=0))]
pub(crate) fn add_noise<'py>(
    py: Python<'py>,
    flux: &Bound<'py, PyAny>,
    error: &Bound<'py, PyAny>,
    noise: f64,
    seed: u64,
    shard_index: u64,
    first_row: u64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let model = NoiseModel::new(noise, seed).py_err()?;
    let (f, e) = pair(flux, error)?;
    let (n, p) = (dims(&f)[0], dims(&f)[1]);
    let mut out = slice(&f).to_vec();
    let err = slice(&e);
    py.detach(|| model.apply_rows(shard_index, first_row, p, &mut out, err, true));
    mat2(py, n, p, out)
}

/// The SNR key of each row: ‖flux‖₂ / (L‖error‖₂) of the noiseless flux
/// (L = ``noise``, 1 when it is 0), as the pass bins rows on SNR.
#[pyfunction]
#[pyo3(signature = (flux, error, noise=1.0))]
pub(crate) fn snr<'py>(
    py: Python<'py>,
    flux: &Bound<'py, PyAny>,
    error: &Bound<'py, PyAny>,
    noise: f64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    NoiseModel::new(noise, 0).py_err()?;
    let (f, e) = pair(flux, error)?;
    let p = dims(&f)[1].max(1);
    let v: Vec<f64> = slice(&f)
        .chunks(p)
        .zip(slice(&e).chunks(p))
        .map(|(a, b)| gramstream::rows::snr(a, b, noise))
        .collect();
    Ok(vec1(py, v))
}

/// Flux and error as 2-D float64 arrays of the same shape.
fn pair<'py>(
    flux: &Bound<'py, PyAny>,
    error: &Bound<'py, PyAny>,
) -> PyResult<(
    numpy::PyReadonlyArray2<'py, f64>,
    numpy::PyReadonlyArray2<'py, f64>,
)> {
    let (f, e) = (floats2(flux, "flux")?, floats2(error, "error")?);
    if dims(&f) != dims(&e) {
        return Err(shape(
            "error",
            format!("{:?} like flux", dims(&f)),
            format!("{:?}", dims(&e)),
        ));
    }
    Ok((f, e))
}

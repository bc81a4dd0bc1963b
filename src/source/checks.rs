//! The checks every row goes through before it is used, wherever it comes
//! from (a shard file, arrays fed by a caller): finite, not too large,
//! error ≥ 0, finite params. One definition, so a value refused when read
//! from a file is refused, with the same message, when fed from memory.

use std::path::PathBuf;

use super::{Chunk, NonFinitePolicy};
use crate::{Error, Result};

/// Flux, error and stored noisy values larger than this are refused (or
/// skipped) like non-finite ones: their squares, summed over the pixels and
/// rows of a pass, would overflow f64 — a flux of 1e200 is finite, its square
/// is not. At 1e100, even with noise of level ≤ 1e6 on such an error,
/// 2^20 pixels and 2^40 rows the sums stay below 1e240.
pub const MAX_SPECTRUM_VALUE: f64 = 1e100;

/// Where a chunk's rows come from, as errors name it, and what to do with a
/// bad row.
#[derive(Debug, Clone)]
pub(crate) struct RowChecks {
    pub(crate) path: PathBuf,
    pub(crate) flux: String,
    pub(crate) error: String,
    pub(crate) noisy: String,
    pub(crate) params: String,
    /// The names of the chunk's params columns, in order.
    pub(crate) columns: Vec<String>,
    pub(crate) policy: NonFinitePolicy,
    /// Pass non-finite params through: predict still predicts a row of
    /// unknown log g.
    pub(crate) lenient_params: bool,
}

impl RowChecks {
    /// Checks every row of `chunk`: an error naming the first bad value, or
    /// under [`NonFinitePolicy::SkipRow`] the row marked in `chunk.skip`.
    pub(crate) fn check(&self, chunk: &mut Chunk) -> Result<()> {
        for r in 0..chunk.rows {
            if let Some((dataset, column, problem)) = self.problem(chunk, r) {
                match self.policy {
                    NonFinitePolicy::Error => {
                        return Err(Error::BadValue {
                            path: self.path.clone(),
                            dataset: dataset.to_string(),
                            row: chunk.start + r,
                            column,
                            problem,
                        })
                    }
                    NonFinitePolicy::SkipRow => chunk.skip[r] = true,
                }
            }
        }
        Ok(())
    }

    /// The first bad value of row `r`: its dataset, column and what is wrong.
    fn problem(&self, chunk: &Chunk, r: usize) -> Option<(&str, String, String)> {
        let p = chunk.pixels;
        let flux = &chunk.flux[r * p..(r + 1) * p];
        let mut problem = spectrum_problem(&self.flux, "flux", flux);
        if problem.is_none() && !chunk.error.is_empty() {
            let error = &chunk.error[r * p..(r + 1) * p];
            problem = error
                .iter()
                .position(|v| !(*v >= 0.0 && *v <= MAX_SPECTRUM_VALUE))
                .map(|i| {
                    let e = error[i];
                    let what = if !e.is_finite() {
                        format!("non-finite error {e}")
                    } else if e < 0.0 {
                        format!("negative error {e}")
                    } else {
                        too_large("error", e)
                    };
                    (self.error.as_str(), format!("pixel {i}"), what)
                });
        }
        if problem.is_none() && !chunk.noisy.is_empty() {
            let noisy = &chunk.noisy[r * p..(r + 1) * p];
            problem = spectrum_problem(&self.noisy, "flux", noisy);
        }
        if problem.is_none() && !self.lenient_params {
            let params = chunk.params_row(r);
            problem = params.iter().position(|v| !v.is_finite()).map(|j| {
                (
                    self.params.as_str(),
                    self.columns[j].clone(),
                    format!("non-finite value {}", params[j]),
                )
            });
        }
        problem
    }
}

fn too_large(what: &str, v: f64) -> String {
    format!(
        "{what} {v:e} is too large (|value| > {MAX_SPECTRUM_VALUE:e}: its square would overflow the sums)"
    )
}

/// The first pixel of a spectrum that is non-finite or too large, if any.
fn spectrum_problem<'a>(
    dataset: &'a str,
    what: &str,
    values: &[f64],
) -> Option<(&'a str, String, String)> {
    let i = values
        .iter()
        .position(|v| v.is_nan() || v.abs() > MAX_SPECTRUM_VALUE)?;
    let v = values[i];
    let problem = if v.is_finite() {
        too_large(what, v)
    } else {
        format!("non-finite {what} {v}")
    };
    Some((dataset, format!("pixel {i}"), problem))
}

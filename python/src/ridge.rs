//! `Ridge`: every Ridge model of one group, from its statistics.

use gramstream::ridge::RidgePath;
use gramstream::stats::derive::Group;
use gramstream::stats::{StatsHeader, SuffStats};
use gramstream::Threads;
use numpy::PyArray1;
use pyo3::prelude::*;

use crate::args;
use crate::convert::{dims, floats1, floats2, slice, vec1};
use crate::errors::{shape, IntoPy};
use crate::statistics::Backing;

/// Every Ridge model of one group of rows, from its sufficient statistics.
///
/// One eigendecomposition of the group's centred covariance gives, for any
/// α ≥ 0, the minimiser of ‖y − Xw − b‖² + α‖w‖² (scikit-learn's
/// ``Ridge(alpha, fit_intercept=True)``), its training R², effective
/// degrees of freedom and GCV, and — with folds — the exact K-fold CV MSE,
/// all without the rows. Made by ``Statistics.ridge(group)``.
#[pyclass(module = "gramstream", name = "Ridge", frozen)]
pub struct Ridge {
    path: RidgePath,
    header: StatsHeader,
    total: SuffStats,
    folds: Vec<SuffStats>,
    label: String,
    threads: Threads,
}

impl Ridge {
    pub(crate) fn new(
        py: Python<'_>,
        data: &Backing,
        group: Group,
        threads: Threads,
    ) -> PyResult<Ridge> {
        let header = data.header().clone();
        let label = args::group_label(&header, group);
        py.detach(|| -> gramstream::Result<Ridge> {
            let (folds, total) = data.group_folds(group)?;
            let path = threads.install(|| {
                RidgePath::new(&total, &header.shift_x, header.shift_y, threads.par())
            })??;
            Ok(Ridge {
                path,
                header,
                total,
                folds,
                label,
                threads,
            })
        })
        .py_err()
    }
}

/// α as the caller gives it: one number, or a sequence (→ an array).
enum Alphas {
    One(f64),
    Many(Vec<f64>),
}

impl Alphas {
    fn extract(value: &Bound<'_, PyAny>) -> PyResult<Alphas> {
        if let Ok(a) = value.extract::<f64>() {
            args::alphas(&[a])?;
            return Ok(Alphas::One(a));
        }
        let arr = floats1(value, "alpha")?;
        let v = slice(&arr).to_vec();
        args::alphas(&v)?;
        Ok(Alphas::Many(v))
    }

    fn values(&self) -> Vec<f64> {
        match self {
            Alphas::One(a) => vec![*a],
            Alphas::Many(v) => v.clone(),
        }
    }

    /// The results, shaped as the α were given.
    fn output<'py>(&self, py: Python<'py>, v: Vec<f64>) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self {
            Alphas::One(_) => v[0].into_pyobject(py)?.into_any(),
            Alphas::Many(_) => vec1(py, v).into_any(),
        })
    }
}

#[pymethods]
impl Ridge {
    /// Rows of the group.
    #[getter]
    fn n(&self) -> u64 {
        self.path.n()
    }

    /// The group: ``"global"`` or ``"partition/bin name"``.
    #[getter]
    fn group(&self) -> &str {
        &self.label
    }

    /// Folds with rows (0 or 1: no cross-validation).
    #[getter]
    fn folds(&self) -> usize {
        self.folds.iter().filter(|f| f.n > 0).count()
    }

    /// Eigenvalues of the centred covariance Σ(x−x̄)(x−x̄)ᵀ, ascending.
    #[getter]
    fn eigenvalues<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        vec1(py, self.path.eigenvalues().to_vec())
    }

    /// Σ(y − ȳ)² over the group.
    #[getter]
    fn syy(&self) -> f64 {
        self.path.syy()
    }

    /// The model at ``alpha``: ``(w, intercept)``, w an array of P weights.
    /// α = 0 (least squares) needs a full-rank covariance (``FitError`` otherwise).
    fn coefficients<'py>(
        &self,
        py: Python<'py>,
        alpha: f64,
    ) -> PyResult<(Bound<'py, PyArray1<f64>>, f64)> {
        let c = self.path.coefficients(alpha).py_err()?;
        Ok((vec1(py, c.w), c.intercept))
    }

    /// Predictions of the model at ``alpha`` for the rows of ``x`` (N × P).
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        alpha: f64,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let c = self.path.coefficients(alpha).py_err()?;
        let x = floats2(x, "x")?;
        let p = dims(&x)[1];
        if p != c.w.len() {
            return Err(shape("x", format!("{} columns (pixels)", c.w.len()), p));
        }
        let values = slice(&x);
        let rows: Vec<f64> = py.detach(|| values.chunks(p.max(1)).map(|r| c.predict(r)).collect());
        Ok(vec1(py, rows))
    }

    /// Training R² at ``alpha`` (a number, or an array for a sequence of α).
    fn train_r2<'py>(
        &self,
        py: Python<'py>,
        alpha: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = Alphas::extract(alpha)?;
        let v = a.values().iter().map(|&x| self.path.train_r2(x)).collect();
        a.output(py, v)
    }

    /// Effective degrees of freedom Σλ/(λ+α).
    fn dof<'py>(&self, py: Python<'py>, alphas: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let a = Alphas::extract(alphas)?;
        let v = a.values().iter().map(|&x| self.path.dof(x)).collect();
        a.output(py, v)
    }

    /// GCV = n·RSS/(n − 1 − dof)² on the training rows (NaN when dof ≥ n − 1).
    fn gcv<'py>(&self, py: Python<'py>, alphas: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let a = Alphas::extract(alphas)?;
        let v = a.values().iter().map(|&x| self.path.gcv(x)).collect();
        a.output(py, v)
    }

    /// Exact K-fold CV MSE, as ``gramstream sweep --cv eigh`` computes it: each fold's
    /// model trained on the group's other folds and validated on the fold,
    /// from the statistics alone (one eigendecomposition per fold). NaN for
    /// α = 0, which CV does not use (a fold's complement may be singular).
    /// Needs statistics accumulated with ``folds`` ≥ 2.
    fn cv_mse<'py>(
        &self,
        py: Python<'py>,
        alphas: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = Alphas::extract(alphas)?;
        let values = a.values();
        let k = self.header.partitions.folds;
        if k < 2 {
            return Err(crate::errors::exception(
                "FitError",
                format!(
                    "exact K-fold CV needs statistics with folds ≥ 2; these have {k} (accumulate with folds=K)"
                ),
                vec![("kind", crate::errors::Attr::Str("NoFolds".into()))],
            ));
        }
        let positive: Vec<usize> = (0..values.len()).filter(|&i| values[i] > 0.0).collect();
        let grid: Vec<f64> = positive.iter().map(|&i| values[i]).collect();
        let mut out = vec![f64::NAN; values.len()];
        if !grid.is_empty() {
            let (header, total, folds, threads) =
                (&self.header, &self.total, &self.folds, self.threads);
            let (sse, rows) = py
                .detach(|| -> gramstream::Result<_> {
                    threads
                        .install(|| gramstream::sweep::cv_sse_eigh(header, total, folds, &grid))?
                })
                .py_err()?;
            for (j, &i) in positive.iter().enumerate() {
                out[i] = sse[j] / rows as f64;
            }
        }
        a.output(py, out)
    }

    fn __repr__(&self) -> String {
        format!(
            "<Ridge {}: {} rows × {} pixels, {} fold(s) with rows>",
            self.label,
            self.path.n(),
            self.header.pixels,
            self.folds()
        )
    }
}

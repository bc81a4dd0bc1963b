//! Ridge regression for every α from sufficient statistics.
//!
//! For one group of rows (a bin, a fold's complement, the global model) the
//! centred covariance C = Σ(x−x̄)(x−x̄)ᵀ and c = Σ(x−x̄)(y−ȳ) come from the
//! shifted sums of [`SuffStats`] without cancellation. One symmetric
//! eigendecomposition C = VΛVᵀ, z = Vᵀc, then for any α ≥ 0:
//!
//! * w(α) = V (Λ + αI)⁻¹ z, intercept b = ȳ − x̄ᵀw — the minimiser of
//!   ‖y − Xw − b‖² + α‖w‖², scikit-learn's `Ridge(alpha, fit_intercept=True)`;
//! * training RSS(α) = S_yy − Σ zᵢ² (λᵢ + 2α)/(λᵢ + α)² (S_yy = Σ(y−ȳ)²);
//! * effective degrees of freedom dof(α) = Σ λᵢ/(λᵢ + α);
//! * GCV(α) = n · RSS / (n − 1 − dof)² (the intercept counts as one degree);
//!
//! each in O(P) once z and Λ are known, and w in O(P²).
//!
//! Exact K-fold cross-validation ([`cv_sse`]) trains on total − fold and
//! validates on the fold's own sums: for a model (w, b) and rows summed
//! around (x₀, y₀) as u = x − x₀, v = y − y₀, with β = b − y₀ + x₀ᵀw,
//! SSE = Σv² − 2βΣv − 2wᵀΣuv + nβ² + 2β wᵀΣu + wᵀ(Σuuᵀ)w.

use faer::{Mat, Par};

use crate::linalg::eigh;
use crate::stats::{packed_index, SuffStats};
use crate::{Error, FitError, Result};

mod band;
pub use band::BandPath;

/// Weights and intercept of one Ridge model.
#[derive(Debug, Clone, PartialEq)]
pub struct Coefficients {
    /// α the model was solved for.
    pub alpha: f64,
    /// Weights, one per pixel.
    pub w: Vec<f64>,
    /// Intercept.
    pub intercept: f64,
}

impl Coefficients {
    /// Prediction for one row.
    pub fn predict(&self, x: &[f64]) -> f64 {
        self.intercept + x.iter().zip(&self.w).map(|(a, b)| a * b).sum::<f64>()
    }
}

/// Every Ridge model of one group of rows (see the module docs).
#[derive(Debug, Clone)]
pub struct RidgePath {
    n: u64,
    x_mean: Vec<f64>,
    y_mean: f64,
    lambda: Vec<f64>,
    v: Mat<f64>,
    z: Vec<f64>,
    syy: f64,
}

/// The centred covariance (full P × P, column-major), c, S_yy and the means
/// relative to the shift, from shifted sums.
pub(crate) fn centred(stats: &SuffStats) -> (Mat<f64>, Vec<f64>, f64, Vec<f64>, f64) {
    let p = stats.p;
    let n = stats.n as f64;
    let m: Vec<f64> = stats.sum_x.iter().map(|s| s / n).collect();
    let my = stats.sum_y / n;
    let cov = Mat::from_fn(p, p, |i, j| {
        let (a, b) = if i >= j { (i, j) } else { (j, i) };
        stats.xtx[packed_index(a, b)] - n * m[a] * m[b]
    });
    let c: Vec<f64> = stats
        .xty
        .iter()
        .zip(&m)
        .map(|(xy, mi)| xy - n * mi * my)
        .collect();
    let syy = stats.sum_yy - n * my * my;
    (cov, c, syy, m, my)
}

/// The centred sums of one group from its shifted sums, without the
/// cancellation of XᵀX − n·x̄x̄ᵀ: Σ(x−x̄)(x−x̄)ᵀ as a full P × P matrix,
/// Σ(x−x̄)(y−ȳ) and Σ(y−ȳ)². Divided by n (or n − 1) they are the
/// covariances; [`RidgePath::new`] decomposes the first. NaN for n = 0.
pub fn centred_sums(stats: &SuffStats) -> (Mat<f64>, Vec<f64>, f64) {
    let (cov, c, syy, _, _) = centred(stats);
    (cov, c, syy)
}

/// A centred model needs two rows (one is spent on the mean), and the shift
/// the sums were taken around has one value per pixel.
fn check_fit_inputs(stats: &SuffStats, shift_x: &[f64], model: &'static str) -> Result<()> {
    if stats.n < 2 {
        return Err(FitError::TooFewRows {
            model,
            set: "this group",
            need: 2,
            rows: stats.n,
        }
        .into());
    }
    if shift_x.len() != stats.p {
        return Err(Error::shape(
            "shift",
            format!("{} values (pixels)", stats.p),
            shift_x.len(),
        ));
    }
    Ok(())
}

impl RidgePath {
    /// Solves the eigendecomposition for statistics summed around
    /// (`shift_x`, `shift_y`). Needs at least two rows.
    pub fn new(stats: &SuffStats, shift_x: &[f64], shift_y: f64, par: Par) -> Result<Self> {
        check_fit_inputs(stats, shift_x, "a Ridge model")?;
        let p = stats.p;
        let (cov, c, syy, m, my) = centred(stats);
        let (lambda, v) = eigh(&cov, par)?;
        let mut z = vec![0.0; p];
        for (k, zk) in z.iter_mut().enumerate() {
            *zk = (0..p).map(|i| v[(i, k)] * c[i]).sum();
        }
        let x_mean = shift_x.iter().zip(&m).map(|(s, mi)| s + mi).collect();
        Ok(RidgePath {
            n: stats.n,
            x_mean,
            y_mean: shift_y + my,
            lambda,
            v,
            z,
            syy,
        })
    }

    /// Rows.
    pub fn n(&self) -> u64 {
        self.n
    }

    /// Eigenvalues of the centred covariance, ascending.
    pub fn eigenvalues(&self) -> &[f64] {
        &self.lambda
    }

    /// Eigenvectors (columns), matching [`Self::eigenvalues`].
    pub fn eigenvectors(&self) -> faer::MatRef<'_, f64> {
        self.v.as_ref()
    }

    /// Mean of x.
    pub(crate) fn x_mean(&self) -> &[f64] {
        &self.x_mean
    }

    /// Mean of y.
    pub(crate) fn y_mean(&self) -> f64 {
        self.y_mean
    }

    /// Σ(y − ȳ)².
    pub fn syy(&self) -> f64 {
        self.syy
    }

    /// Whether the covariance is numerically singular (α = 0 then has no
    /// unique solution).
    pub(crate) fn is_rank_deficient(&self) -> bool {
        rank_deficient(&self.lambda)
    }

    fn check_alpha(&self, alpha: f64) -> Result<()> {
        if !alpha.is_finite() || alpha < 0.0 {
            return Err(Error::InvalidParameter {
                name: "alpha",
                problem: format!("α must be finite and ≥ 0, got {alpha}"),
            });
        }
        if alpha == 0.0 && self.is_rank_deficient() {
            return Err(FitError::Singular {
                rows: self.n,
                pixels: self.lambda.len(),
            }
            .into());
        }
        Ok(())
    }

    /// The model for `alpha`.
    pub fn coefficients(&self, alpha: f64) -> Result<Coefficients> {
        self.check_alpha(alpha)?;
        let p = self.lambda.len();
        let scaled: Vec<f64> = self
            .z
            .iter()
            .zip(&self.lambda)
            .map(|(z, l)| z / (l + alpha))
            .collect();
        let mut w = vec![0.0; p];
        for (k, s) in scaled.iter().enumerate() {
            let col = self.v.col(k);
            for (i, wi) in w.iter_mut().enumerate() {
                *wi += col[i] * s;
            }
        }
        let intercept = self.y_mean - self.x_mean.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
        Ok(Coefficients {
            alpha,
            w,
            intercept,
        })
    }

    /// Training residual sum of squares at `alpha`.
    pub(crate) fn train_rss(&self, alpha: f64) -> f64 {
        let fit: f64 = self
            .z
            .iter()
            .zip(&self.lambda)
            .map(|(z, l)| z * z * (l + 2.0 * alpha) / ((l + alpha) * (l + alpha)))
            .sum();
        rss_of(self.syy, fit)
    }

    /// Training R² at `alpha`.
    pub fn train_r2(&self, alpha: f64) -> f64 {
        1.0 - self.train_rss(alpha) / self.syy
    }

    /// Effective degrees of freedom Σλ/(λ+α) at `alpha`.
    pub fn dof(&self, alpha: f64) -> f64 {
        dof_at(&self.lambda, alpha)
    }

    /// GCV at `alpha`: n·RSS/(n − 1 − dof)² (NaN when dof ≥ n − 1).
    pub fn gcv(&self, alpha: f64) -> f64 {
        gcv_at(self.n, self.train_rss(alpha), self.dof(alpha))
    }

    /// The models on `alphas` with their training R², dof and GCV; α = 0
    /// is left out when the covariance is singular. The weights come from
    /// [`Self::weights`].
    pub fn grid(&self, alphas: &[f64], par: Par) -> Grid {
        let usable = usable_alphas(&self.lambda, alphas);
        let ua: Vec<f64> = usable.iter().map(|&a| alphas[a]).collect();
        let (w, intercept) = self.weights(&ua, par);
        Grid {
            usable,
            w,
            intercept,
            train_r2: ua.iter().map(|&a| self.train_r2(a)).collect(),
            dof: ua.iter().map(|&a| self.dof(a)).collect(),
            gcv: ua.iter().map(|&a| self.gcv(a)).collect(),
        }
    }

    /// Weights (P × α, one column per α) and intercepts for many α at once:
    /// one matrix product V · [zₖ/(λₖ+α)], BLAS-3 instead of one
    /// matrix–vector product per α. Every α must be > 0, or 0 on a
    /// full-rank covariance (check with [`Self::coefficients`] first).
    pub fn weights(&self, alphas: &[f64], par: Par) -> (Mat<f64>, Vec<f64>) {
        let p = self.lambda.len();
        let scaled = Mat::from_fn(p, alphas.len(), |k, a| {
            self.z[k] / (self.lambda[k] + alphas[a])
        });
        let mut w = Mat::<f64>::zeros(p, alphas.len());
        faer::linalg::matmul::matmul(
            w.as_mut(),
            faer::Accum::Replace,
            self.v.as_ref(),
            scaled.as_ref(),
            1.0,
            par,
        );
        let intercept = (0..alphas.len())
            .map(|a| {
                self.y_mean
                    - self
                        .x_mean
                        .iter()
                        .zip(w.col(a).iter())
                        .map(|(m, w)| m * w)
                        .sum::<f64>()
            })
            .collect();
        (w, intercept)
    }
}

/// One group's models on a grid of α, with what the sweep reports of each:
/// from [`RidgePath::grid`] or [`BandPath::new`].
#[derive(Debug, Clone)]
pub struct Grid {
    /// The indices into the grid that have a model: α = 0 is left out when
    /// the covariance is singular (it has no unique solution).
    pub usable: Vec<usize>,
    /// Weights, P × `usable.len()`, one column per usable α.
    pub w: Mat<f64>,
    /// Intercepts, one per usable α.
    pub intercept: Vec<f64>,
    /// Training R², one per usable α.
    pub train_r2: Vec<f64>,
    /// Effective degrees of freedom, one per usable α.
    pub dof: Vec<f64>,
    /// GCV, one per usable α.
    pub gcv: Vec<f64>,
}

/// Whether a covariance with eigenvalues `lambda` is numerically singular:
/// some eigenvalue within P·ε of the largest.
fn rank_deficient(lambda: &[f64]) -> bool {
    let max = lambda.iter().fold(0.0f64, |m, l| m.max(l.abs()));
    let tol = max * lambda.len() as f64 * f64::EPSILON;
    lambda.iter().any(|&l| l <= tol)
}

/// The indices of `alphas` that have a model: α = 0 only on a full-rank
/// covariance.
fn usable_alphas(lambda: &[f64], alphas: &[f64]) -> Vec<usize> {
    let singular = rank_deficient(lambda);
    (0..alphas.len())
        .filter(|&a| alphas[a] > 0.0 || !singular)
        .collect()
}

/// Training RSS = S_yy − the fitted sum of squares (wᵀc + α‖w‖²), never
/// below zero (rounding can take a near-perfect fit there).
fn rss_of(syy: f64, fit: f64) -> f64 {
    (syy - fit).max(0.0)
}

/// Effective degrees of freedom Σλ/(λ+α) (eigenvalues rounded below zero
/// count as zero).
fn dof_at(lambda: &[f64], alpha: f64) -> f64 {
    lambda
        .iter()
        .map(|&l| {
            if l + alpha > 0.0 {
                l.max(0.0) / (l + alpha)
            } else {
                0.0
            }
        })
        .sum()
}

/// GCV = n·RSS/(n − 1 − dof)² (the intercept counts as one degree); NaN
/// when dof ≥ n − 1.
fn gcv_at(n: u64, rss: f64, dof: f64) -> f64 {
    let n = n as f64;
    let d = n - 1.0 - dof;
    if d <= 0.0 {
        return f64::NAN;
    }
    n * rss / (d * d)
}

/// One group's α path, by whichever factorization solved it.
#[derive(Debug)]
pub enum GroupPath {
    /// The eigendecomposition: every α, the eigenvectors (PCA, PCG's
    /// preconditioner).
    Eigen(RidgePath),
    /// The band reduction: the models on one α grid and the eigenvalues.
    Band(BandPath),
}

impl GroupPath {
    /// The eigendecomposition, when the path has one.
    pub fn eigen(&self) -> Option<&RidgePath> {
        match self {
            GroupPath::Eigen(p) => Some(p),
            GroupPath::Band(_) => None,
        }
    }

    /// Mean of y.
    pub(crate) fn y_mean(&self) -> f64 {
        match self {
            GroupPath::Eigen(p) => p.y_mean(),
            GroupPath::Band(b) => b.y_mean,
        }
    }

    /// Σ(y − ȳ)².
    pub fn syy(&self) -> f64 {
        match self {
            GroupPath::Eigen(p) => p.syy(),
            GroupPath::Band(b) => b.syy,
        }
    }

    /// The models on `alphas` ([`RidgePath::grid`]). A band path holds the
    /// grid it was solved on, which must be `alphas`.
    pub fn into_grid(self, alphas: &[f64], par: Par) -> Grid {
        match self {
            GroupPath::Eigen(p) => p.grid(alphas, par),
            GroupPath::Band(b) => {
                assert_eq!(
                    b.alphas, alphas,
                    "a band path answers the grid it was solved on"
                );
                b.grid
            }
        }
    }
}

/// Ordinary least squares (α = 0) with intercept, better conditioned than
/// [`RidgePath::coefficients`]`(0.0)` when the features' scales differ by
/// many orders of magnitude (polynomial terms, the NIST StRD Pontius and
/// Wampler sets): the centred covariance is equilibrated by exact powers of
/// two, D C D with D = diag(2^−round(log₂ √C_ii)), before its
/// eigendecomposition, and w = D w_s. (Ridge with α > 0 cannot use this: its
/// penalty is not invariant under column scaling.) Errors when the scaled
/// covariance is still singular to working precision.
pub fn least_squares(
    stats: &SuffStats,
    shift_x: &[f64],
    shift_y: f64,
    par: Par,
) -> Result<Coefficients> {
    check_fit_inputs(stats, shift_x, "least squares")?;
    let p = stats.p;
    let (cov, c, _, m, my) = centred(stats);
    let d: Vec<f64> = (0..p)
        .map(|i| {
            let v = cov[(i, i)];
            if v > 0.0 && v.is_finite() {
                (2.0f64).powi(-(v.sqrt().log2().round() as i32))
            } else {
                1.0
            }
        })
        .collect();
    let scaled = Mat::from_fn(p, p, |i, j| d[i] * cov[(i, j)] * d[j]);
    // faer's decomposition, sequential (reproducible): on the NIST StRD sets
    // it kept 0.3–0.7 more digits than LAPACK dsyevd (tests/nist.rs).
    let (lambda, v) = crate::linalg::eigh_with(&scaled, crate::linalg::Backend::Faer, Par::Seq)?;
    let _ = par;
    let max = (0..p).fold(0.0f64, |a, k| a.max(lambda[k].abs()));
    if (0..p).any(|k| lambda[k] <= max * p as f64 * f64::EPSILON) {
        // Singular even after the diagonal scaling.
        return Err(FitError::Singular {
            rows: stats.n,
            pixels: p,
        }
        .into());
    }
    let cs: Vec<f64> = c.iter().zip(&d).map(|(a, b)| a * b).collect();
    let mut ws = vec![0.0; p];
    for k in 0..p {
        let col = v.col(k);
        let z: f64 = (0..p).map(|i| col[i] * cs[i]).sum::<f64>() / lambda[k];
        for (i, wi) in ws.iter_mut().enumerate() {
            *wi += col[i] * z;
        }
    }
    let w: Vec<f64> = ws.iter().zip(&d).map(|(a, b)| a * b).collect();
    let x_mean: Vec<f64> = shift_x.iter().zip(&m).map(|(s, mi)| s + mi).collect();
    let intercept = shift_y + my - x_mean.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
    Ok(Coefficients {
        alpha: 0.0,
        w,
        intercept,
    })
}

/// The Ridge model at one α > 0 by a Cholesky solve of the centred
/// (C + αI) w = c: one P³/3 factorisation where [`RidgePath::new`]'s
/// eigendecomposition costs several times more — what a single α needs
/// (the tree experts' validation fold). α = 0 or a factorisation that
/// fails goes through the eigendecomposition.
pub fn fit_at(
    stats: &SuffStats,
    shift_x: &[f64],
    shift_y: f64,
    alpha: f64,
    par: Par,
) -> Result<Coefficients> {
    check_fit_inputs(stats, shift_x, "a Ridge model")?;
    if !(alpha.is_finite() && alpha > 0.0) {
        return RidgePath::new(stats, shift_x, shift_y, par)?.coefficients(alpha);
    }
    let p = stats.p;
    let (mut cov, c, _, m, my) = centred(stats);
    for i in 0..p {
        cov[(i, i)] += alpha;
    }
    let rhs = Mat::from_fn(p, 1, |i, _| c[i]);
    let w: Vec<f64> = match cov.llt(faer::Side::Lower) {
        Ok(llt) => {
            use faer::linalg::solvers::Solve;
            let sol = llt.solve(&rhs);
            (0..p).map(|i| sol[(i, 0)]).collect()
        }
        Err(_) => return RidgePath::new(stats, shift_x, shift_y, par)?.coefficients(alpha),
    };
    let intercept = shift_y + my
        - shift_x
            .iter()
            .zip(&m)
            .zip(&w)
            .map(|((s, mi), wi)| (s + mi) * wi)
            .sum::<f64>();
    Ok(Coefficients {
        alpha,
        w,
        intercept,
    })
}

/// Sum of squared errors of `model` on rows summed as `stats` around
/// (`shift_x`, `shift_y`), without the rows (see the module docs).
pub(crate) fn sse_from_stats(
    model: &Coefficients,
    stats: &SuffStats,
    shift_x: &[f64],
    shift_y: f64,
) -> f64 {
    let p = stats.p;
    let w = &model.w;
    let n = stats.n as f64;
    let beta = model.intercept - shift_y + shift_x.iter().zip(w).map(|(a, b)| a * b).sum::<f64>();
    let w_su: f64 = w.iter().zip(&stats.sum_x).map(|(a, b)| a * b).sum();
    let w_suv: f64 = w.iter().zip(&stats.xty).map(|(a, b)| a * b).sum();
    let mut quad = 0.0;
    for i in 0..p {
        let row = i * (i + 1) / 2;
        let mut s = 0.0;
        for j in 0..i {
            s += stats.xtx[row + j] * w[j];
        }
        quad += w[i] * (2.0 * s + stats.xtx[row + i] * w[i]);
    }
    let sse = stats.sum_yy - 2.0 * beta * stats.sum_y - 2.0 * w_suv
        + n * beta * beta
        + 2.0 * beta * w_su
        + quad;
    sse.max(0.0)
}

/// Exact K-fold cross-validation: for each fold, train on `total − fold`
/// and validate on the fold. Returns, per α, the summed validation SSE and
/// the rows validated (MSE = SSE / rows). Folds with no rows are skipped;
/// a training complement with fewer than two rows is an error.
pub fn cv_sse(
    total: &SuffStats,
    folds: &[SuffStats],
    shift_x: &[f64],
    shift_y: f64,
    alphas: &[f64],
    par: Par,
) -> Result<(Vec<f64>, u64)> {
    let mut sse = vec![0.0; alphas.len()];
    let mut rows = 0;
    for fold in folds.iter().filter(|f| f.n > 0) {
        let mut train = total.clone();
        train.sub(fold)?;
        let path = RidgePath::new(&train, shift_x, shift_y, par)?;
        for (s, &alpha) in sse.iter_mut().zip(alphas) {
            let model = path.coefficients(alpha)?;
            *s += sse_from_stats(&model, fold, shift_x, shift_y);
        }
        rows += fold.n;
    }
    Ok((sse, rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Accumulator;
    use faer::linalg::solvers::Solve;
    use rand::{Rng, SeedableRng};

    fn data(n: usize, p: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<f64>) {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let w: Vec<f64> = (0..p).map(|i| (i as f64 * 0.7).sin()).collect();
        let xs: Vec<Vec<f64>> = (0..n)
            .map(|_| (0..p).map(|_| 5.0 + rng.random::<f64>()).collect())
            .collect();
        let ys = xs
            .iter()
            .map(|x| {
                2.0 + x.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() + rng.random::<f64>() * 0.3
            })
            .collect();
        (xs, ys)
    }

    fn stats(xs: &[Vec<f64>], ys: &[f64], shift: &[f64], sy: f64) -> SuffStats {
        let mut acc = Accumulator::new(shift.len(), 16);
        for (x, y) in xs.iter().zip(ys) {
            acc.push_shifted(x, shift, y - sy, Par::Seq);
        }
        acc.finish(Par::Seq)
    }

    /// Direct solve of (XcᵀXc + αI) w = Xcᵀyc with centred data.
    fn direct(xs: &[Vec<f64>], ys: &[f64], alpha: f64) -> (Vec<f64>, f64) {
        let (n, p) = (xs.len(), xs[0].len());
        let xm: Vec<f64> = (0..p)
            .map(|j| xs.iter().map(|x| x[j]).sum::<f64>() / n as f64)
            .collect();
        let ym = ys.iter().sum::<f64>() / n as f64;
        let a = Mat::from_fn(p, p, |i, j| {
            xs.iter()
                .map(|x| (x[i] - xm[i]) * (x[j] - xm[j]))
                .sum::<f64>()
                + if i == j { alpha } else { 0.0 }
        });
        let b = Mat::from_fn(p, 1, |i, _| {
            xs.iter()
                .zip(ys)
                .map(|(x, y)| (x[i] - xm[i]) * (y - ym))
                .sum::<f64>()
        });
        let w = a.partial_piv_lu().solve(&b);
        let w: Vec<f64> = (0..p).map(|i| w[(i, 0)]).collect();
        let b0 = ym - xm.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
        (w, b0)
    }

    #[test]
    fn coefficients_match_a_direct_solve_for_every_alpha() {
        for &(n, p) in &[(40, 5), (200, 17), (30, 40)] {
            let (xs, ys) = data(n, p, 1);
            let shift: Vec<f64> = xs[0].clone();
            let s = stats(&xs, &ys, &shift, ys[0]);
            let path = RidgePath::new(&s, &shift, ys[0], Par::Seq).unwrap();
            for alpha in [1e-2, 1.0, 1e3, 1e6] {
                let m = path.coefficients(alpha).unwrap();
                let (w, b) = direct(&xs, &ys, alpha);
                // One α by Cholesky: the same model.
                let c = fit_at(&s, &shift, ys[0], alpha, Par::Seq).unwrap();
                let scale_c = m.w.iter().fold(1e-300f64, |s, v| s.max(v.abs()));
                for (a, e) in c.w.iter().zip(&m.w) {
                    assert!(
                        (a - e).abs() <= 1e-8 * scale_c,
                        "fit_at α={alpha}: {a} vs {e}"
                    );
                }
                assert!((c.intercept - m.intercept).abs() <= 1e-8 * (1.0 + b.abs()));
                let scale = w.iter().fold(1e-300f64, |s, v| s.max(v.abs()));
                for (a, e) in m.w.iter().zip(&w) {
                    assert!(
                        (a - e).abs() <= 1e-8 * scale,
                        "n={n} p={p} α={alpha}: {a} vs {e}"
                    );
                }
                assert!((m.intercept - b).abs() <= 1e-8 * (1.0 + b.abs()));
                // Training RSS from the path equals the RSS of the predictions.
                let rss: f64 = xs
                    .iter()
                    .zip(&ys)
                    .map(|(x, y)| (y - m.predict(x)).powi(2))
                    .sum();
                assert!(
                    (path.train_rss(alpha) - rss).abs() <= 1e-8 * (1.0 + rss),
                    "{} vs {rss}",
                    path.train_rss(alpha)
                );
                // And so does the SSE computed from the sums alone.
                let sse = sse_from_stats(&m, &s, &shift, ys[0]);
                assert!((sse - rss).abs() <= 1e-7 * (1.0 + rss), "{sse} vs {rss}");
            }
        }
    }

    #[test]
    fn least_squares_needs_full_rank() {
        let (xs, ys) = data(10, 20, 2);
        let shift = vec![5.0; 20];
        let s = stats(&xs, &ys, &shift, 0.0);
        let path = RidgePath::new(&s, &shift, 0.0, Par::Seq).unwrap();
        assert!(path.is_rank_deficient());
        let err = path.coefficients(0.0).unwrap_err().to_string();
        assert!(err.contains("singular"), "{err}");
        assert!(path.coefficients(1.0).is_ok());
        let (xs, ys) = data(100, 4, 3);
        let s = stats(&xs, &ys, &[5.0; 4], 0.0);
        let ols = RidgePath::new(&s, &[5.0; 4], 0.0, Par::Seq)
            .unwrap()
            .coefficients(0.0)
            .unwrap();
        let (w, _) = direct(&xs, &ys, 0.0);
        assert!(ols.w.iter().zip(&w).all(|(a, b)| (a - b).abs() < 1e-9));
        assert!(RidgePath::new(&SuffStats::zeros(3), &[0.0; 3], 0.0, Par::Seq).is_err());
    }

    /// A caller (the Python package, a job script) tells a bin that cannot
    /// be fitted from a bad argument by the error's kind, not its text.
    #[test]
    fn fit_failures_are_fit_errors_with_their_counts() {
        let (xs, ys) = data(10, 20, 2);
        let shift = vec![5.0; 20];
        let s = stats(&xs, &ys, &shift, 0.0);
        let path = RidgePath::new(&s, &shift, 0.0, Par::Seq).unwrap();
        match path.coefficients(0.0) {
            Err(Error::Fit(FitError::Singular {
                rows: 10,
                pixels: 20,
            })) => {}
            other => panic!("{other:?}"),
        }
        match least_squares(&s, &shift, 0.0, Par::Seq) {
            Err(Error::Fit(FitError::Singular {
                rows: 10,
                pixels: 20,
            })) => {}
            other => panic!("{other:?}"),
        }
        let (xs, ys) = data(1, 3, 2);
        let one = stats(&xs, &ys, &[5.0; 3], 0.0);
        for err in [
            RidgePath::new(&one, &[5.0; 3], 0.0, Par::Seq).map(|_| ()),
            least_squares(&one, &[5.0; 3], 0.0, Par::Seq).map(|_| ()),
        ] {
            match err {
                Err(Error::Fit(FitError::TooFewRows {
                    need: 2, rows: 1, ..
                })) => {}
                other => panic!("{other:?}"),
            }
        }
        match path.coefficients(-1.0) {
            Err(Error::InvalidParameter { name: "alpha", .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cv_matches_explicit_refits() {
        let (xs, ys) = data(90, 6, 4);
        let shift = xs[3].clone();
        let folds: Vec<usize> = (0..90).map(|i| (i * 7) % 3).collect();
        let total = stats(&xs, &ys, &shift, 1.0);
        let per_fold: Vec<SuffStats> = (0..3)
            .map(|k| {
                let (fx, fy): (Vec<_>, Vec<_>) = xs
                    .iter()
                    .zip(&ys)
                    .zip(&folds)
                    .filter(|(_, &f)| f == k)
                    .map(|((x, y), _)| (x.clone(), *y))
                    .unzip();
                stats(&fx, &fy, &shift, 1.0)
            })
            .collect();
        let alphas = [0.1, 10.0, 1e4];
        let (sse, rows) = cv_sse(&total, &per_fold, &shift, 1.0, &alphas, Par::Seq).unwrap();
        assert_eq!(rows, 90);
        for (a, &alpha) in alphas.iter().enumerate() {
            let mut want = 0.0;
            for k in 0..3 {
                let (tx, ty): (Vec<_>, Vec<_>) = xs
                    .iter()
                    .zip(&ys)
                    .zip(&folds)
                    .filter(|(_, &f)| f != k)
                    .map(|((x, y), _)| (x.clone(), *y))
                    .unzip();
                let (w, b) = direct(&tx, &ty, alpha);
                for ((x, y), _) in xs.iter().zip(&ys).zip(&folds).filter(|(_, &f)| f == k) {
                    let pred = b + x.iter().zip(&w).map(|(p, q)| p * q).sum::<f64>();
                    want += (y - pred).powi(2);
                }
            }
            assert!(
                (sse[a] - want).abs() <= 1e-8 * want,
                "α={alpha}: {} vs {want}",
                sse[a]
            );
        }
    }

    #[test]
    fn dof_and_gcv_limits() {
        let (xs, ys) = data(50, 5, 5);
        let s = stats(&xs, &ys, &[5.0; 5], 0.0);
        let path = RidgePath::new(&s, &[5.0; 5], 0.0, Par::Seq).unwrap();
        assert!((path.dof(0.0) - 5.0).abs() < 1e-9);
        assert!(path.dof(1e12) < 1e-6);
        assert!((path.train_rss(1e15) - path.syy()).abs() < 1e-6 * path.syy());
        assert!(path.gcv(1.0).is_finite());
    }
}

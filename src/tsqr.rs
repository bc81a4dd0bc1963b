//! Streaming QR (TSQR) of the rows [1, x − x₀, y − y₀]: least squares and
//! Ridge from the triangular factor R, better conditioned than the Gram.
//!
//! The normal equations behind [`crate::ridge`] square the condition number
//! κ of the (centred) design: from the sums alone an α = 0 solution keeps at
//! best about 16 − 2·log₁₀ κ digits. Householder QR of the data itself keeps
//! about 16 − log₁₀ κ. [`Tsqr`] holds the upper-triangular R of the stacked
//! matrix A = [1, X − x₀, y − y₀] (k = P + 2 columns; P + 1 without the
//! intercept column) in one pass and bounded memory: rows are staged in
//! blocks, and each full block is folded in by a QR of [R; block]. Since
//! AᵀA = RᵀR, R carries everything the Gram does, and two accumulators
//! merge like the statistics: the R of the union is the R of [R₁; R₂]
//! ([`Tsqr::merge`]).
//!
//! **Solving.** With the intercept column first, R = [[r₀₀, r₀ₓᵀ, r₀ᵧ],
//! [0, Rₓₓ, rₓᵧ], [0, 0, rᵧᵧ]] and ‖y − b − Xw‖² = (r₀₀b + r₀ₓᵀw − r₀ᵧ)² +
//! ‖Rₓₓw − rₓᵧ‖² + rᵧᵧ². The intercept b is free, so the first term is
//! zeroed and w minimises ‖Rₓₓw − rₓᵧ‖² + α‖w‖²: at α = 0 by back
//! substitution, at α > 0 by the QR of [Rₓₓ, rₓᵧ; √α·I, 0] (the penalty
//! rows cover the weights only, not the intercept): the minimiser of
//! ‖y − Xw − b‖² + α‖w‖², scikit-learn's `Ridge(alpha, fit_intercept=True)`
//! and [`crate::ridge::RidgePath::coefficients`]. Without the intercept
//! column ([`Tsqr::without_intercept`], no shift) the model is y = Xw.
//! Householder QR is invariant under power-of-two column scaling, so
//! polynomial columns of very different sizes need no equilibration.
//!
//! **Costs.** A block of m rows is folded by faer's dense Householder QR of
//! the (k + m) × k stack: about 2k²(k + m) − ⅔k³ flops, i.e. 2k²(1 + k/m) −
//! ⅔k³/m per row — O(k²) per row like the Gram (whose rank-m update costs
//! k² per row), ≈ 3.3× its flops at the default m = max(k, 64) and → 2× for
//! m ≫ k. Memory: the (k + m) × k stack (R and the staged rows, f64, full
//! storage) plus faer's QR workspace — ≈ 2k² f64 at the default block,
//! 4× the packed Gram. Solving costs O(P²) at α = 0 and O(P³) per α > 0
//! (one QR each; [`crate::ridge::RidgePath`] gives every α from one
//! eigendecomposition).
//!
//! This is a library option: the accumulation pass (`stats::pass`) still
//! accumulates Gram statistics; a caller who wants the better-conditioned
//! α = 0 path feeds the same rows to a [`Tsqr`] (NIST StRD accuracy:
//! `tests/nist.rs`).

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::qr::no_pivoting::factor;
use faer::{Mat, MatMut, MatRef, Par};

use crate::ridge::Coefficients;
use crate::{Error, Result};

/// Relative size below which a diagonal entry of R, against the norm of its
/// column, makes the design rank-deficient at α = 0 (times k·ε): above the
/// rounding noise of an exactly dependent column, far below the smallest
/// ratio of NIST's Filip (> 10⁶·k·ε, solved to 6.8 digits).
const RANK_TOL: f64 = 10.0;

/// A streaming QR accumulator (see the module docs).
#[derive(Debug, Clone)]
pub struct Tsqr {
    p: usize,
    intercept: bool,
    shift_x: Vec<f64>,
    shift_y: f64,
    /// Rows staged per fold.
    block: usize,
    /// (k + block) × k: R in the top k rows (zero below its diagonal), the
    /// staged rows below.
    stack: Mat<f64>,
    staged: usize,
    n: u64,
}

impl Tsqr {
    /// An empty accumulator for P = `shift_x.len()` features, with an
    /// intercept, summing rows around (`shift_x`, `shift_y`) (the pass's
    /// shift, or any value near the data).
    pub fn new(shift_x: &[f64], shift_y: f64) -> Self {
        Self::build(shift_x.to_vec(), shift_y, true)
    }

    /// An empty accumulator for the model y = Xw without intercept (the
    /// rows are taken as they are: no shift).
    pub fn without_intercept(p: usize) -> Self {
        Self::build(vec![0.0; p], 0.0, false)
    }

    fn build(shift_x: Vec<f64>, shift_y: f64, intercept: bool) -> Self {
        let p = shift_x.len();
        let k = p + 1 + intercept as usize;
        let block = k.max(64);
        Tsqr {
            p,
            intercept,
            shift_x,
            shift_y,
            block,
            stack: Mat::zeros(k + block, k),
            staged: 0,
            n: 0,
        }
    }

    /// Stages `rows` rows per fold (≥ 1; default max(k, 64)): larger blocks
    /// cost fewer flops per row and more memory (see the module docs).
    /// Folds the rows staged so far first.
    pub fn with_block_rows(mut self, rows: usize, par: Par) -> Self {
        self.flush(par);
        let k = self.k();
        let r = self.stack.as_ref().submatrix(0, 0, k, k).to_owned();
        self.block = rows.max(1);
        self.stack = Mat::zeros(k + self.block, k);
        self.stack.as_mut().submatrix_mut(0, 0, k, k).copy_from(&r);
        self
    }

    /// Columns of A: P + 2 with the intercept, P + 1 without.
    pub fn k(&self) -> usize {
        self.p + 1 + self.intercept as usize
    }

    /// Number of features P: the length of each `x` that [`Tsqr::push`] takes.
    pub fn p(&self) -> usize {
        self.p
    }

    /// Rows pushed (merged ones included).
    pub fn n(&self) -> u64 {
        self.n
    }

    /// Whether the model has an intercept.
    pub fn has_intercept(&self) -> bool {
        self.intercept
    }

    /// x₀, subtracted from each row's x before staging (zeros without intercept).
    pub fn shift_x(&self) -> &[f64] {
        &self.shift_x
    }

    /// y₀, subtracted from each y before staging (0 without intercept).
    pub fn shift_y(&self) -> f64 {
        self.shift_y
    }

    /// Stages one row (x, y) as given (the accumulator subtracts its shift)
    /// and folds the block when it is full.
    pub fn push(&mut self, x: &[f64], y: f64, par: Par) -> Result<()> {
        if x.len() != self.p {
            return Err(Error::shape(
                "QR row",
                format!("{} values (features)", self.p),
                x.len(),
            ));
        }
        let o = self.intercept as usize;
        let (sx, sy) = (&self.shift_x, self.shift_y);
        let i = self.k() + self.staged;
        let mut s = self.stack.as_mut();
        if self.intercept {
            s[(i, 0)] = 1.0;
        }
        for (j, (v, m)) in x.iter().zip(sx).enumerate() {
            s[(i, o + j)] = v - m;
        }
        s[(i, o + self.p)] = y - sy;
        self.n += 1;
        self.after_stage(par);
        Ok(())
    }

    fn after_stage(&mut self, par: Par) {
        self.staged += 1;
        if self.staged == self.block {
            self.flush(par);
        }
    }

    /// Stages one row of A as it is (a row of another R).
    fn stage_raw(&mut self, row: MatRef<'_, f64>, par: Par) {
        let i = self.k() + self.staged;
        self.stack.as_mut().row_mut(i).copy_from(row.row(0));
        self.after_stage(par);
    }

    /// Folds the staged rows into R: R ← the R of [R; staged rows], with a
    /// non-negative diagonal.
    pub(crate) fn flush(&mut self, par: Par) {
        if self.staged == 0 {
            return;
        }
        let k = self.k();
        let rows = k + self.staged;
        qr_r_in_place(self.stack.as_mut().submatrix_mut(0, 0, rows, k), par);
        self.staged = 0;
    }

    /// Adds the rows of `other` (same features, intercept and shift): the R
    /// of the union from [R; R_other] and `other`'s staged rows.
    pub fn merge(&mut self, other: &Tsqr, par: Par) -> Result<()> {
        if other.p != self.p || other.intercept != self.intercept {
            return Err(Error::shape(
                "merging QR accumulators",
                format!("{} features (intercept: {})", self.p, self.intercept),
                format!("{} features (intercept: {})", other.p, other.intercept),
            ));
        }
        if other.shift_x != self.shift_x || other.shift_y != self.shift_y {
            return Err(Error::InvalidParameter {
                name: "shift",
                problem: "merging QR accumulators with different shifts: reshift one first".into(),
            });
        }
        let k = self.k();
        for i in 0..k + other.staged {
            self.stage_raw(other.stack.as_ref().subrows(i, 1), par);
        }
        self.n += other.n;
        Ok(())
    }

    /// Re-expresses the accumulated rows around a new shift (with an
    /// intercept only): the columns x − x₁ = (x − x₀) + (x₀ − x₁)·1 are a
    /// column operation on A, applied to R and the staged rows alike.
    pub fn reshift(&mut self, shift_x: &[f64], shift_y: f64) -> Result<()> {
        if !self.intercept {
            return Err(Error::InvalidParameter {
                name: "shift",
                problem: "a model without intercept has no shift".into(),
            });
        }
        if shift_x.len() != self.p {
            return Err(Error::shape(
                "shift",
                format!("{} values (features)", self.p),
                shift_x.len(),
            ));
        }
        let rows = self.k() + self.staged;
        let d: Vec<f64> = self
            .shift_x
            .iter()
            .zip(shift_x)
            .map(|(a, b)| a - b)
            .chain(std::iter::once(self.shift_y - shift_y))
            .collect();
        let mut s = self.stack.as_mut();
        for i in 0..rows {
            let one = s[(i, 0)];
            if one != 0.0 {
                for (j, dj) in d.iter().enumerate() {
                    s[(i, 1 + j)] += dj * one;
                }
            }
        }
        self.shift_x = shift_x.to_vec();
        self.shift_y = shift_y;
        Ok(())
    }

    /// The k × k upper-triangular factor R of A (folds the staged rows).
    pub fn r(&mut self, par: Par) -> MatRef<'_, f64> {
        self.flush(par);
        let k = self.k();
        self.stack.as_ref().submatrix(0, 0, k, k)
    }

    /// Training residual sum of squares of the least-squares (α = 0) fit:
    /// the last diagonal entry of R, squared.
    pub fn residual_ss(&mut self, par: Par) -> f64 {
        let k = self.k();
        let r = self.r(par);
        r[(k - 1, k - 1)] * r[(k - 1, k - 1)]
    }

    /// The model for `alpha` ≥ 0 (see the module docs). At α = 0 the
    /// centred design must have full column rank: a column that is, to
    /// working precision, a combination of the earlier ones (or of the
    /// intercept) is an error naming it.
    pub fn coefficients(&mut self, alpha: f64, par: Par) -> Result<Coefficients> {
        if !alpha.is_finite() || alpha < 0.0 {
            return Err(Error::InvalidParameter {
                name: "alpha",
                problem: format!("α must be finite and ≥ 0, got {alpha}"),
            });
        }
        let (p, o, k) = (self.p, self.intercept as usize, self.k());
        let n = self.n;
        self.flush(par);
        let r = self.stack.as_ref().submatrix(0, 0, k, k);
        if n == 0 || (o == 1 && r[(0, 0)] == 0.0) {
            return Err(Error::InvalidParameter {
                name: "rows",
                problem: "a least-squares model needs at least one row".into(),
            });
        }
        let rxx = r.submatrix(o, o, p, p);
        let rxy = r.col(k - 1).subrows(o, p);
        let w = if alpha == 0.0 {
            let tol = RANK_TOL * k as f64 * f64::EPSILON;
            for j in 0..p {
                let norm = (0..=j)
                    .map(|i| rxx[(i, j)] * rxx[(i, j)])
                    .sum::<f64>()
                    .sqrt();
                let ratio = if norm > 0.0 {
                    rxx[(j, j)].abs() / norm
                } else {
                    0.0
                };
                if ratio <= tol {
                    return Err(Error::InvalidParameter {
                        name: "alpha",
                        problem: format!(
                            "α = 0 (least squares) needs full column rank; feature {j} is, to working precision, a combination of {} ({n} rows, {p} features; |R_jj|/‖column‖ = {ratio:.1e}): singular, use α > 0",
                            if o == 1 { "the intercept and the earlier features" } else { "the earlier features" },
                        ),
                    });
                }
            }
            back_substitute(rxx, |i| rxy[i])
        } else {
            // [Rₓₓ, rₓᵧ; √α·I, 0] → its R; the weights' system is its leading block.
            let mut m = Mat::<f64>::zeros(2 * p, p + 1);
            m.as_mut().submatrix_mut(0, 0, p, p).copy_from(rxx);
            m.as_mut().col_mut(p).subrows_mut(0, p).copy_from(rxy);
            let s = alpha.sqrt();
            for j in 0..p {
                m[(p + j, j)] = s;
            }
            if p > 0 {
                qr_r_in_place(m.as_mut(), par);
            }
            let m = m.as_ref();
            back_substitute(m.submatrix(0, 0, p, p), |i| m[(i, p)])
        };
        let intercept = if o == 1 {
            let b = (r[(0, k - 1)] - (0..p).map(|j| r[(0, 1 + j)] * w[j]).sum::<f64>()) / r[(0, 0)];
            self.shift_y + b - self.shift_x.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>()
        } else {
            0.0
        };
        Ok(Coefficients {
            alpha,
            w,
            intercept,
        })
    }
}

/// Replaces `a` (rows ≥ columns) by the R of its Householder QR in its top
/// rows, zero below the diagonal, each row signed for a non-negative
/// diagonal (so R is unique for a full-rank A).
fn qr_r_in_place(mut a: MatMut<'_, f64>, par: Par) {
    let (rows, cols) = a.shape();
    debug_assert!(rows >= cols);
    let bs = factor::recommended_blocksize::<f64>(rows, cols);
    let mut coeff = Mat::<f64>::zeros(bs, cols);
    let mut mem = MemBuffer::new(factor::qr_in_place_scratch::<f64>(
        rows,
        cols,
        bs,
        par,
        Default::default(),
    ));
    factor::qr_in_place(
        a.as_mut(),
        coeff.as_mut(),
        par,
        MemStack::new(&mut mem),
        Default::default(),
    );
    for j in 0..cols {
        for i in j + 1..rows {
            a[(i, j)] = 0.0;
        }
    }
    for i in 0..cols {
        if a[(i, i)] < 0.0 {
            for j in i..cols {
                a[(i, j)] = -a[(i, j)];
            }
        }
    }
}

/// Solves the upper-triangular U w = b.
fn back_substitute(u: MatRef<'_, f64>, b: impl Fn(usize) -> f64) -> Vec<f64> {
    let p = u.nrows();
    let mut w = vec![0.0; p];
    for i in (0..p).rev() {
        let s: f64 = (i + 1..p).map(|j| u[(i, j)] * w[j]).sum();
        w[i] = (b(i) - s) / u[(i, i)];
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ridge::RidgePath;
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

    /// Direct solve of the centred normal equations (with intercept) or of
    /// XᵀX w = Xᵀy (without), plus α on the weights' diagonal.
    fn direct(xs: &[Vec<f64>], ys: &[f64], alpha: f64, intercept: bool) -> (Vec<f64>, f64) {
        let (n, p) = (xs.len(), xs[0].len());
        let (xm, ym) = if intercept {
            let xm: Vec<f64> = (0..p)
                .map(|j| xs.iter().map(|x| x[j]).sum::<f64>() / n as f64)
                .collect();
            (xm, ys.iter().sum::<f64>() / n as f64)
        } else {
            (vec![0.0; p], 0.0)
        };
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
        (w, if intercept { b0 } else { 0.0 })
    }

    fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
        let scale = b.iter().fold(1e-300f64, |s, v| s.max(v.abs()));
        a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * scale)
    }

    fn fill(q: &mut Tsqr, xs: &[Vec<f64>], ys: &[f64]) {
        for (x, y) in xs.iter().zip(ys) {
            q.push(x, *y, Par::Seq).unwrap();
        }
    }

    #[test]
    fn matches_a_direct_solve_and_ridge_path() {
        for &(n, p, block) in &[(40, 5, 7), (300, 17, 1000), (200, 12, 1), (30, 40, 16)] {
            let (xs, ys) = data(n, p, 11);
            let shift = xs[0].clone();
            let mut q = Tsqr::new(&shift, ys[0]).with_block_rows(block, Par::Seq);
            fill(&mut q, &xs, &ys);
            assert_eq!(q.n(), n as u64);
            let mut acc = Accumulator::new(p, 16);
            for (x, y) in xs.iter().zip(&ys) {
                acc.push_shifted(x, &shift, y - ys[0], Par::Seq);
            }
            let path = RidgePath::new(&acc.finish(Par::Seq), &shift, ys[0], Par::Seq).unwrap();
            let alphas: &[f64] = if n > p {
                &[0.0, 1e-2, 1.0, 1e3]
            } else {
                &[1e-2, 1.0, 1e3]
            };
            for &alpha in alphas {
                let m = q.coefficients(alpha, Par::Seq).unwrap();
                assert_eq!(m.alpha, alpha);
                let (w, b) = direct(&xs, &ys, alpha, true);
                assert!(
                    close(&m.w, &w, 1e-9),
                    "n={n} p={p} α={alpha}: {:?} vs {w:?}",
                    m.w
                );
                assert!(
                    (m.intercept - b).abs() <= 1e-9 * (1.0 + b.abs()),
                    "{} vs {b}",
                    m.intercept
                );
                let e = path.coefficients(alpha).unwrap();
                assert!(close(&m.w, &e.w, 1e-9), "α={alpha}: RidgePath");
                if alpha == 0.0 {
                    let rss: f64 = xs
                        .iter()
                        .zip(&ys)
                        .map(|(x, y)| (y - m.predict(x)).powi(2))
                        .sum();
                    let got = q.residual_ss(Par::Seq);
                    assert!((got - rss).abs() <= 1e-9 * rss, "{got} vs {rss}");
                }
            }
        }
    }

    #[test]
    fn without_intercept_matches_a_direct_solve() {
        let (xs, ys) = data(60, 4, 12);
        let mut q = Tsqr::without_intercept(4);
        fill(&mut q, &xs, &ys);
        assert_eq!(q.k(), 5);
        for alpha in [0.0, 0.5] {
            let m = q.coefficients(alpha, Par::Seq).unwrap();
            let (w, _) = direct(&xs, &ys, alpha, false);
            assert!(close(&m.w, &w, 1e-9), "{:?} vs {w:?}", m.w);
            assert_eq!(m.intercept, 0.0);
        }
        assert!(q.reshift(&[1.0; 4], 0.0).is_err());
    }

    #[test]
    fn merged_halves_equal_one_accumulator() {
        let (xs, ys) = data(257, 9, 13);
        let shift = vec![5.5; 9];
        let mut whole = Tsqr::new(&shift, 4.0).with_block_rows(32, Par::Seq);
        fill(&mut whole, &xs, &ys);
        let (mut a, mut b) = (
            Tsqr::new(&shift, 4.0),
            Tsqr::new(&shift, 4.0).with_block_rows(10, Par::Seq),
        );
        fill(&mut a, &xs[..100], &ys[..100]);
        fill(&mut b, &xs[100..], &ys[100..]);
        a.merge(&b, Par::Seq).unwrap();
        assert_eq!(a.n(), 257);
        let (ra, rw) = (a.r(Par::Seq).to_owned(), whole.r(Par::Seq).to_owned());
        let scale = (0..ra.nrows()).fold(0.0f64, |s, i| s.max(rw[(i, i)].abs()));
        for i in 0..ra.nrows() {
            for j in 0..ra.ncols() {
                assert!(
                    (ra[(i, j)] - rw[(i, j)]).abs() <= 1e-12 * scale,
                    "R[{i},{j}] {} vs {}",
                    ra[(i, j)],
                    rw[(i, j)]
                );
            }
        }
        let (ma, mw) = (
            a.coefficients(0.0, Par::Seq).unwrap(),
            whole.coefficients(0.0, Par::Seq).unwrap(),
        );
        assert!(close(&ma.w, &mw.w, 1e-10));
        // Shifts must agree; reshifting makes them.
        let mut c = Tsqr::new(&[0.0; 9], 0.0);
        fill(&mut c, &xs[100..], &ys[100..]);
        let mut a2 = Tsqr::new(&shift, 4.0);
        fill(&mut a2, &xs[..100], &ys[..100]);
        assert!(a2.merge(&c, Par::Seq).is_err());
        c.reshift(&shift, 4.0).unwrap();
        a2.merge(&c, Par::Seq).unwrap();
        let m2 = a2.coefficients(0.0, Par::Seq).unwrap();
        assert!(close(&m2.w, &mw.w, 1e-9), "{:?} vs {:?}", m2.w, mw.w);
        assert!((m2.intercept - mw.intercept).abs() <= 1e-9 * (1.0 + mw.intercept.abs()));
        assert!(a2.merge(&Tsqr::new(&[0.0; 3], 0.0), Par::Seq).is_err());
    }

    #[test]
    fn rank_deficiency_is_a_clear_error() {
        // Feature 2 = 2·feature 0 − 3 (a combination with the intercept).
        let (mut xs, ys) = data(50, 3, 14);
        for x in &mut xs {
            x[2] = 2.0 * x[0] - 3.0;
        }
        let mut q = Tsqr::new(&[5.0; 3], 0.0);
        fill(&mut q, &xs, &ys);
        let err = q.coefficients(0.0, Par::Seq).unwrap_err().to_string();
        assert!(
            err.contains("singular") && err.contains("feature 2") && err.contains("α > 0"),
            "{err}"
        );
        assert!(q.coefficients(1.0, Par::Seq).is_ok());
        // Fewer rows than parameters.
        let (xs, ys) = data(4, 6, 15);
        let mut q = Tsqr::new(&[5.0; 6], 0.0);
        fill(&mut q, &xs, &ys);
        assert!(q
            .coefficients(0.0, Par::Seq)
            .unwrap_err()
            .to_string()
            .contains("singular"));
        // A constant feature, no rows, bad α and bad rows.
        let (mut xs, ys) = data(20, 2, 16);
        xs.iter_mut().for_each(|x| x[1] = 7.0);
        let mut q = Tsqr::new(&[5.0; 2], 0.0);
        fill(&mut q, &xs, &ys);
        assert!(q
            .coefficients(0.0, Par::Seq)
            .unwrap_err()
            .to_string()
            .contains("feature 1"));
        assert!(Tsqr::new(&[0.0; 2], 0.0)
            .coefficients(1.0, Par::Seq)
            .is_err());
        assert!(q.coefficients(-1.0, Par::Seq).is_err());
        assert!(q.push(&[1.0], 0.0, Par::Seq).is_err());
    }
}

//! Exact K-fold cross-validation for many α by block preconditioned
//! conjugate gradients (DESIGN §6).
//!
//! [`crate::ridge::cv_sse`] needs one eigendecomposition per fold. Here the
//! full data's eigendecomposition C = VΛVᵀ (a [`RidgePath`] the caller has
//! anyway) preconditions every fold: fold k trains on total − fold, whose
//! centred covariance C_k ≈ s·C with s the training share of the rows, and
//! the systems (C_k + αI) w = c_k for all α are solved together as one
//! block of conjugate-gradient columns (one column per α) with
//! M⁻¹ = V (sΛ + αI)⁻¹ Vᵀ. Each iteration costs three P × P × m products
//! (C_k·P, Vᵀ·R, V·T; m = columns still running), done by
//! `linalg::matmul_det` in row panels fixed by P, so the results
//! are **bitwise identical for every thread count** (a test pins it; a
//! fold that falls back to a direct solve is as reproducible as
//! [`crate::linalg::eigh`]'s default backend). Converged
//! columns leave the block.
//!
//! A column counts as converged when its *true* relative residual
//! ‖c_k − (C_k + αI)w‖₂ / ‖c_k‖₂ is at most [`PcgOptions::tol`] (the
//! recurrence's residual is checked first, then recomputed; a column whose
//! recurrence drifted restarts from its iterate). A fold with a column still
//! running after [`PcgOptions::max_iter`] iterations, or whose slowest
//! column, extrapolated at its mean reduction rate after 20 iterations,
//! would need more than twice that, is solved directly instead (its own eigendecomposition, as `cv_sse` does) and reported in
//! [`CvResult::fallback_folds`].
//!
//! Validation uses each fold's own sums, the same formula as
//! `ridge::sse_from_stats`, with the quadratic forms wᵀ(Σuuᵀ)w of
//! all α taken from one product.

use faer::{Mat, MatMut, MatRef, Par};

use crate::linalg::matmul_det;
use crate::ridge::{centred, sse_from_stats, RidgePath};
use crate::stats::{packed_index, SuffStats};
use crate::{Error, Result};

mod auto;
pub use auto::{
    cv_sse_auto, pcg_budget, predicted_iterations, AutoResult, FoldSolver, OwnPath, Solvers,
};

/// How the full data's eigenvalues are scaled for a fold's preconditioner
/// V (sΛ + αI)⁻¹ Vᵀ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scaling {
    /// s = n_train / n (DESIGN §6).
    RowFraction,
    /// s = tr(C_k) / tr(C): the fold's own variance share.
    Trace,
}

/// Options of [`cv_sse_pcg`].
#[derive(Debug, Clone, PartialEq)]
pub struct PcgOptions {
    /// Relative residual ‖c_k − (C_k + αI)w‖₂ / ‖c_k‖₂ to reach (1e-11: at
    /// 1e-10 the validation SSE differed from the eigh-per-fold result by up
    /// to 4e-9 relative at α = 1e-2 on the tests' data, at 1e-11 by ≤ 4e-10).
    pub tol: f64,
    /// Iterations per fold before the fold falls back to a direct solve (200).
    pub max_iter: usize,
    /// Eigenvalue scaling of the preconditioner.
    pub scaling: Scaling,
}

impl Default for PcgOptions {
    fn default() -> Self {
        PcgOptions {
            tol: 1e-11,
            max_iter: 200,
            scaling: Scaling::Trace,
        }
    }
}

/// How one fold was solved.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldIterations {
    /// Rows validated (the fold's rows).
    pub rows: u64,
    /// PCG iterations per α (0 for every α when the fold fell back).
    pub per_alpha: Vec<usize>,
    /// Largest of `per_alpha`.
    pub max: usize,
    /// Mean of `per_alpha`.
    pub mean: f64,
    /// Whether PCG did not converge within the cap and the fold was solved
    /// by its own eigendecomposition.
    pub fallback: bool,
}

/// Result of [`cv_sse_pcg`].
#[derive(Debug, Clone, PartialEq)]
pub struct CvResult {
    /// Validation SSE per α, summed over the folds (MSE = SSE / rows).
    pub sse: Vec<f64>,
    /// Rows validated in total.
    pub rows: u64,
    /// One entry per non-empty fold, in order.
    pub iterations: Vec<FoldIterations>,
    /// Folds solved directly because PCG did not converge.
    pub fallback_folds: usize,
}

/// Exact K-fold cross-validation: for each non-empty fold, train on
/// `total − fold` and validate on the fold, for every α of `alphas`
/// (each finite and > 0). `total_path` must be the [`RidgePath`] of `total`
/// (its eigendecomposition is the preconditioner); all statistics are
/// summed around (`shift_x`, `shift_y`). Same result as
/// [`crate::ridge::cv_sse`] to the tolerance, at a fraction of its cost.
#[allow(clippy::too_many_arguments)]
pub fn cv_sse_pcg(
    total_path: &RidgePath,
    total: &SuffStats,
    folds: &[SuffStats],
    shift_x: &[f64],
    shift_y: f64,
    alphas: &[f64],
    opts: &PcgOptions,
    par: Par,
) -> Result<CvResult> {
    check_inputs(total_path, total, shift_x, alphas, opts)?;
    let (lambda, vt) = preconditioner(total_path);
    let ctx = FoldCtx {
        total,
        lambda: &lambda,
        v: total_path.eigenvectors(),
        vt: vt.as_ref(),
        shift_x,
        shift_y,
        alphas,
        opts,
    };
    let live: Vec<&SuffStats> = folds.iter().filter(|f| f.n > 0).collect();
    // Folds run `degree` at a time, each on one thread with sequential
    // products (no synchronisation per product, and at most `degree` folds'
    // matrices in memory); a last, incomplete group runs its folds one after
    // the other with parallel products. Every fold's bits are the same
    // either way (matmul_det), and the sums below are taken in fold order.
    let degree = match par {
        Par::Seq => 1,
        _ => par.degree().max(1),
    };
    let mut results: Vec<Result<(Vec<f64>, FoldIterations, bool)>> = Vec::new();
    for group in live.chunks(degree) {
        if group.len() > 1 && group.len() == degree {
            use rayon::prelude::*;
            let r: Vec<_> = group
                .par_iter()
                .with_max_len(1)
                .map(|f| ctx.solve(f, Par::Seq))
                .collect();
            results.extend(r);
        } else {
            for f in group {
                results.push(ctx.solve(f, par));
            }
        }
    }
    let mut out = CvResult {
        sse: vec![0.0; alphas.len()],
        rows: 0,
        iterations: Vec::new(),
        fallback_folds: 0,
    };
    for (fold, r) in live.iter().zip(results) {
        let (sse, iters, fallback) = r?;
        for (o, e) in out.sse.iter_mut().zip(&sse) {
            *o += e;
        }
        out.iterations.push(iters);
        out.fallback_folds += usize::from(fallback);
        out.rows += fold.n;
    }
    Ok(out)
}

/// What the folds' preconditioners take from the bin's decomposition:
/// its eigenvalues (negative rounding clipped to 0) and Vᵀ stored
/// column-major, so that both V·T and Vᵀ·R read their left operand through
/// unit-stride columns (OpenBLAS's transposed path packs a panel about
/// twice as fast as the strided one).
fn preconditioner(path: &RidgePath) -> (Vec<f64>, Mat<f64>) {
    let lambda = path.eigenvalues().iter().map(|l| l.max(0.0)).collect();
    (lambda, path.eigenvectors().transpose().to_owned())
}

/// Refuses what [`cv_sse_pcg`] cannot use: a path or shift of another
/// shape than the statistics, an α that is not finite and > 0 (the folds'
/// systems must be definite), or a tolerance that is not finite and > 0.
fn check_inputs(
    total_path: &RidgePath,
    total: &SuffStats,
    shift_x: &[f64],
    alphas: &[f64],
    opts: &PcgOptions,
) -> Result<()> {
    let p = total.p;
    if shift_x.len() != p || total_path.eigenvalues().len() != p || total_path.n() != total.n {
        return Err(Error::shape(
            "cross-validation path and shift",
            format!(
                "a path of {} rows × {p} and a shift of {p} (as the statistics)",
                total.n
            ),
            format!(
                "a path of {} rows × {} and a shift of {}",
                total_path.n(),
                total_path.eigenvalues().len(),
                shift_x.len()
            ),
        ));
    }
    if let Some(a) = alphas.iter().find(|a| !(a.is_finite() && **a > 0.0)) {
        return Err(Error::InvalidParameter {
            name: "alpha",
            problem: format!("cross-validation by PCG needs finite α > 0, got {a}"),
        });
    }
    if !(opts.tol > 0.0 && opts.tol.is_finite()) {
        return Err(Error::InvalidParameter {
            name: "tol",
            problem: format!("the PCG tolerance must be finite and > 0, got {}", opts.tol),
        });
    }
    Ok(())
}

/// Folds with at most this share of P rows are solved in the basis of V with
/// the held-out part as a low-rank term ([`low_rank_pcg`]).
const LOW_RANK_SHARE: f64 = 0.5;

/// What every fold of [`cv_sse_pcg`] shares.
struct FoldCtx<'a> {
    total: &'a SuffStats,
    lambda: &'a [f64],
    v: MatRef<'a, f64>,
    vt: MatRef<'a, f64>,
    shift_x: &'a [f64],
    shift_y: f64,
    alphas: &'a [f64],
    opts: &'a PcgOptions,
}

impl FoldCtx<'_> {
    /// [`low_rank_pcg`] when the held-out part of the fold has rank below
    /// [`LOW_RANK_SHARE`] of P (else, or when it fails, None).
    fn low_rank(
        &self,
        ck: &Mat<f64>,
        fold: &SuffStats,
        train: &SuffStats,
        c: &[f64],
        par: Par,
    ) -> Option<(Mat<f64>, Vec<usize>)> {
        let p = fold.p;
        if (fold.n as f64) > LOW_RANK_SHARE * p as f64 || fold.n < 1 {
            return None;
        }
        // G = C − C_k = C_f + (n_k n_f / n) δδᵀ, δ = mean_k − mean_f.
        let (nf, nk) = (fold.n as f64, train.n as f64);
        let mf: Vec<f64> = fold.sum_x.iter().map(|s| s / nf).collect();
        let delta: Vec<f64> = train
            .sum_x
            .iter()
            .zip(&mf)
            .map(|(s, f)| s / nk - f)
            .collect();
        let h = nk * nf / (nk + nf);
        let mut g = vec![0.0f64; p * p];
        for j in 0..p {
            for i in j..p {
                g[i + j * p] =
                    fold.xtx[packed_index(i, j)] - nf * mf[i] * mf[j] + h * delta[i] * delta[j];
            }
        }
        let (u, rank) = crate::linalg::low_rank_factor(&mut g, p)?;
        drop(g);
        if rank as f64 > LOW_RANK_SHARE * p as f64 {
            return None;
        }
        low_rank_pcg(
            ck.as_ref(),
            c,
            self.lambda,
            u.as_ref(),
            self.v,
            self.vt,
            self.alphas,
            self.opts,
            par,
        )
    }

    /// Validation SSE per α of one fold by PCG and its iterations per α,
    /// or None when PCG does not converge within [`PcgOptions::max_iter`].
    fn pcg(&self, fold: &SuffStats, par: Par) -> Result<Option<(Vec<f64>, Vec<usize>)>> {
        let (total, alphas, opts) = (self.total, self.alphas, self.opts);
        let p = total.p;
        let train = complement(total, fold)?;
        let (ck, c, _, m, my) = centred(&train);
        let d: Vec<f64> = match opts.scaling {
            Scaling::RowFraction => {
                let s = train.n as f64 / total.n as f64;
                self.lambda.iter().map(|l| s * l).collect()
            }
            Scaling::Trace => {
                let tr: f64 = (0..p).map(|i| ck[(i, i)]).sum();
                let full: f64 = self.lambda.iter().sum();
                let s = if full > 0.0 && tr > 0.0 {
                    tr / full
                } else {
                    train.n as f64 / total.n as f64
                };
                self.lambda.iter().map(|l| s * l).collect()
            }
        };
        let solved = self
            .low_rank(&ck, fold, &train, &c, par)
            .or_else(|| dense_pcg(ck.as_ref(), &c, &d, self.v, self.vt, alphas, opts, par));
        Ok(solved.map(|(w, iters)| {
            let fit = Centred { m: &m, my };
            (
                validate(fold, ck, &w, fit, self.shift_x, self.shift_y, par),
                iters,
            )
        }))
    }

    /// Validation SSE per α of one fold, how it was solved, and whether it
    /// fell back to a direct solve.
    fn solve(&self, fold: &SuffStats, par: Par) -> Result<(Vec<f64>, FoldIterations, bool)> {
        let alphas = self.alphas;
        match self.pcg(fold, par)? {
            Some((sse, iters)) => {
                let max = iters.iter().copied().max().unwrap_or(0);
                let mean = if iters.is_empty() {
                    0.0
                } else {
                    iters.iter().sum::<usize>() as f64 / iters.len() as f64
                };
                let it = FoldIterations {
                    rows: fold.n,
                    per_alpha: iters,
                    max,
                    mean,
                    fallback: false,
                };
                Ok((sse, it, false))
            }
            None => {
                let (shift_x, shift_y) = (self.shift_x, self.shift_y);
                let train = complement(self.total, fold)?;
                let path = RidgePath::new(&train, shift_x, shift_y, par)?;
                let mut sse = vec![0.0; alphas.len()];
                for (o, &alpha) in sse.iter_mut().zip(alphas) {
                    *o = sse_from_stats(&path.coefficients(alpha)?, fold, shift_x, shift_y);
                }
                let it = FoldIterations {
                    rows: fold.n,
                    per_alpha: vec![0; alphas.len()],
                    max: 0,
                    mean: 0.0,
                    fallback: true,
                };
                Ok((sse, it, true))
            }
        }
    }
}

/// The fold's training set `total − fold`; a Ridge model needs two rows.
pub(crate) fn complement(total: &SuffStats, fold: &SuffStats) -> Result<SuffStats> {
    let mut train = total.clone();
    train.sub(fold)?;
    if train.n < 2 {
        return Err(crate::FitError::TooFewRows {
            model: "a Ridge model",
            set: "this fold's training set",
            need: 2,
            rows: train.n,
        }
        .into());
    }
    Ok(train)
}

/// The means of a fold's training set relative to the shift, as
/// [`centred`] returns them: what turns centred weights into intercepts.
#[derive(Clone, Copy)]
pub(crate) struct Centred<'a> {
    pub(crate) m: &'a [f64],
    pub(crate) my: f64,
}

/// Validation SSE per α of the centred weights `w` (one column per α) of
/// the model trained on `total − fold`, on the fold's own sums. `buf` is a
/// P × P matrix no longer needed (the training covariance): the fold's
/// Σuuᵀ is written into it.
pub(crate) fn validate(
    fold: &SuffStats,
    mut buf: Mat<f64>,
    w: &Mat<f64>,
    fit: Centred<'_>,
    shift_x: &[f64],
    shift_y: f64,
    par: Par,
) -> Vec<f64> {
    let p = fold.p;
    let intercepts: Vec<f64> = (0..w.ncols())
        .map(|a| {
            shift_y + fit.my
                - (0..p)
                    .map(|i| (shift_x[i] + fit.m[i]) * w[(i, a)])
                    .sum::<f64>()
        })
        .collect();
    for j in 0..p {
        let cj = col_mut(&mut buf, j);
        for (i, e) in cj.iter_mut().enumerate() {
            let (a, b) = if i >= j { (i, j) } else { (j, i) };
            *e = fold.xtx[packed_index(a, b)];
        }
    }
    sse_many(fold, buf.as_ref(), w, &intercepts, shift_x, shift_y, par)
}

/// A fold's symmetric Σuuᵀ as a full matrix.
fn full_xtx(stats: &SuffStats) -> Mat<f64> {
    Mat::from_fn(stats.p, stats.p, |i, j| {
        let (a, b) = if i >= j { (i, j) } else { (j, i) };
        stats.xtx[packed_index(a, b)]
    })
}

/// Validation SSE per α of the model trained on `total − fold`, solved by
/// its own eigendecomposition (sequential kernels: the caller runs folds
/// concurrently) — the sweep's `--cv eigh`, and `--cv auto`'s last resort.
pub(crate) fn fold_sse_eigh(
    total: &SuffStats,
    fold: &SuffStats,
    shift_x: &[f64],
    shift_y: f64,
    alphas: &[f64],
) -> Result<Vec<f64>> {
    let mut train = total.clone();
    train.sub(fold)?;
    let path = RidgePath::new(&train, shift_x, shift_y, Par::Seq)?;
    drop(train);
    let (w, b) = path.weights(alphas, Par::Seq);
    drop(path);
    let f = full_xtx(fold);
    Ok(sse_many(
        fold,
        f.as_ref(),
        &w,
        &b,
        shift_x,
        shift_y,
        Par::Seq,
    ))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn col(m: &Mat<f64>, j: usize) -> &[f64] {
    m.col(j)
        .try_as_col_major()
        .expect("owned matrices are column-major")
        .as_slice()
}

fn col_mut(m: &mut Mat<f64>, j: usize) -> &mut [f64] {
    m.col_mut(j)
        .try_as_col_major_mut()
        .expect("owned matrices are column-major")
        .as_slice_mut()
}

/// The first `cols` columns of the column-major p-row buffer `buf`.
fn view(buf: &[f64], p: usize, cols: usize) -> MatRef<'_, f64> {
    MatRef::from_column_major_slice(&buf[..p * cols], p, cols)
}

fn view_mut(buf: &mut [f64], p: usize, cols: usize) -> MatMut<'_, f64> {
    MatMut::from_column_major_slice_mut(&mut buf[..p * cols], p, cols)
}

/// Solves (A + α_j I) x_j = b_j for every α_j (`b`: p × m column-major, one
/// right-hand side per α) by block PCG, `apply` computing A·X and
/// `precond(z, scratch, r, act)` z = M_j⁻¹ r for the running columns (α
/// indices `act`); column j stops when its true residual is ≤ `goal[j]`.
/// The solutions (p × m column-major) and the iterations per α, or None
/// when some column did not converge within the cap.
///
/// Each iteration: new directions ([`Block::direction`]), a step along them
/// ([`Block::advance`]), and for the columns whose recurrence says they
/// converged, a check of the true residual ([`Block::confirm`]) before they
/// leave the block ([`Block::retire_done`]).
#[allow(clippy::type_complexity)]
fn block_pcg(
    apply: &dyn Fn(MatMut<'_, f64>, MatRef<'_, f64>),
    precond: &dyn Fn(&mut [f64], &mut [f64], &[f64], &[usize]),
    b: &[f64],
    goal: &[f64],
    alphas: &[f64],
    opts: &PcgOptions,
) -> Option<(Vec<f64>, Vec<usize>)> {
    let m = alphas.len();
    let p = b.len().checked_div(m).unwrap_or(0);
    let mut x_out = vec![0.0f64; p * m];
    let mut iters = vec![0usize; m];
    let bnorm: Vec<f64> = (0..m)
        .map(|j| dot(&b[j * p..(j + 1) * p], &b[j * p..(j + 1) * p]).sqrt())
        .collect();
    // Columns whose zero start already meets the goal never enter.
    let act: Vec<usize> = (0..m).filter(|&j| bnorm[j] > goal[j]).collect();
    if act.is_empty() {
        return Some((x_out, iters));
    }
    let sys = System {
        apply,
        precond,
        b,
        goal,
        bnorm: &bnorm,
        alphas,
        p,
    };
    let mut block = Block::start(&sys, act);
    for it in 1..=opts.max_iter {
        block.direction(&sys);
        block.advance(&sys, it, &mut iters)?;
        if !block.find_candidates(&sys) {
            if block.stagnates(&sys, it, opts.max_iter) {
                return None;
            }
            continue;
        }
        block.confirm(&sys, &mut x_out);
        if block.retire_done(&sys) {
            return Some((x_out, iters));
        }
    }
    None
}

/// [`block_pcg`]'s `apply`: writes A·src into dst.
type Apply<'a> = dyn Fn(MatMut<'_, f64>, MatRef<'_, f64>) + 'a;

/// [`block_pcg`]'s `precond(z, scratch, r, act)`.
type Precond<'a> = dyn Fn(&mut [f64], &mut [f64], &[f64], &[usize]) + 'a;

/// What [`block_pcg`] solves, per α: the operator and preconditioner, the
/// right-hand sides (p × m column-major) with their norms, and the goals.
struct System<'a> {
    apply: &'a Apply<'a>,
    precond: &'a Precond<'a>,
    b: &'a [f64],
    goal: &'a [f64],
    bnorm: &'a [f64],
    alphas: &'a [f64],
    p: usize,
}

/// The block state of [`block_pcg`]: column-major p-row buffers of m
/// columns (and per-column values), allocated once; the running columns
/// are the first `act.len()` of each, compacted in place (order kept) as
/// columns converge.
struct Block {
    /// The α index of each running column.
    act: Vec<usize>,
    x: Vec<f64>,
    r: Vec<f64>,
    dir: Vec<f64>,
    /// Scratch: the preconditioner's, then q = (A + α)p, then the true residuals.
    t: Vec<f64>,
    /// Scratch: z = M⁻¹r, then the candidates' iterates.
    z: Vec<f64>,
    rz_old: Vec<f64>,
    /// Squared residual norms by the recurrence.
    rr: Vec<f64>,
    /// Columns whose next direction is z alone (β = 0): at the start and
    /// after a restart.
    fresh: Vec<bool>,
    /// Running columns whose recurrence residual meets the goal.
    cand: Vec<usize>,
    /// Running columns confirmed by their true residual.
    done: Vec<bool>,
}

impl Block {
    /// The zero start of the running columns `act` (α indices): residuals b.
    fn start(sys: &System<'_>, act: Vec<usize>) -> Self {
        let (p, m) = (sys.p, sys.alphas.len());
        let x = vec![0.0f64; p * m];
        let mut r: Vec<f64> = act
            .iter()
            .flat_map(|&k| sys.b[k * p..(k + 1) * p].iter().copied())
            .collect();
        r.resize(p * m, 0.0);
        Block {
            act,
            x,
            r,
            dir: vec![0.0f64; p * m],
            t: vec![0.0f64; p * m],
            z: vec![0.0f64; p * m],
            rz_old: vec![0.0f64; m],
            rr: vec![0.0f64; m],
            fresh: vec![true; m],
            cand: Vec::with_capacity(m),
            done: vec![false; m],
        }
    }

    /// The next search directions: z = M⁻¹r, then p = z + βp with
    /// β = (rᵀz) / (rᵀz)_previous (0 for a fresh column).
    fn direction(&mut self, sys: &System<'_>) {
        let (p, ma) = (sys.p, self.act.len());
        (sys.precond)(
            &mut self.z[..p * ma],
            &mut self.t[..p * ma],
            &self.r[..p * ma],
            &self.act,
        );
        for j in 0..ma {
            let cols = j * p..(j + 1) * p;
            let rz = dot(&self.r[cols.clone()], &self.z[cols.clone()]);
            let beta = if self.fresh[j] {
                0.0
            } else {
                rz / self.rz_old[j]
            };
            self.fresh[j] = false;
            self.rz_old[j] = rz;
            for (pi, zi) in self.dir[cols.clone()].iter_mut().zip(&self.z[cols]) {
                *pi = zi + beta * *pi;
            }
        }
    }

    /// One step along the directions: q = (A + α)p, then x += γp and
    /// r −= γq with γ = rᵀz / pᵀq, recording iteration `it` in `iters` (per
    /// α). None on a breakdown (pᵀq ≤ 0 or γ not finite): the caller's
    /// fold falls back.
    fn advance(&mut self, sys: &System<'_>, it: usize, iters: &mut [usize]) -> Option<()> {
        let (p, ma) = (sys.p, self.act.len());
        // q = (A + α) p
        (sys.apply)(view_mut(&mut self.t, p, ma), view(&self.dir, p, ma));
        for (j, &k) in self.act.iter().enumerate() {
            let alpha = sys.alphas[k];
            let cols = j * p..(j + 1) * p;
            let pj = &self.dir[cols.clone()];
            let qj = &mut self.t[cols.clone()];
            let mut pq = 0.0;
            for (qi, pi) in qj.iter_mut().zip(pj) {
                *qi += alpha * pi;
                pq += pi * *qi;
            }
            let gamma = self.rz_old[j] / pq;
            if !(gamma.is_finite() && pq > 0.0) {
                return None;
            }
            for (xi, pi) in self.x[cols.clone()].iter_mut().zip(pj) {
                *xi += gamma * pi;
            }
            let mut s = 0.0;
            for (ri, qi) in self.r[cols].iter_mut().zip(&*qj) {
                *ri -= gamma * qi;
                s += *ri * *ri;
            }
            self.rr[j] = s;
            iters[k] = it;
        }
        Some(())
    }

    /// Collects in `cand` the running columns whose residual by the
    /// recurrence meets their goal (to be confirmed by the true residual);
    /// whether there are any.
    fn find_candidates(&mut self, sys: &System<'_>) -> bool {
        let ma = self.act.len();
        self.cand.clear();
        let (rr, act) = (&self.rr, &self.act);
        self.cand
            .extend((0..ma).filter(|&j| rr[j].sqrt() <= sys.goal[act[j]]));
        !self.cand.is_empty()
    }

    /// Stagnation after iteration `it` (checked from the 20th on): whether
    /// the slowest column's residual, reduced at its mean rate so far,
    /// would need more than twice the cap `max_iter` — then the fold falls
    /// back now instead of paying for the cap first.
    fn stagnates(&self, sys: &System<'_>, it: usize, max_iter: usize) -> bool {
        if it < 20 {
            return false;
        }
        let (ma, act, bnorm) = (self.act.len(), &self.act, sys.bnorm);
        let worst = (0..ma)
            .map(|j| self.rr[j].sqrt() / bnorm[act[j]])
            .fold(0.0f64, f64::max);
        let need = (0..ma)
            .map(|j| sys.goal[act[j]] / bnorm[act[j]])
            .fold(1.0f64, f64::min);
        let rate = worst.powf(1.0 / it as f64);
        rate >= 1.0 || need.ln() / rate.ln() > 2.0 * max_iter as f64
    }

    /// Recomputes the candidates' true residuals b − (A + α)x: a column
    /// that meets its goal is done and its iterate goes to `x_out` (α
    /// order); one whose recurrence drifted restarts from its iterate.
    fn confirm(&mut self, sys: &System<'_>, x_out: &mut [f64]) {
        let (p, ma, nc) = (sys.p, self.act.len(), self.cand.len());
        for (c, &j) in self.cand.iter().enumerate() {
            let (src, dst) = (j * p, c * p);
            self.z[dst..dst + p].copy_from_slice(&self.x[src..src + p]);
        }
        (sys.apply)(view_mut(&mut self.t, p, nc), view(&self.z, p, nc));
        self.done[..ma].fill(false);
        for (c, &j) in self.cand.iter().enumerate() {
            let k = self.act[j];
            let alpha = sys.alphas[k];
            let xj = &self.z[c * p..(c + 1) * p];
            let rc = &mut self.t[c * p..(c + 1) * p];
            let mut s = 0.0;
            for ((ri, bi), xi) in rc.iter_mut().zip(&sys.b[k * p..(k + 1) * p]).zip(xj) {
                *ri = bi - *ri - alpha * xi;
                s += *ri * *ri;
            }
            if s.sqrt() <= sys.goal[k] {
                self.done[j] = true;
                x_out[k * p..(k + 1) * p].copy_from_slice(xj);
            } else {
                // The recurrence drifted: restart from the iterate.
                self.r[j * p..(j + 1) * p].copy_from_slice(rc);
                self.fresh[j] = true;
            }
        }
    }

    /// Removes the done columns from the block by a stable in-place
    /// compaction; whether every column is done.
    fn retire_done(&mut self, sys: &System<'_>) -> bool {
        let (p, ma) = (sys.p, self.act.len());
        if !self.done[..ma].iter().any(|&d| d) {
            return false;
        }
        let mut keep = 0;
        for j in 0..ma {
            if self.done[j] {
                continue;
            }
            if keep != j {
                let (src, dst) = (j * p, keep * p);
                self.x.copy_within(src..src + p, dst);
                self.r.copy_within(src..src + p, dst);
                self.dir.copy_within(src..src + p, dst);
                self.rz_old[keep] = self.rz_old[j];
                self.rr[keep] = self.rr[j];
                self.fresh[keep] = self.fresh[j];
                self.act[keep] = self.act[j];
            }
            keep += 1;
        }
        self.act.truncate(keep);
        keep == 0
    }
}

/// The fold's system by dense block PCG: (C_k + α) w = c with
/// M⁻¹ = V (diag(d) + α)⁻¹ Vᵀ; three P × P × m products per iteration.
#[allow(clippy::too_many_arguments)]
fn dense_pcg(
    a: MatRef<'_, f64>,
    c: &[f64],
    d: &[f64],
    v: MatRef<'_, f64>,
    vt: MatRef<'_, f64>,
    alphas: &[f64],
    opts: &PcgOptions,
    par: Par,
) -> Option<(Mat<f64>, Vec<usize>)> {
    let p = c.len();
    let m = alphas.len();
    let b: Vec<f64> = (0..m).flat_map(|_| c.iter().copied()).collect();
    let goal = vec![opts.tol * dot(c, c).sqrt(); m];
    // Every product reads its left operand through unit-stride columns
    // (Aᵀ = A, (Vᵀ)ᵀ = V).
    let (a_t, v_t, vt_t) = (a.transpose(), v.transpose(), vt.transpose());
    let apply = |dst: MatMut<'_, f64>, src: MatRef<'_, f64>| matmul_det(dst, a_t, src, par);
    let precond = |z: &mut [f64], t: &mut [f64], r: &[f64], act: &[usize]| {
        let ma = act.len();
        matmul_det(view_mut(t, p, ma), v_t, view(r, p, ma), par);
        for (j, &k) in act.iter().enumerate() {
            let alpha = alphas[k];
            for (ti, di) in t[j * p..(j + 1) * p].iter_mut().zip(d) {
                *ti /= di + alpha;
            }
        }
        matmul_det(view_mut(z, p, ma), vt_t, view(t, p, ma), par);
    };
    let (x, iters) = block_pcg(&apply, &precond, &b, &goal, alphas, opts)?;
    Some((Mat::from_fn(p, m, |i, j| x[i + j * p]), iters))
}

/// Rounds of iterative refinement in [`low_rank_pcg`] before it gives up.
const REFINE_ROUNDS: usize = 4;

/// The fold's system when the held-out part G = C − C_k has low rank
/// (G = UUᵀ, U p × r, fewer fold rows than pixels): in the basis V of C,
/// C_k = Λ − WWᵀ with W = VᵀU, so each iteration costs two P × r × m
/// products and the preconditioner is the exact diagonal of VᵀC_kV + α.
/// The V-basis operator is C_k up to rounding, so the solutions are
/// refined against the true C_k (one P × P × m product per round) until
/// the true relative residual is ≤ tol; None if that does not happen
/// within [`REFINE_ROUNDS`] (the caller then runs [`dense_pcg`]).
#[allow(clippy::too_many_arguments)]
fn low_rank_pcg(
    a: MatRef<'_, f64>,
    c: &[f64],
    lambda: &[f64],
    u: MatRef<'_, f64>,
    v: MatRef<'_, f64>,
    vt: MatRef<'_, f64>,
    alphas: &[f64],
    opts: &PcgOptions,
    par: Par,
) -> Option<(Mat<f64>, Vec<usize>)> {
    let p = c.len();
    let m = alphas.len();
    let rank = u.ncols();
    let mut w = Mat::<f64>::zeros(p, rank);
    matmul_det(w.as_mut(), v.transpose(), u, par);
    let wt = w.transpose().to_owned();
    let e: Vec<f64> = (0..p)
        .map(|i| {
            let s: f64 = (0..rank).map(|j| w[(i, j)] * w[(i, j)]).sum();
            (lambda[i] - s).max(0.0)
        })
        .collect();
    let scratch = std::cell::RefCell::new(vec![0.0f64; rank * m]);
    let (w_t, wt_t) = (w.transpose(), wt.transpose());
    let apply = |mut dst: MatMut<'_, f64>, src: MatRef<'_, f64>| {
        let ma = src.ncols();
        let mut s = scratch.borrow_mut();
        matmul_det(view_mut(&mut s, rank, ma), w_t, src, par);
        matmul_det(dst.as_mut(), wt_t, view(&s, rank, ma), par);
        for j in 0..ma {
            for i in 0..p {
                dst[(i, j)] = lambda[i] * src[(i, j)] - dst[(i, j)];
            }
        }
    };
    let precond = |z: &mut [f64], _: &mut [f64], r: &[f64], act: &[usize]| {
        for (j, &k) in act.iter().enumerate() {
            let alpha = alphas[k];
            let cols = j * p..(j + 1) * p;
            for ((zi, ri), ei) in z[cols.clone()].iter_mut().zip(&r[cols]).zip(&e) {
                *zi = ri / (ei + alpha);
            }
        }
    };
    let goal_abs = opts.tol * dot(c, c).sqrt();
    let mut x = Mat::<f64>::zeros(p, m);
    let mut res = Mat::from_fn(p, m, |i, _| c[i]);
    let mut hat = Mat::<f64>::zeros(p, m);
    let mut iters = vec![0usize; m];
    // The V-basis solve aims below the goal, so that rounding in the
    // representation still leaves the true residual under it.
    let goal = vec![0.5 * goal_abs; m];
    for _ in 0..REFINE_ROUNDS {
        matmul_det(hat.as_mut(), v.transpose(), res.as_ref(), par);
        let rhs: Vec<f64> = (0..m).flat_map(|j| col(&hat, j).to_vec()).collect();
        let (y, its) = block_pcg(&apply, &precond, &rhs, &goal, alphas, opts)?;
        for (t, i) in iters.iter_mut().zip(&its) {
            *t += i;
        }
        matmul_det(hat.as_mut(), vt.transpose(), view(&y, p, m), par);
        for j in 0..m {
            for i in 0..p {
                x[(i, j)] += hat[(i, j)];
            }
        }
        matmul_det(res.as_mut(), a.transpose(), x.as_ref(), par);
        let mut all = true;
        for (j, &alpha) in alphas.iter().enumerate() {
            let xj = col(&x, j).to_vec();
            let rj = col_mut(&mut res, j);
            let mut s = 0.0;
            for ((ri, ci), xi) in rj.iter_mut().zip(c).zip(&xj) {
                *ri = ci - *ri - alpha * xi;
                s += *ri * *ri;
            }
            all &= s.sqrt() <= goal_abs;
        }
        if all {
            return Some((x, iters));
        }
    }
    None
}

/// Validation SSE of the models (columns of `w`, intercepts) on the rows of
/// `fold`, whose Σuuᵀ is `f` (full, symmetric): the formula of
/// [`crate::ridge::sse_from_stats`] with all quadratic forms from one product.
pub(crate) fn sse_many(
    fold: &SuffStats,
    f: MatRef<'_, f64>,
    w: &Mat<f64>,
    intercepts: &[f64],
    shift_x: &[f64],
    shift_y: f64,
    par: Par,
) -> Vec<f64> {
    let p = fold.p;
    let n = fold.n as f64;
    let mut fw = Mat::<f64>::zeros(p, w.ncols());
    // f is symmetric: read it through unit-stride columns.
    matmul_det(fw.as_mut(), f.transpose(), w.as_ref(), par);
    (0..w.ncols())
        .map(|a| {
            let wa = col(w, a);
            let beta = intercepts[a] - shift_y + dot(shift_x, wa);
            let quad = dot(wa, col(&fw, a));
            let sse = fold.sum_yy - 2.0 * beta * fold.sum_y - 2.0 * dot(wa, &fold.xty)
                + n * beta * beta
                + 2.0 * beta * dot(wa, &fold.sum_x)
                + quad;
            sse.max(0.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ridge::cv_sse;
    use crate::stats::Accumulator;
    use rand::{Rng, SeedableRng};

    /// Spectrum-like rows: a mean continuum, a few smooth latent components
    /// with decaying amplitudes, pixel noise; y depends on two components.
    /// Returns the total and per-fold statistics (folds by row index) around
    /// the first row.
    pub(super) fn data(
        n: usize,
        p: usize,
        k: usize,
        seed: u64,
    ) -> (SuffStats, Vec<SuffStats>, Vec<f64>, f64) {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let comps = 12;
        let basis: Vec<Vec<f64>> = (0..comps)
            .map(|c| {
                (0..p)
                    .map(|i| ((c + 1) as f64 * i as f64 * 0.37 / p as f64 * 6.0 + c as f64).sin())
                    .collect()
            })
            .collect();
        let rows: Vec<(Vec<f64>, f64)> = (0..n)
            .map(|_| {
                let f: Vec<f64> = (0..comps)
                    .map(|c| (rng.random::<f64>() - 0.5) * 2.0f64.powi(-(c as i32)))
                    .collect();
                let x: Vec<f64> = (0..p)
                    .map(|i| {
                        1.0 + (0..comps).map(|c| f[c] * basis[c][i]).sum::<f64>()
                            + 0.02 * (rng.random::<f64>() - 0.5)
                    })
                    .collect();
                let y = 3.0 + 2.0 * f[0] - 5.0 * f[3] + 0.05 * (rng.random::<f64>() - 0.5);
                (x, y)
            })
            .collect();
        let shift = rows[0].0.clone();
        let sy = rows[0].1;
        let mut accs: Vec<Accumulator> = (0..k).map(|_| Accumulator::new(p, 32)).collect();
        let mut total = Accumulator::new(p, 32);
        for (r, (x, y)) in rows.iter().enumerate() {
            accs[(r * 7 + 3) % k].push_shifted(x, &shift, y - sy, Par::Seq);
            total.push_shifted(x, &shift, y - sy, Par::Seq);
        }
        let folds = accs.iter_mut().map(|a| a.finish(Par::Seq)).collect();
        (total.finish(Par::Seq), folds, shift, sy)
    }

    pub(super) fn alphas() -> Vec<f64> {
        (0..=16)
            .map(|i| 10f64.powf(-2.0 + 0.5 * i as f64))
            .collect()
    }

    fn check_against_eigh_per_fold(n: usize, p: usize, k: usize, seed: u64) -> CvResult {
        let (total, folds, shift, sy) = data(n, p, k, seed);
        let path = RidgePath::new(&total, &shift, sy, Par::Seq).unwrap();
        let al = alphas();
        let got = cv_sse_pcg(
            &path,
            &total,
            &folds,
            &shift,
            sy,
            &al,
            &PcgOptions::default(),
            Par::Seq,
        )
        .unwrap();
        let (want, rows) = cv_sse(&total, &folds, &shift, sy, &al, Par::Seq).unwrap();
        assert_eq!(got.rows, rows);
        assert_eq!(got.rows, n as u64);
        assert_eq!(got.iterations.len(), k);
        for (a, (g, w)) in al.iter().zip(got.sse.iter().zip(&want)) {
            let rel = (g - w).abs() / w.abs();
            assert!(rel <= 1e-9, "n={n} p={p} K={k} α={a}: {g} vs {w} ({rel:e})");
        }
        got
    }

    #[test]
    fn matches_one_eigendecomposition_per_fold() {
        for &(n, p, k) in &[(600, 64, 3), (900, 128, 5), (1200, 256, 3), (800, 200, 5)] {
            let got = check_against_eigh_per_fold(n, p, k, p as u64);
            assert_eq!(got.fallback_folds, 0);
            for f in &got.iterations {
                assert!(f.max >= 1 && f.max <= 200 && !f.fallback, "{f:?}");
            }
        }
    }

    #[test]
    fn matches_with_fewer_rows_than_pixels() {
        // Rank-deficient bins: every fold's training covariance is singular
        // and α goes down to 1e-2.
        for &(n, p, k) in &[(60, 128, 3), (100, 256, 5)] {
            let got = check_against_eigh_per_fold(n, p, k, 7 + p as u64);
            assert_eq!(got.fallback_folds, 0, "{:?}", got.iterations);
        }
    }

    #[test]
    fn more_regularisation_converges_faster() {
        let got = check_against_eigh_per_fold(900, 128, 5, 11);
        for f in &got.iterations {
            assert!(
                f.per_alpha[f.per_alpha.len() - 1] < f.per_alpha[0],
                "{:?}",
                f.per_alpha
            );
        }
    }

    #[test]
    fn bitwise_identical_across_threads() {
        let (total, folds, shift, sy) = data(700, 300, 5, 3);
        let path = RidgePath::new(&total, &shift, sy, Par::Seq).unwrap();
        let al = alphas();
        let opts = PcgOptions::default();
        let seq = cv_sse_pcg(&path, &total, &folds, &shift, sy, &al, &opts, Par::Seq).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let two = pool.install(|| {
            cv_sse_pcg(&path, &total, &folds, &shift, sy, &al, &opts, Par::rayon(2)).unwrap()
        });
        assert_eq!(seq.iterations, two.iterations);
        for (a, b) in seq.sse.iter().zip(&two.sse) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }

    #[test]
    fn falls_back_to_a_direct_solve_and_says_so() {
        let (total, folds, shift, sy) = data(300, 64, 3, 5);
        let path = RidgePath::new(&total, &shift, sy, Par::Seq).unwrap();
        let al = alphas();
        let opts = PcgOptions {
            max_iter: 2,
            ..Default::default()
        };
        let got = cv_sse_pcg(&path, &total, &folds, &shift, sy, &al, &opts, Par::Seq).unwrap();
        assert_eq!(got.fallback_folds, 3);
        assert!(got.iterations.iter().all(|f| f.fallback));
        let (want, _) = cv_sse(&total, &folds, &shift, sy, &al, Par::Seq).unwrap();
        assert_eq!(got.sse, want);
    }

    #[test]
    fn both_scalings_agree_and_bad_input_is_refused() {
        let (total, folds, shift, sy) = data(400, 96, 3, 9);
        let path = RidgePath::new(&total, &shift, sy, Par::Seq).unwrap();
        let al = alphas();
        let run = |scaling| {
            let opts = PcgOptions {
                scaling,
                ..Default::default()
            };
            cv_sse_pcg(&path, &total, &folds, &shift, sy, &al, &opts, Par::Seq).unwrap()
        };
        let (a, b) = (run(Scaling::RowFraction), run(Scaling::Trace));
        for (x, y) in a.sse.iter().zip(&b.sse) {
            assert!((x - y).abs() <= 1e-9 * y, "{x} vs {y}");
        }
        let opts = PcgOptions::default();
        for bad in [0.0, -1.0, f64::NAN] {
            assert!(cv_sse_pcg(
                &path,
                &total,
                &folds,
                &shift,
                sy,
                &[1.0, bad],
                &opts,
                Par::Seq
            )
            .is_err());
        }
        assert!(cv_sse_pcg(&path, &folds[0], &folds, &shift, sy, &al, &opts, Par::Seq).is_err());
    }
}

//! Exact K-fold CV with each fold solved by the cheapest exact method
//! (`--cv auto`), chosen by a cost model calibrated on this machine.
//!
//! A fold's training model needs (C_k + αI) w = c_k for every α. Three
//! exact solvers:
//!
//! * **band**: reduce C_k to a band matrix by an orthogonal similarity
//!   ([`crate::linalg::BandForm`], LAPACK `dsytrd_sy2sb`: the BLAS-3 first
//!   half of an eigendecomposition), then one band Cholesky per α and one
//!   back-transform of all the α's solutions. No eigenvectors, no
//!   tridiagonal stage (`dsytrd` is half BLAS-2 and was measured only 1.4×
//!   faster than `dsyevd` at P = 2048, benches/proto/tridiagonal_cv.py).
//! * **pcg**: block PCG from the bin's own eigendecomposition
//!   ([`super::cv_sse_pcg`]'s fold solve), worth it when the fold's
//!   complement holds many more rows than P (few iterations).
//! * **eigh**: the fold's own eigendecomposition, the last resort when the
//!   band Cholesky meets a matrix that is not positive definite to working
//!   precision.
//!
//! The group's own models come from its eigendecomposition when a PCG fold
//! or the caller needs the eigenvectors; otherwise from its own band
//! reduction ([`crate::ridge::BandPath`]: the models on the sweep's grid,
//! the eigenvalues for dof and GCV, about half a `dsyevd`). That solve runs
//! concurrently with the folds that do not need it (band), then the PCG
//! folds run; every solve is sequential
//! (OpenBLAS single-threaded), so the bits do not depend on the thread
//! count, and the folds' errors are summed in fold order.

use faer::Par;
use rayon::prelude::*;
use serde::Serialize;

use super::{centred, complement, fold_sse_eigh, preconditioner, validate, Centred, FoldCtx};
use super::{PcgOptions, RidgePath};
use crate::linalg::{BandForm, HAS_BAND_FORM};
use crate::ridge::{BandPath, GroupPath};
use crate::stats::SuffStats;
use crate::{Error, FitError, Result};

/// How one fold's training model was solved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FoldSolver {
    /// Block PCG from the bin's decomposition.
    Pcg,
    /// Band reduction, one band Cholesky per α.
    Band,
    /// The fold's own eigendecomposition.
    Eigh,
}

/// Which solver each fold gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solvers {
    /// The cheapest by the cost model ([`pcg_budget`], [`predicted_iterations`]):
    /// PCG for a fold predicted to converge within its budget, unless the
    /// group's own path could be its band path ([`OwnPath::Grid`]) and the
    /// PCG folds together save less than the eigendecomposition they need
    /// costs beyond it (then every fold takes the band reduction).
    CostModel,
    /// This one for every fold (for tests and measurements); a PCG fold
    /// that does not converge within [`PcgOptions::default`]'s cap, or a
    /// band fold that is not positive definite, still falls back.
    Force(FoldSolver),
}

/// What the group's own path must give besides the CV.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OwnPath<'a> {
    /// Its eigendecomposition (`RidgePath::new(total, shift_x, shift_y,
    /// Par::Seq)`, bit for bit): every α, and the eigenvectors (the gate's
    /// PCA).
    Eigen,
    /// Its models on this grid (the sweep's, α = 0 allowed), from its own
    /// band reduction unless a fold goes to PCG (which needs the
    /// eigendecomposition) or the direct solver is forced to `Eigh`.
    Grid(&'a [f64]),
}

/// Result of [`cv_sse_auto`].
#[derive(Debug, Clone, PartialEq)]
pub struct AutoResult {
    /// Validation SSE per α, summed over the folds in fold order.
    pub sse: Vec<f64>,
    /// Rows validated (MSE = SSE / rows).
    pub rows: u64,
    /// How each non-empty fold was solved, in order.
    pub solvers: Vec<FoldSolver>,
    /// The largest PCG iteration count per α of each non-empty fold solved
    /// by PCG (None for the others).
    pub pcg_iterations: Vec<Option<usize>>,
    /// Folds that tried PCG, did not converge within their budget and were
    /// solved by the band reduction instead.
    pub pcg_gave_up: usize,
}

/// Block PCG iterations a fold's solve is predicted to need, from the
/// ratio ρ = training rows / P: `ITER_FLOOR + ITER_SLOPE / (ρ − 1)`,
/// infinite for ρ ≤ 1 (the complement is singular and the preconditioner
/// poor). Fitted to the sweep's own iteration counts at 60k rows × 2048
/// (teff-mh bins, 5 folds, 50 α from 1e-2 to 1e6): ρ = 23.4 → 13, 3.8 →
/// 24–26, 2.2 → 40–42, 1.4 → 78–84, 1.24 → 122 (the fit over-predicts the
/// last two, on the safe side); README's 100k × 4096 counts (ρ ≥ 5 → 13–16)
/// agree.
pub fn predicted_iterations(train_rows: u64, p: usize) -> f64 {
    let rho = train_rows as f64 / p.max(1) as f64;
    if rho <= 1.0 {
        f64::INFINITY
    } else {
        ITER_FLOOR + ITER_SLOPE / (rho - 1.0)
    }
}

const ITER_FLOOR: f64 = 11.3;
const ITER_SLOPE: f64 = 38.4;

/// A fold's band solve (reduction, α band Choleskys, back-transform) costs
/// as much as `BAND_COST · P / m` block PCG iterations of m columns: PCG
/// costs three P × P × m products per iteration (fewer as columns
/// converge), the reduction ~(4/3)P³ at a lower rate. Calibrated with
/// `cargo bench --bench pcg` (its κ column: band CPU per fold over PCG CPU
/// per block iteration, times m/P) on this machine, P = 2048, 50 α, 5
/// folds, load ≈ 3.3: κ = 0.347 (12k rows, 22–23 iterations per fold) and
/// 0.417 (6k rows, 35–37); the smaller is taken, which favours the band
/// reduction (its cost does not depend on the data).
const BAND_COST: f64 = 0.35;

/// The block PCG iterations a fold may spend before the band reduction
/// would have been cheaper: `BAND_COST · P / m` for m α values. A fold goes
/// to PCG when its [`predicted_iterations`] fit in the budget, and falls
/// back to the band reduction when PCG has not converged by then.
pub fn pcg_budget(p: usize, alphas: usize) -> f64 {
    BAND_COST * p as f64 / alphas.max(1) as f64
}

/// What a group's eigendecomposition costs beyond its own band path
/// ([`BandPath`]), in band folds, at order `p`; log-linear between the two
/// orders calibrated, held outside them. P = 2048, one thread: `dsyevd`
/// 1.36–1.55 s, the band path ≈ 0.69 s (the sum of its parts' timings),
/// a band fold 0.46–0.49 s: 1.6.
/// P = 4096: the sweep of the 1M-row statistics (README, Performance) timed
/// every group both ways; groups whose PCG folds were predicted 12.5–16.3
/// iterations of a 28.7 budget (saving 2.2–2.8 band folds) were as fast or
/// faster all by band reduction, those predicted ≤ 12 (saving ≥ 2.9) faster
/// by PCG: 2.85.
fn eigh_extra(p: usize) -> f64 {
    let t = ((p.max(1) as f64).log2() - 11.0).clamp(0.0, 1.0);
    1.6 + t * 1.25
}

/// Exact K-fold CV of one group with each fold solved as `solvers` says
/// (see the module docs), together with the group's own path as `own` asks
/// (the caller needs it anyway). `folds` are the group's per-fold
/// sums around (`shift_x`, `shift_y`), `total` their sum, every α finite
/// and > 0. Runs in the calling rayon pool; the result does not depend on
/// its thread count.
///
/// Errors: [`Error::InvalidParameter`] for an α that is not finite and > 0;
/// [`FitError::TooFewRows`] when the group has no rows or a fold's
/// complement has fewer than two.
pub fn cv_sse_auto(
    total: &SuffStats,
    folds: &[SuffStats],
    shift_x: &[f64],
    shift_y: f64,
    alphas: &[f64],
    solvers: Solvers,
    own: OwnPath<'_>,
) -> Result<(GroupPath, AutoResult)> {
    if let Some(a) = alphas.iter().find(|a| !(a.is_finite() && **a > 0.0)) {
        return Err(Error::InvalidParameter {
            name: "alpha",
            problem: format!("exact K-fold CV needs finite α > 0, got {a}"),
        });
    }
    let live: Vec<&SuffStats> = folds.iter().filter(|f| f.n > 0).collect();
    if live.is_empty() {
        return Err(FitError::TooFewRows {
            model: "exact K-fold CV",
            set: "this group",
            need: 2,
            rows: total.n,
        }
        .into());
    }
    let budget = pcg_budget(total.p, alphas.len());
    let mut pcg: Vec<bool> = live
        .iter()
        .map(|f| match solvers {
            Solvers::Force(s) => s == FoldSolver::Pcg,
            Solvers::CostModel => predicted_iterations(total.n - f.n, total.p) <= budget,
        })
        .collect();
    if solvers == Solvers::CostModel && matches!(own, OwnPath::Grid(_)) && HAS_BAND_FORM {
        // PCG folds cost the group its eigendecomposition instead of its
        // own band path: worth it only when they save more than that.
        let saved: f64 = live
            .iter()
            .zip(&pcg)
            .filter(|(_, &p)| p)
            .map(|(f, _)| 1.0 - predicted_iterations(total.n - f.n, total.p) / budget)
            .sum();
        if saved <= eigh_extra(total.p) {
            pcg.fill(false);
        }
    }
    let plan = Plan {
        pcg,
        max_iter: match solvers {
            Solvers::Force(_) => PcgOptions::default().max_iter,
            Solvers::CostModel => budget.floor() as usize,
        },
        direct: match solvers {
            Solvers::Force(FoldSolver::Eigh) => FoldSolver::Eigh,
            _ => FoldSolver::Band,
        },
    };
    let sums = Sums {
        total,
        shift_x,
        shift_y,
        alphas,
    };
    run(&sums, &live, &plan, own)
}

/// What every fold of a group shares.
struct Sums<'a> {
    total: &'a SuffStats,
    shift_x: &'a [f64],
    shift_y: f64,
    alphas: &'a [f64],
}

/// How a group's folds are to be solved.
struct Plan {
    /// Per non-empty fold: PCG first (else `direct`).
    pcg: Vec<bool>,
    /// PCG iterations before a fold gives up and is solved by the band reduction.
    max_iter: usize,
    /// The direct solver: band (eigh as its fallback), or eigh.
    direct: FoldSolver,
}

/// Runs `plan` on the non-empty folds `live`: the group's own path
/// concurrently with the direct folds, then the PCG folds; sums in fold order.
fn run(
    sums: &Sums<'_>,
    live: &[&SuffStats],
    plan: &Plan,
    own: OwnPath<'_>,
) -> Result<(GroupPath, AutoResult)> {
    let direct = |f: &SuffStats| match plan.direct {
        FoldSolver::Eigh => Fold::eigh(sums, f),
        _ => Fold::band_or_eigh(sums, f),
    };
    let any_pcg = plan.pcg.iter().any(|&p| p);
    let band_grid = match own {
        OwnPath::Grid(g) if !any_pcg && plan.direct == FoldSolver::Band => Some(g),
        _ => None,
    };
    let (path, direct_folds) = rayon::join(
        || own_path(sums, band_grid),
        || -> Vec<Option<Result<Fold>>> {
            live.par_iter()
                .zip(&plan.pcg)
                .with_max_len(1)
                .map(|(f, &pcg)| (!pcg).then(|| direct(f)))
                .collect()
        },
    );
    let path = path?;
    let solved: Vec<Result<Fold>> = match path.eigen().filter(|_| any_pcg) {
        None => direct_folds
            .into_iter()
            .map(|d| d.expect("without PCG folds every fold is direct"))
            .collect(),
        Some(eigen) => pcg_folds(sums, live, plan, eigen, direct_folds),
    };
    let mut out = AutoResult {
        sse: vec![0.0; sums.alphas.len()],
        rows: 0,
        solvers: Vec::with_capacity(live.len()),
        pcg_iterations: Vec::with_capacity(live.len()),
        pcg_gave_up: 0,
    };
    for (f, r) in live.iter().zip(solved) {
        let r = r?;
        out.sse.iter_mut().zip(&r.sse).for_each(|(o, e)| *o += e);
        out.rows += f.n;
        out.solvers.push(r.solver);
        out.pcg_iterations.push(r.iterations);
        out.pcg_gave_up += usize::from(r.gave_up);
    }
    Ok((path, out))
}

/// The group's own path: by its band reduction on `band_grid` when given
/// (the eigendecomposition when a band Cholesky fails), else by its
/// eigendecomposition.
fn own_path(sums: &Sums<'_>, band_grid: Option<&[f64]>) -> Result<GroupPath> {
    let (total, x, y) = (sums.total, sums.shift_x, sums.shift_y);
    if let Some(grid) = band_grid {
        if let Some(b) = BandPath::new(total, x, y, grid)? {
            return Ok(GroupPath::Band(b));
        }
    }
    Ok(GroupPath::Eigen(RidgePath::new(total, x, y, Par::Seq)?))
}

/// The folds planned for PCG, from the group's eigendecomposition, beside
/// the direct folds' results; a PCG fold over its budget takes the band
/// reduction.
fn pcg_folds(
    sums: &Sums<'_>,
    live: &[&SuffStats],
    plan: &Plan,
    path: &RidgePath,
    direct_folds: Vec<Option<Result<Fold>>>,
) -> Vec<Result<Fold>> {
    let opts = PcgOptions {
        max_iter: plan.max_iter,
        ..PcgOptions::default()
    };
    let (lambda, vt) = preconditioner(path);
    let ctx = FoldCtx {
        total: sums.total,
        lambda: &lambda,
        v: path.eigenvectors(),
        vt: vt.as_ref(),
        shift_x: sums.shift_x,
        shift_y: sums.shift_y,
        alphas: sums.alphas,
        opts: &opts,
    };
    live.par_iter()
        .zip(direct_folds)
        .with_max_len(1)
        .map(|(f, d)| match d {
            Some(r) => r,
            None => match ctx.pcg(f, Par::Seq)? {
                Some((sse, its)) => Ok(Fold::pcg(sse, &its)),
                None => Ok(Fold {
                    gave_up: true,
                    ..Fold::band_or_eigh(sums, f)?
                }),
            },
        })
        .collect()
}

/// One fold's validation SSE per α and how it was obtained.
struct Fold {
    sse: Vec<f64>,
    solver: FoldSolver,
    iterations: Option<usize>,
    gave_up: bool,
}

impl Fold {
    fn pcg(sse: Vec<f64>, iterations: &[usize]) -> Fold {
        Fold {
            sse,
            solver: FoldSolver::Pcg,
            iterations: Some(iterations.iter().copied().max().unwrap_or(0)),
            gave_up: false,
        }
    }

    fn eigh(sums: &Sums<'_>, fold: &SuffStats) -> Result<Fold> {
        complement(sums.total, fold)?;
        let (total, x, y, alphas) = (sums.total, sums.shift_x, sums.shift_y, sums.alphas);
        Ok(Fold {
            sse: fold_sse_eigh(total, fold, x, y, alphas)?,
            solver: FoldSolver::Eigh,
            iterations: None,
            gave_up: false,
        })
    }

    /// The band reduction, or the fold's eigendecomposition when a band
    /// Cholesky fails (or without LAPACK).
    fn band_or_eigh(sums: &Sums<'_>, fold: &SuffStats) -> Result<Fold> {
        match fold_sse_band(sums, fold)? {
            Some(sse) => Ok(Fold {
                sse,
                solver: FoldSolver::Band,
                iterations: None,
                gave_up: false,
            }),
            None => Fold::eigh(sums, fold),
        }
    }
}

/// Validation SSE per α of the model trained on `total − fold`, by the
/// band reduction of its centred covariance; None when some C_k + αI is
/// not positive definite to working precision, or without LAPACK.
fn fold_sse_band(sums: &Sums<'_>, fold: &SuffStats) -> Result<Option<Vec<f64>>> {
    if !HAS_BAND_FORM {
        return Ok(None);
    }
    let train = complement(sums.total, fold)?;
    let (ck, c, _, m, my) = centred(&train);
    drop(train);
    let band = BandForm::new(&ck)?;
    let Some(w) = band.solve_shifted(&c, sums.alphas)? else {
        return Ok(None);
    };
    drop(band);
    let fit = Centred { m: &m, my };
    Ok(Some(validate(
        fold,
        ck,
        &w,
        fit,
        sums.shift_x,
        sums.shift_y,
        Par::Seq,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cv::tests::{alphas, data};
    use crate::ridge::cv_sse;

    fn close(got: &[f64], want: &[f64], what: &str) {
        for (g, w) in got.iter().zip(want) {
            let rel = (g - w).abs() / w.abs();
            assert!(rel <= 1e-9, "{what}: {g} vs {w} ({rel:e})");
        }
    }

    fn bits(x: &[f64]) -> Vec<u64> {
        x.iter().map(|v| v.to_bits()).collect()
    }

    /// Every solver, forced, and the cost model's choice give the CV of one
    /// eigendecomposition per fold (`ridge::cv_sse`, itself checked against
    /// explicit refits), and the group's path bit for bit.
    #[test]
    fn every_solver_matches_one_eigendecomposition_per_fold() {
        let cases = [
            (600, 64, 3),
            (900, 128, 5),
            (1200, 256, 3),
            (100, 256, 5),
            (40, 7, 3),
        ];
        for &(n, p, k) in &cases {
            let (total, folds, shift, sy) = data(n, p, k, 17 + p as u64);
            let al = alphas();
            let (want, rows) = cv_sse(&total, &folds, &shift, sy, &al, Par::Seq).unwrap();
            let own = RidgePath::new(&total, &shift, sy, Par::Seq).unwrap();
            for solvers in [
                Solvers::Force(FoldSolver::Band),
                Solvers::Force(FoldSolver::Pcg),
                Solvers::Force(FoldSolver::Eigh),
                Solvers::CostModel,
            ] {
                let what = format!("n={n} p={p} K={k} {solvers:?}");
                let (path, got) =
                    cv_sse_auto(&total, &folds, &shift, sy, &al, solvers, OwnPath::Eigen).unwrap();
                let path = path.eigen().expect("asked for").clone();
                assert_eq!(got.rows, rows, "{what}");
                assert_eq!(got.solvers.len(), k, "{what}");
                close(&got.sse, &want, &what);
                assert_eq!(bits(path.eigenvalues()), bits(own.eigenvalues()), "{what}");
                if let Solvers::Force(s) = solvers {
                    if s != FoldSolver::Pcg {
                        assert!(got.solvers.iter().all(|&x| x == s), "{what}: {got:?}");
                    }
                }
            }
        }
    }

    /// Asked for its models on a grid only, a group whose folds all take
    /// the band reduction solves itself by one too: the same CV bit for
    /// bit, models and figures within rounding of the eigendecomposition's.
    /// With a PCG fold (or the eigendecomposition forced) it keeps its
    /// eigendecomposition, bit for bit.
    #[test]
    fn the_group_takes_the_band_reduction_unless_pcg_needs_its_eigenvectors() {
        let (total, folds, shift, sy) = data(900, 128, 5, 21);
        let mut grid = vec![0.0];
        grid.extend(alphas());
        let al = alphas();
        let own = RidgePath::new(&total, &shift, sy, Par::Seq).unwrap();
        let want = own.grid(&grid, Par::Seq);
        for solvers in [
            Solvers::Force(FoldSolver::Band),
            Solvers::CostModel,
            Solvers::Force(FoldSolver::Pcg),
            Solvers::Force(FoldSolver::Eigh),
        ] {
            let what = format!("{solvers:?}");
            let (path, got) = cv_sse_auto(
                &total,
                &folds,
                &shift,
                sy,
                &al,
                solvers,
                OwnPath::Grid(&grid),
            )
            .unwrap();
            let (_, eig) =
                cv_sse_auto(&total, &folds, &shift, sy, &al, solvers, OwnPath::Eigen).unwrap();
            assert_eq!(bits(&got.sse), bits(&eig.sse), "{what}");
            let band = got.solvers.iter().all(|&s| s == FoldSolver::Band);
            assert_eq!(band, matches!(path, GroupPath::Band(_)), "{what}: {got:?}");
            assert_eq!(
                band,
                solvers != Solvers::Force(FoldSolver::Pcg)
                    && solvers != Solvers::Force(FoldSolver::Eigh),
                "{what}"
            );
            let g = path.into_grid(&grid, Par::Seq);
            assert_eq!(g.usable, want.usable, "{what}");
            for j in 0..g.usable.len() {
                let scale = (0..128).map(|i| want.w[(i, j)].abs()).fold(0.0, f64::max);
                for i in 0..128 {
                    let d = (g.w[(i, j)] - want.w[(i, j)]).abs();
                    assert!(d <= 1e-9 * scale, "{what}: α#{j} w[{i}] off by {d:e}");
                    if !band {
                        assert_eq!(g.w[(i, j)].to_bits(), want.w[(i, j)].to_bits(), "{what}");
                    }
                }
                close(&g.gcv[j..=j], &want.gcv[j..=j], &what);
                close(&g.dof[j..=j], &want.dof[j..=j], &what);
                close(&g.intercept[j..=j], &want.intercept[j..=j], &what);
                assert!((g.train_r2[j] - want.train_r2[j]).abs() <= 1e-9, "{what}");
            }
        }
    }

    #[test]
    fn cost_model_sends_tall_folds_to_pcg_and_the_rest_to_the_band_reduction() {
        // The sweep's own figures at P = 2048, 50 α: the global model's
        // folds (48k rows) within the budget, a 6k-row bin's not.
        let budget = pcg_budget(2048, 50);
        assert!(predicted_iterations(48_000, 2048) <= budget, "{budget}");
        assert!(predicted_iterations(4_800, 2048) > budget);
        assert_eq!(predicted_iterations(2048, 2048), f64::INFINITY);
        // Few α make PCG cheap: every fold of a tall group goes to it.
        let by_cost_model = |rows, al: &[f64]| {
            let (total, folds, shift, sy) = data(rows, 128, 5, 3);
            let (_, got) = cv_sse_auto(
                &total,
                &folds,
                &shift,
                sy,
                al,
                Solvers::CostModel,
                OwnPath::Eigen,
            )
            .unwrap();
            let (want, _) = cv_sse(&total, &folds, &shift, sy, al, Par::Seq).unwrap();
            close(&got.sse, &want, "by the cost model");
            got
        };
        let got = by_cost_model(6000, &[1e-1, 1e1, 1e3]);
        assert!(got.solvers.iter().all(|&s| s == FoldSolver::Pcg), "{got:?}");
        // Unless the group could take its own band path instead of the
        // eigendecomposition PCG needs, and PCG saves less than that costs:
        // 5 folds × (1 − 12.4 / 14.9 iterations) < 1.6 band folds.
        let (total, folds, shift, sy) = data(6000, 128, 5, 3);
        let solve = |al: &[f64]| {
            let own = OwnPath::Grid(al);
            cv_sse_auto(&total, &folds, &shift, sy, al, Solvers::CostModel, own).unwrap()
        };
        let (path, got) = solve(&[1e-1, 1e1, 1e3]);
        assert!(
            got.solvers.iter().all(|&s| s == FoldSolver::Band),
            "{got:?}"
        );
        assert!(matches!(path, GroupPath::Band(_)));
        // With one α the PCG budget is 44.8 iterations: 5 × (1 − 12.4 /
        // 44.8) > 1.6, PCG and the eigendecomposition.
        let (path, got) = solve(&[1e1]);
        assert!(got.solvers.iter().all(|&s| s == FoldSolver::Pcg), "{got:?}");
        assert!(matches!(path, GroupPath::Eigen(_)));
        assert_eq!(eigh_extra(2048), 1.6);
        assert_eq!(eigh_extra(4096), 2.85);
        assert_eq!(eigh_extra(64), 1.6);
        // Many α make it dear: a short group goes to the band reduction.
        let got = by_cost_model(600, &alphas());
        assert!(
            got.solvers.iter().all(|&s| s == FoldSolver::Band),
            "{got:?}"
        );
    }

    #[test]
    fn pcg_over_its_budget_falls_back_to_the_band_reduction() {
        let (total, folds, shift, sy) = data(900, 128, 5, 8);
        let al = alphas();
        let sums = Sums {
            total: &total,
            shift_x: &shift,
            shift_y: sy,
            alphas: &al,
        };
        let live: Vec<&SuffStats> = folds.iter().collect();
        let plan = Plan {
            pcg: vec![true; 5],
            max_iter: 1,
            direct: FoldSolver::Band,
        };
        let (_, got) = run(&sums, &live, &plan, OwnPath::Eigen).unwrap();
        assert_eq!(got.pcg_gave_up, 5);
        assert!(got.solvers.iter().all(|&s| s == FoldSolver::Band));
        let band = Solvers::Force(FoldSolver::Band);
        let (_, want) = cv_sse_auto(&total, &folds, &shift, sy, &al, band, OwnPath::Eigen).unwrap();
        assert_eq!(bits(&got.sse), bits(&want.sse));
    }

    #[test]
    fn bitwise_identical_across_threads() {
        let (total, folds, shift, sy) = data(700, 300, 5, 3);
        let al = alphas();
        let pool = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        };
        for solvers in [
            Solvers::CostModel,
            Solvers::Force(FoldSolver::Band),
            Solvers::Force(FoldSolver::Pcg),
        ] {
            let go = |n| {
                pool(n).install(|| {
                    cv_sse_auto(&total, &folds, &shift, sy, &al, solvers, OwnPath::Grid(&al))
                        .unwrap()
                })
            };
            let ((p1, one), (p2, two)) = (go(1), go(2));
            assert_eq!(one.solvers, two.solvers);
            assert_eq!(bits(&one.sse), bits(&two.sse), "{solvers:?}");
            let (g1, g2) = (p1.into_grid(&al, Par::Seq), p2.into_grid(&al, Par::Seq));
            let col =
                |g: &crate::ridge::Grid| bits(g.w.col(0).try_as_col_major().unwrap().as_slice());
            assert_eq!(col(&g1), col(&g2), "{solvers:?}");
            assert_eq!(bits(&g1.gcv), bits(&g2.gcv), "{solvers:?}");
            assert_eq!(bits(&g1.dof), bits(&g2.dof), "{solvers:?}");
        }
    }

    #[test]
    fn bad_input_is_refused() {
        let (total, folds, shift, sy) = data(200, 16, 3, 1);
        let cm = Solvers::CostModel;
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                cv_sse_auto(&total, &folds, &shift, sy, &[1.0, bad], cm, OwnPath::Eigen),
                Err(Error::InvalidParameter { name: "alpha", .. })
            ));
        }
        let empty = vec![SuffStats::zeros(16); 3];
        assert!(matches!(
            cv_sse_auto(&total, &empty, &shift, sy, &[1.0], cm, OwnPath::Eigen),
            Err(Error::Fit(FitError::TooFewRows { .. }))
        ));
        // One fold with rows: its complement is empty.
        let one = [folds[0].clone(), SuffStats::zeros(16)];
        assert!(matches!(
            cv_sse_auto(&folds[0], &one, &shift, sy, &[1.0], cm, OwnPath::Eigen),
            Err(Error::Fit(FitError::TooFewRows { .. }))
        ));
    }
}

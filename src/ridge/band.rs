//! A group's models on one α grid from a band reduction of its covariance,
//! for a sweep that needs neither its eigenvectors nor any α outside the
//! grid (`--cv auto` on a group whose folds all take the band reduction).
//!
//! C = Q B Qᵀ ([`BandForm`], LAPACK `dsytrd_sy2sb`), then for each α one
//! band Cholesky of B + αI, and Q applied once to c and once to all the
//! solutions. The training fit follows from the normal equations
//! (C + αI) w = c: wᵀCw = wᵀc − α‖w‖², so RSS(α) = S_yy − wᵀc − α‖w‖²,
//! which is the eigendecomposition's Σ zᵢ²(λᵢ + 2α)/(λᵢ + α)² written in w.
//! The degrees of freedom need the eigenvalues, not the vectors: B goes on
//! to tridiagonal form and its eigenvalues ([`BandForm::eigenvalues`]).
//! By its parts' timings (`benches/proto/band_eigenvalues.c`, one thread)
//! all of it costs about half of one `dsyevd` at P = 2048 (reduction 0.32 s,
//! eigenvalues 0.22 s, 50 solves and back-transforms ≈ 0.10 s, against
//! 1.36–1.55 s) and a third at P = 4096 (reduction and eigenvalues 3.3 s
//! against 11.8 s).

use faer::Mat;

use super::{centred, check_fit_inputs, dof_at, gcv_at, rss_of, usable_alphas, Grid};
use crate::linalg::{BandForm, HAS_BAND_FORM};
use crate::stats::SuffStats;
use crate::Result;

/// One group's models on an α grid, from its covariance's band reduction
/// and eigenvalues, without eigenvectors (see the module docs).
#[derive(Debug, Clone)]
pub struct BandPath {
    pub(super) alphas: Vec<f64>,
    pub(super) y_mean: f64,
    pub(super) syy: f64,
    pub(super) grid: Grid,
}

impl BandPath {
    /// Solves the group summed around (`shift_x`, `shift_y`) on `alphas`
    /// (each finite and ≥ 0; α = 0 is left out on a singular covariance, as
    /// [`super::RidgePath::grid`] does). None when some B + αI is not
    /// positive definite to working precision, or without LAPACK: the
    /// caller then takes the eigendecomposition. Sequential kernels.
    pub fn new(
        stats: &SuffStats,
        shift_x: &[f64],
        shift_y: f64,
        alphas: &[f64],
    ) -> Result<Option<BandPath>> {
        check_fit_inputs(stats, shift_x, "a Ridge model")?;
        if !HAS_BAND_FORM {
            return Ok(None);
        }
        let (cov, c, syy, m, my) = centred(stats);
        let band = BandForm::new(&cov)?;
        drop(cov);
        let lambda = band.eigenvalues()?;
        let usable = usable_alphas(&lambda, alphas);
        let ua: Vec<f64> = usable.iter().map(|&a| alphas[a]).collect();
        let Some(w) = band.solve_shifted(&c, &ua)? else {
            return Ok(None);
        };
        drop(band);
        let x_mean: Vec<f64> = shift_x.iter().zip(&m).map(|(s, mi)| s + mi).collect();
        let y_mean = shift_y + my;
        let mut grid = Grid {
            usable,
            w: Mat::zeros(0, 0),
            intercept: Vec::with_capacity(ua.len()),
            train_r2: Vec::with_capacity(ua.len()),
            dof: Vec::with_capacity(ua.len()),
            gcv: Vec::with_capacity(ua.len()),
        };
        for (j, &alpha) in ua.iter().enumerate() {
            let wj = w.col(j);
            let (mut wc, mut ww, mut xw) = (0.0, 0.0, 0.0);
            for i in 0..c.len() {
                wc += wj[i] * c[i];
                ww += wj[i] * wj[i];
                xw += x_mean[i] * wj[i];
            }
            let rss = rss_of(syy, wc + alpha * ww);
            let dof = dof_at(&lambda, alpha);
            grid.intercept.push(y_mean - xw);
            grid.train_r2.push(1.0 - rss / syy);
            grid.dof.push(dof);
            grid.gcv.push(gcv_at(stats.n, rss, dof));
        }
        grid.w = w;
        Ok(Some(BandPath {
            alphas: alphas.to_vec(),
            y_mean,
            syy,
            grid,
        }))
    }
}

#[cfg(test)]
mod tests {
    use faer::Par;

    use super::*;
    use crate::ridge::RidgePath;
    use crate::stats::Accumulator;
    use rand::{Rng, SeedableRng};

    /// n rows × p pixels of correlated features (a few strong directions
    /// and noise, as spectra are), summed around a shift.
    fn stats(n: usize, p: usize, seed: u64) -> (SuffStats, Vec<f64>, f64) {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let shift: Vec<f64> = (0..p).map(|i| 1.0 + 0.01 * i as f64).collect();
        let mut acc = Accumulator::new(p, 16);
        let mut x = vec![0.0; p];
        for _ in 0..n {
            let (a, b): (f64, f64) = (rng.random(), rng.random());
            for (i, xi) in x.iter_mut().enumerate() {
                let t = i as f64 / p as f64;
                *xi = 1.0
                    + 0.01 * i as f64
                    + a * (3.0 * t).sin()
                    + b * t
                    + 0.05 * rng.random::<f64>();
            }
            let y = 2.0 + 3.0 * a - b + 0.1 * rng.random::<f64>();
            acc.push_shifted(&x, &shift, y - 2.5, Par::Seq);
        }
        (acc.finish(Par::Seq), shift, 2.5)
    }

    fn rel(got: f64, want: f64) -> f64 {
        (got - want).abs() / want.abs().max(1e-300)
    }

    /// The band path's models and figures are the eigendecomposition's to
    /// rounding, for full-rank and singular covariances, with α = 0 in the
    /// grid (kept on full rank, left out on singular), and on one pixel.
    #[test]
    fn matches_the_eigendecomposition() {
        let alphas = [0.0, 1e-3, 0.1, 1.0, 10.0, 1e3, 1e6];
        for &(n, p) in &[(400, 40), (300, 128), (60, 100), (50, 1), (200, 9)] {
            let (s, shift, sy) = stats(n, p, 7 + p as u64);
            let eig = RidgePath::new(&s, &shift, sy, Par::Seq).unwrap();
            let want = eig.grid(&alphas, Par::Seq);
            let Some(band) = BandPath::new(&s, &shift, sy, &alphas).unwrap() else {
                if HAS_BAND_FORM {
                    panic!("n={n} p={p}: positive definite, yet no band path");
                }
                continue;
            };
            let what = format!("n={n} p={p}");
            assert_eq!(band.grid.usable, want.usable, "{what}");
            assert_eq!(
                want.usable.len(),
                alphas.len() - usize::from(n <= p),
                "{what}"
            );
            for j in 0..want.usable.len() {
                let wmax = (0..p).map(|i| want.w[(i, j)].abs()).fold(0.0, f64::max);
                for i in 0..p {
                    let d = (band.grid.w[(i, j)] - want.w[(i, j)]).abs();
                    assert!(d <= 1e-9 * wmax, "{what} α#{j}: w[{i}] off by {d:e}");
                }
                assert!(
                    rel(band.grid.intercept[j], want.intercept[j]) <= 1e-9,
                    "{what}"
                );
                assert!(
                    (band.grid.train_r2[j] - want.train_r2[j]).abs() <= 1e-9,
                    "{what}"
                );
                assert!(rel(band.grid.dof[j], want.dof[j]) <= 1e-9, "{what}");
                assert!(rel(band.grid.gcv[j], want.gcv[j]) <= 1e-9, "{what}");
            }
            assert!(rel(band.syy, eig.syy()) <= 1e-15, "{what}");
            assert!(rel(band.y_mean, eig.y_mean()) <= 1e-15, "{what}");
        }
    }

    #[test]
    fn too_few_rows_are_refused() {
        let (s, shift, sy) = stats(1, 4, 1);
        assert!(BandPath::new(&s, &shift, sy, &[1.0]).is_err());
    }
}

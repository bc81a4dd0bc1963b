//! The gate's 37 features of a spectrum (DESIGN §9).
//!
//! * 10 projections `(x − mean)·v_k` on the leading principal components of
//!   the global covariance (largest eigenvalue first);
//! * for each of eight lines — Ca II 8498, 8542, 8662 Å; Na I 8183, 8195 Å;
//!   Mg I 8806, 8807, 8808 Å — three features: the mean flux in a core
//!   window, the depth `1 − core mean / continuum` and the equivalent width
//!   `Σ (1 − f/continuum)·Δλ` over the core, where the continuum is the mean
//!   flux of two flanking windows, one on each side (floored at
//!   [`CONTINUUM_FLOOR`] × the spectrum's mean absolute flux, against noise);
//! * the summed equivalent widths of Ca II, Na I and Mg I.
//!
//! Windows are in Å relative to the line centre (see [`CORE_HALF_WIDTH`],
//! [`CONTINUUM_INNER`], [`CONTINUUM_OUTER`]); a pixel belongs to a window
//! when its wavelength lies in the closed interval. They are resolved to
//! pixel ranges once, in [`GateFeatures::new`], which fails if a window
//! reaches beyond the grid or holds no pixel. Δλ of a pixel is the width of
//! its cell: half the distance between its neighbours (one-sided at the
//! ends of the grid), so non-uniform grids are handled.
//!
//! With the default 4096-pixel grid over 7100–8850 Å (≈ 0.43 Å per pixel),
//! a core holds 7 pixels and each flank 9 or 10; on a 1024-pixel grid
//! (≈ 1.71 Å per pixel) a core holds 1–2 pixels and each flank 2–3.

use faer::Mat;

use crate::{Error, Result};

/// Number of principal-component projections.
pub const PCA_COMPONENTS: usize = 10;

/// Number of features: 10 projections, 3 per line for 8 lines, 3 summed EWs.
pub const N_FEATURES: usize = PCA_COMPONENTS + 3 * LINES.len() + SPECIES.len();

/// Half-width (Å) of a line's core window: `centre ± 1.5 Å`. Wide enough to
/// hold the cores of the Ca II lines (FWHM of a few Å) and several pixels
/// at 0.43 Å/pixel; the three Mg I cores, 1 Å apart, overlap (intended).
pub const CORE_HALF_WIDTH: f64 = 1.5;

/// Inner edge (Å from the centre) of the flanking continuum windows.
pub const CONTINUUM_INNER: f64 = 4.0;

/// Outer edge (Å from the centre) of the flanking continuum windows: the
/// continuum is the mean flux over `centre − 8 … centre − 4` and
/// `centre + 4 … centre + 8` Å together.
pub const CONTINUUM_OUTER: f64 = 8.0;

/// Floor of the continuum, as a fraction of the spectrum's mean absolute
/// flux over the whole grid. At high noise the few flank pixels can average
/// to zero (noisy flux is clipped at 0) or below; depth and EW would then be
/// infinite or flip sign. A physical continuum near the lines is far above a
/// tenth of the mean flux, so the floor only acts on such noise. A spectrum
/// that is zero everywhere gets depth and EW 0.
pub const CONTINUUM_FLOOR: f64 = 0.1;

/// The species whose equivalent widths are summed, in feature order.
pub(crate) const SPECIES: [&str; 3] = ["CaII", "NaI", "MgI"];

/// The lines: (species index into `SPECIES`, centre in Å), in feature order.
pub const LINES: [(usize, f64); 8] = [
    (0, 8498.0),
    (0, 8542.0),
    (0, 8662.0),
    (1, 8183.0),
    (1, 8195.0),
    (2, 8806.0),
    (2, 8807.0),
    (2, 8808.0),
];

/// The feature names, in order: `pc1` … `pc10`, then per line
/// `CaII_8498_mean`, `CaII_8498_depth`, `CaII_8498_ew`, …, then
/// `CaII_ew_total`, `NaI_ew_total`, `MgI_ew_total`.
pub fn names() -> Vec<String> {
    let mut v: Vec<String> = (1..=PCA_COMPONENTS).map(|k| format!("pc{k}")).collect();
    for (s, c) in LINES {
        for what in ["mean", "depth", "ew"] {
            v.push(format!("{}_{}_{what}", SPECIES[s], c as i64));
        }
    }
    for s in SPECIES {
        v.push(format!("{s}_ew_total"));
    }
    v
}

/// One line's windows resolved to pixels.
#[derive(Debug, Clone, PartialEq)]
struct LineWindows {
    species: usize,
    /// Pixels whose wavelength lies within centre ± [`CORE_HALF_WIDTH`] Å.
    core: std::ops::Range<usize>,
    /// Δλ of each core pixel (Å).
    core_dl: Vec<f64>,
    /// Blue and red continuum pixels.
    blue: std::ops::Range<usize>,
    red: std::ops::Range<usize>,
}

/// The feature map: PCA mean and components, and the line windows on a grid.
#[derive(Debug, Clone, PartialEq)]
pub struct GateFeatures {
    pixels: usize,
    wave: Vec<f64>,
    pca_mean: Vec<f64>,
    /// `P × 10`, column k the k-th leading component.
    pca_components: Mat<f64>,
    lines: Vec<LineWindows>,
}

fn window(wave: &[f64], lo: f64, hi: f64, what: &str) -> Result<std::ops::Range<usize>> {
    let (first, last) = (wave[0], wave[wave.len() - 1]);
    if lo < first || hi > last {
        return Err(Error::InvalidParameter {
            name: "wave",
            problem: format!(
                "gate window {what} [{lo}, {hi}] Å reaches outside the grid [{first}, {last}] Å"
            ),
        });
    }
    let start = wave.partition_point(|&w| w < lo);
    let end = wave.partition_point(|&w| w <= hi);
    if start >= end {
        return Err(Error::InvalidParameter {
            name: "wave",
            problem: format!("gate window {what} [{lo}, {hi}] Å holds no pixel of the grid"),
        });
    }
    Ok(start..end)
}

impl GateFeatures {
    /// The feature map on the wavelength grid `wave` (Å, strictly
    /// increasing) with the PCA mean (length P) and the leading components
    /// (`P × 10`, largest eigenvalue first; see [`leading_components`]).
    ///
    /// Errors: a grid that is not finite and strictly increasing, shapes that
    /// do not match, non-finite PCA values, or a line window outside the grid
    /// or without pixels.
    pub fn new(wave: &[f64], pca_mean: Vec<f64>, pca_components: Mat<f64>) -> Result<Self> {
        let p = wave.len();
        if p < 2 || wave.iter().any(|w| !w.is_finite()) || wave.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::InvalidParameter {
                name: "wave",
                problem: format!(
                    "the wavelength grid must be finite, strictly increasing and have at least 2 pixels ({p} given)"
                ),
            });
        }
        if pca_mean.len() != p || pca_components.nrows() != p {
            return Err(Error::shape(
                "gate PCA mean and components",
                format!("{p} values and {p} rows (the wavelength grid)"),
                format!(
                    "{} values and {} rows",
                    pca_mean.len(),
                    pca_components.nrows()
                ),
            ));
        }
        if pca_components.ncols() != PCA_COMPONENTS {
            return Err(Error::shape(
                "gate PCA components",
                format!("{PCA_COMPONENTS} columns"),
                format!("{} columns", pca_components.ncols()),
            ));
        }
        let finite_components =
            (0..PCA_COMPONENTS).all(|k| pca_components.col(k).iter().all(|v| v.is_finite()));
        if !finite_components || pca_mean.iter().any(|v| !v.is_finite()) {
            return Err(Error::InvalidParameter {
                name: "pca",
                problem: "the gate's PCA mean and components must be finite".into(),
            });
        }
        let cell = |j: usize| -> f64 {
            let lo = if j == 0 { wave[0] } else { wave[j - 1] };
            let hi = if j + 1 == p { wave[p - 1] } else { wave[j + 1] };
            let span = if j == 0 || j + 1 == p { 1.0 } else { 0.5 };
            (hi - lo) * span
        };
        let mut lines = Vec::with_capacity(LINES.len());
        for (species, c) in LINES {
            let name = |part: &str| format!("{} {c} {part}", SPECIES[species]);
            let core = window(
                wave,
                c - CORE_HALF_WIDTH,
                c + CORE_HALF_WIDTH,
                &name("core"),
            )?;
            let blue = window(
                wave,
                c - CONTINUUM_OUTER,
                c - CONTINUUM_INNER,
                &name("blue continuum"),
            )?;
            let red = window(
                wave,
                c + CONTINUUM_INNER,
                c + CONTINUUM_OUTER,
                &name("red continuum"),
            )?;
            lines.push(LineWindows {
                species,
                core_dl: core.clone().map(cell).collect(),
                core,
                blue,
                red,
            });
        }
        Ok(GateFeatures {
            pixels: p,
            wave: wave.to_vec(),
            pca_mean,
            pca_components,
            lines,
        })
    }

    /// The wavelength grid (Å) the windows were resolved on.
    pub fn wave(&self) -> &[f64] {
        &self.wave
    }

    /// Pixels per spectrum.
    pub fn pixels(&self) -> usize {
        self.pixels
    }

    /// Number of features ([`N_FEATURES`] = 37).
    pub fn len(&self) -> usize {
        N_FEATURES
    }

    /// Always false: there are 37 features.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The PCA mean.
    pub(crate) fn pca_mean(&self) -> &[f64] {
        &self.pca_mean
    }

    /// The PCA components (`P × 10`).
    pub fn pca_components(&self) -> faer::MatRef<'_, f64> {
        self.pca_components.as_ref()
    }

    /// Core, blue and red continuum pixel ranges of line `i` (in [`LINES`] order).
    pub fn line_pixels(
        &self,
        i: usize,
    ) -> (
        std::ops::Range<usize>,
        std::ops::Range<usize>,
        std::ops::Range<usize>,
    ) {
        let l = &self.lines[i];
        (l.core.clone(), l.blue.clone(), l.red.clone())
    }

    /// The 37 features of one spectrum `x` (length P) into `out` (length 37).
    ///
    /// Panics if the lengths differ (a programming error); [`Self::compute_rows`]
    /// checks shapes and returns an error instead. Features are finite when
    /// `x` is (see [`CONTINUUM_FLOOR`]).
    pub fn compute(&self, x: &[f64], out: &mut [f64]) {
        assert_eq!(x.len(), self.pixels, "gate features: spectrum length");
        assert_eq!(out.len(), N_FEATURES, "gate features: output length");
        for (k, o) in out[..PCA_COMPONENTS].iter_mut().enumerate() {
            let v = self.pca_components.col(k);
            *o = x
                .iter()
                .zip(&self.pca_mean)
                .zip(v.iter())
                .map(|((a, m), v)| (a - m) * v)
                .sum();
        }
        let floor = CONTINUUM_FLOOR * x.iter().map(|v| v.abs()).sum::<f64>() / x.len() as f64;
        let mut totals = [0.0; SPECIES.len()];
        for (i, l) in self.lines.iter().enumerate() {
            let core = &x[l.core.clone()];
            let mean = core.iter().sum::<f64>() / core.len() as f64;
            let (blue, red) = (&x[l.blue.clone()], &x[l.red.clone()]);
            let continuum = ((blue.iter().sum::<f64>() + red.iter().sum::<f64>())
                / (blue.len() + red.len()) as f64)
                .max(floor);
            let (depth, ew) = if continuum > 0.0 {
                let ew = core
                    .iter()
                    .zip(&l.core_dl)
                    .map(|(f, dl)| (1.0 - f / continuum) * dl)
                    .sum();
                (1.0 - mean / continuum, ew)
            } else {
                (0.0, 0.0)
            };
            let o = &mut out[PCA_COMPONENTS + 3 * i..PCA_COMPONENTS + 3 * i + 3];
            o.copy_from_slice(&[mean, depth, ew]);
            totals[l.species] += ew;
        }
        out[PCA_COMPONENTS + 3 * LINES.len()..].copy_from_slice(&totals);
    }

    /// The features of every row of `x` (row-major `n × P`): row-major `n × 37`.
    pub fn compute_rows(&self, x: &[f64]) -> Result<Vec<f64>> {
        if x.len() % self.pixels != 0 {
            return Err(Error::shape(
                "gate feature rows",
                format!("whole rows of {} pixels", self.pixels),
                format!("{} values", x.len()),
            ));
        }
        let n = x.len() / self.pixels;
        let mut out = vec![0.0; n * N_FEATURES];
        for (row, o) in x
            .chunks_exact(self.pixels)
            .zip(out.chunks_exact_mut(N_FEATURES))
        {
            self.compute(row, o);
        }
        Ok(out)
    }
}

/// The mean and the leading `k` components (largest eigenvalue first, as
/// the columns of a `P × k` matrix) from an eigendecomposition with
/// eigenvalues ascending, such as [`crate::ridge::RidgePath`]'s:
/// `leading_components(path.x_mean(), path.eigenvalues(), path.eigenvectors(), 10)`.
pub fn leading_components(
    mean: &[f64],
    eigenvalues: &[f64],
    eigenvectors: faer::MatRef<'_, f64>,
    k: usize,
) -> Result<(Vec<f64>, Mat<f64>)> {
    let p = eigenvalues.len();
    if eigenvectors.ncols() != p || eigenvectors.nrows() != mean.len() || k > p {
        return Err(Error::shape(
            "leading components",
            format!(
                "k ≤ {p} eigenvalues, eigenvectors {0} × {p}, a mean of length {0}",
                mean.len()
            ),
            format!(
                "k = {k}, eigenvectors {} × {}",
                eigenvectors.nrows(),
                eigenvectors.ncols()
            ),
        ));
    }
    if eigenvalues.windows(2).any(|w| w[0] > w[1]) {
        return Err(Error::InvalidParameter {
            name: "eigenvalues",
            problem: "expected in ascending order".into(),
        });
    }
    let comps = Mat::from_fn(mean.len(), k, |i, j| eigenvectors[(i, p - 1 - j)]);
    Ok((mean.to_vec(), comps))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(pixels: usize) -> Vec<f64> {
        let d = (8850.0 - 7100.0) / (pixels - 1) as f64;
        (0..pixels).map(|j| 7100.0 + d * j as f64).collect()
    }

    fn zero_pca(p: usize) -> (Vec<f64>, Mat<f64>) {
        (vec![0.0; p], Mat::zeros(p, PCA_COMPONENTS))
    }

    #[test]
    fn names_match_the_feature_count() {
        let n = names();
        assert_eq!(n.len(), 37);
        assert_eq!(n.len(), N_FEATURES);
        assert_eq!(n[10], "CaII_8498_mean");
        assert_eq!(n[36], "MgI_ew_total");
    }

    #[test]
    fn windows_outside_or_empty_are_errors() {
        // Ends at 8810 Å: the Mg I red continuum (up to 8816 Å) is outside.
        let wave: Vec<f64> = (0..4000).map(|j| 7100.0 + 0.4275 * j as f64).collect();
        assert!(*wave.last().unwrap() < 8816.0);
        let (m, c) = zero_pca(wave.len());
        let e = GateFeatures::new(&wave, m, c).unwrap_err().to_string();
        assert!(
            e.contains("MgI 8806 red continuum") && e.contains("outside"),
            "{e}"
        );
        // 10 Å pixels: a 3 Å core holds no pixel.
        let wave: Vec<f64> = (0..176).map(|j| 7100.0 + 10.0 * j as f64).collect();
        let (m, c) = zero_pca(wave.len());
        let e = GateFeatures::new(&wave, m, c).unwrap_err().to_string();
        assert!(e.contains("holds no pixel"), "{e}");
        // The default grids are fine.
        for p in [1024, 4096] {
            let (m, c) = zero_pca(p);
            GateFeatures::new(&grid(p), m, c).unwrap();
        }
        // Wrong component count.
        let (m, _) = zero_pca(1024);
        assert!(GateFeatures::new(&grid(1024), m, Mat::zeros(1024, 3)).is_err());
    }

    #[test]
    fn line_features_of_a_box_line() {
        // Continuum 2, a box line of depth 0.25 over 8540–8544 Å (wider than
        // the 8542 core): mean 1.5, depth 0.25, EW = 0.25 × core width.
        let wave = grid(4096);
        let mut x = vec![2.0; wave.len()];
        for (f, w) in x.iter_mut().zip(&wave) {
            if (8540.0..=8544.0).contains(w) {
                *f = 1.5;
            }
        }
        let (m, c) = zero_pca(wave.len());
        let g = GateFeatures::new(&wave, m, c).unwrap();
        let (core, blue, red) = g.line_pixels(1);
        assert_eq!(core.len(), 7);
        assert!(blue.len() >= 9 && red.len() >= 9);
        let mut out = vec![0.0; N_FEATURES];
        g.compute(&x, &mut out);
        let d = wave[1] - wave[0];
        let (mean, depth, ew) = (out[13], out[14], out[15]);
        assert!((mean - 1.5).abs() < 1e-12, "{mean}");
        assert!((depth - 0.25).abs() < 1e-12, "{depth}");
        assert!((ew - 0.25 * 7.0 * d).abs() < 1e-12, "{ew}");
        // Other Ca II lines are flat: the Ca II total is this line's EW.
        assert!((out[34] - ew).abs() < 1e-12);
        assert_eq!(out[35], 0.0);
        assert_eq!(out[36], 0.0);
    }

    #[test]
    fn a_vanishing_continuum_is_floored() {
        let wave = grid(4096);
        let (m, c) = zero_pca(wave.len());
        let g = GateFeatures::new(&wave, m, c).unwrap();
        let mut x = vec![1.0; wave.len()];
        let (core, blue, red) = g.line_pixels(1);
        for j in blue.chain(red) {
            x[j] = 0.0;
        }
        let mut out = vec![0.0; N_FEATURES];
        g.compute(&x, &mut out);
        let floor = CONTINUUM_FLOOR * x.iter().sum::<f64>() / x.len() as f64;
        assert!((out[14] - (1.0 - 1.0 / floor)).abs() < 1e-9, "{}", out[14]);
        assert!(out.iter().all(|v| v.is_finite()));
        // All zero: depth and EW 0.
        g.compute(&vec![0.0; wave.len()], &mut out);
        assert!(out.iter().all(|&v| v == 0.0), "{out:?}");
        assert_eq!(core.len(), 7);
    }

    #[test]
    fn projections_use_the_leading_components_first() {
        let p = 1024;
        let wave = grid(p);
        // Eigenvectors = identity, eigenvalues ascending 0..p: the leading
        // component is pixel p−1, then p−2, …
        let lambda: Vec<f64> = (0..p).map(|i| i as f64).collect();
        let v = Mat::<f64>::identity(p, p);
        let mean = vec![1.0; p];
        let (m, c) = leading_components(&mean, &lambda, v.as_ref(), PCA_COMPONENTS).unwrap();
        let g = GateFeatures::new(&wave, m, c).unwrap();
        let x: Vec<f64> = (0..p).map(|i| 1.0 + i as f64).collect();
        let out = g.compute_rows(&x).unwrap();
        for (k, v) in out[..PCA_COMPONENTS].iter().enumerate() {
            assert_eq!(*v, (p - 1 - k) as f64);
        }
        assert!(g.compute_rows(&x[1..]).is_err());
    }
}

//! The spectrum model: stellar parameters → noiseless median-normalised flux
//! and the 1σ error of a PFS-like observation (see the recipe in the module
//! docs of [`crate::synth`]).
//!
//! Everything that does not depend on the star (grids, LSF-and-rebin kernel,
//! line list, molecular band templates, sky and telluric spectra) is built
//! once in [`SpectrumModel::new`]; a row then costs one pass of line profiles
//! over windows of a ~16k-point fine grid, one `exp` per fine point, one
//! 4096 × ~50-tap kernel product, a median and the error formula, all in
//! caller-owned scratch.

use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Blue end of the wavelength grid (Å).
pub(crate) const WAVE_MIN: f64 = 7100.0;
/// Red end of the wavelength grid (Å).
pub(crate) const WAVE_MAX: f64 = 8850.0;
/// Line-spread function FWHM (Å), R ≈ 5000 at 7000 Å.
const LSF_FWHM: f64 = 1.37;
/// Largest fine-grid step (Å): ≈ 4× oversampling at P = 4096.
const FINE_STEP_MAX: f64 = 0.11;
/// Seed of everything fixed (line forest, sky lines, telluric structure):
/// independent of the run seed so that every file shares one "physics".
const FIXED_SEED: u64 = 0x6772_616d_7374_7265;
/// Speed of light (km/s).
const C_KMS: f64 = 299_792.458;
/// Second radiation constant hc/k (Å·K).
const C2: f64 = 1.438_776_9e8;
/// Fraction of the peak below which a line's Lorentzian wing is cut (the cut
/// value is subtracted, so the profile stays continuous).
const WING_EPS: f64 = 2e-4;
/// Longest Lorentzian half-window (Å).
const WING_MAX: f64 = 60.0;

/// Source counts per pixel at mag 22.5 in the whole 12 × 900 s exposure,
/// before fibre losses (tuned for median ‖flux‖/‖error‖ ≈ 2.9).
const SOURCE_COUNTS: f64 = 166.0;
/// Sky continuum counts per pixel.
const SKY_COUNTS: f64 = 2380.0;
/// Sky-subtraction systematic, as a fraction of the sky.
const SKY_SYSTEMATIC: f64 = 0.01;
/// Read noise variance per pixel, 12 exposures of ~3 e⁻.
const READ_VAR: f64 = 12.0 * 9.0;
/// Number of sky emission lines.
const N_SKY_LINES: usize = 150;
/// Number of weak lines in the forest.
const N_FOREST: usize = 300;

/// Parameter ranges (the real grid's).
pub(crate) const TEFF_RANGE: (f64, f64) = (3750.0, 6000.0);
pub(crate) const LOGG_RANGE: (f64, f64) = (1.0, 5.0);
pub(crate) const MH_RANGE: (f64, f64) = (-2.5, 0.75);
pub(crate) const AM_RANGE: (f64, f64) = (-0.25, 0.5);
pub(crate) const CM_RANGE: (f64, f64) = (-0.5, 0.5);
pub(crate) const MAG_RANGE: (f64, f64) = (20.5, 22.5);
pub(crate) const SEEING_RANGE: (f64, f64) = (0.5, 1.5);
pub(crate) const VTURB_RANGE: (f64, f64) = (0.5, 3.0);
/// Shape of the beta law of [M/H] on its range (mode ≈ −0.3, ~22 % below −1).
const MH_BETA: (f64, f64) = (2.6, 1.9);

/// One star: what the params table records, plus the nuisances.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Star {
    pub teff: f64,
    pub log_g: f64,
    pub m_h: f64,
    pub a_m: f64,
    pub c_m: f64,
    /// Microturbulence (km/s).
    pub vturb: f64,
    /// Macroturbulence + rotation (km/s), a hidden nuisance.
    pub vmac: f64,
    pub mag: f64,
    /// Seeing FWHM (arcsec).
    pub seeing: f64,
}

impl Star {
    /// Draws a star from the parameter distributions with a per-row RNG.
    pub(crate) fn draw(rng: &mut Xoshiro256PlusPlus) -> Star {
        let u =
            |rng: &mut Xoshiro256PlusPlus, r: (f64, f64)| r.0 + (r.1 - r.0) * rng.random::<f64>();
        let teff = u(rng, TEFF_RANGE);
        let log_g = u(rng, LOGG_RANGE);
        let beta = Beta::new(MH_BETA.0, MH_BETA.1).ok();
        let x = match beta {
            Some(b) => b.sample(rng),
            None => rng.random::<f64>(),
        };
        let m_h = MH_RANGE.0 + (MH_RANGE.1 - MH_RANGE.0) * x;
        let a_m = u(rng, AM_RANGE);
        let c_m = u(rng, CM_RANGE);
        let vturb = u(rng, VTURB_RANGE);
        let vmac = u(rng, (3.0, 8.0));
        let mag = u(rng, MAG_RANGE);
        let seeing = u(rng, SEEING_RANGE);
        Star {
            teff,
            log_g,
            m_h,
            a_m,
            c_m,
            vturb,
            vmac,
            mag,
            seeing,
        }
    }
}

/// The species of a line: which strength law it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Species {
    CaII,
    NaI,
    KI,
    MgI,
    FeI,
    TiI,
    OI,
    Paschen,
    /// Weak forest line of a neutral species.
    Neutral,
    /// Weak forest line of an ionised species.
    Ion,
}

const N_SPECIES: usize = 10;

#[derive(Debug, Clone, Copy)]
struct Line {
    center: f64,
    /// Integrated strength at the reference point (Å of ∫τ dλ).
    strength: f64,
    species: Species,
    /// Pressure HWHM at log g = 4.4 (Å).
    gamma0: f64,
    /// Atomic mass (amu), for the thermal width.
    mass: f64,
    /// Forest only: excitation temperature scale (K) of exp(±(5000 − T)/θ).
    theta: f64,
    /// Forest only: multiplies the species' gravity slope.
    b_scale: f64,
    /// Forest only: whether the line scales with 10^(0.8 a_M) (the strong
    /// alpha-element lines carry a_M in their species law).
    alpha: bool,
}

/// Per-row strength and width multipliers of each species.
#[derive(Debug, Clone, Copy)]
struct SpeciesLaw {
    /// log10 of the strength multiplier, gravity term excluded.
    log_strength: [f64; N_SPECIES],
    /// Pressure-width multiplier.
    gamma: [f64; N_SPECIES],
    /// log10 of the gravity multiplier (forest lines multiply it by their
    /// b_scale).
    grav: [f64; N_SPECIES],
}

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Smooth max(x, k) with softness s (softplus).
fn soft_max(x: f64, k: f64, s: f64) -> f64 {
    let z = (x - k) / s;
    k + s * if z > 30.0 { z } else { z.exp().ln_1p() }
}

/// Smooth min(x, k) with softness s.
fn soft_min(x: f64, k: f64, s: f64) -> f64 {
    -soft_max(-x, -k, s)
}

/// Smooth regime weights of a star: T_eff memberships (cool, mid, hot; they
/// sum to one) and metal-poorness, with transitions at the bin edges.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Regime {
    pub cool: f64,
    pub mid: f64,
    pub hot: f64,
    pub poor: f64,
}

impl Regime {
    pub(crate) fn of(teff: f64, m_h: f64) -> Regime {
        let cool = logistic((REGIME_T.0 - teff) / REGIME_T_WIDTH);
        let hot = logistic((teff - REGIME_T.1) / REGIME_T_WIDTH);
        let poor = logistic((REGIME_M_POOR - m_h) / REGIME_M_WIDTH);
        Regime {
            cool,
            mid: (1.0 - cool - hot).max(0.0),
            hot,
            poor,
        }
    }

    /// c·cool + m·mid + h·hot.
    fn t(&self, c: f64, m: f64, h: f64) -> f64 {
        c * self.cool + m * self.mid + h * self.hot
    }
}

/// Centres of the T_eff regime transitions (K), at the bin edges.
const REGIME_T: (f64, f64) = (4500.0, 5250.0);
const REGIME_T_WIDTH: f64 = 120.0;
/// Centre of the metal-poor transition (dex), at the bin edge.
const REGIME_M_POOR: f64 = -1.0;
const REGIME_M_WIDTH: f64 = 0.2;

impl SpeciesLaw {
    /// The regime-dependent strength laws; see the recipe in the module docs.
    fn new(s: &Star) -> SpeciesLaw {
        let t = s.teff;
        let g = s.log_g;
        let dg = g - 4.4;
        let m = s.m_h;
        let a = s.a_m;
        let r = Regime::of(t, m);
        let ln10 = std::f64::consts::LN_10;
        let lg = |x: f64| x.max(1e-300).ln() / ln10;
        // Metal-poor stars: weak lines and few electron donors, so the
        // gravity signatures fade and the neutral/ion balance flips.
        let vis = 1.0 - 0.6 * r.poor;
        let flip = 1.0 - 1.8 * r.poor;
        // Pressure (electron density) width: grows with gravity, most in hot
        // stars, and with the metals that donate electrons.
        let pe = r.t(0.05, 0.15, 0.6) * vis;
        let pressure = 10f64.powf(pe * dg + 0.3 * m);
        let mut ls = [0.0; N_SPECIES];
        let mut gm = [pressure; N_SPECIES];
        let mut gr = [0.0; N_SPECIES];
        // Ca II: cool giants strong (saturating: flat among cool dwarfs),
        // mid-T dwarfs strong, hot stars trade depth for pressure width.
        let g_giant = soft_min(g, 3.3, 0.3) - 4.4;
        gr[0] = vis * (r.cool * -0.7 * g_giant + r.mid * 0.45 * dg + r.hot * -0.25 * dg);
        ls[0] = CA_KAPPA * m + 1.2 * a + lg(1.0 + 0.3 * (5000.0 - t) / 1000.0);
        gm[0] = pressure * (1.0 + 1.5 * r.hot);
        // Na I, K I: cool-dwarf features (grow only above log g ≈ 3);
        // weaker in hot dwarfs.
        let g_dwarf = soft_max(g, 3.2, 0.3) - 4.4;
        let nak = r.cool * 0.6 * g_dwarf + r.t(0.0, -0.25, 0.15) * dg;
        gr[1] = nak;
        ls[1] = 0.7 * m + (5000.0 - t) / 600.0 / ln10;
        gr[2] = nak;
        ls[2] = 0.7 * m + (5000.0 - t) / 800.0 / ln10;
        // Mg I: alpha element; slope flips between mid and the ends.
        gr[3] = vis * r.t(0.15, -0.4, 0.15) * dg;
        ls[3] = 0.6 * m + 1.2 * a;
        // Fe I: gravity slope flips between cool, mid and hot, and again in
        // metal-poor stars.
        gr[4] = flip * r.t(-0.2, 0.15, -0.15) * dg;
        ls[4] = 0.85 * m + (5000.0 - t) / 1500.0 / ln10;
        // Ti I: cool, alpha.
        gr[5] = r.t(0.2, -0.1, 0.0) * dg;
        ls[5] = 0.9 * m + 0.8 * a + (5000.0 - t) / 500.0 / ln10;
        // O I 7774: favours mid-T dwarfs and hot giants.
        gr[6] = r.t(0.0, 0.25, -0.4) * dg;
        ls[6] = 0.3 * m + 0.5 * a + (t - 5500.0) / 500.0 / ln10;
        // Paschen: hydrogen, no metallicity; Stark wings in hot dwarfs.
        gr[7] = -0.1 * dg;
        ls[7] = (t - 6000.0) / 350.0 / ln10;
        gm[7] = 10f64.powf(0.35 * dg);
        // Forest: neutral lines flip their gravity slope with T and [M/H];
        // ions favour giants in mid-T stars.
        gr[8] = flip * r.t(-0.15, 0.12, -0.1) * dg;
        ls[8] = 0.95 * m;
        gr[9] = r.t(0.15, -0.3, 0.1) * dg;
        ls[9] = 0.95 * m;
        SpeciesLaw {
            log_strength: ls,
            gamma: gm,
            grav: gr,
        }
    }
}

/// [M/H] slope of the Ca II triplet strength.
const CA_KAPPA: f64 = 0.1;

/// The LSF-and-rebin kernel and the fine grid it runs on.
#[derive(Debug, Clone)]
struct Grid {
    pixels: usize,
    wave: Vec<f64>,
    edges: Vec<f64>,
    /// Fine points per output pixel.
    os: usize,
    /// Fine step (Å).
    h: f64,
    /// Fine points of margin on each side.
    pad: usize,
    /// Left edge of fine point 0 (Å).
    fine_start: f64,
    n_fine: usize,
    /// flux_j = Σ_u kernel[u] · A[j·os + u].
    kernel: Vec<f64>,
}

impl Grid {
    fn new(pixels: usize) -> Grid {
        let d = (WAVE_MAX - WAVE_MIN) / (pixels - 1) as f64;
        let wave: Vec<f64> = (0..pixels).map(|j| WAVE_MIN + d * j as f64).collect();
        let edges: Vec<f64> = (0..=pixels)
            .map(|j| WAVE_MIN + d * (j as f64 - 0.5))
            .collect();
        let os = ((d / FINE_STEP_MAX).ceil() as usize).max(4);
        let h = d / os as f64;
        let sigma = LSF_FWHM / (8.0 * 2f64.ln()).sqrt() / h;
        let pad = (4.5 * sigma).ceil() as usize;
        let g: Vec<f64> = (0..=2 * pad)
            .map(|i| {
                let x = i as f64 - pad as f64;
                (-0.5 * x * x / (sigma * sigma)).exp()
            })
            .collect();
        let gsum: f64 = g.iter().sum();
        // Output pixel j = mean over its os fine points m of the LSF-smoothed
        // absorption at fine point j·os + pad + m.
        let mut kernel = vec![0.0; os + 2 * pad];
        for m in 0..os {
            for (i, gi) in g.iter().enumerate() {
                kernel[m + i] += gi / gsum / os as f64;
            }
        }
        // Zero-pad the kernel to a multiple of LANES for the vectorised product.
        kernel.resize(kernel.len().div_ceil(LANES) * LANES, 0.0);
        let fine_start = edges[0] - pad as f64 * h;
        Grid {
            pixels,
            wave,
            edges,
            os,
            h,
            pad,
            fine_start,
            n_fine: (pixels - 1) * os + kernel.len(),
            kernel,
        }
    }

    fn fine_wave(&self, k: usize) -> f64 {
        self.fine_start + (k as f64 + 0.5) * self.h
    }

    /// Fine indices whose centres lie in [lo, hi], clamped to the grid.
    fn fine_range(&self, lo: f64, hi: f64) -> (usize, usize) {
        let a = ((lo - self.fine_start) / self.h - 0.5).ceil().max(0.0);
        let b = ((hi - self.fine_start) / self.h - 0.5).floor() + 1.0;
        let b = b.clamp(0.0, self.n_fine as f64);
        (a.min(b) as usize, b as usize)
    }

    /// Averages a fine-grid array over each output pixel (no LSF).
    fn bin_mean(&self, fine: &[f64]) -> Vec<f64> {
        (0..self.pixels)
            .map(|j| {
                let s = self.pad + j * self.os;
                fine[s..s + self.os].iter().sum::<f64>() / self.os as f64
            })
            .collect()
    }
}

/// Caller-owned per-thread scratch for [`SpectrumModel::synthesize`].
#[derive(Debug, Clone)]
pub(crate) struct Scratch {
    tau: Vec<f64>,
    median: Vec<f64>,
}

/// Everything fixed about the spectra: grid, kernel, line list, bands, sky.
#[derive(Debug, Clone)]
pub(crate) struct SpectrumModel {
    grid: Grid,
    lines: Vec<Line>,
    /// TiO and CN optical-depth templates on the fine grid, and the fine
    /// range where each is non-zero.
    tio: (Vec<f64>, usize, usize),
    cn: (Vec<f64>, usize, usize),
    /// Telluric transmission per output pixel.
    transmission: Vec<f64>,
    /// Sky counts per output pixel.
    sky: Vec<f64>,
}

impl SpectrumModel {
    /// Builds the model for `pixels` output pixels (≥ 16).
    pub(crate) fn new(pixels: usize) -> SpectrumModel {
        let grid = Grid::new(pixels);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(FIXED_SEED);
        let lines = line_list(&mut rng);
        let tio = band_template(
            &grid,
            &[
                (7589.0, 1.0),
                (7666.0, 0.8),
                (8206.0, 0.6),
                (8432.0, 0.7),
                (8442.0, 0.6),
                (8452.0, 0.5),
            ],
            60.0,
        );
        let cn = band_template(&grid, &[(7875.0, 1.0), (8125.0, 0.8), (8320.0, 0.6)], 40.0);
        let (transmission, sky) = sky_model(&grid, &mut rng);
        SpectrumModel {
            grid,
            lines,
            tio,
            cn,
            transmission,
            sky,
        }
    }

    /// Output wavelengths (Å).
    pub(crate) fn wave(&self) -> &[f64] {
        &self.grid.wave
    }

    /// Output pixel edges (Å), P + 1 values.
    pub(crate) fn wave_edges(&self) -> &[f64] {
        &self.grid.edges
    }

    /// Fresh scratch for one worker.
    pub(crate) fn scratch(&self) -> Scratch {
        Scratch {
            tau: vec![0.0; self.grid.n_fine],
            median: vec![0.0; self.grid.pixels],
        }
    }

    /// Writes the noiseless median-normalised flux and its 1σ error for
    /// `star` into `flux` and `error` (P values each); returns
    /// SNR = ‖flux‖₂ / ‖error‖₂.
    pub(crate) fn synthesize(
        &self,
        star: &Star,
        s: &mut Scratch,
        flux: &mut [f64],
        error: &mut [f64],
    ) -> f64 {
        let g = &self.grid;
        self.absorption(star, &mut s.tau);
        // Continuum × LSF-smoothed, rebinned absorption.
        let k = &g.kernel;
        let t = star.teff;
        for (j, (f, &w)) in flux.iter_mut().zip(&g.wave).enumerate() {
            let conv = dot(&s.tau[j * g.os..j * g.os + k.len()], k);
            let planck = 1.0 / (w.powi(5) * ((C2 / (w * t)).exp() - 1.0));
            *f = planck * conv;
        }
        s.median.copy_from_slice(flux);
        let mid = s.median.len() / 2;
        let (left, m, _) = s.median.select_nth_unstable_by(mid, f64::total_cmp);
        // numpy's median: the mean of the two middle values when P is even.
        let median = if left.len() == mid && mid > 0 && flux.len() % 2 == 0 {
            0.5 * (*m + left.iter().copied().fold(f64::NEG_INFINITY, f64::max))
        } else {
            *m
        };
        let inv = 1.0 / median;
        for f in flux.iter_mut() {
            *f *= inv;
        }
        self.error_of(star, flux, error)
    }

    /// The error of an observation of the normalised `flux`; returns the SNR.
    fn error_of(&self, star: &Star, flux: &[f64], error: &mut [f64]) -> f64 {
        let fiber = fiber_fraction(star.seeing);
        let src = SOURCE_COUNTS * 10f64.powf(-0.4 * (star.mag - 22.5)) * fiber;
        let (mut ff, mut ee) = (0.0, 0.0);
        for (((e, &f), &tr), &b) in error
            .iter_mut()
            .zip(flux)
            .zip(&self.transmission)
            .zip(&self.sky)
        {
            let st = src * tr;
            let var = st * f.max(0.0) + b + (SKY_SYSTEMATIC * b).powi(2) + READ_VAR;
            *e = var.sqrt() / st;
            ff += f * f;
            ee += *e * *e;
        }
        (ff / ee).sqrt()
    }

    /// Fills `out` (fine grid) with the absorption exp(−τ).
    fn absorption(&self, star: &Star, out: &mut [f64]) {
        let g = &self.grid;
        out.fill(0.0);
        let law = SpeciesLaw::new(star);
        let dg = star.log_g - 4.4;
        let ln10 = std::f64::consts::LN_10;
        let kt = 1.380_649e-23 * star.teff / 1.660_539e-27 * 1e-6; // (km/s)² per amu
        let turb2 = 0.5 * star.vturb * star.vturb + 0.5 * star.vmac * star.vmac;
        for line in &self.lines {
            let i = line.species as usize;
            let mut log_s = law.log_strength[i] + line.b_scale * law.grav[i];
            match line.species {
                Species::Neutral => {
                    log_s += (5000.0 - star.teff) / line.theta / ln10;
                }
                Species::Ion => {
                    log_s += (star.teff - 5000.0) / line.theta / ln10;
                }
                _ => {}
            }
            if line.alpha {
                log_s += 0.8 * star.a_m;
            }
            let strength = line.strength * 10f64.powf(log_s);
            if strength < 1e-5 {
                continue;
            }
            let sigma_v = (kt / line.mass + turb2).sqrt();
            let sigma = line.center * sigma_v / C_KMS;
            let gamma = line.gamma0 * law.gamma[i];
            add_voigt(g, out, line.center, strength, sigma, gamma);
        }
        let tio_amp = 0.6
            * ((4000.0 - star.teff) / 250.0).exp()
            * logistic((4300.0 - star.teff) / 60.0)
            * 10f64.powf(0.5 * star.m_h + TIO_GRAV * dg);
        add_band(out, &self.tio, tio_amp);
        let cn_amp = 0.15
            * ((4500.0 - star.teff) / 500.0).exp()
            * 10f64.powf(0.8 * (star.m_h + star.c_m) - 0.3 * dg);
        add_band(out, &self.cn, cn_amp);
        for x in out.iter_mut() {
            *x = (-*x).exp();
        }
    }
}

/// Gravity slope of the TiO bands (a cool-dwarf feature).
const TIO_GRAV: f64 = 0.3;

/// Lanes of the kernel product (fixed, so the sum order is too).
const LANES: usize = 8;

/// Σ a·b over equal lengths that are multiples of [`LANES`], in LANES
/// independent partial sums (vectorisable, and a fixed order).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; LANES];
    for (x, y) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum()
}

fn add_band(tau: &mut [f64], band: &(Vec<f64>, usize, usize), amp: f64) {
    if amp < 1e-5 {
        return;
    }
    let (t, a, b) = (&band.0, band.1, band.2);
    for (x, y) in tau[a..b].iter_mut().zip(&t[a..b]) {
        *x += amp * y;
    }
}

/// Adds τ of a pseudo-Voigt line (Thompson–Cox–Hastings mix of a Gaussian
/// core of σ `sigma` and a Lorentzian of HWHM `gamma`) of integrated strength
/// `strength` (Å), evaluated only in a window around the centre.
fn add_voigt(g: &Grid, tau: &mut [f64], center: f64, strength: f64, sigma: f64, gamma: f64) {
    let fg = 2.354_820_045 * sigma;
    let fl = 2.0 * gamma;
    let f = (fg.powi(5)
        + 2.692_69 * fg.powi(4) * fl
        + 2.428_43 * fg.powi(3) * fl * fl
        + 4.471_63 * fg * fg * fl.powi(3)
        + 0.078_42 * fg * fl.powi(4)
        + fl.powi(5))
    .powf(0.2);
    let r = fl / f;
    let eta = (1.366_03 * r - 0.477_19 * r * r + 0.111_16 * r * r * r).clamp(0.0, 1.0);
    let hw = 0.5 * f;
    let sg = f / 2.354_820_045;
    // Lorentzian part, cut where it falls below WING_EPS and shifted to be
    // continuous at the cut.
    if eta > 0.0 {
        let c = strength * eta * hw / std::f64::consts::PI;
        let w = (c / WING_EPS - hw * hw)
            .max(0.0)
            .sqrt()
            .clamp(3.0 * hw, WING_MAX);
        let off = c / (w * w + hw * hw);
        let (a, b) = g.fine_range(center - w, center + w);
        let hw2 = hw * hw;
        let x0 = g.fine_wave(a) - center;
        let h = g.h;
        for (i, t) in tau[a..b].iter_mut().enumerate() {
            let x = x0 + i as f64 * h;
            *t += (c / (x * x + hw2) - off).max(0.0);
        }
    }
    // Gaussian part over ±6σ by the recurrence exp(−x²/2s²) along a uniform
    // grid: three exps per line instead of one per point.
    if eta < 1.0 {
        let amp = strength * (1.0 - eta) / (sg * (2.0 * std::f64::consts::PI).sqrt());
        let (a, b) = g.fine_range(center - 6.0 * sg, center + 6.0 * sg);
        if a < b {
            let h = g.h;
            let x0 = g.fine_wave(a) - center;
            let inv = 1.0 / (2.0 * sg * sg);
            let mut v = amp * (-x0 * x0 * inv).exp();
            let mut ratio = (-(2.0 * x0 * h + h * h) * inv).exp();
            let q = (-2.0 * h * h * inv).exp();
            for t in tau[a..b].iter_mut() {
                *t += v;
                v *= ratio;
                ratio *= q;
            }
        }
    }
}

/// The fraction of a Gaussian seeing disc of FWHM `seeing` (″) that enters
/// a fibre of 1.13″ diameter, softened so that seeing varies the SNR by
/// about ±25 %.
fn fiber_fraction(seeing: f64) -> f64 {
    let r = 0.565;
    let full = 1.0 - (-4.0 * 2f64.ln() * r * r / (seeing * seeing)).exp();
    0.5 + 0.5 * full / 0.59
}

/// Molecular band template: sharp head, exponential decay to the red.
fn band_template(g: &Grid, heads: &[(f64, f64)], scale: f64) -> (Vec<f64>, usize, usize) {
    let mut t = vec![0.0; g.n_fine];
    let (mut lo, mut hi) = (g.n_fine, 0);
    for &(head, w) in heads {
        let (a, b) = g.fine_range(head, head + 6.0 * scale);
        for (k, v) in t.iter_mut().enumerate().take(b).skip(a) {
            let x = g.fine_wave(k) - head;
            // A little rotational structure: a 3 Å ripple on the decay.
            *v += w
                * (-x / scale).exp()
                * (0.75 + 0.25 * (2.0 * std::f64::consts::PI * x / 3.0).cos());
        }
        if a < b {
            lo = lo.min(a);
            hi = hi.max(b);
        }
    }
    if lo > hi {
        lo = hi;
    }
    (t, lo, hi)
}

/// The fixed line list: strong lines from the literature, and a forest of
/// weak lines at fixed random positions.
fn line_list(rng: &mut Xoshiro256PlusPlus) -> Vec<Line> {
    let mut v = Vec::new();
    let mut strong =
        |center: f64, strength: f64, species: Species, gamma0: f64, mass: f64, alpha: bool| {
            v.push(Line {
                center,
                strength,
                species,
                gamma0,
                mass,
                theta: 1.0,
                b_scale: 1.0,
                alpha,
            })
        };
    for (c, a) in [(8498.02, 1.3), (8542.09, 4.0), (8662.14, 2.8)] {
        strong(c, a, Species::CaII, 0.8, 40.0, false);
    }
    for (c, a) in [(8183.26, 0.8), (8194.82, 1.5)] {
        strong(c, a, Species::NaI, 0.4, 23.0, false);
    }
    for (c, a) in [(8806.76, 2.5), (8736.02, 0.6), (8717.8, 0.3), (8712.7, 0.2)] {
        strong(c, a, Species::MgI, 0.5, 24.0, false);
    }
    for (c, a) in [(7664.90, 3.0), (7698.96, 3.0)] {
        strong(c, a, Species::KI, 0.3, 39.0, false);
    }
    for (c, a) in [
        (7511.02, 1.2),
        (7748.27, 0.6),
        (8327.06, 1.0),
        (8387.77, 1.5),
        (8468.41, 0.8),
        (8514.07, 0.7),
        (8611.80, 0.5),
        (8674.75, 0.9),
        (8688.62, 1.3),
        (8824.22, 1.0),
    ] {
        strong(c, a, Species::FeI, 0.1, 56.0, false);
    }
    for (c, a) in [(8377.9, 0.3), (8382.5, 0.2), (8426.5, 0.5), (8434.9, 0.4)] {
        strong(c, a, Species::TiI, 0.05, 48.0, false);
    }
    for c in [7771.94, 7774.17, 7775.39] {
        strong(c, 0.2, Species::OI, 0.02, 16.0, false);
    }
    // Paschen series P11 … P22 (upper level n): λ = 1/(R_H (1/9 − 1/n²)).
    for n in 11..=22u32 {
        let nn = f64::from(n);
        let lambda = 1.0 / (1.096_775_8e-3 * (1.0 / 9.0 - 1.0 / (nn * nn))) * (1.0 - 2.3e-4);
        let a = 0.6 * (12.0 / nn).powi(3);
        let gamma0 = 0.4 * (nn / 12.0).powi(2);
        strong(lambda, a, Species::Paschen, gamma0, 1.0, false);
    }
    for _ in 0..N_FOREST {
        let center = WAVE_MIN - 5.0 + (WAVE_MAX - WAVE_MIN + 10.0) * rng.random::<f64>();
        // log-uniform 0.02 … 0.2 Å
        let strength = 0.02 * 10f64.powf(rng.random::<f64>());
        let ion = rng.random::<f64>() < 0.2;
        let theta = 800.0 + 2200.0 * rng.random::<f64>();
        let b_scale = 0.5 + rng.random::<f64>();
        let alpha = rng.random::<f64>() < 0.3;
        let (species, mass) = if ion {
            (Species::Ion, 50.0)
        } else {
            (Species::Neutral, 45.0)
        };
        v.push(Line {
            center,
            strength,
            species,
            gamma0: 0.05,
            mass,
            theta,
            b_scale,
            alpha,
        });
    }
    v
}

/// Telluric transmission and sky counts per output pixel.
fn sky_model(g: &Grid, rng: &mut Xoshiro256PlusPlus) -> (Vec<f64>, Vec<f64>) {
    // Telluric absorption: three bands of smooth depth with line structure.
    let bands = [
        (7150.0, 7400.0, 0.35),
        (7590.0, 7715.0, 0.9),
        (8100.0, 8380.0, 0.3),
    ];
    let mut tau = vec![0.0; g.n_fine];
    for &(lo, hi, depth) in &bands {
        let n_lines = ((hi - lo) / 2.5) as usize;
        for _ in 0..n_lines {
            let c = lo + (hi - lo) * rng.random::<f64>();
            let s = depth * (0.2 + rng.random::<f64>());
            let w = 0.4 + 0.4 * rng.random::<f64>();
            let (a, b) = g.fine_range(c - 5.0 * w, c + 5.0 * w);
            for (k, t) in tau.iter_mut().enumerate().take(b).skip(a) {
                let x = (g.fine_wave(k) - c) / w;
                *t += s * (-0.5 * x * x).exp();
            }
        }
        let (a, b) = g.fine_range(lo, hi);
        for (k, t) in tau.iter_mut().enumerate().take(b).skip(a) {
            let x = (g.fine_wave(k) - lo) / (hi - lo);
            *t += 0.3 * depth * (std::f64::consts::PI * x).sin();
        }
    }
    let trans_fine: Vec<f64> = tau.iter().map(|t| (-t).exp()).collect();
    // Sky: OH/O2 emission lines at the LSF width, peaks log-uniform 3–20×
    // the continuum.
    let sigma = LSF_FWHM / (8.0 * 2f64.ln()).sqrt();
    let mut sky = vec![1.0; g.n_fine];
    for _ in 0..N_SKY_LINES {
        let c = WAVE_MIN + (WAVE_MAX - WAVE_MIN) * rng.random::<f64>();
        let peak = 3.0 * (20f64 / 3.0).powf(rng.random::<f64>());
        let (a, b) = g.fine_range(c - 5.0 * sigma, c + 5.0 * sigma);
        for (k, s) in sky.iter_mut().enumerate().take(b).skip(a) {
            let x = (g.fine_wave(k) - c) / sigma;
            *s += peak * (-0.5 * x * x).exp();
        }
    }
    let transmission = g.bin_mean(&trans_fine);
    let sky = g
        .bin_mean(&sky)
        .into_iter()
        .map(|s| SKY_COUNTS * s)
        .collect();
    (transmission, sky)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn star(teff: f64, log_g: f64, m_h: f64) -> Star {
        Star {
            teff,
            log_g,
            m_h,
            a_m: 0.0,
            c_m: 0.0,
            vturb: 1.5,
            vmac: 5.0,
            mag: 21.5,
            seeing: 1.0,
        }
    }

    /// Equivalent width (Å) of the Ca II triplet in the continuum-normalised
    /// spectrum, in the three classic windows.
    fn ca_ew(model: &SpectrumModel, s: &Star) -> f64 {
        let mut sc = model.scratch();
        let p = model.grid.pixels;
        let (mut f, mut e) = (vec![0.0; p], vec![0.0; p]);
        model.synthesize(s, &mut sc, &mut f, &mut e);
        let cont: Vec<f64> = model
            .wave()
            .iter()
            .map(|&w| 1.0 / (w.powi(5) * ((C2 / (w * s.teff)).exp() - 1.0)))
            .collect();
        // Normalise by the line-free reference: the same star with no lines.
        let mut ref_f = vec![0.0; p];
        let mut fc = vec![0.0; p];
        for j in 0..p {
            fc[j] = f[j] / cont[j];
        }
        // Pseudo-continuum: the 95th percentile of f/cont.
        ref_f.copy_from_slice(&fc);
        ref_f.sort_by(f64::total_cmp);
        let c = ref_f[(0.95 * p as f64) as usize];
        let d = (WAVE_MAX - WAVE_MIN) / (p - 1) as f64;
        let windows = [(8484.0, 8513.0), (8522.0, 8562.0), (8642.0, 8682.0)];
        let mut ew = 0.0;
        for (j, &w) in model.wave().iter().enumerate() {
            if windows.iter().any(|&(a, b)| w >= a && w < b) {
                ew += (1.0 - fc[j] / c) * d;
            }
        }
        ew
    }

    #[test]
    fn ca_triplet_equivalent_width_is_in_the_literature_range() {
        let model = SpectrumModel::new(4096);
        let solar = ca_ew(&model, &star(5000.0, 4.0, 0.0));
        let poor = ca_ew(&model, &star(5000.0, 4.0, -2.0));
        eprintln!("Ca II EW: solar {solar:.2} Å, [M/H]=-2 {poor:.2} Å");
        assert!((6.0..=11.0).contains(&solar), "solar EW {solar}");
        assert!((2.0..=5.0).contains(&poor), "metal-poor EW {poor}");
    }

    /// Mean flux of `s` in [lo, hi] Å.
    fn window_mean(model: &SpectrumModel, s: &Star, lo: f64, hi: f64) -> f64 {
        let mut sc = model.scratch();
        let p = model.grid.pixels;
        let (mut f, mut e) = (vec![0.0; p], vec![0.0; p]);
        model.synthesize(s, &mut sc, &mut f, &mut e);
        let v: Vec<f64> = model
            .wave()
            .iter()
            .zip(&f)
            .filter(|(&w, _)| (lo..=hi).contains(&w))
            .map(|(_, &x)| x)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    }

    #[test]
    fn gravity_signatures_depend_on_the_regime() {
        // The gravity slopes of the laws flip sign between regimes.
        let law = |t: f64, g: f64, m: f64| SpeciesLaw::new(&star(t, g, m)).grav;
        let slope = |t: f64, m: f64, i: usize| law(t, 4.0, m)[i] - law(t, 2.0, m)[i];
        // Ca II: cool giants strong, mid-T dwarfs strong, hot giants strong.
        assert!(slope(4000.0, 0.0, 0) < 0.0 && slope(4900.0, 0.0, 0) > 0.0);
        assert!(slope(5800.0, 0.0, 0) < 0.0);
        // Fe I: flips between cool and mid and again in metal-poor stars.
        assert!(slope(4000.0, 0.0, 4) < 0.0 && slope(4900.0, 0.0, 4) > 0.0);
        assert!(slope(4900.0, -1.8, 4) < 0.0);
        // Ions: favour giants in mid-T stars only.
        assert!(slope(4900.0, 0.0, 9) < 0.0 && slope(4000.0, 0.0, 9) > 0.0);
        // Cool-giant Ca II saturates among dwarfs; Na I grows only in dwarfs.
        let ca = |g: f64| law(4000.0, g, 0.0)[0];
        assert!((ca(4.0) - ca(5.0)).abs() < 0.1 * (ca(1.5) - ca(2.5)).abs());
        let na = |g: f64| law(4000.0, g, 0.0)[1];
        assert!((na(1.5) - na(2.5)).abs() < 0.1 * (na(4.0) - na(5.0)).abs());
        // In the spectra: the Na I doublet, relative to its neighbourhood,
        // deepens with gravity in a cool dwarf but not in a cool giant.
        let model = SpectrumModel::new(1024);
        let na_flux = |g: f64| {
            let s = star(3900.0, g, 0.0);
            let side =
                window_mean(&model, &s, 8160.0, 8172.0) + window_mean(&model, &s, 8200.0, 8204.0);
            2.0 * window_mean(&model, &s, 8180.0, 8198.0) / side
        };
        let dwarf = na_flux(4.0) - na_flux(5.0);
        let giant = na_flux(1.5) - na_flux(2.5);
        eprintln!("Na I window flux change: dwarf {dwarf:.4}, giant {giant:.4}");
        assert!(dwarf > 0.1 && giant.abs() < 0.5 * dwarf);
    }

    #[test]
    fn flux_is_median_normalised_and_positive() {
        for p in [64, 255, 1000] {
            let model = SpectrumModel::new(p);
            let mut sc = model.scratch();
            let (mut f, mut e) = (vec![0.0; p], vec![0.0; p]);
            for t in [3800.0, 4800.0, 5900.0] {
                let snr = model.synthesize(&star(t, 2.0, 0.3), &mut sc, &mut f, &mut e);
                assert!(snr.is_finite() && snr > 0.0);
                assert!(f.iter().all(|&x| x.is_finite() && x >= 0.0));
                assert!(e.iter().all(|&x| x.is_finite() && x > 0.0));
                let mut s = f.clone();
                s.sort_by(f64::total_cmp);
                let median = if p % 2 == 0 {
                    0.5 * (s[p / 2 - 1] + s[p / 2])
                } else {
                    s[p / 2]
                };
                assert!((median - 1.0).abs() < 1e-12);
            }
        }
    }
}

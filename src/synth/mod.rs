//! The synthetic BOSZ-like shard generator: gramstream's test bench.
//!
//! The real BOSZ/PFS shards cannot be shipped, so [`generate`] writes shards
//! in their exact layout (DESIGN §3) whose spectra behave like theirs where
//! it matters to the experiments: the log g signal is weak, nonlinear and
//! regime-dependent, the SNR distribution matches, and the stored `error` is
//! computed from the noiseless flux.
//!
//! # Contents
//! * [API](#api) · [Files](#files) · [Determinism](#determinism) ·
//!   [Recipe](#recipe) · [Performance](#performance)
//!
//! # API
//! * [`GenerateConfig`] → [`GenerateConfig::check`] → [`generate`]: train
//!   shards `DIR/train_<i>/dataset.h5` and `DIR/test/dataset.h5`.
//! * [`ShardSpec`] → [`write_shard`]: one file, for tests and examples.
//!
//! Both run their per-row work on the current rayon pool (wrap the call in
//! `ThreadPool::install` to bound it) and write on one extra thread, in row
//! blocks of [`BLOCK_ROWS`], so memory stays at a few blocks whatever the
//! shard size.
//!
//! # Files
//! ```text
//! /dataset/arrays/flux/value    (N, P) f64 | f32   noiseless flux, median 1
//! /dataset/arrays/error/value   (N, P) same        1σ error of the noiseless flux
//! /dataset/arrays/noisy/value   (N, P) same        test file only: max(flux + L·error·z, 0)
//! /dataset/params/table         (N,)   compound    pandas table or plain fields
//! /spectrumdataset/wave         (P,)   f64         linspace(7100, 8850, P) Å
//! /spectrumdataset/wave_edges   (P+1,) f64         pixel edges
//! ```
//! Arrays are contiguous unless chunked (`chunk_rows` → chunks of
//! (rows, P)) or compressed (`gzip` implies chunks). Params columns (see
//! [`table`](self) docs): `T_eff, M_H, log_g, a_M, C_M, v_turb, mag, seeing,
//! exp_time, snr, redshift` and the all-NaN `rv, ext, target_zenith_angle`
//! (f64); `id, exp_count` (i64); `arm` (one byte, `"m"`). `snr` is
//! ‖flux‖₂ / ‖error‖₂ of the row; `id` runs over the whole generated set
//! (train shards in order, then test).
//!
//! # Determinism
//! A row's parameters and spectrum depend only on (seed, shard index, row):
//! its RNG is a Xoshiro256++ seeded from SplitMix64 mixing of the three
//! (plus a domain tag), never on block size, thread count or which shards are
//! written. The test file has shard index `u64::MAX`; its noise stream for
//! row r is `test_noise_row`'s: Xoshiro256++ seeded with
//! `mix(mix(mix(seed) ^ u64::MAX) ^ r)` (`mix` = the SplitMix64 finaliser of
//! `z + 0x9E3779B97F4A7C15`), then `StandardNormal` per pixel in order.
//! Everything fixed (line forest, sky lines, telluric structure) comes from a
//! constant seed, so all runs share one "physics".
//!
//! # Recipe
//! Following `reference/SYNTHETIC.md`, with the changes its lessons asked for.
//!
//! **Parameters.** T_eff ~ U(3750, 6000) K; log g ~ U(1, 5); [M/H] =
//! −2.5 + 3.25·Beta(2.6, 1.9) (mode ≈ −0.3, ~22 % below −1); a_M ~
//! U(−0.25, 0.5); C_M ~ U(−0.5, 0.5); microturbulence ξ ~ U(0.5, 3) km/s;
//! macroturbulence+rotation ~ U(3, 8) km/s (hidden); mag ~ U(20.5, 22.5);
//! seeing ~ U(0.5, 1.5)″; redshift 0; 12 × 900 s.
//!
//! **Synthesis.** On a fine grid (step ≤ 0.11 Å, ≥ 4× oversampling):
//! τ = Σ lines + molecular bands; A = exp(−τ); A is convolved with a
//! Gaussian LSF (FWHM 1.37 Å, R ≈ 5000) and averaged over each output pixel
//! in one precomputed kernel; times a Planck continuum B_λ(T_eff); divided
//! by the median. Each line is a pseudo-Voigt (Thompson–Cox–Hastings mix of
//! a Gaussian core of σ = λ/c·√(kT/m + ξ²/2 + v_mac²/2) and a Lorentzian of
//! HWHM γ (pressure width, below), evaluated only within ±6σ (core) and
//! where the wing exceeds 2·10⁻⁴ (≤ 60 Å).
//!
//! **Regimes.** Every gravity effect is gated by smooth regime weights whose
//! transitions sit on the science bins' edges (T_eff 4500 / 5250 K, [M/H]
//! −1): cool = σ((4500 − T)/120), hot = σ((T − 5250)/120), mid = 1 − cool −
//! hot, poor = σ((−1 − [M/H])/0.2) (σ the logistic); reg(c, m, h) =
//! c·cool + m·mid + h·hot. With Δ = log g − 4.4, g_giant = softmin(log g,
//! 3.3) − 4.4 and g_dwarf = softmax(log g, 3.2) − 4.4 (softplus, width 0.3:
//! the gravity response saturates among dwarfs resp. giants), vis = 1 −
//! 0.6 poor (metal-poor stars: weak lines, few electron donors) and flip =
//! 1 − 1.8 poor (the neutral/ion balance reverses the neutral lines'
//! gravity slope in metal-poor stars):
//!
//! Strength (∫τ dλ, Å) = A·10^(κ[M/H] + α a_M + G)·f_T(T_eff), with the
//! gravity term G (forest lines: G × their fixed U(0.5, 1.5) factor), and
//! Lorentzian HWHM γ = γ0·p, p = 10^(vis·reg(0.05, 0.15, 0.6)·Δ +
//! 0.3[M/H]) (pressure wings respond to gravity mostly in hot stars):
//!
//! | species | λ (Å) | A | κ, α | f_T | G (gravity term) | γ |
//! |---|---|---|---|---|---|---|
//! | Ca II | 8498, 8542, 8662 | 1.3, 4, 2.8 | 0.1, 1.2 | 1 + 0.3(5000 − T)/1000 | vis·(−0.7 cool·g_giant + 0.45 mid·Δ − 0.25 hot·Δ) | 0.8 Å·p·(1 + 1.5 hot) |
//! | Na I | 8183, 8195 | 0.8, 1.5 | 0.7, 0 | e^((5000 − T)/600) | 0.6 cool·g_dwarf + reg(0, −0.25, 0.15)·Δ | 0.4·p |
//! | K I | 7665, 7699 | 3, 3 | 0.7, 0 | e^((5000 − T)/800) | as Na I | 0.3·p |
//! | Mg I | 8807, 8736, 8718, 8713 | 2.5 … 0.2 | 0.6, 1.2 | 1 | vis·reg(0.15, −0.4, 0.15)·Δ | 0.5·p |
//! | Fe I | 10 lines 7511 … 8824 | 0.5 … 1.5 | 0.85, 0 | e^((5000 − T)/1500) | flip·reg(−0.2, 0.15, −0.15)·Δ | 0.1·p |
//! | Ti I | 8378, 8383, 8427, 8435 | 0.2 … 0.5 | 0.9, 0.8 | e^((5000 − T)/500) | reg(0.2, −0.1, 0)·Δ | 0.05·p |
//! | O I | 7772, 7774, 7775 | 0.2 | 0.3, 0.5 | e^((T − 5500)/500) | reg(0, 0.25, −0.4)·Δ | 0.02·p |
//! | H Paschen | P11 … P22 | 0.6 (12/n)³ | 0, 0 | e^((T − 6000)/350) | −0.1·Δ | 0.4 (n/12)² Å × 10^(0.35 Δ) (Stark) |
//! | forest, neutral (240) | fixed random | log-U(0.02, 0.2) | 0.95, 0.8 on 30 % | e^((5000 − T)/θ), θ ~ U(800, 3000) | flip·reg(−0.15, 0.12, −0.1)·Δ | 0.05·p |
//! | forest, ion (60) | fixed random | log-U(0.02, 0.2) | 0.95, 0.8 on 30 % | e^((T − 5000)/θ) | reg(0.15, −0.3, 0.1)·Δ | 0.05·p |
//!
//! Molecular bands, sharp heads decaying to the red with a 3 Å ripple:
//! TiO (7589, 7666, 8206, 8432, 8442, 8452 Å; 60 Å scale), τ = 0.6
//! e^((4000 − T)/250)·σ((4300 − T)/60)·10^(0.5[M/H] + 0.3Δ) (a cool-dwarf
//! feature); CN (7875, 8125, 8320 Å; 40 Å), τ = 0.15
//! e^((4500 − T)/500)·10^(0.8([M/H] + C_M) − 0.3Δ) (cool giants).
//!
//! Why this shape (SYNTHETIC.md's lessons: the plain recipe was too linear,
//! one global Ridge reached R² 0.71 against the real data's 0.46–0.50, with
//! the experts only +0.04 better). A linear model across all regimes needs
//! one pixel weighting whose gravity response is the same everywhere; here
//! every strong gravity signature changes sign or vanishes between regimes:
//! * signs flip between cool, mid and hot stars (Ca II: cool giants
//!   strong, mid-T dwarfs strong, hot stars trade core depth for pressure
//!   width; Mg I, Fe I, O I, ions and the neutral forest each flip with
//!   their own pattern) and, for the neutral lines, again below [M/H] = −1;
//! * giants and dwarfs use different features (cool Ca II saturates above
//!   log g ≈ 3.3, Na I / K I / TiO respond only above ≈ 3.2, CN favours
//!   giants): the response is kinked inside the cool bins, and features that
//!   carry gravity in one regime are driven by T_eff, [M/H] or a_M in the
//!   others, so a global weight on them injects nuisance variance there;
//! * pressure wings (the one sign-stable gravity effect of every strong
//!   line) respond mostly in hot stars (exponent 0.05 / 0.15 / 0.6), Paschen
//!   Stark wings only near 6000 K;
//! * metal-poor stars lose 60 % of the metal-line gravity terms, which with
//!   their weak lines makes the poor bins the hardest;
//! * nuisances a_M (Ca, Mg, Ti, O, 30 % of the forest), C_M (CN), ξ and
//!   v_mac (line widths, hence saturated-line EWs) vary strengths and shapes
//!   independently of log g.
//!
//! A per-bin expert sees one sign pattern, locally linear, and keeps its
//! skill; the transitions are smooth (120 K, 0.2 dex) so rows near a bin
//! edge mix two patterns, as real stars would. Measured effect:
//! `src/synth/SCIENCE.md`. κ < 1 for the strong lines mimics the fall of H⁻
//! opacity with metallicity (κ = 0.1 for Ca II, whose metal-poor wings also
//! narrow with the electron pressure); the Ca II triplet EW is ≈ 7–10 Å at
//! solar and ≈ 3–4 Å at [M/H] = −2 (tested), and the regime sign flips are
//! pinned by a unit test.
//!
//! **Error.** From the noiseless normalised flux f: source counts
//! S = 215·10^(−0.4(mag − 22.5))·φ(seeing) per pixel (φ a softened fibre
//! aperture fraction, 0.5…1.3), sky B_i = 2380·(1 + sky_i) with 150 sky
//! lines at the LSF width, peaks log-uniform 3–20× the sky continuum,
//! telluric transmission t_i (bands 7150–7400, 7590–7715, 8100–8380 Å),
//! σ_i = √(S f_i t_i + B_i + (0.01 B_i)² + 108) / (S t_i). Per-pixel counts
//! do not scale with P, so the SNR distribution is roughly P-independent.
//!
//! # Performance
//! Per row: ~350 line windows on a ~16k-point fine grid, one exp per fine
//! point, a ~50-tap kernel per output pixel, a median; scratch per worker, no
//! per-row allocation.

mod h5util;
mod model;
mod table;

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::layout::Layout;
use crate::{Error, Result};
use model::{SpectrumModel, Star};
use table::{ParamsRow, TableType};

/// Rows computed and written per block.
pub const BLOCK_ROWS: usize = 512;

/// Shard index of the test file in the per-row seeding.
pub const TEST_SHARD: u64 = u64::MAX;

/// Domain tag mixed into the parameter RNG seed (the noise stream has none).
const PARAMS_DOMAIN: u64 = 0x7061_7261_6d73_0001;

/// Storage type of the flux, error and noisy arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dtype {
    /// 32-bit floats.
    F32,
    /// 64-bit floats (the real files).
    #[default]
    F64,
}

/// Layout of the params table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParamsFormat {
    /// What `pandas.DataFrame.to_hdf(format="table")` writes (the real files).
    #[default]
    Pandas,
    /// A plain compound with one scalar field per column.
    Fields,
}

/// What [`generate`] writes.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateConfig {
    /// Output directory (created if missing).
    pub out: PathBuf,
    /// Number of training shards.
    pub train_shards: usize,
    /// Rows per training shard.
    pub rows_per_shard: usize,
    /// Rows of the test file (0: no test file).
    pub test_rows: usize,
    /// Pixels per spectrum (≥ 16).
    pub pixels: usize,
    /// Seed of the parameters and of the test noise.
    pub seed: u64,
    /// Noise level L of the test file's stored `noisy` array.
    pub test_noise: f64,
    /// Storage type of the arrays.
    pub dtype: Dtype,
    /// Chunk the arrays in (rows, P) chunks; None: contiguous (unless gzip).
    pub chunk_rows: Option<usize>,
    /// Deflate level 0–9 (implies chunking).
    pub gzip: Option<u8>,
    /// Layout of the params table.
    pub params_format: ParamsFormat,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig {
            out: PathBuf::from("synthetic"),
            train_shards: 2,
            rows_per_shard: 10_000,
            test_rows: 2_000,
            pixels: 4096,
            seed: 42,
            test_noise: 1.0,
            dtype: Dtype::F64,
            chunk_rows: None,
            gzip: None,
            params_format: ParamsFormat::Pandas,
        }
    }
}

fn invalid(name: &'static str, problem: impl Into<String>) -> Error {
    Error::InvalidParameter {
        name,
        problem: problem.into(),
    }
}

/// Checks what file-level options share between [`GenerateConfig`] and
/// [`ShardSpec`].
fn check_storage(pixels: usize, chunk_rows: Option<usize>, gzip: Option<u8>) -> Result<()> {
    if !(16..=1 << 20).contains(&pixels) {
        return Err(invalid(
            "pixels",
            format!("{pixels} is outside 16 … 1048576"),
        ));
    }
    if chunk_rows == Some(0) {
        return Err(invalid("chunked", "chunk rows must be at least 1"));
    }
    if let Some(l) = gzip {
        if l > 9 {
            return Err(invalid("gzip", format!("level {l} is outside 0 … 9")));
        }
        if !hdf5::filters::deflate_available() {
            return Err(invalid("gzip", "this libhdf5 has no deflate filter"));
        }
    }
    Ok(())
}

impl GenerateConfig {
    /// Validates the configuration; every problem is an
    /// [`Error::InvalidParameter`] naming the option.
    pub fn check(&self) -> Result<()> {
        if self.out.as_os_str().is_empty() {
            return Err(invalid("out", "the output directory is empty"));
        }
        if self.train_shards > 0 && self.rows_per_shard == 0 {
            return Err(invalid("rows", "training shards need at least 1 row each"));
        }
        if self.train_shards == 0 && self.test_rows == 0 {
            return Err(invalid(
                "train-shards",
                "nothing to write: no training shards and no test rows",
            ));
        }
        if !(self.test_noise.is_finite() && self.test_noise >= 0.0) {
            return Err(invalid(
                "test-noise",
                format!("{} is not a finite level ≥ 0", self.test_noise),
            ));
        }
        check_storage(self.pixels, self.chunk_rows, self.gzip)
    }

    /// The shard specs [`generate`] writes, with their paths.
    pub fn shards(&self) -> Vec<(PathBuf, ShardSpec)> {
        let mut v = Vec::new();
        let base = ShardSpec {
            rows: self.rows_per_shard,
            pixels: self.pixels,
            seed: self.seed,
            shard: 0,
            id_offset: 0,
            noisy: None,
            dtype: self.dtype,
            chunk_rows: self.chunk_rows,
            gzip: self.gzip,
            params_format: self.params_format,
        };
        for i in 0..self.train_shards {
            let spec = ShardSpec {
                shard: i as u64,
                id_offset: (i * self.rows_per_shard) as u64,
                ..base.clone()
            };
            v.push((self.out.join(format!("train_{i}")).join("dataset.h5"), spec));
        }
        if self.test_rows > 0 {
            let spec = ShardSpec {
                rows: self.test_rows,
                shard: TEST_SHARD,
                id_offset: (self.train_shards * self.rows_per_shard) as u64,
                noisy: Some(self.test_noise),
                ..base
            };
            v.push((self.out.join("test").join("dataset.h5"), spec));
        }
        v
    }
}

/// One shard file to write.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardSpec {
    /// Rows (≥ 1).
    pub rows: usize,
    /// Pixels per spectrum (≥ 16).
    pub pixels: usize,
    /// Seed of each row's parameters and spectrum (with `shard` and row) and of its `noisy` noise.
    pub seed: u64,
    /// Shard index in the per-row seeding ([`TEST_SHARD`] for the test file).
    pub shard: u64,
    /// `id` of the first row.
    pub id_offset: u64,
    /// Also store `noisy` = max(flux + L·error·z, 0) at this level L.
    pub noisy: Option<f64>,
    /// Storage type of the arrays.
    pub dtype: Dtype,
    /// Chunk rows of the arrays (None: contiguous unless gzip).
    pub chunk_rows: Option<usize>,
    /// Deflate level (implies chunking).
    pub gzip: Option<u8>,
    /// Layout of the params table.
    pub params_format: ParamsFormat,
}

impl ShardSpec {
    /// A training shard `shard` of `rows` × `pixels` with the default storage
    /// (f64, contiguous, pandas params, no noisy array).
    pub fn new(rows: usize, pixels: usize, seed: u64, shard: u64) -> ShardSpec {
        ShardSpec {
            rows,
            pixels,
            seed,
            shard,
            id_offset: 0,
            noisy: None,
            dtype: Dtype::F64,
            chunk_rows: None,
            gzip: None,
            params_format: ParamsFormat::Pandas,
        }
    }

    /// Validates the spec.
    pub fn check(&self) -> Result<()> {
        if self.rows == 0 {
            return Err(invalid("rows", "a shard needs at least 1 row"));
        }
        if let Some(l) = self.noisy {
            if !(l.is_finite() && l >= 0.0) {
                return Err(invalid(
                    "test-noise",
                    format!("{l} is not a finite level ≥ 0"),
                ));
            }
        }
        check_storage(self.pixels, self.chunk_rows, self.gzip)
    }

    /// Chunk rows of the arrays, if chunked.
    fn array_chunk_rows(&self) -> Option<usize> {
        let default_gzip = || (1 << 20) / (8 * self.pixels);
        match (self.chunk_rows, self.gzip) {
            (Some(c), _) => Some(c.clamp(1, self.rows)),
            (None, Some(_)) => Some(default_gzip().clamp(1, self.rows)),
            (None, None) => None,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateSummary {
    /// The files, training shards in order then the test file.
    pub files: Vec<PathBuf>,
    /// Rows written in total.
    pub rows: usize,
    /// Bytes on disk in total.
    pub bytes: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Writes the training shards and the test file of `cfg`; calls
/// `progress(rows)` after each written block.
pub fn generate(cfg: &GenerateConfig, progress: &(dyn Fn(u64) + Sync)) -> Result<GenerateSummary> {
    cfg.check()?;
    let start = Instant::now();
    let model = SpectrumModel::new(cfg.pixels);
    let mut summary = GenerateSummary {
        files: Vec::new(),
        rows: 0,
        bytes: 0,
        seconds: 0.0,
    };
    for (path, spec) in cfg.shards() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        summary.bytes += write_with(&model, &path, &spec, progress)?;
        summary.rows += spec.rows;
        summary.files.push(path);
    }
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

/// Writes one shard file (parent directory must exist); calls
/// `progress(rows)` after each written block; returns its size in bytes.
pub fn write_shard(path: &Path, spec: &ShardSpec, progress: &(dyn Fn(u64) + Sync)) -> Result<u64> {
    spec.check()?;
    let model = SpectrumModel::new(spec.pixels);
    write_with(&model, path, spec, progress)
}

/// SplitMix64's finaliser of `z + golden`: one step of SplitMix64.
fn mix(z: u64) -> u64 {
    let mut z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of row `row` of shard `shard`'s noise stream.
fn noise_key(seed: u64, shard: u64, row: u64) -> u64 {
    mix(mix(mix(seed) ^ shard) ^ row)
}

/// Fills `out` with the test file's standard-normal noise for `row`
/// (to be replaced by `crate::noise` at merge; same contract, DESIGN §4).
fn test_noise_row(seed: u64, row: u64, out: &mut [f64]) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(noise_key(seed, TEST_SHARD, row));
    for z in out.iter_mut() {
        *z = StandardNormal.sample(&mut rng);
    }
}

/// The star of row `row` of shard `shard`.
fn star_of(seed: u64, shard: u64, row: u64) -> Star {
    let mut rng =
        Xoshiro256PlusPlus::seed_from_u64(mix(noise_key(seed, shard, row) ^ PARAMS_DOMAIN));
    Star::draw(&mut rng)
}

/// One block of rows in flight between the computing and the writing thread.
struct Block {
    first: usize,
    n: usize,
    flux: Vec<f64>,
    error: Vec<f64>,
    noisy: Vec<f64>,
    params: Vec<ParamsRow>,
    table: Vec<u8>,
}

/// Computes rows `first..first + n` into `b`.
fn compute_block(model: &SpectrumModel, spec: &ShardSpec, tt: &TableType, b: &mut Block) {
    let p = spec.pixels;
    let (first, n) = (b.first, b.n);
    b.flux.resize(n * p, 0.0);
    b.error.resize(n * p, 0.0);
    b.params.clear();
    b.params.resize(
        n,
        ParamsRow {
            star: star_of(0, 0, 0),
            snr: 0.0,
            id: 0,
        },
    );
    b.flux
        .par_chunks_mut(p)
        .zip(b.error.par_chunks_mut(p))
        .zip(b.params.par_iter_mut())
        .enumerate()
        .for_each_init(
            || model.scratch(),
            |sc, (i, ((f, e), pr))| {
                let row = (first + i) as u64;
                let star = star_of(spec.seed, spec.shard, row);
                let snr = model.synthesize(&star, sc, f, e);
                *pr = ParamsRow {
                    star,
                    snr,
                    id: (spec.id_offset + row) as i64,
                };
            },
        );
    if let Some(level) = spec.noisy {
        b.noisy.resize(n * p, 0.0);
        b.noisy
            .par_chunks_mut(p)
            .zip(b.flux.par_chunks(p))
            .zip(b.error.par_chunks(p))
            .enumerate()
            .for_each(|(i, ((z, f), e))| {
                test_noise_row(spec.seed, (first + i) as u64, z);
                for ((z, &f), &e) in z.iter_mut().zip(f).zip(e) {
                    *z = (f + level * e * *z).max(0.0);
                }
            });
    }
    tt.encode(first, &b.params, &mut b.table);
}

/// The open datasets of a shard being written.
struct ShardWriter {
    flux: hdf5::Dataset,
    error: hdf5::Dataset,
    noisy: Option<hdf5::Dataset>,
    table: hdf5::Dataset,
}

impl ShardWriter {
    fn create(
        file: &hdf5::File,
        model: &SpectrumModel,
        path: &Path,
        spec: &ShardSpec,
        tt: &TableType,
    ) -> Result<Self> {
        let layout = Layout::default();
        let (n, p) = (spec.rows, spec.pixels);
        let array = |name: &str| -> Result<hdf5::Dataset> {
            let what = format!("creating {name}");
            let b = file.new_dataset_builder();
            let b = match spec.array_chunk_rows() {
                Some(c) => b.chunk((c, p)),
                None => b,
            };
            let b = match spec.gzip {
                Some(l) => b.deflate(l),
                None => b,
            };
            let b = match spec.dtype {
                Dtype::F32 => b.empty::<f32>(),
                Dtype::F64 => b.empty::<f64>(),
            };
            b.shape((n, p))
                .create(name)
                .map_err(|e| Error::hdf5(path, what, e))
        };
        let flux = array(&layout.flux)?;
        let error = array(&layout.error)?;
        let noisy = match spec.noisy {
            Some(_) => Some(array(&layout.noisy)?),
            None => None,
        };
        let table = tt.create(file, path, n)?;
        let vector = |name: &str, data: &[f64]| -> Result<()> {
            file.new_dataset_builder()
                .with_data(data)
                .create(name)
                .map(|_| ())
                .map_err(|e| Error::hdf5(path, format!("writing {name}"), e))
        };
        vector(&layout.wave, model.wave())?;
        vector("/spectrumdataset/wave_edges", model.wave_edges())?;
        Ok(ShardWriter {
            flux,
            error,
            noisy,
            table,
        })
    }

    fn write(&self, path: &Path, spec: &ShardSpec, tt: &TableType, b: &Block) -> Result<()> {
        let rows = b.first..b.first + b.n;
        let p = spec.pixels;
        let what = |d: &str| format!("writing {d} rows {}..{}", rows.start, rows.end);
        let layout = Layout::default();
        h5util::write_rows(&self.flux, rows.clone(), p, &b.flux)
            .map_err(|e| Error::hdf5(path, what(&layout.flux), e))?;
        h5util::write_rows(&self.error, rows.clone(), p, &b.error)
            .map_err(|e| Error::hdf5(path, what(&layout.error), e))?;
        if let Some(ds) = &self.noisy {
            h5util::write_rows(ds, rows.clone(), p, &b.noisy)
                .map_err(|e| Error::hdf5(path, what(&layout.noisy), e))?;
        }
        tt.write(&self.table, b.first, b.n, &b.table)
            .map_err(|e| Error::hdf5(path, what(&layout.params), e))
    }
}

/// Writes `spec` to `path` with a prebuilt model: blocks computed on the
/// rayon pool, written in order by one writer thread, two blocks in flight.
fn write_with(
    model: &SpectrumModel,
    path: &Path,
    spec: &ShardSpec,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u64> {
    let tt = TableType::new(spec.params_format)
        .map_err(|e| Error::hdf5(path, "building the params type", e))?;
    let file = hdf5::File::create(path).map_err(|e| Error::hdf5(path, "creating the file", e))?;
    for g in ["dataset", "dataset/arrays", "spectrumdataset"] {
        file.create_group(g)
            .map_err(|e| Error::hdf5(path, format!("creating group /{g}"), e))?;
    }
    let writer = ShardWriter::create(&file, model, path, spec, &tt)?;
    let (full_tx, full_rx) = crossbeam_channel::bounded::<Block>(1);
    let (empty_tx, empty_rx) = crossbeam_channel::bounded::<Block>(3);
    for _ in 0..2 {
        let b = Block {
            first: 0,
            n: 0,
            flux: Vec::new(),
            error: Vec::new(),
            noisy: Vec::new(),
            params: Vec::new(),
            table: Vec::new(),
        };
        let _ = empty_tx.send(b);
    }
    let result = std::thread::scope(|s| -> Result<()> {
        let w = &writer;
        let tt_ref = &tt;
        let handle = s.spawn(move || -> Result<()> {
            for b in full_rx.iter() {
                w.write(path, spec, tt_ref, &b)?;
                progress(b.n as u64);
                if empty_tx.send(b).is_err() {
                    break;
                }
            }
            Ok(())
        });
        let mut first = 0;
        while first < spec.rows {
            let Ok(mut b) = empty_rx.recv() else { break };
            b.first = first;
            b.n = BLOCK_ROWS.min(spec.rows - first);
            compute_block(model, spec, &tt, &mut b);
            first += b.n;
            if full_tx.send(b).is_err() {
                break;
            }
        }
        drop(full_tx);
        match handle.join() {
            Ok(r) => r,
            Err(_) => Err(Error::Worker(format!(
                "{}: the writer thread panicked",
                path.display()
            ))),
        }
    });
    result?;
    drop(writer);
    file.close()
        .map_err(|e| Error::hdf5(path, "closing the file", e))?;
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests;

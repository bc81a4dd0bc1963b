//! The α sweep: every Ridge α for every bin of every partition, and the
//! global model, solved from a statistics file alone.
//!
//! For each group of rows (the global model, then each slot of each
//! partition) the sweep sums the group's accumulators per fold, solves one
//! [`RidgePath`], and reports for every α the training R², the effective
//! degrees of freedom, GCV and — when the statistics have folds — the exact
//! K-fold CV MSE. Each group's α is then selected by CV (the default when
//! folds exist) or GCV. With a test shard ([`TestSpec`]) every (group, α)
//! model is also scored on the group's own test rows, routed by their true
//! T_eff, [M/H] and SNR ([`test_eval`]).
//!
//! Memory: one group's per-fold sums (K packed Gram matrices), the running
//! global per-fold sums (K more, built from the first partition's slots, so
//! the file is read once per partition), the P × P covariance and
//! eigenvectors, and the weights of every (group, α) — P × groups × α values.
//! Groups with too few rows are reported with the reason, never dropped.

pub mod report;
pub mod test_eval;

use std::time::Instant;

use faer::{Mat, Par};
use serde::Serialize;

use crate::eval::Metrics;
use crate::models::{Expert, ModelSet, PartitionModels, Provenance};
use crate::ridge::{self, GroupPath, RidgePath};
use crate::stats::derive::{members, Group};
use crate::stats::{StatsFile, StatsHeader, SuffStats};
use crate::threads::{Cancel, Pool};
use crate::{Error, FitError, Result, Threads};

pub use test_eval::TestSpec;

/// Groups solved at once without CV (with enough threads): each holds its
/// K fold sums of P²/2 values (K × 67 MB at P = 4096) and its own dense
/// P × P decomposition, so this bounds the sweep's memory, not only its
/// speed.
const CONCURRENT_GROUPS: usize = 2;

/// How each group's α is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Select {
    /// The smallest exact K-fold CV MSE (needs ≥ 2 folds).
    Cv,
    /// The smallest GCV.
    Gcv,
    /// A fixed α for every group ([`SweepOptions::fixed_alpha`]).
    Fixed,
}

impl Select {
    /// A short name: `cv`, `gcv`, `fixed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Select::Cv => "cv",
            Select::Gcv => "gcv",
            Select::Fixed => "fixed",
        }
    }

    /// How the rule reads in a sentence.
    pub fn describe(self) -> &'static str {
        match self {
            Select::Cv => "exact K-fold CV",
            Select::Gcv => "GCV",
            Select::Fixed => "a fixed α",
        }
    }
}

impl std::str::FromStr for Select {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cv" => Ok(Select::Cv),
            "gcv" => Ok(Select::Gcv),
            "fixed" => Ok(Select::Fixed),
            other => Err(format!("unknown selection {other:?}: cv, gcv or fixed")),
        }
    }
}

/// What to sweep.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// The α grid (each finite, ≥ 0).
    pub alphas: Vec<f64>,
    /// Selection rule; None: CV when the statistics have ≥ 2 folds, else GCV.
    pub select: Option<Select>,
    /// A test shard to score every (group, α) on.
    pub test: Option<TestSpec>,
    /// How CV solves the folds.
    pub cv: CvMethod,
    /// Threads for the groups' decompositions, CV and test scoring.
    pub threads: Threads,
    /// With [`Select::Fixed`]: the α every group uses (must be in `alphas`).
    pub fixed_alpha: Option<f64>,
    /// Keep this many leading principal components of the global
    /// covariance in [`Sweep::pca`] (0: none), e.g. for the gate.
    pub pca_components: usize,
    /// Stops the sweep before the next group or test chunk when cancelled.
    pub cancel: Cancel,
}

impl SweepOptions {
    /// `alphas`, selection by the default rule, no test, CV by the cheapest
    /// exact solver per fold ([`CvMethod::Auto`]), all cores, nothing
    /// fixed, no PCA kept.
    pub fn new(alphas: Vec<f64>) -> Self {
        SweepOptions {
            alphas,
            select: None,
            test: None,
            cv: CvMethod::Auto,
            threads: Threads::All,
            fixed_alpha: None,
            pca_components: 0,
            cancel: Cancel::default(),
        }
    }
}

/// The leading principal components of the global training rows, from the
/// global model's eigendecomposition.
#[derive(Debug, Clone)]
pub struct Pca {
    /// The mean training spectrum (length P).
    pub mean: Vec<f64>,
    /// The leading components as the columns of a `P × k` matrix, largest
    /// eigenvalue first.
    pub components: Mat<f64>,
    /// Their eigenvalues of the centred scatter matrix `Σ (x − x̄)(x − x̄)ᵀ`.
    pub eigenvalues: Vec<f64>,
    /// The sum of all eigenvalues (the total scatter), for the explained fraction.
    pub total: f64,
}

/// Adds `alpha` to a grid (kept ascending) unless it is there already.
/// Errors when α is not finite or negative.
pub fn insert_alpha(alphas: &mut Vec<f64>, alpha: f64) -> Result<()> {
    if !alpha.is_finite() || alpha < 0.0 {
        return Err(Error::InvalidParameter {
            name: "alpha",
            problem: format!("{alpha} must be finite and ≥ 0"),
        });
    }
    if !alphas.contains(&alpha) {
        let at = alphas.partition_point(|&a| a < alpha);
        alphas.insert(at, alpha);
    }
    Ok(())
}

/// The most α values a sweep takes. Every group keeps the weights of every
/// α (P × 8 bytes each): at P = 4096 and 15 groups, 1,000 α hold 0.5 GB;
/// the default grid has 50. A larger grid is refused before any work.
pub const MAX_ALPHAS: usize = 1000;

fn too_many_alphas(n: usize) -> Error {
    Error::InvalidParameter {
        name: "alphas",
        problem: format!(
            "{n} values: at most {MAX_ALPHAS} (each group keeps P weights per α; the default grid has 50)"
        ),
    }
}

/// The default α grid: `n` values log-spaced from `lo` to `hi` inclusive
/// (1 ≤ n ≤ [`MAX_ALPHAS`]).
pub fn log_grid(lo: f64, hi: f64, n: usize) -> Result<Vec<f64>> {
    if !(lo > 0.0 && hi >= lo && lo.is_finite() && hi.is_finite()) || n == 0 {
        return Err(Error::InvalidParameter {
            name: "alphas",
            problem: format!("a log grid needs 0 < LO ≤ HI and N ≥ 1, got {lo}:{hi}:{n}"),
        });
    }
    if n > MAX_ALPHAS {
        return Err(too_many_alphas(n));
    }
    if n == 1 {
        return Ok(vec![lo]);
    }
    let (a, b) = (lo.log10(), hi.log10());
    Ok((0..n)
        .map(|i| 10f64.powf(a + (b - a) * i as f64 / (n - 1) as f64))
        .collect())
}

/// Parses an α list: `LO:HI:N` (log-spaced) or comma-separated values.
pub fn parse_alphas(spec: &str) -> Result<Vec<f64>> {
    let bad = |what: &str| Error::InvalidParameter {
        name: "alphas",
        problem: format!("{spec:?}: {what} (expected LO:HI:N or a comma-separated list)"),
    };
    let alphas = if spec.contains(':') {
        let parts: Vec<&str> = spec.split(':').collect();
        if parts.len() != 3 {
            return Err(bad("three fields needed"));
        }
        let lo: f64 = parts[0]
            .trim()
            .parse()
            .map_err(|_| bad("LO is not a number"))?;
        let hi: f64 = parts[1]
            .trim()
            .parse()
            .map_err(|_| bad("HI is not a number"))?;
        let n: usize = parts[2]
            .trim()
            .parse()
            .map_err(|_| bad("N is not a count"))?;
        log_grid(lo, hi, n)?
    } else {
        spec.split(',')
            .map(|s| s.trim().parse::<f64>().map_err(|_| bad("not a number")))
            .collect::<Result<Vec<_>>>()?
    };
    if alphas.is_empty() || alphas.iter().any(|a| !a.is_finite() || *a < 0.0) {
        return Err(bad("every α must be finite and ≥ 0"));
    }
    if alphas.len() > MAX_ALPHAS {
        return Err(too_many_alphas(alphas.len()));
    }
    Ok(alphas)
}

/// Which rows a [`GroupSweep`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GroupId {
    /// Partition position in the header (None: the global model).
    pub partition: Option<usize>,
    /// Slot within the partition (bin id, or the bin count for rows outside
    /// every bin); 0 for the global model.
    pub slot: usize,
}

/// One α of one group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AlphaPoint {
    /// The Ridge penalty α (a value of the grid).
    pub alpha: f64,
    /// Training R² (NaN where the model does not exist, e.g. α = 0 on a
    /// singular covariance).
    pub train_r2: f64,
    /// Effective degrees of freedom Σλ/(λ+α).
    pub dof: f64,
    /// GCV = n·RSS/(n − 1 − dof)² on the training rows (NaN when dof ≥ n − 1).
    pub gcv: f64,
    /// Exact K-fold CV MSE, when folds exist.
    pub cv_mse: Option<f64>,
    /// Metrics on the group's test rows, when a test shard was given.
    pub test: Option<Metrics>,
}

/// The sweep of one group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupSweep {
    /// The group's partition position and slot (`partition: None`: the global model).
    pub id: GroupId,
    /// `global`, or the partition's name.
    pub partition: String,
    /// `all`, or the bin id.
    pub bin: String,
    /// Human name: `all`, a bin name, or `outside bins`.
    pub name: String,
    /// Training rows of the group, summed over its folds (0 until solved).
    pub n_train: u64,
    /// One entry per α of the grid.
    pub points: Vec<AlphaPoint>,
    /// Index of the selected α in `points`, when one could be selected.
    pub selected: Option<usize>,
    /// How it was selected.
    pub selected_by: Option<Select>,
    /// Why something is missing for this group (too few rows, CV
    /// unavailable, α = 0 on a singular covariance), empty when nothing is.
    pub notes: Vec<String>,
    /// Seconds spent in the eigendecomposition of this group.
    pub eigh_s: f64,
    /// Seconds spent in cross-validation.
    pub cv_s: f64,
    /// Rows validated by CV (Σ over folds).
    pub cv_rows: u64,
    /// Mean of y over the training rows (scale for R²-like plots).
    pub y_mean: f64,
    /// Variance of y over the training rows (population).
    pub y_var: f64,
    /// Test rows routed to this group.
    pub n_test: u64,
}

impl GroupSweep {
    /// The selected point.
    pub fn selected_point(&self) -> Option<&AlphaPoint> {
        self.selected.map(|i| &self.points[i])
    }
}

/// The models behind a sweep: weights for every (group, α), for test
/// evaluation and for saving the selected experts.
#[derive(Debug, Clone)]
pub struct GroupModels {
    /// P × α weights, one column per α of the grid (zero columns where the
    /// model does not exist).
    pub w: Mat<f64>,
    /// Intercept per α.
    pub intercept: Vec<f64>,
    /// Whether the model exists per α.
    pub valid: Vec<bool>,
}

impl GroupModels {
    /// The model for α index `a`.
    pub fn coefficients(&self, alpha: f64, a: usize) -> ridge::Coefficients {
        ridge::Coefficients {
            alpha,
            w: self.w.col(a).iter().copied().collect(),
            intercept: self.intercept[a],
        }
    }
}

/// A whole sweep.
#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    /// The α grid.
    pub alphas: Vec<f64>,
    /// Selection rule used (groups without CV fall back to GCV, see their notes).
    pub select: Select,
    /// Folds in the statistics.
    pub folds: usize,
    /// Pixels per spectrum (P), from the statistics header.
    pub pixels: usize,
    /// Training rows in the statistics.
    pub train_rows: u64,
    /// How the statistics' block products were formed (written only when
    /// not f64).
    #[serde(skip_serializing_if = "crate::stats::Precision::is_f64")]
    pub precision: crate::stats::Precision,
    /// Global model first, then each partition's slots in order.
    pub groups: Vec<GroupSweep>,
    /// Test-set summary, when a test shard was given.
    pub test: Option<test_eval::TestSummary>,
    /// Seconds: reading and summing statistics, eigendecompositions, CV,
    /// the rest of the solve (weights for every α), test evaluation, total.
    pub timing: Timing,
    /// Weights of every (group, α), one entry per group in `groups` order (not serialized).
    #[serde(skip)]
    pub models: Vec<GroupModels>,
    /// The global model's leading principal components, when
    /// [`SweepOptions::pca_components`] > 0 (not serialized).
    #[serde(skip)]
    pub pca: Option<Pca>,
}

/// Where the sweep's time went, in seconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Timing {
    /// Reading and summing the statistics.
    pub read_s: f64,
    /// Eigendecompositions, summed over groups (without CV or with
    /// `--cv auto` two groups run at once, so this can exceed the wall
    /// time).
    pub eigh_s: f64,
    /// Cross-validation, summed over groups.
    pub cv_s: f64,
    /// Everything else of the solve: weights, GCV, R² for every α.
    pub path_s: f64,
    /// Scoring on the test shard.
    pub test_s: f64,
    /// Wall time of [`run`], from its start to its return.
    pub total_s: f64,
}

/// Progress events of [`run`].
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// Starting group `index` of `total` (partition, bin name).
    Group {
        /// 0-based.
        index: usize,
        /// Groups in all.
        total: usize,
        /// `<partition> <name>`, e.g. `global all` or `teff_mh Cool Poor`.
        label: &'a str,
    },
    /// Test rows scored so far, of the total.
    TestRows {
        /// Test rows scored so far.
        done: u64,
        /// Rows of the test shard, counted before scoring starts.
        total: u64,
    },
}

/// The slot's display name.
pub fn slot_name(header: &StatsHeader, partition: usize, slot: usize) -> String {
    let p = &header.partitions.partitions[partition];
    p.bin_names
        .get(slot)
        .cloned()
        .unwrap_or_else(|| "outside bins".to_string())
}

/// Sums a group's accumulators per fold (one SuffStats per fold).
fn fold_sums(file: &StatsFile, group: Group) -> Result<Vec<SuffStats>> {
    group_fold_sums(file.header(), group, &mut |a| file.accumulator(a))
}

/// A group's sums per fold, added in the order the sweep adds them, with
/// `read` giving accumulator `a`: a bin's fold is the sum of its
/// accumulators of that fold; the global model's fold is the sum of
/// partition 0's slots' folds, slot after slot (what `solve_groups` builds
/// while it solves those slots). Models solved from these sums are the
/// sweep's bit for bit.
pub fn group_fold_sums(
    header: &StatsHeader,
    group: Group,
    read: &mut dyn FnMut(usize) -> Result<SuffStats>,
) -> Result<Vec<SuffStats>> {
    let (p, folds) = (header.pixels, header.partitions.folds);
    match group {
        Group::Bin { .. } => (0..folds)
            .map(|k| crate::stats::derive::sum(p, &members(header, group, Some(k))?, &mut *read))
            .collect(),
        Group::Global => {
            let mut global: Vec<SuffStats> = (0..folds).map(|_| SuffStats::zeros(p)).collect();
            let slots = header
                .partitions
                .partitions
                .first()
                .map_or(0, |p| p.slots());
            for slot in 0..slots {
                let fs = group_fold_sums(header, Group::Bin { partition: 0, slot }, read)?;
                for (acc, f) in global.iter_mut().zip(&fs) {
                    acc.add(f)?;
                }
            }
            Ok(global)
        }
    }
}

fn total_of(folds: &[SuffStats], p: usize) -> Result<SuffStats> {
    let mut t = SuffStats::zeros(p);
    for f in folds {
        t.add(f)?;
    }
    Ok(t)
}

/// How the exact K-fold CV solves each fold's training model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CvMethod {
    /// Each fold by the cheapest exact solver, by a cost model (the
    /// default): band reduction with one band Cholesky per α, or block PCG
    /// from the bin's decomposition where the fold's complement holds many
    /// more rows than P ([`crate::cv::cv_sse_auto`]).
    Auto,
    /// One eigendecomposition per fold, all α from it: K more
    /// decompositions per bin, run concurrently with the bin's own.
    Eigh,
    /// Block preconditioned CG per fold for all α, the bin's decomposition
    /// as preconditioner ([`crate::cv`]); falls back to a decomposition when
    /// it stagnates.
    Pcg,
    /// No cross-validation (α by GCV): one decomposition per bin.
    Skip,
}

impl std::str::FromStr for CvMethod {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(CvMethod::Auto),
            "eigh" => Ok(CvMethod::Eigh),
            "pcg" => Ok(CvMethod::Pcg),
            "none" => Ok(CvMethod::Skip),
            other => Err(format!(
                "unknown CV method {other:?}: auto, eigh, pcg or none"
            )),
        }
    }
}

/// Solves the α path of one group from its per-fold sums.
fn solve_group(
    header: &StatsHeader,
    folds: &[SuffStats],
    alphas: &[f64],
    cv: Option<CvMethod>,
    par: Par,
    out: &mut GroupSweep,
    pca: Option<(usize, &mut Option<Pca>)>,
) -> Result<GroupModels> {
    let p = header.pixels;
    let mut models = GroupModels {
        w: Mat::zeros(p, alphas.len()),
        intercept: vec![f64::NAN; alphas.len()],
        valid: vec![false; alphas.len()],
    };
    let blank = |alpha| AlphaPoint {
        alpha,
        train_r2: f64::NAN,
        dof: f64::NAN,
        gcv: f64::NAN,
        cv_mse: None,
        test: None,
    };
    let total = total_of(folds, p)?;
    out.n_train = total.n;
    out.points = alphas.iter().map(|&a| blank(a)).collect();
    if total.n < 2 {
        out.notes.push(format!(
            "{} training row(s): a Ridge model needs at least 2; no model",
            total.n
        ));
        return Ok(models);
    }
    if (total.n as usize) <= p {
        out.notes.push(format!(
            "{} training rows for {p} pixels: the covariance is singular, only α > 0 is defined",
            total.n
        ));
    }
    let cv = cv.filter(|_| cv_possible(folds, total.n, out));
    // α = 0 is defined only on a full-rank covariance; CV uses α > 0 only
    // when a fold's complement could be singular.
    let cv_alphas: Vec<usize> = (0..alphas.len()).filter(|&a| alphas[a] > 0.0).collect();
    let cv_grid: Vec<f64> = cv_alphas.iter().map(|&a| alphas[a]).collect();
    let fold_refs: Vec<&SuffStats> = folds.iter().filter(|f| f.n > 0).collect();
    let t = Instant::now();
    let (path, fold_sse) = match cv {
        Some(CvMethod::Eigh) => {
            let (path, sse) = path_and_folds_eigh(header, &total, folds, &cv_grid)?;
            (GroupPath::Eigen(path), Some(sse))
        }
        Some(CvMethod::Auto) => {
            // The PCA needs the group's eigenvectors; otherwise its models
            // on the grid are all the sweep needs.
            let own = match pca {
                Some(_) => crate::cv::OwnPath::Eigen,
                None => crate::cv::OwnPath::Grid(alphas),
            };
            let (path, sse) = path_and_folds_auto(header, &total, folds, &cv_grid, own, out)?;
            (path, Some(sse))
        }
        _ => (
            GroupPath::Eigen(RidgePath::new(
                &total,
                &header.shift_x,
                header.shift_y,
                par,
            )?),
            None,
        ),
    };
    let elapsed = t.elapsed().as_secs_f64();
    if let Some((k, slot)) = pca {
        let eigen = path
            .eigen()
            .expect("a group with a PCA is solved by eigendecomposition");
        *slot = Some(leading_pca(eigen, k.min(p))?);
    }
    out.y_mean = path.y_mean();
    out.y_var = path.syy() / total.n as f64;
    let fold_sse = match (cv, fold_sse) {
        (Some(CvMethod::Pcg), _) => {
            out.eigh_s = elapsed;
            let t = Instant::now();
            let eigen = path.eigen().expect("--cv pcg decomposes the group");
            let sse = folds_pcg(header, eigen, &total, &fold_refs, &cv_grid, par, out)?;
            out.cv_s = t.elapsed().as_secs_f64();
            Some(sse)
        }
        (Some(CvMethod::Eigh | CvMethod::Auto), s) => {
            // 1 + K solves ran together; count the bin's share as its
            // decomposition and the rest as CV.
            let k = fold_refs.len() as f64;
            out.eigh_s = elapsed / (1.0 + k);
            out.cv_s = elapsed - out.eigh_s;
            s
        }
        _ => {
            out.eigh_s = elapsed;
            None
        }
    };
    if let Some(sse) = fold_sse {
        let rows: u64 = fold_refs.iter().map(|f| f.n).sum();
        out.cv_rows = rows;
        for (j, &a) in cv_alphas.iter().enumerate() {
            out.points[a].cv_mse = Some(sse[j] / rows as f64);
        }
    }
    fill_models(path, alphas, par, total.n, out, &mut models);
    Ok(models)
}

/// Exact K-fold CV needs rows in ≥ 2 folds and ≥ 2 training rows in every
/// complement; otherwise the group says why it has none.
fn cv_possible(folds: &[SuffStats], n: u64, out: &mut GroupSweep) -> bool {
    let nonempty = folds.iter().filter(|f| f.n > 0).count();
    if nonempty < 2 {
        out.notes.push(format!(
            "CV unavailable: rows in {nonempty} of {} folds",
            folds.len()
        ));
        return false;
    }
    if folds.iter().any(|f| n - f.n < 2) {
        out.notes
            .push("CV unavailable: a fold's complement has fewer than 2 rows".into());
        return false;
    }
    true
}

/// The group's own path (as `own` asks) and its exact K-fold CV by the
/// cheapest solver per fold ([`crate::cv::cv_sse_auto`]); notes how the
/// folds and the group were solved.
fn path_and_folds_auto(
    header: &StatsHeader,
    total: &SuffStats,
    folds: &[SuffStats],
    cv_grid: &[f64],
    own: crate::cv::OwnPath<'_>,
    out: &mut GroupSweep,
) -> Result<(GroupPath, Vec<f64>)> {
    use crate::cv::{cv_sse_auto, FoldSolver, Solvers};
    let (path, r) = cv_sse_auto(
        total,
        folds,
        &header.shift_x,
        header.shift_y,
        cv_grid,
        Solvers::CostModel,
        own,
    )?;
    let count = |s| r.solvers.iter().filter(|&&x| x == s).count();
    let mut how = vec![];
    let pcg = count(FoldSolver::Pcg);
    if pcg > 0 {
        let most = r
            .pcg_iterations
            .iter()
            .flatten()
            .max()
            .copied()
            .unwrap_or(0);
        how.push(format!("{pcg} by PCG (at most {most} iterations)"));
    }
    for (s, name) in [
        (FoldSolver::Band, "band reduction"),
        (FoldSolver::Eigh, "eigendecomposition"),
    ] {
        if count(s) > 0 {
            how.push(format!("{} by {name}", count(s)));
        }
    }
    let gave_up = if r.pcg_gave_up > 0 {
        format!(
            " ({} after PCG did not converge within its budget)",
            r.pcg_gave_up
        )
    } else {
        String::new()
    };
    out.notes
        .push(format!("CV folds: {}{gave_up}", how.join(", ")));
    if let GroupPath::Band(_) = path {
        out.notes.push(
            "models: band reduction (eigenvalues for dof and GCV from its tridiagonal form)".into(),
        );
    }
    Ok((path, r.sse))
}

/// The bin's decomposition and its exact K-fold CV ([`cv_sse_eigh`]), run
/// concurrently, each decomposition single-threaded (deterministic, and
/// every core busy); returns the bin's path and the folds' summed squared
/// errors on `cv_grid`.
fn path_and_folds_eigh(
    header: &StatsHeader,
    total: &SuffStats,
    folds: &[SuffStats],
    cv_grid: &[f64],
) -> Result<(RidgePath, Vec<f64>)> {
    let (path, cv) = rayon::join(
        || RidgePath::new(total, &header.shift_x, header.shift_y, Par::Seq),
        || cv_sse_eigh(header, total, folds, cv_grid),
    );
    Ok((path?, cv?.0))
}

/// Exact K-fold CV of one group, as the sweep computes it (`--cv eigh`):
/// the complement `total − fold` of each fold with rows is solved by its
/// own eigendecomposition, its models for every α are validated on the
/// fold's own sums, and the squared errors are summed over the folds in
/// fold order. `folds` are the group's per-fold sums (`total` their sum),
/// every α > 0. Returns the summed validation SSE per α and the rows
/// validated (CV MSE = SSE / rows). The folds run concurrently in the
/// calling rayon pool, each sequentially, so the result does not depend
/// on the thread count.
///
/// Errors: [`Error::InvalidParameter`] for an α that is not a finite
/// positive number; [`FitError::TooFewRows`] when the group has no rows or a
/// fold's complement has fewer than two (one fold with rows leaves an
/// empty complement).
pub fn cv_sse_eigh(
    header: &StatsHeader,
    total: &SuffStats,
    folds: &[SuffStats],
    alphas: &[f64],
) -> Result<(Vec<f64>, u64)> {
    use rayon::prelude::*;
    if let Some(a) = alphas.iter().find(|a| !(a.is_finite() && **a > 0.0)) {
        return Err(Error::InvalidParameter {
            name: "alpha",
            problem: format!("exact K-fold CV needs finite α > 0, got {a}"),
        });
    }
    let nonempty: Vec<&SuffStats> = folds.iter().filter(|f| f.n > 0).collect();
    let too_few = |set, rows| FitError::TooFewRows {
        model: "exact K-fold CV",
        set,
        need: 2,
        rows,
    };
    if nonempty.is_empty() {
        return Err(too_few("this group", total.n).into());
    }
    // One fold with rows (or statistics with one fold) leaves it an empty complement.
    if let Some(f) = nonempty.iter().find(|f| total.n.saturating_sub(f.n) < 2) {
        return Err(too_few("a fold's complement", total.n.saturating_sub(f.n)).into());
    }
    let per_fold: Vec<Result<Vec<f64>>> = nonempty
        .par_iter()
        .with_max_len(1)
        .map(|fold| crate::cv::fold_sse_eigh(total, fold, &header.shift_x, header.shift_y, alphas))
        .collect();
    let mut sse = vec![0.0; alphas.len()];
    for s in per_fold {
        sse.iter_mut().zip(&s?).for_each(|(a, b)| *a += b);
    }
    Ok((sse, nonempty.iter().map(|f| f.n).sum()))
}

/// The leading `k` principal components of the bin's covariance (the
/// gate's PCA features), with the share of variance they hold.
fn leading_pca(path: &RidgePath, k: usize) -> Result<Pca> {
    let (mean, components) = crate::gate::features::leading_components(
        path.x_mean(),
        path.eigenvalues(),
        path.eigenvectors(),
        k,
    )?;
    let ev = path.eigenvalues();
    Ok(Pca {
        mean,
        components,
        eigenvalues: ev.iter().rev().take(k).copied().collect(),
        total: ev.iter().map(|v| v.max(0.0)).sum(),
    })
}

/// The folds' summed squared errors by block PCG from the bin's
/// decomposition; notes the folds it solved by decomposition instead and
/// its iterations.
fn folds_pcg(
    header: &StatsHeader,
    path: &RidgePath,
    total: &SuffStats,
    folds: &[&SuffStats],
    cv_grid: &[f64],
    par: Par,
    out: &mut GroupSweep,
) -> Result<Vec<f64>> {
    let owned: Vec<SuffStats> = folds.iter().map(|f| (*f).clone()).collect();
    let r = crate::cv::cv_sse_pcg(
        path,
        total,
        &owned,
        &header.shift_x,
        header.shift_y,
        cv_grid,
        &crate::cv::PcgOptions::default(),
        par,
    )?;
    if r.fallback_folds > 0 {
        out.notes.push(format!(
            "PCG did not converge on {} of {} folds: solved by eigendecomposition",
            r.fallback_folds,
            owned.len()
        ));
    }
    let its: Vec<usize> = r
        .iterations
        .iter()
        .filter(|f| !f.fallback)
        .map(|f| f.max)
        .collect();
    if let Some(m) = its.iter().max() {
        out.notes
            .push(format!("PCG: at most {m} iterations per fold"));
    }
    Ok(r.sse)
}

/// Every α's weights from the path, and each point's training R², degrees
/// of freedom and GCV; α = 0 is skipped (with a note) when the covariance
/// is singular.
fn fill_models(
    path: GroupPath,
    alphas: &[f64],
    par: Par,
    n: u64,
    out: &mut GroupSweep,
    models: &mut GroupModels,
) {
    let grid = path.into_grid(alphas, par);
    let usable = &grid.usable;
    if usable.len() < alphas.len() {
        out.notes.push(format!(
            "α = 0 (least squares) skipped: the covariance is singular ({n} rows, {} pixels)",
            models.w.nrows()
        ));
    }
    for (j, &a) in usable.iter().enumerate() {
        models.w.col_mut(a).copy_from(grid.w.col(j));
        models.intercept[a] = grid.intercept[j];
        models.valid[a] = true;
        let pt = &mut out.points[a];
        pt.train_r2 = grid.train_r2[j];
        pt.dof = grid.dof[j];
        pt.gcv = grid.gcv[j];
    }
}

/// Picks the α with the smallest criterion; ties go to the larger α.
fn select(points: &[AlphaPoint], by: Select) -> Option<usize> {
    let crit = |p: &AlphaPoint| match by {
        Select::Cv => p.cv_mse.unwrap_or(f64::NAN),
        Select::Gcv => p.gcv,
        Select::Fixed => f64::NAN,
    };
    let mut best: Option<(usize, f64)> = None;
    for (i, p) in points.iter().enumerate() {
        let c = crit(p);
        if !c.is_finite() {
            continue;
        }
        match best {
            Some((bi, bc)) if c > bc || (c == bc && points[bi].alpha >= p.alpha) => {}
            _ => best = Some((i, c)),
        }
    }
    best.map(|(i, _)| i)
}

/// How a sweep chooses α, from the options and the statistics' folds.
struct Rule {
    /// The grid index every group uses (selection by a fixed α).
    fixed_index: Option<usize>,
    select_by: Select,
    /// CV, when the statistics have folds and it is not skipped.
    want_cv: Option<CvMethod>,
}

/// Checks the grid and the selection options against the statistics
/// (before any work): every α finite and ≥ 0, a fixed α in the grid, CV
/// only with folds and an α > 0.
fn rule(file: &StatsFile, opts: &SweepOptions) -> Result<Rule> {
    let folds = file.header().partitions.folds;
    file.require_complete()?;
    if let Some(t) = opts.test.as_ref().filter(|t| t.noise.is_none()) {
        let layout = &file.header().layout;
        if !crate::source::Shard::open(&t.path, layout)?.has_noisy() {
            return Err(Error::MissingDataset {
                path: t.path.clone(),
                dataset: layout.noisy.clone(),
                found: " (no stored noisy array to score on; draw the test noise with \
                        --test-noise L [--test-seed S])"
                    .into(),
            });
        }
    }
    if opts.alphas.is_empty() || opts.alphas.iter().any(|a| !a.is_finite() || *a < 0.0) {
        return Err(Error::InvalidParameter {
            name: "alphas",
            problem: "every α must be finite and ≥ 0, and at least one is needed".into(),
        });
    }
    if opts.alphas.len() > MAX_ALPHAS {
        return Err(too_many_alphas(opts.alphas.len()));
    }
    let fixed_index = match (opts.select, opts.fixed_alpha) {
        (Some(Select::Fixed), Some(a)) => match opts.alphas.iter().position(|&x| x == a) {
            Some(i) => Some(i),
            None => {
                return Err(Error::InvalidParameter {
                    name: "fixed_alpha",
                    problem: format!("α = {a:e} is not in the grid"),
                })
            }
        },
        (Some(Select::Fixed), None) => {
            return Err(Error::InvalidParameter {
                name: "fixed_alpha",
                problem: "selection by a fixed α needs the α".into(),
            })
        }
        _ => None,
    };
    let select_by = match opts.select {
        Some(Select::Cv) if opts.cv == CvMethod::Skip => {
            return Err(Error::InvalidParameter {
                name: "select",
                problem: "α by CV needs CV: drop `--cv none` or use --select gcv".into(),
            })
        }
        Some(Select::Cv) if folds < 2 => {
            return Err(Error::InvalidParameter {
                name: "select",
                problem: format!(
                    "CV needs statistics accumulated with --folds ≥ 2; {} has {folds} fold: use --select gcv",
                    file.path().display()
                ),
            })
        }
        Some(s) => s,
        None if folds >= 2 && opts.cv != CvMethod::Skip => Select::Cv,
        None => Select::Gcv,
    };
    // CV is computed for α > 0 only (a fold's complement may be singular):
    // on a grid of α = 0 alone every group would fall back to GCV.
    if select_by == Select::Cv && !opts.alphas.iter().any(|&a| a > 0.0) {
        return Err(Error::InvalidParameter {
            name: "alphas",
            problem: format!(
                "α by exact K-fold CV (the rule for {}, which has {folds} folds) needs an α > 0 in the grid: \
                 CV is not computed at α = 0; add α > 0, or choose by GCV (--select gcv)",
                file.path().display()
            ),
        });
    }
    let want_cv = (folds >= 2 && opts.cv != CvMethod::Skip).then_some(opts.cv);
    Ok(Rule {
        fixed_index,
        select_by,
        want_cv,
    })
}

/// The groups of a sweep, global first, then each partition's slots, each
/// with its empty record.
fn groups_of(h: &StatsHeader) -> Vec<GroupSweep> {
    let parts = &h.partitions.partitions;
    let mut ids = vec![GroupId {
        partition: None,
        slot: 0,
    }];
    for (pi, part) in parts.iter().enumerate() {
        ids.extend((0..part.slots()).map(|slot| GroupId {
            partition: Some(pi),
            slot,
        }));
    }
    let groups: Vec<GroupSweep> = ids
        .iter()
        .map(|id| {
            let (partition, bin, name) = match id.partition {
                None => ("global".to_string(), "all".to_string(), "all".to_string()),
                Some(pi) => (
                    parts[pi].name.clone(),
                    id.slot.to_string(),
                    slot_name(h, pi, id.slot),
                ),
            };
            GroupSweep {
                id: *id,
                partition,
                bin,
                name,
                n_train: 0,
                points: vec![],
                selected: None,
                selected_by: None,
                notes: vec![],
                eigh_s: 0.0,
                cv_s: 0.0,
                cv_rows: 0,
                y_mean: f64::NAN,
                y_var: f64::NAN,
                n_test: 0,
            }
        })
        .collect();
    groups
}

/// Solves every group from its fold sums, reading the file once per
/// partition, a batch of groups at a time in the pool.
fn solve_groups(
    file: &StatsFile,
    opts: &SweepOptions,
    want_cv: Option<CvMethod>,
    pool: &Pool,
    groups: &mut [GroupSweep],
    timing: &mut Timing,
    progress: &mut impl FnMut(Progress<'_>),
) -> Result<(Vec<GroupModels>, Option<Pca>)> {
    let h = file.header();
    let ids: Vec<GroupId> = groups.iter().map(|g| g.id).collect();
    let (p, folds) = (h.pixels, h.partitions.folds);
    let mut models: Vec<Option<GroupModels>> = vec![None; ids.len()];
    let mut pca = None;
    // Partition 0's slots are solved first while their fold sums build the
    // global model's (every row is in exactly one slot of each partition),
    // so the file is read once per partition.
    let mut global_folds: Vec<SuffStats> = (0..folds).map(|_| SuffStats::zeros(p)).collect();
    let order: Vec<usize> = (1..ids.len())
        .filter(|&g| ids[g].partition == Some(0))
        .chain(std::iter::once(0))
        .chain((1..ids.len()).filter(|&g| ids[g].partition.is_some_and(|pi| pi > 0)))
        .collect();
    // Without CV each group is one single-threaded decomposition: solve as
    // many groups at a time as there are threads, up to
    // CONCURRENT_GROUPS. With `--cv auto` too: a group's folds are cheaper
    // than its decomposition, so two groups at once keep the cores busy
    // where one group's last solves would leave a core idle. (With eigh or
    // pcg, a group's own and its folds' solves already run concurrently.)
    // Each group's numbers do not depend on this: the same calls, each
    // sequential, either way.
    let batch = if matches!(want_cv, None | Some(CvMethod::Auto)) {
        pool.threads().get().min(CONCURRENT_GROUPS)
    } else {
        1
    };
    let mut step = 0;
    for chunk in order.chunks(batch) {
        let mut work: Vec<(usize, Vec<SuffStats>, GroupSweep, Option<Pca>)> = Vec::new();
        for &g in chunk {
            opts.cancel.check()?;
            let label = format!("{} {}", groups[g].partition, groups[g].name);
            progress(Progress::Group {
                index: step,
                total: order.len(),
                label: &label,
            });
            step += 1;
            let t = Instant::now();
            let fs = match ids[g].partition {
                None => std::mem::take(&mut global_folds),
                Some(pi) => {
                    let fs = fold_sums(
                        file,
                        Group::Bin {
                            partition: pi,
                            slot: ids[g].slot,
                        },
                    )?;
                    if pi == 0 {
                        for (acc, f) in global_folds.iter_mut().zip(&fs) {
                            acc.add(f)?;
                        }
                    }
                    fs
                }
            };
            timing.read_s += t.elapsed().as_secs_f64();
            work.push((g, fs, groups[g].clone(), None));
        }
        let t = Instant::now();
        let solved: Vec<Result<GroupModels>> = pool.run(|| {
            use rayon::prelude::*;
            work.par_iter_mut()
                .with_max_len(1)
                .map(|(g, fs, gs, pca_slot)| {
                    let keep = (ids[*g].partition.is_none() && opts.pca_components > 0)
                        .then_some((opts.pca_components, pca_slot));
                    solve_group(h, fs, &opts.alphas, want_cv, pool.par(), gs, keep)
                })
                .collect()
        });
        let elapsed = t.elapsed().as_secs_f64();
        let mut inner = 0.0;
        for ((g, _, gs, pca_slot), m) in work.into_iter().zip(solved) {
            let m = m?;
            timing.eigh_s += gs.eigh_s;
            timing.cv_s += gs.cv_s;
            inner += gs.eigh_s + gs.cv_s;
            if pca_slot.is_some() {
                pca = pca_slot;
            }
            groups[g] = gs;
            models[g] = Some(m);
        }
        timing.path_s += (elapsed - inner).max(0.0);
    }
    let models: Vec<GroupModels> = models
        .into_iter()
        .map(|m| m.expect("every group solved"))
        .collect();
    Ok((models, pca))
}

/// Each group's α: the fixed one, or the best point by the rule (GCV for a
/// group without CV; see its notes).
fn select_alphas(groups: &mut [GroupSweep], rule: &Rule) {
    for g in groups {
        let by = if rule.select_by == Select::Cv && g.points.iter().all(|p| p.cv_mse.is_none()) {
            Select::Gcv
        } else {
            rule.select_by
        };
        g.selected = match rule.fixed_index {
            Some(i) => g.points[i].train_r2.is_finite().then_some(i),
            None => select(&g.points, by),
        };
        g.selected_by = g.selected.map(|_| by);
    }
}

/// Runs the sweep over the statistics in `file` (see the module docs).
pub fn run(
    file: &StatsFile,
    opts: &SweepOptions,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<Sweep> {
    let start = Instant::now();
    let rule = rule(file, opts)?;
    let pool = Pool::new(opts.threads)?;
    let h = file.header();
    let mut groups = groups_of(h);
    let mut timing = Timing::default();
    let (models, pca) = solve_groups(
        file,
        opts,
        rule.want_cv,
        &pool,
        &mut groups,
        &mut timing,
        &mut progress,
    )?;
    let mut test = None;
    if let Some(spec) = &opts.test {
        let t = Instant::now();
        let summary = test_eval::score(
            spec,
            h,
            &models,
            opts.alphas.len(),
            &pool,
            &mut groups,
            &opts.cancel,
            &mut progress,
        )?;
        timing.test_s = t.elapsed().as_secs_f64();
        test = Some(summary);
    }
    select_alphas(&mut groups, &rule);
    timing.total_s = start.elapsed().as_secs_f64();
    Ok(Sweep {
        alphas: opts.alphas.clone(),
        select: rule.select_by,
        folds: h.partitions.folds,
        pixels: h.pixels,
        train_rows: h.rows,
        precision: h.precision,
        groups,
        test,
        timing,
        models,
        pca,
    })
}

impl Sweep {
    /// The selected expert of every group as a [`ModelSet`] for `models.h5`
    /// and `predict`. A group without a selected α (too few rows) has no
    /// expert; the global model must have one.
    pub(crate) fn model_set(&self, header: &StatsHeader, statistics: &str) -> Result<ModelSet> {
        let expert = |g: usize| -> Option<Expert> {
            let grp = &self.groups[g];
            let a = grp.selected?;
            Some(Expert {
                coefficients: self.models[g].coefficients(self.alphas[a], a),
                n_train: grp.n_train,
                selected_by: grp.selected_by?.as_str().to_string(),
            })
        };
        let global = expert(0).ok_or_else(|| crate::FitError::Missing {
            group: "global",
            reason: self.groups[0].notes.join("; "),
        })?;
        let partitions = header
            .partitions
            .partitions
            .iter()
            .enumerate()
            .map(|(pi, part)| PartitionModels {
                partition: part.clone(),
                experts: (0..part.slots())
                    .map(|slot| {
                        self.groups
                            .iter()
                            .position(|g| {
                                g.id == GroupId {
                                    partition: Some(pi),
                                    slot,
                                }
                            })
                            .and_then(expert)
                    })
                    .collect(),
            })
            .collect();
        Ok(ModelSet {
            pixels: header.pixels,
            layout: header.layout.clone(),
            noise_level: header.noise.level,
            seed: header.noise.seed,
            global,
            partitions,
            provenance: Provenance::new(
                statistics,
                header.rows,
                header.shards.clone(),
                format!(
                    "gramstream sweep{}: α per group by {} over {} values from {:e} to {:e}",
                    match self.precision {
                        crate::stats::Precision::F64 => "",
                        crate::stats::Precision::Mixed =>
                            " (statistics of mixed-precision products)",
                    },
                    self.select.describe(),
                    self.alphas.len(),
                    self.alphas.iter().cloned().fold(f64::INFINITY, f64::min),
                    self.alphas.iter().cloned().fold(0.0, f64::max),
                ),
            ),
            gate: None,
            bin_experts: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_lists_parse() {
        let g = parse_alphas("1e-2:1e6:9").unwrap();
        assert_eq!(g.len(), 9);
        assert!((g[0] - 1e-2).abs() < 1e-15 && (g[8] - 1e6).abs() < 1e-6);
        assert!((g[1] - 1e-1).abs() < 1e-15);
        assert_eq!(parse_alphas("0, 1,10").unwrap(), vec![0.0, 1.0, 10.0]);
        for bad in ["", "1:2", "a:2:3", "1,-1", "1,nan", "0:1:3", "5:1:3"] {
            assert!(parse_alphas(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn alpha_grid_too_large_is_refused() {
        assert_eq!(parse_alphas("1:1e6:1000").unwrap().len(), MAX_ALPHAS);
        let list = vec!["1"; MAX_ALPHAS + 1].join(",");
        for spec in ["1:1e6:100000000", "1:1e6:1001", list.as_str()] {
            let e = parse_alphas(spec).unwrap_err().to_string();
            assert!(e.contains("at most 1000"), "{e}");
        }
    }

    #[test]
    fn selection_prefers_the_smallest_criterion_then_the_larger_alpha() {
        let pt = |alpha, gcv, cv| AlphaPoint {
            alpha,
            train_r2: 0.0,
            dof: 0.0,
            gcv,
            cv_mse: cv,
            test: None,
        };
        let pts = [
            pt(1.0, 3.0, Some(2.0)),
            pt(10.0, 1.0, Some(1.5)),
            pt(100.0, 2.0, Some(1.5)),
            pt(1000.0, f64::NAN, None),
        ];
        assert_eq!(select(&pts, Select::Gcv), Some(1));
        assert_eq!(select(&pts, Select::Cv), Some(2));
        assert_eq!(select(&pts[3..], Select::Cv), None);
    }
}

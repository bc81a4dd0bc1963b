//! The experiment configuration file (TOML), documented in the README.
//!
//! ```toml
//! name = "oracle-teff-mh-noise1"           # required; names the output directory
//! description = "Oracle MoE at noise 1"    # optional, printed in the report
//!
//! [data]                                   # paths relative to this file
//! train = ["data/train_0/dataset.h5", "data/train_1/dataset.h5"]
//! test = "data/test/dataset.h5"
//! test_spectra = "draw"                    # draw (flux + noise per run) | stored
//!
//! [noise]
//! levels = [1.0]                           # one run per level and seed
//! seeds = [42, 123, 456, 789, 2024]
//!
//! [stats]
//! partitions = ["teff_mh", "snr"]
//! folds = 5                                # 1: no CV
//! mem_budget = "8GiB"                      # default: 80 % of available memory
//! threads = 0                              # 0: all cores
//! keep = false                             # keep each run's statistics file
//!
//! [ridge]
//! alphas = "1:1e6:25"                      # LO:HI:N log-spaced, or a list [1e3, 1e5]
//! select = "cv"                            # cv | gcv | fixed
//! alpha = 1e5                              # the fixed α (select = "fixed")
//!
//! [gate]
//! enabled = true                           # needs the teff_mh partition
//! sample = 20000                           # reservoir rows kept by the pass
//! c = 1.0                                  # inverse L2 strength (scikit-learn's C)
//!
//! [output]
//! dir = "results/oracle-teff-mh-noise1"    # default: results/<name>
//! plots = true
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::partition::{Partition, PartitionKind};
use crate::sweep::Select;
use crate::{Error, Result, Threads};

/// An experiment: data, noise, statistics, Ridge, gate, outputs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Short name (letters, digits, `-`, `_`, `.`): names the default output directory.
    pub name: String,
    /// Free text for the report.
    #[serde(default)]
    pub description: String,
    /// Training and test shards.
    pub data: DataConfig,
    /// Noise levels and seeds: one run per (level, seed).
    #[serde(default)]
    pub noise: NoiseConfig,
    /// The pass.
    #[serde(default)]
    pub stats: StatsConfig,
    /// α grid and selection.
    #[serde(default)]
    pub ridge: RidgeConfig,
    /// The learned gate.
    #[serde(default)]
    pub gate: GateConfig,
    /// Per-bin expert kinds beyond Ridge (issue 13).
    #[serde(default)]
    pub experts: ExpertsConfig,
    /// Where results go.
    #[serde(default)]
    pub output: OutputConfig,
}

/// `[data]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Training shards, in order (the position is the shard index of the
    /// noise and fold streams). Not read when `stats` is given.
    #[serde(default)]
    pub train: Vec<PathBuf>,
    /// A statistics file to solve from instead of running the pass (e.g. the
    /// `merge` of parts accumulated where the shards were): one noise level
    /// and one seed, the file's; the experiment checks that its noise,
    /// partitions, folds and gate sample are the config's.
    #[serde(default)]
    pub stats: Option<PathBuf>,
    /// The test shard.
    pub test: PathBuf,
    /// Test spectra: `draw` (flux + noise at each run's level and seed, on
    /// noise streams distinct from the training shards') or `stored` (the
    /// shard's `noisy` array, whatever level it was made with).
    #[serde(default)]
    pub test_spectra: TestSpectra,
}

/// Where the noisy test spectra come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestSpectra {
    /// Flux + noise drawn at the run's level and seed.
    #[default]
    Draw,
    /// The stored `noisy` array.
    Stored,
}

/// `[noise]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseConfig {
    /// Noise levels L (`noisy = max(flux + L·error·z, 0)`).
    #[serde(default = "default_levels")]
    pub levels: Vec<f64>,
    /// Seeds of the noise (training and test), folds and gate sample.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
}

fn default_levels() -> Vec<f64> {
    vec![1.0]
}
fn default_seeds() -> Vec<u64> {
    vec![42]
}

impl Default for NoiseConfig {
    fn default() -> Self {
        NoiseConfig {
            levels: default_levels(),
            seeds: default_seeds(),
        }
    }
}

/// `[stats]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsConfig {
    /// Partitions by name: `teff_mh`, `snr`.
    #[serde(default = "default_partitions")]
    pub partitions: Vec<String>,
    /// Folds for exact K-fold CV (1: none).
    #[serde(default = "default_folds")]
    pub folds: usize,
    /// Peak-memory budget of the pass, e.g. `8GiB`.
    #[serde(default)]
    pub mem_budget: Option<String>,
    /// Threads (0: all cores).
    #[serde(default)]
    pub threads: Threads,
    /// Rows per chunk read (default: from the budget).
    #[serde(default)]
    pub chunk_rows: Option<usize>,
    /// Keep each run's statistics file in its run directory.
    #[serde(default)]
    pub keep: bool,
    /// Under MPI: rows per fixed range of the pass
    /// ([`crate::stats::ranges`]; default 65536). Ignored by one process.
    #[serde(default)]
    pub range_rows: Option<usize>,
    /// How the pass forms each block's Gram product: `"f64"` (default) or
    /// `"mixed"` (f32 products into f64 sums; README "Mixed precision").
    #[serde(default)]
    pub precision: crate::stats::Precision,
}

fn default_partitions() -> Vec<String> {
    vec!["teff_mh".into(), "snr".into()]
}
fn default_folds() -> usize {
    5
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            partitions: default_partitions(),
            folds: default_folds(),
            mem_budget: None,
            threads: Threads::All,
            chunk_rows: None,
            keep: false,
            range_rows: None,
            precision: Default::default(),
        }
    }
}

/// An α grid: `LO:HI:N` or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Alphas {
    /// `LO:HI:N` (log-spaced, inclusive) or `a, b, c`.
    Spec(String),
    /// Explicit values.
    List(Vec<f64>),
}

/// `[ridge]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RidgeConfig {
    /// The α grid every curve is computed on.
    #[serde(default = "default_alphas")]
    pub alphas: Alphas,
    /// `cv`, `gcv` or `fixed`.
    #[serde(default = "default_select")]
    pub select: String,
    /// The fixed α (with `select = "fixed"`; added to the grid).
    #[serde(default)]
    pub alpha: Option<f64>,
}

fn default_alphas() -> Alphas {
    Alphas::Spec("1:1e6:25".into())
}
fn default_select() -> String {
    "cv".into()
}

impl Default for RidgeConfig {
    fn default() -> Self {
        RidgeConfig {
            alphas: default_alphas(),
            select: default_select(),
            alpha: None,
        }
    }
}

/// `[gate]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// Train the gate (needs the `teff_mh` partition).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Reservoir rows the pass keeps to train it.
    #[serde(default = "default_sample")]
    pub sample: usize,
    /// Inverse L2 regularisation (scikit-learn's `C`).
    #[serde(default = "default_c")]
    pub c: f64,
}

fn yes() -> bool {
    true
}
fn default_sample() -> usize {
    20_000
}
fn default_c() -> f64 {
    1.0
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            enabled: true,
            sample: default_sample(),
            c: default_c(),
        }
    }
}

/// `[experts]`: which kinds of expert each bin of one partition may use
/// (DESIGN §11). Ridge is always fitted; a kind that needs rows (LightGBM)
/// makes the pass keep each bin's rows, coded, up to a cap, and the
/// oracle-hybrid uses per bin the kind with the smaller validation MSE.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpertsConfig {
    /// The kinds compared: `"ridge"` (always listed) and `"lightgbm"`.
    #[serde(default = "default_kinds")]
    pub kinds: Vec<crate::experts::ExpertKind>,
    /// The partition whose bins get their own choice (default `teff_mh`).
    #[serde(default = "default_expert_partition")]
    pub partition: String,
    /// Rows kept per bin for the tree experts at most (default: as many as
    /// the memory budget leaves; the planner says how many).
    #[serde(default)]
    pub rows_per_bin: Option<usize>,
    /// Rows sampled before the pass for the code boundaries.
    #[serde(default = "default_boundary_rows")]
    pub boundary_rows: usize,
    /// The fold held out to choose each bin's kind (needs `[stats] folds ≥ 2`).
    #[serde(default)]
    pub validation_fold: usize,
    /// LightGBM's parameters (seed 002's by default).
    #[serde(default)]
    pub lightgbm: crate::experts::lightgbm::LightGbmParams,
}

fn default_kinds() -> Vec<crate::experts::ExpertKind> {
    vec![crate::experts::ExpertKind::Ridge]
}
fn default_expert_partition() -> String {
    "teff_mh".into()
}
fn default_boundary_rows() -> usize {
    4096
}

impl Default for ExpertsConfig {
    fn default() -> Self {
        ExpertsConfig {
            kinds: default_kinds(),
            partition: default_expert_partition(),
            rows_per_bin: None,
            boundary_rows: default_boundary_rows(),
            validation_fold: 0,
            lightgbm: Default::default(),
        }
    }
}

/// The tree experts of a plan: what the pass keeps and how each bin chooses.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpertsPlan {
    /// Position of the partition in [`Plan::partitions`].
    pub partition: usize,
    /// The kinds compared (Ridge first).
    pub kinds: Vec<crate::experts::ExpertKind>,
    /// What the pass keeps.
    pub feed: crate::experts::feed::ExpertFeed,
    /// The validation fold.
    pub validation_fold: usize,
    /// LightGBM's parameters (checked).
    pub lightgbm: crate::experts::lightgbm::LightGbmParams,
}

/// `[output]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Output directory (relative to the config file); default `results/<name>`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Draw the PNG plots.
    #[serde(default = "yes")]
    pub plots: bool,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            dir: None,
            plots: true,
        }
    }
}

/// A configuration checked and made concrete: paths resolved, grid parsed.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The configuration as read.
    pub config: Config,
    /// Where it was read from (None: built in code).
    pub source: Option<PathBuf>,
    /// Training shards, resolved.
    pub train: Vec<PathBuf>,
    /// Test shard, resolved.
    pub test: PathBuf,
    /// The statistics to solve from instead of a pass, resolved.
    pub stats: Option<PathBuf>,
    /// Partitions.
    pub partitions: Vec<Partition>,
    /// α grid (includes the fixed α).
    pub alphas: Vec<f64>,
    /// Selection rule.
    pub select: Select,
    /// Memory budget in bytes.
    pub mem_budget: Option<u64>,
    /// Output directory, resolved.
    pub out: PathBuf,
    /// Index of the gate's partition (None: no gate).
    pub gate_partition: Option<usize>,
    /// Tree experts per bin (None: Ridge only).
    pub experts: Option<ExpertsPlan>,
    /// Stops the run at its next step when cancelled (a fresh token from
    /// [`Config::plan`]; replace it to hold a clone).
    pub cancel: crate::threads::Cancel,
}

/// A check's result: the problem, without the file's name, when it fails.
type Checked<T> = std::result::Result<T, String>;

fn invalid(file: Option<&Path>, problem: String) -> Error {
    Error::Config {
        file: file.map(Path::to_path_buf),
        line: None,
        problem,
    }
}

impl Config {
    /// Reads a TOML file. Errors name the file, and the line and key for
    /// syntax and unknown-key errors.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Config::parse(&text).map_err(|e| match e {
            Error::Config { line, problem, .. } => Error::Config {
                file: Some(path.to_path_buf()),
                line,
                problem,
            },
            other => other,
        })
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Config> {
        toml::from_str(text).map_err(|e: toml::de::Error| {
            let line = e
                .span()
                .map(|sp| text[..sp.start.min(text.len())].matches('\n').count() + 1);
            Error::Config {
                file: None,
                line,
                problem: e.message().trim().replace('\n', " "),
            }
        })
    }

    /// Checks the configuration and resolves relative paths against `base`
    /// (the config file's directory). `out` overrides `[output] dir`.
    pub fn plan(self, source: Option<&Path>, base: &Path, out: Option<&Path>) -> Result<Plan> {
        let bad = |problem: String| invalid(source, problem);
        self.check_name().map_err(bad)?;
        if self.data.train.is_empty() && self.data.stats.is_none() {
            return Err(bad("[data] train: no training shard".into()));
        }
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let train: Vec<PathBuf> = self.data.train.iter().map(|p| resolve(p)).collect();
        let test = resolve(&self.data.test);
        let stats = self.data.stats.as_deref().map(resolve);
        // What the experiment reads: the statistics in place of the shards.
        let read: Vec<&PathBuf> = match &stats {
            Some(s) => vec![s, &test],
            None => train.iter().chain(std::iter::once(&test)).collect(),
        };
        for p in read {
            if !p.exists() {
                return Err(bad(format!("{}: no such file", p.display())));
            }
        }
        self.check_noise().map_err(bad)?;
        if stats.is_some() && (self.noise.levels.len() > 1 || self.noise.seeds.len() > 1) {
            return Err(bad(
                "[data] stats holds one noise level and seed: give one of each in [noise]".into(),
            ));
        }
        let partitions = self.partitions().map_err(bad)?;
        if self.stats.folds == 0 {
            return Err(bad("[stats] folds must be ≥ 1".into()));
        }
        let mem_budget = match &self.stats.mem_budget {
            None => None,
            Some(s) => Some(parse_size(s).map_err(|e| bad(format!("[stats] mem_budget: {e}")))?),
        };
        let (alphas, select) = self.alpha_grid().map_err(bad)?;
        let gate_partition = self.gate_partition(&partitions).map_err(bad)?;
        let experts = self
            .experts_plan(&partitions, stats.is_some())
            .map_err(bad)?;
        let out = match out {
            Some(o) => o.to_path_buf(),
            None => match &self.output.dir {
                Some(d) => resolve(d),
                None => base.join("results").join(&self.name),
            },
        };
        Ok(Plan {
            source: source.map(Path::to_path_buf),
            train,
            test,
            stats,
            partitions,
            alphas,
            select,
            mem_budget,
            out,
            gate_partition,
            experts,
            cancel: Default::default(),
            config: self,
        })
    }

    // The checks of `plan`, in the order it makes them: each returns the
    // problem, which `plan` prefixes with the file's name.

    /// The name becomes a directory name: it must be one path component.
    fn check_name(&self) -> Checked<()> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "name {:?}: use letters, digits, '-', '_' and '.'",
                self.name
            ));
        }
        Ok(())
    }

    /// Levels and seeds: at least one of each, each valid and listed once
    /// (a repeat would be a run overwriting another's directory), and one
    /// run only when the test spectra are the stored draw.
    fn check_noise(&self) -> Checked<()> {
        if self.noise.levels.is_empty() || self.noise.seeds.is_empty() {
            return Err("[noise] needs at least one level and one seed".into());
        }
        for &l in &self.noise.levels {
            crate::noise::NoiseModel::new(l, 0).map_err(|e| format!("[noise] levels: {e}"))?;
        }
        for (i, s) in self.noise.seeds.iter().enumerate() {
            if self.noise.seeds[..i].contains(s) {
                return Err(format!("[noise] seed {s} is listed twice"));
            }
        }
        for (i, l) in self.noise.levels.iter().enumerate() {
            if self.noise.levels[..i].contains(l) {
                return Err(format!("[noise] level {l} is listed twice"));
            }
        }
        if self.data.test_spectra == TestSpectra::Stored
            && (self.noise.levels.len() > 1 || self.noise.seeds.len() > 1)
        {
            return Err(
                "[data] test_spectra = \"stored\" holds one noise draw: use \"draw\" with several levels or seeds"
                    .into(),
            );
        }
        Ok(())
    }

    /// `[stats] partitions`, known and distinct, in the configured order.
    fn partitions(&self) -> Checked<Vec<Partition>> {
        if self.stats.partitions.is_empty() {
            return Err(
                "[stats] partitions = []: name at least one of \"teff_mh\", \"snr\" (the global model is always fitted), or drop the key for both"
                    .into(),
            );
        }
        let mut partitions = Vec::new();
        for name in &self.stats.partitions {
            let p = Partition::by_name(name).map_err(|e| format!("[stats] partitions: {e}"))?;
            if partitions.iter().any(|q: &Partition| q.name == p.name) {
                return Err(format!("[stats] partition {name:?} is listed twice"));
            }
            partitions.push(p);
        }
        Ok(partitions)
    }

    /// The α grid (with the fixed α inserted) and the selection rule, which
    /// must be computable: a fixed α only with `fixed`, and CV only with
    /// folds and an α > 0.
    fn alpha_grid(&self) -> Checked<(Vec<f64>, Select)> {
        let mut alphas = match &self.ridge.alphas {
            Alphas::Spec(s) => crate::sweep::parse_alphas(s),
            Alphas::List(v) => crate::sweep::parse_alphas(
                &v.iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        }
        .map_err(|e| format!("[ridge] alphas: {e}"))?;
        let select: Select = self
            .ridge
            .select
            .parse()
            .map_err(|e: String| format!("[ridge] select: {e}"))?;
        match (select, self.ridge.alpha) {
            (Select::Fixed, Some(a)) => crate::sweep::insert_alpha(&mut alphas, a)
                .map_err(|e| format!("[ridge] alpha: {e}"))?,
            (Select::Fixed, None) => {
                return Err("[ridge] select = \"fixed\" needs alpha = …".into())
            }
            (_, Some(_)) => {
                return Err(
                    "[ridge] alpha is the fixed α: set select = \"fixed\" or drop it".into(),
                )
            }
            (Select::Cv, None) if self.stats.folds < 2 => {
                return Err(
                    "[ridge] select = \"cv\" needs [stats] folds ≥ 2 (or use \"gcv\" or \"fixed\")"
                        .into(),
                )
            }
            (Select::Cv, None) if !alphas.iter().any(|&a| a > 0.0) => {
                return Err(
                    "[ridge] select = \"cv\" needs an α > 0 in alphas: CV is not computed at α = 0 (or use \"gcv\")"
                        .into(),
                )
            }
            _ => {}
        }
        Ok((alphas, select))
    }

    /// The index of the T_eff × [M/H] partition the gate routes to (None
    /// when the gate is off), and a reservoir and C it can be trained with.
    fn gate_partition(&self, partitions: &[Partition]) -> Checked<Option<usize>> {
        if !self.gate.enabled {
            return Ok(None);
        }
        let i = partitions
            .iter()
            .position(|p| matches!(p.kind, PartitionKind::TeffMh { .. }))
            .ok_or_else(|| {
                "[gate] routes by T_eff × [M/H]: add \"teff_mh\" to [stats] partitions or set enabled = false".to_string()
            })?;
        if self.gate.sample < 10 {
            return Err(format!(
                "[gate] sample = {}: the gate needs a reservoir of at least 10 rows",
                self.gate.sample
            ));
        }
        if !(self.gate.c.is_finite() && self.gate.c > 0.0) {
            return Err(format!("[gate] c = {} must be > 0", self.gate.c));
        }
        Ok(Some(i))
    }
}

impl Config {
    /// `[experts]`: None for Ridge alone; else the partition, the pass's
    /// feed and LightGBM's checked parameters. Tree experts need the rows
    /// (a pass, not `[data] stats`), a validation fold, and LightGBM in
    /// the build.
    fn experts_plan(
        &self,
        partitions: &[Partition],
        given_stats: bool,
    ) -> Checked<Option<ExpertsPlan>> {
        use crate::experts::ExpertKind;
        let e = &self.experts;
        if !e.kinds.contains(&ExpertKind::Ridge) {
            return Err("[experts] kinds: list \"ridge\" (Ridge experts are always fitted; the others are compared with them)".into());
        }
        for (i, k) in e.kinds.iter().enumerate() {
            if e.kinds[..i].contains(k) {
                return Err(format!("[experts] kinds: {k:?} is listed twice"));
            }
        }
        if !e.kinds.iter().any(|k| k.needs_rows()) {
            return Ok(None);
        }
        if e.kinds.contains(&ExpertKind::LightGbm) && !crate::experts::lightgbm::AVAILABLE {
            return Err(format!(
                "[experts] kinds = \"lightgbm\": {}",
                crate::experts::lightgbm::NOT_BUILT
            ));
        }
        if given_stats {
            return Err("[experts] tree experts are trained on the rows of a pass: drop [data] stats and give [data] train".into());
        }
        let partition = partitions
            .iter()
            .position(|p| p.name == e.partition)
            .ok_or_else(|| {
                format!(
                    "[experts] partition {:?} is not in [stats] partitions",
                    e.partition
                )
            })?;
        if self.stats.folds < 2 {
            return Err("[experts] choosing each bin's expert needs a validation fold: set [stats] folds ≥ 2".into());
        }
        if e.validation_fold >= self.stats.folds {
            return Err(format!(
                "[experts] validation_fold = {}: the folds are 0 … {}",
                e.validation_fold,
                self.stats.folds - 1
            ));
        }
        if e.boundary_rows < 2 {
            return Err(format!(
                "[experts] boundary_rows = {}: at least 2",
                e.boundary_rows
            ));
        }
        if e.rows_per_bin == Some(0) {
            return Err(
                "[experts] rows_per_bin = 0: at least 1 (or drop it: as many as the budget leaves)"
                    .into(),
            );
        }
        e.lightgbm
            .check()
            .map_err(|err| format!("[experts.lightgbm] {err}"))?;
        Ok(Some(ExpertsPlan {
            partition,
            kinds: e.kinds.clone(),
            feed: crate::experts::feed::ExpertFeed {
                partition,
                rows_per_bin: e.rows_per_bin,
                boundary_rows: e.boundary_rows,
            },
            validation_fold: e.validation_fold,
            lightgbm: e.lightgbm.clone(),
        }))
    }
}

/// The largest size [`parse_size`] accepts: 1 EiB.
pub const MAX_SIZE: u64 = 1 << 60;

/// Parses `6GiB`, `6G`, `800MiB`, `800M`, `1.5GB`, or bytes (at most [`MAX_SIZE`]).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 6GiB, 800MiB)"))?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "m" | "mib" => 1024.0 * 1024.0,
        "mb" => 1e6,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "gb" => 1e9,
        "t" | "tib" => 1024f64.powi(4),
        "tb" => 1e12,
        other => return Err(format!("unknown size unit {other:?} in {s:?}")),
    };
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("{s:?} must be positive"));
    }
    // The planner's sums stay far from u64::MAX (see Reservoir::max_bytes).
    if v * mult > MAX_SIZE as f64 {
        return Err(format!("{s:?} is more than 1 EiB"));
    }
    Ok((v * mult) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_keys() {
        let c =
            Config::parse("name = \"x\"\n[data]\ntrain = [\"a.h5\"]\ntest = \"t.h5\"\n").unwrap();
        assert_eq!(c.noise.seeds, vec![42]);
        assert_eq!(c.stats.folds, 5);
        assert!(c.gate.enabled);
        let e =
            Config::parse("name = \"x\"\n[data]\ntrain = []\ntest = \"t\"\n[ridge]\nalpah = 3\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("alpah"), "{e}");
    }

    #[test]
    fn config_errors_carry_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "name = \"x\"\n\n[data]\ntrian = []\n").unwrap();
        match Config::load(&path) {
            Err(Error::Config {
                file: Some(f),
                line: Some(4),
                problem,
            }) => assert!(f == path && problem.contains("trian"), "{problem}"),
            other => panic!("{other:?}"),
        }
        let plan = Config::parse("name = \"x\"\n[data]\ntrain = []\ntest = \"t\"\n")
            .unwrap()
            .plan(Some(&path), dir.path(), None);
        match plan {
            Err(Error::Config {
                file: Some(f),
                line: None,
                problem,
            }) => assert!(
                f == path && problem.starts_with("[data] train"),
                "{problem}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plan_checks_what_the_run_needs() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a.h5", "t.h5"] {
            std::fs::write(dir.path().join(f), b"").unwrap();
        }
        let base = "name = \"x\"\n[data]\ntrain = [\"a.h5\"]\ntest = \"t.h5\"\n";
        let plan = |extra: &str| {
            Config::parse(&format!("{base}{extra}"))
                .unwrap()
                .plan(None, dir.path(), None)
        };
        let p = plan("").unwrap();
        assert_eq!(p.train, vec![dir.path().join("a.h5")]);
        assert_eq!(p.out, dir.path().join("results/x"));
        assert_eq!(p.alphas.len(), 25);
        assert_eq!(p.gate_partition, Some(0));
        let p = plan("[ridge]\nselect = \"fixed\"\nalpha = 12345.0\n[stats]\nfolds = 1\n").unwrap();
        assert!(p.alphas.contains(&12345.0));
        for (extra, want) in [
            ("[ridge]\nselect = \"fixed\"\n", "needs alpha"),
            ("[stats]\nfolds = 1\n", "folds ≥ 2"),
            ("[stats]\npartitions = [\"snr\"]\n", "teff_mh"),
            ("[noise]\nseeds = [1, 1]\n", "twice"),
            ("[stats]\nmem_budget = \"lots\"\n", "mem_budget"),
            ("[ridge]\nalphas = [1.0, -2.0]\n", "alphas"),
        ] {
            let e = plan(extra).unwrap_err().to_string();
            assert!(e.contains(want), "{extra}: {e}");
        }
        let e = Config::parse("name = \"x\"\n[data]\ntrain = [\"missing.h5\"]\ntest = \"t.h5\"\n")
            .unwrap()
            .plan(None, dir.path(), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing.h5") && e.contains("no such file"),
            "{e}"
        );
    }
}

//! Saved Ridge experts: the [`ModelSet`] and its HDF5 file, `models.h5`.
//!
//! A model set is what `sweep`/`experiment` leave behind for `predict`: one
//! global expert and, per partition, one expert per slot (its bins, plus the
//! unbinned slot when the partition has one); a slot whose bin had too few
//! rows has no expert (`None`). Each expert is a
//! [`crate::ridge::Coefficients`] (α, w, intercept) with the
//! rows it was fitted on and how α was chosen. The set also records what the
//! experts were fitted on: pixels, the layout of the shards, the noise model
//! of the statistics (SNR routing uses its level) and the provenance.
//!
//! The file follows the statistics file's habits ([`crate::stats::file`]):
//! written to `<path>.tmp` and renamed at the end (a failed write never
//! leaves a complete-looking file), 1.10 object formats (checksummed object
//! headers, so attributes are checked), every numeric or string dataset
//! chunked with Fletcher32, strings fixed-length UTF-8.
//! [`ModelSet::open`] validates the schema, every type, shape and checksum
//! filter, that the weights are finite, and that the expert table matches the
//! partitions; every error names the file and the object.
//!
//! # Format (version [`FORMAT_VERSION`])
//!
//! E = experts stored (the global one first, then each partition's present
//! experts in slot order), P = pixels.
//!
//! | object | type, shape | content |
//! |---|---|---|
//! | `/` attr `format` | string | `"gramstream.models"` |
//! | `/` attr `format_version` | u32 | [`FORMAT_VERSION`]; a larger one is refused |
//! | `/` attr `pixels`, `experts` | u64 | P, E |
//! | `/` attr `noise_level`, `seed` | f64, u64 | noise model of the statistics the experts were fitted on |
//! | `/` attr `layout` | string | the shards' [`Layout`] as JSON |
//! | `/` attr `partitions` | string | the partitions (`[Partition]`) as JSON |
//! | `/` attr `provenance` | string | [`Provenance`] as JSON (statistics file, rows, shard fingerprints, version, note) |
//! | `/experts/partition` | i64 (E,) | partition index, −1 for the global expert |
//! | `/experts/slot` | u64 (E,) | bin id, or the partition's bin count for its unbinned slot (0 for global) |
//! | `/experts/alpha`, `intercept` | f64 (E,) | α, intercept |
//! | `/experts/n_train` | u64 (E,) | training rows |
//! | `/experts/selected_by` | string (E,) | how α was chosen (`cv`, `gcv`, `fixed`, …) |
//! | `/experts/w` | f64 (E, P) | weights; chunks (1, P) |
//! | `/gate` attr `partition` | u64 | optional group (a learned gate): index of the partition it routes to |
//! | `/gate/wave`, `pca_mean` | f64 (P,) | wavelength grid (Å), PCA mean |
//! | `/gate/pca_components` | f64 (10, P) | the leading components, largest first |
//! | `/gate/feature_mean`, `feature_scale` | f64 (37,) | standardisation of the 37 features |
//! | `/gate/present` | u64 (K′,) | classes (bins) seen in training |
//! | `/gate/theta` | f64 (K′, 38) | per present class: weights on the standardised features, then the intercept |
//! | `/bin_experts` attr `partition` | u64 | optional group (issue 13, version 2): index of the partition whose bins chose an expert kind |
//! | `/bin_experts/chosen` | string (B,) | per bin, the kind the oracle-hybrid uses: `ridge` or `lightgbm` |
//! | `/bin_experts/lightgbm/<b>/model` | u8 (bytes,) | bin `b`'s LightGBM model text (UTF-8), when one was trained |
//! | `/bin_experts/lightgbm/<b>/bound_counts` | u8 (P,) | its [`PixelBins`](crate::experts::binning::PixelBins): boundaries per pixel |
//! | `/bin_experts/lightgbm/<b>/bounds` | f64 (Σ counts,) | the boundaries, pixel after pixel |
//!
//! A file with `/bin_experts` is written as version 2, so that a gramstream
//! that knows nothing of them refuses it instead of predicting with Ridge
//! alone; a file without is written as version 1, as before, byte for byte.
//! The LightGBM models are readable without the `lightgbm` feature (a
//! models file can be checked and listed anywhere); predicting with them
//! needs it ([`crate::route::LoadedExperts`]).
//!
//! In Python: `w = f["experts/w"][e]; y = f["experts/intercept"][e] + x @ w`.
//!
//! # Building a model set from statistics
//!
//! ```no_run
//! use gramstream::models::{write_models, Expert, ModelSet, PartitionModels, Provenance};
//! use gramstream::ridge::RidgePath;
//! use gramstream::stats::derive::{members, sum, Group};
//! use gramstream::stats::StatsFile;
//!
//! # fn main() -> gramstream::Result<()> {
//! let file = StatsFile::open("stats.h5".as_ref())?;
//! let h = file.header().clone();
//! let par = faer::Par::Seq;
//! let fit = |group: Group| -> gramstream::Result<Option<Expert>> {
//!     let stats = sum(h.pixels, &members(&h, group, None)?, |a| file.accumulator(a))?;
//!     if stats.n < 10 {
//!         return Ok(None); // too few rows: no expert, reported
//!     }
//!     let path = RidgePath::new(&stats, &h.shift_x, h.shift_y, par)?;
//!     Ok(Some(Expert {
//!         coefficients: path.coefficients(1e3)?,
//!         n_train: stats.n,
//!         selected_by: "fixed".into(),
//!     }))
//! };
//! let global = fit(Group::Global)?.expect("rows");
//! let partitions = h
//!     .partitions
//!     .partitions
//!     .iter()
//!     .enumerate()
//!     .map(|(i, p)| {
//!         let experts = (0..p.slots())
//!             .map(|slot| fit(Group::Bin { partition: i, slot }))
//!             .collect::<gramstream::Result<_>>()?;
//!         Ok(PartitionModels { partition: p.clone(), experts })
//!     })
//!     .collect::<gramstream::Result<_>>()?;
//! let models = ModelSet {
//!     pixels: h.pixels,
//!     layout: h.layout.clone(),
//!     noise_level: h.noise.level,
//!     seed: h.noise.seed,
//!     global,
//!     partitions,
//!     provenance: Provenance::new("stats.h5", h.rows, h.shards.clone(), "α = 1e3 everywhere"),
//!     gate: None,
//!     bin_experts: None,
//! };
//! write_models("models.h5".as_ref(), &models)?;
//! assert_eq!(ModelSet::open("models.h5".as_ref())?, models);
//! # Ok(())
//! # }
//! ```

use std::path::Path;

use hdf5::types::{FloatSize, IntSize, TypeDescriptor};
use hdf5::Group;
use serde::{Deserialize, Serialize};

use crate::h5check::Check;
use crate::h5write::{json, write_array, write_attr, write_str_attr, write_strings};
use crate::output::Staged;
use crate::partition::Partition;
use crate::ridge::Coefficients;
use crate::stats::ShardFingerprint;
use crate::{Error, Layout, Result};

/// The value of the root attribute `format`.
pub(crate) const FORMAT_NAME: &str = "gramstream.models";
/// The newest format version, written when the set has
/// [`ModelSet::bin_experts`]; files of a larger version are refused.
pub const FORMAT_VERSION: u32 = 2;
/// The version written for a set without [`ModelSet::bin_experts`]: such a
/// file is what every earlier gramstream wrote and reads.
const FORMAT_VERSION_RIDGE: u32 = 1;
/// `gramstream <version>`, what [`Provenance::new`] records.
pub const CREATED_BY: &str = concat!("gramstream ", env!("CARGO_PKG_VERSION"));

/// A set of Ridge experts: the global one and one per slot of each partition.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSet {
    /// Pixels per spectrum (P); every expert has P weights.
    pub pixels: usize,
    /// The layout of the shards the statistics were accumulated from (column names).
    pub layout: Layout,
    /// Noise level L of the statistics. SNR routing computes
    /// SNR = ‖flux‖₂ / (L‖error‖₂) of the noiseless flux with it (L = 1 when 0).
    pub noise_level: f64,
    /// Noise seed of the statistics.
    pub seed: u64,
    /// The expert fitted on every row.
    pub global: Expert,
    /// The experts of each partition, in partition order (the positions routing uses).
    pub partitions: Vec<PartitionModels>,
    /// Where the experts come from.
    pub provenance: Provenance,
    /// The learned gate over one partition's bins, when one was trained.
    pub gate: Option<ModelGate>,
    /// The per-bin expert choice of one partition (issue 13), when the
    /// experts were chosen per bin: oracle routing on that partition is
    /// then the oracle-hybrid ([`crate::route::Router::hybrid`]).
    pub bin_experts: Option<BinExperts>,
}

/// The per-bin expert choice of one partition (issue 13): which kind each bin uses and the LightGBM models trained.
#[derive(Debug, Clone, PartialEq)]
pub struct BinExperts {
    /// Position in ModelSet::partitions of the partition whose bins these are.
    pub partition: usize,
    /// Per bin (index = bin, len = partition.bins()): the kind the oracle-hybrid uses for that bin.
    pub chosen: Vec<crate::experts::ExpertKind>,
    /// Per bin: its LightGBM model, when one was trained (also for bins where Ridge was chosen: reports show both).
    pub lightgbm: Vec<Option<crate::experts::lightgbm::SavedLightGbm>>,
}

/// A learned gate saved with the experts: soft and hard routing for `predict`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelGate {
    /// Position in [`ModelSet::partitions`] of the partition it routes to.
    pub partition: usize,
    /// The gate (its partition equals that partition's).
    pub gate: crate::gate::Gate,
}

/// The experts of one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionModels {
    /// The partition's definition (name, edges, bin names).
    pub partition: Partition,
    /// One entry per slot ([`Partition::slots`]): bin `b` at index `b`, the
    /// unbinned slot last when the partition has one. `None`: no expert (the
    /// bin had too few rows); such rows are predicted by the global expert.
    pub experts: Vec<Option<Expert>>,
}

/// One Ridge expert.
#[derive(Debug, Clone, PartialEq)]
pub struct Expert {
    /// α, weights, intercept.
    pub coefficients: Coefficients,
    /// Rows it was fitted on.
    pub n_train: u64,
    /// How α was chosen: `"cv"`, `"gcv"`, `"fixed"` (any non-empty text without NUL).
    pub selected_by: String,
}

impl Expert {
    /// P finite weights, a finite α ≥ 0, a finite intercept and a
    /// `selected_by` (the object and the problem, without the expert's name).
    fn problems(&self, p: usize) -> std::result::Result<(), Problem> {
        let c = &self.coefficients;
        if c.w.len() != p {
            return Err((
                "/experts/w".into(),
                format!("{} weights for {p} pixels", c.w.len()),
            ));
        }
        if let Some(j) = c.w.iter().position(|v| !v.is_finite()) {
            return Err((
                "/experts/w".into(),
                format!("non-finite weight {} at pixel {j}", c.w[j]),
            ));
        }
        if !(c.alpha.is_finite() && c.alpha >= 0.0) {
            return Err((
                "/experts/alpha".into(),
                format!("α = {} (must be finite and ≥ 0)", c.alpha),
            ));
        }
        if !c.intercept.is_finite() {
            return Err((
                "/experts/intercept".into(),
                format!("non-finite intercept {}", c.intercept),
            ));
        }
        if self.selected_by.is_empty() || self.selected_by.contains('\0') {
            return Err((
                "/experts/selected_by".into(),
                format!("selected_by {:?} (non-empty, no NUL)", self.selected_by),
            ));
        }
        Ok(())
    }
}

/// An inconsistency of a model set: the object it concerns and what is wrong.
type Problem = (String, String);

/// What a model set was fitted on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Provenance {
    /// The statistics file's path.
    pub statistics: String,
    /// Rows accumulated in it.
    pub rows: u64,
    /// Fingerprints of the shards the statistics were accumulated from, in read order.
    pub shards: Vec<ShardFingerprint>,
    /// The gramstream that made the models, e.g. `gramstream 0.1.0`.
    pub created_by: String,
    /// Free text: how the experts were chosen, the command line, …
    pub note: String,
}

impl Provenance {
    /// Provenance recorded by this gramstream ([`CREATED_BY`]).
    pub fn new(
        statistics: impl Into<String>,
        rows: u64,
        shards: Vec<ShardFingerprint>,
        note: impl Into<String>,
    ) -> Self {
        Provenance {
            statistics: statistics.into(),
            rows,
            shards,
            created_by: CREATED_BY.to_string(),
            note: note.into(),
        }
    }
}

/// Where an expert sits in a [`ModelSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpertId {
    /// The global expert.
    Global,
    /// Slot `slot` of partition `partition` (by position).
    Bin {
        /// Index into [`ModelSet::partitions`].
        partition: usize,
        /// Bin id, or the bin count for the unbinned slot.
        slot: usize,
    },
}

impl ModelSet {
    /// The experts in file order: global first, then each partition's present
    /// experts in slot order.
    pub fn experts(&self) -> impl Iterator<Item = (ExpertId, &Expert)> + '_ {
        std::iter::once((ExpertId::Global, &self.global)).chain(
            self.partitions.iter().enumerate().flat_map(|(i, pm)| {
                pm.experts.iter().enumerate().filter_map(move |(slot, e)| {
                    e.as_ref()
                        .map(|e| (ExpertId::Bin { partition: i, slot }, e))
                })
            }),
        )
    }

    /// The position of the partition called `name` (`teff-mh` and `teff_mh` are the same).
    pub fn partition_index(&self, name: &str) -> Result<usize> {
        let norm = |s: &str| s.replace('-', "_");
        self.partitions
            .iter()
            .position(|p| norm(&p.partition.name) == norm(name))
            .ok_or_else(|| Error::InvalidParameter {
                name: "partition",
                problem: format!(
                    "no partition {name:?} in the models; they have: {}",
                    self.partitions
                        .iter()
                        .map(|p| p.partition.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    /// Checks the set is consistent: P ≥ 1, valid and uniquely named
    /// partitions with one entry per slot, and every expert with P finite
    /// weights, a finite α ≥ 0, a finite intercept and a `selected_by`.
    /// Returns the problem and the object it concerns.
    fn problems(&self) -> std::result::Result<(), Problem> {
        let p = self.pixels;
        if p == 0 {
            return Err(("/ attribute pixels".into(), "0 pixels".into()));
        }
        if !(self.noise_level.is_finite() && self.noise_level >= 0.0) {
            return Err((
                "/ attribute noise_level".into(),
                format!("noise level {} (must be finite and ≥ 0)", self.noise_level),
            ));
        }
        self.partition_problems()?;
        if let Some(g) = &self.gate {
            self.gate_problems(g)?;
        }
        if let Some(be) = &self.bin_experts {
            self.bin_experts_problems(be)?;
        }
        for (e, (id, x)) in self.experts().enumerate() {
            x.problems(p).map_err(|(object, what)| {
                let at = match id {
                    ExpertId::Global => "the global expert".to_string(),
                    ExpertId::Bin { partition, slot } => format!(
                        "expert {e} ({} slot {slot})",
                        self.partitions[partition].partition.name
                    ),
                };
                (object, format!("{at}: {what}"))
            })?;
        }
        Ok(())
    }

    /// Partitions valid, uniquely named, each with one entry per slot.
    fn partition_problems(&self) -> std::result::Result<(), Problem> {
        for (i, pm) in self.partitions.iter().enumerate() {
            let name = &pm.partition.name;
            pm.partition
                .check()
                .map_err(|e| ("/ attribute partitions".to_string(), e.to_string()))?;
            if self.partitions[..i]
                .iter()
                .any(|q| &q.partition.name == name)
            {
                return Err((
                    "/ attribute partitions".into(),
                    format!("partition {name} given twice"),
                ));
            }
            if pm.experts.len() != pm.partition.slots() {
                return Err((
                    "/experts/slot".into(),
                    format!(
                        "partition {name}: {} expert entries for {} slots",
                        pm.experts.len(),
                        pm.partition.slots()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The gate routes to a partition of the set, for the set's pixels,
    /// with one class per bin.
    fn gate_problems(&self, g: &ModelGate) -> std::result::Result<(), Problem> {
        let part = self.partitions.get(g.partition).map(|pm| &pm.partition);
        if part != Some(&g.gate.partition) {
            return Err((
                "/gate attribute partition".into(),
                format!(
                    "the gate routes to {:?}, which is not partition {} of the set",
                    g.gate.partition.name, g.partition
                ),
            ));
        }
        if g.gate.features.pixels() != self.pixels {
            return Err((
                "/gate/wave".into(),
                format!(
                    "a gate for {} pixels in a set of {}",
                    g.gate.features.pixels(),
                    self.pixels
                ),
            ));
        }
        if g.gate.model.classes() != g.gate.partition.bins() {
            return Err((
                "/gate/present".into(),
                format!(
                    "{} classes for {} bins",
                    g.gate.model.classes(),
                    g.gate.partition.bins()
                ),
            ));
        }
        Ok(())
    }

    /// The bin experts belong to a partition of the set, with one choice and
    /// one model entry per bin, a LightGBM model wherever LightGBM is chosen,
    /// and every model for the set's pixels.
    fn bin_experts_problems(&self, be: &BinExperts) -> std::result::Result<(), Problem> {
        let Some(pm) = self.partitions.get(be.partition) else {
            return Err((
                "/bin_experts attribute partition".into(),
                format!(
                    "partition {} of a set of {} partitions",
                    be.partition,
                    self.partitions.len()
                ),
            ));
        };
        let (name, bins) = (&pm.partition.name, pm.partition.bins());
        if be.chosen.len() != bins {
            return Err((
                "/bin_experts/chosen".into(),
                format!(
                    "{} choices for the {bins} bins of partition {name}",
                    be.chosen.len()
                ),
            ));
        }
        if be.lightgbm.len() != bins {
            return Err((
                "/bin_experts/lightgbm".into(),
                format!(
                    "{} LightGBM entries for the {bins} bins of partition {name}",
                    be.lightgbm.len()
                ),
            ));
        }
        for (b, (kind, model)) in be.chosen.iter().zip(&be.lightgbm).enumerate() {
            let bin_name = &pm.partition.bin_names[b];
            if *kind == crate::experts::ExpertKind::LightGbm && model.is_none() {
                return Err((
                    "/bin_experts/chosen".into(),
                    format!("bin {b} ({bin_name}) chooses lightgbm but has no LightGBM model"),
                ));
            }
            let Some(m) = model else { continue };
            let object = format!("/bin_experts/lightgbm/{b}");
            if m.bins.pixels() != self.pixels {
                return Err((
                    format!("{object}/bound_counts"),
                    format!(
                        "bin {b} ({bin_name}): boundaries for {} pixels in a set of {}",
                        m.bins.pixels(),
                        self.pixels
                    ),
                ));
            }
            match lightgbm_features(&m.model) {
                Some(f) if f == self.pixels => {}
                found => {
                    return Err((
                        format!("{object}/model"),
                        format!(
                            "bin {b} ({bin_name}): {} for {} pixels",
                            match found {
                                Some(f) => format!("a LightGBM model of {f} features"),
                                None => "no LightGBM model text (no max_feature_idx line)".into(),
                            },
                            self.pixels
                        ),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Opens and validates a models file (see the module docs).
    pub fn open(path: &Path) -> Result<ModelSet> {
        read_file(path)
    }
}

const F64: TypeDescriptor = TypeDescriptor::Float(FloatSize::U8);
const U64: TypeDescriptor = TypeDescriptor::Unsigned(IntSize::U8);
const I64: TypeDescriptor = TypeDescriptor::Integer(IntSize::U8);
const U8: TypeDescriptor = TypeDescriptor::Unsigned(IntSize::U1);

/// Writes `models` to `path` atomically: to `<path>.tmp` in the same
/// directory, fsync, rename over `path`, fsync the directory. The set is
/// validated first; on any error the temporary file is removed and `path`
/// is untouched.
pub fn write_models(path: &Path, models: &ModelSet) -> Result<()> {
    models.problems().map_err(|(object, problem)| {
        Error::shape(
            format!("writing {}: {object}", path.display()),
            "a consistent model set",
            problem,
        )
    })?;
    let staged = Staged::file(path)?;
    write_file(staged.path(), path, models)?;
    staged.commit()
}

fn write_file(tmp: &Path, path: &Path, m: &ModelSet) -> Result<()> {
    let file = hdf5::File::with_options()
        .with_fapl(|f| f.libver_v110())
        .create(tmp)
        .map_err(|e| Error::hdf5(tmp, "creating", e))?;
    let root: &Group = &file;
    let experts: Vec<(ExpertId, &Expert)> = m.experts().collect();
    let e_count = experts.len();
    let p = m.pixels;
    {
        let loc: &hdf5::Location = root;
        write_str_attr(loc, path, "format", FORMAT_NAME)?;
        let version = if m.bin_experts.is_some() {
            FORMAT_VERSION
        } else {
            FORMAT_VERSION_RIDGE
        };
        write_attr(loc, path, "format_version", version)?;
        write_attr(loc, path, "pixels", p as u64)?;
        write_attr(loc, path, "experts", e_count as u64)?;
        write_attr(loc, path, "noise_level", m.noise_level)?;
        write_attr(loc, path, "seed", m.seed)?;
        write_str_attr(loc, path, "layout", &json("layout", &m.layout)?)?;
        let parts: Vec<&Partition> = m.partitions.iter().map(|p| &p.partition).collect();
        write_str_attr(loc, path, "partitions", &json("partitions", &parts)?)?;
        write_str_attr(loc, path, "provenance", &json("provenance", &m.provenance)?)?;
    }
    let g = root
        .create_group("experts")
        .map_err(|e| Error::hdf5(path, "creating /experts", e))?;
    let (partition, slot): (Vec<i64>, Vec<u64>) = experts
        .iter()
        .map(|(id, _)| match *id {
            ExpertId::Global => (-1, 0),
            ExpertId::Bin { partition, slot } => (partition as i64, slot as u64),
        })
        .unzip();
    let col = |f: fn(&Expert) -> f64| experts.iter().map(|(_, e)| f(e)).collect::<Vec<f64>>();
    write_array(&g, path, "partition", &[e_count], &partition)?;
    write_array(&g, path, "slot", &[e_count], &slot)?;
    write_array(
        &g,
        path,
        "alpha",
        &[e_count],
        &col(|e| e.coefficients.alpha),
    )?;
    write_array(
        &g,
        path,
        "intercept",
        &[e_count],
        &col(|e| e.coefficients.intercept),
    )?;
    let n: Vec<u64> = experts.iter().map(|(_, e)| e.n_train).collect();
    write_array(&g, path, "n_train", &[e_count], &n)?;
    let sel: Vec<&str> = experts
        .iter()
        .map(|(_, e)| e.selected_by.as_str())
        .collect();
    write_strings(&g, path, "selected_by", "/experts/selected_by", &sel)?;
    let w: Vec<f64> = experts
        .iter()
        .flat_map(|(_, e)| e.coefficients.w.iter().copied())
        .collect();
    write_array(&g, path, "w", &[e_count, p], &w)?;
    drop(g);
    if let Some(mg) = &m.gate {
        write_gate(root, path, mg)?;
    }
    if let Some(be) = &m.bin_experts {
        write_bin_experts(root, path, be)?;
    }
    file.close().map_err(|e| Error::hdf5(tmp, "closing", e))
}

/// `/gate`: the feature map (grid, PCA) and the logistic regression.
fn write_gate(root: &Group, path: &Path, mg: &ModelGate) -> Result<()> {
    let g = root
        .create_group("gate")
        .map_err(|e| Error::hdf5(path, "creating /gate", e))?;
    let loc: &hdf5::Location = &g;
    write_attr(loc, path, "partition", mg.partition as u64)?;
    let f = &mg.gate.features;
    let m = &mg.gate.model;
    let p = f.pixels();
    let comps = f.pca_components();
    let k = comps.ncols();
    let c: Vec<f64> = (0..k)
        .flat_map(|j| (0..p).map(move |i| comps[(i, j)]))
        .collect();
    write_array(&g, path, "wave", &[p], f.wave())?;
    write_array(&g, path, "pca_mean", &[p], f.pca_mean())?;
    write_array(&g, path, "pca_components", &[k, p], &c)?;
    write_array(&g, path, "feature_mean", &[m.features()], m.mean())?;
    write_array(&g, path, "feature_scale", &[m.features()], m.scale())?;
    let present: Vec<u64> = m.present_classes().iter().map(|&c| c as u64).collect();
    write_array(&g, path, "present", &[present.len()], &present)?;
    let th = m.theta();
    let theta: Vec<f64> = (0..th.ncols())
        .flat_map(|c| (0..th.nrows()).map(move |j| th[(j, c)]))
        .collect();
    write_array(&g, path, "theta", &[th.ncols(), th.nrows()], &theta)?;
    Ok(())
}

/// The number of features a LightGBM model text declares (its
/// `max_feature_idx` + 1), read without LightGBM so that a models file is
/// checked in any build.
fn lightgbm_features(model: &str) -> Option<usize> {
    model
        .lines()
        .take_while(|l| !l.starts_with("Tree="))
        .find_map(|l| l.strip_prefix("max_feature_idx="))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map(|i| i + 1)
}

/// `/bin_experts`: the choice per bin and each LightGBM model (its text as
/// bytes, its boundaries as [`crate::experts::binning::PixelBinsParts`]),
/// one group per bin that has one.
fn write_bin_experts(root: &Group, path: &Path, be: &BinExperts) -> Result<()> {
    let g = root
        .create_group("bin_experts")
        .map_err(|e| Error::hdf5(path, "creating /bin_experts", e))?;
    let loc: &hdf5::Location = &g;
    write_attr(loc, path, "partition", be.partition as u64)?;
    let chosen: Vec<&str> = be.chosen.iter().map(|k| k.name()).collect();
    write_strings(&g, path, "chosen", "/bin_experts/chosen", &chosen)?;
    let models = g
        .create_group("lightgbm")
        .map_err(|e| Error::hdf5(path, "creating /bin_experts/lightgbm", e))?;
    for (b, m) in be.lightgbm.iter().enumerate() {
        let Some(m) = m else { continue };
        let object = format!("/bin_experts/lightgbm/{b}");
        let mg = models
            .create_group(&b.to_string())
            .map_err(|e| Error::hdf5(path, format!("creating {object}"), e))?;
        let parts = m.bins.to_parts();
        write_array(&mg, path, "model", &[m.model.len()], m.model.as_bytes())?;
        write_array(
            &mg,
            path,
            "bound_counts",
            &[parts.counts.len()],
            &parts.counts,
        )?;
        write_array(&mg, path, "bounds", &[parts.bounds.len()], &parts.bounds)?;
    }
    Ok(())
}

/// Reads `/bin_experts` when present (only in a version-2 file): every
/// member of `/bin_experts/lightgbm` must be a bin of the partition, each
/// model valid UTF-8 with valid boundaries; the rest (counts, pixels, a
/// model wherever LightGBM is chosen) is checked with the whole set.
fn read_bin_experts(
    ck: &Check<'_>,
    root: &Group,
    version: u64,
    p: usize,
    parts: &[Partition],
) -> Result<Option<BinExperts>> {
    let Ok(g) = root.group("bin_experts") else {
        return Ok(None);
    };
    if version < u64::from(FORMAT_VERSION) {
        return Err(ck.bad(
            "/bin_experts",
            format!("format version {FORMAT_VERSION} for a file with bin experts"),
            format!("version {version}"),
        ));
    }
    let idx = ck.num_attr::<u64>(&g, "/bin_experts", "partition")?;
    let (partition, bins) = usize::try_from(idx)
        .ok()
        .and_then(|i| parts.get(i).map(|pt| (i, pt.bins())))
        .ok_or_else(|| {
            ck.bad(
                "/bin_experts attribute partition",
                format!("a partition index < {}", parts.len()),
                idx.to_string(),
            )
        })?;
    let chosen = ck
        .strings(root, "/bin_experts/chosen", Some(bins))?
        .iter()
        .enumerate()
        .map(|(b, s)| match s.as_str() {
            "ridge" => Ok(crate::experts::ExpertKind::Ridge),
            "lightgbm" => Ok(crate::experts::ExpertKind::LightGbm),
            other => Err(ck.bad(
                "/bin_experts/chosen",
                "\"ridge\" or \"lightgbm\"",
                format!("bin {b}: {other:?}"),
            )),
        })
        .collect::<Result<Vec<_>>>()?;
    let models = g
        .group("lightgbm")
        .map_err(|_| ck.bad("/bin_experts/lightgbm", "a group", "nothing (missing)"))?;
    let names = models
        .member_names()
        .map_err(|e| Error::hdf5(ck.path, "listing /bin_experts/lightgbm", e))?;
    let mut lightgbm = vec![None; bins];
    for name in names {
        let b = name
            .parse::<usize>()
            .ok()
            .filter(|b| *b < bins && b.to_string() == name)
            .ok_or_else(|| {
                ck.bad(
                    "/bin_experts/lightgbm",
                    format!("groups named by bin, 0…{}", bins.saturating_sub(1)),
                    format!("member {name:?}"),
                )
            })?;
        let object = format!("/bin_experts/lightgbm/{b}");
        let (model_ds, _) = ck.dataset_rows(root, &format!("{object}/model"), &U8, &[])?;
        let text: Vec<u8> = ck.read(&model_ds, &format!("{object}/model"))?;
        let model = String::from_utf8(text)
            .map_err(|_| ck.bad(&format!("{object}/model"), "UTF-8 text", "invalid UTF-8"))?;
        let counts: Vec<u8> =
            ck.read_checked(root, &format!("{object}/bound_counts"), &U8, &[p])?;
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        let bounds: Vec<f64> =
            ck.read_checked(root, &format!("{object}/bounds"), &F64, &[total])?;
        let bins = crate::experts::binning::PixelBins::from_parts(
            crate::experts::binning::PixelBinsParts { counts, bounds },
        )
        .map_err(|e| {
            ck.bad(
                &format!("{object}/bounds"),
                "valid pixel boundaries",
                e.to_string(),
            )
        })?;
        lightgbm[b] = Some(crate::experts::lightgbm::SavedLightGbm { bins, model });
    }
    Ok(Some(BinExperts {
        partition,
        chosen,
        lightgbm,
    }))
}

/// Reads `/gate` when present.
fn read_gate(
    ck: &Check<'_>,
    root: &Group,
    p: usize,
    parts: &[Partition],
) -> Result<Option<ModelGate>> {
    let Ok(g) = root.group("gate") else {
        return Ok(None);
    };
    let idx = ck.num_attr::<u64>(&g, "/gate", "partition")?;
    let partition = usize::try_from(idx)
        .ok()
        .and_then(|i| parts.get(i).map(|pt| (i, pt.clone())))
        .ok_or_else(|| {
            ck.bad(
                "/gate attribute partition",
                format!("a partition index < {}", parts.len()),
                idx.to_string(),
            )
        })?;
    let k = crate::gate::features::PCA_COMPONENTS;
    let d = crate::gate::features::N_FEATURES;
    let wave: Vec<f64> = ck.read_checked(root, "/gate/wave", &F64, &[p])?;
    let mean: Vec<f64> = ck.read_checked(root, "/gate/pca_mean", &F64, &[p])?;
    let c: Vec<f64> = ck.read_checked(root, "/gate/pca_components", &F64, &[k, p])?;
    let fmean: Vec<f64> = ck.read_checked(root, "/gate/feature_mean", &F64, &[d])?;
    let fscale: Vec<f64> = ck.read_checked(root, "/gate/feature_scale", &F64, &[d])?;
    let (present_ds, n_present) = ck.dataset_rows(root, "/gate/present", &U64, &[])?;
    if n_present == 0 || n_present > partition.1.bins() {
        return Err(ck.bad(
            "/gate/present",
            format!("1…{} present classes", partition.1.bins()),
            format!("{n_present}"),
        ));
    }
    let present: Vec<u64> = ck.read(&present_ds, "/gate/present")?;
    let theta: Vec<f64> = ck.read_checked(root, "/gate/theta", &F64, &[n_present, d + 1])?;
    let bad = |object: &str, e: Error| ck.bad(object, "a valid gate", e.to_string());
    let features =
        crate::gate::GateFeatures::new(&wave, mean, faer::Mat::from_fn(p, k, |i, j| c[j * p + i]))
            .map_err(|e| bad("/gate/wave", e))?;
    let model = crate::gate::Logistic::from_parts(
        partition.1.bins(),
        fmean,
        fscale,
        present.iter().map(|&c| c as usize).collect(),
        faer::Mat::from_fn(d + 1, n_present, |j, c| theta[c * (d + 1) + j]),
    )
    .map_err(|e| bad("/gate/theta", e))?;
    Ok(Some(ModelGate {
        partition: partition.0,
        gate: crate::gate::Gate {
            features,
            model,
            partition: partition.1,
        },
    }))
}

fn read_file(path: &Path) -> Result<ModelSet> {
    let ck = Check { path };
    let file = ck.open(FORMAT_NAME, "a gramstream models file", FORMAT_VERSION)?;
    let root: &Group = &file;
    let size = |name: &str| ck.usize_attr(root, "/", name);
    let p = size("pixels")?;
    if p == 0 {
        return Err(ck.bad("/ attribute pixels", "at least 1", "0"));
    }
    let e_count = size("experts")?;
    if e_count == 0 {
        return Err(ck.bad("/ attribute experts", "at least 1 (the global expert)", "0"));
    }
    let noise_level = ck.num_attr::<f64>(root, "/", "noise_level")?;
    let seed = ck.num_attr::<u64>(root, "/", "seed")?;
    let layout: Layout = ck.json_attr(root, "/", "layout", "a layout as JSON")?;
    let parts: Vec<Partition> =
        ck.json_attr(root, "/", "partitions", "a list of partitions as JSON")?;
    let provenance: Provenance = ck.json_attr(root, "/", "provenance", "provenance as JSON")?;

    let table = read_experts(&ck, root, p, e_count)?;
    let (global, partitions) = place_experts(&ck, table, parts)?;
    let parts: Vec<Partition> = partitions.iter().map(|pm| pm.partition.clone()).collect();
    let gate = read_gate(&ck, root, p, &parts)?;
    let version = ck.num_attr::<u64>(root, "/", "format_version")?;
    let bin_experts = read_bin_experts(&ck, root, version, p, &parts)?;
    let models = ModelSet {
        pixels: p,
        layout,
        noise_level,
        seed,
        global,
        partitions,
        provenance,
        gate,
        bin_experts,
    };
    models
        .problems()
        .map_err(|(object, problem)| ck.bad(&object, "a valid model set", problem))?;
    Ok(models)
}

/// One row of `/experts`: its partition (−1: global), its slot, the expert.
type ExpertRow = (i64, u64, Expert);

/// Reads `/experts`: every shape checked before anything is read (a
/// damaged header may declare 2^40 experts), the weights finite.
fn read_experts(ck: &Check<'_>, root: &Group, p: usize, e_count: usize) -> Result<Vec<ExpertRow>> {
    let path = ck.path;
    let w_ds = ck.dataset(root, "/experts/w", &F64, &[e_count, p])?;
    let partition: Vec<i64> = ck.read_checked(root, "/experts/partition", &I64, &[e_count])?;
    let slot: Vec<u64> = ck.read_checked(root, "/experts/slot", &U64, &[e_count])?;
    let alpha: Vec<f64> = ck.read_checked(root, "/experts/alpha", &F64, &[e_count])?;
    let intercept: Vec<f64> = ck.read_checked(root, "/experts/intercept", &F64, &[e_count])?;
    let n_train: Vec<u64> = ck.read_checked(root, "/experts/n_train", &U64, &[e_count])?;
    let selected_by = ck.strings(root, "/experts/selected_by", Some(e_count))?;
    let w: Vec<f64> = w_ds
        .read_raw::<f64>()
        .map_err(|e| Error::hdf5(path, "reading /experts/w", e))?;
    if let Some(i) = w.iter().position(|v| !v.is_finite()) {
        return Err(Error::BadValue {
            path: path.to_path_buf(),
            dataset: "/experts/w".into(),
            row: i / p,
            column: format!("pixel {}", i % p),
            problem: format!("non-finite weight {}", w[i]),
        });
    }

    Ok((0..e_count)
        .map(|e| {
            let expert = Expert {
                coefficients: Coefficients {
                    alpha: alpha[e],
                    w: w[e * p..(e + 1) * p].to_vec(),
                    intercept: intercept[e],
                },
                n_train: n_train[e],
                selected_by: selected_by[e].clone(),
            };
            (partition[e], slot[e], expert)
        })
        .collect())
}

/// Puts each expert of the table in its place: the global one (partition
/// −1, slot 0) or a slot of a partition, each place at most once, and a
/// global expert present.
fn place_experts(
    ck: &Check<'_>,
    rows: Vec<ExpertRow>,
    parts: Vec<Partition>,
) -> Result<(Expert, Vec<PartitionModels>)> {
    let mut global = None;
    let mut partitions: Vec<PartitionModels> = parts
        .into_iter()
        .map(|partition| PartitionModels {
            experts: vec![None; partition.slots()],
            partition,
        })
        .collect();
    for (e, (partition, slot, expert)) in rows.into_iter().enumerate() {
        let target = match partition {
            -1 if slot == 0 => &mut global,
            -1 => {
                return Err(ck.bad(
                    "/experts/slot",
                    "slot 0 for the global expert",
                    format!("expert {e}: slot {}", slot),
                ))
            }
            k => {
                let slots = usize::try_from(k)
                    .ok()
                    .and_then(|k| partitions.get_mut(k))
                    .map(|pm| &mut pm.experts)
                    .ok_or_else(|| {
                        ck.bad(
                            "/experts/partition",
                            "−1 (global) or the index of a partition in / attribute partitions",
                            format!("expert {e}: {k}"),
                        )
                    })?;
                let count = slots.len();
                usize::try_from(slot)
                    .ok()
                    .and_then(|s| slots.get_mut(s))
                    .ok_or_else(|| {
                        ck.bad(
                            "/experts/slot",
                            format!("a slot < {count} of partition {k}"),
                            format!("expert {e}: slot {}", slot),
                        )
                    })?
            }
        };
        if target.is_some() {
            return Err(ck.bad(
                "/experts/slot",
                "one expert per (partition, slot)",
                format!("expert {e} repeats partition {} slot {}", partition, slot),
            ));
        }
        *target = Some(expert);
    }
    let global = global.ok_or_else(|| {
        ck.bad(
            "/experts/partition",
            "one global expert (partition −1)",
            "none",
        )
    })?;
    Ok((global, partitions))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expert(p: usize) -> Expert {
        Expert {
            coefficients: Coefficients {
                alpha: 1.0,
                w: vec![0.5; p],
                intercept: 2.0,
            },
            n_train: 10,
            selected_by: "gcv".into(),
        }
    }

    fn set() -> ModelSet {
        ModelSet {
            pixels: 3,
            layout: Layout::default(),
            noise_level: 1.0,
            seed: 1,
            global: expert(3),
            partitions: vec![PartitionModels {
                partition: Partition::snr(),
                experts: vec![Some(expert(3)), None, None, Some(expert(3))],
            }],
            provenance: Provenance::default(),
            gate: None,
            bin_experts: None,
        }
    }

    #[test]
    fn experts_are_listed_global_first_in_slot_order() {
        let ids: Vec<ExpertId> = set().experts().map(|(id, _)| id).collect();
        assert_eq!(
            ids,
            [
                ExpertId::Global,
                ExpertId::Bin {
                    partition: 0,
                    slot: 0
                },
                ExpertId::Bin {
                    partition: 0,
                    slot: 3
                }
            ]
        );
        assert_eq!(set().partition_index("snr").unwrap(), 0);
        assert!(set().partition_index("teff_mh").is_err());
    }

    /// A stored LightGBM model that passes the file's checks without
    /// LightGBM (its text declares `p` features); predicting needs a real one.
    fn stored_lightgbm(p: usize) -> crate::experts::lightgbm::SavedLightGbm {
        let bins = crate::experts::binning::PixelBins::fit(
            &(0..4 * p).map(|v| v as f64).collect::<Vec<_>>(),
            p,
            crate::experts::binning::MAX_CODES,
        )
        .unwrap();
        crate::experts::lightgbm::SavedLightGbm {
            bins,
            model: format!("tree\nversion=v4\nmax_feature_idx={}\n", p - 1),
        }
    }

    fn with_experts() -> ModelSet {
        use crate::experts::ExpertKind::{LightGbm, Ridge};
        let mut m = set();
        m.bin_experts = Some(BinExperts {
            partition: 0,
            chosen: vec![Ridge, LightGbm, Ridge, Ridge],
            lightgbm: vec![
                Some(stored_lightgbm(3)),
                Some(stored_lightgbm(3)),
                None,
                None,
            ],
        });
        m
    }

    #[test]
    fn bin_experts_round_trip_without_lightgbm_and_raise_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let version = |path: &Path| {
            hdf5::File::open(path)
                .unwrap()
                .attr("format_version")
                .unwrap()
                .read_scalar::<u32>()
                .unwrap()
        };
        let (plain, hybrid) = (dir.path().join("plain.h5"), dir.path().join("hybrid.h5"));
        write_models(&plain, &set()).unwrap();
        write_models(&hybrid, &with_experts()).unwrap();
        assert_eq!(ModelSet::open(&plain).unwrap(), set());
        assert_eq!(ModelSet::open(&hybrid).unwrap(), with_experts());
        assert_eq!((version(&plain), version(&hybrid)), (1, 2));
        assert!(hdf5::File::open(&plain)
            .unwrap()
            .group("bin_experts")
            .is_err());
    }

    #[test]
    fn inconsistent_bin_experts_are_named() {
        use crate::experts::ExpertKind::LightGbm;
        assert!(with_experts().problems().is_ok());
        let object = |f: fn(&mut BinExperts)| {
            let mut m = with_experts();
            f(m.bin_experts.as_mut().unwrap());
            m.problems().unwrap_err().0
        };
        assert_eq!(
            object(|b| b.partition = 1),
            "/bin_experts attribute partition"
        );
        assert_eq!(object(|b| b.chosen.push(LightGbm)), "/bin_experts/chosen");
        assert_eq!(
            object(|b| {
                b.lightgbm.pop();
            }),
            "/bin_experts/lightgbm"
        );
        // LightGBM chosen, no model.
        assert_eq!(object(|b| b.chosen[2] = LightGbm), "/bin_experts/chosen");
        // Boundaries for another number of pixels; a model of other features.
        assert_eq!(
            object(|b| b.lightgbm[0] = Some(stored_lightgbm(4))),
            "/bin_experts/lightgbm/0/bound_counts"
        );
        assert_eq!(
            object(|b| b.lightgbm[1].as_mut().unwrap().model = "max_feature_idx=3\n".into()),
            "/bin_experts/lightgbm/1/model"
        );
        assert_eq!(
            object(|b| b.lightgbm[1].as_mut().unwrap().model = "not a model".into()),
            "/bin_experts/lightgbm/1/model"
        );
        let dir = tempfile::tempdir().unwrap();
        let mut m = with_experts();
        m.bin_experts.as_mut().unwrap().chosen.pop();
        let err = write_models(&dir.path().join("m.h5"), &m).unwrap_err();
        assert!(err.to_string().contains("/bin_experts/chosen"), "{err}");
    }

    #[test]
    fn inconsistent_sets_are_named() {
        assert!(set().problems().is_ok());
        let mut m = set();
        m.partitions[0].experts.push(None);
        assert_eq!(m.problems().unwrap_err().0, "/experts/slot");
        let mut m = set();
        m.global.coefficients.w.pop();
        assert_eq!(m.problems().unwrap_err().0, "/experts/w");
        let mut m = set();
        m.global.coefficients.alpha = -1.0;
        assert_eq!(m.problems().unwrap_err().0, "/experts/alpha");
        let mut m = set();
        m.global.selected_by.clear();
        assert_eq!(m.problems().unwrap_err().0, "/experts/selected_by");
        let mut m = set();
        m.partitions.push(m.partitions[0].clone());
        assert_eq!(m.problems().unwrap_err().0, "/ attribute partitions");
    }
}

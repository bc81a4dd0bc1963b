//! Streaming prediction with a [`ModelSet`]: shards in, one prediction per row out.
//!
//! Each shard is read chunk by chunk ([`crate::source`]), so memory is
//! bounded by the chunks in flight (the row stream reads two ahead: a few
//! `chunk_rows × P` buffers), never the
//! shard. The spectra are, by default, the stored `noisy` array when the
//! shard has one and the flux as stored otherwise (real observed spectra);
//! [`SpectraChoice::Noise`] adds the deterministic noise of
//! [`crate::noise`] instead (shard index = first index + position, as in the
//! pass), so the same rows are predicted whatever the chunk size.
//!
//! Routing ([`Routing`]):
//!
//! * `Global`: every row goes to the global expert.
//! * `Oracle`: a row goes to the expert of its bin in one partition, found
//!   from its true keys ([`Partition::bin`]): T_eff and [M/H] from the
//!   params table, or the SNR key of the row stream ([`crate::rows::snr`]:
//!   from flux and error, read beside a stored `noisy` array when the
//!   spectra come from it). L is the level of [`SpectraChoice::Noise`] when
//!   given, else the models' [`ModelSet::noise_level`]. The router
//!   ([`crate::route`]) decides: a row outside every bin, or whose bin has
//!   no expert, is predicted by the global expert and counted.
//!
//!   When the models chose an expert kind per bin of that partition
//!   ([`ModelSet::bin_experts`], issue 13), oracle routing is the
//!   oracle-hybrid: a row whose bin chose LightGBM gets that bin's
//!   LightGBM prediction ([`Route::LightGbm`]; one LightGBM call per bin and
//!   chunk), the others their Ridge expert's. The summary's routing says
//!   which bins use which kind, and the CSV gets an `expert` column. A
//!   build without the `lightgbm` feature refuses such models
//!   ([`Error::NotBuilt`]).
//!
//! * `Gate`: the learned gate saved in the models ([`ModelSet::gate`],
//!   written by `experiment`) computes each row's bin probabilities from its
//!   noisy spectrum alone; hard routing takes the most probable bin's expert,
//!   soft routing the mixture `Σ p_k ŷ_k` (a bin without an expert contributes
//!   the global expert's prediction). No params are needed.
//!
//! Params are read straight from the table, not through the reader's
//! validation: a row with an unknown (NaN) log g is predicted and left out
//! of the metrics; NaN T_eff or [M/H] routes it to the global expert.
//! Non-finite flux (or error, when read) is still an error naming the row.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::eval::{Metrics, Scores};
use crate::experts::ExpertKind;
use crate::models::ModelSet;
use crate::noise::NoiseModel;
use crate::output::Staged;
use crate::partition::{Partition, PartitionKind, RowKeys};
use crate::route::{LoadedExperts, Router};
pub use crate::route::{Route, Routing};
use crate::rows::{ModelSpectra, RowSpec, RowStream};
use crate::source::{ReadOptions, ReadPath, Shard, ShardReader};
use crate::{Error, Layout, Result, Threads};

/// The params column whose value identifies a row in the output (when present).
pub(crate) const ID_COLUMN: &str = "id";

/// Which spectra are predicted.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum SpectraChoice {
    /// The stored `noisy` array if the shard has one, else the flux as stored.
    #[default]
    Auto,
    /// The stored `noisy` array; a shard without one is an error.
    StoredNoisy,
    /// Flux + error with this deterministic noise.
    Noise(NoiseModel),
}

/// Options of [`predict`].
#[derive(Debug, Clone)]
pub struct PredictOptions {
    /// Where things are in the shards (default: the models' layout).
    pub layout: Layout,
    /// Which expert predicts each row: global, oracle on a partition, or the saved gate.
    pub routing: Routing,
    /// Which spectra are predicted: stored `noisy`, flux as stored, or flux + drawn noise.
    pub spectra: SpectraChoice,
    /// Rows per chunk read (≥ 1).
    pub chunk_rows: usize,
    /// Shard index of the first shard (noise streams); the others follow.
    pub first_shard_index: u64,
    /// Memory map where it applies ([`ReadPath::Auto`]) or always libhdf5 hyperslabs.
    pub read_path: ReadPath,
    /// Threads each LightGBM call predicts on (the oracle-hybrid's
    /// LightGBM bins; Ridge predicts on the calling thread). Default one:
    /// LightGBM's spinning OpenMP threads do badly on a shared machine
    /// (README, "LightGBM experts").
    pub threads: Threads,
}

impl PredictOptions {
    /// Global routing, automatic spectra, 256 rows per chunk, the models' layout.
    pub fn new(models: &ModelSet) -> Self {
        PredictOptions {
            layout: models.layout.clone(),
            routing: Routing::Global,
            spectra: SpectraChoice::Auto,
            chunk_rows: 256,
            first_shard_index: 0,
            read_path: ReadPath::Auto,
            threads: Threads::ONE,
        }
    }
}

/// One predicted row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictedRow {
    /// Position of the shard in the list given.
    pub shard: usize,
    /// Row within the shard.
    pub row: usize,
    /// The params `id` column, if the shard has one.
    pub id: Option<f64>,
    /// The true log g, if the shard has the column.
    pub log_g: Option<f64>,
    /// The predicted log g (dex); `route` says which expert or gate routing made it.
    pub prediction: f64,
    /// Which expert made it.
    pub route: Route,
}

/// Rows and scores of one bin's expert.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BinSummary {
    /// The bin's name in the routing partition, e.g. `Cool Poor`.
    pub name: String,
    /// Rows predicted by this bin's expert.
    pub rows: u64,
    /// Scores on those of them with a finite log g (None: none).
    pub metrics: Option<Metrics>,
}

/// What a prediction run did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PredictSummary {
    /// Rows predicted, over all shards (every row read).
    pub rows: u64,
    /// Number of shard files given (all are read).
    pub shards: usize,
    /// `global`, `oracle`, `soft gate` or `hard gate`; the oracle-hybrid is
    /// `oracle (hybrid: ridge in bins …; lightgbm in bins …)`.
    pub routing: String,
    /// Name of the partition routed to (oracle or gate); None under global routing.
    pub partition: Option<String>,
    /// Oracle or gate routing: one entry per bin, in bin-id order (empty under global routing).
    pub bins: Vec<BinSummary>,
    /// Rows predicted by the global expert (all of them under global routing).
    pub global_rows: u64,
    /// Oracle routing: rows outside every bin (predicted by the global expert).
    pub unbinned: u64,
    /// Oracle routing: rows whose bin has no expert (predicted by the global expert).
    pub no_expert: u64,
    /// Scores over every row with a finite log g (None: no log g column, or none finite).
    pub metrics: Option<Metrics>,
    /// Wall time (s) of the whole call, opening the shards included.
    pub seconds: f64,
}

impl std::fmt::Display for PredictSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "predicted {} rows from {} shard(s), {} routing",
            self.rows, self.shards, self.routing
        )?;
        if let Some(p) = &self.partition {
            write!(f, " on {p}")?;
        }
        writeln!(
            f,
            " in {:.2} s ({:.0} rows/s)",
            self.seconds,
            self.rows as f64 / self.seconds.max(1e-9)
        )?;
        if !self.bins.is_empty() {
            let per: Vec<String> = self
                .bins
                .iter()
                .map(|b| format!("{} {}", b.name, b.rows))
                .collect();
            writeln!(f, "rows per bin: {}", per.join(", "))?;
            writeln!(
                f,
                "routed to the global expert: {} ({} outside every bin, {} in bins without an expert)",
                self.global_rows, self.unbinned, self.no_expert
            )?;
        }
        match &self.metrics {
            Some(m) => write!(
                f,
                "log g on {} rows: R² {:.4}, MAE {:.4} dex, RMSE {:.4} dex",
                m.n, m.r2, m.mae, m.rmse
            ),
            None => write!(f, "no true log g: no scores"),
        }
    }
}

/// Per shard: which params columns are read, and where each lands.
struct Columns {
    names: Vec<String>,
    id: Option<usize>,
    log_g: Option<usize>,
    teff_mh: Option<(usize, usize)>,
}

fn columns(shard: &Shard, layout: &Layout, need_teff_mh: bool) -> Result<Columns> {
    let table = shard.params();
    let mut names = Vec::new();
    let mut add = |name: &str| {
        names.push(name.to_string());
        names.len() - 1
    };
    let id = table.column_index(ID_COLUMN).ok().map(|_| add(ID_COLUMN));
    let log_g = table
        .column_index(&layout.columns.log_g)
        .ok()
        .map(|_| add(&layout.columns.log_g));
    let teff_mh = if need_teff_mh {
        table.column_index(&layout.columns.teff)?;
        table.column_index(&layout.columns.mh)?;
        Some((add(&layout.columns.teff), add(&layout.columns.mh)))
    } else {
        None
    };
    Ok(Columns {
        names,
        id,
        log_g,
        teff_mh,
    })
}

/// What the routing reads beyond the spectra: an oracle on an SNR
/// partition needs the SNR (from flux and error), one on T_eff × [M/H]
/// those columns.
struct Needs {
    snr: bool,
    teff_mh: bool,
}

impl Needs {
    fn of(routing: Routing, partition: Option<&Partition>) -> Needs {
        let oracle = matches!(routing, Routing::Oracle { .. });
        let kind = partition.map(|p| &p.kind);
        Needs {
            snr: oracle && matches!(kind, Some(PartitionKind::Snr { .. })),
            teff_mh: oracle && matches!(kind, Some(PartitionKind::TeffMh { .. })),
        }
    }
}

/// Opens and checks every shard before anything is predicted: the models'
/// pixels, the columns the routing needs, the stored noisy array when asked
/// for; returns a reader and the columns of each.
fn open_readers(
    models: &ModelSet,
    shards: &[PathBuf],
    opts: &PredictOptions,
    spec: &RowSpec,
    needs: &Needs,
) -> Result<(Vec<ShardReader>, Vec<Columns>)> {
    let mut cols = Vec::with_capacity(shards.len());
    let mut readers = Vec::with_capacity(shards.len());
    for (position, path) in shards.iter().enumerate() {
        let shard = Shard::open(path, &opts.layout)?;
        if shard.pixels() != models.pixels {
            return Err(Error::Layout {
                path: path.clone(),
                dataset: opts.layout.flux.clone(),
                expected: format!("{} pixels (the models')", models.pixels),
                found: format!("{} pixels", shard.pixels()),
            });
        }
        let c = columns(&shard, &opts.layout, needs.teff_mh)?;
        let missing = |dataset: &str, why: &str| Error::MissingDataset {
            path: shard.path().to_path_buf(),
            dataset: dataset.to_string(),
            found: format!(" ({why})"),
        };
        let stored_noisy = match opts.spectra {
            SpectraChoice::Auto => shard.has_noisy(),
            SpectraChoice::Noise(_) => false,
            SpectraChoice::StoredNoisy if shard.has_noisy() => true,
            SpectraChoice::StoredNoisy => {
                return Err(missing(
                    &opts.layout.noisy,
                    "the stored noisy spectra were asked for",
                ))
            }
        };
        let read = ReadOptions {
            spectra: spec.reader_spectra(stored_noisy),
            columns: c.names.clone(),
            path: opts.read_path,
            ..Default::default()
        };
        let index = opts.first_shard_index + position as u64;
        let reader = shard.reader(index, &read).map_err(|e| match e {
            Error::MissingDataset { dataset, .. } if needs.snr => missing(
                &dataset,
                "oracle routing on an SNR partition needs flux and error",
            ),
            other => other,
        })?;
        readers.push(reader.lenient_params());
        cols.push(c);
    }
    Ok((readers, cols))
}

/// Rows and scores by route, as the rows go by.
struct Tally {
    bin_rows: Vec<u64>,
    bin_scores: Vec<Scores>,
    rows: u64,
    global_rows: u64,
    unbinned: u64,
    no_expert: u64,
    scores: Scores,
}

impl Tally {
    fn new(bins: usize) -> Tally {
        Tally {
            bin_rows: vec![0; bins],
            bin_scores: vec![Scores::default(); bins],
            rows: 0,
            global_rows: 0,
            unbinned: 0,
            no_expert: 0,
            scores: Scores::default(),
        }
    }

    /// One row: its route, and its score when its log g is known.
    fn add(&mut self, route: Route, log_g: Option<f64>, prediction: f64) {
        if let Some(y) = log_g.filter(|y| y.is_finite()) {
            self.scores.add(y, prediction);
            if let Route::Bin(b) | Route::Gate(b) | Route::LightGbm(b) = route {
                self.bin_scores[b].add(y, prediction);
            }
        }
        match route {
            Route::Bin(b) | Route::Gate(b) | Route::LightGbm(b) => self.bin_rows[b] += 1,
            Route::Global => self.global_rows += 1,
            Route::Unbinned => {
                self.global_rows += 1;
                self.unbinned += 1;
            }
            Route::NoExpert(_) => {
                self.global_rows += 1;
                self.no_expert += 1;
            }
        }
        self.rows += 1;
    }

    fn summary(
        self,
        shards: usize,
        routing: Routing,
        partition: Option<&Partition>,
        hybrid: Option<&LoadedExperts>,
        seconds: f64,
    ) -> PredictSummary {
        let name = match routing {
            Routing::Global => "global",
            Routing::Oracle { .. } => "oracle",
            Routing::Gate { soft: true } => "soft gate",
            Routing::Gate { soft: false } => "hard gate",
        };
        PredictSummary {
            rows: self.rows,
            shards,
            routing: match (hybrid, partition) {
                (Some(e), Some(p)) => {
                    format!("{name} ({})", hybrid_label(e.chosen(), &p.bin_names))
                }
                _ => name.into(),
            },
            partition: partition.map(|p| p.name.clone()),
            bins: (0..self.bin_rows.len())
                .map(|b| BinSummary {
                    name: partition.map_or_else(String::new, |p| p.bin_names[b].clone()),
                    rows: self.bin_rows[b],
                    metrics: self.bin_scores[b].metrics(),
                })
                .collect(),
            global_rows: self.global_rows,
            unbinned: self.unbinned,
            no_expert: self.no_expert,
            metrics: self.scores.metrics(),
            seconds,
        }
    }
}

/// `hybrid: ridge in bins A, B; lightgbm in bins C`: which bins use which
/// kind (a kind no bin uses is left out).
fn hybrid_label(chosen: &[ExpertKind], bin_names: &[String]) -> String {
    let kinds = [ExpertKind::Ridge, ExpertKind::LightGbm];
    let parts: Vec<String> = kinds
        .iter()
        .filter_map(|&kind| {
            let bins: Vec<&str> = chosen
                .iter()
                .zip(bin_names)
                .filter(|(k, _)| **k == kind)
                .map(|(_, n)| n.as_str())
                .collect();
            (!bins.is_empty()).then(|| format!("{kind} in bins {}", bins.join(", ")))
        })
        .collect();
    format!("hybrid: {}", parts.join("; "))
}

/// The per-bin experts that oracle routing under `routing` uses, loaded
/// (None: another routing, or no per-bin experts on its partition).
fn hybrid_experts(models: &ModelSet, opts: &PredictOptions) -> Result<Option<LoadedExperts>> {
    match (opts.routing, &models.bin_experts) {
        (Routing::Oracle { partition }, Some(be)) if be.partition == partition => {
            LoadedExperts::load(be, opts.threads).map(Some)
        }
        _ => Ok(None),
    }
}

/// Predicts every row of `shards` with `models`, calling `on_row` for each
/// in order (shard after shard, row after row) and `progress` with the rows
/// of each chunk done. Returns counts and scores.
pub fn predict(
    models: &ModelSet,
    shards: &[PathBuf],
    opts: &PredictOptions,
    on_row: &mut dyn FnMut(&PredictedRow) -> Result<()>,
    progress: &dyn Fn(u64),
) -> Result<PredictSummary> {
    let start = Instant::now();
    if shards.is_empty() {
        return Err(Error::InvalidParameter {
            name: "shards",
            problem: "no shard given".into(),
        });
    }
    if opts.chunk_rows == 0 {
        return Err(Error::InvalidParameter {
            name: "chunk_rows",
            problem: "must be at least 1".into(),
        });
    }
    crate::noise::predicted_shard_indices(opts.first_shard_index, shards.len())?;
    Router::new(models).check(opts.routing)?;
    let hybrid = hybrid_experts(models, opts)?;
    let router = Router::new(models).with_experts(hybrid.as_ref())?;
    let partition: Option<&Partition> = router
        .partition(opts.routing)
        .map(|p| &models.partitions[p].partition);
    let needs = Needs::of(opts.routing, partition);
    let spec = RowSpec {
        spectra: match opts.spectra {
            SpectraChoice::Noise(m) => ModelSpectra::Draw(m),
            SpectraChoice::Auto | SpectraChoice::StoredNoisy => ModelSpectra::Stored,
        },
        snr_level: needs.snr.then_some(match opts.spectra {
            SpectraChoice::Noise(m) => m.level,
            _ => models.noise_level,
        }),
        parallel: false,
    };
    let (readers, cols) = open_readers(models, shards, opts, &spec, &needs)?;

    let mut tally = Tally::new(partition.map_or(0, Partition::bins));
    let mut stream = RowStream::new(readers, spec, opts.chunk_rows, 2)?;
    // One chunk's keys and routed predictions, reused from chunk to chunk:
    // the oracle-hybrid replaces its LightGBM bins' with one call per bin.
    let (mut keys, mut predictions, mut routes) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(chunk) = stream.next() {
        let chunk = chunk?;
        let position = (chunk.shard - opts.first_shard_index) as usize;
        let cols = &cols[position];
        keys.clear();
        predictions.clear();
        routes.clear();
        for r in 0..chunk.rows {
            let prm = chunk.params_row(r);
            let (teff, mh) = cols
                .teff_mh
                .map_or((f64::NAN, f64::NAN), |(t, m)| (prm[t], prm[m]));
            let k = RowKeys {
                teff,
                mh,
                snr: chunk.snr.get(r).copied().unwrap_or(f64::NAN),
            };
            let (prediction, route) = router.predict(opts.routing, chunk.flux_row(r), &k);
            keys.push(k);
            predictions.push(prediction);
            routes.push(route);
        }
        if let (Routing::Oracle { partition }, Some(_)) = (opts.routing, &hybrid) {
            router.hybrid_rows(
                partition,
                &keys,
                &chunk.flux[..chunk.rows * chunk.pixels],
                &mut predictions,
                &mut routes,
            )?;
        }
        for r in 0..chunk.rows {
            let prm = chunk.params_row(r);
            let (prediction, route) = (predictions[r], routes[r]);
            let log_g = cols.log_g.map(|i| prm[i]);
            tally.add(route, log_g, prediction);
            on_row(&PredictedRow {
                shard: position,
                row: chunk.start + r,
                id: cols.id.map(|i| prm[i]),
                log_g,
                prediction,
                route,
            })?;
        }
        progress(chunk.rows as u64);
        stream.recycle(chunk);
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(tally.summary(
        shards.len(),
        opts.routing,
        partition,
        hybrid.as_ref(),
        seconds,
    ))
}

/// A CSV field: quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// The CSV line of a row (without the line break): `id,log_g,prediction,bin`,
/// and `,expert` (`ridge`, `lightgbm` or `global`) when `expert` is set (the
/// oracle-hybrid). `bin_names` are the routing partition's (empty under
/// global routing). Numbers are written in Rust's shortest round-trip form.
pub(crate) fn csv_line(row: &PredictedRow, bin_names: &[String], expert: bool) -> String {
    let id = match row.id {
        None => format!("{}:{}", row.shard, row.row),
        Some(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 => {
            format!("{}", v as i64)
        }
        Some(v) if v.is_finite() => format!("{v}"),
        Some(_) => String::new(),
    };
    let log_g = match row.log_g {
        Some(v) if v.is_finite() => format!("{v}"),
        _ => String::new(),
    };
    let bin = match row.route.expert_bin() {
        Some(b) => bin_names.get(b).map_or("global", String::as_str),
        None => "global",
    };
    let line = format!("{id},{log_g},{},{}", row.prediction, csv_field(bin));
    if !expert {
        return line;
    }
    let kind = row.route.expert_kind().map_or("global", ExpertKind::name);
    format!("{line},{kind}")
}

/// [`predict`] into a CSV file `out` with the header `id,log_g,prediction,bin`
/// (id = the params `id` column, or `shard:row` with the shard's position;
/// log_g empty when unknown; bin = the bin name, or `global`), and a column
/// `expert` (`ridge`, `lightgbm`, `global`) under the oracle-hybrid. Written
/// through `output::Staged`: a failed run leaves no `out`, and an
/// `out` that is one of the shards is refused.
pub fn predict_csv(
    models: &ModelSet,
    shards: &[PathBuf],
    opts: &PredictOptions,
    out: &Path,
    progress: &dyn Fn(u64),
) -> Result<PredictSummary> {
    let names: Vec<String> = match opts.routing {
        Routing::Global => Vec::new(),
        Routing::Oracle { partition } => models
            .partitions
            .get(partition)
            .map(|p| p.partition.bin_names.clone())
            .unwrap_or_default(),
        Routing::Gate { .. } => models
            .gate
            .as_ref()
            .map(|g| g.gate.partition.bin_names.clone())
            .unwrap_or_default(),
    };
    let expert = matches!(
        (opts.routing, &models.bin_experts),
        (Routing::Oracle { partition }, Some(be)) if be.partition == partition
    );
    crate::output::refuse_input_overwrite(out, shards)?;
    let staged = Staged::file(out)?;
    let tmp = staged.path().to_path_buf();
    let io = |e| Error::io(&tmp, e);
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let mut w = std::io::BufWriter::new(file);
    let header = if expert {
        "id,log_g,prediction,bin,expert"
    } else {
        "id,log_g,prediction,bin"
    };
    writeln!(w, "{header}").map_err(io)?;
    let summary = predict(
        models,
        shards,
        opts,
        &mut |row: &PredictedRow| writeln!(w, "{}", csv_line(row, &names, expert)).map_err(io),
        progress,
    )?;
    w.into_inner().map_err(|e| io(e.into_error()))?;
    staged.commit()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: Option<f64>, log_g: Option<f64>, route: Route) -> PredictedRow {
        PredictedRow {
            shard: 2,
            row: 17,
            id,
            log_g,
            prediction: 0.1 + 0.2,
            route,
        }
    }

    #[test]
    fn csv_lines() {
        let names = vec!["Cool Poor".to_string(), "a, \"b\"".to_string()];
        assert_eq!(
            csv_line(&row(Some(5000.0), Some(4.25), Route::Bin(0)), &names, false),
            "5000,4.25,0.30000000000000004,Cool Poor"
        );
        assert_eq!(
            csv_line(&row(None, None, Route::Unbinned), &names, false),
            "2:17,,0.30000000000000004,global"
        );
        assert_eq!(
            csv_line(
                &row(Some(f64::NAN), Some(f64::NAN), Route::Bin(1)),
                &names,
                false
            ),
            ",,0.30000000000000004,\"a, \"\"b\"\"\""
        );
        assert_eq!(
            csv_line(
                &row(Some(2.5), Some(1.0), Route::NoExpert(0)),
                &names,
                false
            ),
            "2.5,1,0.30000000000000004,global"
        );
        let hybrid = |route| csv_line(&row(Some(1.0), None, route), &names, true);
        assert_eq!(
            hybrid(Route::LightGbm(0)),
            "1,,0.30000000000000004,Cool Poor,lightgbm"
        );
        assert_eq!(
            hybrid(Route::Bin(0)),
            "1,,0.30000000000000004,Cool Poor,ridge"
        );
        assert_eq!(
            hybrid(Route::Unbinned),
            "1,,0.30000000000000004,global,global"
        );
    }

    #[test]
    fn the_hybrid_is_named_by_its_bins() {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).into();
        let (r, l) = (ExpertKind::Ridge, ExpertKind::LightGbm);
        assert_eq!(
            hybrid_label(&[r, l, r], &names),
            "hybrid: ridge in bins a, c; lightgbm in bins b"
        );
        assert_eq!(
            hybrid_label(&[l, l, l], &names),
            "hybrid: lightgbm in bins a, b, c"
        );
    }

    #[test]
    fn scores_match_the_definitions() {
        let mut s = Scores::default();
        assert!(s.metrics().is_none());
        for (y, p) in [(1.0, 1.5), (2.0, 2.0), (3.0, 2.0)] {
            s.add(y, p);
        }
        let m = s.metrics().unwrap();
        assert_eq!(m.n, 3);
        assert!((m.r2 - (1.0 - 1.25 / 2.0)).abs() < 1e-15);
        assert!((m.mae - 0.5).abs() < 1e-15);
        assert!((m.rmse - (1.25f64 / 3.0).sqrt()).abs() < 1e-15);
    }
}

//! `Models`: saved experts (`models.h5`) and prediction through the
//! library's router.

use std::path::PathBuf;
use std::sync::Arc;

use gramstream::models::{Expert, ModelSet};
use gramstream::partition::{PartitionKind, RowKeys};
use gramstream::predict::{predict, PredictOptions, PredictedRow, SpectraChoice};
use gramstream::route::{Route, Router, Routing};
use gramstream::source::ReadPath;
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::args;
use crate::convert::{dims, floats, floats1, record, slice, vec1};
use crate::errors::{invalid, shape, IntoPy};
use crate::progress::Progress;

/// Saved Ridge experts (``models.h5`` from ``gramstream sweep`` or
/// ``experiment``): the global expert, one per bin of each partition, and
/// the gate when the experiment trained one.
#[pyclass(module = "gramstream", name = "Models", frozen)]
pub struct Models {
    models: Arc<ModelSet>,
    path: PathBuf,
}

/// The routing named by the caller, checked against the models.
fn routing(
    models: &ModelSet,
    name: &str,
    partition: Option<&Bound<'_, PyAny>>,
) -> PyResult<Routing> {
    let partition = partition.filter(|p| !p.is_none());
    let r = match name {
        "global" => Routing::Global,
        "oracle" => {
            if models.partitions.is_empty() {
                return Err(invalid(
                    "routing",
                    "the models have no partition: oracle routing needs one",
                ));
            }
            let names: Vec<&str> = models
                .partitions
                .iter()
                .map(|p| p.partition.name.as_str())
                .collect();
            Routing::Oracle {
                partition: match partition {
                    Some(spec) => args::partition_index(&names, spec)?,
                    None => 0,
                },
            }
        }
        "hard_gate" | "hard" => Routing::Gate { soft: false },
        "soft_gate" | "soft" => Routing::Gate { soft: true },
        other => {
            return Err(invalid(
                "routing",
                format!(
                    "unknown routing {other:?}: use \"global\", \"oracle\", \"hard_gate\" or \"soft_gate\""
                ),
            ))
        }
    };
    if partition.is_some() && !matches!(r, Routing::Oracle { .. }) {
        return Err(invalid(
            "partition",
            "partition= applies to oracle routing (the gate routes to its own partition)",
        ));
    }
    Router::new(models).check(r).py_err()?;
    Ok(r)
}

/// The bin a row was routed to, −1 for the global expert.
fn bin_of(route: Route) -> i64 {
    route.expert_bin().map_or(-1, |b| b as i64)
}

/// An optional per-row key (T_eff, [M/H], SNR): `rows` values.
fn keys(
    name: &'static str,
    value: Option<&Bound<'_, PyAny>>,
    rows: usize,
) -> PyResult<Option<Vec<f64>>> {
    let Some(v) = value.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    let v = floats1(v, name)?;
    let v = slice(&v).to_vec();
    if v.len() != rows {
        return Err(shape(
            name,
            format!("{rows} values (one per row of flux)"),
            v.len(),
        ));
    }
    Ok(Some(v))
}

fn expert_dict<'py>(py: Python<'py>, e: &Expert) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("w", vec1(py, e.coefficients.w.clone()))?;
    d.set_item("intercept", e.coefficients.intercept)?;
    d.set_item("alpha", e.coefficients.alpha)?;
    d.set_item("n_train", e.n_train)?;
    d.set_item("selected_by", &e.selected_by)?;
    Ok(d)
}

#[pymethods]
impl Models {
    /// Opens and validates a ``models.h5``.
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Models> {
        let models = py.detach(|| ModelSet::open(&path)).py_err()?;
        Ok(Models {
            models: Arc::new(models),
            path,
        })
    }

    /// The file the models were read from.
    #[getter]
    fn path(&self) -> String {
        self.path.display().to_string()
    }

    /// Pixels per spectrum (P).
    #[getter]
    fn pixels(&self) -> usize {
        self.models.pixels
    }

    /// Noise level of the statistics the experts were fitted on (the SNR
    /// of oracle routing on ``snr`` is taken at this level).
    #[getter]
    fn noise_level(&self) -> f64 {
        self.models.noise_level
    }

    /// Seed of those statistics.
    #[getter]
    fn seed(&self) -> u64 {
        self.models.seed
    }

    /// The partitions: dicts with ``name``, ``bins`` (bin names), ``slots``.
    #[getter]
    fn partitions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for pm in &self.models.partitions {
            let d = PyDict::new(py);
            d.set_item("name", &pm.partition.name)?;
            d.set_item("bins", &pm.partition.bin_names)?;
            d.set_item("slots", pm.partition.slots())?;
            list.append(d)?;
        }
        Ok(list)
    }

    /// The partition the gate routes to (None: no gate).
    #[getter]
    fn gate_partition(&self) -> Option<String> {
        self.models
            .gate
            .as_ref()
            .map(|g| g.gate.partition.name.clone())
    }

    /// What the experts were fitted on: statistics file, rows, shards, version, note.
    #[getter]
    fn provenance<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        record(py, &self.models.provenance)
    }

    /// An expert as a dict (``w``, ``intercept``, ``alpha``, ``n_train``,
    /// ``selected_by``): the global one (``group=None``), or
    /// ``(partition, bin)``; None when that bin has no expert.
    #[pyo3(signature = (group=None))]
    fn expert<'py>(
        &self,
        py: Python<'py>,
        group: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let m = &self.models;
        let Some(g) = group
            .filter(|g| !g.is_none() && g.extract::<String>().ok().as_deref() != Some("global"))
        else {
            return expert_dict(py, &m.global).map(Some);
        };
        let (p, b): (Bound<'py, PyAny>, Bound<'py, PyAny>) = g.extract().map_err(|_| {
            invalid(
                "group",
                "a group is None or \"global\", or (partition, bin)",
            )
        })?;
        let names: Vec<&str> = m
            .partitions
            .iter()
            .map(|p| p.partition.name.as_str())
            .collect();
        let pi = args::partition_index(&names, &p)?;
        let pm = &m.partitions[pi];
        let slot = args::slot_index(&pm.partition.bin_names, pm.partition.slots(), &b)?;
        pm.experts[slot]
            .as_ref()
            .map(|e| expert_dict(py, e))
            .transpose()
    }

    /// Predicts log g of each row of ``flux`` (N × P, or one row of P)
    /// through the library's router, as ``gramstream predict`` does:
    ///
    /// * ``"global"``: the global expert;
    /// * ``"oracle"``: the expert of the row's true bin in ``partition``
    ///   (default: the first), from ``teff`` and ``mh`` (T_eff × [M/H]) or
    ///   ``snr`` (SNR bins; see ``gramstream.snr``); rows outside every bin,
    ///   or in a bin without an expert, get the global expert; when the
    ///   models chose Ridge or LightGBM per bin of that partition, each
    ///   bin's chosen expert (the oracle-hybrid; LightGBM needs a
    ///   gramstream built with it, else ``GramstreamError``);
    /// * ``"hard_gate"`` / ``"soft_gate"``: the saved gate's most probable
    ///   bin's expert, or the mixture Σ p_k ŷ_k.
    ///
    /// Returns an array of N predictions (a float for one row); with
    /// ``return_bins=True`` also the bin each row went to (−1: the global
    /// expert). The rows are split over ``threads`` (0 = all cores); the
    /// result does not depend on it.
    #[pyo3(signature = (flux, *, routing="global", partition=None, teff=None, mh=None, snr=None, return_bins=false, threads=0))]
    #[allow(clippy::too_many_arguments)]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        flux: &Bound<'py, PyAny>,
        routing: &str,
        partition: Option<&Bound<'py, PyAny>>,
        teff: Option<&Bound<'py, PyAny>>,
        mh: Option<&Bound<'py, PyAny>>,
        snr: Option<&Bound<'py, PyAny>>,
        return_bins: bool,
        threads: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let m = &*self.models;
        let r = self::routing(m, routing, partition)?;
        let flux = floats(flux, "flux")?;
        let (rows, one_row) = match dims(&flux)[..] {
            [p] => ((1, p), true),
            [n, p] => ((n, p), false),
            ref d => {
                return Err(invalid(
                    "flux",
                    format!("an N × P array of spectra (or one spectrum of P values) is needed, this one has {} dimensions", d.len()),
                ))
            }
        };
        let ((n, p), x) = (rows, slice(&flux));
        if p != m.pixels {
            return Err(shape(
                "flux",
                format!("{} columns (the models' pixels)", m.pixels),
                p,
            ));
        }
        let teff = keys("teff", teff, n)?;
        let mh = keys("mh", mh, n)?;
        let snr = keys("snr", snr, n)?;
        if let Routing::Oracle { partition } = r {
            let part = &m.partitions[partition].partition;
            let missing = match part.kind {
                PartitionKind::TeffMh { .. } if teff.is_none() || mh.is_none() => {
                    Some("teff and mh")
                }
                PartitionKind::Snr { .. } if snr.is_none() => Some("snr"),
                _ => None,
            };
            if let Some(what) = missing {
                return Err(invalid(
                    "routing",
                    format!(
                        "oracle routing on {} needs {what} (one value per row)",
                        part.name
                    ),
                ));
            }
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(invalid(
                "flux",
                format!("row {}, pixel {}: non-finite value {}", i / p, i % p, x[i]),
            ));
        }
        let threads = args::threads(threads);
        // Oracle routing on the partition whose bins chose their expert
        // kind is the oracle-hybrid: LightGBM for the bins that chose it,
        // over all rows of a bin at once, after Ridge's routing.
        let hybrid = match (r, &m.bin_experts) {
            (Routing::Oracle { partition }, Some(be)) if be.partition == partition => Some((
                partition,
                gramstream::route::LoadedExperts::load(be, threads).py_err()?,
            )),
            _ => None,
        };
        let router = Router::new(m)
            .with_experts(hybrid.as_ref().map(|(_, e)| e))
            .py_err()?;
        let at = |v: &Option<Vec<f64>>, i: usize| v.as_ref().map_or(f64::NAN, |v| v[i]);
        let row_keys: Vec<RowKeys> = (0..n)
            .map(|i| RowKeys {
                teff: at(&teff, i),
                mh: at(&mh, i),
                snr: at(&snr, i),
            })
            .collect();
        let (pred, bins): (Vec<f64>, Vec<i64>) = py
            .detach(|| {
                threads.install(|| -> gramstream::Result<(Vec<f64>, Vec<i64>)> {
                    use rayon::prelude::*;
                    let (mut pred, mut routes): (Vec<f64>, Vec<Route>) = x
                        .par_chunks(p.max(1))
                        .zip(&row_keys)
                        .map(|(row, k)| router.predict(r, row, k))
                        .unzip();
                    if let Some((partition, _)) = &hybrid {
                        router.hybrid_rows(*partition, &row_keys, x, &mut pred, &mut routes)?;
                    }
                    Ok((pred, routes.into_iter().map(bin_of).collect()))
                })?
            })
            .py_err()?;
        let pred_out: Bound<'py, PyAny> = if one_row {
            pred[0].into_pyobject(py)?.into_any()
        } else {
            vec1(py, pred).into_any()
        };
        if return_bins {
            let bins_out: Bound<'py, PyAny> = if one_row {
                bins[0].into_pyobject(py)?.into_any()
            } else {
                PyArray1::from_vec(py, bins).into_any()
            };
            Ok((pred_out, bins_out).into_pyobject(py)?.into_any())
        } else {
            Ok(pred_out)
        }
    }

    /// Predicts every row of shard files, streamed chunk by chunk, as
    /// ``gramstream predict`` does (same options). Returns a dict of arrays
    /// with one entry per row: ``shard`` (position in ``shards``), ``row``,
    /// ``id`` and ``log_g`` (NaN when the shard has no such column),
    /// ``prediction``, ``bin`` (−1: the global expert); and ``summary``
    /// (rows per bin, R², MAE, RMSE when log g is known).
    #[pyo3(signature = (shards, *, routing="global", partition=None, noise=None, seed=None, stored_noisy=false, chunk_rows=256, first_shard_index=0, columns=None, read_path="auto", progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn predict_shards<'py>(
        &self,
        py: Python<'py>,
        shards: Vec<PathBuf>,
        routing: &str,
        partition: Option<&Bound<'py, PyAny>>,
        noise: Option<f64>,
        seed: Option<u64>,
        stored_noisy: bool,
        chunk_rows: usize,
        first_shard_index: u64,
        columns: Option<Vec<(String, String)>>,
        read_path: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let m = &*self.models;
        let shards = args::shards(shards)?;
        let mut opts = PredictOptions::new(m);
        if let Some(cols) = columns {
            let specs: Vec<String> = cols.iter().map(|(r, c)| format!("{r}={c}")).collect();
            opts.layout
                .columns
                .apply_renames(specs.iter().map(String::as_str))
                .py_err()?;
        }
        opts.routing = self::routing(m, routing, partition)?;
        opts.spectra =
            match (noise, stored_noisy) {
                (Some(_), true) => return Err(invalid(
                    "noise",
                    "noise= draws the noise; stored_noisy=True reads the stored array: choose one",
                )),
                (Some(level), false) => SpectraChoice::Noise(
                    gramstream::NoiseModel::new(level, seed.unwrap_or(m.seed)).py_err()?,
                ),
                (None, _) if seed.is_some() => {
                    return Err(invalid("seed", "seed= applies with noise="))
                }
                (None, true) => SpectraChoice::StoredNoisy,
                (None, false) => SpectraChoice::Auto,
            };
        if chunk_rows == 0 {
            return Err(invalid("chunk_rows", "must be at least 1 row"));
        }
        opts.chunk_rows = chunk_rows;
        opts.first_shard_index = first_shard_index;
        opts.read_path = match read_path {
            "auto" => ReadPath::Auto,
            "hdf5" => ReadPath::Hdf5,
            other => {
                return Err(invalid(
                    "read_path",
                    format!("unknown read path {other:?}: \"auto\" or \"hdf5\""),
                ))
            }
        };
        let total = py
            .detach(|| -> gramstream::Result<u64> {
                let mut t = 0u64;
                for s in &shards {
                    t += gramstream::source::Shard::open(s, &opts.layout)?.rows() as u64;
                }
                Ok(t)
            })
            .py_err()?;
        let prog = Progress::new(progress, total);
        let mut rows: Vec<PredictedRow> = Vec::with_capacity(total as usize);
        let summary = py.detach(|| {
            predict(
                m,
                &shards,
                &opts,
                &mut |row: &PredictedRow| {
                    rows.push(*row);
                    Ok(())
                },
                &|n| prog.add(n),
            )
        });
        prog.finish()?;
        let summary = summary.py_err()?;
        let d = PyDict::new(py);
        let col = |f: &dyn Fn(&PredictedRow) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
        d.set_item(
            "shard",
            PyArray1::from_vec(py, rows.iter().map(|r| r.shard as i64).collect::<Vec<_>>()),
        )?;
        d.set_item(
            "row",
            PyArray1::from_vec(py, rows.iter().map(|r| r.row as i64).collect::<Vec<_>>()),
        )?;
        d.set_item("id", vec1(py, col(&|r| r.id.unwrap_or(f64::NAN))))?;
        d.set_item("log_g", vec1(py, col(&|r| r.log_g.unwrap_or(f64::NAN))))?;
        d.set_item("prediction", vec1(py, col(&|r| r.prediction)))?;
        d.set_item(
            "bin",
            PyArray1::from_vec(py, rows.iter().map(|r| bin_of(r.route)).collect::<Vec<_>>()),
        )?;
        d.set_item("summary", record(py, &summary)?)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let m = &self.models;
        let parts: Vec<&str> = m
            .partitions
            .iter()
            .map(|p| p.partition.name.as_str())
            .collect();
        format!(
            "<Models {}: {} pixels, partitions {}, {}>",
            self.path.display(),
            m.pixels,
            if parts.is_empty() {
                "none".to_string()
            } else {
                parts.join(", ")
            },
            if m.gate.is_some() {
                "with a gate"
            } else {
                "no gate"
            }
        )
    }
}

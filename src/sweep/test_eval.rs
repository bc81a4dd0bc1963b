//! Scoring every (group, α) model of a sweep on a test shard, streamed.
//!
//! Each test row is routed by its true keys — T_eff, [M/H] from the params
//! table, SNR = ‖flux‖₂ / (L‖error‖₂) of the noiseless flux with the
//! statistics' noise level L (as the pass computes it) — to the global model
//! and to one slot of each partition, and predicted by that group's models
//! for every α at once (one matrix product per group and chunk). Memory is
//! one chunk plus the models; the test shard is never held whole.

use std::path::PathBuf;

use faer::Mat;
use serde::Serialize;

use super::{GroupId, GroupModels, GroupSweep, Progress};
use crate::eval::Scores;
use crate::noise::NoiseModel;
use crate::partition::RowKeys;
use crate::rows::{key_columns, ModelSpectra, RowSpec, RowStream};
use crate::source::{Chunk, ReadOptions, Shard};
use crate::stats::StatsHeader;
use crate::threads::Pool;
use crate::{Error, Result};

/// Shard index the test noise streams use (distinct from every training
/// shard's, so equal seeds never give training and test rows the same noise).
pub const TEST_SHARD_INDEX: u64 = crate::noise::RESERVED_SHARD_INDEX;

/// A test shard and how to get its noisy spectra.
#[derive(Debug, Clone)]
pub struct TestSpec {
    /// Path of the test shard (HDF5) to stream.
    pub path: PathBuf,
    /// None: the stored `noisy` array; Some: flux + this noise (its own seed).
    pub noise: Option<NoiseModel>,
    /// Rows per chunk.
    pub chunk_rows: usize,
}

/// What the test evaluation saw.
#[derive(Debug, Clone, Serialize)]
pub struct TestSummary {
    /// Path of the test shard, from [`TestSpec::path`].
    pub path: String,
    /// Rows of the test shard read and scored (all of them).
    pub rows: u64,
    /// Where the noisy spectra came from.
    pub spectra: String,
    /// Per partition: (name, rows outside every bin). Those rows still count
    /// for the global model; a partition with an "outside bins" slot scores
    /// them with that slot's model.
    pub outside: Vec<(String, u64)>,
}

/// Where a test row lands and what it is: true keys, true log g.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TestRow {
    /// T_eff, [M/H] from the params table; SNR of the noiseless flux at the
    /// statistics' noise level (as the pass computes it).
    pub keys: RowKeys,
    /// The true log g.
    pub log_g: f64,
}

/// Streams the test shard of `spec` chunk by chunk: for each chunk, the
/// rows' keys and true log g and the chunk whose `flux` holds the noisy
/// spectra (stored `noisy`, or flux + drawn noise). Returns the rows read
/// and where the spectra came from.
pub(crate) fn stream(
    spec: &TestSpec,
    header: &StatsHeader,
    mut on_chunk: impl FnMut(&[TestRow], &Chunk) -> Result<()>,
) -> Result<(u64, String)> {
    let layout = &header.layout;
    let shard = Shard::open(&spec.path, layout)?;
    let p = header.pixels;
    if shard.pixels() != p {
        return Err(Error::shape(
            format!("{}: test spectra", spec.path.display()),
            format!("{p} pixels (as the statistics)"),
            format!("{} pixels", shard.pixels()),
        ));
    }
    let (spectra, stored) = match spec.noise {
        Some(noise) => (ModelSpectra::Draw(noise), false),
        None if shard.has_noisy() => (ModelSpectra::Stored, true),
        None => {
            return Err(Error::InvalidParameter {
                name: "test",
                problem: format!(
                    "{} has no stored `{}` array: give the test noise level and seed to draw it",
                    spec.path.display(),
                    layout.noisy
                ),
            })
        }
    };
    // Test rows are keyed like training rows: SNR at the statistics' level.
    let rows_spec = RowSpec {
        spectra,
        snr_level: Some(header.noise.level),
        parallel: false,
    };
    let read = ReadOptions {
        spectra: rows_spec.reader_spectra(stored),
        columns: key_columns(layout),
        ..Default::default()
    };
    let reader = shard.reader(TEST_SHARD_INDEX, &read)?;
    let mut stream = RowStream::new(vec![reader], rows_spec, spec.chunk_rows.max(1), 2)?;
    let mut rows = Vec::new();
    let mut done = 0u64;
    while let Some(chunk) = stream.next() {
        let chunk = chunk?;
        rows.clear();
        rows.extend((0..chunk.rows).map(|r| TestRow {
            keys: chunk.keys(r),
            log_g: chunk.log_g(r),
        }));
        on_chunk(&rows, &chunk)?;
        done += chunk.rows as u64;
        stream.recycle(chunk);
    }
    let spectra = match spec.noise {
        None => format!("stored `{}`", layout.noisy),
        Some(n) => format!("flux + noise level {} seed {}", n.level, n.seed),
    };
    Ok((done, spectra))
}

/// Scores every (group, α) model of a sweep on test rows as they stream by:
/// each row goes to the global group and to its slot of every partition
/// (the "outside bins" slot where the partition has one), and each group's
/// models predict its rows for every α at once (one matrix product per
/// group and chunk). A consumer of [`stream`].
pub(crate) struct CurveScorer<'a> {
    header: &'a StatsHeader,
    models: &'a [GroupModels],
    pool: &'a Pool,
    /// Group index of (partition, slot).
    slot_group: Vec<Vec<usize>>,
    acc: Vec<Vec<Scores>>,
    n_test: Vec<u64>,
    outside: Vec<u64>,
    members: Vec<Vec<usize>>,
    rows: u64,
}

impl<'a> CurveScorer<'a> {
    pub(crate) fn new(
        header: &'a StatsHeader,
        ids: &[GroupId],
        models: &'a [GroupModels],
        alphas: usize,
        pool: &'a Pool,
    ) -> Self {
        let parts = &header.partitions.partitions;
        let mut slot_group: Vec<Vec<usize>> =
            parts.iter().map(|p| vec![usize::MAX; p.slots()]).collect();
        for (g, id) in ids.iter().enumerate() {
            if let Some(pi) = id.partition {
                slot_group[pi][id.slot] = g;
            }
        }
        CurveScorer {
            header,
            models,
            pool,
            slot_group,
            acc: vec![vec![Scores::around(header.shift_y); alphas]; ids.len()],
            n_test: vec![0; ids.len()],
            outside: vec![0; parts.len()],
            members: vec![Vec::new(); ids.len()],
            rows: 0,
        }
    }

    /// Scores one chunk of test rows (`x.flux`: their noisy spectra).
    pub(crate) fn add(&mut self, rows: &[TestRow], x: &Chunk) {
        let p = self.header.pixels;
        let parts = &self.header.partitions.partitions;
        for m in self.members.iter_mut() {
            m.clear();
        }
        for (r, row) in rows.iter().enumerate() {
            self.members[0].push(r);
            for (pi, part) in parts.iter().enumerate() {
                let slot = match part.bin(&row.keys) {
                    Some(b) => Some(b),
                    None => {
                        self.outside[pi] += 1;
                        (!part.covers_all()).then(|| part.bins())
                    }
                };
                if let Some(s) = slot {
                    self.members[self.slot_group[pi][s]].push(r);
                }
            }
        }
        for (g, members) in self.members.iter().enumerate() {
            if members.is_empty() {
                continue;
            }
            self.n_test[g] += members.len() as u64;
            let model = &self.models[g];
            let xm = Mat::from_fn(members.len(), p, |i, j| x.flux[members[i] * p + j]);
            let mut pred = Mat::<f64>::zeros(members.len(), model.intercept.len());
            self.pool.run(|| {
                faer::linalg::matmul::matmul(
                    pred.as_mut(),
                    faer::Accum::Replace,
                    xm.as_ref(),
                    model.w.as_ref(),
                    1.0,
                    self.pool.par(),
                )
            });
            for (a, acc) in self.acc[g].iter_mut().enumerate() {
                if !model.valid[a] {
                    continue;
                }
                let b = model.intercept[a];
                for (i, &r) in members.iter().enumerate() {
                    acc.add(rows[r].log_g, pred[(i, a)] + b);
                }
            }
        }
        self.rows += rows.len() as u64;
    }

    /// Rows scored so far.
    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// Fills each group's `points[a].test` and `n_test`.
    pub(crate) fn finish(
        self,
        groups: &mut [GroupSweep],
        path: &std::path::Path,
        spectra: String,
    ) -> TestSummary {
        for (g, grp) in groups.iter_mut().enumerate() {
            grp.n_test += self.n_test[g];
            for (a, pt) in grp.points.iter_mut().enumerate() {
                if self.models[g].valid[a] {
                    pt.test = self.acc[g][a].metrics();
                }
            }
        }
        TestSummary {
            path: path.display().to_string(),
            rows: self.rows,
            spectra,
            outside: self
                .header
                .partitions
                .partitions
                .iter()
                .zip(&self.outside)
                .map(|(p, &n)| (p.name.clone(), n))
                .collect(),
        }
    }
}

/// Scores every valid (group, α) model on the test shard and fills each
/// group's `points[a].test` and `n_test`.
pub(crate) fn score(
    spec: &TestSpec,
    header: &StatsHeader,
    models: &[GroupModels],
    alphas: usize,
    pool: &Pool,
    groups: &mut [GroupSweep],
    cancel: &crate::threads::Cancel,
    progress: &mut impl FnMut(Progress<'_>),
) -> Result<TestSummary> {
    let ids: Vec<GroupId> = groups.iter().map(|g| g.id).collect();
    let total = Shard::open(&spec.path, &header.layout)?.rows() as u64;
    let mut scorer = CurveScorer::new(header, &ids, models, alphas, pool);
    let (_, spectra) = stream(spec, header, |rows, x| {
        cancel.check()?;
        scorer.add(rows, x);
        progress(Progress::TestRows {
            done: scorer.rows(),
            total,
        });
        Ok(())
    })?;
    Ok(scorer.finish(groups, &spec.path, spectra))
}

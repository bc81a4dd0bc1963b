//! Scoring every (group, α) model of a sweep on a test shard, streamed.
//!
//! Each test row is routed by its true keys — T_eff, [M/H] from the params
//! table, SNR = ‖flux‖₂ / (L‖error‖₂) of the noiseless flux with the
//! statistics' noise level L (as the pass computes it) — to the global model
//! and to one slot of each partition, and predicted by that group's models
//! for every α at once (one matrix product per group and chunk). Memory is
//! one chunk plus the models; the test shard is never held whole.

use std::path::PathBuf;

use faer::{Mat, Par};
use serde::Serialize;

use super::{GroupId, GroupModels, GroupSweep, Progress};
use crate::eval::Scores;
use crate::noise::NoiseModel;
use crate::partition::RowKeys;
use crate::source::{plan_iter, Chunk, ChunkSource, ReadOptions, Shard, Spectra};
use crate::stats::StatsHeader;
use crate::{Error, Result};

/// Shard index the test noise streams use (distinct from every training
/// shard's, so equal seeds never give training and test rows the same noise).
pub const TEST_SHARD_INDEX: u64 = u64::MAX;

/// A test shard and how to get its noisy spectra.
#[derive(Debug, Clone)]
pub struct TestSpec {
    /// The shard.
    pub path: PathBuf,
    /// None: the stored `noisy` array; Some: flux + this noise (its own seed).
    pub noise: Option<NoiseModel>,
    /// Rows per chunk.
    pub chunk_rows: usize,
}

/// What the test evaluation saw.
#[derive(Debug, Clone, Serialize)]
pub struct TestSummary {
    /// The shard.
    pub path: String,
    /// Rows scored.
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
pub struct TestRow {
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
pub fn stream(
    spec: &TestSpec,
    header: &StatsHeader,
    mut on_chunk: impl FnMut(&[TestRow], &Chunk) -> Result<()>,
) -> Result<(u64, String)> {
    let layout = &header.layout;
    let shard = Shard::open(&spec.path, layout)?;
    let p = header.pixels;
    if shard.pixels() != p {
        return Err(Error::Shape(format!(
            "{}: test spectra have {} pixels, the statistics {p}",
            spec.path.display(),
            shard.pixels()
        )));
    }
    let columns = vec![
        layout.columns.teff.clone(),
        layout.columns.mh.clone(),
        layout.columns.log_g.clone(),
    ];
    let flux_opts = ReadOptions {
        spectra: Spectra::FluxError,
        columns: columns.clone(),
        ..Default::default()
    };
    let mut flux_reader = shard.reader(TEST_SHARD_INDEX, &flux_opts)?;
    let mut noisy_reader = match spec.noise {
        Some(_) => None,
        None => {
            if !shard.has_noisy() {
                return Err(Error::InvalidParameter {
                    name: "test",
                    problem: format!(
                        "{} has no stored `{}` array: give the test noise level and seed to draw it",
                        spec.path.display(),
                        layout.noisy
                    ),
                });
            }
            Some(shard.reader(
                TEST_SHARD_INDEX,
                &ReadOptions {
                    spectra: Spectra::Noisy,
                    columns,
                    ..Default::default()
                },
            )?)
        }
    };
    let level = if header.noise.level > 0.0 {
        header.noise.level
    } else {
        1.0
    };
    let (mut fc, mut nc) = (Chunk::default(), Chunk::default());
    let mut rows = Vec::new();
    let mut done = 0u64;
    for task in plan_iter(vec![shard.rows()], spec.chunk_rows.max(1))? {
        flux_reader.read_chunk(task.rows.clone(), &mut fc)?;
        rows.clear();
        for r in 0..fc.rows {
            let f = fc.flux_row(r);
            let e = &fc.error[r * p..(r + 1) * p];
            let nf = f.iter().map(|v| v * v).sum::<f64>().sqrt();
            let ne = e.iter().map(|v| v * v).sum::<f64>().sqrt();
            let prm = fc.params_row(r);
            rows.push(TestRow {
                keys: RowKeys {
                    teff: prm[0],
                    mh: prm[1],
                    snr: nf / (level * ne),
                },
                log_g: prm[2],
            });
        }
        let x: &Chunk = match (&mut noisy_reader, spec.noise) {
            (Some(reader), _) => {
                reader.read_chunk(task.rows, &mut nc)?;
                &nc
            }
            (None, Some(noise)) => {
                noise.apply_rows(
                    TEST_SHARD_INDEX,
                    fc.start as u64,
                    p,
                    &mut fc.flux,
                    &fc.error,
                    false,
                );
                &fc
            }
            (None, None) => unreachable!("a reader or a noise model"),
        };
        on_chunk(&rows, x)?;
        done += fc.rows as u64;
    }
    let spectra = match spec.noise {
        None => format!("stored `{}`", layout.noisy),
        Some(n) => format!("flux + noise level {} seed {}", n.level, n.seed),
    };
    Ok((done, spectra))
}

/// Scores every valid (group, α) model on the test shard and fills each
/// group's `points[a].test` and `n_test`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn score(
    spec: &TestSpec,
    header: &StatsHeader,
    ids: &[GroupId],
    models: &[GroupModels],
    alphas: &[f64],
    par: Par,
    groups: &mut [GroupSweep],
    progress: &mut impl FnMut(Progress<'_>),
) -> Result<TestSummary> {
    let p = header.pixels;
    let parts = &header.partitions.partitions;
    // group index of (partition, slot)
    let mut slot_group = vec![vec![usize::MAX; 0]; parts.len()];
    for (pi, part) in parts.iter().enumerate() {
        slot_group[pi] = vec![usize::MAX; part.slots()];
    }
    for (g, id) in ids.iter().enumerate() {
        if let Some(pi) = id.partition {
            slot_group[pi][id.slot] = g;
        }
    }
    let mut acc = vec![vec![Scores::around(header.shift_y); alphas.len()]; ids.len()];
    let mut outside = vec![0u64; parts.len()];
    let total = Shard::open(&spec.path, &header.layout)?.rows() as u64;
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); ids.len()];
    let mut done = 0u64;
    let (_, spectra) = stream(spec, header, |rows, x| {
        for m in members.iter_mut() {
            m.clear();
        }
        for (r, row) in rows.iter().enumerate() {
            members[0].push(r);
            for (pi, part) in parts.iter().enumerate() {
                let slot = match part.bin(&row.keys) {
                    Some(b) => Some(b),
                    None => {
                        outside[pi] += 1;
                        (!part.covers_all()).then(|| part.bins())
                    }
                };
                if let Some(s) = slot {
                    members[slot_group[pi][s]].push(r);
                }
            }
        }
        for (g, members) in members.iter().enumerate() {
            if members.is_empty() {
                continue;
            }
            groups[g].n_test += members.len() as u64;
            let xm = Mat::from_fn(members.len(), p, |i, j| x.flux[members[i] * p + j]);
            let mut pred = Mat::<f64>::zeros(members.len(), alphas.len());
            faer::linalg::matmul::matmul(
                pred.as_mut(),
                faer::Accum::Replace,
                xm.as_ref(),
                models[g].w.as_ref(),
                1.0,
                par,
            );
            for (a, acc) in acc[g].iter_mut().enumerate() {
                if !models[g].valid[a] {
                    continue;
                }
                let b = models[g].intercept[a];
                for (i, &r) in members.iter().enumerate() {
                    acc.add(rows[r].log_g, pred[(i, a)] + b);
                }
            }
        }
        done += rows.len() as u64;
        progress(Progress::TestRows { done, total });
        Ok(())
    })?;
    for (g, grp) in groups.iter_mut().enumerate() {
        for (a, pt) in grp.points.iter_mut().enumerate() {
            if models[g].valid[a] {
                pt.test = acc[g][a].metrics();
            }
        }
    }
    Ok(TestSummary {
        path: spec.path.display().to_string(),
        rows: done,
        spectra,
        outside: parts
            .iter()
            .zip(&outside)
            .map(|(p, &n)| (p.name.clone(), n))
            .collect(),
    })
}

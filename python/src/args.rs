//! Arguments as Python passes them, made into the library's values with
//! the library's checks (and its messages).

use std::path::PathBuf;

use gramstream::partition::{Partition, PartitionSet};
use gramstream::source::NonFinitePolicy;
use gramstream::stats::derive::Group;
use gramstream::stats::pass::AccumulateOptions;
use gramstream::stats::{Mode, StatsHeader};
use gramstream::{Layout, Threads};
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::errors::{invalid, IntoPy};

/// The options `accumulate` and `Accumulator` share, as Python passes them.
pub(crate) struct PassArgs<'a, 'py> {
    pub(crate) noise: f64,
    pub(crate) seed: u64,
    pub(crate) partitions: &'a [String],
    pub(crate) folds: usize,
    pub(crate) mode: Option<&'a str>,
    pub(crate) mem_budget: Option<&'a Bound<'py, PyAny>>,
    pub(crate) threads: usize,
    pub(crate) first_shard_index: u64,
    pub(crate) gate_sample: usize,
    pub(crate) block_rows: Option<usize>,
    pub(crate) skip_bad_rows: bool,
    pub(crate) precision: &'a str,
}

/// The pass's options from them, checked with the library's checks (the
/// reading options — layout, chunk size, read path — at their defaults).
pub(crate) fn pass_options(a: PassArgs<'_, '_>) -> PyResult<AccumulateOptions> {
    if a.block_rows == Some(0) {
        return Err(invalid("block_rows", "must be at least 1 row"));
    }
    Ok(AccumulateOptions {
        partitions: partition_set(a.partitions, a.folds)?,
        noise: gramstream::NoiseModel::new(a.noise, a.seed).py_err()?,
        threads: threads(a.threads),
        block_rows: a.block_rows,
        mem_budget: mem_budget(a.mem_budget)?,
        mode: mode(a.mode)?,
        gate_sample: a.gate_sample,
        non_finite: if a.skip_bad_rows {
            NonFinitePolicy::SkipRow
        } else {
            NonFinitePolicy::Error
        },
        first_shard_index: a.first_shard_index,
        precision: a.precision.parse().map_err(|p| invalid("precision", p))?,
        ..Default::default()
    })
}

/// `threads`: a count, 0 = all cores (as on the command line).
pub(crate) fn threads(n: usize) -> Threads {
    Threads::new(n)
}

/// `mem_budget`: None (80 % of available memory), bytes as an int, or a
/// size such as `"8GiB"`, `"800M"` (the CLI's `--mem-budget`).
pub(crate) fn mem_budget(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    let Some(v) = value.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    if let Ok(s) = v.cast::<PyString>() {
        let s = s.to_cow()?;
        return gramstream::experiment::config::parse_size(&s)
            .map(Some)
            .map_err(|p| invalid("mem_budget", p));
    }
    match v.extract::<u64>() {
        Ok(0) => Err(invalid(
            "mem_budget",
            "0 bytes: the budget must be positive",
        )),
        Ok(b) if b > gramstream::experiment::config::MAX_SIZE => Err(invalid(
            "mem_budget",
            format!("{b} bytes is more than 1 EiB"),
        )),
        Ok(b) => Ok(Some(b)),
        Err(_) => Err(invalid(
            "mem_budget",
            format!(
                "{} is not a size: give bytes (int) or a string such as \"8GiB\"",
                v.repr()?
            ),
        )),
    }
}

/// Partitions by name (`teff_mh`/`teff-mh`, `snr`).
pub(crate) fn partitions(names: &[String]) -> PyResult<Vec<Partition>> {
    names
        .iter()
        .map(|n| Partition::by_name(n))
        .collect::<gramstream::Result<Vec<_>>>()
        .py_err()
}

/// A validated set of partitions and folds.
pub(crate) fn partition_set(names: &[String], folds: usize) -> PyResult<PartitionSet> {
    PartitionSet::new(partitions(names)?, folds).py_err()
}

/// `mode`: None/`"auto"` (cells when they fit the budget), `"cells"`, `"per_bin"`.
pub(crate) fn mode(mode: Option<&str>) -> PyResult<Option<Mode>> {
    match mode {
        None | Some("auto") => Ok(None),
        Some("cells") => Ok(Some(Mode::Cells)),
        Some("per_bin") | Some("per-bin") => Ok(Some(Mode::PerBin)),
        Some(other) => Err(invalid(
            "mode",
            format!("unknown mode {other:?}: use None (auto), \"cells\" or \"per_bin\""),
        )),
    }
}

/// The default layout with params columns renamed: `{"log_g": "logg"}`
/// (roles `teff`, `mh`, `log_g`, as `--column ROLE=COLUMN`).
pub(crate) fn layout(columns: Option<Vec<(String, String)>>) -> PyResult<Layout> {
    let mut layout = Layout::default();
    if let Some(cols) = columns {
        let specs: Vec<String> = cols.iter().map(|(r, c)| format!("{r}={c}")).collect();
        layout
            .columns
            .apply_renames(specs.iter().map(String::as_str))
            .py_err()?;
    }
    Ok(layout)
}

/// Shard paths: at least one.
pub(crate) fn shards(paths: Vec<PathBuf>) -> PyResult<Vec<PathBuf>> {
    if paths.is_empty() {
        return Err(invalid("shards", "no shard given"));
    }
    Ok(paths)
}

/// The position of the partition `spec` (a name or an index) in `names`.
pub(crate) fn partition_index(names: &[&str], spec: &Bound<'_, PyAny>) -> PyResult<usize> {
    let norm = |s: &str| s.replace('-', "_");
    if let Ok(i) = spec.extract::<usize>() {
        if i < names.len() {
            return Ok(i);
        }
        return Err(invalid(
            "partition",
            format!("partition {i} of {}", names.len()),
        ));
    }
    let name: String = spec.extract().map_err(|_| {
        invalid(
            "partition",
            "a partition is its name (\"teff_mh\", \"snr\") or its index",
        )
    })?;
    names
        .iter()
        .position(|n| norm(n) == norm(&name))
        .ok_or_else(|| {
            invalid(
                "partition",
                format!("no partition {name:?}; there are: {}", names.join(", ")),
            )
        })
}

/// The slot of `spec` (a bin index, a bin name, or `"outside bins"` for
/// the unbinned slot) in a partition with these bin names and slots.
pub(crate) fn slot_index(
    bin_names: &[String],
    slots: usize,
    spec: &Bound<'_, PyAny>,
) -> PyResult<usize> {
    if let Ok(i) = spec.extract::<usize>() {
        if i < slots {
            return Ok(i);
        }
        return Err(invalid(
            "group",
            format!(
                "bin {i} of {slots} slots (bins 0..{}{})",
                bin_names.len(),
                if slots > bin_names.len() {
                    format!(", outside bins = {}", bin_names.len())
                } else {
                    String::new()
                }
            ),
        ));
    }
    let name: String = spec
        .extract()
        .map_err(|_| invalid("group", "a bin is its index or its name"))?;
    if let Some(i) = bin_names.iter().position(|b| *b == name) {
        return Ok(i);
    }
    if slots > bin_names.len() && (name == "outside bins" || name == "outside") {
        return Ok(bin_names.len());
    }
    Err(invalid(
        "group",
        format!(
            "no bin {name:?}; the bins are: {}{}",
            bin_names.join(", "),
            if slots > bin_names.len() {
                ", outside bins"
            } else {
                ""
            }
        ),
    ))
}

/// A group of rows of the statistics: None or `"global"`, or a
/// `(partition, bin)` tuple (see [`partition_index`], [`slot_index`]).
pub(crate) fn group(header: &StatsHeader, spec: Option<&Bound<'_, PyAny>>) -> PyResult<Group> {
    let Some(spec) = spec.filter(|s| !s.is_none()) else {
        return Ok(Group::Global);
    };
    if let Ok(s) = spec.extract::<String>() {
        if s == "global" {
            return Ok(Group::Global);
        }
    }
    let tuple = spec.cast::<PyTuple>().ok().filter(|t| t.len() == 2).ok_or_else(|| {
        invalid(
            "group",
            "a group is None or \"global\", or (partition, bin): e.g. (\"teff_mh\", 4), (\"snr\", \"H\")",
        )
    })?;
    let set = &header.partitions;
    let names: Vec<&str> = set.partitions.iter().map(|p| p.name.as_str()).collect();
    let partition = partition_index(&names, &tuple.get_item(0)?)?;
    let p = &set.partitions[partition];
    let slot = slot_index(&p.bin_names, p.slots(), &tuple.get_item(1)?)?;
    Ok(Group::Bin { partition, slot })
}

/// The group's label: `global`, or `partition/bin name`.
pub(crate) fn group_label(header: &StatsHeader, group: Group) -> String {
    match group {
        Group::Global => "global".into(),
        Group::Bin { partition, slot } => format!(
            "{}/{}",
            header.partitions.partitions[partition].name,
            gramstream::sweep::slot_name(header, partition, slot)
        ),
    }
}

/// α values: finite and ≥ 0 (the library's rule for a model).
pub(crate) fn alphas(values: &[f64]) -> PyResult<()> {
    match values.iter().find(|a| !(a.is_finite() && **a >= 0.0)) {
        Some(a) => Err(invalid(
            "alpha",
            format!("α must be finite and ≥ 0, got {a}"),
        )),
        None => Ok(()),
    }
}

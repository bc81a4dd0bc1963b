//! The sweep's tables: `sweep.csv` (DESIGN §7 contract) and `sweep.json`.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::Sweep;
use crate::output::Staged;
use crate::{Error, Result};

/// The contract columns of `sweep.csv`, then `bin_name` and `selected`.
pub(crate) const CSV_HEADER: &str = "partition,bin,alpha,n_train,train_r2,dof,gcv,cv_mse,n_test,test_r2,test_mae,test_rmse,bin_name,selected";

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

fn quoted(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes one row per (group, α); empty fields where not computed.
pub fn write_csv(sweep: &Sweep, mut out: impl Write) -> std::io::Result<()> {
    writeln!(out, "{CSV_HEADER}")?;
    for g in &sweep.groups {
        for (a, pt) in g.points.iter().enumerate() {
            let t = pt.test;
            writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                g.partition,
                g.bin,
                pt.alpha,
                g.n_train,
                num(pt.train_r2),
                num(pt.dof),
                num(pt.gcv),
                pt.cv_mse.map(num).unwrap_or_default(),
                if sweep.test.is_some() {
                    g.n_test.to_string()
                } else {
                    String::new()
                },
                t.map(|m| num(m.r2)).unwrap_or_default(),
                t.map(|m| num(m.mae)).unwrap_or_default(),
                t.map(|m| num(m.rmse)).unwrap_or_default(),
                quoted(&g.name),
                u8::from(g.selected == Some(a)),
            )?;
        }
    }
    Ok(())
}

/// Writes `sweep.json`: schema, the grid, every group with its points,
/// selection and notes, the test summary and timings. Non-finite values
/// become `null`.
pub(crate) fn write_json(sweep: &Sweep, stats: &str, out: impl Write) -> std::io::Result<()> {
    let mut v = serde_json::to_value(sweep)?;
    if let Some(obj) = v.as_object_mut() {
        obj.insert("schema".into(), "gramstream.sweep/1".into());
        obj.insert("statistics".into(), stats.into());
    }
    serde_json::to_writer_pretty(out, &v)?;
    Ok(())
}

/// Writes one PNG per partition (and one for the global model) into `dir`:
/// per group, R² against α — training, GCV (1 − GCV/Var y), CV
/// (1 − CV MSE/Var y) and test — with the selected α marked. Returns the
/// files written.
pub(crate) fn write_plots(sweep: &Sweep, dir: &Path) -> Result<Vec<PathBuf>> {
    use crate::plot::{colors, log_x_panels, Panel, Series};
    let mut names: Vec<&str> = vec![];
    for g in &sweep.groups {
        if !names.contains(&g.partition.as_str()) {
            names.push(&g.partition);
        }
    }
    let mut files = vec![];
    for name in names {
        let panels: Vec<Panel> = sweep
            .groups
            .iter()
            .filter(|g| g.partition == name)
            .map(|g| {
                let var = g.y_var;
                let line =
                    |label: &str, rgb, f: &dyn Fn(&super::AlphaPoint) -> Option<f64>| Series {
                        label: label.to_string(),
                        rgb,
                        points: g
                            .points
                            .iter()
                            .map(|p| (p.alpha, f(p).unwrap_or(f64::NAN)))
                            .collect(),
                    };
                let mut series = vec![
                    line("train", colors::GREY, &|p| Some(p.train_r2)),
                    line("GCV", colors::BLUE, &|p| Some(1.0 - p.gcv / var)),
                ];
                if g.points.iter().any(|p| p.cv_mse.is_some()) {
                    series.push(line("CV", colors::ORANGE, &|p| {
                        p.cv_mse.map(|m| 1.0 - m / var)
                    }));
                }
                if g.points.iter().any(|p| p.test.is_some()) {
                    series.push(line("test", colors::GREEN, &|p| p.test.map(|t| t.r2)));
                }
                let title = if g.partition == "global" {
                    format!("global (n = {})", g.n_train)
                } else {
                    format!("{} {}: {} (n = {})", g.partition, g.bin, g.name, g.n_train)
                };
                Panel {
                    title,
                    series,
                    marker: g.selected_point().map(|p| {
                        let by = match g.selected_by {
                            Some(super::Select::Gcv) => "GCV",
                            Some(super::Select::Fixed) => "fixed",
                            _ => "CV",
                        };
                        (p.alpha, format!("α = {:.1e} ({by})", p.alpha))
                    }),
                    empty_note: g.notes.first().cloned(),
                }
            })
            .collect();
        let path = dir.join(format!("sweep_{name}.png"));
        let cols = if panels.len() <= 1 {
            1
        } else if panels.len() <= 4 {
            2
        } else {
            4
        };
        log_x_panels(
            &path,
            &format!("Ridge α sweep — {name}: R² by α (GCV and CV as 1 − MSE/Var y)"),
            "α",
            "R²",
            &panels,
            cols,
            Some(-0.25),
        )?;
        files.push(path);
    }
    Ok(files)
}

const OUTPUTS: [&str; 3] = ["sweep.csv", "sweep.json", "models.h5"];

/// Refuses an output directory where writing the sweep would replace its
/// statistics file or another input (a test shard): call before the work.
pub fn check_outputs(out: &Path, stats: &Path, inputs: &[&Path]) -> Result<()> {
    let mut all = inputs.to_vec();
    all.push(stats);
    for n in OUTPUTS {
        crate::output::refuse_input_overwrite(&out.join(n), &all)?;
    }
    Ok(())
}

/// Writes `sweep.csv`, `sweep.json`, `models.h5` and (with `plots`)
/// `plots/sweep_*.png` into `out` (created if missing), statistics read from
/// `stats`. Everything is written into a scratch directory inside `out`
/// first ([`crate::output`]) and moved into place at the end, so a failed
/// run leaves no complete-looking output; an output file that is the
/// statistics or another input in `inputs` is refused before anything is
/// written. Returns the files written.
pub fn write_outputs(
    sweep: &Sweep,
    header: &crate::stats::StatsHeader,
    stats: &Path,
    inputs: &[&Path],
    out: &Path,
    plots: bool,
) -> Result<Vec<PathBuf>> {
    check_outputs(out, stats, inputs)?;
    let mut names: Vec<PathBuf> = OUTPUTS.iter().map(PathBuf::from).collect();
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let scratch = Staged::dir(&out.join("sweep"))?;
    let dir = scratch.path();
    let models = sweep.model_set(header, &stats.display().to_string())?;
    crate::models::write_models(&dir.join("models.h5"), &models)?;
    let stats_name = stats.display().to_string();
    crate::experiment::write_file(&dir.join("sweep.csv"), |w| write_csv(sweep, w))?;
    crate::experiment::write_file(&dir.join("sweep.json"), |w| {
        write_json(sweep, &stats_name, w)
    })?;
    if plots {
        std::fs::create_dir_all(dir.join("plots")).map_err(|e| Error::io(dir, e))?;
        for p in write_plots(sweep, &dir.join("plots"))? {
            if let Some(name) = p.file_name() {
                names.push(Path::new("plots").join(name));
            }
        }
        std::fs::create_dir_all(out.join("plots")).map_err(|e| Error::io(out, e))?;
    }
    let mut files = Vec::with_capacity(names.len());
    for n in names {
        let dest = out.join(&n);
        std::fs::rename(dir.join(&n), &dest).map_err(|e| Error::io(&dest, e))?;
        files.push(dest);
    }
    Ok(files)
}

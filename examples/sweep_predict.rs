//! The commands as library calls: generate shards, one pass, the α sweep
//! with test scores (`gramstream sweep`), predictions with the selected
//! experts under oracle routing (`gramstream predict`), and an experiment
//! from a TOML configuration (`gramstream experiment`).
//!
//!     cargo run --release --example sweep_predict [OUT_DIR]

use std::path::{Path, PathBuf};

use gramstream::experiment::{self, Event};
use gramstream::models::ModelSet;
use gramstream::noise::NoiseModel;
use gramstream::partition::PartitionSet;
use gramstream::predict::{predict, PredictOptions, Routing, SpectraChoice};
use gramstream::stats::pass::{accumulate, AccumulateOptions};
use gramstream::stats::StatsFile;
use gramstream::sweep::{self, report, SweepOptions, TestSpec};
use gramstream::synth::{write_shard, ShardSpec};

fn main() -> gramstream::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "example-out".into()),
    );
    std::fs::create_dir_all(&dir).map_err(|e| gramstream::Error::io(&dir, e))?;
    let (pixels, seed) = (512, 42);
    let shards: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("train_{i}.h5"))).collect();
    for (i, path) in shards.iter().enumerate() {
        write_shard(path, &ShardSpec::new(3000, pixels, seed, i as u64), &|_| {})?;
    }
    let test = dir.join("test.h5");
    write_shard(&test, &ShardSpec::new(1000, pixels, seed, 99), &|_| {})?;

    // The pass (`gramstream accumulate --folds 3`).
    let opts = AccumulateOptions {
        partitions: PartitionSet::new(PartitionSet::default().partitions, 3)?,
        noise: NoiseModel::new(1.0, seed)?,
        mem_budget: Some(2 << 30),
        ..Default::default()
    };
    let stats = dir.join("stats.h5");
    accumulate(&shards, &opts, None, &|_| {})?.write(&stats, gramstream::Threads::All)?;

    // Every α of every bin, α per bin by exact 3-fold CV, each (bin, α)
    // scored on the bin's own test rows (`gramstream sweep --test`).
    let file = StatsFile::open(&stats)?;
    let sopts = SweepOptions {
        test: Some(TestSpec {
            path: test.clone(),
            noise: Some(NoiseModel::new(1.0, 2024)?),
            chunk_rows: 256,
        }),
        ..SweepOptions::new(sweep::log_grid(1e-1, 1e5, 25)?)
    };
    let result = sweep::run(&file, &sopts, |_| {})?;
    let out = dir.join("sweep");
    let written = report::write_outputs(&result, file.header(), &stats, &[&test], &out, false)?;
    for g in &result.groups {
        if let Some(pt) = g.selected_point() {
            println!(
                "{:<22} α {:>9.3e}  CV MSE {:.4}  test R² {}",
                g.id.partition
                    .map_or("global".into(), |pi| sweep::slot_name(
                        file.header(),
                        pi,
                        g.id.slot
                    )),
                pt.alpha,
                pt.cv_mse.unwrap_or(f64::NAN),
                pt.test.map_or("—".into(), |m| format!("{:.3}", m.r2)),
            );
        }
    }
    println!("wrote {} files into {}", written.len(), out.display());

    // Predictions with the selected experts: oracle routing on T_eff × [M/H]
    // (`gramstream predict --routing oracle`), the same test noise.
    let models = ModelSet::open(&out.join("models.h5"))?;
    let popts = PredictOptions {
        routing: Routing::Oracle { partition: 0 },
        spectra: SpectraChoice::Noise(NoiseModel::new(1.0, 2024)?),
        first_shard_index: gramstream::sweep::test_eval::TEST_SHARD_INDEX,
        ..PredictOptions::new(&models)
    };
    let mut first = Vec::new();
    let summary = predict(
        &models,
        std::slice::from_ref(&test),
        &popts,
        &mut |row| {
            if first.len() < 3 {
                first.push((row.row, row.log_g, row.prediction));
            }
            Ok(())
        },
        &|_| {},
    )?;
    println!("{summary}");
    for (row, y, p) in first {
        println!(
            "  row {row}: log g {:.3}, predicted {p:.3}",
            y.unwrap_or(f64::NAN)
        );
    }

    // An experiment from a configuration (`gramstream experiment`): two
    // seeds, α by GCV, no gate (its line windows need P = 4096-like grids).
    let config = dir.join("example.toml");
    let names = |p: &Path| format!("{:?}", p.file_name().unwrap_or_default().to_string_lossy());
    let text = format!(
        "name = \"example\"\n[data]\ntrain = [{}, {}]\ntest = {}\n[noise]\nseeds = [1, 2]\n\
         [stats]\nfolds = 1\nmem_budget = \"2GiB\"\n[ridge]\nselect = \"gcv\"\n[gate]\nenabled = false\n",
        names(&shards[0]),
        names(&shards[1]),
        names(&test)
    );
    std::fs::write(&config, text).map_err(|e| gramstream::Error::io(&config, e))?;
    let plan = experiment::plan_file(&config, Some(&dir.join("experiment")))?;
    let exp = experiment::execute(plan, true, &|e| {
        if let Event::Done(line) = e {
            println!("  {line}");
        }
    })?;
    println!(
        "experiment: {} runs in {:.1} s, written to {}",
        exp.runs.len(),
        exp.total_s,
        dir.join("experiment").display()
    );
    Ok(())
}

//! The report figures from fake but plausible numbers (noise = 1, nine
//! T_eff × [M/H] bins): per-bin R² oracle vs global, the ΔR² grid, the
//! gate's routing confusion matrix and mean gate probabilities, predicted
//! vs true coloured by bin, and samples per bin.
//!
//!     cargo run --example figures [OUT_DIR]

use std::path::PathBuf;

use gramstream::report_figures::{bars, grouped_bars, heatmap, scatter_pred_true};

const TEFF: [&str; 3] = ["Cool", "Mid", "Hot"];
const MH: [&str; 3] = ["Poor", "Solar", "Rich"];

/// SplitMix64 uniform in [0, 1): the example needs no random crate.
struct Rng(u64);
impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn main() -> gramstream::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "figures-out".into()),
    );
    std::fs::create_dir_all(&dir).map_err(|e| gramstream::Error::Io {
        path: dir.clone(),
        source: e,
    })?;
    let bins: Vec<String> = TEFF
        .iter()
        .flat_map(|t| MH.iter().map(move |m| format!("{t} {m}")))
        .collect();

    // Per-bin R²: metal-poor bins worst and gaining most (as in the oracle
    // headroom report); one bin without a global score shows a skipped bar.
    let r2_oracle = [0.54, 0.71, 0.86, 0.31, 0.66, 0.83, 0.45, 0.69, 0.87];
    let r2_global = [0.36, 0.60, 0.79, 0.13, 0.52, 0.76, 0.27, 0.55, f64::NAN];
    grouped_bars(
        &dir.join("perbin_r2_grouped.png"),
        "Per-bin R²: oracle expert vs global Ridge (noise = 1)",
        &bins,
        &[
            ("oracle expert".to_string(), r2_oracle.to_vec()),
            ("global Ridge".to_string(), r2_global.to_vec()),
        ],
        "R² (test)",
    )?;

    // ΔR² of the gated mixtures per bin: bars go below zero where a gate
    // misroutes enough to lose against the global model.
    grouped_bars(
        &dir.join("delta_r2_gates_grouped.png"),
        "Per-bin ΔR² vs global: oracle, soft gate, hard gate",
        &bins,
        &[
            (
                "oracle".to_string(),
                vec![0.18, 0.11, 0.07, 0.18, 0.14, 0.07, 0.18, 0.14, 0.09],
            ),
            (
                "soft gate".to_string(),
                vec![0.13, 0.07, 0.05, 0.12, 0.09, 0.04, 0.14, 0.1, 0.06],
            ),
            (
                "hard gate (argmax)".to_string(),
                vec![0.12, 0.05, -0.03, 0.11, 0.08, -0.012, 0.13, 0.09, 0.05],
            ),
        ],
        "ΔR²",
    )?;

    // ΔR² grid: rows T_eff, columns [M/H].
    let delta: Vec<Vec<f64>> = (0..3)
        .map(|t| {
            (0..3)
                .map(|m| r2_oracle[3 * t + m] - r2_global[3 * t + m])
                .collect()
        })
        .collect();
    let mut delta = delta;
    delta[1][1] = -0.021; // a bin where the expert loses, to show the diverging scale
    heatmap(
        &dir.join("delta_r2_heatmap.png"),
        "ΔR² = R²(oracle expert) − R²(global) per bin",
        &TEFF
            .iter()
            .map(|t| format!("T_eff {t}"))
            .collect::<Vec<_>>(),
        &MH.iter().map(|m| format!("[M/H] {m}")).collect::<Vec<_>>(),
        &delta,
        &|v| format!("{v:+.3}"),
        true,
    )?;

    // Routing confusion matrix (row = true bin, fraction routed to each
    // expert) and mean gate probabilities: mostly diagonal, confusion
    // between [M/H] neighbours within a T_eff band.
    let mut rng = Rng(5);
    let confusion: Vec<Vec<f64>> = (0..9usize)
        .map(|i| {
            let mut row: Vec<f64> = (0..9)
                .map(|j: usize| {
                    let same_t = i / 3 == j / 3;
                    let near_m = (i % 3).abs_diff(j % 3) == 1;
                    if i == j {
                        6.0 + rng.uniform()
                    } else if same_t && near_m {
                        0.4 + 0.3 * rng.uniform()
                    } else if (i % 3) == (j % 3) && (i / 3).abs_diff(j / 3) == 1 {
                        0.1 + 0.1 * rng.uniform()
                    } else {
                        0.01 * rng.uniform()
                    }
                })
                .collect();
            let s: f64 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= s);
            row
        })
        .collect();
    heatmap(
        &dir.join("gate_confusion.png"),
        "Gate routing: true bin (rows) → routed expert (columns), fraction of row",
        &bins,
        &bins,
        &confusion,
        &|v| format!("{v:.2}"),
        false,
    )?;
    let probs: Vec<Vec<f64>> = confusion
        .iter()
        .map(|row| {
            let mut p: Vec<f64> = row.iter().map(|v| 0.7 * v + 0.3 / 9.0).collect();
            let s: f64 = p.iter().sum();
            p.iter_mut().for_each(|v| *v /= s);
            p
        })
        .collect();
    heatmap(
        &dir.join("gate_probability.png"),
        "Mean gate probability per expert, by true bin",
        &bins,
        &bins,
        &probs,
        &|v| format!("{v:.2}"),
        false,
    )?;

    // Predicted vs true log g for 30 000 test rows (above the 20 000
    // drawing cap, so the subset note shows).
    let n = 30_000;
    let (mut y_true, mut y_pred, mut group) = (vec![], vec![], vec![]);
    for _ in 0..n {
        let b = ((rng.uniform() * 9.0) as usize).min(8);
        let t = 1.0 + 4.0 * rng.uniform();
        let spread = 0.25 + 0.5 * (1.0 - r2_oracle[b]);
        let shrink = 0.15 * (t - 3.0);
        y_true.push(t);
        y_pred.push(t - shrink + spread * rng.normal());
        group.push(b);
    }
    scatter_pred_true(
        &dir.join("pred_vs_true.png"),
        "Predicted vs true log g (oracle MoE, test)",
        &y_true,
        &y_pred,
        &group,
        &bins,
    )?;

    // Samples per bin, with the rows outside every bin.
    let mut cats = bins.clone();
    cats.push("outside".to_string());
    let counts = [
        98_213.0, 131_877.0, 120_455.0, 104_902.0, 142_318.0, 128_006.0, 87_560.0, 96_114.0,
        83_927.0, 6_628.0,
    ];
    bars(
        &dir.join("samples_per_bin.png"),
        "Training samples per bin",
        &cats,
        &counts,
        "rows",
    )?;
    println!("figures written to {}", dir.display());
    Ok(())
}

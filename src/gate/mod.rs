//! The gate of the mixture of experts (DESIGN §9): which T_eff × [M/H] bin
//! a noisy spectrum belongs to.
//!
//! 37 features per spectrum ([`features`]: 10 principal-component
//! projections and 27 line features of Ca II, Na I and Mg I) feed a
//! multinomial L2 logistic regression ([`logistic`]) trained on the pass's
//! reservoir sample ([`crate::stats::Reservoir`]), labelled by the bin of
//! each row's true T_eff and [M/H]. [`Gate::probabilities`] gives the soft
//! weights `p_k` of `ŷ = Σ p_k ŷ_k`; [`Gate::route`] the hard choice.

pub mod features;
pub mod logistic;

use faer::Mat;

pub use features::GateFeatures;
pub use logistic::Logistic;

use crate::partition::{Partition, RowKeys};
use crate::stats::Reservoir;
use crate::{Error, Result};

/// A trained gate.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// The feature map.
    pub features: GateFeatures,
    /// The classifier over the partition's bins.
    pub model: Logistic,
    /// The partition whose bins are the classes.
    pub partition: Partition,
}

/// What training the gate did.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// Reservoir rows used (inside a bin).
    pub rows: usize,
    /// Reservoir rows left out: outside every bin of the partition.
    pub unbinned: usize,
    /// Training rows per bin.
    pub class_counts: Vec<usize>,
    /// Bins with no training row (probability always 0).
    pub absent: Vec<usize>,
    /// Fraction of training rows routed to their own bin.
    pub train_accuracy: f64,
    /// Newton iterations of the logistic regression.
    pub iterations: usize,
    /// Final relative gradient norm of the logistic regression.
    pub gradient_norm: f64,
}

impl Gate {
    /// Trains the gate on the reservoir's noisy rows: features on `wave`
    /// with the PCA mean and leading components (`P × 10`, see
    /// [`features::leading_components`]), labels the `partition` bin of each
    /// row's true T_eff and [M/H] (rows outside every bin are left out and
    /// counted), inverse regularisation `c` (scikit-learn's `C`, default 1).
    ///
    /// Errors: the partition is not a T_eff × [M/H] one; the reservoir's
    /// pixels differ from the grid; no row falls in a bin; and the errors of
    /// [`GateFeatures::new`] and [`logistic::fit`].
    pub fn train(
        reservoir: &Reservoir,
        wave: &[f64],
        pca_mean: Vec<f64>,
        pca_components: Mat<f64>,
        partition: &Partition,
        c: f64,
    ) -> Result<(Gate, TrainReport)> {
        if !matches!(
            partition.kind,
            crate::partition::PartitionKind::TeffMh { .. }
        ) {
            return Err(Error::InvalidParameter {
                name: "partition",
                problem: format!(
                    "the gate routes by T_eff × [M/H]; {:?} bins on something else",
                    partition.name
                ),
            });
        }
        let p = reservoir.pixels;
        if p != wave.len()
            || reservoir.x.len() != reservoir.len() * p
            || reservoir.params.len() != reservoir.len()
        {
            return Err(Error::shape(
                "gate reservoir",
                format!(
                    "{} rows × {} pixels (the wavelength grid) and {} params",
                    reservoir.len(),
                    wave.len(),
                    reservoir.len()
                ),
                format!(
                    "{} values at {p} pixels and {} params",
                    reservoir.x.len(),
                    reservoir.params.len()
                ),
            ));
        }
        let features = GateFeatures::new(wave, pca_mean, pca_components)?;
        let d = features::N_FEATURES;
        let mut x = Vec::new();
        let mut labels = Vec::new();
        let mut unbinned = 0;
        let mut row_features = vec![0.0; d];
        for (row, prm) in reservoir.x.chunks_exact(p).zip(&reservoir.params) {
            let keys = RowKeys {
                teff: prm[0],
                mh: prm[1],
                snr: prm[3],
            };
            match partition.bin(&keys) {
                Some(bin) => {
                    features.compute(row, &mut row_features);
                    x.extend_from_slice(&row_features);
                    labels.push(bin);
                }
                None => unbinned += 1,
            }
        }
        if labels.is_empty() {
            return Err(Error::InvalidParameter {
                name: "reservoir",
                problem: format!(
                    "none of its {} rows falls in a bin of {}",
                    reservoir.len(),
                    partition.name
                ),
            });
        }
        let model = logistic::fit(&x, &labels, partition.bins(), c)?;
        let correct = x
            .chunks_exact(d)
            .zip(&labels)
            .filter(|(r, &l)| model.predict(r) == l)
            .count();
        let fit = model.report();
        let report = TrainReport {
            rows: labels.len(),
            unbinned,
            class_counts: fit.class_counts.clone(),
            absent: fit.absent.clone(),
            train_accuracy: correct as f64 / labels.len() as f64,
            iterations: fit.iterations,
            gradient_norm: fit.gradient_norm,
        };
        let gate = Gate {
            features,
            model,
            partition: partition.clone(),
        };
        Ok((gate, report))
    }

    /// The probability of each bin for one noisy spectrum (length P).
    pub fn probabilities(&self, x: &[f64]) -> Vec<f64> {
        let mut f = vec![0.0; features::N_FEATURES];
        self.features.compute(x, &mut f);
        self.model.predict_proba(&f)
    }

    /// The most probable bin of one noisy spectrum.
    pub fn route(&self, x: &[f64]) -> usize {
        logistic::argmax(&self.probabilities(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spectra whose line depths and slope depend on T_eff and [M/H].
    fn reservoir(n: usize, p: usize) -> (Reservoir, Vec<f64>) {
        let d = (8850.0 - 7100.0) / (p - 1) as f64;
        let wave: Vec<f64> = (0..p).map(|j| 7100.0 + d * j as f64).collect();
        let mut r = Reservoir {
            capacity: n,
            pixels: p,
            ..Default::default()
        };
        let mut s = 12345u64;
        let mut u = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        for i in 0..n {
            // T_eff 3700–6100 (some outside), [M/H] −2…0.5.
            let teff = 3700.0 + 2400.0 * u();
            let mh = -2.0 + 2.5 * u();
            let t = (teff - 5000.0) / 1000.0;
            for &w in &wave {
                let ca = (-(w - 8542.0).powi(2) / 2.0).exp() * (0.5 + 0.2 * mh);
                let na = (-(w - 8195.0).powi(2) / 2.0).exp() * (0.4 - 0.3 * t);
                let f = 1.0 + 0.2 * t * (w - 8000.0) / 1000.0 - ca - na;
                r.x.push(f + 0.01 * (u() - 0.5));
            }
            r.params.push([teff, mh, 3.0, 50.0]);
            r.keys.push(i as u64);
            r.origin.push((0, i as u64));
        }
        (r, wave)
    }

    #[test]
    fn trains_on_a_reservoir_and_routes() {
        let p = 1024;
        let (r, wave) = reservoir(600, p);
        let mean = vec![0.0; p];
        let comps = Mat::from_fn(p, 10, |i, k| if i == 100 * k { 1.0 } else { 0.0 });
        let (gate, rep) = Gate::train(&r, &wave, mean, comps, &Partition::teff_mh(), 1.0).unwrap();
        assert_eq!(rep.rows + rep.unbinned, 600);
        assert!(rep.unbinned > 0, "some T_eff below 3750 or above 6000");
        assert_eq!(rep.class_counts.iter().sum::<usize>(), rep.rows);
        assert!(rep.train_accuracy > 0.8, "{rep:?}");
        let pr = gate.probabilities(&r.x[..p]);
        assert_eq!(pr.len(), 9);
        assert!((pr.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(gate.route(&r.x[..p]), logistic::argmax(&pr));
        // The SNR partition is not a gate's.
        let comps = Mat::zeros(p, 10);
        assert!(Gate::train(&r, &wave, vec![0.0; p], comps, &Partition::snr(), 1.0).is_err());
    }
}

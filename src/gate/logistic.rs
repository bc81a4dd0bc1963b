//! Multinomial logistic regression with an L2 penalty, solved by Newton's method.
//!
//! The objective is scikit-learn's `LogisticRegression(C=c)` (multinomial,
//! `fit_intercept=True`) on standardised features:
//!
//! ```text
//! f(W, b) = Σ_i [ log Σ_k exp(w_k·z_i + b_k) − (w_{y_i}·z_i + b_{y_i}) ] + ‖W‖² / (2c)
//! ```
//!
//! with `z_i = (x_i − mean) / std` (mean and population standard deviation
//! of the training rows, stored in the model; a constant feature gets
//! std 1, as in scikit-learn's `StandardScaler`). Intercepts are not
//! penalised. The problem is strictly convex in W and in b up to a common
//! shift of all intercepts, which changes no probability; the Newton system
//! is made definite along that direction (the gradient is orthogonal to
//! it, so the step is the pseudo-inverse step) and the intercepts are kept
//! summing to zero.
//!
//! Each iteration forms the full Hessian (`K(d+1)` parameters, ≈ 342 for
//! 9 classes and 37 features) from K(K+1)/2 weighted Gram products, solves
//! it by Cholesky, and backtracks (Armijo) along the step. It stops when
//! the gradient norm is at most [`GRADIENT_TOL`] times its value at zero.
//! Everything runs sequentially in a fixed order: the fit is deterministic.
//!
//! Classes absent from the labels get probability 0: the infimum of the
//! objective is reached as their intercepts go to −∞ with their weights 0,
//! which is the problem over the present classes alone (what scikit-learn
//! fits too, its `classes_` being the labels present).

use faer::linalg::solvers::Solve;
use faer::{Mat, Par, Side};

use crate::{Error, Result};

/// Convergence: gradient norm ≤ `GRADIENT_TOL` × gradient norm at zero.
pub const GRADIENT_TOL: f64 = 1e-10;

/// Maximum Newton iterations.
pub(crate) const MAX_ITERATIONS: usize = 100;

/// How the fit went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FitReport {
    /// Training rows.
    pub rows: usize,
    /// Rows per class (length `classes`).
    pub class_counts: Vec<usize>,
    /// Classes with no training row: their probability is always 0.
    pub absent: Vec<usize>,
    /// Newton iterations.
    pub iterations: usize,
    /// Final gradient norm relative to the gradient norm at zero.
    pub gradient_norm: f64,
    /// Whether the gradient reached [`GRADIENT_TOL`].
    pub converged: bool,
    /// Final objective value.
    pub objective: f64,
}

/// A fitted multinomial logistic regression.
#[derive(Debug, Clone, PartialEq)]
pub struct Logistic {
    classes: usize,
    mean: Vec<f64>,
    scale: Vec<f64>,
    /// The present classes, ascending.
    present: Vec<usize>,
    /// `(d + 1) × K'` for the K' present classes: column k = (w_k, b_k).
    theta: Mat<f64>,
    report: FitReport,
}

/// Standardised features with a trailing column of ones: `n × (d + 1)`.
fn design(features: &[f64], n: usize, d: usize, mean: &[f64], scale: &[f64]) -> Mat<f64> {
    Mat::from_fn(n, d + 1, |i, j| {
        if j == d {
            1.0
        } else {
            (features[i * d + j] - mean[j]) / scale[j]
        }
    })
}

/// Softmax of each row of `scores` in place.
fn softmax_rows(scores: &mut Mat<f64>) {
    let k = scores.ncols();
    for i in 0..scores.nrows() {
        let m = (0..k)
            .map(|c| scores[(i, c)])
            .fold(f64::NEG_INFINITY, f64::max);
        let mut s = 0.0;
        for c in 0..k {
            let e = (scores[(i, c)] - m).exp();
            scores[(i, c)] = e;
            s += e;
        }
        for c in 0..k {
            scores[(i, c)] /= s;
        }
    }
}

/// The problem on a design matrix and compact labels.
struct Problem<'a> {
    x: &'a Mat<f64>,
    y: &'a [usize],
    k: usize,
    lambda: f64,
}

impl Problem<'_> {
    fn d1(&self) -> usize {
        self.x.ncols()
    }

    fn scores(&self, theta: &Mat<f64>) -> Mat<f64> {
        let mut s = Mat::zeros(self.x.nrows(), self.k);
        faer::linalg::matmul::matmul(
            s.as_mut(),
            faer::Accum::Replace,
            self.x.as_ref(),
            theta.as_ref(),
            1.0,
            Par::Seq,
        );
        s
    }

    fn penalty(&self, theta: &Mat<f64>) -> f64 {
        let d = self.d1() - 1;
        let mut s = 0.0;
        for c in 0..self.k {
            for j in 0..d {
                s += theta[(j, c)] * theta[(j, c)];
            }
        }
        0.5 * self.lambda * s
    }

    fn objective(&self, theta: &Mat<f64>) -> f64 {
        let s = self.scores(theta);
        let mut f = 0.0;
        for (i, &yi) in self.y.iter().enumerate() {
            let m = (0..self.k)
                .map(|c| s[(i, c)])
                .fold(f64::NEG_INFINITY, f64::max);
            let lse = m + (0..self.k).map(|c| (s[(i, c)] - m).exp()).sum::<f64>().ln();
            f += lse - s[(i, yi)];
        }
        f + self.penalty(theta)
    }

    /// Probabilities and gradient (`(d + 1) × K'`).
    fn gradient(&self, theta: &Mat<f64>) -> (Mat<f64>, Mat<f64>) {
        let mut p = self.scores(theta);
        softmax_rows(&mut p);
        let mut r = p.clone();
        for (i, &yi) in self.y.iter().enumerate() {
            r[(i, yi)] -= 1.0;
        }
        let mut g = Mat::zeros(self.d1(), self.k);
        faer::linalg::matmul::matmul(
            g.as_mut(),
            faer::Accum::Replace,
            self.x.transpose(),
            r.as_ref(),
            1.0,
            Par::Seq,
        );
        let d = self.d1() - 1;
        for c in 0..self.k {
            for j in 0..d {
                g[(j, c)] += self.lambda * theta[(j, c)];
            }
        }
        (p, g)
    }

    /// The Hessian at probabilities `p`, parameters flattened column by
    /// column (index `c·(d+1) + j`). It is singular along equal changes of
    /// all intercepts.
    fn hessian(&self, p: &Mat<f64>) -> Mat<f64> {
        let (n, d1, k) = (self.x.nrows(), self.d1(), self.k);
        let mut h = Mat::zeros(k * d1, k * d1);
        let mut xs = Mat::zeros(n, d1);
        let mut block = Mat::zeros(d1, d1);
        for a in 0..k {
            for b in a..k {
                for i in 0..n {
                    let s = p[(i, a)] * (if a == b { 1.0 } else { 0.0 } - p[(i, b)]);
                    for j in 0..d1 {
                        xs[(i, j)] = s * self.x[(i, j)];
                    }
                }
                faer::linalg::matmul::matmul(
                    block.as_mut(),
                    faer::Accum::Replace,
                    self.x.transpose(),
                    xs.as_ref(),
                    1.0,
                    Par::Seq,
                );
                for u in 0..d1 {
                    for v in 0..d1 {
                        // Symmetrise the product's rounding.
                        let val = 0.5 * (block[(u, v)] + block[(v, u)]);
                        h[(a * d1 + u, b * d1 + v)] = val;
                        h[(b * d1 + v, a * d1 + u)] = val;
                    }
                }
            }
        }
        for c in 0..k {
            for j in 0..d1 - 1 {
                h[(c * d1 + j, c * d1 + j)] += self.lambda;
            }
        }
        h
    }
}

fn norm(m: &Mat<f64>) -> f64 {
    m.norm_l2()
}

/// Keeps the intercepts summing to zero (a common shift changes nothing).
fn center_intercepts(theta: &mut Mat<f64>) {
    let (d1, k) = (theta.nrows(), theta.ncols());
    let m = (0..k).map(|c| theta[(d1 - 1, c)]).sum::<f64>() / k as f64;
    for c in 0..k {
        theta[(d1 - 1, c)] -= m;
    }
}

/// Fits the model on `features` (row-major `n × d`) with `labels` in
/// `0..classes` and inverse regularisation `c` (scikit-learn's `C`; 1.0 is
/// its default).
///
/// Errors: shapes that do not match, no rows, a label ≥ `classes`,
/// non-finite features, `c` not positive and finite. Classes without rows
/// are reported in [`FitReport::absent`] and get probability 0.
pub fn fit(features: &[f64], labels: &[usize], classes: usize, c: f64) -> Result<Logistic> {
    let d = check_fit_inputs(features, labels, classes, c)?;
    let n = labels.len();
    let Labels {
        class_counts,
        present,
        absent,
        y,
    } = Labels::count(labels, classes);
    let (mean, scale) = standardisation(features, n, d);
    let k = present.len();
    let x = design(features, n, d, &mean, &scale);
    let problem = Problem {
        x: &x,
        y: &y,
        k,
        lambda: 1.0 / c,
    };
    let mut theta = Mat::zeros(d + 1, k);
    let mut report = FitReport {
        rows: n,
        class_counts,
        absent,
        iterations: 0,
        gradient_norm: 0.0,
        converged: true,
        objective: 0.0,
    };
    if k > 1 {
        solve(&problem, &mut theta, &mut report)?;
    }
    Ok(Logistic {
        classes,
        mean,
        scale,
        present,
        theta,
        report,
    })
}

/// Refuses the inputs [`fit`] documents as errors, checked in this order
/// (the first failure is the one reported); the features per row, d.
fn check_fit_inputs(features: &[f64], labels: &[usize], classes: usize, c: f64) -> Result<usize> {
    let n = labels.len();
    if n == 0 {
        return Err(crate::FitError::TooFewRows {
            model: "the logistic regression",
            set: "its training set",
            need: 1,
            rows: 0,
        }
        .into());
    }
    if features.len() % n != 0 || features.is_empty() {
        return Err(Error::shape(
            "logistic regression features",
            format!("a positive multiple of {n} values (one row per label)"),
            format!("{} values", features.len()),
        ));
    }
    let d = features.len() / n;
    if !(c > 0.0 && c.is_finite()) {
        return Err(Error::InvalidParameter {
            name: "C",
            problem: format!("inverse regularisation must be positive and finite, got {c}"),
        });
    }
    if let Some(i) = labels.iter().position(|&l| l >= classes) {
        return Err(Error::InvalidParameter {
            name: "labels",
            problem: format!("row {i}: label {} ≥ {classes} classes", labels[i]),
        });
    }
    if let Some(i) = features.iter().position(|v| !v.is_finite()) {
        return Err(Error::InvalidParameter {
            name: "features",
            problem: format!(
                "row {}, feature {}: non-finite value {}",
                i / d,
                i % d,
                features[i]
            ),
        });
    }
    Ok(d)
}

/// The labels as the solver sees them: only the present classes get
/// parameters, so labels are renumbered into `0..present.len()`.
struct Labels {
    class_counts: Vec<usize>,
    /// The classes with rows, ascending.
    present: Vec<usize>,
    absent: Vec<usize>,
    /// Each row's index into `present`.
    y: Vec<usize>,
}

impl Labels {
    /// Counts `labels` (each < `classes`) per class and renumbers them.
    fn count(labels: &[usize], classes: usize) -> Self {
        let mut class_counts = vec![0usize; classes];
        for &l in labels {
            class_counts[l] += 1;
        }
        let present: Vec<usize> = (0..classes).filter(|&k| class_counts[k] > 0).collect();
        let absent: Vec<usize> = (0..classes).filter(|&k| class_counts[k] == 0).collect();
        let mut compact = vec![usize::MAX; classes];
        for (i, &k) in present.iter().enumerate() {
            compact[k] = i;
        }
        let y: Vec<usize> = labels.iter().map(|&l| compact[l]).collect();
        Labels {
            class_counts,
            present,
            absent,
            y,
        }
    }
}

/// Mean and scale of each of the d features of the `n × d` row-major
/// `features`: the population standard deviation, 1 for a constant feature
/// (within rounding of its mean), as scikit-learn's `StandardScaler`.
fn standardisation(features: &[f64], n: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut mean = vec![0.0; d];
    for row in features.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut scale = vec![0.0; d];
    for row in features.chunks_exact(d) {
        for ((s, v), m) in scale.iter_mut().zip(row).zip(&mean) {
            *s += (v - m) * (v - m);
        }
    }
    for (s, m) in scale.iter_mut().zip(&mean) {
        *s = (*s / n as f64).sqrt();
        if *s <= 10.0 * f64::EPSILON * m.abs().max(f64::MIN_POSITIVE) || *s == 0.0 {
            *s = 1.0;
        }
    }
    (mean, scale)
}

fn solve(problem: &Problem<'_>, theta: &mut Mat<f64>, report: &mut FitReport) -> Result<()> {
    let (d1, k) = (problem.d1(), problem.k);
    let mut f = problem.objective(theta);
    let (mut p, mut g) = problem.gradient(theta);
    let g0 = norm(&g).max(f64::MIN_POSITIVE);
    let mut gn = norm(&g);
    let mut it = 0;
    while gn > GRADIENT_TOL * g0 && it < MAX_ITERATIONS {
        it += 1;
        // Add shift · u uᵀ, u the unit vector of equal intercepts: any
        // positive shift gives the same step; match the Hessian's scale.
        let mut h = problem.hessian(&p);
        let shift = (0..k * d1).map(|i| h[(i, i)]).sum::<f64>() / (k * d1) as f64;
        for a in 0..k {
            for b in 0..k {
                h[(a * d1 + d1 - 1, b * d1 + d1 - 1)] += shift / k as f64;
            }
        }
        let rhs = Mat::from_fn(k * d1, 1, |i, _| -g[(i % d1, i / d1)]);
        let step = match h.llt(Side::Lower) {
            Ok(llt) => llt.solve(&rhs),
            Err(_) => h.lblt(Side::Lower).solve(&rhs),
        };
        let step = Mat::from_fn(d1, k, |j, c| step[(c * d1 + j, 0)]);
        let slope: f64 = (0..k)
            .flat_map(|c| (0..d1).map(move |j| (j, c)))
            .map(|(j, c)| g[(j, c)] * step[(j, c)])
            .sum();
        if !slope.is_finite() || slope >= 0.0 {
            break;
        }
        // Backtracking with room for the rounding of f near the optimum.
        let slack = 64.0 * f64::EPSILON * f.abs().max(1.0);
        let mut t = 1.0;
        let mut accepted = None;
        for _ in 0..60 {
            let mut trial = theta.clone();
            for c in 0..k {
                for j in 0..d1 {
                    trial[(j, c)] += t * step[(j, c)];
                }
            }
            center_intercepts(&mut trial);
            let ft = problem.objective(&trial);
            if ft.is_finite() && ft <= f + 1e-4 * t * slope + slack {
                accepted = Some((trial, ft));
                break;
            }
            t *= 0.5;
        }
        let Some((trial, ft)) = accepted else {
            break;
        };
        let (pt, gt) = problem.gradient(&trial);
        let gtn = norm(&gt);
        if ft > f && gtn >= gn {
            // Only rounding let it through and it did not help: stop here.
            break;
        }
        *theta = trial;
        f = ft;
        p = pt;
        g = gt;
        gn = gtn;
    }
    if !f.is_finite() || !gn.is_finite() {
        return Err(crate::FitError::Diverged {
            what: "logistic regression",
        }
        .into());
    }
    report.iterations = it;
    report.gradient_norm = gn / g0;
    report.converged = gn <= GRADIENT_TOL * g0;
    report.objective = f;
    Ok(())
}

impl Logistic {
    /// A fitted model from its parts, as [`Self::mean`], [`Self::scale`],
    /// [`Self::present_classes`] and [`Self::theta`] give them (e.g. read
    /// back from `models.h5`). The fit report is empty.
    ///
    /// Errors: shapes that do not match, non-finite values, scales ≤ 0,
    /// present classes not strictly ascending or ≥ `classes`.
    pub(crate) fn from_parts(
        classes: usize,
        mean: Vec<f64>,
        scale: Vec<f64>,
        present: Vec<usize>,
        theta: Mat<f64>,
    ) -> Result<Logistic> {
        let d = mean.len();
        let bad = |problem: String| Error::InvalidParameter {
            name: "logistic",
            problem,
        };
        if scale.len() != d || theta.nrows() != d + 1 || theta.ncols() != present.len() {
            return Err(Error::shape(
                "logistic regression parameters",
                format!(
                    "{d} scales and θ {} × {} ({d} means, {} present classes)",
                    d + 1,
                    present.len(),
                    present.len()
                ),
                format!(
                    "{} scales and θ {} × {}",
                    scale.len(),
                    theta.nrows(),
                    theta.ncols()
                ),
            ));
        }
        if present.is_empty()
            || present.windows(2).any(|w| w[0] >= w[1])
            || present.iter().any(|&c| c >= classes)
        {
            return Err(bad(format!(
                "present classes {present:?} must be strictly ascending, non-empty and below {classes}"
            )));
        }
        let finite_theta = (0..theta.ncols()).all(|c| theta.col(c).iter().all(|v| v.is_finite()));
        if !finite_theta
            || mean.iter().any(|v| !v.is_finite())
            || scale.iter().any(|v| !(v.is_finite() && *v > 0.0))
        {
            return Err(bad(
                "means and coefficients must be finite, scales finite and > 0".into(),
            ));
        }
        Ok(Logistic {
            classes,
            mean,
            scale,
            present,
            theta,
            report: FitReport::default(),
        })
    }

    /// The coefficients of the present classes on the standardised features:
    /// `(d + 1) × K'`, column k = (w_k, b_k) of the k-th present class.
    pub(crate) fn theta(&self) -> faer::MatRef<'_, f64> {
        self.theta.as_ref()
    }

    /// Number of classes (including absent ones).
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Number of features.
    pub fn features(&self) -> usize {
        self.mean.len()
    }

    /// The classes seen in training, ascending.
    pub(crate) fn present_classes(&self) -> &[usize] {
        &self.present
    }

    /// How the fit went.
    pub fn report(&self) -> &FitReport {
        &self.report
    }

    /// Training mean of each feature.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Training standard deviation (population) of each feature, 1 for constant ones.
    pub fn scale(&self) -> &[f64] {
        &self.scale
    }

    /// Weights of class `k` on the standardised features, and its intercept
    /// (−∞ for an absent class).
    pub fn coefficients(&self, k: usize) -> (Vec<f64>, f64) {
        let d = self.mean.len();
        match self.present.iter().position(|&c| c == k) {
            Some(c) => (
                (0..d).map(|j| self.theta[(j, c)]).collect(),
                self.theta[(d, c)],
            ),
            None => (vec![0.0; d], f64::NEG_INFINITY),
        }
    }

    /// Class probabilities (softmax, length [`Self::classes`]) of one row of
    /// raw (unstandardised) features. Panics if the length is not
    /// [`Self::features`].
    pub fn predict_proba(&self, x: &[f64]) -> Vec<f64> {
        let d = self.mean.len();
        assert_eq!(x.len(), d, "logistic regression: feature count");
        let k = self.present.len();
        let scores: Vec<f64> = (0..k)
            .map(|c| {
                let w = self.theta.col(c);
                let mut s = w[d];
                for (j, xj) in x.iter().enumerate() {
                    s += w[j] * (xj - self.mean[j]) / self.scale[j];
                }
                s
            })
            .collect();
        let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
        let total: f64 = e.iter().sum();
        let mut out = vec![0.0; self.classes];
        for (c, &cls) in self.present.iter().enumerate() {
            out[cls] = e[c] / total;
        }
        out
    }

    /// The most probable class of a row (the smallest on ties).
    pub fn predict(&self, x: &[f64]) -> usize {
        argmax(&self.predict_proba(x))
    }
}

/// Index of the largest value (the first on ties).
pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic generator for test data.
    struct Lcg(u64);
    impl Lcg {
        fn uniform(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform().max(1e-300), self.uniform());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }

    /// Overlapping Gaussian clusters: n × d features, labels in 0..k.
    fn clusters(n: usize, d: usize, k: usize, sep: f64, seed: u64) -> (Vec<f64>, Vec<usize>) {
        let mut r = Lcg(seed);
        let centres: Vec<f64> = (0..k * d).map(|_| sep * r.normal()).collect();
        let mut x = Vec::with_capacity(n * d);
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            let c = i % k;
            y.push(c);
            for j in 0..d {
                // Features on different scales and offsets.
                x.push((centres[c * d + j] + r.normal()) * (1.0 + j as f64) + 3.0 * j as f64);
            }
        }
        (x, y)
    }

    #[test]
    fn gradient_and_hessian_match_finite_differences() {
        let (x, y) = clusters(200, 4, 3, 1.0, 1);
        let (n, d) = (200, 4);
        let mean = vec![0.0; d];
        let scale = vec![1.0; d];
        let xm = design(&x, n, d, &mean, &scale);
        let pr = Problem {
            x: &xm,
            y: &y,
            k: 3,
            lambda: 0.7,
        };
        let mut r = Lcg(9);
        let theta = Mat::from_fn(d + 1, 3, |_, _| 0.1 * r.normal());
        let (p, g) = pr.gradient(&theta);
        let h = pr.hessian(&p);
        let eps = 1e-6;
        for c in 0..3 {
            for j in 0..=d {
                let mut tp = theta.clone();
                let mut tm = theta.clone();
                tp[(j, c)] += eps;
                tm[(j, c)] -= eps;
                let fd = (pr.objective(&tp) - pr.objective(&tm)) / (2.0 * eps);
                let rel = (fd - g[(j, c)]).abs() / (1.0 + g[(j, c)].abs());
                assert!(rel < 1e-6, "gradient ({j},{c}): fd {fd} vs {}", g[(j, c)]);
                let (_, gp) = pr.gradient(&tp);
                let (_, gm) = pr.gradient(&tm);
                for c2 in 0..3 {
                    for j2 in 0..=d {
                        let fd = (gp[(j2, c2)] - gm[(j2, c2)]) / (2.0 * eps);
                        let an = h[(c2 * (d + 1) + j2, c * (d + 1) + j)];
                        assert!(
                            (fd - an).abs() < 1e-5 * (1.0 + an.abs()),
                            "hessian ({j2},{c2}),({j},{c}): fd {fd} vs {an}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn converges_and_the_gradient_vanishes() {
        let (x, y) = clusters(600, 5, 4, 1.0, 2);
        let m = fit(&x, &y, 4, 1.0).unwrap();
        let r = m.report();
        assert!(r.converged, "{r:?}");
        assert!(r.gradient_norm <= GRADIENT_TOL);
        assert!(r.iterations > 1 && r.iterations < 30, "{r:?}");
        assert!(r.absent.is_empty());
        // Probabilities sum to 1; deterministic refit gives the same bits.
        let p = m.predict_proba(&x[..5]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(fit(&x, &y, 4, 1.0).unwrap(), m);
        // Intercepts sum to zero.
        let b: f64 = (0..4).map(|k| m.coefficients(k).1).sum();
        assert!(b.abs() < 1e-9, "{b}");
    }

    #[test]
    fn separable_data_is_classified_perfectly() {
        let (x, y) = clusters(300, 3, 3, 20.0, 3);
        let m = fit(&x, &y, 3, 100.0).unwrap();
        assert!(m.report().converged, "{:?}", m.report());
        for (row, &l) in x.chunks_exact(3).zip(&y) {
            let p = m.predict_proba(row);
            assert_eq!(m.predict(row), l);
            assert!(p[l] > 0.9, "{p:?}");
        }
        // A weaker penalty makes the fit more confident.
        let weak = fit(&x, &y, 3, 1.0).unwrap();
        assert!(weak.predict_proba(&x[..3])[y[0]] < m.predict_proba(&x[..3])[y[0]]);
    }

    #[test]
    fn standardisation_makes_affine_feature_maps_irrelevant() {
        let (x, y) = clusters(400, 4, 3, 1.0, 4);
        let a = [1e-3, 7.0, 1e4, 0.5];
        let b = [5.0, -100.0, 1e6, 0.0];
        let x2: Vec<f64> = x
            .chunks_exact(4)
            .flat_map(|r| (0..4).map(move |j| a[j] * r[j] + b[j]))
            .collect();
        let m1 = fit(&x, &y, 3, 0.3).unwrap();
        let m2 = fit(&x2, &y, 3, 0.3).unwrap();
        for (r1, r2) in x.chunks_exact(4).zip(x2.chunks_exact(4)).take(50) {
            let (p1, p2) = (m1.predict_proba(r1), m2.predict_proba(r2));
            for (u, v) in p1.iter().zip(&p2) {
                assert!((u - v).abs() < 1e-9, "{p1:?} vs {p2:?}");
            }
        }
    }

    #[test]
    fn absent_classes_get_probability_zero() {
        let (x, y) = clusters(300, 3, 3, 2.0, 5);
        // Classes 0, 1, 2 become 0, 2, 4 of 5.
        let y5: Vec<usize> = y.iter().map(|&l| 2 * l).collect();
        let m5 = fit(&x, &y5, 5, 1.0).unwrap();
        assert_eq!(m5.report().absent, vec![1, 3]);
        assert_eq!(m5.present_classes(), &[0, 2, 4]);
        let m3 = fit(&x, &y, 3, 1.0).unwrap();
        for row in x.chunks_exact(3).take(20) {
            let (p5, p3) = (m5.predict_proba(row), m3.predict_proba(row));
            assert_eq!((p5[1], p5[3]), (0.0, 0.0));
            for l in 0..3 {
                assert!((p5[2 * l] - p3[l]).abs() < 1e-12);
            }
        }
        // A single class: probability 1.
        let m1 = fit(&x, &vec![3; 300], 5, 1.0).unwrap();
        assert_eq!(m1.predict_proba(&x[..3]), vec![0.0, 0.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(fit(&[], &[], 3, 1.0).is_err());
        assert!(fit(&[1.0, 2.0, 3.0], &[0, 1], 2, 1.0).is_err());
        assert!(fit(&[1.0, 2.0], &[0, 2], 2, 1.0).is_err());
        assert!(fit(&[1.0, f64::NAN], &[0, 1], 2, 1.0).is_err());
        assert!(fit(&[1.0, 2.0], &[0, 1], 2, 0.0).is_err());
    }
}

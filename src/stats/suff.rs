//! Sufficient statistics of one accumulator, and the accumulator itself.
//!
//! Everything is summed around a shift (x₀, y₀) shared by the whole run
//! (the mean of the first chunk): Σ(x−x₀), Σ(y−y₀), Σ(y−y₀)², Σ(x−x₀)(y−y₀),
//! Σ(x−x₀)(x−x₀)ᵀ. Centring then subtracts n·x̄x̄ᵀ of a *small* mean
//! (x̄ − x₀), which avoids the cancellation of XᵀX − n·x̄x̄ᵀ when the data's
//! mean is large against its spread.
//!
//! The Gram matrix is stored **packed lower, row-major**: element (i, j),
//! i ≥ j, at `i(i+1)/2 + j` — the same bytes as upper-packed column-major,
//! P(P+1)/2 values (67 MB at P = 4096).

use faer::Par;

use super::gram;
use crate::{Error, Result};

/// Index of (i, j), i ≥ j, in a packed lower row-major triangle.
#[inline]
pub fn packed_index(i: usize, j: usize) -> usize {
    debug_assert!(i >= j);
    i * (i + 1) / 2 + j
}

/// Length of a packed triangle of order p.
pub fn packed_len(p: usize) -> usize {
    p * (p + 1) / 2
}

/// The sufficient statistics of one set of rows, around a shift.
#[derive(Debug, Clone, PartialEq)]
pub struct SuffStats {
    /// Pixels.
    pub p: usize,
    /// Rows.
    pub n: u64,
    /// Σ(x − x₀), length p.
    pub sum_x: Vec<f64>,
    /// Σ(y − y₀).
    pub sum_y: f64,
    /// Σ(y − y₀)².
    pub sum_yy: f64,
    /// Σ(x − x₀)(y − y₀), length p.
    pub xty: Vec<f64>,
    /// Σ(x − x₀)(x − x₀)ᵀ, packed lower row-major.
    pub xtx: Vec<f64>,
}

impl SuffStats {
    /// Empty statistics of order p.
    pub fn zeros(p: usize) -> Self {
        SuffStats {
            p,
            n: 0,
            sum_x: vec![0.0; p],
            sum_y: 0.0,
            sum_yy: 0.0,
            xty: vec![0.0; p],
            xtx: vec![0.0; packed_len(p)],
        }
    }

    /// Adds `other` (same shift, same p).
    pub fn add(&mut self, other: &SuffStats) -> Result<()> {
        if other.p != self.p {
            return Err(Error::Shape(format!(
                "adding statistics of {} pixels to {}",
                other.p, self.p
            )));
        }
        self.n += other.n;
        self.sum_y += other.sum_y;
        self.sum_yy += other.sum_yy;
        for (a, b) in self.sum_x.iter_mut().zip(&other.sum_x) {
            *a += b;
        }
        for (a, b) in self.xty.iter_mut().zip(&other.xty) {
            *a += b;
        }
        for (a, b) in self.xtx.iter_mut().zip(&other.xtx) {
            *a += b;
        }
        Ok(())
    }

    /// Subtracts `other` (same shift, same p; its rows a subset of ours).
    pub fn sub(&mut self, other: &SuffStats) -> Result<()> {
        if other.p != self.p || other.n > self.n {
            return Err(Error::Shape(format!(
                "subtracting statistics of {} rows × {} pixels from {} rows × {}",
                other.n, other.p, self.n, self.p
            )));
        }
        self.n -= other.n;
        self.sum_y -= other.sum_y;
        self.sum_yy -= other.sum_yy;
        for (a, b) in self.sum_x.iter_mut().zip(&other.sum_x) {
            *a -= b;
        }
        for (a, b) in self.xty.iter_mut().zip(&other.xty) {
            *a -= b;
        }
        for (a, b) in self.xtx.iter_mut().zip(&other.xtx) {
            *a -= b;
        }
        Ok(())
    }

    /// Re-expresses the sums around a new shift: `d = old − new` for x and
    /// `e = old − new` for y (exact algebra; used to merge runs with
    /// different shifts).
    pub fn reshift(&mut self, dx: &[f64], dy: f64) {
        let n = self.n as f64;
        // With u = x − old, x − new = u + d:
        // Σ(u+d)(u+d)ᵀ = Σuuᵀ + d(Σu)ᵀ + (Σu)dᵀ + n ddᵀ
        for i in 0..self.p {
            for j in 0..=i {
                self.xtx[packed_index(i, j)] +=
                    dx[i] * self.sum_x[j] + self.sum_x[i] * dx[j] + n * dx[i] * dx[j];
            }
        }
        // Σ(u+d)(v+e) = Σuv + eΣu + dΣv + n d e
        for i in 0..self.p {
            self.xty[i] += dy * self.sum_x[i] + dx[i] * self.sum_y + n * dx[i] * dy;
        }
        self.sum_yy += 2.0 * dy * self.sum_y + n * dy * dy;
        for (s, d) in self.sum_x.iter_mut().zip(dx) {
            *s += n * d;
        }
        self.sum_y += n * dy;
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        (self.sum_x.len() + self.xty.len() + self.xtx.len()) * 8
    }
}

/// Accumulates rows into [`SuffStats`]: rows are staged in a `block × p`
/// column-major buffer and flushed through the Gram kernel when it is full.
#[derive(Debug)]
pub struct Accumulator {
    p: usize,
    block: usize,
    staged: usize,
    x_stage: Vec<f64>,
    y_stage: Vec<f64>,
    gram: Vec<f64>,
    n: u64,
    sum_x: Vec<f64>,
    sum_y: f64,
    sum_yy: f64,
    xty: Vec<f64>,
}

impl Accumulator {
    /// An empty accumulator of order `p` staging `block` rows. The Gram buffer
    /// is allocated at the first flush.
    pub fn new(p: usize, block: usize) -> Self {
        let block = block.max(1);
        Accumulator {
            p,
            block,
            staged: 0,
            x_stage: Vec::new(),
            y_stage: Vec::new(),
            gram: Vec::new(),
            n: 0,
            sum_x: vec![0.0; p],
            sum_y: 0.0,
            sum_yy: 0.0,
            xty: vec![0.0; p],
        }
    }

    /// Bytes this accumulator may hold at most: the Gram buffer (whose upper
    /// triangle is never touched, so about half of it is resident) and the stage.
    pub fn max_bytes(p: usize, block: usize) -> u64 {
        let gram_resident = (packed_len(p) + p * 512) as u64; // lower triangle + page rounding per column
        (gram_resident + (block * p + block + 2 * p) as u64) * 8
    }

    /// Rows staged and not yet flushed.
    pub fn staged(&self) -> usize {
        self.staged
    }

    /// Stages a row (already shifted) and flushes when the stage is full.
    pub fn push(&mut self, x: &[f64], y: f64, par: Par) {
        self.stage_row(x.iter().copied(), y, par)
    }

    /// Stages the row `x − shift` with target `y` (already shifted) and
    /// flushes when the stage is full.
    pub fn push_shifted(&mut self, x: &[f64], shift: &[f64], y: f64, par: Par) {
        self.stage_row(x.iter().zip(shift).map(|(a, b)| a - b), y, par)
    }

    fn stage_row(&mut self, x: impl Iterator<Item = f64>, y: f64, par: Par) {
        if self.x_stage.is_empty() {
            self.x_stage = vec![0.0; self.block * self.p];
            self.y_stage = vec![0.0; self.block];
        }
        let r = self.staged;
        for (j, v) in x.take(self.p).enumerate() {
            self.x_stage[r + j * self.block] = v;
        }
        self.y_stage[r] = y;
        self.staged += 1;
        if self.staged == self.block {
            self.flush(par);
        }
    }

    /// Folds the staged rows into the sums.
    pub fn flush(&mut self, par: Par) {
        let k = self.staged;
        if k == 0 {
            return;
        }
        if self.gram.is_empty() {
            self.gram = vec![0.0; self.p * self.p];
        }
        gram::syrk_lower(&mut self.gram, self.p, &self.x_stage, k, self.block, par);
        gram::gemv_t(
            &mut self.xty,
            &self.x_stage,
            k,
            self.block,
            &self.y_stage[..k],
        );
        gram::col_sums(&mut self.sum_x, &self.x_stage, k, self.block);
        for &y in &self.y_stage[..k] {
            self.sum_y += y;
            self.sum_yy += y * y;
        }
        self.n += k as u64;
        self.staged = 0;
    }

    /// The statistics so far, staged rows included (flushes them).
    pub fn finish(&mut self, par: Par) -> SuffStats {
        self.flush(par);
        let p = self.p;
        let mut xtx = vec![0.0; packed_len(p)];
        if !self.gram.is_empty() {
            for i in 0..p {
                for j in 0..=i {
                    xtx[packed_index(i, j)] = self.gram[i + j * p];
                }
            }
        }
        SuffStats {
            p,
            n: self.n,
            sum_x: self.sum_x.clone(),
            sum_y: self.sum_y,
            sum_yy: self.sum_yy,
            xty: self.xty.clone(),
            xtx,
        }
    }

    /// The exact state, staged rows kept as they are (for checkpoints): the
    /// flushed sums and the staged rows (row-major `staged × p`) with their y.
    pub fn snapshot(&self) -> (SuffStats, Vec<f64>, Vec<f64>) {
        let p = self.p;
        let mut xtx = vec![0.0; packed_len(p)];
        if !self.gram.is_empty() {
            for i in 0..p {
                for j in 0..=i {
                    xtx[packed_index(i, j)] = self.gram[i + j * p];
                }
            }
        }
        let mut rows = Vec::with_capacity(self.staged * p);
        for r in 0..self.staged {
            rows.extend((0..p).map(|j| self.x_stage[r + j * self.block]));
        }
        let stats = SuffStats {
            p,
            n: self.n,
            sum_x: self.sum_x.clone(),
            sum_y: self.sum_y,
            sum_yy: self.sum_yy,
            xty: self.xty.clone(),
            xtx,
        };
        (stats, rows, self.y_stage[..self.staged].to_vec())
    }

    /// Rebuilds an accumulator from a [`Self::snapshot`]; continuing it gives
    /// the same bits as never having stopped.
    pub fn restore(
        stats: &SuffStats,
        staged_x: &[f64],
        staged_y: &[f64],
        block: usize,
    ) -> Result<Self> {
        let p = stats.p;
        let block = block.max(1);
        if staged_y.len() >= block
            || staged_x.len() != staged_y.len() * p
            || stats.xtx.len() != packed_len(p)
        {
            return Err(Error::Shape(format!(
                "checkpoint accumulator: {} staged rows for a block of {block}, {} staged values, {} Gram values for p = {p}",
                staged_y.len(),
                staged_x.len(),
                stats.xtx.len()
            )));
        }
        let mut acc = Accumulator::new(p, block);
        acc.n = stats.n;
        acc.sum_x = stats.sum_x.clone();
        acc.sum_y = stats.sum_y;
        acc.sum_yy = stats.sum_yy;
        acc.xty = stats.xty.clone();
        if stats.n > 0 {
            acc.gram = vec![0.0; p * p];
            for i in 0..p {
                for j in 0..=i {
                    acc.gram[i + j * p] = stats.xtx[packed_index(i, j)];
                }
            }
        }
        for (r, y) in staged_y.iter().enumerate() {
            // Never flushes: fewer than `block` rows.
            acc.push(&staged_x[r * p..(r + 1) * p], *y, Par::Seq);
        }
        Ok(acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn naive(rows: &[Vec<f64>], ys: &[f64], p: usize) -> SuffStats {
        let mut s = SuffStats::zeros(p);
        for (x, &y) in rows.iter().zip(ys) {
            s.n += 1;
            s.sum_y += y;
            s.sum_yy += y * y;
            for i in 0..p {
                s.sum_x[i] += x[i];
                s.xty[i] += x[i] * y;
                for j in 0..=i {
                    s.xtx[packed_index(i, j)] += x[i] * x[j];
                }
            }
        }
        s
    }

    fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
        a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
    }

    #[test]
    fn matches_naive_for_several_blocks_and_sizes() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        for &(p, n) in &[(1, 1), (5, 17), (33, 100), (70, 300)] {
            let rows: Vec<Vec<f64>> = (0..n)
                .map(|_| (0..p).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect())
                .collect();
            let ys: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
            let want = naive(&rows, &ys, p);
            for block in [1, 4, 64, 1000] {
                let mut acc = Accumulator::new(p, block);
                for (x, &y) in rows.iter().zip(&ys) {
                    acc.push(x, y, Par::Seq);
                }
                let got = acc.finish(Par::Seq);
                assert_eq!(got.n, want.n);
                assert!(
                    close(&got.xtx, &want.xtx, 1e-12),
                    "p={p} n={n} block={block}"
                );
                assert!(close(&got.xty, &want.xty, 1e-12));
                assert!(close(&got.sum_x, &want.sum_x, 1e-12));
                assert!((got.sum_yy - want.sum_yy).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn snapshot_restore_continues_bitwise() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(4);
        let p = 20;
        let rows: Vec<Vec<f64>> = (0..57)
            .map(|_| (0..p).map(|_| rng.random::<f64>()).collect())
            .collect();
        let mut whole = Accumulator::new(p, 8);
        for x in &rows {
            whole.push(x, x[0], Par::Seq);
        }
        let want = whole.finish(Par::Seq);
        for cut in [0, 5, 8, 30, 57] {
            let mut first = Accumulator::new(p, 8);
            for x in &rows[..cut] {
                first.push(x, x[0], Par::Seq);
            }
            let (s, sx, sy) = first.snapshot();
            let mut resumed = Accumulator::restore(&s, &sx, &sy, 8).unwrap();
            for x in &rows[cut..] {
                resumed.push(x, x[0], Par::Seq);
            }
            assert_eq!(resumed.finish(Par::Seq), want, "cut at {cut}");
        }
    }

    #[test]
    fn reshift_is_exact_algebra() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
        let p = 6;
        let rows: Vec<Vec<f64>> = (0..40)
            .map(|_| (0..p).map(|_| rng.random::<f64>() + 3.0).collect())
            .collect();
        let ys: Vec<f64> = (0..40).map(|_| rng.random::<f64>() + 1.0).collect();
        let (s1, s2): (Vec<f64>, Vec<f64>) =
            ((0..p).map(|i| i as f64 * 0.1).collect(), vec![3.5; p]);
        let (y1, y2) = (0.2, 1.5);
        let shifted = |s: &[f64], y0: f64| {
            let r: Vec<Vec<f64>> = rows
                .iter()
                .map(|x| x.iter().zip(s).map(|(a, b)| a - b).collect())
                .collect();
            let y: Vec<f64> = ys.iter().map(|y| y - y0).collect();
            naive(&r, &y, p)
        };
        let mut a = shifted(&s1, y1);
        let want = shifted(&s2, y2);
        let dx: Vec<f64> = s1.iter().zip(&s2).map(|(a, b)| a - b).collect();
        a.reshift(&dx, y1 - y2);
        assert!(
            close(&a.xtx, &want.xtx, 1e-12)
                && close(&a.xty, &want.xty, 1e-12)
                && close(&a.sum_x, &want.sum_x, 1e-12)
        );
        assert!((a.sum_yy - want.sum_yy).abs() < 1e-10 && (a.sum_y - want.sum_y).abs() < 1e-12);
    }
}

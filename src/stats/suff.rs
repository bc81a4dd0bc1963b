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
    /// Pixels per row (P): the length of `sum_x` and `xty`, the order of `xtx`.
    pub p: usize,
    /// Number of rows summed (0 for empty statistics).
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
            return Err(Error::shape(
                "adding statistics",
                format!("{} pixels", self.p),
                format!("{} pixels", other.p),
            ));
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
    pub(crate) fn sub(&mut self, other: &SuffStats) -> Result<()> {
        if other.p != self.p || other.n > self.n {
            return Err(Error::shape(
                "subtracting statistics",
                format!("at most {} rows of {} pixels", self.n, self.p),
                format!("{} rows of {} pixels", other.n, other.p),
            ));
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
    pub(crate) fn reshift(&mut self, dx: &[f64], dy: f64) {
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

    /// Bytes of the three sum vectors (`sum_x`, `xty`, `xtx`), 8 per value.
    pub fn bytes(&self) -> usize {
        (self.sum_x.len() + self.xty.len() + self.xtx.len()) * 8
    }
}

/// Tiles of the packing loops: a 64 × 64 tile of column-major source and
/// row-major destination stays in cache; the untiled loop read the Gram with
/// stride P and took ~0.6 s per accumulator at P = 4096 (perf).
const TILE: usize = 64;

/// Copies the lower triangle of a column-major `p × p` matrix into packed
/// lower row-major order.
fn pack_lower(full: &[f64], p: usize, packed: &mut [f64]) {
    pack_range(full, p, 0, packed);
}

/// Packed values `start .. start + out.len()` (packed lower row-major) of
/// the lower triangle of the column-major `p × p` matrix `full`.
fn pack_range(full: &[f64], p: usize, start: usize, out: &mut [f64]) {
    let end = start + out.len();
    if out.is_empty() {
        return;
    }
    assert!(end <= packed_len(p) && full.len() == p * p, "packing sizes");
    let (first, last) = (packed_row(start), packed_row(end - 1));
    for ib in (first..=last).step_by(TILE) {
        let ie = (ib + TILE).min(last + 1);
        for jb in (0..ie).step_by(TILE) {
            for i in ib..ie {
                let row = i * (i + 1) / 2;
                let lo = jb.max(start.saturating_sub(row));
                let hi = (jb + TILE).min(i + 1).min(end - row);
                for j in lo..hi {
                    out[row + j - start] = full[i + j * p];
                }
            }
        }
    }
}

/// The row i of the packed lower triangle that holds packed index `k`:
/// the largest i with i(i+1)/2 ≤ k.
fn packed_row(k: usize) -> usize {
    let mut i = (((8 * k + 1) as f64).sqrt() as usize).saturating_sub(1) / 2;
    while (i + 1) * (i + 2) / 2 <= k {
        i += 1;
    }
    while i * (i + 1) / 2 > k {
        i -= 1;
    }
    i
}

/// One accumulator's sums on their way into a statistics file. An
/// accumulator's Gram buffer is packed a slice at a time into the writer's
/// buffer: a packed copy per accumulator was a fresh 67 MB to fault in at P
/// = 4096, half of the page faults of a 70-accumulator pass (perf).
#[derive(Debug)]
pub enum Sums<'a> {
    /// Statistics already packed (merged, read, or a range's totals).
    Packed(SuffStats),
    /// The same, borrowed.
    PackedRef(&'a SuffStats),
    /// An accumulator's flushed sums (its staged rows are not included),
    /// dropped once written: the pages it frees are warm for the page
    /// cache that takes the file (fresh pages cost 0.5–2 GB/s on this VM).
    Gram(Accumulator),
    /// The same, borrowed (checkpoints).
    GramRef(&'a Accumulator),
}

impl Sums<'_> {
    fn parts(&self) -> (usize, u64, &[f64], &[f64], f64, f64) {
        match self {
            Sums::Packed(s) => (s.p, s.n, &s.sum_x, &s.xty, s.sum_y, s.sum_yy),
            Sums::PackedRef(s) => (s.p, s.n, &s.sum_x, &s.xty, s.sum_y, s.sum_yy),
            Sums::Gram(a) => (a.p, a.n, &a.sum_x, &a.xty, a.sum_y, a.sum_yy),
            Sums::GramRef(a) => (a.p, a.n, &a.sum_x, &a.xty, a.sum_y, a.sum_yy),
        }
    }

    /// Pixels per row.
    pub fn p(&self) -> usize {
        self.parts().0
    }

    /// Rows summed.
    pub fn n(&self) -> u64 {
        self.parts().1
    }

    /// Σ(x − x₀).
    pub fn sum_x(&self) -> &[f64] {
        self.parts().2
    }

    /// Σ(x − x₀)(y − y₀).
    pub fn xty(&self) -> &[f64] {
        self.parts().3
    }

    /// Σ(y − y₀).
    pub fn sum_y(&self) -> f64 {
        self.parts().4
    }

    /// Σ(y − y₀)².
    pub fn sum_yy(&self) -> f64 {
        self.parts().5
    }

    /// The packed Gram whole, or the accumulator to pack it from.
    fn xtx(&self) -> Result<&[f64], &Accumulator> {
        match self {
            Sums::Packed(s) => Ok(&s.xtx),
            Sums::PackedRef(s) => Ok(&s.xtx),
            Sums::Gram(a) => Err(a),
            Sums::GramRef(a) => Err(a),
        }
    }

    /// Length of the packed Gram these sums hold.
    pub fn xtx_len(&self) -> usize {
        self.xtx().map_or_else(|a| packed_len(a.p), <[f64]>::len)
    }

    /// The packed Gram whole, when it is already packed.
    pub fn packed_xtx(&self) -> Option<&[f64]> {
        self.xtx().ok()
    }

    /// Packed Gram values `start .. start + out.len()`.
    pub fn xtx_range(&self, start: usize, out: &mut [f64]) {
        match self.xtx() {
            Ok(x) => out.copy_from_slice(&x[start..start + out.len()]),
            Err(a) if a.gram.is_empty() => out.fill(0.0),
            Err(a) => pack_range(&a.gram, a.p, start, out),
        }
    }
}

/// The inverse of [`pack_lower`] (the upper triangle is left untouched).
fn unpack_lower(packed: &[f64], p: usize, full: &mut [f64]) {
    for ib in (0..p).step_by(TILE) {
        for jb in (0..=ib).step_by(TILE) {
            for i in ib..(ib + TILE).min(p) {
                let row = i * (i + 1) / 2;
                for j in jb..(jb + TILE).min(i + 1) {
                    full[i + j * p] = packed[row + j];
                }
            }
        }
    }
}

/// A zeroed `p × p` buffer whose lower triangle is already resident.
///
/// The kernel reads C before writing it (β = 1). On pages fresh from calloc
/// that read maps the shared zero page, and the write then copies it and
/// flushes the old mapping from every core's TLB: an inter-processor
/// interrupt per page, which perf showed taking a third of the pass (2.7 GB of
/// Gram matrices = 650k pages). Writing each page of the lower triangle once
/// first gives it a private page directly, with no flush.
///
/// The first touch is most of a new buffer's cost (on this VM 0.5–2 GB/s:
/// 10 s of a 30 s pass for 70 accumulators at P = 4096, perf), so it runs
/// on the current rayon pool unless `par` is `Par::Seq`; the zeros are the
/// same either way.
fn new_gram(p: usize, par: Par) -> Vec<f64> {
    use rayon::prelude::*;
    let mut g = vec![0.0f64; p * p];
    const PAGE: usize = 4096;
    const SIZE: usize = std::mem::size_of::<f64>();
    // By address: the allocator's buffer need not start on a page (glibc's
    // large blocks start 16 bytes in), and counting pages from the column's
    // start missed the page each column shares with the next — 14 MB per
    // Gram at P = 4096, each then a copy-on-write fault with a TLB shootdown
    // inside the kernel (4.5 % of a cells pass, perf).
    let touch = |(j, col): (usize, &mut [f64])| {
        let base = col.as_ptr() as usize;
        let mut i = j;
        while i < p {
            // SAFETY: `i < p` indexes inside `col`; a volatile write of the
            // value already there, so the compiler cannot drop it as a no-op.
            unsafe { std::ptr::write_volatile(&mut col[i], 0.0) };
            let next_page = ((base + i * SIZE) / PAGE + 1) * PAGE;
            i = (next_page - base).div_ceil(SIZE);
        }
    };
    if p > 0 {
        match par {
            Par::Seq => g.chunks_mut(p).enumerate().for_each(touch),
            _ => g
                .par_chunks_mut(p)
                .enumerate()
                .with_min_len(64)
                .for_each(touch),
        }
    }
    g
}

#[cfg(test)]
impl SuffStats {
    /// Adds one row by plain loops: the reference the tests hold the
    /// accumulators to.
    pub(crate) fn push_naive(&mut self, x: &[f64], y: f64) {
        self.n += 1;
        self.sum_y += y;
        self.sum_yy += y * y;
        for i in 0..self.p {
            self.sum_x[i] += x[i];
            self.xty[i] += x[i] * y;
            for j in 0..=i {
                self.xtx[packed_index(i, j)] += x[i] * x[j];
            }
        }
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
    /// The first non-finite diagonal entry of `gram`, found when a flush
    /// makes it so: checking all P diagonal entries of every accumulator
    /// after every chunk was a TLB miss each (1.4 % of a 70-accumulator
    /// pass, perf), and the sums never turn finite again.
    bad_diagonal: Option<usize>,
    n: u64,
    sum_x: Vec<f64>,
    sum_y: f64,
    sum_yy: f64,
    xty: Vec<f64>,
    precision: gram::Precision,
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
            bad_diagonal: None,
            n: 0,
            sum_x: vec![0.0; p],
            sum_y: 0.0,
            sum_yy: 0.0,
            xty: vec![0.0; p],
            precision: gram::Precision::F64,
        }
    }

    /// This accumulator forming its block products in `precision` (f64
    /// unless asked).
    pub fn with_precision(mut self, precision: gram::Precision) -> Self {
        self.precision = precision;
        self
    }

    /// Bytes this accumulator may hold at most: the resident part of the
    /// Gram buffer (its lower triangle, plus up to one 4 KiB page per column
    /// where a column's resident part starts mid-page: the upper triangle is
    /// never touched), the stage, and the sums.
    pub(crate) fn max_bytes(p: usize, block: usize) -> u64 {
        let gram_resident = packed_len(p) as u64 * 8 + p as u64 * 4096;
        gram_resident + (block * p + block + 2 * p) as u64 * 8
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
        // Rows are staged contiguously (the block is P × k column-major):
        // a strided layout cost a TLB miss per pixel.
        for (slot, v) in self.x_stage[r * self.p..(r + 1) * self.p].iter_mut().zip(x) {
            *slot = v;
        }
        self.y_stage[r] = y;
        self.staged += 1;
        if self.staged == self.block {
            self.flush(par);
        }
    }

    /// The first non-finite sum folded in so far (`"xtx[i, i]"`,
    /// `"sum_x[i]"`, `"xty[i]"`, `"sum_y"`, `"sum_yy"`), if any. The
    /// diagonal bounds every entry of the Gram (|g_ij| ≤ √(g_ii g_jj)), so
    /// P values check all P²: cheap enough to run after every chunk.
    pub fn non_finite(&self) -> Option<String> {
        if let Some(i) = self.bad_diagonal {
            return Some(format!("xtx[{i}, {i}]"));
        }
        if let Some(i) = self.sum_x.iter().position(|v| !v.is_finite()) {
            return Some(format!("sum_x[{i}]"));
        }
        if let Some(i) = self.xty.iter().position(|v| !v.is_finite()) {
            return Some(format!("xty[{i}]"));
        }
        if !self.sum_y.is_finite() {
            return Some("sum_y".into());
        }
        (!self.sum_yy.is_finite()).then(|| "sum_yy".into())
    }

    /// Records the first non-finite diagonal entry, if there is one and
    /// none was recorded before.
    fn check_diagonal(&mut self) {
        let (p, g) = (self.p, &self.gram);
        if self.bad_diagonal.is_none() && !g.is_empty() {
            self.bad_diagonal = (0..p).find(|&i| !g[i * p + i].is_finite());
        }
    }

    /// Folds the staged rows into the sums.
    pub(crate) fn flush(&mut self, par: Par) {
        let k = self.staged;
        if k == 0 {
            return;
        }
        if self.gram.is_empty() {
            self.gram = new_gram(self.p, par);
        }
        let block = &self.x_stage[..k * self.p];
        gram::syrk_lower_with(&mut self.gram, self.p, block, k, par, self.precision);
        gram::add_weighted_rows(&mut self.xty, block, &self.y_stage[..k]);
        gram::add_rows(&mut self.sum_x, block);
        for &y in &self.y_stage[..k] {
            self.sum_y += y;
            self.sum_yy += y * y;
        }
        self.n += k as u64;
        self.staged = 0;
        self.check_diagonal();
    }

    /// The statistics so far, staged rows included (flushes them).
    pub fn finish(&mut self, par: Par) -> SuffStats {
        self.flush(par);
        let p = self.p;
        let mut xtx = vec![0.0; packed_len(p)];
        if !self.gram.is_empty() {
            pack_lower(&self.gram, p, &mut xtx);
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

    /// Ends a range of a ranged pass ([`super::ranges`]): the sums so far,
    /// staged rows included, added into `out` (`add`) or written over it,
    /// then this accumulator emptied in place — the same bits as [`Self::finish`]
    /// into a fresh accumulator, without allocating or faulting in a new
    /// Gram buffer per range (measured: that cost a third of a 10,000-row
    /// range at P = 4096). Only the lower triangle is written, as ever.
    pub(crate) fn drain_into(&mut self, out: &mut SuffStats, add: bool, par: Par) -> Result<()> {
        self.flush(par);
        let p = self.p;
        if out.p != p || out.xtx.len() != packed_len(p) {
            return Err(Error::shape(
                "a range's statistics",
                format!("{p} pixels"),
                format!("{} pixels", out.p),
            ));
        }
        let merge = |o: &mut f64, v: f64| if add { *o += v } else { *o = v };
        if self.gram.is_empty() {
            if !add {
                out.xtx.fill(0.0);
            }
        } else {
            for ib in (0..p).step_by(TILE) {
                for jb in (0..=ib).step_by(TILE) {
                    for i in ib..(ib + TILE).min(p) {
                        let row = i * (i + 1) / 2;
                        for j in jb..(jb + TILE).min(i + 1) {
                            merge(&mut out.xtx[row + j], self.gram[i + j * p]);
                        }
                    }
                }
            }
            for j in 0..p {
                self.gram[j * p + j..(j + 1) * p].fill(0.0);
            }
            self.bad_diagonal = None;
        }
        for (o, v) in out.sum_x.iter_mut().zip(&mut self.sum_x) {
            merge(o, std::mem::take(v));
        }
        for (o, v) in out.xty.iter_mut().zip(&mut self.xty) {
            merge(o, std::mem::take(v));
        }
        merge(&mut out.sum_y, std::mem::take(&mut self.sum_y));
        merge(&mut out.sum_yy, std::mem::take(&mut self.sum_yy));
        out.n = if add { out.n + self.n } else { self.n };
        self.n = 0;
        Ok(())
    }

    /// The exact state, staged rows kept as they are (for checkpoints): the
    /// flushed sums and the staged rows (row-major `staged × p`) with their y.
    pub fn snapshot(&self) -> (SuffStats, Vec<f64>, Vec<f64>) {
        let (rows, ys) = self.staged_rows();
        (self.sums(), rows, ys)
    }

    /// Copies of the rows staged and not yet folded in, and their y.
    pub fn staged_rows(&self) -> (Vec<f64>, Vec<f64>) {
        let p = self.p;
        let mut rows = Vec::with_capacity(self.staged * p);
        for r in 0..self.staged {
            rows.extend_from_slice(&self.x_stage[r * p..(r + 1) * p]);
        }
        (rows, self.y_stage[..self.staged].to_vec())
    }

    /// A copy of the sums folded in so far (staged rows excluded).
    pub fn sums(&self) -> SuffStats {
        let p = self.p;
        let mut xtx = vec![0.0; packed_len(p)];
        if !self.gram.is_empty() {
            pack_lower(&self.gram, p, &mut xtx);
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
            return Err(Error::shape(
                "checkpoint accumulator",
                format!(
                    "fewer staged rows than a block of {block}, {p} values per staged row, {} Gram values",
                    packed_len(p)
                ),
                format!(
                    "{} staged rows, {} staged values, {} Gram values",
                    staged_y.len(),
                    staged_x.len(),
                    stats.xtx.len()
                ),
            ));
        }
        let mut acc = Accumulator::new(p, block);
        acc.n = stats.n;
        acc.sum_x = stats.sum_x.clone();
        acc.sum_y = stats.sum_y;
        acc.sum_yy = stats.sum_yy;
        acc.xty = stats.xty.clone();
        if stats.n > 0 {
            acc.gram = new_gram(p, Par::Seq);
            unpack_lower(&stats.xtx, p, &mut acc.gram);
            acc.check_diagonal();
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

    #[test]
    fn a_non_finite_gram_is_reported_from_its_flush_on() {
        let p = 3;
        let mut acc = Accumulator::new(p, 2);
        acc.push(&[1.0, 2.0, 3.0], 1.0, Par::Seq);
        assert_eq!(acc.non_finite(), None);
        // Staged rows are not summed yet; the flush folds them in.
        acc.push(&[1.0, 1e200, 3.0], 1.0, Par::Seq);
        assert_eq!(acc.non_finite().as_deref(), Some("xtx[1, 1]"));
        acc.push(&[1.0, 2.0, 3.0], 1.0, Par::Seq);
        acc.push(&[1.0, 2.0, 3.0], 1.0, Par::Seq);
        assert_eq!(
            acc.non_finite().as_deref(),
            Some("xtx[1, 1]"),
            "stays reported"
        );
        let mut out = SuffStats::zeros(p);
        acc.drain_into(&mut out, false, Par::Seq).unwrap();
        assert_eq!(acc.non_finite(), None, "emptied");
        let (stats, x, y) = (out, Vec::new(), Vec::new());
        let restored = Accumulator::restore(&stats, &x, &y, 2).unwrap();
        assert_eq!(
            restored.non_finite().as_deref(),
            Some("xtx[1, 1]"),
            "restored"
        );
    }

    #[test]
    fn any_packed_range_is_that_slice_of_the_packed_triangle() {
        for p in [1, 2, 5, 64, 65, 131] {
            let full: Vec<f64> = (0..p * p).map(|v| v as f64).collect();
            let mut want = vec![0.0; packed_len(p)];
            for i in 0..p {
                for j in 0..=i {
                    want[packed_index(i, j)] = full[i + j * p];
                }
            }
            let l = packed_len(p);
            for k in 0..l {
                assert!(packed_row(k) * (packed_row(k) + 1) / 2 <= k);
                assert!((packed_row(k) + 1) * (packed_row(k) + 2) / 2 > k);
            }
            for len in [1, 3, 64, 257, l] {
                for start in (0..l.saturating_sub(len) + 1).step_by(7) {
                    let mut out = vec![-1.0; len.min(l - start)];
                    pack_range(&full, p, start, &mut out);
                    assert_eq!(out, want[start..start + out.len()], "p {p} start {start}");
                }
            }
            let mut whole = vec![0.0; l];
            pack_lower(&full, p, &mut whole);
            assert_eq!(whole, want);
        }
    }

    fn naive(rows: &[Vec<f64>], ys: &[f64], p: usize) -> SuffStats {
        let mut s = SuffStats::zeros(p);
        for (x, &y) in rows.iter().zip(ys) {
            s.push_naive(x, y);
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
    fn packing_round_trips_for_sizes_around_the_tile() {
        for p in [1, 2, 63, 64, 65, 130] {
            let full: Vec<f64> = (0..p * p).map(|i| i as f64).collect();
            let mut packed = vec![0.0; packed_len(p)];
            pack_lower(&full, p, &mut packed);
            for i in 0..p {
                for j in 0..=i {
                    assert_eq!(packed[packed_index(i, j)], full[i + j * p]);
                }
            }
            let mut back = vec![-1.0; p * p];
            unpack_lower(&packed, p, &mut back);
            for i in 0..p {
                for j in 0..p {
                    assert_eq!(back[i + j * p], if i >= j { full[i + j * p] } else { -1.0 });
                }
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

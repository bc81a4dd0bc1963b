//! The Gram kernel: `C_lower += Xᵀ X` for a block of staged rows.
//!
//! Chosen by measurement (benches/gram.rs, README "Performance"). At
//! P = 4096 and 256-row blocks on this machine's 2 cores, faer 0.22's
//! triangular product reached 124 GFLOP/s in its best layout; the system
//! OpenBLAS (Debian 0.3.21, SkylakeX kernels) runs at ~80 GFLOP/s per core.
//! OpenBLAS's own threading, however, is **not** bitwise reproducible across
//! thread counts (P = 130, k = 257 differs between 1 and 2 threads). So with
//! the default `openblas` feature we split the lower triangle ourselves into
//! column panels fixed by P alone — each a single-threaded `dsyrk` on its
//! diagonal block and a `dgemm` below it — and run the panels on the rayon
//! pool. Every output element is then computed by the same call whatever the
//! thread count, and the bits cannot change (pinned by tests here and by the
//! pass's thread-determinism tests). Without the feature, faer is used (it
//! splits only the output, so it is reproducible too).
//!
//! The destination is a full `P × P` column-major buffer of which only the
//! lower triangle is ever written; it is allocated zeroed by the OS
//! (`vec![0.0; n]` → calloc), so the untouched upper-triangle pages never
//! become resident.
//!
//! [`Precision::Mixed`] (opt-in, never the default) forms each block's
//! product in f32 — the same panels, `ssyrk`/`sgemm` into a per-thread f32
//! panel — and adds it into the f64 sums, so only one block's k products are
//! summed in f32 (the rows are shifted by x₀, which keeps their magnitudes
//! small); across blocks the sums stay f64. Same bits for any thread count,
//! like the f64 kernel.

use std::cell::RefCell;

use faer::Par;
use serde::{Deserialize, Serialize};

/// How a block of rows' Gram product is formed before it is added into the
/// f64 sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Every product and sum in f64 (the default; the NIST checks' precision).
    #[default]
    F64,
    /// Block products in f32 (1.55× the f64 kernel at 256-row blocks here),
    /// summed into f64 accumulators: only when asked (`--precision mixed`).
    Mixed,
}

impl Precision {
    /// Whether this is the default (f64): the statistics file records the
    /// precision only when it is not.
    pub fn is_f64(&self) -> bool {
        *self == Precision::F64
    }

    /// The name used in the CLI, configs and files.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F64 => "f64",
            Precision::Mixed => "mixed",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f64" => Ok(Precision::F64),
            "mixed" => Ok(Precision::Mixed),
            _ => Err(format!("unknown precision {s:?} (f64 or mixed)")),
        }
    }
}

#[cfg(feature = "openblas")]
extern "C" {
    fn openblas_set_num_threads(n: std::os::raw::c_int);
}

/// Makes OpenBLAS single-threaded (we parallelise over panels); call once
/// before the kernel. No-op with faer.
pub fn init() {
    #[cfg(feature = "openblas")]
    // SAFETY: a plain setter of OpenBLAS's internal thread count.
    unsafe {
        openblas_set_num_threads(1)
    };
}

/// Column boundaries of the panels for order p: equal shares of the lower
/// triangle's work, a number that depends on p only.
pub fn panels(p: usize) -> Vec<usize> {
    let count = (p / 256).clamp(1, 16);
    let total = (p * (p + 1) / 2) as f64;
    let mut bounds = vec![0];
    let mut done = 0.0;
    let mut share = 1;
    for j in 0..p {
        done += (p - j) as f64;
        if share < count && done >= total * share as f64 / count as f64 {
            bounds.push(j + 1);
            share += 1;
        }
    }
    if *bounds.last().unwrap_or(&0) != p {
        bounds.push(p);
    }
    bounds
}

/// `c_lower += Σ_r x_r x_rᵀ` for `k` rows stored contiguously in `x`
/// (`x[r·p + j]` is row r, pixel j: a `p × k` column-major matrix S, and the
/// update is S Sᵀ); `c` is `p × p` column-major and only its lower triangle
/// (with the diagonal) is read or written. Sizes are the caller's invariants
/// (checked). Parallel on the current rayon pool when `par` is not
/// `Par::Seq`; same bits either way.
pub fn syrk_lower(c: &mut [f64], p: usize, x: &[f64], k: usize, par: Par) {
    if k == 0 || p == 0 {
        return;
    }
    assert!(c.len() == p * p && x.len() == p * k, "Gram kernel sizes");
    #[cfg(feature = "openblas")]
    {
        for_each_panel(c, p, par, |j0, j1, panel| {
            panel_update(panel, p, j0, j1, x, k)
        });
    }
    #[cfg(not(feature = "openblas"))]
    {
        use faer::linalg::matmul::triangular::{matmul, BlockStructure};
        use faer::{Accum, MatMut, MatRef};
        let c = MatMut::from_column_major_slice_mut(c, p, p);
        let s = MatRef::from_column_major_slice(x, p, k);
        matmul(
            c,
            BlockStructure::TriangularLower,
            Accum::Add,
            s,
            BlockStructure::Rectangular,
            s.transpose(),
            BlockStructure::Rectangular,
            1.0,
            par,
        );
    }
}

/// Runs `work(j0, j1, columns j0..j1 of c)` for each panel of
/// [`panels`]`(p)` (c is p × p column-major), on the current rayon pool
/// unless `par` is `Par::Seq`. Each panel is one call on one thread, so the
/// bits never depend on the thread count.
fn for_each_panel(
    c: &mut [f64],
    p: usize,
    par: Par,
    work: impl Fn(usize, usize, &mut [f64]) + Send + Sync,
) {
    use rayon::prelude::*;
    let bounds = panels(p);
    // Disjoint column ranges of c, one per panel.
    let mut cols: Vec<(usize, usize, &mut [f64])> = Vec::with_capacity(bounds.len());
    let mut rest = c;
    for w in bounds.windows(2) {
        let (panel, tail) = rest.split_at_mut((w[1] - w[0]) * p);
        cols.push((w[0], w[1], panel));
        rest = tail;
    }
    let run = |(j0, j1, panel): (usize, usize, &mut [f64])| work(j0, j1, panel);
    match par {
        Par::Seq => cols.into_iter().for_each(run),
        _ => cols.into_par_iter().for_each(run),
    }
}

/// Bytes of f32 scratch the mixed kernel holds per thread for order `p` and
/// blocks of `k` rows: the block in f32 (the flushing thread) plus one f32
/// panel (each kernel thread), at most `p` × the widest panel.
pub fn mixed_scratch_bytes(p: usize, k: usize, threads: usize) -> u64 {
    let widest = panels(p).windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    (p * k * 4) as u64 + threads.max(1) as u64 * (p * widest * 4) as u64
}

thread_local! {
    /// The mixed kernel's f32 buffers, kept per thread: a fresh allocation
    /// per block would fault its pages in again every time.
    static BLOCK_F32: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static PANEL_F32: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// [`syrk_lower`] under a [`Precision`]: `Mixed` forms the block's product
/// in f32 and adds it into `c` (f64).
pub fn syrk_lower_with(
    c: &mut [f64],
    p: usize,
    x: &[f64],
    k: usize,
    par: Par,
    precision: Precision,
) {
    match precision {
        Precision::F64 => syrk_lower(c, p, x, k, par),
        Precision::Mixed => syrk_lower_mixed(c, p, x, k, par),
    }
}

/// `c_lower += Σ_r x_r x_rᵀ` with each panel's products formed in f32
/// (one `ssyrk` on the diagonal block, one `sgemm` below it, into a
/// per-thread f32 panel) and then added into `c` in f64. The panels are
/// [`panels`]`(p)`, each computed by one thread: same bits for any `par`.
pub fn syrk_lower_mixed(c: &mut [f64], p: usize, x: &[f64], k: usize, par: Par) {
    if k == 0 || p == 0 {
        return;
    }
    assert!(c.len() == p * p && x.len() == p * k, "Gram kernel sizes");
    BLOCK_F32.with_borrow_mut(|x32| {
        x32.clear();
        x32.extend(x.iter().map(|&v| v as f32));
        let x32: &[f32] = x32;
        for_each_panel(c, p, par, |j0, j1, panel| {
            PANEL_F32.with_borrow_mut(|scratch| {
                let ld = p - j0;
                let n = ld * (j1 - j0);
                if scratch.len() < n {
                    scratch.resize(n, 0.0);
                }
                // Overwritten by the products (beta = 0): no zeroing per block.
                let scratch = &mut scratch[..n];
                panel_products_f32(scratch, p, j0, j1, x32, k);
                // Column j0 + c of c, rows j0 + c.. p, from scratch rows c.. ld.
                for col in 0..j1 - j0 {
                    let dst = &mut panel[col * p + j0 + col..(col + 1) * p];
                    let src = &scratch[col * ld + col..(col + 1) * ld];
                    for (d, &s) in dst.iter_mut().zip(src) {
                        *d += f64::from(s);
                    }
                }
            })
        });
    })
}

/// The f32 products of panel j0..j1 written over `scratch` ((p − j0) × w,
/// column-major, ld = p − j0): the lower triangle of its top w × w block
/// (S_j Sᵀ_j for rows j0..j1 of S) and the rows below (S_below Sᵀ_j).
#[cfg(feature = "openblas")]
fn panel_products_f32(scratch: &mut [f32], p: usize, j0: usize, j1: usize, x: &[f32], k: usize) {
    use cblas_sys::{
        cblas_sgemm, cblas_ssyrk, CBLAS_LAYOUT::CblasColMajor, CBLAS_TRANSPOSE::*,
        CBLAS_UPLO::CblasLower,
    };
    let int = |v: usize| i32::try_from(v).expect("Gram kernel dimension exceeds i32");
    let (w, ld) = (j1 - j0, p - j0);
    assert!(scratch.len() == ld * w && j1 <= p && x.len() == p * k);
    // SAFETY: the w × w diagonal block is the top of `scratch` (ldc = ld ≥ w,
    // w columns: inside ld·w values); rows j0..j1 of S start at x + j0 with
    // lda = p, k columns, inside x (p·k values, checked). ssyrk writes only
    // the block's lower triangle; beta = 0 overwrites it.
    unsafe {
        cblas_ssyrk(
            CblasColMajor,
            CblasLower,
            CblasNoTrans,
            int(w),
            int(k),
            1.0,
            x.as_ptr().add(j0),
            int(p),
            0.0,
            scratch.as_mut_ptr(),
            int(ld),
        );
    }
    if j1 < p {
        // SAFETY: rows w..ld of scratch ((p − j1) × w from offset w, ldc =
        // ld) lie inside it; A = rows j1..p of S ((p − j1) × k from x + j1),
        // B = rows j0..j1 of S (w × k from x + j0, transposed), lda = ldb = p.
        unsafe {
            cblas_sgemm(
                CblasColMajor,
                CblasNoTrans,
                CblasTrans,
                int(p - j1),
                int(w),
                int(k),
                1.0,
                x.as_ptr().add(j1),
                int(p),
                x.as_ptr().add(j0),
                int(p),
                0.0,
                scratch.as_mut_ptr().add(w),
                int(ld),
            );
        }
    }
}

/// [`panel_products_f32`] through faer (builds without OpenBLAS).
#[cfg(not(feature = "openblas"))]
fn panel_products_f32(scratch: &mut [f32], p: usize, j0: usize, j1: usize, x: &[f32], k: usize) {
    use faer::linalg::matmul::triangular::{matmul, BlockStructure};
    use faer::{Accum, MatMut, MatRef};
    let (w, ld) = (j1 - j0, p - j0);
    let s = MatRef::from_column_major_slice(x, p, k);
    let sj = s.subrows(j0, w);
    let out = MatMut::from_column_major_slice_mut(scratch, ld, w);
    let (top, below) = out.split_at_row_mut(w);
    matmul(
        top,
        BlockStructure::TriangularLower,
        Accum::Replace,
        sj,
        BlockStructure::Rectangular,
        sj.transpose(),
        BlockStructure::Rectangular,
        1.0f32,
        Par::Seq,
    );
    faer::linalg::matmul::matmul(
        below,
        Accum::Replace,
        s.subrows(j1, p - j1),
        sj.transpose(),
        1.0f32,
        Par::Seq,
    );
}

/// Columns j0..j1 of the lower triangle: `panel` holds those columns of c
/// (column-major, p rows each); `x` is the p × k block S (ld = p).
#[cfg(feature = "openblas")]
fn panel_update(panel: &mut [f64], p: usize, j0: usize, j1: usize, x: &[f64], k: usize) {
    use cblas_sys::{
        cblas_dgemm, cblas_dsyrk, CBLAS_LAYOUT::CblasColMajor, CBLAS_TRANSPOSE::*,
        CBLAS_UPLO::CblasLower,
    };
    let int = |v: usize| i32::try_from(v).expect("Gram kernel dimension exceeds i32");
    let w = j1 - j0;
    assert!(panel.len() == w * p && j1 <= p && x.len() == p * k);
    // SAFETY: the diagonal block starts at row j0 of the panel (offset j0) and
    // spans w × w with ldc = p inside `panel` (w·p values); rows j0..j1 of S
    // start at x + j0 with lda = p, k columns, inside x (p·k values, checked).
    // dsyrk writes only the block's lower triangle.
    unsafe {
        cblas_dsyrk(
            CblasColMajor,
            CblasLower,
            CblasNoTrans,
            int(w),
            int(k),
            1.0,
            x.as_ptr().add(j0),
            int(p),
            1.0,
            panel.as_mut_ptr().add(j0),
            int(p),
        );
    }
    if j1 < p {
        // SAFETY: rows j1..p of the panel (offset j1, (p − j1) × w, ldc = p)
        // lie inside `panel`; A = rows j1..p of S ((p − j1) × k from x + j1),
        // B = rows j0..j1 of S (w × k from x + j0, transposed), lda = ldb = p.
        unsafe {
            cblas_dgemm(
                CblasColMajor,
                CblasNoTrans,
                CblasTrans,
                int(p - j1),
                int(w),
                int(k),
                1.0,
                x.as_ptr().add(j1),
                int(p),
                x.as_ptr().add(j0),
                int(p),
                1.0,
                panel.as_mut_ptr().add(j1),
                int(p),
            );
        }
    }
}

/// `out += Σ_r v_r x_r` over rows stored contiguously in `x` (rows of
/// `out.len()` values), in row order.
pub(crate) fn add_weighted_rows(out: &mut [f64], x: &[f64], v: &[f64]) {
    for (row, &w) in x.chunks_exact(out.len()).zip(v) {
        for (o, a) in out.iter_mut().zip(row) {
            *o += a * w;
        }
    }
}

/// `out += Σ_r x_r` over rows stored contiguously in `x`, in row order.
pub(crate) fn add_rows(out: &mut [f64], x: &[f64]) {
    for row in x.chunks_exact(out.len()) {
        for (o, a) in out.iter_mut().zip(row) {
            *o += a;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn naive(c: &mut [f64], p: usize, x: &[f64], k: usize) {
        for j in 0..p {
            for i in j..p {
                let mut s = 0.0;
                for r in 0..k {
                    s += x[r * p + i] * x[r * p + j];
                }
                c[i + j * p] += s;
            }
        }
    }

    #[test]
    fn matches_naive_and_is_bitwise_identical_across_par() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
        for &(p, k) in &[
            (1, 1),
            (3, 5),
            (17, 33),
            (64, 9),
            (130, 257),
            (600, 70),
            (1100, 300),
        ] {
            let x: Vec<f64> = (0..p * k).map(|_| rng.random::<f64>() - 0.5).collect();
            let mut want = vec![0.0; p * p];
            naive(&mut want, p, &x, k);
            init();
            let mut seq = vec![0.0; p * p];
            syrk_lower(&mut seq, p, &x, k, Par::Seq);
            let mut par = vec![0.0; p * p];
            init();
            rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap()
                .install(|| syrk_lower(&mut par, p, &x, k, Par::rayon(2)));
            for j in 0..p {
                for i in 0..p {
                    let (a, b) = (seq[i + j * p], want[i + j * p]);
                    if i >= j {
                        assert!(
                            (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                            "p={p} k={k} ({i},{j}) {a} vs {b}"
                        );
                        assert_eq!(a.to_bits(), par[i + j * p].to_bits());
                    } else {
                        assert_eq!(a, 0.0, "upper triangle untouched");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod mixed_tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn mixed_is_close_to_f64_and_bitwise_identical_across_par() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        init();
        for &(p, k) in &[(1, 1), (17, 33), (130, 257), (600, 70), (1100, 300)] {
            let x: Vec<f64> = (0..p * k).map(|_| rng.random::<f64>() - 0.5).collect();
            let mut exact = vec![0.0; p * p];
            syrk_lower(&mut exact, p, &x, k, Par::Seq);
            // Two blocks into the same sums: the f32 part is per block only.
            let mut seq = vec![0.0; p * p];
            syrk_lower_with(&mut seq, p, &x, k, Par::Seq, Precision::Mixed);
            syrk_lower_with(&mut seq, p, &x, k, Par::Seq, Precision::Mixed);
            let mut par = vec![0.0; p * p];
            rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap()
                .install(|| {
                    syrk_lower_mixed(&mut par, p, &x, k, Par::rayon(2));
                    syrk_lower_mixed(&mut par, p, &x, k, Par::rayon(2));
                });
            let mut differs = false;
            for j in 0..p {
                let scale = (exact[j + j * p] * exact[j + j * p]).sqrt().max(1e-300);
                for i in 0..p {
                    let (a, want) = (seq[i + j * p], 2.0 * exact[i + j * p]);
                    if i >= j {
                        // f32 products of k terms: relative error ~ √k · 2⁻²⁴
                        // of √(g_ii g_jj), far below 1e-4.
                        let bound = 1e-4 * (exact[i + i * p] * exact[j + j * p]).sqrt() * 2.0;
                        assert!(
                            (a - want).abs() <= bound.max(1e-4 * scale),
                            "p={p} k={k} ({i},{j}) {a} vs {want}"
                        );
                        assert_eq!(
                            a.to_bits(),
                            par[i + j * p].to_bits(),
                            "p={p} k={k} ({i},{j})"
                        );
                        differs |= a.to_bits() != want.to_bits();
                    } else {
                        assert_eq!(a, 0.0, "upper triangle untouched");
                    }
                }
            }
            assert!(
                differs || p * k < 64,
                "p={p} k={k}: mixed gave the f64 bits everywhere"
            );
        }
    }
}

#[cfg(test)]
mod panel_tests {
    #[test]
    fn panels_cover_every_column_and_balance_work() {
        for p in [1, 2, 255, 256, 1000, 4096] {
            let b = super::panels(p);
            assert_eq!((b[0], *b.last().unwrap()), (0, p));
            assert!(b.windows(2).all(|w| w[0] < w[1]), "{p}: {b:?}");
            let work: Vec<usize> = b
                .windows(2)
                .map(|w| (w[0]..w[1]).map(|j| p - j).sum())
                .collect();
            let (lo, hi) = (*work.iter().min().unwrap(), *work.iter().max().unwrap());
            assert!(hi <= lo * 2 + p, "{p}: {work:?}");
        }
    }
}

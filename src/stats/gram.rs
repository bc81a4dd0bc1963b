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

use faer::Par;

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
        let work =
            |(j0, j1, panel): (usize, usize, &mut [f64])| panel_update(panel, p, j0, j1, x, k);
        match par {
            Par::Seq => cols.into_iter().for_each(work),
            _ => cols.into_par_iter().for_each(work),
        }
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

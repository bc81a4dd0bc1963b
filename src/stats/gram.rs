//! The Gram kernel: `C_lower += Xᵀ X` for a block of staged rows.
//!
//! Chosen by measurement (benches/gram.rs, README "Performance"): faer's
//! triangular matrix product with a lower-triangular destination, the block
//! stored as a `k × P` column-major matrix (rows of data are rows of the
//! matrix), reaches this machine's OpenBLAS `dsyrk`. The destination is a
//! full `P × P` column-major buffer of which only the lower triangle is ever
//! written; it is allocated zeroed by the OS (`vec![0.0; n]` → calloc), so
//! the untouched upper-triangle pages never become resident.
//!
//! faer splits the product over output tiles only, so the result is bitwise
//! the same for any `Par` (pinned by a test here and by the pass's
//! thread-determinism test).

use faer::linalg::matmul::triangular::{matmul, BlockStructure};
use faer::{Accum, MatMut, MatRef, Par};

/// `c_lower += xᵀ x` where `x` is `k × p` column-major with column stride
/// `stride ≥ k` (`x[i + j·stride]` is row i, pixel j) and `c` is `p × p`
/// column-major; only the lower triangle (with the diagonal) of `c` is read
/// or written. Sizes are the caller's invariants (checked).
pub fn syrk_lower(c: &mut [f64], p: usize, x: &[f64], k: usize, stride: usize, par: Par) {
    if k == 0 || p == 0 {
        return;
    }
    assert!(
        c.len() == p * p && stride >= k && x.len() >= (p - 1) * stride + k,
        "Gram kernel sizes"
    );
    let c = MatMut::from_column_major_slice_mut(c, p, p);
    let x = MatRef::from_column_major_slice_with_stride(x, k, p, stride);
    matmul(
        c,
        BlockStructure::TriangularLower,
        Accum::Add,
        x.transpose(),
        BlockStructure::Rectangular,
        x,
        BlockStructure::Rectangular,
        1.0,
        par,
    );
}

/// `out += xᵀ v` for a `k × p` column-major block of column stride
/// `stride` (per pixel, the block's rows weighted by `v`), in a fixed order.
pub fn gemv_t(out: &mut [f64], x: &[f64], k: usize, stride: usize, v: &[f64]) {
    for (j, o) in out.iter_mut().enumerate() {
        let col = &x[j * stride..j * stride + k];
        let mut s = 0.0;
        for (a, b) in col.iter().zip(v) {
            s += a * b;
        }
        *o += s;
    }
}

/// Sums of each column of a `k × p` column-major block of column stride
/// `stride`, added to `out`.
pub fn col_sums(out: &mut [f64], x: &[f64], k: usize, stride: usize) {
    for (j, o) in out.iter_mut().enumerate() {
        *o += x[j * stride..j * stride + k].iter().sum::<f64>();
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
                    s += x[r + i * k] * x[r + j * k];
                }
                c[i + j * p] += s;
            }
        }
    }

    #[test]
    fn matches_naive_and_is_bitwise_identical_across_par() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
        for &(p, k) in &[(1, 1), (3, 5), (17, 33), (64, 9), (130, 257)] {
            let x: Vec<f64> = (0..p * k).map(|_| rng.random::<f64>() - 0.5).collect();
            let mut want = vec![0.0; p * p];
            naive(&mut want, p, &x, k);
            let mut seq = vec![0.0; p * p];
            syrk_lower(&mut seq, p, &x, k, k, Par::Seq);
            let mut par = vec![0.0; p * p];
            syrk_lower(&mut par, p, &x, k, k, Par::rayon(2));
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

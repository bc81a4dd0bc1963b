//! Dense symmetric eigendecomposition, the one expensive step of every Ridge
//! path (DESIGN §6), with two backends:
//!
//! * [`Backend::Faer`]: faer 0.22's `self_adjoint_evd` (pure Rust). Its bits
//!   depend on the thread count at P ≥ 1024 (benches/eigh.rs: `Par::Seq` and
//!   `Par::rayon(2)` differ at P = 1024), and with more than one thread even
//!   from run to run when the machine is loaded; `Par::Seq` is reproducible.
//! * [`Backend::Lapack`] (feature `openblas`): LAPACK `dsyevd` (divide and
//!   conquer) or `dsyevr` (MRRR) from the system OpenBLAS, which ships
//!   LAPACK. With more than one OpenBLAS thread the bits change with the
//!   thread count (measured: 1 vs 2 threads differ at P = 1024); with one
//!   they are reproducible. OpenBLAS's thread count is process-global state, so these calls
//!   set it for their duration and put it back to 1 (the value the Gram
//!   kernel relies on, [`crate::stats::gram::init`]); do not run them
//!   concurrently with other multi-threaded OpenBLAS work.
//!
//! [`eigh`] uses [`DEFAULT_BACKEND`], chosen by measurement
//! (`cargo bench --bench eigh`, which also times numpy on the same matrix).
//!
//! All backends return eigenvalues ascending and eigenvectors as the columns
//! of a P × P column-major matrix.

use faer::{Mat, Par};

use crate::{Error, Result};

/// Which implementation computes the eigendecomposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// faer's `self_adjoint_evd`, parallel on the current rayon pool as
    /// `par` says.
    Faer,
    /// LAPACK `dsyevd` from the system OpenBLAS, `threads` OpenBLAS threads
    /// (feature `openblas`; an error without it).
    Lapack {
        /// OpenBLAS threads for the call (≥ 1).
        threads: usize,
    },
    /// LAPACK `dsyevr` (MRRR, all eigenpairs) from the system OpenBLAS,
    /// `threads` OpenBLAS threads (feature `openblas`; an error without it).
    LapackMrrr {
        /// OpenBLAS threads for the call (≥ 1).
        threads: usize,
    },
}

/// The backend [`eigh`] uses: LAPACK `dsyevd` with one OpenBLAS thread.
/// Measured on this 2-core machine (contended): P = 4096: faer
/// `Par::rayon(2)` 5.5 s, faer sequential 11.1 s, `dsyevd` 8.6 s with 1
/// OpenBLAS thread and 10.1 s with 2, numpy 5.2 s; P = 2048: 0.81, 1.59,
/// 1.34, 0.86, 0.99 s. faer on two threads is fastest per call but its bits
/// change with the thread count and even from run to run under load (a test
/// here caught it), and OpenBLAS's multi-threaded `dsyevd` differs between 1
/// and 2 threads; single-threaded `dsyevd` is reproducible, beats
/// sequential faer, and independent bins can run two at a time.
#[cfg(feature = "openblas")]
pub const DEFAULT_BACKEND: Backend = Backend::Lapack { threads: 1 };
/// The backend [`eigh`] uses: faer (without the `openblas` feature).
#[cfg(not(feature = "openblas"))]
pub const DEFAULT_BACKEND: Backend = Backend::Faer;

/// Eigenvalues (ascending) and eigenvectors (columns) of the symmetric matrix
/// `a` (only its lower triangle is read), with [`DEFAULT_BACKEND`]; `par`
/// matters to faer only.
pub fn eigh(a: &Mat<f64>, par: Par) -> Result<(Vec<f64>, Mat<f64>)> {
    eigh_with(a, DEFAULT_BACKEND, par)
}

/// [`eigh`] with an explicit backend (`par` matters to [`Backend::Faer`]
/// only).
pub fn eigh_with(a: &Mat<f64>, backend: Backend, par: Par) -> Result<(Vec<f64>, Mat<f64>)> {
    if a.nrows() != a.ncols() {
        return Err(Error::shape(
            "eigendecomposition",
            "a square matrix",
            format!("{} × {}", a.nrows(), a.ncols()),
        ));
    }
    match backend {
        Backend::Faer => eigh_faer(a, par),
        Backend::Lapack { threads } => lapack::eigh(a, threads, false),
        Backend::LapackMrrr { threads } => lapack::eigh(a, threads, true),
    }
}

fn not_converged(detail: String) -> Error {
    crate::FitError::NotConverged {
        what: "eigendecomposition",
        detail,
    }
    .into()
}

fn eigh_faer(a: &Mat<f64>, par: Par) -> Result<(Vec<f64>, Mat<f64>)> {
    let p = a.nrows();
    let mut lambda = faer::diag::Diag::<f64>::zeros(p);
    let mut v = Mat::<f64>::zeros(p, p);
    let scratch = faer::linalg::evd::self_adjoint_evd_scratch::<f64>(
        p,
        faer::linalg::evd::ComputeEigenvectors::Yes,
        par,
        Default::default(),
    );
    let mut mem = faer::dyn_stack::MemBuffer::new(scratch);
    faer::linalg::evd::self_adjoint_evd(
        a.as_ref(),
        lambda.as_mut(),
        Some(v.as_mut()),
        par,
        faer::dyn_stack::MemStack::new(&mut mem),
        Default::default(),
    )
    .map_err(|e| not_converged(format!("{e:?}")))?;
    Ok(((0..p).map(|i| lambda[i]).collect(), v))
}

#[cfg(feature = "openblas")]
mod lapack {
    use std::os::raw::{c_char, c_int};

    use faer::Mat;

    use super::not_converged;
    use crate::{Error, Result};

    // LP64 Fortran LAPACK of the system OpenBLAS (Debian builds it with
    // gfortran): every argument by reference, and the hidden lengths of the
    // character arguments appended at the end.
    extern "C" {
        fn dsyevd_(
            jobz: *const c_char,
            uplo: *const c_char,
            n: *const c_int,
            a: *mut f64,
            lda: *const c_int,
            w: *mut f64,
            work: *mut f64,
            lwork: *const c_int,
            iwork: *mut c_int,
            liwork: *const c_int,
            info: *mut c_int,
            jobz_len: usize,
            uplo_len: usize,
        );
        fn dsyevr_(
            jobz: *const c_char,
            range: *const c_char,
            uplo: *const c_char,
            n: *const c_int,
            a: *mut f64,
            lda: *const c_int,
            vl: *const f64,
            vu: *const f64,
            il: *const c_int,
            iu: *const c_int,
            abstol: *const f64,
            m: *mut c_int,
            w: *mut f64,
            z: *mut f64,
            ldz: *const c_int,
            isuppz: *mut c_int,
            work: *mut f64,
            lwork: *const c_int,
            iwork: *mut c_int,
            liwork: *const c_int,
            info: *mut c_int,
            jobz_len: usize,
            range_len: usize,
            uplo_len: usize,
        );
        fn openblas_set_num_threads(n: c_int);
        fn dsytrd_sy2sb_(
            uplo: *const c_char,
            n: *const c_int,
            kd: *const c_int,
            a: *mut f64,
            lda: *const c_int,
            ab: *mut f64,
            ldab: *const c_int,
            tau: *mut f64,
            work: *mut f64,
            lwork: *const c_int,
            info: *mut c_int,
            uplo_len: usize,
        );
        fn dpbsv_(
            uplo: *const c_char,
            n: *const c_int,
            kd: *const c_int,
            nrhs: *const c_int,
            ab: *mut f64,
            ldab: *const c_int,
            b: *mut f64,
            ldb: *const c_int,
            info: *mut c_int,
            uplo_len: usize,
        );
        fn dormqr_(
            side: *const c_char,
            trans: *const c_char,
            m: *const c_int,
            n: *const c_int,
            k: *const c_int,
            a: *const f64,
            lda: *const c_int,
            tau: *const f64,
            c: *mut f64,
            ldc: *const c_int,
            work: *mut f64,
            lwork: *const c_int,
            info: *mut c_int,
            side_len: usize,
            trans_len: usize,
        );
        fn dsytrd_sb2st_(
            stage1: *const c_char,
            vect: *const c_char,
            uplo: *const c_char,
            n: *const c_int,
            kd: *const c_int,
            ab: *mut f64,
            ldab: *const c_int,
            d: *mut f64,
            e: *mut f64,
            hous: *mut f64,
            lhous: *const c_int,
            work: *mut f64,
            lwork: *const c_int,
            info: *mut c_int,
            stage1_len: usize,
            vect_len: usize,
            uplo_len: usize,
        );
        fn dsterf_(n: *const c_int, d: *mut f64, e: *mut f64, info: *mut c_int);
        fn dpstrf_(
            uplo: *const c_char,
            n: *const c_int,
            a: *mut f64,
            lda: *const c_int,
            piv: *mut c_int,
            rank: *mut c_int,
            tol: *const f64,
            work: *mut f64,
            info: *mut c_int,
            uplo_len: usize,
        );
    }

    /// LAPACK `dpstrf` on the lower triangle of the column-major p × p `a`
    /// (overwritten by L): the pivots (0-based) and the rank.
    pub(super) fn pivoted_cholesky(a: &mut [f64], p: usize) -> Option<(Vec<usize>, usize)> {
        let n = c_int::try_from(p).ok()?;
        let mut piv = vec![0 as c_int; p];
        let mut rank: c_int = 0;
        let tol = -1.0f64;
        let mut work = vec![0.0f64; 2 * p];
        let mut info: c_int = 0;
        // SAFETY: `a` holds p × p values with lda = p, `piv` p entries and
        // `work` 2p, as dpstrf requires.
        unsafe {
            dpstrf_(
                c"L".as_ptr(),
                &n,
                a.as_mut_ptr(),
                &n,
                piv.as_mut_ptr(),
                &mut rank,
                &tol,
                work.as_mut_ptr(),
                &mut info,
                1,
            );
        }
        if info < 0 {
            return None;
        }
        Some((piv.iter().map(|&i| i as usize - 1).collect(), rank as usize))
    }

    /// `dsytrd_sy2sb` on the lower triangle of the column-major p × p `a`
    /// (p > kd ≥ 1): the band matrix B = QᵀAQ in LAPACK's lower band
    /// storage ((kd + 1) × p), with Q's reflectors left below the kd-th
    /// subdiagonal of `a` and their factors in `tau` (p − kd).
    pub(super) fn sy2sb(a: &mut [f64], p: usize, kd: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        assert!(
            a.len() == p * p && kd >= 1 && p > kd,
            "a p × p matrix, p > kd ≥ 1"
        );
        let (n, k) = (order(p)?, order(kd)?);
        let ldab = k + 1;
        let mut ab = vec![0.0f64; (kd + 1) * p];
        let mut tau = vec![0.0f64; p - kd];
        with_workspace("dsytrd_sy2sb", |wp, lwork| {
            let mut info: c_int = 0;
            // SAFETY: `a` is p × p (lda = p), `ab` (kd + 1) × p (ldab = kd + 1),
            // `tau` p − kd (all asserted or allocated so); `wp` points to
            // `lwork` values, or to one for the query (lwork = −1).
            unsafe {
                dsytrd_sy2sb_(
                    &UPLO,
                    &n,
                    &k,
                    a.as_mut_ptr(),
                    &n,
                    ab.as_mut_ptr(),
                    &ldab,
                    tau.as_mut_ptr(),
                    wp,
                    &lwork,
                    &mut info,
                    1,
                );
            }
            info
        })?;
        Ok((ab, tau))
    }

    /// Runs a LAPACK routine twice, as its workspace convention asks: first
    /// with lwork = −1 (it writes the size it wants into the one value
    /// given), then with a workspace of that size. `call` gets the workspace
    /// and lwork and returns `info`; non-zero info is an error naming `what`.
    fn with_workspace(what: &str, mut call: impl FnMut(*mut f64, c_int) -> c_int) -> Result<()> {
        let mut query = [0.0f64];
        let info = call(query.as_mut_ptr(), -1);
        if info != 0 {
            return Err(not_converged(format!("{what}: info = {info}")));
        }
        let mut work = vec![0.0f64; (query[0] as usize).max(1)];
        let lwork = c_int::try_from(work.len())
            .map_err(|_| not_converged(format!("{what}: a workspace of {} values", work.len())))?;
        let info = call(work.as_mut_ptr(), lwork);
        if info != 0 {
            return Err(not_converged(format!("{what}: info = {info}")));
        }
        Ok(())
    }

    /// Q·C (`trans` false) or Qᵀ·C in place, for the Q of [`sy2sb`]
    /// (reflectors in the p × p `a`, factors `tau`) and the column-major
    /// p × `cols` matrix `c`: `dormqr` on rows kd.. of C, which the
    /// reflectors leave alone above.
    pub(super) fn apply_q(
        a: &[f64],
        tau: &[f64],
        p: usize,
        kd: usize,
        trans: bool,
        c: &mut [f64],
        cols: usize,
    ) -> Result<()> {
        assert!(a.len() == p * p && tau.len() == p - kd && c.len() == p * cols);
        if cols == 0 || tau.is_empty() {
            return Ok(());
        }
        let (m, nc, k, ld) = (order(p - kd)?, order(cols)?, order(p - kd)?, order(p)?);
        let t: c_char = if trans { b'T' } else { b'N' } as c_char;
        let side: c_char = b'L' as c_char;
        with_workspace("dormqr", |wp, lwork| {
            let mut info: c_int = 0;
            // SAFETY: the reflectors are the (p − kd) × (p − kd) block of the
            // p × p `a` from row kd (lda = p), `tau` has p − kd factors, C's
            // rows kd.. are a (p − kd) × cols block of the p × cols `c`
            // (ldc = p), all asserted; `wp` points to `lwork` values, or to
            // one for the query.
            unsafe {
                dormqr_(
                    &side,
                    &t,
                    &m,
                    &nc,
                    &k,
                    a.as_ptr().add(kd),
                    &ld,
                    tau.as_ptr(),
                    c.as_mut_ptr().add(kd),
                    &ld,
                    wp,
                    &lwork,
                    &mut info,
                    1,
                    1,
                );
            }
            info
        })
    }

    /// Solves (B + αI) x = b in place for the band matrix `ab` of [`sy2sb`]
    /// by `dpbsv` (band Cholesky) on a copy with α added to the diagonal;
    /// false when B + αI is not positive definite to working precision.
    pub(super) fn band_solve(
        ab: &[f64],
        p: usize,
        kd: usize,
        alpha: f64,
        b: &mut [f64],
    ) -> Result<bool> {
        assert!(ab.len() == (kd + 1) * p && b.len() == p);
        let (n, k, one) = (order(p)?, order(kd)?, 1 as c_int);
        let ldab = k + 1;
        let mut f = ab.to_vec();
        for j in 0..p {
            f[j * (kd + 1)] += alpha;
        }
        let mut info: c_int = 0;
        // SAFETY: `f` is (kd + 1) × p (ldab = kd + 1) and `b` p × 1 (ldb = p),
        // both asserted or copied so.
        unsafe {
            dpbsv_(
                &UPLO,
                &n,
                &k,
                &one,
                f.as_mut_ptr(),
                &ldab,
                b.as_mut_ptr(),
                &n,
                &mut info,
                1,
            );
        }
        if info < 0 {
            return Err(not_converged(format!("dpbsv: info = {info}")));
        }
        Ok(info == 0)
    }

    /// The eigenvalues, ascending, of the band matrix `ab` of [`sy2sb`]
    /// (lower band storage, p > kd ≥ 1): `dsytrd_sb2st` chases its bulges
    /// down to a tridiagonal matrix (on a copy, no vectors), `dsterf` finds
    /// that one's eigenvalues by root-free QR.
    pub(super) fn band_eigenvalues(ab: &[f64], p: usize, kd: usize) -> Result<Vec<f64>> {
        assert!(ab.len() == (kd + 1) * p && kd >= 1 && p > kd);
        let (n, k) = (order(p)?, order(kd)?);
        let ldab = k + 1;
        let mut band = ab.to_vec();
        let (mut d, mut e) = (vec![0.0f64; p], vec![0.0f64; p]);
        let (stage1, vect) = (b'Y' as c_char, b'N' as c_char);
        let mut call = |hous: &mut [f64], lhous: c_int, work: &mut [f64], lwork: c_int| {
            let mut info: c_int = 0;
            // SAFETY: `band` is (kd + 1) × p (ldab = kd + 1), `d` and `e` p
            // values (e needs p − 1), `hous` and `work` hold `lhous` and
            // `lwork` values, or one each for the query (both −1).
            unsafe {
                dsytrd_sb2st_(
                    &stage1,
                    &vect,
                    &UPLO,
                    &n,
                    &k,
                    band.as_mut_ptr(),
                    &ldab,
                    d.as_mut_ptr(),
                    e.as_mut_ptr(),
                    hous.as_mut_ptr(),
                    &lhous,
                    work.as_mut_ptr(),
                    &lwork,
                    &mut info,
                    1,
                    1,
                    1,
                );
            }
            info
        };
        let (mut qh, mut qw) = ([0.0f64], [0.0f64]);
        let info = call(&mut qh, -1, &mut qw, -1);
        if info != 0 {
            return Err(not_converged(format!("dsytrd_sb2st: info = {info}")));
        }
        let mut hous = vec![0.0f64; (qh[0] as usize).max(1)];
        let mut work = vec![0.0f64; (qw[0] as usize).max(1)];
        let size = |v: &Vec<f64>| {
            c_int::try_from(v.len()).map_err(|_| {
                not_converged(format!("dsytrd_sb2st: a workspace of {} values", v.len()))
            })
        };
        let (lh, lw) = (size(&hous)?, size(&work)?);
        let info = call(&mut hous, lh, &mut work, lw);
        if info != 0 {
            return Err(not_converged(format!("dsytrd_sb2st: info = {info}")));
        }
        drop((band, hous, work));
        let mut info: c_int = 0;
        // SAFETY: `d` holds p values and `e` at least p − 1.
        unsafe { dsterf_(&n, d.as_mut_ptr(), e.as_mut_ptr(), &mut info) };
        if info != 0 {
            return Err(not_converged(format!(
                "dsterf: {info} eigenvalues did not converge"
            )));
        }
        Ok(d)
    }

    /// A matrix order as LAPACK's integer.
    fn order(n: usize) -> Result<c_int> {
        c_int::try_from(n)
            .map_err(|_| Error::shape("LAPACK band reduction", "an order that fits a C int", n))
    }

    /// Sets OpenBLAS's thread count and puts it back to 1 when dropped.
    struct Threads;
    impl Threads {
        fn set(n: usize) -> Threads {
            // SAFETY: a plain setter of OpenBLAS's internal thread count.
            unsafe { openblas_set_num_threads(n.clamp(1, 256) as c_int) };
            Threads
        }
    }
    impl Drop for Threads {
        fn drop(&mut self) {
            // SAFETY: as above.
            unsafe { openblas_set_num_threads(1) };
        }
    }

    pub(super) fn eigh(a: &Mat<f64>, threads: usize, mrrr: bool) -> Result<(Vec<f64>, Mat<f64>)> {
        let p = a.nrows();
        if p == 0 {
            return Ok((Vec::new(), Mat::zeros(0, 0)));
        }
        let n = c_int::try_from(p).map_err(|_| {
            Error::shape("LAPACK eigendecomposition", "an order that fits a C int", p)
        })?;
        let mut buf = lower_column_major(a);
        let mut w = vec![0.0f64; p];
        let _threads = Threads::set(threads);
        let vectors = if !mrrr {
            dsyevd(n, &mut buf, &mut w)?;
            buf
        } else {
            dsyevr(n, &mut buf, &mut w)?
        };
        let v = Mat::from_fn(p, p, |i, j| vectors[i + j * p]);
        Ok((w, v))
    }

    /// Column-major copy of the square `a`, which LAPACK overwrites; with
    /// uplo 'L' it reads the lower triangle only.
    fn lower_column_major(a: &Mat<f64>) -> Vec<f64> {
        let p = a.nrows();
        let mut buf: Vec<f64> = Vec::with_capacity(p * p);
        for j in 0..p {
            buf.extend((0..p).map(|i| a[(i, j)]));
        }
        buf
    }

    /// Both drivers compute the eigenvectors too, not the eigenvalues alone.
    const JOBZ: c_char = b'V' as c_char;
    /// `dsyevr` computes every eigenpair ('I' or 'V' would select some).
    const RANGE: c_char = b'A' as c_char;
    /// Both drivers read the lower triangle, as [`lower_column_major`] says.
    const UPLO: c_char = b'L' as c_char;

    /// LAPACK's double and integer workspaces with their lengths as passed
    /// (−1 for a workspace query).
    struct Workspace {
        work: Vec<f64>,
        lwork: c_int,
        iwork: Vec<c_int>,
        liwork: c_int,
    }

    impl Workspace {
        /// A workspace query: the driver computes nothing and writes the
        /// optimal lengths into the first element of each workspace.
        fn query() -> Self {
            Workspace {
                work: vec![0.0],
                lwork: -1,
                iwork: vec![0],
                liwork: -1,
            }
        }

        /// Workspaces of the lengths a query wrote into `self` (at least one
        /// element each, so the pointers are valid).
        fn queried(&self) -> Self {
            let lwork = self.work[0] as c_int;
            let liwork = self.iwork[0];
            Workspace {
                work: vec![0.0f64; lwork.max(1) as usize],
                lwork,
                iwork: vec![0 as c_int; liwork.max(1) as usize],
                liwork,
            }
        }
    }

    /// `dsyevd` (divide and conquer) on the n × n column-major `a`:
    /// eigenvalues into `w`, eigenvectors over `a`. A workspace query, then
    /// the call.
    fn dsyevd(n: c_int, a: &mut [f64], w: &mut [f64]) -> Result<()> {
        let mut ws = Workspace::query();
        let info = dsyevd_call(n, a, w, &mut ws);
        if info != 0 {
            return Err(not_converged(format!(
                "dsyevd workspace query: info = {info}"
            )));
        }
        let mut ws = ws.queried();
        let info = dsyevd_call(n, a, w, &mut ws);
        if info != 0 {
            return Err(not_converged(format!("dsyevd: info = {info}")));
        }
        Ok(())
    }

    /// One `dsyevd_` call with the workspaces of `ws`; LAPACK's `info`.
    fn dsyevd_call(n: c_int, a: &mut [f64], w: &mut [f64], ws: &mut Workspace) -> c_int {
        let order = n as usize;
        assert!(a.len() >= order * order && w.len() >= order);
        let mut info: c_int = 0;
        // SAFETY: all pointers are valid for the sizes LAPACK reads or
        // writes: `a` is n × n (lda = n), `w` has n values (both asserted),
        // and the workspaces have the lengths passed, or one element each
        // for a query, which writes one value to each.
        unsafe {
            dsyevd_(
                &JOBZ,
                &UPLO,
                &n,
                a.as_mut_ptr(),
                &n,
                w.as_mut_ptr(),
                ws.work.as_mut_ptr(),
                &ws.lwork,
                ws.iwork.as_mut_ptr(),
                &ws.liwork,
                &mut info,
                1,
                1,
            )
        };
        info
    }

    /// `dsyevr` (MRRR, all eigenpairs) on the n × n column-major `a`
    /// (destroyed): eigenvalues into `w`, and the eigenvectors, n × n
    /// column-major. A workspace query, then the call; fewer than n
    /// eigenpairs is an error.
    fn dsyevr(n: c_int, a: &mut [f64], w: &mut [f64]) -> Result<Vec<f64>> {
        let p = n as usize;
        let mut out = Mrrr {
            z: vec![0.0f64; p * p],
            isuppz: vec![0 as c_int; 2 * p],
            m: 0,
        };
        let mut ws = Workspace::query();
        let info = dsyevr_call(n, a, w, &mut out, &mut ws);
        if info != 0 {
            return Err(not_converged(format!(
                "dsyevr workspace query: info = {info}"
            )));
        }
        let mut ws = ws.queried();
        let info = dsyevr_call(n, a, w, &mut out, &mut ws);
        let m = out.m;
        if info != 0 || m != n {
            return Err(not_converged(format!(
                "dsyevr: info = {info}, {m} of {n} eigenpairs"
            )));
        }
        Ok(out.z)
    }

    /// The outputs of `dsyevr` besides the eigenvalues: the eigenvectors
    /// `z` (n × n), their support `isuppz` (2n) and the count found `m`.
    struct Mrrr {
        z: Vec<f64>,
        isuppz: Vec<c_int>,
        m: c_int,
    }

    /// One `dsyevr_` call for all eigenpairs with the workspaces of `ws`;
    /// LAPACK's `info`.
    fn dsyevr_call(
        n: c_int,
        a: &mut [f64],
        w: &mut [f64],
        out: &mut Mrrr,
        ws: &mut Workspace,
    ) -> c_int {
        let order = n as usize;
        assert!(a.len() >= order * order && w.len() >= order);
        assert!(out.z.len() >= order * order && out.isuppz.len() >= 2 * order);
        // Bounds of a range 'I' or 'V' and the tolerance, unused with 'A'.
        let (vl, vu, il, iu, abstol) = (0.0f64, 0.0f64, 1 as c_int, n, 0.0f64);
        let mut info: c_int = 0;
        // SAFETY: `a` and `z` are n × n (lda = ldz = n), `w` has n values,
        // `isuppz` 2n (all asserted); the workspaces have the lengths passed,
        // or one element each for a query, which writes one value to each.
        unsafe {
            dsyevr_(
                &JOBZ,
                &RANGE,
                &UPLO,
                &n,
                a.as_mut_ptr(),
                &n,
                &vl,
                &vu,
                &il,
                &iu,
                &abstol,
                &mut out.m,
                w.as_mut_ptr(),
                out.z.as_mut_ptr(),
                &n,
                out.isuppz.as_mut_ptr(),
                ws.work.as_mut_ptr(),
                &ws.lwork,
                ws.iwork.as_mut_ptr(),
                &ws.liwork,
                &mut info,
                1,
                1,
                1,
            )
        };
        info
    }
}

#[cfg(not(feature = "openblas"))]
mod lapack {
    use faer::Mat;

    use crate::{Error, Result};

    pub(super) fn eigh(_: &Mat<f64>, _: usize, _: bool) -> Result<(Vec<f64>, Mat<f64>)> {
        Err(Error::InvalidParameter {
            name: "backend",
            problem: "the LAPACK eigendecomposition needs the `openblas` feature".into(),
        })
    }
}

/// Pivoted Cholesky factor of the positive semi-definite p × p matrix in
/// the column-major `a` (lower triangle read, overwritten): U (p × rank,
/// column-major) with `a` = U Uᵀ to LAPACK `dpstrf`'s default tolerance, or
/// None without the `openblas` feature or on a LAPACK error. Single-threaded
/// OpenBLAS (the Gram kernel's setting), hence reproducible.
pub(crate) fn low_rank_factor(a: &mut [f64], p: usize) -> Option<(Mat<f64>, usize)> {
    assert_eq!(a.len(), p * p, "a p × p matrix");
    #[cfg(feature = "openblas")]
    {
        let (piv, rank) = lapack::pivoted_cholesky(a, p)?;
        let mut u = Mat::<f64>::zeros(p, rank);
        for j in 0..rank {
            for i in j..p {
                u[(piv[i], j)] = a[i + j * p];
            }
        }
        Some((u, rank))
    }
    #[cfg(not(feature = "openblas"))]
    {
        None
    }
}

/// Largest half-bandwidth of [`BandForm`] (LAPACK's own choice for
/// `dsytrd_sy2sb` at large orders; smaller orders get P/8, so that small
/// test problems take the same path). A wider band makes the reduction more
/// BLAS-3 and each α's band Cholesky (P·kd² flops) dearer; measured on a
/// fold of 4.8k rows × 2048 (reduction + 50 solves, loaded machine): kd =
/// 32: 0.48 s, 48: 0.42–0.47 s, 64: 0.43–0.44 s.
pub(crate) const BAND_KD: usize = 64;

/// A symmetric matrix reduced to a band matrix by an orthogonal similarity,
/// A = Q B Qᵀ (LAPACK `dsytrd_sy2sb`, half-bandwidth [`BAND_KD`]): the
/// first, BLAS-3 half of an eigendecomposition, and all that shifted
/// solves (A + αI) x = b for many α need — each α is one band Cholesky of
/// B + αI, and Q is applied once to the right-hand side and once to all the
/// solutions. Single-threaded OpenBLAS (reproducible).
#[cfg_attr(not(feature = "openblas"), allow(dead_code))]
pub(crate) struct BandForm {
    p: usize,
    kd: usize,
    /// Q's reflectors below the kd-th subdiagonal (p × p, column-major).
    reflectors: Vec<f64>,
    tau: Vec<f64>,
    /// B in LAPACK's lower band storage, (kd + 1) × p.
    band: Vec<f64>,
}

/// Whether [`BandForm`] is available (it needs LAPACK: the `openblas` feature).
pub(crate) const HAS_BAND_FORM: bool = cfg!(feature = "openblas");

impl BandForm {
    /// Reduces the symmetric `a` (its lower triangle is read); an order
    /// of 1 is a band matrix already (Q = I).
    pub(crate) fn new(a: &Mat<f64>) -> Result<Self> {
        let p = a.nrows();
        let kd = (p / 8).clamp(1, BAND_KD);
        let mut buf: Vec<f64> = Vec::with_capacity(p * p);
        for j in 0..p {
            buf.extend((0..p).map(|i| a[(i, j)]));
        }
        if p <= kd {
            let band = (0..p)
                .flat_map(|j| (0..=kd).map(move |d| (j, d)))
                .map(|(j, d)| if j + d < p { buf[j + d + j * p] } else { 0.0 })
                .collect();
            return Ok(BandForm {
                p,
                kd,
                reflectors: buf,
                tau: Vec::new(),
                band,
            });
        }
        Self::reduce(buf, p, kd)
    }

    #[cfg(feature = "openblas")]
    fn reduce(mut buf: Vec<f64>, p: usize, kd: usize) -> Result<Self> {
        crate::stats::gram::init();
        let (band, tau) = lapack::sy2sb(&mut buf, p, kd)?;
        Ok(BandForm {
            p,
            kd,
            reflectors: buf,
            tau,
            band,
        })
    }

    #[cfg(not(feature = "openblas"))]
    fn reduce(_: Vec<f64>, _: usize, _: usize) -> Result<Self> {
        Err(Error::InvalidParameter {
            name: "backend",
            problem: "the band reduction needs the `openblas` feature".into(),
        })
    }

    /// The solutions of (A + α_j I) x_j = b for every α_j (> 0), as the
    /// columns of a p × α matrix; None when some A + α_j I is not positive
    /// definite to working precision (the caller solves another way).
    pub(crate) fn solve_shifted(&self, b: &[f64], alphas: &[f64]) -> Result<Option<Mat<f64>>> {
        let p = self.p;
        assert_eq!(b.len(), p, "one right-hand side of p values");
        let mut qb = b.to_vec();
        self.apply_q(true, &mut qb, 1)?;
        let mut x = vec![0.0f64; p * alphas.len()];
        for (j, &alpha) in alphas.iter().enumerate() {
            let xj = &mut x[j * p..(j + 1) * p];
            xj.copy_from_slice(&qb);
            if !self.band_solve(alpha, xj)? {
                return Ok(None);
            }
        }
        self.apply_q(false, &mut x, alphas.len())?;
        Ok(Some(Mat::from_fn(p, alphas.len(), |i, j| x[i + j * p])))
    }

    /// The eigenvalues of A (= B's), ascending, without eigenvectors: the
    /// second stage of LAPACK's two-stage eigensolver on B, about a tenth
    /// of `dsyevd`'s time at P = 2048 after the reduction
    /// (benches/proto/band_eigenvalues.c).
    pub(crate) fn eigenvalues(&self) -> Result<Vec<f64>> {
        if self.p == 1 {
            return Ok(vec![self.band[0]]);
        }
        self.band_eigenvalues()
    }

    #[cfg(feature = "openblas")]
    fn band_eigenvalues(&self) -> Result<Vec<f64>> {
        lapack::band_eigenvalues(&self.band, self.p, self.kd)
    }

    #[cfg(not(feature = "openblas"))]
    fn band_eigenvalues(&self) -> Result<Vec<f64>> {
        Err(Error::InvalidParameter {
            name: "backend",
            problem: "the band eigenvalues need the `openblas` feature".into(),
        })
    }

    #[cfg(feature = "openblas")]
    fn apply_q(&self, trans: bool, c: &mut [f64], cols: usize) -> Result<()> {
        lapack::apply_q(&self.reflectors, &self.tau, self.p, self.kd, trans, c, cols)
    }

    #[cfg(feature = "openblas")]
    fn band_solve(&self, alpha: f64, b: &mut [f64]) -> Result<bool> {
        lapack::band_solve(&self.band, self.p, self.kd, alpha, b)
    }

    #[cfg(not(feature = "openblas"))]
    fn apply_q(&self, _: bool, _: &mut [f64], _: usize) -> Result<()> {
        Ok(())
    }

    #[cfg(not(feature = "openblas"))]
    fn band_solve(&self, _: f64, _: &mut [f64]) -> Result<bool> {
        Ok(false)
    }
}

/// Row panels of a product with `rows` output rows: boundaries fixed by
/// `rows` alone (≈ 256 rows each, at most 16), so every output element is
/// computed by the same single-threaded call whatever the thread count.
fn row_panels(rows: usize) -> Vec<usize> {
    let count = rows.div_ceil(256).clamp(1, 16);
    (0..=count).map(|i| i * rows / count).collect()
}

/// `dst = lhs · rhs`, bitwise identical for every `par`: the rows of `dst`
/// are split into panels fixed by their number ([`Par::Seq`] runs them in
/// order, otherwise they run on the current rayon pool), each a
/// single-threaded product — OpenBLAS `dgemm` with the `openblas` feature,
/// faer's `matmul` without. `lhs` may be a transposed view (either of its
/// strides 1); `rhs` and `dst` must be column-major.
pub(crate) fn matmul_det(
    dst: faer::MatMut<'_, f64>,
    lhs: faer::MatRef<'_, f64>,
    rhs: faer::MatRef<'_, f64>,
    par: Par,
) {
    use rayon::prelude::*;
    assert!(
        dst.nrows() == lhs.nrows() && dst.ncols() == rhs.ncols() && lhs.ncols() == rhs.nrows(),
        "product shapes"
    );
    // Each panel is one single-threaded dgemm: OpenBLAS must not thread
    // inside it (its default is every core until something sets it to 1).
    crate::stats::gram::init();
    if dst.nrows() == 0 || dst.ncols() == 0 {
        return;
    }
    let bounds = row_panels(dst.nrows());
    let mut parts = Vec::with_capacity(bounds.len() - 1);
    let mut rest = dst;
    for w in bounds.windows(2) {
        let (top, bottom) = rest.split_at_row_mut(w[1] - w[0]);
        parts.push((w[0], top));
        rest = bottom;
    }
    let work = |(r0, part): (usize, faer::MatMut<'_, f64>)| {
        let rows = part.nrows();
        panel_product(part, lhs.subrows(r0, rows), rhs);
    };
    match par {
        Par::Seq => parts.into_iter().for_each(work),
        _ => parts.into_par_iter().for_each(work),
    }
}

#[cfg(not(feature = "openblas"))]
fn panel_product(
    dst: faer::MatMut<'_, f64>,
    lhs: faer::MatRef<'_, f64>,
    rhs: faer::MatRef<'_, f64>,
) {
    faer::linalg::matmul::matmul(dst, faer::Accum::Replace, lhs, rhs, 1.0, Par::Seq);
}

#[cfg(feature = "openblas")]
fn panel_product(
    dst: faer::MatMut<'_, f64>,
    lhs: faer::MatRef<'_, f64>,
    rhs: faer::MatRef<'_, f64>,
) {
    use cblas_sys::{cblas_dgemm, CBLAS_LAYOUT::CblasColMajor, CBLAS_TRANSPOSE::*};
    let int = |v: isize| i32::try_from(v).expect("matrix dimension exceeds i32");
    let (m, n, k) = (dst.nrows(), dst.ncols(), lhs.ncols());
    if k == 0 {
        let mut dst = dst;
        dst.fill(0.0);
        return;
    }
    assert!(
        dst.row_stride() == 1 && rhs.row_stride() == 1,
        "column-major operands"
    );
    let (trans, lda) = if lhs.row_stride() == 1 {
        (CblasNoTrans, lhs.col_stride().max(m as isize))
    } else {
        assert!(lhs.col_stride() == 1, "lhs with a unit stride");
        (CblasTrans, lhs.row_stride().max(k as isize))
    };
    let (ldb, ldc) = (
        rhs.col_stride().max(k as isize),
        dst.col_stride().max(m as isize),
    );
    // SAFETY: the pointers and strides come from valid faer views of the
    // stated shapes: `lhs` is m × k (column-major with ld = lda, or its
    // transpose stored k × m with ld = lda), `rhs` k × n with ld = ldb and
    // `dst` m × n with ld = ldc, all column-major with unit row stride.
    unsafe {
        cblas_dgemm(
            CblasColMajor,
            trans,
            CblasNoTrans,
            int(m as isize),
            int(n as isize),
            int(k as isize),
            1.0,
            lhs.as_ptr(),
            int(lda),
            rhs.as_ptr(),
            int(ldb),
            0.0,
            dst.as_ptr_mut(),
            int(ldc),
        );
    }
}

/// Accuracy of an eigendecomposition of `a`: (‖AV − VΛ‖_F / ‖A‖_F,
/// ‖VᵀV − I‖_F), both O(P·ε) for a backward-stable method.
pub fn eigh_residuals(a: &Mat<f64>, lambda: &[f64], v: &Mat<f64>) -> (f64, f64) {
    let p = a.nrows();
    let sym = Mat::from_fn(p, p, |i, j| if i >= j { a[(i, j)] } else { a[(j, i)] });
    let mut av = &sym * v;
    for j in 0..p {
        for i in 0..p {
            av[(i, j)] -= v[(i, j)] * lambda[j];
        }
    }
    let mut vtv = v.transpose() * v;
    for i in 0..p {
        vtv[(i, i)] -= 1.0;
    }
    (
        av.norm_l2() / sym.norm_l2().max(f64::MIN_POSITIVE),
        vtv.norm_l2(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A covariance-like matrix: XᵀX of n noisy rows with a decaying spectrum.
    fn covariance(p: usize, n: usize, seed: u64) -> Mat<f64> {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let x = Mat::from_fn(n, p, |_, j| {
            (rng.random::<f64>() - 0.5) * (1.0 + j as f64).powf(-1.5) + 1e-3 * rng.random::<f64>()
        });
        x.transpose() * &x
    }

    /// The single-threaded backends. OpenBLAS's thread count is global to
    /// the process: a test that set it to 2 changed the bits of another
    /// test's "single-threaded" call running at the same time (seen in CI),
    /// and the Gram kernel and `matmul_det` rely on it being 1. The threaded
    /// LAPACK variants are measured, with their residuals, by
    /// `cargo bench --bench eigh` instead.
    fn backends() -> Vec<Backend> {
        let mut b = vec![Backend::Faer];
        if cfg!(feature = "openblas") {
            b.extend([
                Backend::Lapack { threads: 1 },
                Backend::LapackMrrr { threads: 1 },
            ]);
        }
        b
    }

    #[test]
    fn every_backend_is_accurate() {
        for &(p, n) in &[(1, 3), (7, 20), (150, 400), (300, 120)] {
            let a = covariance(p, n, p as u64);
            let scale = (p as f64) * f64::EPSILON;
            for b in backends() {
                let (lambda, v) = eigh_with(&a, b, Par::Seq).unwrap();
                assert!(lambda.windows(2).all(|w| w[0] <= w[1]), "{b:?} ascending");
                let (res, orth) = eigh_residuals(&a, &lambda, &v);
                assert!(res <= 10.0 * scale, "{b:?} p={p}: ‖AV − VΛ‖/‖A‖ = {res:e}");
                assert!(orth <= 10.0 * scale, "{b:?} p={p}: ‖VᵀV − I‖ = {orth:e}");
            }
        }
    }

    #[test]
    fn only_the_lower_triangle_is_read() {
        let mut a = covariance(40, 80, 9);
        let (want, _) = eigh_with(&a, Backend::Faer, Par::Seq).unwrap();
        for j in 1..40 {
            for i in 0..j {
                a[(i, j)] = f64::NAN;
            }
        }
        for b in backends() {
            let (got, _) = eigh_with(&a, b, Par::Seq).unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-12 * want[39], "{b:?}: {g} vs {w}");
            }
        }
    }

    #[test]
    fn single_threaded_backends_are_reproducible() {
        let a = covariance(300, 400, 4);
        let mut b = vec![(Backend::Faer, Par::Seq)];
        if cfg!(feature = "openblas") {
            b.push((Backend::Lapack { threads: 1 }, Par::Seq));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for (backend, par) in b {
            let (l1, v1) = pool.install(|| eigh_with(&a, backend, par).unwrap());
            let (l2, v2) = pool.install(|| eigh_with(&a, backend, par).unwrap());
            assert!(l1.iter().zip(&l2).all(|(a, b)| a.to_bits() == b.to_bits()));
            assert!(
                (0..300).all(|j| (0..300).all(|i| v1[(i, j)].to_bits() == v2[(i, j)].to_bits())),
                "{backend:?}"
            );
        }
    }

    #[test]
    fn the_default_backend_matches_faer() {
        let a = covariance(64, 100, 5);
        let (l1, _) = eigh(&a, Par::Seq).unwrap();
        let (l2, _) = eigh_with(&a, Backend::Faer, Par::Seq).unwrap();
        for (x, y) in l1.iter().zip(&l2) {
            assert!((x - y).abs() <= 1e-12 * l2[63]);
        }
        assert!(eigh_with(&Mat::zeros(2, 3), Backend::Faer, Par::Seq).is_err());
    }

    /// The band reduction's shifted solves against the definition, over
    /// orders that take each path (1: already a band; 7: kd = 1; 200: kd =
    /// 25; 600: kd = 64), with α from far below to far above the spectrum.
    #[test]
    fn band_form_solves_every_shift() {
        for &(p, n) in &[(1, 3), (7, 20), (200, 500), (600, 300)] {
            let a = covariance(p, n, 11 + p as u64);
            let sym = Mat::from_fn(p, p, |i, j| if i >= j { a[(i, j)] } else { a[(j, i)] });
            let b: Vec<f64> = (0..p).map(|i| (i as f64 * 0.7).sin() + 0.1).collect();
            let alphas = [1e-6, 1e-3, 1.0, 1e3];
            let band = BandForm::new(&a).unwrap();
            // Without LAPACK there is no band reduction; with it every
            // shift here is positive definite.
            let x = match band.solve_shifted(&b, &alphas).unwrap() {
                Some(x) => x,
                None if !HAS_BAND_FORM => continue,
                None => panic!("p = {p}: not positive definite"),
            };
            let ax = &sym * &x;
            let bnorm = b.iter().map(|v| v * v).sum::<f64>().sqrt();
            for (j, &alpha) in alphas.iter().enumerate() {
                let (mut r, mut xn) = (0.0f64, 0.0f64);
                for i in 0..p {
                    r += (ax[(i, j)] + alpha * x[(i, j)] - b[i]).powi(2);
                    xn += x[(i, j)].powi(2);
                }
                // Backward stable: the residual is O(ε (‖A‖ + α) ‖x‖).
                let scale = (sym.norm_l2() + alpha) * xn.sqrt() + bnorm;
                assert!(
                    r.sqrt() <= 1e3 * f64::EPSILON * scale,
                    "p={p} α={alpha}: {r:e}"
                );
            }
            // The band matrix's eigenvalues are A's (dsyevd's to rounding).
            let (want, _) = eigh(&a, Par::Seq).unwrap();
            let got = band.eigenvalues().unwrap();
            let top = want[p - 1].abs();
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-12 * top, "p={p}: λ {g} vs {w}");
            }
        }
    }

    #[test]
    fn matmul_det_matches_faer_and_is_bitwise_identical_across_threads() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        for &(m, k, n) in &[(1, 1, 1), (5, 3, 2), (300, 257, 7), (600, 600, 33)] {
            let a = Mat::from_fn(k, m, |_, _| rng.random::<f64>() - 0.5);
            let b = Mat::from_fn(k, n, |_, _| rng.random::<f64>() - 0.5);
            let want = a.transpose() * &b;
            let mut seq = Mat::zeros(m, n);
            matmul_det(seq.as_mut(), a.transpose(), b.as_ref(), Par::Seq);
            let mut par = Mat::zeros(m, n);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            pool.install(|| matmul_det(par.as_mut(), a.transpose(), b.as_ref(), Par::rayon(2)));
            for j in 0..n {
                for i in 0..m {
                    assert!(
                        (seq[(i, j)] - want[(i, j)]).abs() <= 1e-12 * k as f64,
                        "{m}×{k}×{n}"
                    );
                    assert_eq!(seq[(i, j)].to_bits(), par[(i, j)].to_bits());
                }
            }
            // A column-major left operand too.
            let at = a.transpose().to_owned();
            let mut again = Mat::zeros(m, n);
            matmul_det(again.as_mut(), at.as_ref(), b.as_ref(), Par::rayon(2));
            for j in 0..n {
                for i in 0..m {
                    assert!((again[(i, j)] - want[(i, j)]).abs() <= 1e-12 * k as f64);
                }
            }
        }
    }
}

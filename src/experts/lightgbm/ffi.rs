//! The few calls of LightGBM's C API the experts make (`lightgbm3-sys`,
//! LightGBM 4.7.0), behind owners that free their handles. Every call's
//! failure comes back as [`Error::LightGbm`] with LightGBM's own message.
//!
//! Lifetimes: LightGBM's booster keeps a pointer to its training dataset,
//! so a [`Trainer`] borrows its [`Dataset`]; a [`Booster`] loaded from a
//! model string owns everything it uses.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::marker::PhantomData;

use lightgbm3_sys as sys;

use crate::{Error, Result};

const FLOAT32: c_int = sys::C_API_DTYPE_FLOAT32 as c_int;

/// `Ok` for LightGBM's 0, its last error otherwise.
fn check(ret: c_int, what: &str) -> Result<()> {
    if ret == 0 {
        return Ok(());
    }
    // SAFETY: LGBM_GetLastError returns a NUL-terminated string in a
    // thread-local buffer that stays valid until the next call on this
    // thread; it is copied at once.
    let message = unsafe { CStr::from_ptr(sys::LGBM_GetLastError()) }
        .to_string_lossy()
        .into_owned();
    Err(Error::LightGbm {
        what: what.to_string(),
        message,
    })
}

/// A value LightGBM takes as a C `int`.
fn c_int_of(v: usize, what: &str) -> Result<c_int> {
    c_int::try_from(v).map_err(|_| Error::LightGbm {
        what: what.to_string(),
        message: format!("{v} does not fit LightGBM's 32-bit counts"),
    })
}

/// A string for LightGBM (parameters, a model), without interior NULs.
pub(super) fn c_string(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|e| Error::LightGbm {
        what: what.to_string(),
        message: format!(
            "a NUL byte at {} in the text passed to LightGBM",
            e.nul_position()
        ),
    })
}

/// A LightGBM dataset (its binned copy of the training rows).
pub(super) struct Dataset(sys::DatasetHandle);

impl Drop for Dataset {
    fn drop(&mut self) {
        // SAFETY: the handle came from a successful create call and is
        // freed once, here; nothing borrows it any more (a Trainer borrows
        // the Dataset, so it is gone first).
        unsafe { sys::LGBM_DatasetFree(self.0) };
    }
}

impl Dataset {
    /// A dataset of `rows` rows whose bin mappers LightGBM finds from a
    /// sample given by columns: pixel `j`'s non-zero sample values
    /// `values[j]` at sample rows `indices[j]` (each below `sample_rows`).
    /// LightGBM sorts each column's values in place (and may reorder them).
    pub(super) fn from_sampled_columns(
        values: &mut [Vec<f64>],
        indices: &mut [Vec<c_int>],
        sample_rows: usize,
        rows: usize,
        params: &CStr,
    ) -> Result<Dataset> {
        let what = "creating the dataset";
        if indices.len() != values.len() {
            return Err(Error::shape("dataset sample", values.len(), indices.len()));
        }
        let ncol = c_int_of(values.len(), what)?;
        let counts = values
            .iter()
            .zip(indices.iter())
            .map(|(v, i)| {
                if v.len() != i.len() || i.iter().any(|&k| k < 0 || k as usize >= sample_rows) {
                    return Err(Error::LightGbm {
                        what: what.into(),
                        message: "sample values and rows do not match".into(),
                    });
                }
                c_int_of(v.len(), what)
            })
            .collect::<Result<Vec<c_int>>>()?;
        // LightGBM takes double** and int**, and sorts the values in place.
        let mut value_ptrs: Vec<*mut f64> = values.iter_mut().map(|v| v.as_mut_ptr()).collect();
        let mut index_ptrs: Vec<*mut c_int> = indices.iter_mut().map(|i| i.as_mut_ptr()).collect();
        let (sample_rows, rows) = (c_int_of(sample_rows, what)?, c_int_of(rows, what)?);
        let mut handle = std::ptr::null_mut();
        // SAFETY: ncol pointers to columns of counts[j] values and row
        // indices (checked above, each < sample_rows), exclusively borrowed
        // and alive for the call (LightGBM writes only within them); it
        // copies what it keeps. `handle` receives a new dataset.
        let ret = unsafe {
            sys::LGBM_DatasetCreateFromSampledColumn(
                value_ptrs.as_mut_ptr(),
                index_ptrs.as_mut_ptr(),
                ncol,
                counts.as_ptr(),
                sample_rows,
                rows,
                i64::from(rows),
                params.as_ptr(),
                &mut handle,
            )
        };
        check(ret, what)?;
        Ok(Dataset(handle))
    }

    /// Sets rows `start..` from `x` (row-major f32, `ncol` per row). The
    /// dataset is complete once its last row is pushed.
    pub(super) fn push_rows(&mut self, x: &[f32], ncol: usize, start: usize) -> Result<()> {
        let what = "adding rows to the dataset";
        if ncol == 0 || x.len() % ncol != 0 {
            return Err(Error::shape(
                "rows for LightGBM",
                format!("whole rows of {ncol}"),
                x.len(),
            ));
        }
        let (nrow, ncol, start) = (
            c_int_of(x.len() / ncol, what)?,
            c_int_of(ncol, what)?,
            c_int_of(start, what)?,
        );
        // SAFETY: x holds nrow × ncol f32 values for the call; LightGBM
        // checks the row range against the dataset's rows.
        let ret = unsafe {
            sys::LGBM_DatasetPushRows(
                self.0,
                x.as_ptr().cast::<c_void>(),
                FLOAT32,
                nrow,
                ncol,
                start,
            )
        };
        check(ret, what)
    }

    /// The regression targets, one per row.
    pub(super) fn set_labels(&mut self, y: &[f32]) -> Result<()> {
        let what = "setting the targets";
        let n = c_int_of(y.len(), what)?;
        // SAFETY: y holds n f32 values for the call; LightGBM copies them
        // and checks n against the dataset's rows.
        let ret = unsafe {
            sys::LGBM_DatasetSetField(
                self.0,
                c"label".as_ptr(),
                y.as_ptr().cast::<c_void>(),
                n,
                FLOAT32,
            )
        };
        check(ret, what)
    }
}

/// A booster being trained on a [`Dataset`] it borrows.
pub(super) struct Trainer<'d> {
    handle: sys::BoosterHandle,
    _data: PhantomData<&'d Dataset>,
}

impl Drop for Trainer<'_> {
    fn drop(&mut self) {
        // SAFETY: created by LGBM_BoosterCreate, freed once, before its dataset.
        unsafe { sys::LGBM_BoosterFree(self.handle) };
    }
}

impl<'d> Trainer<'d> {
    /// A booster on `data` with `params`.
    pub(super) fn new(data: &'d Dataset, params: &CStr) -> Result<Trainer<'d>> {
        let mut handle = std::ptr::null_mut();
        // SAFETY: a complete dataset, which outlives the booster ('d);
        // `handle` receives a new booster.
        let ret = unsafe { sys::LGBM_BoosterCreate(data.0, params.as_ptr(), &mut handle) };
        check(ret, "creating the booster")?;
        Ok(Trainer {
            handle,
            _data: PhantomData,
        })
    }

    /// Grows one tree; `true` when LightGBM can grow no more (no split
    /// gains anything).
    pub(super) fn grow_tree(&mut self) -> Result<bool> {
        let mut finished: c_int = 0;
        // SAFETY: a live booster and an out-int.
        let ret = unsafe { sys::LGBM_BoosterUpdateOneIter(self.handle, &mut finished) };
        check(ret, "growing a tree")?;
        Ok(finished != 0)
    }

    /// The model as LightGBM's text.
    pub(super) fn model_string(&self) -> Result<String> {
        model_string(self.handle)
    }
}

/// LightGBM's text of the booster `handle` (every tree).
fn model_string(handle: sys::BoosterHandle) -> Result<String> {
    let what = "writing the model";
    let mut len: i64 = 0;
    // SAFETY: a live booster; with a zero-length buffer LightGBM only
    // reports the length needed (NUL included).
    let ret = unsafe {
        sys::LGBM_BoosterSaveModelToString(handle, 0, -1, 0, 0, &mut len, std::ptr::null_mut())
    };
    check(ret, what)?;
    let size = usize::try_from(len).unwrap_or(0);
    let mut buf = vec![0u8; size];
    // SAFETY: buf has `len` bytes, as LightGBM asked for.
    let ret = unsafe {
        sys::LGBM_BoosterSaveModelToString(
            handle,
            0,
            -1,
            0,
            len,
            &mut len,
            buf.as_mut_ptr().cast::<c_char>(),
        )
    };
    check(ret, what)?;
    let text = CStr::from_bytes_until_nul(&buf).map_err(|_| Error::LightGbm {
        what: what.into(),
        message: "the model text has no terminating NUL".into(),
    })?;
    Ok(text.to_string_lossy().into_owned())
}

/// A trained model, loaded from LightGBM's text.
pub(super) struct Booster {
    handle: sys::BoosterHandle,
    features: usize,
    trees: usize,
}

// SAFETY: the booster is a heap object of LightGBM's with no tie to the
// thread that made it; moving its owner to another thread is fine. (Not
// Sync: calls from several threads at once are not claimed safe here.)
unsafe impl Send for Booster {}

impl Drop for Booster {
    fn drop(&mut self) {
        // SAFETY: created by LGBM_BoosterLoadModelFromString, freed once.
        unsafe { sys::LGBM_BoosterFree(self.handle) };
    }
}

impl Booster {
    /// The model of LightGBM's text `model`.
    pub(super) fn from_string(model: &str) -> Result<Booster> {
        let what = "reading the model";
        let text = c_string(model, what)?;
        let (mut iterations, mut handle): (c_int, sys::BoosterHandle) = (0, std::ptr::null_mut());
        // SAFETY: a NUL-terminated string alive for the call; `handle`
        // receives a new booster that owns its copy of the model.
        let ret = unsafe {
            sys::LGBM_BoosterLoadModelFromString(text.as_ptr(), &mut iterations, &mut handle)
        };
        check(ret, what)?;
        let mut booster = Booster {
            handle,
            features: 0,
            trees: usize::try_from(iterations).unwrap_or(0),
        };
        let (mut features, mut classes): (c_int, c_int) = (0, 0);
        // SAFETY: a live booster and out-ints.
        let ret = unsafe { sys::LGBM_BoosterGetNumFeature(booster.handle, &mut features) };
        check(ret, what)?;
        // SAFETY: as above.
        let ret = unsafe { sys::LGBM_BoosterGetNumClasses(booster.handle, &mut classes) };
        check(ret, what)?;
        // predict() writes one value per row: a model with more outputs
        // (multiclass) would write past its buffer.
        if classes != 1 {
            return Err(Error::LightGbm {
                what: what.into(),
                message: format!("a model of {classes} outputs per row; an expert has one"),
            });
        }
        booster.features = usize::try_from(features).unwrap_or(0);
        Ok(booster)
    }

    /// Features the model expects per row.
    pub(super) fn features(&self) -> usize {
        self.features
    }

    /// Trees (boosting rounds) in the model.
    pub(super) fn trees(&self) -> usize {
        self.trees
    }

    /// Predictions for the rows of `x` (row-major f32, [`Self::features`]
    /// per row) into `out` (one per row), on `threads` threads.
    pub(super) fn predict(&self, x: &[f32], threads: usize, out: &mut [f64]) -> Result<()> {
        let what = "predicting";
        let p = self.features;
        if p == 0 || x.len() != out.len() * p {
            return Err(Error::shape(
                "rows to predict",
                format!("{} values ({} rows of {p})", out.len() * p, out.len()),
                x.len(),
            ));
        }
        if out.is_empty() {
            return Ok(());
        }
        let (nrow, ncol) = (c_int_of(out.len(), what)?, c_int_of(p, what)?);
        let params = c_string(&format!("num_threads={threads}"), what)?;
        let mut len: i64 = 0;
        // SAFETY: x holds nrow × ncol f32 values and out nrow f64 slots
        // (one per row for a regression model), both alive for the call.
        let ret = unsafe {
            sys::LGBM_BoosterPredictForMat(
                self.handle,
                x.as_ptr().cast::<c_void>(),
                FLOAT32,
                nrow,
                ncol,
                1,
                sys::C_API_PREDICT_NORMAL as c_int,
                0,
                -1,
                params.as_ptr(),
                &mut len,
                out.as_mut_ptr(),
            )
        };
        check(ret, what)?;
        if len != i64::from(nrow) {
            return Err(Error::LightGbm {
                what: what.into(),
                message: format!("{len} predictions for {nrow} rows"),
            });
        }
        Ok(())
    }
}

//! Values handed to Python: numpy arrays from the library's vectors and
//! matrices, Python objects from the library's serde records.

use faer::MatRef;
use numpy::ndarray::Array2;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList};

use crate::errors::invalid;

static REQUIRE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `numpy.require(value, dtype, "CA")`: an aligned C-contiguous array of
/// `dtype`, converted or copied only when it is not one already. Arrays
/// reach the library through this: a strided view whose stride is not a
/// multiple of the element size (a field of a packed structured array,
/// such as an h5py params table) would otherwise be read wrongly.
fn require<'py>(
    value: &Bound<'py, PyAny>,
    dtype: &str,
    name: &'static str,
) -> PyResult<Bound<'py, PyAny>> {
    let py = value.py();
    let require = REQUIRE.get_or_try_init(py, || {
        py.import("numpy")?.getattr("require").map(Bound::unbind)
    })?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", dtype)?;
    kwargs.set_item("requirements", "CA")?;
    require
        .bind(py)
        .call((value,), Some(&kwargs))
        .map_err(|e| invalid(name, format!("not an array of numbers: {e}")))
}

/// A 1-D float64 array (C-contiguous, aligned) from any array-like.
pub(crate) fn floats1<'py>(
    value: &Bound<'py, PyAny>,
    name: &'static str,
) -> PyResult<PyReadonlyArray1<'py, f64>> {
    let a = require(value, "float64", name)?;
    let ndim = a.getattr("ndim")?.extract::<usize>()?;
    a.extract::<PyReadonlyArray1<'py, f64>>().map_err(|_| {
        invalid(
            name,
            format!("a 1-D array of numbers is needed, this one has {ndim} dimension(s)"),
        )
    })
}

/// A 2-D float64 array (C-contiguous, aligned) from any array-like.
pub(crate) fn floats2<'py>(
    value: &Bound<'py, PyAny>,
    name: &'static str,
) -> PyResult<PyReadonlyArray2<'py, f64>> {
    let a = require(value, "float64", name)?;
    let ndim = a.getattr("ndim")?.extract::<usize>()?;
    a.extract::<PyReadonlyArray2<'py, f64>>().map_err(|_| {
        invalid(
            name,
            format!("a 2-D array (rows × pixels) is needed, this one has {ndim} dimension(s)"),
        )
    })
}

/// A float64 array of any dimension (C-contiguous, aligned) from any array-like.
pub(crate) fn floats<'py>(
    value: &Bound<'py, PyAny>,
    name: &'static str,
) -> PyResult<numpy::PyReadonlyArrayDyn<'py, f64>> {
    require(value, "float64", name)?
        .extract::<numpy::PyReadonlyArrayDyn<'py, f64>>()
        .map_err(|_| invalid(name, "not an array of numbers"))
}

/// Values of a float array, row-major.
pub(crate) fn slice<'a, D: numpy::ndarray::Dimension>(
    a: &'a numpy::PyReadonlyArray<'_, f64, D>,
) -> &'a [f64] {
    // `floats1`/`floats2` made the array C-contiguous.
    a.as_slice().unwrap_or(&[])
}

/// Dimensions of an array.
pub(crate) fn dims<D: numpy::ndarray::Dimension>(
    a: &numpy::PyReadonlyArray<'_, f64, D>,
) -> Vec<usize> {
    a.shape().to_vec()
}

/// A 1-D int64 array (C-contiguous, aligned) of values ≥ 0.
pub(crate) fn counts1(value: &Bound<'_, PyAny>, name: &'static str) -> PyResult<Vec<u64>> {
    let a = require(value, "int64", name)?;
    let a = a
        .extract::<PyReadonlyArray1<'_, i64>>()
        .map_err(|_| invalid(name, "a 1-D array of integers is needed"))?;
    a.as_array()
        .iter()
        .map(|&v| u64::try_from(v).map_err(|_| invalid(name, format!("{v} is negative"))))
        .collect()
}

/// A 1-D float64 array.
pub(crate) fn vec1(py: Python<'_>, v: Vec<f64>) -> Bound<'_, PyArray1<f64>> {
    PyArray1::from_vec(py, v)
}

/// A 2-D array (C order) from `rows × cols` values, row-major.
pub(crate) fn mat2<T: numpy::Element>(
    py: Python<'_>,
    rows: usize,
    cols: usize,
    v: Vec<T>,
) -> PyResult<Bound<'_, PyArray2<T>>> {
    let a = Array2::from_shape_vec((rows, cols), v)
        .map_err(|e| crate::errors::shape("array", format!("{rows} × {cols} values"), e))?;
    Ok(a.into_pyarray(py))
}

/// A faer matrix as a 2-D float64 array (C order).
pub(crate) fn faer2<'py>(
    py: Python<'py>,
    m: MatRef<'_, f64>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (r, c) = (m.nrows(), m.ncols());
    let mut v = Vec::with_capacity(r * c);
    for i in 0..r {
        for j in 0..c {
            v.push(m[(i, j)]);
        }
    }
    mat2(py, r, c, v)
}

/// A JSON value as plain Python objects (dict, list, str, int, float, bool, None).
pub(crate) fn json<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_u64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(a) => {
            let list = PyList::empty(py);
            for x in a {
                list.append(json(py, x)?)?;
            }
            list.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, json(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// A serde record as plain Python objects.
pub(crate) fn record<'py, T: serde::Serialize>(
    py: Python<'py>,
    v: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(v).map_err(|e| {
        crate::errors::to_py(gramstream::Error::Json {
            what: "a record".into(),
            source: e,
        })
    })?;
    json(py, &value)
}

//! Bindings of the per-class statistics behind `smoothmax.linear_model`.

use ndarray::{Array1, Array2, ArrayD, IxDyn};
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayDyn, PyReadonlyArray1, PyReadonlyArray2,
    PyReadonlyArrayDyn,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::errors::detached;
use crate::class_stats::{self as kernels, ClassStats};

/// A read-only 2-D float array of either supported dtype.
#[derive(FromPyObject)]
pub(crate) enum In2<'py> {
    F32(PyReadonlyArray2<'py, f32>),
    F64(PyReadonlyArray2<'py, f64>),
}

/// `(weight (K,), mean (K, d), scatter (d, d) or (K, d, d))`, all float64.
type StatsArrays<'py> = (
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArrayDyn<f64>>,
);

fn to_python(py: Python<'_>, stats: ClassStats) -> PyResult<StatsArrays<'_>> {
    let (k, d) = (stats.n_classes(), stats.n_features());
    let scatter_shape: Vec<usize> = if stats.per_class() {
        vec![k, d, d]
    } else {
        vec![d, d]
    };
    let mean = Array2::from_shape_vec((k, d), stats.mean)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let scatter = ArrayD::from_shape_vec(IxDyn(&scatter_shape), stats.scatter)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok((
        Array1::from(stats.weight).into_pyarray(py),
        mean.into_pyarray(py),
        scatter.into_pyarray(py),
    ))
}

fn from_python(
    weight: &PyReadonlyArray1<'_, f64>,
    mean: &PyReadonlyArray2<'_, f64>,
    scatter: &PyReadonlyArrayDyn<'_, f64>,
) -> PyResult<ClassStats> {
    let (k, d) = (mean.as_array().nrows(), mean.as_array().ncols());
    let per_class = scatter.as_array().ndim() == 3;
    Ok(ClassStats::from_parts(
        k,
        d,
        per_class,
        weight.as_array().to_vec(),
        mean.as_array().iter().copied().collect(),
        scatter.as_array().iter().copied().collect(),
    )?)
}

/// Per-class weights, means and scatter of `x` (one pass, GIL released).
#[pyfunction]
#[pyo3(signature = (x, classes, n_classes, sample_weight=None, per_class=false))]
pub(crate) fn class_stats<'py>(
    py: Python<'py>,
    x: In2<'py>,
    classes: PyReadonlyArray1<'py, i64>,
    n_classes: usize,
    sample_weight: Option<PyReadonlyArray1<'py, f64>>,
    per_class: bool,
) -> PyResult<StatsArrays<'py>> {
    let y = classes.as_array();
    let w = sample_weight.as_ref().map(|w| w.as_array());
    let stats = match &x {
        In2::F32(x) => {
            let xv = x.as_array();
            detached(py, move || {
                kernels::class_stats(xv, y, w, n_classes, per_class)
            })?
        }
        In2::F64(x) => {
            let xv = x.as_array();
            detached(py, move || {
                kernels::class_stats(xv, y, w, n_classes, per_class)
            })?
        }
    };
    to_python(py, stats)
}

/// The statistics of the union of two samples' statistics.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub(crate) fn merge_class_stats<'py>(
    py: Python<'py>,
    weight_a: PyReadonlyArray1<'py, f64>,
    mean_a: PyReadonlyArray2<'py, f64>,
    scatter_a: PyReadonlyArrayDyn<'py, f64>,
    weight_b: PyReadonlyArray1<'py, f64>,
    mean_b: PyReadonlyArray2<'py, f64>,
    scatter_b: PyReadonlyArrayDyn<'py, f64>,
) -> PyResult<StatsArrays<'py>> {
    let mut a = from_python(&weight_a, &mean_a, &scatter_a)?;
    let b = from_python(&weight_b, &mean_b, &scatter_b)?;
    let merged = detached(py, move || a.merge(&b).map(|()| a))?;
    to_python(py, merged)
}

/// Per-group `Σ w (Σ_j ((x_j − centre_gj)·inv_scale_gj)²)²` (GIL released).
#[pyfunction]
#[pyo3(signature = (x, groups, centre, inv_scale, sample_weight=None))]
pub(crate) fn standardized_fourth_moments<'py>(
    py: Python<'py>,
    x: In2<'py>,
    groups: Option<PyReadonlyArray1<'py, i64>>,
    centre: PyReadonlyArray2<'py, f64>,
    inv_scale: PyReadonlyArray2<'py, f64>,
    sample_weight: Option<PyReadonlyArray1<'py, f64>>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let g = groups.as_ref().map(|g| g.as_array());
    let w = sample_weight.as_ref().map(|w| w.as_array());
    let (c, s) = (centre.as_array(), inv_scale.as_array());
    let moments = match &x {
        In2::F32(x) => {
            let xv = x.as_array();
            detached(py, move || {
                kernels::standardized_fourth_moments(xv, g, w, c, s)
            })?
        }
        In2::F64(x) => {
            let xv = x.as_array();
            detached(py, move || {
                kernels::standardized_fourth_moments(xv, g, w, c, s)
            })?
        }
    };
    Ok(Array1::from(moments).into_pyarray(py))
}

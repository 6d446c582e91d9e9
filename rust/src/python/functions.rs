//! The functions of `smoothmax._core`: extract → kernel (GIL released) → return.

use ndarray::ArrayView3;
use numpy::{
    PyArrayDyn, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray3, PyReadwriteArray1,
    PyReadwriteArray2, PyReadwriteArray3, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use super::errors::detached;
use crate::error::KernelError;
use crate::simd::{active_isa, force_isa, Isa};
use crate::{kernels, math, threads};

/// A read-only 3-D float array of either supported dtype.
#[derive(FromPyObject)]
pub(crate) enum In3<'py> {
    F32(PyReadonlyArray3<'py, f32>),
    F64(PyReadonlyArray3<'py, f64>),
}

/// A writable 3-D float array of either supported dtype.
#[derive(FromPyObject)]
pub(crate) enum Out3<'py> {
    F32(PyReadwriteArray3<'py, f32>),
    F64(PyReadwriteArray3<'py, f64>),
}

/// A writable 2-D float array of either supported dtype.
#[derive(FromPyObject)]
pub(crate) enum Out2<'py> {
    F32(PyReadwriteArray2<'py, f32>),
    F64(PyReadwriteArray2<'py, f64>),
}

fn dtype_mismatch(arg: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "{arg} must have the dtype of the input (float32 or float64)"
    ))
}

/// `out[o, j] = logsumexp(x[o, :, j])`.
#[pyfunction]
pub(crate) fn logsumexp_3d(py: Python<'_>, x: In3<'_>, out: Out2<'_>) -> PyResult<()> {
    match (x, out) {
        (In3::F32(x), Out2::F32(mut o)) => {
            let (xv, ov) = (x.as_array(), o.as_array_mut());
            detached(py, move || kernels::logsumexp(xv, ov))
        }
        (In3::F64(x), Out2::F64(mut o)) => {
            let (xv, ov) = (x.as_array(), o.as_array_mut());
            detached(py, move || kernels::logsumexp(xv, ov))
        }
        _ => Err(dtype_mismatch("out")),
    }
}

/// Weighted logsumexp with sign: `out`, `sign` of shape `(outer, inner)`.
#[pyfunction]
pub(crate) fn logsumexp_weighted_3d(
    py: Python<'_>,
    x: In3<'_>,
    b: In3<'_>,
    out: Out2<'_>,
    sign: Out2<'_>,
) -> PyResult<()> {
    match (x, b, out, sign) {
        (In3::F32(x), In3::F32(b), Out2::F32(mut o), Out2::F32(mut s)) => {
            let (xv, bv, ov, sv) = (
                x.as_array(),
                b.as_array(),
                o.as_array_mut(),
                s.as_array_mut(),
            );
            detached(py, move || kernels::logsumexp_weighted(xv, bv, ov, sv))
        }
        (In3::F64(x), In3::F64(b), Out2::F64(mut o), Out2::F64(mut s)) => {
            let (xv, bv, ov, sv) = (
                x.as_array(),
                b.as_array(),
                o.as_array_mut(),
                s.as_array_mut(),
            );
            detached(py, move || kernels::logsumexp_weighted(xv, bv, ov, sv))
        }
        _ => Err(dtype_mismatch("b, out and sign")),
    }
}

/// softmax (`log=False`) or log_softmax along axis 1 of `x` into `out`; `x=None` works in place.
#[pyfunction]
#[pyo3(signature = (x, out, temperature, log))]
pub(crate) fn softmax_3d(
    py: Python<'_>,
    x: Option<In3<'_>>,
    out: Out3<'_>,
    temperature: f64,
    log: bool,
) -> PyResult<()> {
    match (x, out) {
        (None, Out3::F32(mut o)) => {
            let ov = o.as_array_mut();
            detached(py, move || kernels::softmax_inplace(ov, temperature, log))
        }
        (None, Out3::F64(mut o)) => {
            let ov = o.as_array_mut();
            detached(py, move || kernels::softmax_inplace(ov, temperature, log))
        }
        (Some(In3::F32(x)), Out3::F32(mut o)) => {
            let (xv, ov) = (x.as_array(), o.as_array_mut());
            detached(py, move || kernels::softmax(xv, ov, temperature, log))
        }
        (Some(In3::F64(x)), Out3::F64(mut o)) => {
            let (xv, ov) = (x.as_array(), o.as_array_mut());
            detached(py, move || kernels::softmax(xv, ov, temperature, log))
        }
        _ => Err(dtype_mismatch("out")),
    }
}

/// The vector exp kernel on a contiguous 1-D array (exposed for accuracy tests).
#[pyfunction]
pub(crate) fn exp_1d(py: Python<'_>, x: &Bound<'_, PyAny>, out: &Bound<'_, PyAny>) -> PyResult<()> {
    if x.len()? != out.len()? {
        return Err(PyValueError::new_err(
            "exp_1d: x and out must have the same length",
        ));
    }
    if let (Ok(x), Ok(mut o)) = (
        x.extract::<PyReadonlyArray1<f32>>(),
        out.extract::<PyReadwriteArray1<f32>>(),
    ) {
        let (xs, os) = (x.as_slice()?, o.as_slice_mut()?);
        return detached(py, || math::exp::exp_f32(xs, os).map_err(KernelError::Simd));
    }
    if let (Ok(x), Ok(mut o)) = (
        x.extract::<PyReadonlyArray1<f64>>(),
        out.extract::<PyReadwriteArray1<f64>>(),
    ) {
        let (xs, os) = (x.as_slice()?, o.as_slice_mut()?);
        return detached(py, || math::exp::exp_f64(xs, os).map_err(KernelError::Simd));
    }
    Err(PyTypeError::new_err(
        "exp_1d: x and out must be contiguous 1-D arrays of one float dtype",
    ))
}

/// The SIMD path kernels run on: `"scalar"`, `"avx2"` or `"avx512"`.
#[pyfunction]
pub(crate) fn simd_level() -> PyResult<&'static str> {
    active_isa()
        .map(Isa::name)
        .map_err(|e| KernelError::Simd(e).into())
}

/// Every SIMD path this CPU supports, slowest first.
#[pyfunction]
pub(crate) fn supported_simd() -> Vec<&'static str> {
    Isa::supported().into_iter().map(Isa::name).collect()
}

/// Select the SIMD path for later calls (tests run every path in one process with it).
#[pyfunction]
pub(crate) fn force_simd(name: &str) -> PyResult<()> {
    let isa = Isa::from_name(name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown SIMD path {name:?}: use 'scalar', 'avx2' or 'avx512'"
        ))
    })?;
    force_isa(isa).map_err(|e| KernelError::Simd(e).into())
}

/// Set the number of threads kernels use.
#[pyfunction]
pub(crate) fn set_num_threads(n: i64) -> PyResult<()> {
    let n = usize::try_from(n)
        .map_err(|_| PyValueError::new_err(format!("n must be >= 1, got {n}")))?;
    threads::set_num_threads(n).map_err(PyErr::from)
}

/// The number of threads kernels use.
#[pyfunction]
pub(crate) fn get_num_threads() -> usize {
    threads::get_num_threads()
}

/// `(outer, n, inner)` and element strides of `arr` reduced along `axis`, when the dimensions
/// before and after `axis` merge without a copy and no stride is negative; `None` otherwise.
fn rows_of(shape: &[usize], strides: &[isize], axis: isize) -> Option<([usize; 3], [usize; 3])> {
    let ndim = shape.len() as isize;
    if ndim == 0 || !(-ndim..ndim).contains(&axis) {
        return None;
    }
    let k = axis.rem_euclid(ndim) as usize;
    let (outer, so) = merged(shape, strides, 0..k)?;
    let (inner, si) = merged(shape, strides, k + 1..shape.len())?;
    let sn = strides[k];
    (sn >= 0).then_some(([outer, shape[k], inner], [so, sn as usize, si]))
}

/// The dimensions `dims` of an array merged into one `(size, stride)`, when each kept stride
/// (of a dimension longer than 1) is the next one's times its extent and none is negative; the
/// merged stride is the innermost kept one.
fn merged(
    shape: &[usize],
    strides: &[isize],
    dims: std::ops::Range<usize>,
) -> Option<(usize, usize)> {
    let mut size = 1usize;
    let mut stride: Option<isize> = None;
    for d in dims.rev() {
        if shape[d] == 1 {
            continue;
        }
        match stride {
            None => stride = Some(strides[d]),
            Some(_) if strides[d] != strides_inner(shape, strides, d) => return None,
            _ => {}
        }
        size *= shape[d];
    }
    let st = stride.unwrap_or(0);
    (st >= 0).then_some((size, st as usize))
}

/// The stride a dimension `d` must have to merge with the kept dimensions after it.
fn strides_inner(shape: &[usize], strides: &[isize], d: usize) -> isize {
    (d + 1..shape.len())
        .find(|&e| shape[e] != 1)
        .map_or(strides[d], |e| strides[e] * shape[e] as isize)
}

fn element_strides<T>(strides: &[isize]) -> Vec<isize> {
    strides
        .iter()
        .map(|s| s / std::mem::size_of::<T>() as isize)
        .collect()
}

/// The byte range `[lo, hi)` an array's elements occupy (for overlap checks).
fn byte_span<T: numpy::Element>(arr: &Bound<'_, PyArrayDyn<T>>) -> (usize, usize) {
    let start = arr.data() as usize;
    let (mut lo, mut hi) = (start, start);
    for (&n, &st) in arr.shape().iter().zip(arr.strides()) {
        if n == 0 {
            return (start, start);
        }
        let reach = st * (n as isize - 1);
        if reach < 0 {
            lo = lo.wrapping_add_signed(reach);
        } else {
            hi = hi.wrapping_add_signed(reach);
        }
    }
    (lo, hi + std::mem::size_of::<T>())
}

/// The rows fast path for one dtype: `log = Some(..)` for softmax / log_softmax (result in the
/// input's shape, into `out` when given), `None` for logsumexp (the axis removed). `Ok(None)`
/// hands the call to the general Python path, which also raises any argument error.
fn rows_fast<'py, T>(
    py: Python<'py>,
    arr: &Bound<'py, PyArrayDyn<T>>,
    axis: isize,
    log: Option<bool>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyAny>>>
where
    T: numpy::Element + crate::simd::Element,
{
    use ndarray::{ArrayViewMut2, ArrayViewMut3, ShapeBuilder};
    // Kernels dereference element pointers: unaligned arrays take the general path (a copy).
    if !arr.data().is_aligned() {
        return Ok(None);
    }
    let Some((dims, st)) = rows_of(arr.shape(), &element_strides::<T>(arr.strides()), axis) else {
        return Ok(None);
    };
    let no_rows = || PyValueError::new_err("internal: the new array has no (outer, n, inner) view");
    if let (Some(out), Some(log)) = (out, log) {
        let Ok(o) = out.cast::<PyArrayDyn<T>>() else {
            return Ok(None);
        };
        if o.shape() != arr.shape() || !o.data().is_aligned() {
            return Ok(None);
        }
        let Some((odims, ost)) = rows_of(o.shape(), &element_strides::<T>(o.strides()), axis)
        else {
            return Ok(None);
        };
        debug_assert_eq!(odims, dims);
        if o.is(arr) {
            let Ok(w) = o.try_readwrite() else {
                return Ok(None); // read-only: the general path says so
            };
            // SAFETY: dims/strides come from rows_of on this array; the borrow is exclusive.
            let v = unsafe {
                ArrayViewMut3::from_shape_ptr(dims.strides(st), w.as_raw_array_mut().as_mut_ptr())
            };
            detached(py, move || kernels::softmax_inplace(v, 1.0, log))?;
            return Ok(Some(o.clone().into_any()));
        }
        let (a, b) = (byte_span(arr), byte_span(o));
        if a.0 < b.1 && b.0 < a.1 {
            return Ok(None); // partial overlap: the general path copies the input first
        }
        let x = arr.readonly();
        let Ok(w) = o.try_readwrite() else {
            return Ok(None); // read-only: the general path says so
        };
        // SAFETY: dims/strides come from rows_of on each array; the borrows keep them alive.
        let (xv, ov) = unsafe {
            (
                ArrayView3::from_shape_ptr(dims.strides(st), x.data()),
                ArrayViewMut3::from_shape_ptr(dims.strides(ost), w.as_raw_array_mut().as_mut_ptr()),
            )
        };
        detached(py, move || kernels::softmax(xv, ov, 1.0, log))?;
        return Ok(Some(o.clone().into_any()));
    }
    let x = arr.readonly();
    // SAFETY: dims/strides come from rows_of on x itself; the borrow keeps x alive.
    let xv = unsafe { ArrayView3::from_shape_ptr(dims.strides(st), x.data()) };
    let k = axis.rem_euclid(arr.ndim() as isize) as usize;
    let mut shape = x.shape().to_vec();
    if log.is_none() {
        shape.remove(k);
    }
    // A Fortran-ordered input gets a Fortran-ordered result, as from SciPy (whose results come
    // from NumPy ufuncs): its rows are then adjacent in memory as the input's are, which the
    // column kernels need (see kernels::Task::oriented).
    let fortran = arr.ndim() > 1 && arr.is_fortran_contiguous() && !arr.is_c_contiguous();
    // SAFETY: every element is written by the kernel before the array is returned.
    let result = unsafe { PyArrayDyn::<T>::new(py, shape, fortran) };
    {
        let mut o = result.readwrite();
        let mut ov = o.as_array_mut();
        let ost = ov.strides().to_vec(); // in elements
        let ptr = ov.as_mut_ptr();
        match log {
            Some(log) => {
                let (odims, ost) = rows_of(ov.shape(), &ost, axis).ok_or_else(no_rows)?;
                debug_assert_eq!(odims, dims);
                // SAFETY: dims/strides come from rows_of on the new array, borrowed mutably.
                let ov = unsafe { ArrayViewMut3::from_shape_ptr(dims.strides(ost), ptr) };
                detached(py, move || kernels::softmax(xv, ov, 1.0, log))?;
            }
            None => {
                let (outer, so) = merged(ov.shape(), &ost, 0..k).ok_or_else(no_rows)?;
                let (inner, si) = merged(ov.shape(), &ost, k..ov.ndim()).ok_or_else(no_rows)?;
                debug_assert_eq!((outer, inner), (dims[0], dims[2]));
                // SAFETY: as above, for the reduced array.
                let ov =
                    unsafe { ArrayViewMut2::from_shape_ptr((outer, inner).strides((so, si)), ptr) };
                detached(py, move || kernels::logsumexp(xv, ov))?;
            }
        }
    }
    Ok(Some(result.into_any()))
}

/// softmax / log_softmax of a native float32/float64 array along one axis, into `out` when
/// given (it may be `x`) or a new array (Fortran-ordered for a Fortran-ordered `x`, else
/// C-ordered); `None` when the call needs the general path (dtype, byte order, strides, an
/// `out` that does not fit).
#[pyfunction]
#[pyo3(signature = (x, axis, log, out=None))]
pub(crate) fn softmax_axis<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    axis: isize,
    log: bool,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Ok(arr) = x.cast::<PyArrayDyn<f32>>() {
        return rows_fast(py, arr, axis, Some(log), out);
    }
    if let Ok(arr) = x.cast::<PyArrayDyn<f64>>() {
        return rows_fast(py, arr, axis, Some(log), out);
    }
    Ok(None)
}

/// logsumexp of a native float32/float64 array along one axis (removed; the result ordered as
/// for softmax_axis), or `None` when the call needs the general path.
#[pyfunction]
pub(crate) fn logsumexp_axis<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    axis: isize,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Ok(arr) = x.cast::<PyArrayDyn<f32>>() {
        return rows_fast(py, arr, axis, None, None);
    }
    if let Ok(arr) = x.cast::<PyArrayDyn<f64>>() {
        return rows_fast(py, arr, axis, None, None);
    }
    Ok(None)
}

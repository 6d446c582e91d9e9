"""SciPy-compatible ``logsumexp``, ``softmax`` and ``log_softmax`` over the Rust kernels.

This module owns the contract: argument validation, the dtype policy, axis handling, masks and
``out=``. The kernels in ``smoothmax._core`` only see 3-D views ``(outer, n, inner)`` of native
float32/float64 data and reduce or normalise along the middle axis.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core

try:  # bfloat16 is a NumPy dtype only when ml_dtypes is installed.
    import ml_dtypes as _ml_dtypes

    _BFLOAT16: np.dtype[Any] | None = np.dtype(_ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - exercised only without ml_dtypes
    _BFLOAT16 = None

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_HALF_TYPES = (np.dtype(np.float16),) + ((_BFLOAT16,) if _BFLOAT16 is not None else ())

__all__ = ["log_softmax", "logsumexp", "softmax"]


# --------------------------------------------------------------------------- validation


def _as_array(x: Any, name: str) -> np.ndarray:
    """``np.asarray`` with errors that name the argument."""
    if isinstance(x, np.ndarray):
        return x
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of real numbers: {exc}") from None


def _dtypes(dt: np.dtype[Any], name: str) -> tuple[np.dtype[Any], np.dtype[Any]]:
    """``(compute dtype, result dtype)`` for an input dtype, or a ``TypeError``."""
    if dt.kind == "f" and dt.itemsize in (4, 8):
        native = dt.newbyteorder("=")
        return native, native
    if dt.kind == "f" and dt.itemsize > 8:  # longdouble: computed and returned as float64
        return _F64, _F64
    if dt.newbyteorder("=") in _HALF_TYPES:
        return _F32, dt.newbyteorder("=")
    if dt.kind in "biu":
        return _F64, _F64
    if dt.kind == "c":
        raise TypeError(
            f"{name} is complex ({dt}); smoothmax works on real floating-point data. "
            "Use scipy.special.logsumexp for complex input."
        )
    raise TypeError(f"{name} must be an array of real numbers, got dtype {dt}")


def _normalize_axis(axis: Any, ndim: int) -> tuple[int, ...]:
    """Reduced axes as sorted non-negative ints (NumPy's rules and errors)."""
    if axis is None:
        return tuple(range(ndim))
    items: Sequence[Any] = axis if isinstance(axis, tuple) else (axis,)
    out = []
    for ax in items:
        try:
            ax = operator.index(ax)
        except TypeError:
            raise TypeError(
                f"axis must be None, an integer or a tuple of integers, got {axis!r}"
            ) from None
        if not -ndim <= ax < ndim:
            raise np.exceptions.AxisError(ax, ndim)
        out.append(ax % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"duplicate value in 'axis': {axis!r}")
    return tuple(sorted(out))


def _check_temperature(temperature: Any) -> float:
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise TypeError(f"temperature must be a real number, got {temperature!r}") from None
    if not (t > 0.0 and math.isfinite(t)):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    return t


def _check_where(where: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    if where is None:
        return None
    mask = _as_array(where, "where")
    if mask.dtype != np.bool_:
        raise TypeError(f"where must be a boolean array, got dtype {mask.dtype}")
    try:
        return np.broadcast_to(mask, shape)
    except ValueError:
        raise ValueError(
            f"where with shape {mask.shape} cannot be broadcast to the input shape {shape}"
        ) from None


# --------------------------------------------------------------------------- layout


def _reshape_view(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``a`` reshaped without a copy, or ``None`` when that is impossible."""
    try:
        return np.reshape(a, shape, copy=False)
    except ValueError:
        return None
    except TypeError:  # NumPy < 2.1 has no copy= in reshape
        v = a.view()
        try:
            v.shape = shape
        except AttributeError:
            return None
        return v


def _rows(a: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A view (a copy only when unavoidable) of ``a`` as ``(outer, n, inner)`` rows."""
    shape = a.shape
    if not axes:
        dims = (a.size, 1, 1)
        src = a
    elif axes == tuple(range(axes[0], axes[-1] + 1)):  # one block of adjacent axes
        k0, k1 = axes[0], axes[-1] + 1
        dims = (math.prod(shape[:k0]), math.prod(shape[k0:k1]), math.prod(shape[k1:]))
        src = a
    else:  # scattered axes: bring them to the end
        src = np.moveaxis(a, axes, tuple(range(a.ndim - len(axes), a.ndim)))
        n = math.prod(shape[k] for k in axes)
        dims = (
            a.size // n if n else math.prod(s for k, s in enumerate(shape) if k not in axes),
            n,
            1,
        )
    view = _reshape_view(src, dims)
    return (view if view is not None else np.reshape(src, dims)), dims


def _one_row(x: Any, out: Any) -> bool:
    """Whether ``axis=None`` over ``x`` (and ``out``) is one row of their flattened data: a
    non-empty C-contiguous array of at least one dimension, and ``out`` likewise if given."""
    if type(x) is not np.ndarray or x.ndim == 0 or x.size == 0 or not x.flags.c_contiguous:
        return False
    return out is None or (
        type(out) is np.ndarray and out.shape == x.shape and out.flags.c_contiguous
    )


def _aligned(a: np.ndarray) -> np.ndarray:
    """``a``, or an aligned copy: the kernels read elements through typed pointers."""
    return a if a.flags.aligned else a.copy()


def _reduced_shape(shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool) -> tuple:
    if keepdims:
        return tuple(1 if k in axes else s for k, s in enumerate(shape))
    return tuple(s for k, s in enumerate(shape) if k not in axes)


def _finish(
    res: np.ndarray, result_dtype: np.dtype[Any], scalar: bool, like: np.ndarray | None = None
) -> Any:
    """``res`` in the result dtype; Fortran-ordered when ``like`` (the input) is, as SciPy's
    results are (the Rust fast path allocates them so)."""
    fortran = (
        like is not None
        and res.ndim > 1
        and like.ndim > 1
        and like.flags.f_contiguous
        and not like.flags.c_contiguous
    )
    if fortran:
        res = np.asfortranarray(res, dtype=result_dtype)
    elif res.dtype != result_dtype:
        res = res.astype(result_dtype)
    return res[()] if scalar else res


# --------------------------------------------------------------------------- logsumexp


def logsumexp(
    a: Any,
    axis: Any = None,
    b: Any = None,
    keepdims: bool = False,
    return_sign: bool = False,
    *,
    where: Any = None,
) -> Any:
    r"""Compute ``log(sum(b * exp(a)))`` accurately along the given axes.

    A drop-in replacement for :func:`scipy.special.logsumexp` (same signature, plus ``where``).

    Parameters
    ----------
    a : array_like
        Input array: real numbers (float32, float64; float16 and bfloat16 are computed in
        float32; integers, booleans and lists become float64). Complex input raises
        ``TypeError``.
    axis : None or int or tuple of ints, optional
        Axes to reduce over; ``None`` (the default, as in SciPy) reduces over all axes.
    b : array_like, optional
        Weights broadcast together with ``a``; may be negative. ``b == 0`` removes the entry
        even where ``a`` is ``inf`` or NaN.
    keepdims : bool, optional
        Keep the reduced axes with length one.
    return_sign : bool, optional
        Also return the sign of the sum; otherwise a negative sum gives NaN.
    where : array_like of bool, optional
        Mask broadcastable to ``a``; entries where it is ``False`` are left out.

    Returns
    -------
    res : ndarray or scalar
        ``log|sum(b * exp(a))|``; a NumPy scalar for a 0-d result. New arrays are
        Fortran-ordered for a Fortran-ordered ``a``, else C-ordered, as SciPy's.
    sgn : ndarray or scalar
        The sign of the sum (``+1``, ``-1``, ``0`` for an empty or zero sum, NaN for NaN);
        only when ``return_sign`` is true.

    Raises
    ------
    TypeError
        Non-numeric or complex ``a`` or ``b``, non-boolean ``where``, a bad ``axis`` type.
    ValueError
        ``axis`` out of range or repeated, shapes that do not broadcast.

    Notes
    -----
    Computed as ``m + log1p(s)`` with ``m`` the maximum and ``s`` the compensated sum of the
    other terms (Blanchard, Higham & Higham, "Accurately computing the log-sum-exp and softmax
    functions", IMA J. Numer. Anal. 41(4), 2021). Maximum error: 1 ULP for float32, 2 ULP for
    float64 (measured against mpmath; see README). When the result is much smaller than the
    largest input (cancellation, condition number ``κ = |max(a)| / |result| > 2``) the float64
    error is at most about ``κ`` ULP, the conditioning of the problem itself. A NaN makes its own
    result NaN; any ``+inf`` gives ``+inf``; an empty or all ``-inf`` reduction gives ``-inf``.

    Examples
    --------
    >>> import numpy as np
    >>> from smoothmax import logsumexp
    >>> float(logsumexp([0.0, -40.0]))  # exp(-40) survives, unlike log(sum(exp))
    4.248354255291589e-18
    >>> logsumexp([[1.0, 2.0], [3.0, 4.0]], axis=1)
    array([2.31326169, 4.31326169])
    >>> logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)
    (np.float64(1.5413248546129181), np.float64(-1.0))
    """
    if axis is None and b is None and where is None and not return_sign and not keepdims:
        # SciPy's default, all elements at once: one row of the flattened (contiguous) data.
        if _one_row(a, None):
            res = _core.logsumexp_axis(a.reshape(-1), 0)
            if res is not None:
                return res[()]
    if type(axis) is int and b is None and where is None and not return_sign:
        # The common call, handled in Rust end to end (None: needs the general path below).
        res = _core.logsumexp_axis(a, axis)
        if res is not None:
            if keepdims:
                shape = a.shape
                k = axis % len(shape)
                return res.reshape((*shape[:k], 1, *shape[k + 1 :]))
            return res[()] if res.ndim == 0 else res
    arr = _as_array(a, "a")
    compute, result = _dtypes(arr.dtype, "a")
    weights = None
    if b is not None:
        warr = _as_array(b, "b")
        if _is_python_scalar(b):
            # A Python number is "weak" (NEP 50), as in NumPy and SciPy: it keeps a's dtype.
            _dtypes(warr.dtype, "b")
        else:
            b_compute, b_result = _dtypes(warr.dtype, "b")
            compute = np.result_type(compute, b_compute)
            result = _promote_result(result, b_result)
        try:
            arr, warr = np.broadcast_arrays(arr, warr)
        except ValueError:
            raise ValueError(
                f"b with shape {np.shape(warr)} cannot be broadcast with a of shape {arr.shape}"
            ) from None
        weights = warr
    scalar_input = arr.ndim == 0
    if scalar_input:
        arr = arr.reshape(1)
        weights = None if weights is None else weights.reshape(1)
        if axis == () or (_is_int(axis) and operator.index(axis) in (0, -1)):
            axis = None
    axes = _normalize_axis(axis, arr.ndim)
    mask = _check_where(where, arr.shape)

    drop = None if mask is None else ~mask
    if weights is not None:
        zero_w = weights == 0
        drop = zero_w if drop is None else (drop | zero_w)
    x = _aligned(np.asarray(arr, dtype=compute))
    if drop is not None and drop.any():
        x = np.where(drop, np.asarray(-np.inf, dtype=compute), x)

    out_shape = _reduced_shape(arr.shape, axes, keepdims)
    x3, (outer, _, inner) = _rows(x, axes)
    res = np.empty((outer, inner), dtype=compute)
    if weights is None and not return_sign:
        _core.logsumexp_3d(x3, res)
        res = res.reshape(out_shape)
        return _finish(res, result, scalar_input or res.ndim == 0, like=arr)

    w = _aligned(
        np.asarray(weights if weights is not None else np.ones(1, dtype=compute), dtype=compute)
    )
    w3, _ = _rows(np.broadcast_to(w, x.shape), axes)
    sgn = np.empty((outer, inner), dtype=compute)
    _core.logsumexp_weighted_3d(x3, w3, res, sgn)
    res, sgn = res.reshape(out_shape), sgn.reshape(out_shape)
    scalar = scalar_input or res.ndim == 0
    if not return_sign:
        res = np.where(sgn < 0, np.asarray(np.nan, dtype=compute), res)
        return _finish(res, result, scalar, like=arr)
    return _finish(res, result, scalar, like=arr), _finish(sgn, result, scalar, like=arr)


def _is_int(x: Any) -> bool:
    try:
        operator.index(x)
    except TypeError:
        return False
    return True


def _is_python_scalar(x: Any) -> bool:
    return isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)


def _promote_result(r1: np.dtype[Any], r2: np.dtype[Any]) -> np.dtype[Any]:
    try:
        return np.result_type(r1, r2)
    except TypeError:  # e.g. bfloat16 with float16: no common half type
        return _F32


# --------------------------------------------------------------------------- softmax


def _normalize(
    x: Any, axis: Any, temperature: Any, where: Any, out: Any, *, log: bool, name: str
) -> Any:
    plain = where is None and type(temperature) in (int, float) and temperature == 1
    if type(axis) is int and plain:
        # The common call, handled in Rust end to end (None: needs the general path below).
        res = _core.softmax_axis(x, axis, log, out)
        if res is not None:
            return res
    elif axis is None and plain and _one_row(x, out):
        # SciPy's default, all elements at once: one row of the flattened (contiguous) data.
        res = _core.softmax_axis(x.reshape(-1), 0, log, None if out is None else out.reshape(-1))
        if res is not None:
            return out if out is not None else res.reshape(x.shape)
    arr = _as_array(x, "x")
    compute, result = _dtypes(arr.dtype, "x")
    t = _check_temperature(temperature)
    scalar_input = arr.ndim == 0 and out is None
    work = arr.reshape(1) if arr.ndim == 0 else arr
    if arr.ndim == 0 and (axis == () or (_is_int(axis) and operator.index(axis) in (0, -1))):
        axis = None
    axes = _normalize_axis(axis, work.ndim)
    mask = _check_where(where, work.shape)
    _check_out(out, arr.shape, result, name)
    if arr.size == 0:  # nothing to normalise
        return out if out is not None else np.empty(arr.shape, dtype=result)

    src = _aligned(np.asarray(work, dtype=compute))
    if mask is not None:
        src = np.where(mask, src, np.asarray(-np.inf, dtype=compute))
    src3, dims = _rows(src, axes)

    # Write straight into `out` when it has the compute dtype and a (outer, n, inner) view.
    direct = None
    if out is not None and out.dtype == compute and out.flags.aligned:
        o = out.reshape(1) if out.ndim == 0 else out
        moved = (
            o
            if len(axes) <= 1 or axes == tuple(range(axes[0], axes[-1] + 1))
            else (np.moveaxis(o, axes, tuple(range(o.ndim - len(axes), o.ndim))))
        )
        direct = _reshape_view(moved, dims)
    if direct is not None:
        if np.may_share_memory(src3, direct):
            if _same_layout(src3, direct):
                _core.softmax_3d(None, direct, t, log)
                return out
            src3 = src3.copy()
        _core.softmax_3d(src3, direct, t, log)
        return out

    res3 = np.empty(dims, dtype=compute)
    _core.softmax_3d(src3, res3, t, log)
    if len(axes) > 1 and axes != tuple(range(axes[0], axes[-1] + 1)):
        moved_shape = tuple(s for k, s in enumerate(work.shape) if k not in axes) + tuple(
            work.shape[k] for k in axes
        )
        res = np.moveaxis(
            res3.reshape(moved_shape), tuple(range(work.ndim - len(axes), work.ndim)), axes
        )
    else:
        res = res3.reshape(work.shape)
    if out is not None:
        out[...] = res.reshape(out.shape).astype(result, copy=False)
        return out
    return _finish(res.reshape(arr.shape), result, scalar_input, like=arr)


def _same_layout(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.strides == b.strides
        and a.shape == b.shape
    )


def _check_out(out: Any, shape: tuple[int, ...], result: np.dtype[Any], name: str) -> None:
    if out is None:
        return
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, but {name} of x has shape {shape}")
    if out.dtype != result:
        raise TypeError(f"out has dtype {out.dtype}, but {name} of x has dtype {result}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")


def softmax(
    x: Any, axis: Any = None, *, temperature: float = 1.0, where: Any = None, out: Any = None
) -> Any:
    r"""Softmax ``exp(x / T) / sum(exp(x / T))`` along the given axes.

    A drop-in replacement for :func:`scipy.special.softmax`, with a fused ``temperature``, a
    ``where`` mask and ``out=``.

    Parameters
    ----------
    x : array_like
        Input array (dtype policy as :func:`logsumexp`).
    axis : None or int or tuple of ints, optional
        Axes normalised together; ``None`` (the default, as in SciPy) uses the whole array.
    temperature : float, optional
        ``T > 0``: the result equals ``softmax(x / T)`` with the division carried out exactly
        (no rounded temporary is formed).
    where : array_like of bool, optional
        Mask broadcastable to ``x``; masked-out entries are left out and get 0.
    out : ndarray, optional
        Array of the result's shape and dtype to write into; may be ``x`` itself.

    Returns
    -------
    ndarray or scalar
        Same shape as ``x``, summing to 1 along ``axis``; ``out`` when given. A new array
        is Fortran-ordered for a Fortran-ordered ``x``, else C-ordered, as SciPy's.

    Raises
    ------
    TypeError
        Non-numeric or complex ``x``, ``out`` of the wrong dtype, non-boolean ``where``.
    ValueError
        ``temperature <= 0``, bad ``axis``, ``out`` of the wrong shape or read-only.

    Notes
    -----
    Every output is within 4 ULP of the exactly rounded value (measured maxima: 2.7 ULP for
    float32, 2.4 for float64): the argument reduction of ``exp`` is exact, sums are exact in
    float64 (double-double for float64 data), and each output is rounded once after the
    division, from the exponential rounded once to the dtype. Rows with ``+inf``
    entries share the mass equally among them; rows without finite mass (all ``-inf`` or
    fully masked) give zeros; a NaN makes its row NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from smoothmax import softmax
    >>> softmax(np.array([1.0, 2.0, 3.0]))
    array([0.09003057, 0.24472847, 0.66524096])
    >>> softmax(np.array([0.0, np.inf, np.inf]))
    array([0. , 0.5, 0.5])
    """
    return _normalize(x, axis, temperature, where, out, log=False, name="softmax")


def log_softmax(
    x: Any, axis: Any = None, *, temperature: float = 1.0, where: Any = None, out: Any = None
) -> Any:
    r"""Logarithm of :func:`softmax`, ``x / T - logsumexp(x / T)``, accurate near 0.

    A drop-in replacement for :func:`scipy.special.log_softmax`, with ``temperature``,
    ``where`` and ``out=`` as in :func:`softmax`.

    Parameters
    ----------
    x : array_like
        Input array (dtype policy as :func:`logsumexp`).
    axis : None or int or tuple of ints, optional
        Axes normalised together; ``None`` (the default) uses the whole array.
    temperature : float, optional
        ``T > 0``; equals ``log_softmax(x / T)`` with the division carried out exactly.
    where : array_like of bool, optional
        Mask broadcastable to ``x``; masked-out entries are left out and get ``-inf``.
    out : ndarray, optional
        Array of the result's shape and dtype to write into; may be ``x`` itself.

    Returns
    -------
    ndarray or scalar
        Same shape as ``x``; ``out`` when given. A new array is Fortran-ordered for a
        Fortran-ordered ``x``, else C-ordered, as SciPy's.

    Raises
    ------
    TypeError
        As :func:`softmax`.
    ValueError
        As :func:`softmax`.

    Notes
    -----
    Computed as ``(x_i - m) - log1p(sum_{j != argmax} exp(x_j - m))`` (Blanchard, Higham &
    Higham), so outputs near 0 keep their relative accuracy: within 4 ULP (float32 and
    float64; float32 rows of at least 256 entries whose maximum is at least ``2 log n`` or at
    most ``-3 log n`` sum their terms in float32 pairs, other float32 rows exactly, within 2
    ULP). ``+inf`` entries get ``-log(count)``; rows without finite mass give ``-inf``.

    Examples
    --------
    >>> import numpy as np
    >>> from smoothmax import log_softmax
    >>> log_softmax(np.array([0.0, -40.0]))  # the first entry is -4.25e-18, not 0
    array([-4.24835426e-18, -4.00000000e+01])
    """
    return _normalize(x, axis, temperature, where, out, log=True, name="log_softmax")

"""The SciPy-compatible contract on a generated corpus, with ``scipy.special`` as the oracle.

A bottleneck-style generator yields arrays of every supported dtype (and Python lists), many
shapes (0-d, empty, 1-3-D) and layouts (C, Fortran, strided, reversed, transposed, byte-swapped);
each is reduced/normalised over every axis choice (None, ints, negative ints, tuples incl. ``()``
and non-adjacent axes) with and without ``keepdims``, and compared with SciPy on the float64
copy of the data: values to a few eps of the result dtype, dtype and shape exactly.

Deliberate differences from SciPy are excluded here and tested directly in
``test_special_values.py``: rows with ``+inf`` or without finite mass (SciPy gives NaN), softmax
over an empty axis (SciPy raises), float16/bfloat16 (SciPy computes float16 in float16 and
promotes bfloat16 to float64; we compute in float32 and return the input dtype).
"""

from __future__ import annotations

import itertools

import ml_dtypes
import numpy as np
import pytest
import scipy.special as sp

import smoothmax

BF16 = np.dtype(ml_dtypes.bfloat16)
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
HALVES = (F16, BF16)

DTYPES = [
    "float32",
    "float64",
    "float16",
    "bfloat16",
    "int64",
    "int8",
    "uint16",
    "bool",
    "longdouble",
    "list",
]
SHAPES = [(), (0,), (1,), (7,), (2, 0), (0, 3), (3, 4), (3, 4, 5), (2, 1, 3, 2)]
LAYOUTS = ["C", "F", "strided", "reversed", "transposed", "byteswapped"]

FUNCS = ["logsumexp", "softmax", "log_softmax"]
OURS = {
    "logsumexp": smoothmax.logsumexp,
    "softmax": smoothmax.softmax,
    "log_softmax": smoothmax.log_softmax,
}
SCIPY = {"logsumexp": sp.logsumexp, "softmax": sp.softmax, "log_softmax": sp.log_softmax}


def _dtype(name: str) -> np.dtype:
    return BF16 if name == "bfloat16" else np.dtype(name)


def _base_values(shape, dtype_name: str, rng) -> np.ndarray:
    """float64 values exactly representable in the target dtype."""
    if dtype_name == "bool":
        return rng.random(shape) < 0.5
    if dtype_name in ("int64", "int8", "uint16"):
        lo = 0 if dtype_name == "uint16" else -20
        return rng.integers(lo, 20, size=shape)
    v = rng.standard_normal(shape) * 4
    dt = F64 if dtype_name in ("list", "longdouble") else _dtype(dtype_name)
    return v.astype(dt).astype(np.float64)


def make_arrays(shape, dtype_name: str, rng):
    """Yield ``(label, input, float64 copy of the values)`` for every layout of one array."""
    if dtype_name == "list":
        v = _base_values(shape, "float64", rng)
        lst = v.tolist()
        if np.shape(lst) == tuple(shape):  # (0, 3) has no list form
            yield "list", lst, np.asarray(lst, dtype=np.float64)
        return
    dt = _dtype(dtype_name)
    ndim = len(shape)
    for layout in LAYOUTS:
        if ndim == 0 and layout != "C":
            continue
        if layout == "transposed" and ndim < 2:
            continue
        if layout == "byteswapped" and (dt.itemsize == 1 or dt == BF16 or dt.kind == "b"):
            continue
        if layout == "byteswapped" and dt == np.dtype(np.longdouble):
            continue
        if layout == "byteswapped" and dt == F16:
            continue  # known bug: test_byteswapped_float16
        if layout == "strided":
            big = _base_values((shape[0] * 2, *shape[1:]), dtype_name, rng).astype(dt)
            a = big[::2]
            if ndim >= 2:
                big = _base_values((*shape[:-1], shape[-1] * 3), dtype_name, rng).astype(dt)
                a = big[..., ::3]
        elif layout == "transposed":
            a = _base_values(shape[::-1], dtype_name, rng).astype(dt).T
        else:
            a = _base_values(shape, dtype_name, rng).astype(dt)
            if layout == "F":
                a = np.asfortranarray(a)
            elif layout == "reversed":
                a = a[(slice(None, None, -1),) * ndim]
            elif layout == "byteswapped":
                a = a.astype(a.dtype.newbyteorder(">" if a.dtype.byteorder != ">" else "<"))
        assert a.shape == shape
        yield layout, a, np.asarray(a).astype(np.float64)


def axis_choices(ndim: int):
    """None, every int and negative int, every tuple (incl. () and reordered ones)."""
    yield None
    yield from range(ndim)
    yield from range(-ndim, 0)
    for k in range(0, ndim + 1):
        yield from itertools.combinations(range(ndim), k)
    if ndim >= 2:
        yield (ndim - 1, 0)  # reordered
        yield (-1, 0)
    if ndim == 0:
        yield 0
        yield -1


def result_dtype(dtype_name: str) -> np.dtype:
    if dtype_name in ("float32", "float16", "bfloat16"):
        return _dtype(dtype_name)
    return F64


def _tol(dt: np.dtype, v64: np.ndarray) -> tuple[float, float]:
    eps = float(ml_dtypes.finfo(dt).eps) if dt == BF16 else float(np.finfo(dt).eps)
    scale = 1.0 + (float(np.max(np.abs(v64))) if v64.size else 0.0)
    # SciPy's own float64 error grows like eps * |x - lse|: part of the tolerance.
    rtol = 4 * eps + 4 * 2.0**-52 * scale
    atol = 4 * eps * scale
    return rtol, atol


def _check_type(got, expected_dtype: np.dtype, expected_shape):
    got_arr = np.asarray(got)
    assert got_arr.dtype == expected_dtype, (got_arr.dtype, expected_dtype)
    assert got_arr.dtype.isnative
    assert got_arr.shape == tuple(expected_shape)
    if got_arr.ndim == 0:
        assert isinstance(got, np.generic), type(got)
    else:
        assert isinstance(got, np.ndarray), type(got)


def _compare(name, dtype_name, got, x64, call_kwargs, label):
    rdt = result_dtype(dtype_name)
    cdt = F32 if rdt in HALVES else rdt
    if name != "logsumexp" and x64.size == 0:
        assert np.asarray(got).shape == x64.shape
        assert np.asarray(got).dtype == rdt
        return
    if x64.size == 0:
        # NumPy's semantics (SciPy mishandles empty input with tuple axes): -inf for an empty
        # reduction, nothing for axis=().
        expected = np.max(x64, **call_kwargs, initial=-np.inf)
    else:
        expected = SCIPY[name](x64, **call_kwargs)
    if x64.ndim == 0 and name == "logsumexp":
        # 0-d input: shapes are tested in test_zero_d_* (SciPy returns shape (1,) for some).
        expected = np.asarray(expected).reshape(np.shape(got))
    _check_type(got, rdt, np.shape(expected))
    if rdt in HALVES:
        return  # values: test_half_dtypes_computed_in_float32
    rtol, atol = _tol(cdt, x64)
    np.testing.assert_allclose(
        np.asarray(got, dtype=np.float64),
        expected,
        rtol=rtol,
        atol=atol,
        err_msg=f"{name} {label} {call_kwargs}",
    )


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("name", FUNCS)
def test_corpus_matches_scipy(name, dtype_name, shape, rng):
    for label, a, x64 in make_arrays(shape, dtype_name, rng):
        for axis in axis_choices(len(shape)):
            if name == "logsumexp":
                for keepdims in (False, True):
                    got = smoothmax.logsumexp(a, axis=axis, keepdims=keepdims)
                    _compare(
                        name, dtype_name, got, x64, {"axis": axis, "keepdims": keepdims}, label
                    )
            else:
                got = OURS[name](a, axis=axis)
                _compare(name, dtype_name, got, x64, {"axis": axis}, label)


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", FUNCS)
def test_half_dtypes_computed_in_float32(name, dtype_name, rng):
    """float16/bfloat16: computed in float32 and rounded once to the input dtype."""
    dt = _dtype(dtype_name)
    for shape in [(), (5,), (3, 4), (2, 3, 4)]:
        x = _base_values(shape, dtype_name, rng).astype(dt)
        for axis in axis_choices(x.ndim):
            got = OURS[name](x, axis=axis)
            ref = OURS[name](x.astype(np.float32), axis=axis)
            assert np.asarray(got).dtype == dt
            np.testing.assert_array_equal(np.asarray(got), np.asarray(ref).astype(dt))


@pytest.mark.parametrize("name", FUNCS)
def test_list_and_scalar_inputs(name):
    assert np.asarray(OURS[name]([1, 2, 3])).dtype == F64
    assert np.asarray(OURS[name]([[True, False]], axis=1)).dtype == F64
    got = OURS[name](2.5)
    assert isinstance(got, np.float64)
    assert float(got) == {"logsumexp": 2.5, "softmax": 1.0, "log_softmax": 0.0}[name]
    assert isinstance(OURS[name](np.float32(2.5)), np.float32)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("axis", [None, 0, -1, (0,)])
def test_zero_d_axis_variants(name, axis):
    expected = {"logsumexp": 3.0, "softmax": 1.0, "log_softmax": 0.0}[name]
    got = OURS[name](np.float64(3.0), axis=axis)
    assert isinstance(got, np.float64), repr(got)
    assert float(got) == expected


@pytest.mark.parametrize(
    "name",
    ["logsumexp", "softmax", "log_softmax"],
)
def test_zero_d_empty_axis_tuple(name):
    """``axis=()`` on a 0-d input reduces nothing: still a NumPy scalar."""
    expected = {"logsumexp": 3.0, "softmax": 1.0, "log_softmax": 0.0}[name]
    got = OURS[name](np.float64(3.0), axis=())
    assert isinstance(got, np.float64), repr(got)
    assert float(got) == expected


@pytest.mark.parametrize("name", FUNCS)
def test_byteswapped_float16(name):
    """Byte-swapped float16 works like native float16 (byte-swapped f4/f8 already do)."""
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]], dtype=np.float16)
    expected = OURS[name](x, axis=1)
    got = OURS[name](x.astype(">f2"), axis=1)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, expected)


def test_longdouble_computed_as_float64():
    x = (np.arange(12, dtype=np.longdouble) / 7).reshape(3, 4)
    for name in FUNCS:
        got = OURS[name](x, axis=1)
        assert got.dtype == F64
        np.testing.assert_array_equal(got, OURS[name](x.astype(np.float64), axis=1))


def test_keepdims_shapes():
    x = np.zeros((2, 3, 4))
    assert smoothmax.logsumexp(x, axis=(0, 2), keepdims=True).shape == (1, 3, 1)
    assert smoothmax.logsumexp(x, axis=1, keepdims=True).shape == (2, 1, 4)
    assert smoothmax.logsumexp(x, axis=None, keepdims=True).shape == (1, 1, 1)
    assert smoothmax.logsumexp(x, axis=(), keepdims=True).shape == (2, 3, 4)
    assert smoothmax.logsumexp(x, axis=(0, 2)).shape == (3,)


# --------------------------------------------------------------------------- b / return_sign


B_SHAPES = ["same", "row", "column", "scalar", "list"]


def _weights(kind: str, shape, rng, *, signed: bool, zeros: bool):
    full = rng.uniform(-2 if signed else 0.1, 3, size=shape)
    if zeros:
        full[rng.random(shape) < 0.2] = 0.0
    if kind == "same":
        return full
    if kind == "row":
        return full[(0,) * (len(shape) - 1)]
    if kind == "column":
        return full[..., :1]
    if kind == "scalar":
        return float(full.flat[0]) if full.flat[0] != 0 else 2.0
    return full.tolist()


@pytest.mark.parametrize(
    ("dtype_name", "bkind"),
    [(d, k) for d in ("float32", "float64", "int64") for k in B_SHAPES],
)
@pytest.mark.parametrize("signed", [False, True])
def test_weights_match_scipy(dtype_name, bkind, signed, rng):
    for shape in [(6,), (3, 5), (2, 3, 4)]:
        for label, a, x64 in make_arrays(shape, dtype_name, rng):
            b = _weights(bkind, shape, rng, signed=signed, zeros=True)
            b_arr = np.asarray(b)
            if b_arr.dtype == F64 and dtype_name == "float32" and label == "C":
                b = b_arr.astype(np.float32)  # float32 a with float32 b stays float32
            for axis in axis_choices(len(shape)):
                for keepdims in (False, True):
                    kw = {"axis": axis, "keepdims": keepdims}
                    exp_r, exp_s = sp.logsumexp(
                        x64, b=np.asarray(b, np.float64), **kw, return_sign=True
                    )
                    got_r, got_s = smoothmax.logsumexp(a, b=b, return_sign=True, **kw)
                    # NumPy 2 promotion as SciPy: Python scalars are weak
                    rdt = np.result_type(
                        result_dtype(dtype_name), b if isinstance(b, float) else np.asarray(b).dtype
                    )
                    rdt = rdt if rdt in (F32, F64) else F64
                    _check_type(got_r, rdt, np.shape(exp_r))
                    _check_type(got_s, rdt, np.shape(exp_s))
                    rtol, atol = _tol(rdt, x64)
                    # Cancellation with signed weights: compare where it is well conditioned.
                    np.testing.assert_array_equal(got_s, exp_s, err_msg=f"{label} {kw}")
                    exp_abs = sp.logsumexp(x64, b=np.abs(np.asarray(b, np.float64)), **kw)
                    with np.errstate(invalid="ignore", over="ignore"):
                        cond = np.exp(np.asarray(exp_abs) - np.asarray(exp_r))
                        ok = np.isfinite(cond) & (cond < 1e3)
                    np.testing.assert_allclose(
                        np.asarray(got_r, np.float64)[ok],
                        np.asarray(exp_r)[ok],
                        rtol=rtol * 1e3,
                        atol=atol * 1e3,
                        err_msg=f"{label} {kw}",
                    )
                    np.testing.assert_array_equal(
                        np.isneginf(got_r), np.isneginf(exp_r), err_msg=f"{label} {kw}"
                    )
                    # Without return_sign a negative sum is NaN, exactly as SciPy.
                    got = smoothmax.logsumexp(a, b=b, **kw)
                    exp = sp.logsumexp(x64, b=np.asarray(b, np.float64), **kw)
                    np.testing.assert_array_equal(np.isnan(got), np.isnan(exp))


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_weights_special_values_match_scipy(dtype):
    cases = [
        ([1.0, np.nan], [1, 0]),
        ([np.inf, 1.0], [0, 1]),
        ([np.nan, 1.0], [0, 1]),
        ([-np.inf, 1.0], [0, 1]),
        ([np.inf, 1.0], [-1, 1]),
        ([np.inf, np.inf], [1, 1]),
        ([np.inf, np.inf], [1, -1]),
        ([1.0, 2.0], [0, 0]),
        ([1.0, 1.0], [1, -1]),
        ([np.inf], [-1]),
        ([np.inf, -np.inf], [1, 1]),
        ([1.0, np.nan], [1, 1]),
        ([np.nan], [-1]),
        ([-np.inf, -np.inf], [1, -1]),
        ([0.0, 0.0, 0.0], [1, 1, -2]),
    ]
    for a, b in cases:
        x = np.array(a, dtype=dtype)
        got = smoothmax.logsumexp(x, b=np.array(b, dtype=dtype), return_sign=True)
        exp = sp.logsumexp(x, b=np.array(b, dtype=dtype), return_sign=True)
        np.testing.assert_array_equal(got, exp, err_msg=f"a={a} b={b}")
        got1 = smoothmax.logsumexp(x, b=np.array(b, dtype=dtype))
        exp1 = sp.logsumexp(x, b=np.array(b, dtype=dtype))
        np.testing.assert_array_equal(got1, exp1, err_msg=f"a={a} b={b}")


def test_python_scalar_weight_keeps_float32():
    a = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    assert smoothmax.logsumexp(a, b=2.0).dtype == sp.logsumexp(a, b=2.0).dtype == np.float32


@pytest.mark.parametrize("axis", [None, -1, 1, (0, 1)])
def test_weights_of_higher_rank_broadcast_the_input(axis):
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([[1.0, 1.0, 1.0], [2.0, 0.5, 1.0]])
    expected = sp.logsumexp(a, b=b, axis=axis)
    got = smoothmax.logsumexp(a, b=b, axis=axis)
    assert np.shape(got) == np.shape(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-14)


def test_weight_zero_removes_inf_and_nan():
    """``b == 0`` drops the entry even when ``a`` is inf or NaN (documented; SciPy 1.17 gives
    NaN for ``a=[inf, nan], b=[1, 0]``, which we deliberately do not follow)."""
    assert smoothmax.logsumexp([np.inf, np.nan], b=[1, 0]) == np.inf
    assert smoothmax.logsumexp([1.0, np.nan, np.inf], b=[1, 0, 0]) == 1.0
    r, s = smoothmax.logsumexp([np.nan, -np.inf], b=[0, 1], return_sign=True)
    assert r == -np.inf and s == 0
    np.testing.assert_array_equal(
        smoothmax.logsumexp([[np.nan, 0.0], [0.0, 0.0]], b=[[0, 1], [1, 1]], axis=1),
        [0.0, np.log(2.0)],
    )


def test_weights_sign_of_empty_and_zero_sums():
    r, s = smoothmax.logsumexp(np.zeros((2, 0)), axis=1, b=np.ones((2, 0)), return_sign=True)
    np.testing.assert_array_equal(r, [-np.inf, -np.inf])
    np.testing.assert_array_equal(s, [0.0, 0.0])  # documented (SciPy returns -1 here)
    r, s = smoothmax.logsumexp([3.0, 3.0], b=[2.0, -2.0], return_sign=True)
    assert r == -np.inf and s == 0


# --------------------------------------------------------------------------- where


def _masks(shape, rng):
    full = rng.random(shape) < 0.7
    yield "full", full
    yield "row", full[(0,) * (len(shape) - 1)]
    yield "column", full[..., :1]
    yield "all-true", np.True_
    yield "list", full.tolist()


@pytest.mark.parametrize("dtype_name", ["float32", "float64", "int64", "float16"])
@pytest.mark.parametrize("name", FUNCS)
def test_where_matches_scipy_on_masked_input(name, dtype_name, rng):
    """``where`` equals SciPy on the data with masked entries set to -inf; rows with nothing
    left give -inf (logsumexp, log_softmax) or 0 (softmax) instead of SciPy's NaN."""
    for shape in [(6,), (3, 5), (2, 3, 4)]:
        for label, a, x64 in make_arrays(shape, dtype_name, rng):
            for mlabel, mask in _masks(shape, rng):
                full_mask = np.broadcast_to(np.asarray(mask), shape)
                xm = np.where(full_mask, x64, -np.inf)
                for axis in axis_choices(len(shape)):
                    kw = {"axis": axis}
                    got = OURS[name](a, where=mask, **kw)
                    with np.errstate(invalid="ignore", divide="ignore"):
                        exp = np.asarray(SCIPY[name](xm, **kw), dtype=np.float64)
                    # SciPy's NaN only comes from rows with nothing left (data are finite).
                    fill = 0.0 if name == "softmax" else -np.inf
                    exp = np.where(np.isnan(exp), fill, exp)
                    rdt = result_dtype(dtype_name)
                    _check_type(got, rdt, exp.shape)
                    if rdt in HALVES:
                        ref = OURS[name](np.asarray(a).astype(np.float32), where=mask, **kw)
                        np.testing.assert_array_equal(np.asarray(got), np.asarray(ref).astype(rdt))
                        continue
                    rtol, atol = _tol(rdt, x64)
                    np.testing.assert_allclose(
                        np.asarray(got, np.float64),
                        exp,
                        rtol=rtol,
                        atol=atol,
                        err_msg=f"{label} {mlabel} {kw}",
                    )
                    if name != "logsumexp":
                        masked_out = ~full_mask
                        assert np.all(np.asarray(got)[masked_out] == fill)


def test_where_with_weights_matches_scipy(rng):
    x = rng.standard_normal((4, 6))
    b = rng.uniform(-1, 2, size=(4, 6))
    mask = rng.random((4, 6)) < 0.6
    for axis in (None, 0, 1, (0, 1)):
        got = smoothmax.logsumexp(x, axis=axis, b=b, where=mask, return_sign=True)
        exp = sp.logsumexp(np.where(mask, x, -np.inf), axis=axis, b=b, return_sign=True)
        np.testing.assert_array_equal(got[1], exp[1])
        np.testing.assert_allclose(got[0], exp[0], rtol=1e-12, atol=1e-12)


def test_where_masks_nan_and_inf():
    x = np.array([[1.0, np.nan, 2.0], [np.inf, 1.0, 2.0]])
    mask = np.array([[True, False, True], [False, True, True]])
    expected = sp.softmax(np.array([1.0, 2.0]))
    np.testing.assert_allclose(smoothmax.softmax(x, axis=1, where=mask)[:, [0, 2]][0], expected)
    np.testing.assert_allclose(smoothmax.softmax(x, axis=1, where=mask)[1, 1:], expected)
    np.testing.assert_allclose(
        smoothmax.logsumexp(x, axis=1, where=mask), [sp.logsumexp([1.0, 2.0])] * 2
    )


# --------------------------------------------------------------------------- temperature / out


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_temperature_matches_scipy_on_scaled_input(name, dtype, rng):
    x = rng.standard_normal((5, 7)).astype(dtype)
    for t in (0.25, 0.5, 2.0, 4.0):  # powers of two: x / T is exact
        for axis in (None, 0, 1):
            got = OURS[name](x, axis=axis, temperature=t)
            exp = SCIPY[name](x.astype(np.float64) / t, axis=axis)
            assert got.dtype == dtype
            eps = float(np.finfo(dtype).eps)
            np.testing.assert_allclose(got, exp, rtol=8 * eps, atol=8 * eps * 10)
    # temperature=1 is the default, bit for bit
    np.testing.assert_array_equal(OURS[name](x, axis=1, temperature=1.0), OURS[name](x, axis=1))
    np.testing.assert_array_equal(OURS[name](x, axis=1, temperature=1), OURS[name](x, axis=1))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype_name", ["float32", "float64", "float16", "int64"])
def test_out_argument(name, dtype_name, rng):
    for shape in [(), (5,), (3, 4), (2, 3, 4)]:
        x = _base_values(shape, dtype_name, rng).astype(_dtype(dtype_name))
        rdt = result_dtype(dtype_name)
        for axis in axis_choices(len(shape)):
            expected = OURS[name](x, axis=axis)
            for order in ("C", "F"):
                out = np.empty(shape, dtype=rdt, order=order)
                res = OURS[name](x, axis=axis, out=out)
                assert res is out
                np.testing.assert_array_equal(out, expected)
            if len(shape) >= 2:  # a non-contiguous out
                big = np.full((*shape[:-1], shape[-1] * 2), 7.0, dtype=rdt)
                out = big[..., ::2]
                res = OURS[name](x, axis=axis, out=out)
                assert res is out
                np.testing.assert_array_equal(out, expected)
                np.testing.assert_array_equal(big[..., 1::2], 7.0)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_out_in_place(name, dtype, rng):
    for shape, axis in [
        ((7,), None),
        ((3, 4), 1),
        ((3, 4), 0),
        ((2, 3, 4), (0, 2)),
        ((2, 3, 4), None),
        ((4, 5), (1, 0)),
    ]:
        x = (rng.standard_normal(shape) * 3).astype(dtype)
        expected = OURS[name](x, axis=axis)
        for view in (lambda a: a, lambda a: a.T, lambda a: a[::-1]):
            buf = x.copy()
            v = view(buf)
            exp_v = OURS[name](view(x.copy()), axis=axis)
            res = OURS[name](v, axis=axis, out=v)
            assert res is v
            np.testing.assert_array_equal(v, exp_v)
        del expected
    # overlapping but not identical views: must behave as if the input were copied first
    x = (rng.standard_normal(10) * 3).astype(dtype)
    buf = x.copy()
    expected = OURS[name](x[1:9])
    res = OURS[name](buf[1:9], out=buf[0:8])
    np.testing.assert_array_equal(res, expected)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_out_with_where_and_temperature(name, rng):
    x = rng.standard_normal((4, 6))
    mask = rng.random((4, 6)) < 0.5
    out = np.empty_like(x)
    res = OURS[name](x, axis=1, where=mask, temperature=0.7, out=out)
    assert res is out
    np.testing.assert_array_equal(out, OURS[name](x, axis=1, where=mask, temperature=0.7))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "make",
    [
        lambda a: a,
        lambda a: a[::2],
        lambda a: a[:, ::-1],
        lambda a: a.transpose(2, 0, 1),
        lambda a: np.asfortranarray(a),
        lambda a: a[:, :1],
    ],
    ids=["c", "step2", "reversed", "transposed", "fortran", "one"],
)
def test_fast_path_matches_general_path(dtype, make, rng):
    """The Rust fast path (integer axis, no mask) and the general path agree bit for bit."""
    x = make((rng.standard_normal((6, 7, 9)) * 10).astype(dtype))
    everywhere = np.ones(x.shape, dtype=bool)
    for axis in range(-3, 3):
        for name in ("softmax", "log_softmax"):
            fast = OURS[name](x, axis=axis)
            general = OURS[name](x, axis=axis, where=everywhere)
            np.testing.assert_array_equal(fast, general)
        fast = smoothmax.logsumexp(x, axis=axis)
        general = smoothmax.logsumexp(x, axis=axis, where=everywhere)
        np.testing.assert_array_equal(fast, general)
        assert fast.dtype == general.dtype == dtype


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_fast_path(name, dtype, rng):
    """out= through the Rust fast path: a fresh array, F order, the input itself, overlapping
    views (handled by copying), and the errors of a bad out."""
    f = OURS[name]
    x = (rng.standard_normal((5, 33)) * 10).astype(dtype)
    expected = f(x, axis=1)
    out = np.empty_like(x)
    assert f(x, axis=1, out=out) is out
    np.testing.assert_array_equal(out, expected)
    out_f = np.empty_like(x, order="F")
    assert f(x, axis=1, out=out_f) is out_f
    np.testing.assert_array_equal(out_f, expected)
    y = x.copy()
    assert f(y, axis=1, out=y) is y
    np.testing.assert_array_equal(y, expected)
    # Overlapping but not identical: rows shifted by one.
    buf = np.concatenate([x, x[:1]]).astype(dtype)
    src, dst = buf[:-1], buf[1:]
    want = f(src.copy(), axis=1)
    assert f(src, axis=1, out=dst) is dst
    np.testing.assert_array_equal(dst, want)
    ro = np.empty_like(x)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        f(x, axis=1, out=ro)
    with pytest.raises(TypeError, match="dtype"):
        f(x, axis=1, out=np.empty(x.shape, np.float16))
    with pytest.raises(ValueError, match="shape"):
        f(x, axis=1, out=np.empty((5, 32), dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unaligned_arrays(dtype, rng):
    """Arrays whose data pointer is not aligned to the element size (np.frombuffer at an odd
    offset) work like aligned copies, as input, weights and out=."""
    x = (rng.standard_normal((4, 9)) * 10).astype(dtype)
    item = np.dtype(dtype).itemsize

    def unaligned(a: np.ndarray) -> np.ndarray:
        raw = np.zeros(a.size * item + 1, dtype=np.uint8)
        u = np.frombuffer(raw.data, dtype=dtype, count=a.size, offset=1).reshape(a.shape)
        u.flags.writeable = True
        u[...] = a
        assert not u.flags.aligned
        return u

    ux = unaligned(x)
    for name in ("softmax", "log_softmax"):
        np.testing.assert_array_equal(OURS[name](ux, axis=1), OURS[name](x, axis=1))
        out = unaligned(np.zeros_like(x))
        assert OURS[name](x, axis=1, out=out) is out
        np.testing.assert_array_equal(out, OURS[name](x, axis=1))
    np.testing.assert_array_equal(smoothmax.logsumexp(ux, axis=1), smoothmax.logsumexp(x, axis=1))
    b = rng.random((4, 9)).astype(dtype)
    np.testing.assert_array_equal(
        smoothmax.logsumexp(x, axis=1, b=unaligned(b)), smoothmax.logsumexp(x, axis=1, b=b)
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_keepdims_fast_path(dtype, rng):
    """keepdims through the Rust fast path matches the general path and NumPy's shapes."""
    x = (rng.standard_normal((3, 4, 5)) * 10).astype(dtype)
    everywhere = np.ones(x.shape, dtype=bool)
    for axis in range(-3, 3):
        fast = smoothmax.logsumexp(x, axis=axis, keepdims=True)
        general = smoothmax.logsumexp(x, axis=axis, keepdims=True, where=everywhere)
        assert fast.shape == np.max(x, axis=axis, keepdims=True).shape
        np.testing.assert_array_equal(fast, general)
    one = np.array([1.5, -2.0], dtype=dtype)
    assert smoothmax.logsumexp(one, axis=0, keepdims=True).shape == (1,)

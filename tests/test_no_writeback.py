"""Inputs (``a``/``x``, ``b``, ``where``) are never modified and results never alias them."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import smoothmax

FUNCS = {
    "logsumexp": smoothmax.logsumexp,
    "softmax": smoothmax.softmax,
    "log_softmax": smoothmax.log_softmax,
}


def _layouts(rng):
    base = rng.standard_normal((6, 10)) * 5
    base[0, 3] = -np.inf
    base[1, 2] = np.inf
    base[2, 5] = np.nan
    yield "C f64", base.copy()
    yield "C f32", base.astype(np.float32)
    yield "F", np.asfortranarray(base)
    yield "strided", base.copy()[::2, ::3]
    yield "reversed", base.copy()[::-1, ::-1]
    yield "transposed", base.copy().T
    yield "byteswapped", base.astype(">f8")
    yield "f16", base.astype(np.float16)
    yield "bf16", base.astype(ml_dtypes.bfloat16)
    yield "int", np.arange(60).reshape(6, 10) % 7
    yield "longdouble", base.astype(np.longdouble)


def _snapshot(a):
    a = np.asarray(a)
    return a.copy(), a.flags.writeable


def _unchanged(a, snap):
    copy, writeable = snap
    a = np.asarray(a)
    assert a.flags.writeable == writeable
    assert a.dtype == copy.dtype and a.shape == copy.shape
    # bitwise (NaN-safe, -0.0-sensitive) comparison
    assert a.tobytes() == copy.tobytes()


@pytest.mark.parametrize("name", list(FUNCS))
def test_inputs_not_modified(name, rng):
    for label, x in _layouts(rng):
        for axis in (None, 0, 1, -1, (0, 1), ()):
            snap = _snapshot(x)
            res = FUNCS[name](x, axis=axis)
            _unchanged(x, snap)
            assert not np.shares_memory(np.asarray(res), x), f"{label} axis={axis}"


@pytest.mark.parametrize("name", list(FUNCS))
def test_where_not_modified(name, rng):
    x = rng.standard_normal((4, 7))
    for where in (
        rng.random((4, 7)) < 0.5,
        rng.random(7) < 0.5,
        np.asfortranarray(rng.random((4, 7)) < 0.5),
    ):
        xs, ws = _snapshot(x), _snapshot(where)
        FUNCS[name](x, axis=1, where=where)
        _unchanged(x, xs)
        _unchanged(where, ws)


def test_weights_not_modified(rng):
    x = rng.standard_normal((4, 7))
    x[0, 0] = np.inf
    x[1, 1] = np.nan
    for b in (
        rng.uniform(-1, 2, (4, 7)),
        rng.uniform(-1, 2, 7).astype(np.float32),
        np.zeros((4, 7)),
        rng.uniform(-1, 2, (7, 4)).T,
    ):
        xs, bs = _snapshot(x), _snapshot(b)
        mask = rng.random((4, 7)) < 0.7
        ms = _snapshot(mask)
        smoothmax.logsumexp(x, axis=1, b=b)
        smoothmax.logsumexp(x, axis=0, b=b, return_sign=True, where=mask)
        _unchanged(x, xs)
        _unchanged(b, bs)
        _unchanged(mask, ms)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_out_other_array_leaves_input(name, rng):
    x = rng.standard_normal((5, 6))
    for where in (None, rng.random((5, 6)) < 0.5):
        xs = _snapshot(x)
        out = np.empty_like(x)
        assert FUNCS[name](x, axis=1, out=out, where=where, temperature=0.8) is out
        _unchanged(x, xs)


@pytest.mark.parametrize("name", list(FUNCS))
def test_read_only_and_broadcast_inputs(name, rng):
    row = rng.standard_normal(9)
    x = np.broadcast_to(row, (4, 9))  # read-only, zero stride
    got = FUNCS[name](x, axis=1)
    ref = FUNCS[name](np.ascontiguousarray(x), axis=1)
    np.testing.assert_array_equal(got, ref)
    ro = rng.standard_normal((3, 5))
    ro.flags.writeable = False
    FUNCS[name](ro, axis=0)
    assert not ro.flags.writeable


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_in_place_only_writes_out(name, rng):
    """In-place on a view writes only the view's elements."""
    big = rng.standard_normal((6, 8))
    before = big.copy()
    view = big[1:5, ::2]
    expected = FUNCS[name](view.copy(), axis=1)
    FUNCS[name](view, axis=1, out=view)
    np.testing.assert_array_equal(view, expected)
    untouched = np.ones(big.shape, dtype=bool)
    untouched[1:5, ::2] = False
    np.testing.assert_array_equal(big[untouched], before[untouched])

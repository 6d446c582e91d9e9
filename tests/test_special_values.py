"""NaN, ±inf, empty, 0-d, all -inf and fully masked rows: documented results, no warnings.

pytest runs with ``filterwarnings = error``, so any RuntimeWarning from NumPy in the wrapper
fails these tests. Several results here differ from SciPy on purpose (SciPy gives NaN for rows
with +inf or without finite mass, and raises for softmax over an empty axis).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import smoothmax

DTYPES = [np.float32, np.float64]
FUNCS = {
    "logsumexp": smoothmax.logsumexp,
    "softmax": smoothmax.softmax,
    "log_softmax": smoothmax.log_softmax,
}
NORMS = {"softmax": smoothmax.softmax, "log_softmax": smoothmax.log_softmax}


def _along(name, x, axis, **kw):
    return FUNCS[name](x, axis=axis, **kw)


# --------------------------------------------------------------------------- NaN


@pytest.mark.parametrize("n", [1, 3, 16, 17, 40])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(FUNCS))
def test_nan_poisons_only_its_row(name, dtype, n, isa, rng):
    x = (rng.standard_normal((6, n)) * 5).astype(dtype)
    x[1, n // 2] = np.nan
    x[3, 0] = np.inf  # NaN wins over +inf
    x[3, -1] = np.nan
    x[4, :] = -np.inf
    x[4, 0] = np.nan  # NaN wins over "no finite mass"
    clean = [0, 2, 5]
    for axis, data in ((1, x), (0, np.ascontiguousarray(x.T))):
        got = np.asarray(_along(name, data, axis))
        got_rows = got if axis == 1 else got.T
        bad = [1, 3, 4]
        if name == "logsumexp":
            assert np.isnan(got_rows[bad]).all()
            assert not np.isnan(got_rows[clean]).any()
        else:
            assert np.isnan(got_rows[bad]).all()  # the whole row
            assert not np.isnan(got_rows[clean]).any()
        # the other rows are bit-identical to computing them alone
        alone = np.asarray(_along(name, x[clean], 1))
        np.testing.assert_array_equal(got_rows[clean], alone)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_in_weighted_logsumexp(dtype):
    x = np.array([[1.0, np.nan, 2.0], [1.0, 2.0, 3.0]], dtype=dtype)
    r, s = smoothmax.logsumexp(x, axis=1, b=np.ones(3, dtype), return_sign=True)
    assert np.isnan(r[0]) and np.isnan(s[0])
    assert np.isfinite(r[1]) and s[1] == 1


# --------------------------------------------------------------------------- +inf


@pytest.mark.parametrize("count", [1, 2, 3, 17])
@pytest.mark.parametrize("n", [1, 5, 33])
@pytest.mark.parametrize("dtype", DTYPES)
def test_plus_inf_entries_share_the_mass(dtype, n, count, isa, rng):
    n = max(n, count)
    x = (rng.standard_normal(n) * 3).astype(dtype)
    x[: n // 3] = -np.inf
    idx = rng.choice(n, size=count, replace=False)
    x[idx] = np.inf
    infs = np.isposinf(x)
    assert smoothmax.logsumexp(x) == np.inf
    sm = smoothmax.softmax(x)
    np.testing.assert_array_equal(sm[infs], dtype(1.0 / count))
    np.testing.assert_array_equal(sm[~infs], 0.0)
    ls = smoothmax.log_softmax(x)
    np.testing.assert_array_equal(ls[infs], dtype(-math.log(count)))
    assert np.isneginf(ls[~infs]).all()
    # with a temperature, inf / T is still inf
    np.testing.assert_array_equal(smoothmax.softmax(x, temperature=0.3), sm)
    np.testing.assert_array_equal(smoothmax.log_softmax(x, temperature=7.0), ls)


def test_plus_inf_rows_2d_both_layouts():
    x = np.array([[np.inf, 1.0, np.inf, -np.inf], [1.0, 2.0, 3.0, 4.0], [np.inf] * 4])
    for axis, data in ((1, x), (0, x.T.copy())):
        sm = smoothmax.softmax(data, axis=axis)
        sm = sm if axis == 1 else sm.T
        np.testing.assert_array_equal(sm[0], [0.5, 0.0, 0.5, 0.0])
        np.testing.assert_array_equal(sm[2], [0.25] * 4)
        np.testing.assert_allclose(sm[1].sum(), 1.0, rtol=1e-15)
        lse = smoothmax.logsumexp(data, axis=axis)
        assert lse[0] == np.inf and lse[2] == np.inf and np.isfinite(lse[1])


def test_masked_plus_inf_is_left_out():
    x = np.array([np.inf, 1.0, np.inf, 2.0])
    mask = np.array([False, True, True, True])
    np.testing.assert_array_equal(smoothmax.softmax(x, where=mask), [0.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(
        smoothmax.log_softmax(x, where=mask), [-np.inf, -np.inf, 0.0, -np.inf]
    )
    mask2 = np.array([False, True, False, True])
    np.testing.assert_allclose(
        smoothmax.softmax(x, where=mask2)[[1, 3]], smoothmax.softmax(np.array([1.0, 2.0]))
    )


def test_weighted_plus_inf():
    assert smoothmax.logsumexp([np.inf, 1.0], b=[2.0, 1.0]) == np.inf
    r, s = smoothmax.logsumexp([np.inf, 1.0], b=[-2.0, 1.0], return_sign=True)
    assert r == np.inf and s == -1
    assert np.isnan(smoothmax.logsumexp([np.inf, 1.0], b=[-2.0, 1.0]))


# --------------------------------------------------------------------------- no finite mass


@pytest.mark.parametrize("n", [1, 2, 17, 100])
@pytest.mark.parametrize("dtype", DTYPES)
def test_all_minus_inf_rows(dtype, n, isa):
    x = np.full((3, n), -np.inf, dtype=dtype)
    x[1] = np.linspace(-1, 1, n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lse = smoothmax.logsumexp(x, axis=1)
        sm = smoothmax.softmax(x, axis=1)
        ls = smoothmax.log_softmax(x, axis=1)
        lse_t = smoothmax.logsumexp(x.T, axis=0)
        r, s = smoothmax.logsumexp(x, axis=1, b=np.ones(n, dtype), return_sign=True)
    for row in (0, 2):
        assert lse[row] == -np.inf and lse_t[row] == -np.inf
        np.testing.assert_array_equal(sm[row], 0.0)
        assert np.isneginf(ls[row]).all()
        assert r[row] == -np.inf and s[row] == 0
    assert np.isfinite(lse[1]) and np.isfinite(sm[1]).all() and np.isfinite(ls[1]).all()
    assert not np.isnan(sm).any() and not np.isnan(ls).any()


@pytest.mark.parametrize("name", list(FUNCS))
def test_fully_masked_rows(name):
    x = np.arange(12.0).reshape(3, 4)
    mask = np.ones((3, 4), dtype=bool)
    mask[1] = False
    got = np.asarray(FUNCS[name](x, axis=1, where=mask))
    fill = {"logsumexp": -np.inf, "softmax": 0.0, "log_softmax": -np.inf}[name]
    np.testing.assert_array_equal(got[1], fill)
    assert np.isfinite(got[[0, 2]]).all()
    # fully masked along axis=0 as well
    got0 = np.asarray(FUNCS[name](x, axis=0, where=np.zeros(4, dtype=bool)))
    np.testing.assert_array_equal(got0, fill)
    # and the whole array
    assert np.all(np.asarray(FUNCS[name](x, where=False)) == fill)


# --------------------------------------------------------------------------- empty and 0-d


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_reductions(dtype):
    lse = smoothmax.logsumexp
    assert lse(np.zeros(0, dtype)) == -np.inf
    assert lse(np.zeros(0, dtype)).dtype == dtype
    np.testing.assert_array_equal(lse(np.zeros((2, 0), dtype), axis=1), [-np.inf, -np.inf])
    np.testing.assert_array_equal(lse(np.zeros((0, 3), dtype), axis=0), [-np.inf] * 3)
    assert lse(np.zeros((0, 3), dtype), axis=1).shape == (0,)
    assert lse(np.zeros((2, 0), dtype), axis=0).shape == (0,)
    assert lse(np.zeros((2, 0, 3), dtype), axis=1, keepdims=True).shape == (2, 1, 3)
    assert lse(np.zeros((2, 0), dtype)) == -np.inf
    assert lse([]) == -np.inf


@pytest.mark.parametrize("name", list(NORMS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_normalisations(name, dtype):
    for shape, axis in [
        ((0,), None),
        ((0,), 0),
        ((2, 0), 1),
        ((2, 0), 0),
        ((0, 3), 1),
        ((0, 3), 0),
        ((2, 0), None),
        ((2, 0, 3), (0, 2)),
    ]:
        got = NORMS[name](np.zeros(shape, dtype), axis=axis)
        assert isinstance(got, np.ndarray)
        assert got.shape == shape and got.dtype == dtype
    out = np.zeros((2, 0), dtype)
    assert NORMS[name](np.zeros((2, 0), dtype), axis=1, out=out) is out


@pytest.mark.parametrize("name", list(NORMS))
@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 3)])
def test_empty_in_place(name, shape):
    x = np.zeros(shape)
    assert NORMS[name](x, axis=-1, out=x) is x


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_d_special_values(dtype):
    for v, lse, sm, ls in [
        (2.0, 2.0, 1.0, 0.0),
        (np.inf, np.inf, 1.0, 0.0),
        (-np.inf, -np.inf, 0.0, -np.inf),
        (np.nan, np.nan, np.nan, np.nan),
        (-0.0, 0.0, 1.0, 0.0),
    ]:
        x = dtype(v)
        for fn, expected in (
            (smoothmax.logsumexp, lse),
            (smoothmax.softmax, sm),
            (smoothmax.log_softmax, ls),
        ):
            got = fn(x)
            assert isinstance(got, dtype), (fn.__name__, v, type(got))
            np.testing.assert_array_equal(got, expected, err_msg=f"{fn.__name__}({v})")


# --------------------------------------------------------------------------- extreme values


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_magnitudes_no_overflow(dtype, isa):
    big = np.finfo(dtype).max
    x = np.array([big, big, -big, big / 2], dtype=dtype)
    sm = smoothmax.softmax(x)
    np.testing.assert_array_equal(sm, np.array([0.5, 0.5, 0.0, 0.0], dtype))
    ls = smoothmax.log_softmax(x)
    assert ls[0] == ls[1] == dtype(-math.log(2))
    assert ls[2] == -np.inf  # -2*max overflows: correctly rounded to -inf
    lse = smoothmax.logsumexp(x)
    assert lse == big  # max + log 2 rounds to max
    assert smoothmax.logsumexp(np.array([-big, -big], dtype)) == -big


@pytest.mark.parametrize("dtype", DTYPES)
def test_tiny_and_subnormal_inputs(dtype, isa):
    tiny = np.finfo(dtype).smallest_subnormal
    x = np.array([tiny, -tiny, 0.0, -0.0, np.finfo(dtype).smallest_normal], dtype=dtype)
    np.testing.assert_allclose(smoothmax.softmax(x), np.full(5, 0.2, dtype), rtol=1e-6)
    np.testing.assert_allclose(smoothmax.logsumexp(x), np.log(5), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_subnormal_outputs(dtype, isa):
    d = 745.0 if dtype == np.float64 else 104.0
    x = np.array([0.0, -d + 1.0, -d + 3.0, -d - 5.0], dtype=dtype)
    sm = smoothmax.softmax(x)
    assert sm[0] == 1.0
    assert 0 < sm[1] < np.finfo(dtype).smallest_normal
    assert 0 < sm[2] < np.finfo(dtype).smallest_normal
    assert sm[3] == 0.0
    ls = smoothmax.log_softmax(x)
    assert np.isfinite(ls).all()


@pytest.mark.parametrize("name", list(NORMS))
def test_hot_temperature(name):
    x = np.array([1.0, 2.0, 3.0])
    hot = NORMS[name](x, temperature=1e300)
    if name == "softmax":
        np.testing.assert_allclose(hot, [1 / 3] * 3, rtol=1e-15)
    else:
        np.testing.assert_allclose(hot, [-math.log(3)] * 3, rtol=1e-15)
    # (x - max) / T overflowing to -inf is the correctly rounded result
    y = np.array([-1e308, 1e308])
    got = NORMS[name](y, temperature=0.5)
    assert got[0] == (0.0 if name == "softmax" else -np.inf)
    assert got[1] == (1.0 if name == "softmax" else 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("temperature", [1e-300, 1e-200, 1e-20])
@pytest.mark.parametrize("name", list(NORMS))
def test_cold_temperature(name, temperature, dtype):
    x = np.array([1.0, 2.0, 3.0], dtype=dtype)
    cold = NORMS[name](x, temperature=temperature)
    if name == "softmax":
        np.testing.assert_array_equal(cold, [0.0, 0.0, 1.0])
        assert not np.signbit(cold).any()
    else:
        with np.errstate(over="ignore"):
            expected = ((x.astype(np.float64) - 3.0) / temperature).astype(dtype)
        np.testing.assert_array_equal(cold, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_far_underflow_gives_positive_zero(dtype):
    """softmax([-1e30, 3]) is exactly [+0, 1]: no negative zero."""
    x = np.array([-1e30, 3.0], dtype=dtype)
    if dtype == np.float64:
        x = np.array([-1e300, 3.0])
    got = smoothmax.softmax(x)
    np.testing.assert_array_equal(got, [0.0, 1.0])
    assert not np.signbit(got).any()


def test_inputs_with_inf_do_not_warn_with_where_and_b():
    x = np.array([[-np.inf, -np.inf], [np.inf, -np.inf], [np.nan, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _name, fn in FUNCS.items():
            fn(x, axis=1)
            fn(x, axis=0)
            fn(x, axis=1, where=np.array([True, False]))
        smoothmax.logsumexp(x, axis=1, b=[0.0, 1.0], return_sign=True)
        smoothmax.logsumexp(x, axis=1, b=[-1.0, 1.0])

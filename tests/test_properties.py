"""Hypothesis properties from the logsumexp inequalities and the softmax identities.

Tolerances scale like ``4 eps (|x|_max + log n)``: the conditioning of logsumexp in absolute
terms. Profiles (``HYPOTHESIS_PROFILE=ci|dev|thorough``) are set in ``conftest.py``.
"""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import assume, example, given, note
from hypothesis import strategies as st
from reference import ld_log_softmax, ld_logsumexp, ld_softmax, max_ulp

import smoothmax
from smoothmax import log_softmax, logsumexp, softmax

DTYPES = [np.float32, np.float64]


def eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def tol(dtype, xmax: float, n: int, k: float = 4.0) -> float:
    """``k eps (|x|_max + log n)`` plus a floor for results near 0."""
    return k * eps(dtype) * (abs(xmax) + math.log(max(n, 1)) + 1.0)


@st.composite
def rows(draw, min_n: int = 1, max_n: int = 64, dtype=None, bound=None):
    dt = draw(st.sampled_from(DTYPES)) if dtype is None else dtype
    b = draw(st.sampled_from([1.0, 30.0, 1e3, 1e4])) if bound is None else bound
    n = draw(st.integers(min_n, max_n))
    elems = st.floats(
        -b, b, allow_nan=False, allow_infinity=False, width=32 if dt == np.float32 else 64
    )
    return draw(hnp.arrays(dt, n, elements=elems))


@st.composite
def row_pairs(draw, min_n: int = 1, max_n: int = 48):
    x = draw(rows(min_n, max_n))
    elems = st.floats(
        -1e3, 1e3, allow_nan=False, allow_infinity=False, width=32 if x.dtype == np.float32 else 64
    )
    y = draw(hnp.arrays(x.dtype, x.shape, elements=elems))
    return x, y


def f64(v) -> float:
    return float(np.float64(v))


# --------------------------------------------------------------------------- bounds


@given(rows())
def test_lse_between_max_and_max_plus_log_n(x):
    n = x.size
    m = f64(x.max())
    lse = f64(logsumexp(x))
    t = tol(x.dtype, m, n)
    assert lse >= m  # the max term alone contributes exactly 1
    assert lse <= m + math.log(n) + t
    if n == 1:
        assert lse == m
    else:
        # strict when the second term is big enough to move the rounded result
        second = np.sort(x.astype(np.float64))[-2]
        excess = math.log1p(math.exp(second - m))
        if excess > 2 * abs(float(np.spacing(x.dtype.type(m)))):
            assert lse > m


@given(rows(min_n=2), st.sampled_from([0.05, 0.3, 1.0, 2.5, 40.0]))
# T lse(x/T) equals the bound here and rounds one ULP of 72 above it.
@example(np.full(6, 0.25, dtype=np.float32), 40.0)
def test_temperature_bound(x, temperature):
    """``x_max < T lse(x/T) <= x_max + T log n`` via ``log_softmax`` at the argmax:
    ``T lse(x/T) = x_max - T log_softmax(x, T)[argmax]``."""
    n = x.size
    i = int(np.argmax(x))
    ls = f64(log_softmax(x, temperature=temperature)[i])
    assert ls <= 0.0
    assert ls >= -math.log(n) - tol(x.dtype, 0.0, n)
    # the same bound through logsumexp of the scaled data (x/T rounded: looser tolerance)
    m = f64(x.max())
    lse_t = temperature * f64(logsumexp(x.astype(np.float64) / temperature))
    # lse(x/T) within tol of its own magnitude, |m|/T + log n, and multiplied by T
    t = temperature * tol(np.float64, m / temperature, n)
    assert m - t <= lse_t <= m + temperature * math.log(n) + t


@given(rows())
def test_lse_at_least_mean_plus_log_n(x):
    n = x.size
    mean = math.fsum(x.astype(np.float64).tolist()) / n
    lse = f64(logsumexp(x))
    assert lse >= mean + math.log(n) - tol(x.dtype, f64(np.abs(x).max()), n)


@given(st.sampled_from(DTYPES), st.integers(1, 64), st.floats(-1e4, 1e4))
def test_lse_of_constant_row(dtype, n, c):
    x = np.full(n, c, dtype=dtype)
    c = f64(x[0])
    lse = f64(logsumexp(x))
    assert abs(lse - (c + math.log(n))) <= tol(dtype, c, n)
    sm = softmax(x)
    assert np.all(sm == sm[0])  # ties give bit-identical outputs
    assert abs(f64(sm[0]) - 1 / n) <= 4 * eps(dtype) / n


# --------------------------------------------------------------------------- invariances


@st.composite
def grid_rows(draw):
    """Rows on the grid k/1024, |x| <= 1000, and an integer shift: x + c is exact."""
    dt = draw(st.sampled_from(DTYPES))
    n = draw(st.integers(1, 64))
    ks = draw(st.lists(st.integers(-1_024_000, 1_024_000), min_size=n, max_size=n))
    c = draw(st.integers(-1000, 1000))
    return np.array(ks, dtype=np.float64).astype(dt) / dt(1024), c


@given(grid_rows())
def test_shift_invariance(data):
    x, c = data
    dt = x.dtype.type
    xc = x + dt(c)
    assert np.array_equal(xc.astype(np.float64), x.astype(np.float64) + c)  # exact shift
    n = x.size
    m = f64(np.abs(xc).max()) + f64(np.abs(x).max())
    assert abs(f64(logsumexp(xc)) - (f64(logsumexp(x)) + c)) <= tol(x.dtype, m, n)
    # softmax/log_softmax are exactly shift invariant: both within a few ULP of one value
    a, b = softmax(x), softmax(xc)
    ulp = np.spacing(np.maximum(np.abs(a), np.abs(b)))
    assert np.all(np.abs(a.astype(np.float64) - b) <= 8 * ulp.astype(np.float64))
    la, lb = log_softmax(x), log_softmax(xc)
    ulp = np.spacing(np.maximum(np.abs(la), np.abs(lb))).astype(np.float64)
    assert np.all(np.abs(la.astype(np.float64) - lb) <= 8 * ulp + tol(x.dtype, 0.0, n))


@given(rows(), st.randoms(use_true_random=False))
def test_permutation_invariance(x, r):
    perm = list(range(x.size))
    r.shuffle(perm)
    n = x.size
    t = tol(x.dtype, f64(np.abs(x).max()), n)
    assert abs(f64(logsumexp(x)) - f64(logsumexp(x[perm]))) <= t
    sm, smp = softmax(x), softmax(x[perm])
    ulp = np.spacing(np.maximum(sm[perm], smp)).astype(np.float64)
    assert np.all(np.abs(sm[perm].astype(np.float64) - smp) <= 8 * ulp)


# --------------------------------------------------------------------------- convexity, Lipschitz


@given(row_pairs(), st.floats(0.0, 1.0))
def test_convexity(pair, t):
    x, y = (v.astype(np.float64) for v in pair)
    z = t * x + (1 - t) * y
    n = x.size
    lhs = t * f64(logsumexp(x)) + (1 - t) * f64(logsumexp(y))
    rhs = f64(logsumexp(z))
    bound = tol(np.float64, f64(np.abs(x).max()) + f64(np.abs(y).max()), n)
    assert lhs >= rhs - bound


@given(row_pairs())
def test_lipschitz_in_sup_norm(pair):
    x, y = pair
    n = x.size
    d = f64(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64))))
    lhs = abs(f64(logsumexp(x)) - f64(logsumexp(y)))
    bound = tol(x.dtype, f64(np.abs(x).max()) + f64(np.abs(y).max()), n)
    assert lhs <= d + bound


@given(rows(min_n=2), st.integers(0, 63), st.floats(0.0, 50.0))
def test_monotonicity(x, i, delta):
    """Raising one entry raises logsumexp and its softmax share, lowers the others."""
    i %= x.size
    y = x.copy()
    y[i] = x.dtype.type(f64(x[i]) + delta)
    assume(np.isfinite(y[i]))
    n = x.size
    t = tol(x.dtype, f64(np.abs(y).max()), n)
    assert f64(logsumexp(y)) >= f64(logsumexp(x)) - t
    sx, sy = softmax(x).astype(np.float64), softmax(y).astype(np.float64)
    e = 8 * eps(x.dtype)
    assert sy[i] >= sx[i] * (1 - e)
    others = np.arange(n) != i
    assert np.all(sy[others] <= sx[others] * (1 + e) + np.finfo(x.dtype).smallest_subnormal)


@given(rows(min_n=2))
def test_order_preserved(x):
    """x_i <= x_j implies out_i <= out_j (a few ULP of slack), and ties are bit-identical."""
    for fn in (softmax, log_softmax):
        out = fn(x)
        order = np.argsort(x, kind="stable")
        xs, os_ = x[order], out[order].astype(np.float64)
        slack = 8 * np.spacing(np.abs(out[order])).astype(np.float64)
        assert np.all(os_[:-1] <= os_[1:] + slack[1:])
        ties = xs[:-1] == xs[1:]
        assert np.all(os_[:-1][ties] == os_[1:][ties])


# --------------------------------------------------------------------------- identities


@given(rows())
def test_softmax_sums_to_one(x):
    n = x.size
    s = math.fsum(softmax(x).astype(np.float64).tolist())
    assert abs(s - 1.0) <= n * eps(x.dtype)


@given(rows(), st.sampled_from([0.1, 1.0, 3.0]))
def test_softmax_is_exp_of_log_softmax(x, temperature):
    sm = softmax(x, temperature=temperature).astype(np.float64)
    ls = log_softmax(x, temperature=temperature).astype(np.float64)
    with np.errstate(under="ignore"):
        e = np.exp(ls)
    big = sm > np.finfo(x.dtype).smallest_normal
    rel = np.abs(e[big] - sm[big]) / sm[big]
    note(f"max rel {rel.max() if rel.size else 0}")
    assert np.all(rel <= 8 * eps(x.dtype) * (1 + np.abs(ls[big])))
    assert np.all(sm >= 0) and not np.signbit(sm).any()
    assert np.all(ls <= 0)


@given(rows())
def test_log_softmax_is_x_minus_lse(x):
    n = x.size
    ls = log_softmax(x).astype(np.float64)
    lse = f64(logsumexp(x))
    t = tol(x.dtype, f64(np.abs(x).max()), n)
    assert np.all(np.abs(ls - (x.astype(np.float64) - lse)) <= t)


@given(rows(), st.floats(0.01, 100.0))
def test_weights_scale_adds_log(x, w):
    n = x.size
    w = float(x.dtype.type(w))
    t = tol(x.dtype, f64(np.abs(x).max()) + abs(math.log(w)), n)
    got = f64(logsumexp(x, b=np.full(n, w, dtype=x.dtype)))
    assert abs(got - (f64(logsumexp(x)) + math.log(w))) <= t
    assert (
        f64(logsumexp(x, b=np.ones(n, x.dtype))) == f64(logsumexp(x))
        or abs(f64(logsumexp(x, b=np.ones(n, x.dtype))) - f64(logsumexp(x))) <= t
    )


@given(rows(min_n=1), st.data())
def test_where_equals_compressed_row(x, data):
    mask = data.draw(hnp.arrays(np.bool_, x.shape))
    assume(mask.any())
    n = int(mask.sum())
    t = tol(x.dtype, f64(np.abs(x).max()), n)
    assert abs(f64(logsumexp(x, where=mask)) - f64(logsumexp(x[mask]))) <= t
    sm = softmax(x, where=mask)
    assert np.all(sm[~mask] == 0)
    ref = softmax(x[mask])
    ulp = np.spacing(np.maximum(sm[mask], ref)).astype(np.float64)
    assert np.all(np.abs(sm[mask].astype(np.float64) - ref) <= 8 * ulp)


@given(st.sampled_from(DTYPES), st.integers(1, 6), st.integers(1, 40), st.data())
def test_rows_are_independent(dtype, n_rows, n, data):
    """Each row of a 2-D call equals the 1-D call on that row, bit for bit, both axes."""
    x = data.draw(
        hnp.arrays(
            dtype,
            (n_rows, n),
            elements=st.floats(-1e3, 1e3, width=32 if dtype == np.float32 else 64),
        )
    )
    for fn in (softmax, log_softmax, logsumexp):
        full = np.asarray(fn(x, axis=1))
        full_t = np.asarray(fn(np.ascontiguousarray(x.T), axis=0))
        for r in range(n_rows):
            np.testing.assert_array_equal(full[r], fn(x[r]))
        np.testing.assert_array_equal(full_t.T if full_t.ndim == 2 else full_t, full)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("shape", "axis"),
    [
        ((50, 64), 0),  # one group of four whole column tiles
        ((50, 130), 0),  # two groups and a partial one
        ((37, 65), 0),  # a group, then one lone column
        ((3, 40, 70), 1),  # groups within each outer index
        ((2, 30, 16, 5), 1),  # column tiles that span outer indices
    ],
)
def test_column_groups_match_rows(dtype, shape, axis):
    """Reductions along a non-last axis (column tiles, gathered in groups) equal the 1-D call
    on each line, bit for bit."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(shape) * 20).astype(dtype)
    x.flat[::97] = -np.inf
    moved = np.moveaxis(x, axis, -1)
    for fn in (softmax, log_softmax, logsumexp):
        got = (
            np.moveaxis(np.asarray(fn(x, axis=axis)), axis, -1)
            if fn is not logsumexp
            else (np.asarray(fn(x, axis=axis)))
        )
        for idx in np.ndindex(moved.shape[:-1]):
            np.testing.assert_array_equal(got[idx], fn(np.ascontiguousarray(moved[idx])))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [4, 7, 8, 9, 10, 15, 16, 17, 24, 31, 32])
@pytest.mark.parametrize("layout", ["rows", "rows reversed", "every other row", "3-d", "in place"])
def test_short_rows_moved_in_register_blocks_match_single_rows(dtype, n, layout):
    """Short rows (the column tiles) with unit-stride elements move in and out of the tiles as
    square blocks transposed in registers, a block of rows at a time, the odd rows one by one:
    every row equals the 1-D call on it bit for bit (a lone row moves element by element),
    with special values and a strided `out`, and the input is left untouched."""
    rng = np.random.default_rng(n)
    base = (rng.standard_normal((2 * 45, n)) * 20).astype(dtype)
    base[5, n // 2] = np.nan
    base[9, n - 1] = np.inf
    base[12] = -np.inf
    base[20, 0] = 1e6 if dtype == np.float32 else 2e9
    x = {
        "rows": base[:45],
        "rows reversed": base[:45][::-1],
        "every other row": base[::2],
        "3-d": base.reshape(2, 45, n),
        "in place": base[:45],
    }[layout]
    before = base.copy()
    rows = x.reshape(-1, n)
    for fn in (softmax, log_softmax, logsumexp):
        expected = np.stack([np.asarray(fn(np.ascontiguousarray(r))) for r in rows])
        if layout == "in place" and fn is not logsumexp:
            got = x.copy()
            assert fn(got, axis=-1, out=got) is got
        else:
            got = np.asarray(fn(x, axis=-1))
        np.testing.assert_array_equal(got.reshape(expected.shape), expected)
        if fn is not logsumexp:
            out = np.full((*x.shape[:-1], 2 * n), 5.0, dtype)[..., ::2]
            fn(x, axis=-1, out=out)
            np.testing.assert_array_equal(out.reshape(expected.shape), expected)
    np.testing.assert_array_equal(base, before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [33, 64, 100, 101, 200, 201])
@pytest.mark.parametrize("rows", [15, 16, 40])
def test_medium_rows_by_the_tile_match_single_rows(dtype, n, rows):
    """Rows of 33–100 elements (float32 log_softmax: up to 200) go through the column tiles
    when a call has at least 16 of them (fewer, and longer rows, stay on the row kernel, which
    the 1-D call uses): every row equals the 1-D call on it bit for bit, with special values,
    `out=`, in place and with a temperature."""
    rng = np.random.default_rng(n + rows)
    x = (rng.standard_normal((rows, n)) * 20).astype(dtype)
    x[1, n // 3] = np.nan
    x[2, 0] = np.inf
    x[3] = -np.inf
    x[4, -1] = 1e6 if dtype == np.float32 else 2e9
    x[5, : n // 2] = x[5].max()  # ties at the max
    x[6] *= 0.01  # logsumexp near 0: exact sums
    before = x.copy()
    for fn in (softmax, log_softmax, logsumexp):
        expected = np.stack([np.asarray(fn(r.copy())) for r in x])
        np.testing.assert_array_equal(np.asarray(fn(x, axis=-1)), expected)
        if fn is not logsumexp:
            out = np.empty_like(x)
            assert fn(x, axis=-1, out=out) is out
            np.testing.assert_array_equal(out, expected)
            inplace = x.copy()
            fn(inplace, axis=-1, out=inplace)
            np.testing.assert_array_equal(inplace, expected)
            hot = np.stack([np.asarray(fn(r.copy(), temperature=0.7)) for r in x])
            np.testing.assert_array_equal(np.asarray(fn(x, axis=-1, temperature=0.7)), hot)
    np.testing.assert_array_equal(x, before)


def _one_pass_rows(n: int) -> dict[str, np.ndarray]:
    """Rows that make the one-pass float32 softmax move its shift (or give up) in every way."""
    rng = np.random.default_rng(n)
    base = rng.standard_normal(n)
    k = max(n // 2, 64)  # the later part starts past the first blocks
    rows = {f"scale {sc:g}": base * sc for sc in (1, 10, 30, 100, 1e3, 6e4)}
    rows["sorted"] = np.sort(base) * 30
    rows["sorted down"] = np.sort(base)[::-1] * 30
    rows["staircase"] = np.repeat(np.arange(n // 32 + 1) * 15.0, 32)[:n] + base
    # Past the first block: inside the shift's sample in rows of 2048 or more, beyond it below.
    r = base.copy()
    r[40:] += 80
    rows["jump early"] = r
    for label, jump in [("jump 40", 40), ("jump 80", 80), ("jump 110", 110), ("jump 2000", 2000)]:
        # 58, 115, 159 and 2885 octaves: the y kept before the jump stay normal, turn partly
        # subnormal, all subnormal or zero, and wholly zero
        r = base.copy()
        r[k:] += jump
        rows[label] = r
    rows["near the limit"] = 65000.0 + base * 200  # the shift's limit stays within M_LIMIT
    r = base * 10
    r[k] = 1e6  # beyond M_LIMIT, found late: the float64-lane path
    rows["far max late"] = r
    r = base * 10
    r[-1] = np.nan  # NaN in the last block, behind a block max it does not change
    rows["nan late"] = r
    r = base * 10
    r[k + 3] = np.nan
    r[k + 3 + 16] = 500.0  # a large entry in the NaN's lane of the same block
    rows["nan beside a large entry"] = r
    r = base * 10
    r[k] = np.inf
    rows["inf late"] = r
    r = base * 10
    r[k:] = -np.inf
    rows["-inf tail"] = r
    r = base * 10
    r[:40] = -np.inf  # the first block has no finite entry: the two passes
    rows["-inf head"] = r
    return {name: v.astype(np.float32) for name, v in rows.items()}


@pytest.mark.parametrize("n", [256, 300, 1000, 4099, 40000])
def test_one_pass_softmax_matches_the_two_passes(n):
    """float32 softmax rows of ≥ 256 entries written to another array skip the max pass, taking
    their shift from a sample of their first entries (one block below 2048 entries, up to 1024
    entries from 32768 on) and moving it as larger entries come; in place they take the two
    passes. The two agree bit for bit (by construction up to a last-bit rounding of the sum with
    probability ~2⁻¹⁰⁰), on rows that move the shift by every amount, before and after the
    sample, and on NaN, ±inf and far maxima found late."""
    for name, x in _one_pass_rows(n).items():
        before = x.copy()
        one_pass = np.asarray(softmax(x))
        two_pass = x.copy()
        softmax(two_pass, out=two_pass)
        assert np.array_equal(one_pass, two_pass, equal_nan=True), name
        np.testing.assert_array_equal(x, before)
        # axis-0 strips and a batch through the row kernel take the two passes as well
        np.testing.assert_array_equal(softmax(x[:, None], axis=0)[:, 0], one_pass, err_msg=name)
        batch = np.asarray(softmax(np.stack([x, x[::-1]]), axis=-1))
        np.testing.assert_array_equal(batch[0], one_pass, err_msg=name)
        if name in ("sorted", "jump 80", "scale 100", "staircase"):
            assert max_ulp(one_pass, ld_softmax(x)) <= 4.0, name


@pytest.mark.parametrize("n", [3, 10, 24])
def test_tile_lane_constants_match_single_rows(n):
    """A float32 tile whose 16 rows are free of NaN and have maxima within ±65536 (the f32-lane
    range) computes its shift constants, sums and final pairs in vector lanes; any other tile
    goes lane by lane. Both must give every row what the 1-D call gives it, bit for bit: at the
    edges of the range (±65536 inside, the next float outside), around logsumexp's rounded-sum
    threshold (maxima near 2, and near −2 − ln n), with ties and with a negative zero."""
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((80, n)) * 0.5).astype(np.float32)
    x[0, 0] = 65536.0  # tile 0: regular, at the edges
    x[1] = -65536.0
    x[2, -1] = -65535.99
    x[17, 0] = np.nextafter(np.float32(65536.0), np.float32(np.inf))  # tile 1: one far row
    x[18] = np.nextafter(np.float32(-65536.0), np.float32(-np.inf))
    x[32, 0] = 2.0  # tile 2: rounded logsumexp sums in some lanes only
    x[33, 0] = np.nextafter(np.float32(2.0), np.float32(0.0))
    x[34] = np.float32(-2.0 - np.log(n))
    x[35] = np.nextafter(np.float32(-2.0 - np.log(n)), np.float32(0.0))
    x[36, : max(1, n // 2)] = 1.5  # ties at the max
    x[48] = 0.0  # tile 3: zeros, a negative zero maximum, large regular maxima
    x[49] = -0.0
    x[50, 0] = 40000.0
    x[51, :2] = [40000.0, 39970.0]  # log S below ulp(m) in f64: the pair's low part carries it
    x[64:] *= 40.0  # tile 4: ordinary logits
    before = x.copy()
    # A lone short row goes through a tile too, so the results are also held to the float32
    # contracts against the long-double reference.
    contract = {
        softmax: (ld_softmax, 4),
        log_softmax: (ld_log_softmax, 2),
        logsumexp: (ld_logsumexp, 1),
    }
    for fn, (reference, ulps) in contract.items():
        expected = np.stack([np.asarray(fn(r.copy())) for r in x])
        got = np.asarray(fn(x, axis=-1))
        np.testing.assert_array_equal(got, expected)
        assert max_ulp(got, reference(x)) <= ulps, fn.__name__
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("view", ["::2", "::-1", "::-3", "transposed"])
@pytest.mark.parametrize("special", ["none", "nan", "inf", "far max"])
def test_strided_rows_into_contiguous_output_match_contiguous(dtype, view, special):
    """Rows with a stride of their own (`x[:, ::2]`, reversed, a transpose), longer than the
    column kernel's rows, are gathered into a contiguous output row (float32 softmax) or a row
    buffer and normalised from there: the result equals the call on a contiguous copy bit for
    bit, with and without `out=` and a temperature, and the input is left untouched."""
    rng = np.random.default_rng(6)
    base = (rng.standard_normal((40, 600)) * 10).astype(dtype)
    base[3, ::5] = -np.inf
    if special == "nan":
        base[5, 17] = np.nan
    elif special == "inf":
        base[6, 18] = np.inf
    elif special == "far max":
        base[7, 19] = 1e6 if dtype == np.float32 else 2e9
    v = {
        "::2": base[:, ::2],
        "::-1": base[:, ::-1],
        "::-3": base[:, ::-3],
        "transposed": base.T[:300],
    }[view]
    before = base.copy()
    c = np.ascontiguousarray(v)
    for fn in (softmax, log_softmax):
        for kw in ({}, {"temperature": 0.7}):
            expect = fn(c, axis=-1, **kw)
            np.testing.assert_array_equal(fn(v, axis=-1, **kw), expect)
            out = np.full(v.shape, 9.0, dtype)
            assert fn(v, axis=-1, out=out, **kw) is out
            np.testing.assert_array_equal(out, expect)
    np.testing.assert_array_equal(base, before)


@pytest.mark.parametrize("view", ["rows reversed", "every other row", "both reversed"])
def test_axis0_strips_of_views_match_contiguous(view):
    """The strip kernel walks rows with any stride, negative ones included."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((50, 96)) * 10).astype(np.float32)
    v = {"rows reversed": x[::-1], "every other row": x[::2], "both reversed": x[::-1, ::-1]}[view]
    for fn in (softmax, log_softmax, logsumexp):
        np.testing.assert_array_equal(fn(v, axis=0), fn(np.ascontiguousarray(v), axis=0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("special", ["nan", "inf", "-inf column", "far max", "none"])
@pytest.mark.parametrize("in_place", [False, True])
def test_axis0_strips_match_rows(dtype, special, in_place):
    """Along axis 0 with adjacent columns (the strip kernels: float32, and float64
    logsumexp; with their fallback to the column tiles for NaN, infinite or out-of-range
    maxima), in place or not, equals the 1-D call on each column bit for bit."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((45, 70)) * 20).astype(dtype)
    x[::7, 3] = -np.inf
    if special == "nan":
        x[10, 20] = np.nan
    elif special == "inf":
        x[11, 21] = np.inf
    elif special == "-inf column":
        x[:, 22] = -np.inf
    elif special == "far max":
        x[12, 23] = 1e6 if dtype == np.float32 else 2e9
    for fn in (softmax, log_softmax, logsumexp):
        expected = [fn(np.ascontiguousarray(x[:, c])) for c in range(x.shape[1])]
        if in_place and fn is not logsumexp:
            got = x.copy()
            fn(got, axis=0, out=got)
        else:
            got = np.asarray(fn(x, axis=0))
        for c in range(x.shape[1]):
            np.testing.assert_array_equal(got[..., c], expected[c], err_msg=f"column {c}")


@pytest.mark.parametrize("view", ["contiguous", "rows reversed", "in place"])
def test_axis0_narrow_strips_match_rows(view):
    """A float32 array large enough for the narrow strips (12 MiB in rows of 2048 columns; see
    `strips32::strip_width`), whose passes ask for rows ahead, equals the row kernels on the
    transposed copy bit for bit: with a NaN (its strip goes to the column tiles), an infinite
    column, a far maximum and -inf entries, and with rows walked backwards."""
    rng = np.random.default_rng(12)
    x = (rng.standard_normal((1536, 2048)) * 10).astype(np.float32)
    x[::7, 300] = -np.inf
    x[5, 600] = np.nan
    x[:, 1000] = -np.inf
    x[700, 1400] = 1e6
    if view == "rows reversed":
        x = x[::-1]
    before = x.copy()
    for fn in (softmax, log_softmax, logsumexp):
        expected = fn(np.ascontiguousarray(x.T), axis=-1).T
        if view == "in place" and fn is not logsumexp:
            got = x.copy()
            assert fn(got, axis=0, out=got) is got
        else:
            got = fn(x, axis=0)
        np.testing.assert_array_equal(got, expected, err_msg=fn.__name__)
    np.testing.assert_array_equal(x, before)


def test_axis1_narrow_strips_across_outer_and_threads(restore_threads):
    """Along axis 1 of a (2, 1539, 2048) float32 array (narrow strips, whose softmax on AVX-512
    leaves its writes to one pass over whole rows per run of adjacent strips): a run ends at
    a NaN strip (column tiles) and at the next `outer` index, and 2 or 3 threads split the
    columns mid-strip and across `outer`. Every thread count and each `outer` slice on its own
    give the same bits; the row kernels agree within 1 ULP (they add each line's f64 sum in
    another order, which here changes one softmax output's last bit)."""
    rng = np.random.default_rng(14)
    x = (rng.standard_normal((2, 1539, 2048)) * 10).astype(np.float32)
    x[1, 9, 700] = np.nan
    x[0, ::3, 1500] = -np.inf
    x[1, 400, 100] = 500.0
    moved = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    for fn in (softmax, log_softmax, logsumexp):
        smoothmax.set_num_threads(1)
        one = fn(x, axis=1)
        for o in range(2):
            np.testing.assert_array_equal(fn(x[o], axis=0), one[o], err_msg=fn.__name__)
        for threads in (2, 3):
            smoothmax.set_num_threads(threads)
            np.testing.assert_array_equal(fn(x, axis=1), one, err_msg=f"{fn.__name__} {threads}")
        by_rows = fn(moved, axis=-1)
        if fn is not logsumexp:
            by_rows = np.moveaxis(by_rows, -1, 1)
        np.testing.assert_array_max_ulp(one, by_rows, maxulp=1)


@pytest.mark.parametrize("n", [256, 257, 1000, 4127])
@pytest.mark.parametrize("fn", [softmax, log_softmax], ids=lambda f: f.__name__)
def test_float32_rows_of_every_kind_in_a_batch(fn, n, restore_threads):
    """float32 softmax rows of at least 256 entries, written to another buffer, take the
    one-pass kernel, and each softmax or log_softmax row leaves its last pass to run inside the
    next row's exponential pass. Rows of every kind follow one another in a batch: rows that
    take the one-pass kernel, rows that move its shift (sorted), rows that leave it late (a
    NaN, +inf, a maximum beyond its range) or at once (NaN or only -inf in the first entries),
    and in-place batches. Every row equals the 1-D call on it, bit for bit, on 1 to 3
    threads."""
    rng = np.random.default_rng(15)
    kinds = {
        "plain": lambda: rng.standard_normal(n) * 10,
        "sorted": lambda: np.sort(rng.standard_normal(n) * 10),
        "late nan": lambda: np.where(np.arange(n) == n - 3, np.nan, rng.standard_normal(n)),
        "late inf": lambda: np.where(np.arange(n) == n // 2 + 1, np.inf, rng.standard_normal(n)),
        "late huge": lambda: np.where(np.arange(n) == n - 1, 1e5, rng.standard_normal(n)),
        "early nan": lambda: np.where(np.arange(n) == 1, np.nan, rng.standard_normal(n)),
        "all -inf": lambda: np.full(n, -np.inf),
        "wide": lambda: rng.standard_normal(n) * 100,
    }
    names = list(kinds)
    # Each kind after each kind (and itself): a de Bruijn-like walk through the pairs.
    order = [names[0]] + [b for a in names for b in (a, *names)]
    x = np.stack([kinds[name]() for name in order]).astype(np.float32)
    singles = np.stack([fn(row) for row in x])
    for threads in (1, 2, 3):
        smoothmax.set_num_threads(threads)
        out = np.empty_like(x)
        fn(x, axis=-1, out=out)
        np.testing.assert_array_equal(out, singles, err_msg=f"out=, {threads} threads")
        np.testing.assert_array_equal(fn(x, axis=-1), singles, err_msg=f"{threads}")
        inplace = x.copy()
        fn(inplace, axis=-1, out=inplace)
        np.testing.assert_array_equal(inplace, singles, err_msg=f"in place, {threads} threads")
    finite = np.isfinite(x).all(axis=1)
    total = np.exp(singles[finite].astype(np.float64)) if fn is log_softmax else singles[finite]
    np.testing.assert_allclose(total.sum(axis=1, dtype=np.float64), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    ("dtype", "n"), [(np.float32, 100), (np.float32, 300), (np.float64, 100)], ids=str
)
@pytest.mark.parametrize("layout", ["strips", "transposed", "column tiles", "rows"])
def test_logsumexp_fast_and_exact_sums_agree_across_layouts(dtype, n, layout):
    """logsumexp sums rounded terms where its result is certain to be far from 0 (maxima at
    or above 2 for float32, 4 for float64, or far below) and exact ones elsewhere, and
    float32 lines of at least 128 sum them in f32 runs where it is certain to be at least 8;
    every layout (row kernels, axis-0 strips, column tiles) decides per line alike and sums
    in the row kernel's order, so lines with maxima on both sides of those bounds, side by
    side, equal the 1-D call bit for bit."""
    rng = np.random.default_rng(13)
    width = 2048
    t = 2.0 if dtype == np.float32 else 4.0
    if n >= 128:  # the f32 runs' bound, at which their sums differ most from the others'
        t = 8.0
    # Maxima just beyond both bounds (t and -t - log n), where the two kinds of sums differ
    # most relative to the result's ULP, and a sweep across them.
    tops = np.concatenate(
        [
            t + rng.uniform(0.0, 0.5, 896),
            -t - np.log(n) - rng.uniform(0.0, 0.5, 896),
            np.linspace(-14.0, 8.0, width - 2 * 896),
        ]
    )
    x = (tops - rng.exponential(2.0, (n, width))).astype(dtype)
    x[rng.integers(0, n, width), np.arange(width)] = tops.astype(dtype)
    expected = np.array([logsumexp(np.ascontiguousarray(x[:, c])) for c in range(width)])
    if layout == "strips":  # adjacent columns, more than a short row: the strip kernels
        got = logsumexp(x, axis=0)
    elif layout == "transposed":  # the last axis of a Fortran-ordered view: strips as well
        got = logsumexp(x.T, axis=1)
    elif layout == "column tiles":  # a NaN column sends the whole strip to the tiles
        with_nan = np.concatenate([np.full((n, 1), np.nan, dtype), x], axis=1)
        got = logsumexp(with_nan, axis=0)
        assert np.isnan(got[0])  # beside lines of both kinds, whose logarithms differ in form
        got = got[1:]
    else:
        got = logsumexp(np.ascontiguousarray(x.T), axis=1)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("n", [256, 1000, 1010, 1043])
@pytest.mark.parametrize("layout", ["strips", "transposed", "column tiles", "rows"])
def test_paired_log_softmax_agrees_across_layouts(n, layout):
    """float32 log_softmax lines of at least 256 whose maxima are at least 2 ln n or at most
    -3 ln n add their terms in pairs (`rows32::paired_log_softmax`); the axis-0 strips take
    rows i and i + 16 of each block of 32 in one step, the column tiles the row kernel, and
    lines with maxima on both sides of those bounds, side by side, equal the 1-D call bit for
    bit: lengths with a last block of 0, 8, 18 and 19 rows (a first half with and without a
    partner for each lane), ties at the max, and -inf entries."""
    rng = np.random.default_rng(n)
    width = 512
    ln_n = np.log(n)
    tops = np.concatenate(
        [
            2 * ln_n + rng.uniform(0.0, 0.5, 192),
            -3 * ln_n - rng.uniform(0.0, 0.5, 192),
            np.linspace(-3.5 * ln_n, 2.5 * ln_n, width - 2 * 192),
        ]
    )
    x = (tops - rng.exponential(2.0, (n, width))).astype(np.float32)
    x[rng.integers(0, n, (3, width)), np.arange(width)] = tops.astype(np.float32)
    x[::97, 5] = -np.inf
    expected = np.stack([log_softmax(np.ascontiguousarray(x[:, c])) for c in range(width)], 1)
    if layout == "strips":
        got = log_softmax(x, axis=0)
    elif layout == "transposed":  # Fortran-ordered rows and result: the strips as well
        result = log_softmax(x.T, axis=1)
        assert result.flags.f_contiguous
        got = result.T
    elif layout == "column tiles":  # a NaN column sends the whole strip to the tiles
        with_nan = np.concatenate([np.full((n, 1), np.nan, np.float32), x], axis=1)
        got = log_softmax(with_nan, axis=0)
        assert np.isnan(got[:, 0]).all()
        got = got[:, 1:]
    else:
        got = log_softmax(np.ascontiguousarray(x.T), axis=1).T
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("step", [2, 3, 4, 5, -1, -2])
def test_strided_rows_match_contiguous(dtype, step):
    """Rows with a stride of their own (`x[:, ::step]`, gathered per stride) equal the call on
    a contiguous copy, bit for bit, and write through a strided `out` the same way."""
    rng = np.random.default_rng(11)
    base = (rng.standard_normal((37, 300)) * 30).astype(dtype)
    x = base[:, ::step]
    dense = np.ascontiguousarray(x)
    for fn in (softmax, log_softmax, logsumexp):
        np.testing.assert_array_equal(fn(x, axis=-1), fn(dense, axis=-1))
    out_base = np.full((37, 300), 7.0, dtype)
    out = out_base[:, ::step]
    softmax(x, axis=-1, out=out)
    np.testing.assert_array_equal(out, softmax(dense, axis=-1))
    untouched = np.ones(out_base.shape, bool)
    untouched[:, ::step] = False
    assert np.all(out_base[untouched] == 7.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(300, 1000), (40, 3000), (1000, 17), (2, 5000)], ids=str)
def test_fortran_rows_match_c_rows(dtype, shape):
    """The last axis of a Fortran-ordered array (or of a transposed C array): its rows are
    adjacent in memory, so they go to the column kernels, and the results are Fortran-ordered
    as SciPy's are. They equal the call on a C-ordered copy bit for bit (the layouts decide
    per line alike), for every function, with and without out=, in place, on 1 and 2 threads."""
    rng = np.random.default_rng(17)
    dense = (rng.standard_normal(shape) * 20 + rng.uniform(-30, 30, (shape[0], 1))).astype(dtype)
    dense[0, :7] = -np.inf
    x = np.asfortranarray(dense)
    threads = smoothmax.get_num_threads()
    try:
        for t in (1, 2):
            smoothmax.set_num_threads(t)
            lse = logsumexp(x, axis=-1)
            np.testing.assert_array_equal(lse, logsumexp(dense, axis=-1))
            np.testing.assert_array_equal(logsumexp(dense.T, axis=0), lse)
            for fn in (softmax, log_softmax):
                expected = fn(dense, axis=-1)
                got = fn(x, axis=-1)
                assert got.flags.f_contiguous
                np.testing.assert_array_equal(got, expected)
                out = np.empty_like(x)  # Fortran order, as x
                assert fn(x, axis=-1, out=out) is out
                np.testing.assert_array_equal(out, expected)
                out_c = np.empty(shape, dtype)
                fn(x, axis=-1, out=out_c)
                np.testing.assert_array_equal(out_c, expected)
                inplace = x.copy(order="F")
                fn(inplace, axis=-1, out=inplace)
                np.testing.assert_array_equal(inplace, expected)
                np.testing.assert_array_equal(fn(dense.T, axis=0), expected.T)
    finally:
        smoothmax.set_num_threads(threads)


def test_results_are_ordered_as_scipy_orders_them():
    """A new result is Fortran-ordered for a Fortran-ordered input and C-ordered otherwise,
    as SciPy's results are, on the fast path and the general one (float16, tuple axes, a
    temperature, weights)."""
    scipy_special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(3)
    inputs = [
        np.asfortranarray(rng.random((5, 7))),
        np.asfortranarray(rng.random((5, 7, 3)).astype(np.float32)),
        np.asfortranarray(rng.random((6, 4)).astype(np.float16)),
        rng.random((5, 7)),
        rng.random((5, 7))[:, ::2],
    ]
    for x in inputs:
        for ours, theirs in (
            (softmax, scipy_special.softmax),
            (log_softmax, scipy_special.log_softmax),
            (logsumexp, scipy_special.logsumexp),
        ):
            for axis in (0, 1, -1, (0, 1), None):
                got, want = np.asarray(ours(x, axis=axis)), np.asarray(theirs(x, axis=axis))
                flags = (got.flags.c_contiguous, got.flags.f_contiguous)
                assert flags == (want.flags.c_contiguous, want.flags.f_contiguous), (
                    ours.__name__,
                    x.shape,
                    x.dtype,
                    axis,
                )
    x = np.asfortranarray(rng.random((5, 7, 3)))
    assert softmax(x, axis=1, temperature=0.5).flags.f_contiguous
    assert scipy_special.logsumexp(x, axis=1, b=0.5).flags.f_contiguous
    assert logsumexp(x, axis=1, b=0.5).flags.f_contiguous


def test_threads_setting_roundtrip():
    """Sanity for the public thread API used by the properties above."""
    n = smoothmax.get_num_threads()
    assert isinstance(n, int) and n >= 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [64, 1000, 4099, 40000])
def test_max_pass_tells_nan_from_infinities(dtype, n):
    """The max pass finds NaN entries through a plain sum per lane, which +inf and -inf (or an
    overflow and -inf) in one lane also make NaN: such rows are then searched for NaN entry by
    entry. They match the same rows with -inf replaced by a finite far entry (equal weights),
    and a NaN anywhere, among infinities too, still gives NaN."""
    rng = np.random.default_rng(29)
    base = rng.standard_normal(n) * 10
    far = np.finfo(dtype).min / 4  # finite, and as good as -inf for every weight
    big = np.finfo(dtype).max / 2  # two in one lane overflow
    for at in (3, n // 2, n - 1):  # the first chunk, the body, the tail
        for top in (np.inf, big):
            x = base.copy()
            x[at] = top
            x[at - 16 if at >= 16 else at + 16] = top
            x[at - 32 if at >= 32 else at + 32] = -np.inf  # same lane (16 virtual lanes)
            x = x.astype(dtype)
            finite = np.where(np.isneginf(x), far, x).astype(dtype)
            for fn in (softmax, logsumexp):
                np.testing.assert_array_equal(fn(x), fn(finite), err_msg=f"{fn.__name__} {at}")
            assert not np.isnan(logsumexp(x)), at
            with_nan = x.copy()
            with_nan[(at + 7) % n] = np.nan
            assert np.isnan(logsumexp(with_nan)), at
            assert np.isnan(softmax(with_nan)).all(), at
            assert np.isnan(log_softmax(with_nan)).all(), at

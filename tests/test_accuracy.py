"""Accuracy against exact references (mpmath at 50 digits; long double for long rows).

Runs on the active SIMD path; ``test_isa_parity.py`` shows every other path is bit-identical.
Every test records the largest error it saw (``record_property("max_ulp", ...)``) and the
session summary prints a table of them (see ``conftest.pytest_terminal_summary``).
"""

from __future__ import annotations

import numpy as np
import pytest
import reference
from reference import (
    HAVE_EXTENDED_LD,
    Exact,
    adversarial_rows,
    ld_log_softmax,
    ld_logsumexp,
    ld_softmax,
    ld_softmax_temperature,
    mp_exp,
    mp_log_softmax,
    mp_lse,
    mp_lse_value,
    mp_rows,
    mp_softmax,
    random_rows,
    record_max,
    ulp_error,
    worst,
)

import smoothmax
from smoothmax import _core

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
DTYPES = [F32, F64]
FUNCS = {
    "softmax": smoothmax.softmax,
    "log_softmax": smoothmax.log_softmax,
    "logsumexp": smoothmax.logsumexp,
}
MP_REF = {"softmax": mp_softmax, "log_softmax": mp_log_softmax, "logsumexp": mp_lse_value}
LD_REF = {"softmax": ld_softmax, "log_softmax": ld_log_softmax, "logsumexp": ld_logsumexp}

needs_ld = pytest.mark.skipif(not HAVE_EXTENDED_LD, reason="needs 80-bit long double")


@pytest.fixture(autouse=True)
def _flag_known_bugs(request):
    """Let the ULP table tell results of known-bug (xfail) tests from the rest."""
    reference.CURRENT_KNOWN_BUG = request.node.get_closest_marker("xfail") is not None
    yield
    reference.CURRENT_KNOWN_BUG = False


def P(*values, bug: str | None = None):
    """A parameter set, strictly expected to fail when ``bug`` names a known library bug."""
    marks = [pytest.mark.xfail(reason=bug, strict=True)] if bug else []
    return pytest.param(*values, marks=marks)


def _check(record_property, tolerance, name, dtype, got, exact: Exact, x, label, *, lse_rows=None):
    """Assert ``got`` is within the contract of ``exact``; record the largest error.

    ``lse_rows``: for logsumexp, the rows whose maxima bound the result (``x`` as rows unless
    given); results that are near 0 by cancellation (``|m| + log1p(s) > 2|lse|``) are held to
    the absolute bound ``2^-p (1 + |max|)`` instead of a ULP bound and left out of the reported
    ULP maximum.
    """
    if name == "logsumexp" and lse_rows is None:
        lse_rows = np.atleast_2d(x)
    tol = tolerance[(name, dtype)]
    err = ulp_error(got, exact, dtype)
    if lse_rows is not None:
        rows = np.asarray(lse_rows, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            m = np.max(rows, axis=-1)
            m = np.where(np.isfinite(m), m, 0.0)
            ill = (np.abs(m) + np.abs(exact.hi - m)) > 2 * np.abs(exact.hi)
        p = np.finfo(dtype).nmant + 1
        abs_err = np.abs((np.asarray(got, np.float64) - exact.hi) - exact.residual())
        bad_abs = ill & ~(abs_err <= 2.0**-p * (1 + np.abs(m)))
        assert not bad_abs.any(), (
            f"{name} {dtype} {label}: cancellation case beyond 2^-{p}(1+|max|): "
            f"rows {np.flatnonzero(bad_abs)[:5]}, got {np.asarray(got)[bad_abs][:5]}, "
            f"exact {exact.hi[bad_abs][:5]}"
        )
        err = np.where(ill, 0.0, err)
    mx = float(err.max()) if err.size else 0.0
    record_max(name, dtype, mx, label)
    record_property("max_ulp", mx)
    print(f"\n[accuracy] {name:<11} {dtype.name:<7} {label:<28} max {mx:.3f} ulp (tol {tol})")
    assert mx <= tol, f"{name} {dtype} {label}: {worst(got, exact, x, dtype)}"


# --------------------------------------------------------------------------- mpmath corpora

SCALES = [1.0, 10.0, 100.0, 1e4]


RANDOM_BUGS: dict = {}  # (name, dtype, scale) -> reason, for known bugs


@pytest.mark.parametrize(
    ("name", "dtype", "scale"),
    [P(n, d, sc, bug=RANDOM_BUGS.get((n, d, sc))) for n in FUNCS for d in DTYPES for sc in SCALES],
    ids=str,
)
def test_random_rows_vs_mpmath(name, dtype, scale, tolerance, record_property):
    rng = np.random.default_rng([1, int(scale), dtype.itemsize])
    # A few row lengths, so the tail handling and the lane positions of the max vary.
    for n in (5, 17, 48):
        x = random_rows(dtype, rng, 60, n, scale)
        got = FUNCS[name](x, axis=-1)
        assert got.dtype == dtype
        exact = mp_rows(MP_REF[name], x)
        _check(
            record_property,
            tolerance,
            name,
            dtype,
            got,
            exact,
            x,
            f"N(0,1)*{scale:g} n={n}",
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(FUNCS))
def test_adversarial_rows_vs_mpmath(name, dtype, tolerance, record_property):
    rng = np.random.default_rng([2, dtype.itemsize])
    for i, row in enumerate(adversarial_rows(dtype, rng)):
        got = FUNCS[name](row)
        exact = mp_rows(MP_REF[name], row[None, :])
        got = np.asarray(got).reshape(exact.hi.shape)
        _check(
            record_property,
            tolerance,
            name,
            dtype,
            got,
            exact,
            row,
            f"adversarial #{i}",
        )


@pytest.mark.parametrize(
    ("name", "dtype"),
    [P(n, d) for n in ("log_softmax", "logsumexp") for d in DTYPES],
    ids=str,
)
def test_outputs_near_zero_vs_mpmath(name, dtype, tolerance, record_property):
    """log_softmax at the max (and logsumexp) near 0: ``[0, -40]``, ``[0, -30, -35]`` and
    small terms in every lane position relative to the max (lanes are ``i % 16``)."""
    rows = [
        np.array([0.0, -40.0]),
        np.array([0.0, -30.0, -35.0]),
        np.full(40, -700.0) + np.linspace(0, 1e-3, 40),
    ]
    for n in (2, 16, 17, 33):
        for k_max in sorted({0, n - 1, n // 2}):
            for k_small in sorted({0, (k_max + 16) % n, n - 1} - {k_max}):
                row = np.full(n, -np.inf)
                row[k_max] = 0.0
                row[k_small] = -40.0 if dtype == F64 else -30.0
                rows.append(row)
    for i, row in enumerate(rows):
        x = row.astype(dtype)
        got = np.asarray(FUNCS[name](x)).reshape(-1)
        exact = mp_rows(MP_REF[name], x[None, :]).reshape(-1)
        _check(
            record_property,
            tolerance,
            name,
            dtype,
            got,
            exact,
            x,
            f"near-zero #{i}",
        )


TEMPERATURES = [0.1, 1 / 3, 0.7, 2.5, 1e3]


@pytest.mark.parametrize(
    ("name", "dtype"),
    [P("softmax", F32), P("softmax", F64), P("log_softmax", F32), P("log_softmax", F64)],
    ids=str,
)
def test_temperature_vs_mpmath(name, dtype, tolerance, record_property):
    """``softmax(x, temperature=T)`` equals ``softmax(x / T)`` with x/T exact."""
    rng = np.random.default_rng([3, dtype.itemsize])
    for t in TEMPERATURES:
        x = random_rows(dtype, rng, 30, 24, 10.0)
        got = FUNCS[name](x, axis=-1, temperature=t)
        exact = mp_rows(MP_REF[name], x, temperature=t)
        _check(record_property, tolerance, name, dtype, got, exact, x, f"T={t:.4g}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_logsumexp_weights_vs_mpmath(dtype, tolerance, record_property):
    """Positive weights (well conditioned): same contract as the unweighted logsumexp."""
    rng = np.random.default_rng([4, dtype.itemsize])
    x = random_rows(dtype, rng, 80, 20, 10.0)
    b = rng.uniform(0.01, 5.0, size=x.shape).astype(dtype)
    got = smoothmax.logsumexp(x, axis=-1, b=b)
    exact = Exact.from_mpf([mp_lse(r.tolist(), b=w.tolist())[0] for r, w in zip(x, b, strict=True)])
    # Per-row max of x + log b plays the role of max x in the cancellation test.
    shifted = x.astype(np.float64) + np.log(b.astype(np.float64))
    _check(record_property, tolerance, "logsumexp", dtype, got, exact, x, "b>0", lse_rows=shifted)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_logsumexp_signed_weights_vs_mpmath(dtype, record_property):
    """Mixed-sign weights: sign exact, result within the absolute bound of the cancellation
    (``eps * sum|b exp(x)| / |sum b exp(x)|`` relative to the result's scale)."""
    rng = np.random.default_rng([5, dtype.itemsize])
    x = random_rows(dtype, rng, 60, 12, 3.0)
    b = rng.uniform(-2.0, 3.0, size=x.shape).astype(dtype)
    got, sgn = smoothmax.logsumexp(x, axis=-1, b=b, return_sign=True)
    ref = [mp_lse(r.tolist(), b=w.tolist()) for r, w in zip(x, b, strict=True)]
    ref_abs = [mp_lse(r.tolist(), b=np.abs(w).tolist())[0] for r, w in zip(x, b, strict=True)]
    exact = Exact.from_mpf([v for v, _ in ref])
    np.testing.assert_array_equal(sgn, [s for _, s in ref])
    eps = float(np.finfo(dtype).eps)
    # d log|S| = dS / S; |dS| <= c eps sum|b e^x|  =>  |d lse| <= c eps exp(lse_abs - lse).
    bound = 8 * eps * np.exp(np.array([float(v) for v in ref_abs]) - exact.hi) + eps * np.abs(
        exact.hi
    )
    err = np.abs(got.astype(np.float64) - exact.hi)
    record_property("max_rel_to_bound", float((err / bound).max()))
    assert (err <= bound).all(), worst(got, exact, x, dtype)


# --------------------------------------------------------------------------- long-double corpora


@needs_ld
@pytest.mark.parametrize(
    ("name", "dtype"),
    [P(n, d) for n in FUNCS for d in DTYPES],
    ids=str,
)
def test_long_rows_vs_longdouble(name, dtype, tolerance, record_property):
    rng = np.random.default_rng([6, dtype.itemsize])
    cases = [
        ("N(0,1)*10 n=1000", random_rows(dtype, rng, 40, 1000, 10.0)),
        ("N(0,1)*10 n=1e5", random_rows(dtype, rng, 1, 100_000, 10.0)),
        ("U(-1e4,1e4) n=1000", rng.uniform(-1e4, 1e4, size=(20, 1000)).astype(dtype)),
        ("1e4+N(0,1)*30 n=1000", (1e4 + rng.standard_normal((20, 1000)) * 30).astype(dtype)),
        ("-1e4+N(0,1)*30 n=1000", (-1e4 + rng.standard_normal((20, 1000)) * 30).astype(dtype)),
    ]
    for label, x in cases:
        got = FUNCS[name](x, axis=-1)
        exact = LD_REF[name](x)
        _check(
            record_property,
            tolerance,
            name,
            dtype,
            got,
            exact,
            x,
            label,
        )


@needs_ld
@pytest.mark.parametrize(
    ("name", "dtype"),
    [P(n, d) for n in FUNCS for d in DTYPES],
    ids=str,
)
def test_max_at_every_position_vs_longdouble(name, dtype, isa, tolerance, record_property):
    """A unique maximum at each position of a row of two float32 blocks (32 entries each; four
    float64 chunks) and a tail: the max pass keeps one maximum per vector of a block and folds
    them into the virtual lanes at the end, so every position must reach the row's maximum.
    The others sit 0.5 to 4 below it, so that every output depends on ``m`` to the last bit."""
    rng = np.random.default_rng([8, dtype.itemsize])
    n = 71
    x = (rng.uniform(-4.0, -0.5, size=(n, n)) + 3.0).astype(dtype)
    x[np.arange(n), np.arange(n)] = 3.0
    got = FUNCS[name](x, axis=-1)
    _check(
        record_property,
        tolerance,
        name,
        dtype,
        got,
        LD_REF[name](x),
        x,
        f"max at each of {n} ({isa})",
    )


@needs_ld
@pytest.mark.parametrize("dtype", [P(F32), P(F64)], ids=str)
def test_softmax_temperature_long_rows_vs_longdouble(dtype, tolerance, record_property):
    rng = np.random.default_rng([7, dtype.itemsize])
    x = random_rows(dtype, rng, 10, 1000, 3.0)
    for t in (0.3, 3.0):
        got = smoothmax.softmax(x, axis=-1, temperature=t)
        _check(
            record_property,
            tolerance,
            "softmax",
            dtype,
            got,
            ld_softmax_temperature(x, t),
            x,
            f"T={t} n=1000",
        )


@needs_ld
@pytest.mark.parametrize("dtype", [P(F32), P(F64)], ids=str)
def test_axis0_and_strided_layouts_vs_longdouble(dtype, tolerance, record_property):
    """Accuracy does not depend on the memory layout (inner > 1 path, strided, reversed)."""
    rng = np.random.default_rng([8, dtype.itemsize])
    x = random_rows(dtype, rng, 300, 64, 10.0)
    for label, view, axis in [
        ("axis=0", x, 0),
        ("reversed", x[::-1, ::-1], 1),
        ("strided", x[::3, ::2], 1),
        ("fortran", np.asfortranarray(x), 1),
    ]:
        moved = np.moveaxis(view, axis, -1)
        for name in ("softmax", "log_softmax"):
            got = np.moveaxis(FUNCS[name](view, axis=axis), axis, -1)
            _check(
                record_property,
                tolerance,
                name,
                dtype,
                got,
                LD_REF[name](moved),
                moved,
                f"layout {label}",
            )
        got = smoothmax.logsumexp(view, axis=axis)
        _check(
            record_property,
            tolerance,
            "logsumexp",
            dtype,
            got,
            ld_logsumexp(moved),
            moved,
            f"layout {label}",
        )


# --------------------------------------------------------------------------- exp kernel


def _bit_uniform(rng, dtype, lo: float, hi: float, n: int) -> np.ndarray:
    """Samples uniform over the bit patterns of [lo, 0] and [0, hi] (half each)."""
    it = np.int64 if dtype == F64 else np.int32
    top_pos = np.array(hi, dtype=dtype).view(it)
    top_neg = np.array(-lo, dtype=dtype).view(it)
    pos = rng.integers(0, int(top_pos), size=n // 2, endpoint=True).astype(it).view(dtype)
    neg = -rng.integers(0, int(top_neg), size=n - n // 2, endpoint=True).astype(it).view(dtype)
    return np.concatenate([pos, neg])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_exp_kernel_vs_mpmath(dtype, tolerance, record_property):
    rng = np.random.default_rng([9, dtype.itemsize])
    if dtype == F64:
        lo, hi = -745.0, 709.0
        sub = rng.uniform(-745.13, -708.4, size=400)  # subnormal results
        extra = [-745.13, -745.0, -744.5, -708.39, -708.4, 709.78, 1e-300, -1e-300, 0.0, -0.0]
    else:
        lo, hi = -103.9, 88.7
        sub = rng.uniform(-103.97, -87.3, size=400)
        extra = [-103.97, -103.0, -87.33, 88.72, 1e-40, -1e-40, 0.0]
    x = np.concatenate([_bit_uniform(rng, dtype, lo, hi, 3000), sub, extra]).astype(dtype)
    out = np.empty_like(x)
    _core.exp_1d(x, out)
    exact = mp_exp(x)
    _check(record_property, tolerance, "exp", dtype, out, exact, x, "bit-uniform + subnormal")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_exp_kernel_special_values(dtype):
    x = np.array([np.nan, np.inf, -np.inf, 1e5, -1e5, 0.0], dtype=dtype)
    out = np.empty_like(x)
    _core.exp_1d(x, out)
    np.testing.assert_array_equal(out, [np.nan, np.inf, 0.0, np.inf, 0.0, 1.0])


# --------------------------------------------------------------------------- slow sweeps


@pytest.mark.slow
@needs_ld
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(FUNCS))
def test_million_row_vs_longdouble(name, dtype, tolerance, record_property):
    rng = np.random.default_rng([10, dtype.itemsize])
    x = random_rows(dtype, rng, 1, 1_000_000, 10.0)
    got = FUNCS[name](x, axis=-1)
    _check(
        record_property,
        tolerance,
        name,
        dtype,
        got,
        LD_REF[name](x),
        x,
        "n=1e6",
    )


BIG_BUGS: dict = {}  # (name, dtype) -> reason, for known bugs


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "dtype"),
    [P(n, d, bug=BIG_BUGS.get((n, d))) for n in FUNCS for d in DTYPES],
    ids=str,
)
def test_big_mpmath_corpus(name, dtype, tolerance, record_property):
    rng = np.random.default_rng([11, dtype.itemsize])
    for scale in (0.1, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1e4):
        for n in (2, 3, 8, 16, 17, 31, 64):
            x = random_rows(dtype, rng, 150, n, scale)
            got = FUNCS[name](x, axis=-1)
            _check(
                record_property,
                tolerance,
                name,
                dtype,
                got,
                mp_rows(MP_REF[name], x),
                x,
                f"slow N(0,1)*{scale:g} n={n}",
            )


@pytest.mark.slow
def test_exp_kernel_f32_dense(tolerance, record_property):
    """Every 97th float32 in the non-trivial range vs the float64 rounding of mpmath."""
    bits = np.arange(0, 2**32, 97, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[np.isfinite(x) & (x > -104) & (x < 88.8)]
    out = np.empty_like(x)
    _core.exp_1d(x, out)
    # exp in long double rounded to float64 then float32: double rounding only at exact ties.
    exact = Exact.from_longdouble(np.exp(x.astype(np.longdouble)))
    _check(record_property, tolerance, "exp", F32, out, exact, x, "dense f32 sweep")


# --------------------------------------------------------------------------- regressions


@pytest.mark.parametrize("name", ["logsumexp", "log_softmax"])
def test_regression_f32_small_term_in_max_lane(name):
    x = np.full(17, -np.inf, dtype=np.float32)
    x[0], x[16] = -40.0, 0.0  # same virtual lane (0 and 16); exact lse = e^-40 = 4.248e-18
    exact = np.float32(4.248354255291589e-18)
    if name == "logsumexp":
        assert smoothmax.logsumexp(x) == exact
    else:
        assert smoothmax.log_softmax(x)[16] == -exact


def test_regression_f64_softmax_inexact_shift():
    # x - max = -552.77... is not a double; exact softmax[0] from mpmath.
    x = np.array([-341.6674164851058, 211.11033730985696])
    exact = Exact.from_mpf(mp_softmax(x.tolist()))
    assert ulp_error(smoothmax.softmax(x), exact).max() <= 4


#: Maxima around the shifted passes' range limits (float32: |max| <= 65536, float64: 2^30;
#: beyond them the generic path), and offsets from the max across each clamp (float32 entries
#: ~132 below the max contribute 0; float64 ~708 below, where softmax outputs are subnormal).
SHIFT_EDGES = {
    F32: ([0.0, -3.5, 40.0, 65536.0, -65536.0, 65540.0, -1e6], [0, -1, -87, -104, -131, -133]),
    F64: (
        [0.0, -3.5, 700.0, 2.0**30, -(2.0**30), 2.0**30 + 64, -1e12],
        [0, -1, -300, -700, -708.3, -720, -744.5, -745.2, -760, -800],
    ),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(FUNCS))
def test_shifted_path_edges_vs_mpmath(name, dtype, tolerance, record_property):
    """Rows at both sides of the range limit of the shifted passes, with entries across the
    clamp (including subnormal float64 softmax outputs), in rows (the row kernels) and as
    columns of a (n, 20) array (the column tiles)."""
    maxima, offsets = SHIFT_EDGES[dtype]
    rows = []
    for m in maxima:
        row = (np.float64(m) + np.array(offsets, dtype=np.float64)).astype(dtype)
        rows.append(row)
        rows.append(row[::-1].copy())
    x = np.stack(rows)
    exact = mp_rows(MP_REF[name], x)
    _check(
        record_property,
        tolerance,
        name,
        dtype,
        FUNCS[name](x, axis=-1),
        exact,
        x,
        "shift edges, rows",
    )
    cols = np.ascontiguousarray(x.T)
    got = FUNCS[name](cols, axis=0)
    got = got.T if name != "logsumexp" else got
    _check(
        record_property,
        tolerance,
        name,
        dtype,
        got,
        exact,
        x,
        "shift edges, columns",
    )


#: logsumexp sums rounded terms when |lse| ≥ this is certain (``rows32`` / ``rows64``), and
#: float32 rows of at least 128 sum them in f32 runs first from 8 on (``rows32::run_lse``).
FAST_LSE_MIN = {F32: 2.0, F64: 4.0}
RUN_LSE_MIN, RUN_MIN_LEN = 8.0, 128


@pytest.mark.parametrize(
    ("dtype", "tier"), [(F32, "rounded"), (F32, "f32 runs"), (F64, "rounded")], ids=str
)
def test_logsumexp_fast_sum_threshold_vs_mpmath(dtype, tier, tolerance, record_property):
    """logsumexp of rows whose result is certain to be at least 2 (float32) or 4 (float64) in
    magnitude sums rounded terms, and float32 rows of at least 128 entries certain to be at
    least 8 sum them in f32 runs before f64 (up to 6.5u relative); at those bounds the sums'
    error is largest relative to the result's ULP. Rows with maxima just above and below ``T``
    and with ``m + log n`` just below and above ``-T``, all entries within 1 of the max
    (condition number ~1, so the ULP bound applies without the cancellation allowance). The
    f32 runs' terms are biased by ``j·2⁻²⁸·⁹⁷`` for an entry ``j`` octaves below the max
    (``rows32::run_terms``), most over the sum with the other entries ``~log₂ n − 2`` octaves
    below: rows of that kind too."""
    rng = np.random.default_rng([17, dtype.itemsize, len(tier)])
    t = FAST_LSE_MIN[dtype] if tier == "rounded" else RUN_LSE_MIN
    lengths = (2, 5, 17, 100, 1000) if tier == "rounded" else (RUN_MIN_LEN, 129, 1000, 4099)
    rows = []
    for n in lengths:
        below = [(0.0, 1.0)]
        if tier == "f32 runs":
            below.append(((np.log2(n) - 2.5) * np.log(2), 0.3))
        for delta in (-0.02, -1e-3, 0.0, 1e-3, 0.02, 0.3):
            for top in (t + delta, -t - np.log(n) - delta):
                for depth, spread in below:
                    for _ in range(3):
                        row = top - depth - rng.uniform(0.0, spread, n)
                        row[rng.integers(n)] = top
                        rows.append(row.astype(dtype))
    for i, x in enumerate(rows):
        got = np.asarray(smoothmax.logsumexp(x)).reshape(1)
        exact = mp_rows(mp_lse_value, x[None, :]).reshape(-1)
        err = float(ulp_error(got, exact, dtype).max())
        record_max("logsumexp", dtype, err, f"{tier} threshold #{i}")
        record_property("max_ulp", err)
        assert err <= tolerance[("logsumexp", dtype)], (i, x.size, x.max(), got, exact.hi)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n", [2, 17, 20_000])
def test_confident_rows_log_softmax_at_max(dtype, n, tolerance, record_property):
    """One large logit and n − 1 equal small ones: log_softmax at the max is
    ``-log1p((n-1) e^{-d})``, far below ulp(max), so every other term must be summed to full
    relative accuracy (float64: terms below 2⁻⁵¹ of the max go to the low part of the sums)."""
    import mpmath

    d = 40.0 if dtype == F64 else 20.0
    x = np.zeros(n, dtype=dtype)
    x[n // 3] = d
    got = smoothmax.log_softmax(x)[n // 3]
    exact = Exact.from_mpf([-mpmath.log1p((n - 1) * mpmath.exp(-mpmath.mpf(d)))])
    err = float(ulp_error(np.array([got]), exact, dtype).max())
    record_max("log_softmax", dtype, err, f"confident n={n}")
    record_property("max_ulp", err)
    assert err <= tolerance[("log_softmax", dtype)], (got, exact.hi)


@pytest.mark.parametrize("n", [256, 1000, 4099])
def test_paired_float32_log_softmax_rows(n, tolerance, record_property):
    """float32 log_softmax rows that sum their terms in pairs (at least 256 entries, max at
    least 2 ln n or at most -3 ln n; `rows32::paired_log_softmax`), at the tier's edges and
    with `log S` from near 0 to near ln n (entries spread below the max by 1e-3 to 20, ties
    at the max, one far max, N(0, 1) bodies), every output against long double."""
    rng = np.random.default_rng(n)
    ln_n = float(np.log(n))
    tops = [
        float(np.nextafter(np.float32(2 * ln_n), np.float32(np.inf))),
        2 * ln_n + 7.3,
        40.0,
        float(np.nextafter(np.float32(-3 * ln_n), np.float32(-np.inf))),
        -300.0,
    ]
    rows = []
    for top in tops:
        for spread in (1e-3, 0.5, 3.0, 20.0):
            row = top - rng.uniform(0.0, spread, n)
            row[rng.integers(n)] = top
            rows.append(row)
        ties = top - rng.uniform(0.0, 2.0, n)
        ties[rng.choice(n, 5, replace=False)] = top
        rows.append(ties)
        far = top - 30.0 - rng.uniform(0.0, 5.0, n)
        far[0] = top
        rows.append(far)
        body = rng.standard_normal(n)
        rows.append(body - body.max() + top)
    worst = 0.0
    for i, row in enumerate(rows):
        x = row.astype(F32)
        m = float(x.max())
        assert m >= 2 * ln_n or m <= -3 * ln_n, m
        got = np.asarray(smoothmax.log_softmax(x))
        err = float(ulp_error(got, ld_log_softmax(x), F32).max())
        worst = max(worst, err)
        assert err <= tolerance[("log_softmax", F32)], (i, m, err)
    record_max("log_softmax", F32, worst, f"paired n={n}")
    record_property("max_ulp", worst)

"""Reference implementations and ULP helpers for the accuracy tests.

Two references:

* **mpmath** (``mp.dps = 50``), exact to far below any float64 ULP; slow, so used on small corpora.
  Inputs are converted exactly (``mpf(float(v))``; every float32/float64 is a float64).
* **np.longdouble** (80-bit extended on x86, 64-bit significand): ``x - max`` is carried as an
  exact TwoSum pair, ``exp``/``log1p`` are the C library's long-double functions (~2^-63), and
  sums are NumPy's pairwise sums. Good to a small fraction of a float64 ULP; used for long rows.

ULP error of ``got`` against an exact value ``e`` for a target dtype: ``|got - e| / ulp(round(e))``
where ``ulp`` is ``np.spacing`` of the correctly rounded value in that dtype (the smallest
subnormal for 0). Exact values are stored as double-double pairs ``(hi, lo)`` so the error is
computed vectorised in float64 without losing the sub-ULP part.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import mpmath
import numpy as np

mpmath.mp.dps = 50
mpf = mpmath.mpf

LD = np.longdouble
HAVE_EXTENDED_LD = np.finfo(np.longdouble).nmant >= 63


# --------------------------------------------------------------------------- exact values


#: Below this magnitude residuals are stored scaled by 2**_SHIFT (they would underflow).
_TINY = 2.0**-900
_SHIFT = 600


class Exact:
    """Exact values as ``hi + lo * 2**-shift`` (``hi`` = float64 rounding), vectorised.

    ``shift`` is ``_SHIFT`` where ``|hi| < _TINY`` (so that the residual of a subnormal or tiny
    value is still a normal float64) and 0 elsewhere.
    """

    def __init__(self, hi: np.ndarray, lo: np.ndarray, shift: np.ndarray | None = None):
        self.hi = np.asarray(hi, dtype=np.float64)
        self.lo = np.asarray(lo, dtype=np.float64)
        self.shift = (
            np.zeros(self.hi.shape, dtype=np.int64)
            if shift is None
            else np.asarray(shift, dtype=np.int64)
        )

    @classmethod
    def from_mpf(cls, values: Iterable) -> Exact:
        vals = list(values)
        hi = np.empty(len(vals))
        lo = np.empty(len(vals))
        shift = np.zeros(len(vals), dtype=np.int64)
        for i, v in enumerate(vals):
            if mpmath.isnan(v):
                hi[i], lo[i] = np.nan, 0.0
            elif mpmath.isinf(v):
                hi[i], lo[i] = float(v), 0.0
            else:
                h = float(v)  # mpmath rounds to nearest
                hi[i] = h
                if not np.isfinite(h):
                    lo[i] = 0.0
                    continue
                if abs(h) < _TINY:
                    shift[i] = _SHIFT
                lo[i] = float(mpmath.ldexp(v - mpf(h), int(shift[i])))
        return cls(hi, lo, shift)

    @classmethod
    def from_longdouble(cls, v: np.ndarray) -> Exact:
        v = np.asarray(v, dtype=LD)
        with np.errstate(invalid="ignore", over="ignore", under="ignore"):
            hi = v.astype(np.float64)
            shift = np.where(np.abs(hi) < _TINY, _SHIFT, 0).astype(np.int64)
            res = np.ldexp(v - hi.astype(LD), shift.astype(np.int32))
            lo = np.where(np.isfinite(hi), res.astype(np.float64), 0.0)
        return cls(hi, lo, shift)

    def reshape(self, shape) -> Exact:
        return Exact(self.hi.reshape(shape), self.lo.reshape(shape), self.shift.reshape(shape))

    def residual(self) -> np.ndarray:
        """``lo * 2**-shift`` as float64 (may underflow; fine for absolute-error bounds)."""
        with np.errstate(under="ignore"):
            return np.ldexp(self.lo, -self.shift.astype(np.int32))


def rounded(exact: Exact, dtype) -> np.ndarray:
    """The exact values rounded to ``dtype`` (double rounding via float64 is harmless for ULPs)."""
    with np.errstate(over="ignore"):
        return exact.hi.astype(dtype)


def ulp_of(exact: Exact, dtype) -> np.ndarray:
    """``ulp(round(exact))`` in ``dtype``, as float64."""
    r = np.abs(rounded(exact, dtype))
    with np.errstate(over="ignore"):
        return np.spacing(r).astype(np.float64)


def ulp_error(got: np.ndarray, exact: Exact, dtype=None) -> np.ndarray:
    """Elementwise ``|got - exact| / ulp(exact rounded to dtype)``.

    Special values: equal infinities / both NaN / both exactly 0 give 0; any other mismatch of
    non-finite values gives ``inf``.
    """
    got = np.asarray(got)
    dtype = np.dtype(dtype if dtype is not None else got.dtype)
    g = got.astype(np.float64)
    hi, lo, shift = np.broadcast_arrays(exact.hi, exact.lo, exact.shift)
    sh = shift.astype(np.int32)
    with np.errstate(invalid="ignore", over="ignore"):
        # g - hi is exact when g and hi are close; scaling by 2**shift is exact for tiny values
        diff = np.abs(np.ldexp(g - hi, sh) - lo)
        err = diff / np.ldexp(ulp_of(Exact(hi, lo, shift), dtype), sh)
    r = rounded(Exact(hi, lo), dtype).astype(np.float64)  # exact value rounded to dtype
    special = ~np.isfinite(g) | ~np.isfinite(r)
    same_special = (np.isnan(g) & np.isnan(r)) | (g == r)
    err = np.where(special, np.where(same_special, 0.0, np.inf), err)
    return err


def max_ulp(got, exact: Exact, dtype=None) -> float:
    e = ulp_error(got, exact, dtype)
    return float(e.max()) if e.size else 0.0


def worst(got, exact: Exact, x=None, dtype=None) -> str:
    """Description of the worst element, for assertion messages."""
    e = ulp_error(got, exact, dtype)
    if e.size == 0:
        return "empty"
    i = np.unravel_index(int(np.argmax(e)), e.shape)
    msg = f"max {e[i]:.3f} ulp at {i}: got {np.asarray(got)[i]!r}, exact {exact.hi[i]!r}"
    if x is not None:
        row = np.asarray(x)[i[:-1]] if np.ndim(x) > 1 else np.asarray(x)
        msg += f"\nrow = {np.array2string(row, precision=17, threshold=40)}"
    return msg


#: Largest error seen per (function, dtype name, affected by a known bug): ``(max_ulp, label)``;
#: printed at the end of the session by ``conftest.pytest_terminal_summary``.
MEASURED: dict[tuple[str, str, bool], tuple[float, str]] = {}
#: Set by test_accuracy's autouse fixture: whether the running test is an expected failure.
CURRENT_KNOWN_BUG = False


def record_max(name: str, dtype, value: float, label: str) -> None:
    key = (name, np.dtype(dtype).name, CURRENT_KNOWN_BUG)
    if key not in MEASURED or value > MEASURED[key][0]:
        MEASURED[key] = (value, label)


# --------------------------------------------------------------------------- mpmath references


def _mp(row: Sequence[float], temperature: float = 1.0) -> list:
    t = mpf(float(temperature))
    return [mpf(float(v)) / t for v in row]


def mp_lse(row, b=None, temperature: float = 1.0):
    """``(log|sum b*exp(x/T)|, sign)`` in mpmath; ``-inf`` with sign 0 for an empty/zero sum.

    Computed as ``m + log1p(s - 1)`` around the largest term so that results near 0 keep their
    relative accuracy at any ``mp.dps``. Assumes finite or ``-inf`` inputs (no NaN/+inf).
    """
    xs = _mp(row, temperature)
    ws = [mpf(1)] * len(xs) if b is None else [mpf(float(w)) for w in b]
    terms = [(x, w) for x, w in zip(xs, ws, strict=True) if w != 0 and x != mpmath.ninf]
    if not terms:
        return mpmath.ninf, 0
    k = max(range(len(terms)), key=lambda j: terms[j][0])
    m, wk = terms[k]
    # s = wk + rest;  log|s| = log|wk| + log|1 + rest/wk|, with log1p when 1 + t > 0 so that
    # results near 0 keep their relative accuracy.
    rest = mpmath.fsum(w * mpmath.exp(x - m) for j, (x, w) in enumerate(terms) if j != k)
    t = rest / wk
    if t == -1:
        return mpmath.ninf, 0
    sign = 1 if (wk > 0) == (t > -1) else -1
    log_abs = mpmath.log1p(t) if t > -1 else mpmath.log(-(1 + t))
    return m + mpmath.log(abs(wk)) + log_abs, sign


def _mp_log_softmax_parts(row, temperature: float):
    """``(x_i - m) - log1p(sum_{j != first argmax} exp(x_j - m))`` (exact near 0)."""
    xs = _mp(row, temperature)
    finite = [x for x in xs if x != mpmath.ninf]
    if not finite:
        return [mpmath.ninf] * len(xs)
    m = max(finite)
    k = xs.index(m)
    s1 = mpmath.fsum(mpmath.exp(x - m) for j, x in enumerate(xs) if j != k and x != mpmath.ninf)
    l1 = mpmath.log1p(s1)
    return [(x - m) - l1 if x != mpmath.ninf else mpmath.ninf for x in xs]


def mp_log_softmax(row, temperature: float = 1.0) -> list:
    return _mp_log_softmax_parts(row, temperature)


def mp_softmax(row, temperature: float = 1.0) -> list:
    return [
        mpmath.exp(v) if v != mpmath.ninf else mpf(0)
        for v in _mp_log_softmax_parts(row, temperature)
    ]


def mp_rows(fn, x2d: np.ndarray, **kw) -> Exact:
    """Apply a row-wise mpmath reference to every row of a 2-D array; returns ``Exact``.

    ``fn`` returns a list (normalisations: result shaped like ``x2d``) or one value
    (reductions: one per row).
    """
    out: list = []
    per_row = True
    for row in np.asarray(x2d):
        r = fn(row.tolist(), **kw)
        per_row = isinstance(r, list)
        out.extend(r if per_row else [r])
    shape = x2d.shape if per_row else x2d.shape[:-1]
    return Exact.from_mpf(out).reshape(shape)


def mp_lse_value(row, **kw):
    return mp_lse(row, **kw)[0]


def mp_exp(xs) -> Exact:
    return Exact.from_mpf([mpmath.exp(mpf(float(v))) for v in np.ravel(xs)])


# --------------------------------------------------------------------------- long-double references


def _two_diff(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a - b = s + e`` exactly (Knuth TwoSum) in long double."""
    s = a - b
    bb = s - a
    e = (a - (s - bb)) + (-b - bb)
    return s, e


def _ld_parts(x: np.ndarray, axis: int = -1):
    """For rows of finite/-inf data: ``d + de = x - max`` exactly, ``e = exp(d + de)``,
    ``s1 = sum(e) - 1`` (the first argmax left out) and a mask of non -inf entries."""
    x = np.asarray(x)
    xl = x.astype(LD)
    m = np.max(xl, axis=axis, keepdims=True)
    finite = np.isfinite(xl)
    with np.errstate(invalid="ignore"):
        d, de = _two_diff(np.where(finite, xl, 0), np.where(np.isfinite(m), m, 0))
    d = np.where(finite, d, -np.inf)
    de = np.where(finite, de, 0)
    e = np.exp(d) * (1 + de)
    arg = np.argmax(xl, axis=axis)
    e_wo = e.copy()
    np.put_along_axis(e_wo, np.expand_dims(arg, axis), 0, axis=axis)
    s1 = np.sum(e_wo, axis=axis, keepdims=True)
    return m, d, de, e, s1, finite


def ld_logsumexp(x: np.ndarray, axis: int = -1) -> Exact:
    """logsumexp of rows without NaN/+inf, with at least one finite entry per row."""
    m, _, _, _, s1, _ = _ld_parts(x, axis)
    return Exact.from_longdouble(np.squeeze(m + np.log1p(s1), axis=axis))


def ld_log_softmax(x: np.ndarray, axis: int = -1) -> Exact:
    _, d, de, _, s1, finite = _ld_parts(x, axis)
    return Exact.from_longdouble(np.where(finite, (d - np.log1p(s1)) + de, -np.inf))


def ld_softmax(x: np.ndarray, axis: int = -1) -> Exact:
    _, _, _, e, s1, _ = _ld_parts(x, axis)
    return Exact.from_longdouble(e / (1 + s1))


def ld_softmax_temperature(x: np.ndarray, temperature: float, axis: int = -1) -> Exact:
    """softmax(x / T) with x/T formed in long double (error ~2^-64 |x/T|; keep |x/T| small)."""
    xl = np.asarray(x).astype(LD) / LD(temperature)
    return ld_softmax(xl, axis)


# --------------------------------------------------------------------------- inputs


def adversarial_rows(dtype, rng: np.random.Generator, n: int = 16) -> list[np.ndarray]:
    """Hard rows: ties, one dominant entry, subnormal outputs, huge/tiny magnitudes, -inf."""
    dtype = np.dtype(dtype)
    f64 = dtype == np.float64
    under = 745.0 if f64 else 104.0  # exp(-under) is (near) the subnormal floor
    huge = 1e300 if f64 else 3e38
    tiny = 1e-300 if f64 else 1e-38
    rows = [
        np.zeros(n),  # all ties
        np.r_[np.full(4, 3.0), rng.normal(size=n - 4) - 5],  # ties at the max
        np.r_[50.0, rng.normal(size=n - 1) - 30],  # one dominant entry
        np.r_[0.0, -40.0],  # output near 0 (log_softmax)
        np.r_[0.0, -30.0, -35.0],
        np.r_[0.0, -under + rng.uniform(-2, 8, size=n - 1)],  # subnormal outputs
        np.r_[0.0, -under + 0.5, -under - 0.5, -under + 20],
        np.r_[huge, huge * 0.999, -huge, huge],  # huge magnitudes
        np.r_[-huge, -huge, -huge * 0.5],
        rng.uniform(-1, 1, size=n) * tiny,  # tiny magnitudes
        np.r_[-np.inf, 1.0, -np.inf, 2.0],  # mixtures with -inf
        np.r_[-np.inf, rng.normal(size=n - 1) * 10],
        -1e4 + rng.normal(size=n) * 3,  # large near-equal negatives
        1e4 + rng.normal(size=n) * 3,
        -700.0 + rng.uniform(0, 1e-3, size=n),  # many near-equal large negatives
        np.r_[1.0],
        np.r_[-0.5, -0.6931471805599453, -0.7],  # lse near 0 by cancellation
    ]
    out = []
    for r in rows:
        with np.errstate(over="ignore"):
            out.append(np.asarray(r).astype(dtype))
    return out


def random_rows(dtype, rng: np.random.Generator, n_rows: int, n: int, scale: float) -> np.ndarray:
    return (rng.standard_normal((n_rows, n)) * scale).astype(dtype)

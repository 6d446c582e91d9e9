"""Fit the polynomial of ``rust/src/math/exp32.rs``: ``e^r = 1 + r + r^2 p(r)`` on |r| <= ln2/2.

A near-minimax fit: least squares on Chebyshev nodes, weighted by ``r^2 / e^r`` so that the
error minimised is that of ``e^r`` relative to itself; coefficients rounded to float32, and the
error re-measured in exact arithmetic (mpmath, 40 digits). Run: ``python tools/fit_exp32_poly.py``.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np

mp.mp.dps = 40
HALF_LN2 = mp.log(2) / 2


def target(r: mp.mpf) -> mp.mpf:
    return (mp.exp(r) - 1 - r) / (r * r) if r != 0 else mp.mpf(1) / 2


def fit(degree: int, nodes: int = 200) -> list[np.float32]:
    xs = [HALF_LN2 * mp.cos(mp.pi * (k + 0.5) / nodes) for k in range(nodes)]
    a = mp.matrix(nodes, degree + 1)
    b = mp.matrix(nodes, 1)
    for i, x in enumerate(xs):
        w = x * x / mp.exp(x)
        for j in range(degree + 1):
            a[i, j] = w * x**j
        b[i] = w * target(x)
    sol = mp.lu_solve(a.T * a, a.T * b)
    return [np.float32(float(sol[j])) for j in range(degree + 1)]


def max_relative_error(coeffs: list[np.float32], samples: int = 4001) -> mp.mpf:
    worst = mp.mpf(0)
    for k in range(samples):
        r = -HALF_LN2 + 2 * HALF_LN2 * k / (samples - 1)
        p = sum(mp.mpf(float(c)) * r**j for j, c in enumerate(coeffs))
        worst = max(worst, abs(1 + r + r * r * p - mp.exp(r)) / mp.exp(r))
    return worst


if __name__ == "__main__":
    for degree in (4, 5):
        c = fit(degree)
        err = max_relative_error(c)
        print(f"degree {degree}: {[float(v) for v in c]}  max error 2^{float(mp.log(err, 2)):.1f}")

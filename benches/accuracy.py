"""Measure smoothmax's maximum ULP error per function, dtype and SIMD path.

Reference: extended precision (``np.longdouble``, 64-bit significand on x86) through
``smoothmax._bench``'s reference functions, which the test suite checks against mpmath.
Inputs: random rows ``N(0, 1) * scale`` (scales 1, 10, 100, 1e4; row lengths 10 to 10^5) plus
adversarial rows (ties, one dominant entry, subnormal outputs, outputs near 0).

logsumexp is reported twice: over well-conditioned results (condition number
``κ = |max| / |result| ≤ 2``) in ULP, and over the rest as ULP / κ: near a zero result the
problem itself amplifies the rounding of the inputs' scale by κ, for every algorithm in double.

Run: ``python benches/accuracy.py`` (under a minute); prints a Markdown table.
"""

from __future__ import annotations

import argparse

import numpy as np

import smoothmax
from smoothmax import _core
from smoothmax._bench import (
    max_ulp_error,
    reference_log_softmax,
    reference_logsumexp,
    reference_softmax,
)

SHAPES = [(20000, 10), (4000, 100), (400, 1000), (8, 100_000)]
SCALES = [1.0, 10.0, 100.0, 1e4]


def adversarial(dtype: np.dtype) -> list[np.ndarray]:
    """Rows that stress the shift, the log1p form and the subnormal range."""
    big = 100.0 if dtype == np.float32 else 740.0
    rng = np.random.default_rng(1)
    rows = [
        np.array([0.0, -40.0]),
        np.array([0.0, -30.0, -35.0, -1e3]),
        np.concatenate([[5.0], 5.0 - rng.uniform(20, 30, 999)]),  # outputs near 0 for argmax
        np.concatenate([[0.0], -rng.uniform(big - 10, big, 999)]),  # subnormal softmax outputs
        np.full(1000, 3.25),  # ties
        np.concatenate([np.full(3, 7.0), rng.standard_normal(997)]),  # ties at the max
        rng.standard_normal(1000) * 1e4 + 1e4,
    ]
    return [r.astype(dtype) for r in rows]


def measure(dtype: np.dtype) -> dict[str, float]:
    worst = {"softmax": 0.0, "log_softmax": 0.0, "logsumexp": 0.0, "logsumexp_ill": 0.0}
    rng = np.random.default_rng(0)
    inputs = [
        (rng.standard_normal(shape) * scale).astype(dtype) for shape in SHAPES for scale in SCALES
    ]
    inputs += [r[None, :] for r in adversarial(dtype)]
    for x in inputs:
        worst["softmax"] = max(
            worst["softmax"],
            max_ulp_error(smoothmax.softmax(x, axis=-1), reference_softmax(x, axis=-1)),
        )
        worst["log_softmax"] = max(
            worst["log_softmax"],
            max_ulp_error(smoothmax.log_softmax(x, axis=-1), reference_log_softmax(x, axis=-1)),
        )
        got = smoothmax.logsumexp(x, axis=-1)
        ref = reference_logsumexp(x, axis=-1)
        with np.errstate(divide="ignore"):
            kappa = np.abs(x.max(axis=-1).astype(np.float64)) / np.abs(ref.astype(np.float64))
        well = kappa <= 2.0
        if well.any():
            worst["logsumexp"] = max(worst["logsumexp"], max_ulp_error(got[well], ref[well]))
        for i in np.flatnonzero(~well):
            err = max_ulp_error(got[i : i + 1], ref[i : i + 1]) / kappa[i]
            worst["logsumexp_ill"] = max(worst["logsumexp_ill"], err)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    start = _core.simd_level()
    rows = []
    try:
        for isa in _core.supported_simd():
            _core.force_simd(isa)
            for dtype in (np.float32, np.float64):
                w = measure(np.dtype(dtype))
                rows.append((isa, np.dtype(dtype).name, w))
    finally:
        _core.force_simd(start)
    print("max error in ULP (logsumexp κ > 2: ULP / κ)")
    print()
    print("| SIMD path | dtype | softmax | log_softmax | logsumexp (κ ≤ 2) | logsumexp (κ > 2) |")
    print("|---|---|---:|---:|---:|---:|")
    for isa, dt, w in rows:
        print(
            f"| {isa} | {dt} | {w['softmax']:.2f} | {w['log_softmax']:.2f} "
            f"| {w['logsumexp']:.2f} | {w['logsumexp_ill']:.2f} |"
        )


if __name__ == "__main__":
    main()

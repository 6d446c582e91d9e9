"""Where float32 log_softmax's time goes, pass by pass, against its peers (one thread).

    python benches/probes/log_softmax_parts.py [--rounds N]

log_softmax is three passes over a row: the max, the sum and the write `(x − c_hi) − c_lo`. The
sum is exact (each term split exactly in two, the max entries counted apart: 2 ULP near 0) unless
the row has at least 256 entries and a maximum of at least `2 ln n` or at most `−3 ln n`, where it
adds the rounded terms in float32 pairs (`rows32::paired_log_softmax`, 4 ULP): the `N(0,1)·10`
rows below take the pairs. No public call runs the max pass alone; the others are timed through
public calls that run the same passes:

* `max + exact sum`: smoothmax.logsumexp of the row shifted so that its result lies near 0, which
  takes the same exact-sum pass as log_softmax (`rows32::lse_sum`);
* `max + rounded sum`: smoothmax.logsumexp of the row as is (result ≥ 8: float32 runs of rounded
  terms, `rows32::RunSumOp`);
* `log_softmax` (`out=`) of the row as is (the pairs) and of the row shifted so that its maximum
  is 1 (`log_softmax, exact sums`: the same passes with the exact sum), `softmax` (`out=`), and
  PyTorch's and ONNX Runtime's log_softmax when installed (as `python -m smoothmax bench` calls
  them).

The write pass is `log_softmax, exact sums` less `max + exact sum`. Medians over interleaved rounds
(`smoothmax._bench.time_rounds`). Not part of the library or its tests.
"""

from __future__ import annotations

import argparse

import numpy as np

import smoothmax
from smoothmax._bench import Case, Impl, _load_peers, time_rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    smoothmax.set_num_threads(1)
    rng = np.random.default_rng(0)
    peers, _ = _load_peers()
    peers = [p for p in peers if p.name in ("torch", "onnxruntime") and p.error is None]
    for peer in peers:
        peer.set_threads(1)
    for shape in [(1, 100_000), (256, 1000), (4096, 1000)]:
        x = (rng.standard_normal(shape) * 10).astype(np.float32)
        per_element = parts(x, peers, args.rounds)
        print(f"{shape}, float32 N(0,1)·10: ns per element")
        for name, ns in per_element.items():
            print(f"  {name:24} {ns:.4f}")
        write = per_element["log_softmax, exact sums"] - per_element["max + exact sum"]
        print(f"  {'write pass (difference)':24} {write:.4f}")


def parts(x: np.ndarray, peers: list[Impl], rounds: int) -> dict[str, float]:
    """ns per element of each call on `x`, timed in interleaved rounds."""
    shift = np.logaddexp.reduce(x.astype(np.float64), axis=-1, keepdims=True)
    near_zero = (x - shift).astype(np.float32)
    max_one = (x - x.max(axis=-1, keepdims=True) + 1).astype(np.float32)
    out = np.zeros_like(x)
    calls = {
        "max + exact sum": lambda: smoothmax.logsumexp(near_zero, axis=-1),
        "max + rounded sum": lambda: smoothmax.logsumexp(x, axis=-1),
        "log_softmax": lambda: smoothmax.log_softmax(x, axis=-1, out=out),
        "log_softmax, exact sums": lambda: smoothmax.log_softmax(max_one, axis=-1, out=out),
        "softmax": lambda: smoothmax.softmax(x, axis=-1, out=out),
    }
    case = Case("log_softmax", "float32", x.shape)
    for peer in peers:
        calls[f"{peer.name} log_softmax"] = peer.prepare(case, x)
    for fn in calls.values():
        fn()
    times = time_rounds(list(calls.values()), samples=rounds)
    return {name: ns / x.size for name, ns in zip(calls, times, strict=True)}


if __name__ == "__main__":
    main()

"""The SIMD paths side by side on this CPU: each supported path (``SMOOTHMAX_SIMD``) times the
same calls in its own process, in alternating rounds, and the script prints the best of the
rounds' medians per path and the speed-up of each path over the first.

Run: ``python benches/isa_paths.py [--rounds N] [ROWSxN ...]`` (one thread; float32 softmax
with ``out=``, log_softmax with ``out=`` and logsumexp, float64 softmax with ``out=`` and
logsumexp, on ``N(0, 1)·10`` inputs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CASES = ("softmax32", "log_softmax32", "logsumexp32", "softmax64", "logsumexp64")

TIMER = r"""
import json, sys, time
import numpy as np
import smoothmax as sm

def median_ms(f, calls=31):
    f()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        f()
        samples.append(time.perf_counter() - start)
    return float(np.median(samples)) * 1e3

result = {}
for shape in json.loads(sys.argv[1]):
    rows, n = map(int, shape.split("x"))
    x = (np.random.default_rng(0).standard_normal((rows, n)) * 10).astype(np.float32)
    x64 = x.astype(np.float64)
    out, out64 = np.empty_like(x), np.empty_like(x64)
    calls = {
        "softmax32": lambda: sm.softmax(x, axis=-1, out=out),
        "log_softmax32": lambda: sm.log_softmax(x, axis=-1, out=out),
        "logsumexp32": lambda: sm.logsumexp(x, axis=-1),
        "softmax64": lambda: sm.softmax(x64, axis=-1, out=out64),
        "logsumexp64": lambda: sm.logsumexp(x64, axis=-1),
    }
    result[shape] = {name: median_ms(f) for name, f in calls.items()}
print(json.dumps(result))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shapes", nargs="*", default=["4096x1000", "64x32000", "1x100000"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import smoothmax._core as core

    paths = list(core.supported_simd())
    best: dict[str, dict[str, dict[str, float]]] = {}
    for _ in range(args.rounds):
        for path in paths:
            env = dict(os.environ, SMOOTHMAX_SIMD=path, SMOOTHMAX_NUM_THREADS="1")
            run = subprocess.run(
                [sys.executable, "-c", TIMER, json.dumps(args.shapes)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            for shape, times in json.loads(run.stdout).items():
                mine = best.setdefault(path, {}).setdefault(shape, {})
                for case, ms in times.items():
                    mine[case] = min(ms, mine.get(case, float("inf")))
    first = paths[0]
    for path in paths:
        print(path)
        for shape in args.shapes:
            cells = "  ".join(
                f"{case} {best[path][shape][case]:.3f} ms"
                f" (x{best[first][shape][case] / best[path][shape][case]:.2f})"
                for case in CASES
            )
            print(f"  {shape:>10}  {cells}")


if __name__ == "__main__":
    main()

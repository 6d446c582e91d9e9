"""Speed-up of 2 threads over 1 by input size and dtype: the measurement behind
``smoothmax.threads::PARALLEL_MIN_WORK`` and the per-dtype weights of ``Element::WORK``.

Run: ``OPENBLAS_NUM_THREADS=1 python benches/threads.py [--spaced]`` (repeat it: a shared VM is
noisy). Prints, per dtype and element count, ``time(1 thread) / time(2 threads)`` for softmax
with ``out=`` on rows of 1024 elements. One- and two-thread calls alternate in rounds (median
per round, median over rounds), so load from other processes hits both alike.

Calls made back to back find the pool's threads still awake. ``--spaced`` sleeps 2 ms before
each timed call instead, so the helpers have gone back to sleep: the case where starting work
on a second thread costs most. To see where two threads start to pay below the current
threshold, build with a smaller ``PARALLEL_MIN_WORK`` first (calls below it run on one thread
whatever the setting, and print ``x1.00``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import smoothmax as sm

ROW = 1024
ROWS = (8, 16, 32, 64, 128, 256, 1024, 4096)


def median_time(f, spaced: bool, calls: int = 15) -> float:
    f()
    samples = []
    for _ in range(calls):
        if spaced:
            time.sleep(0.002)
        t0 = time.perf_counter()
        f()
        samples.append(time.perf_counter() - t0)
    return float(np.median(samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaced", action="store_true", help="sleep 2 ms before each call")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    initial = sm.get_num_threads()
    try:
        for dtype in (np.float32, np.float64):
            cells = []
            for rows in ROWS:
                x = (np.random.default_rng(0).standard_normal((rows, ROW)) * 10).astype(dtype)
                out = np.empty_like(x)
                times: dict[int, list[float]] = {1: [], 2: []}
                for _ in range(args.rounds):
                    for threads in (1, 2):
                        sm.set_num_threads(threads)
                        call = lambda x=x, out=out: sm.softmax(x, axis=-1, out=out)  # noqa: E731
                        times[threads].append(median_time(call, args.spaced))
                one, two = (float(np.median(times[t])) for t in (1, 2))
                cells.append(f"{x.size:>8} ({one * 1e6:.0f} µs): x{one / two:.2f}")
            print(np.dtype(dtype).name, "  ".join(cells))
    finally:
        sm.set_num_threads(initial)


if __name__ == "__main__":
    main()

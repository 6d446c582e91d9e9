"""Speed-up of 2 threads over 1 by input size: the measurement behind
``smoothmax.threads::PARALLEL_MIN_ELEMENTS``.

Run: ``OPENBLAS_NUM_THREADS=1 python benches/threads.py`` (repeat it: a shared VM is noisy).
Prints, per element count, ``time(1 thread) / time(2 threads)`` for float32 softmax with ``out=``.
"""

from __future__ import annotations

import time

import numpy as np

import smoothmax as sm


def median_time(f, repeats: int = 21) -> float:
    f()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        samples.append(time.perf_counter() - t0)
    return float(np.median(samples))


def main() -> None:
    initial = sm.get_num_threads()
    cells = []
    try:
        for shape in [(64, 1024), (128, 1024), (256, 1024), (1000, 1000), (4096, 1000)]:
            x = (np.random.default_rng(0).standard_normal(shape) * 10).astype(np.float32)
            out = np.empty_like(x)
            times = []
            for threads in (1, 2):
                sm.set_num_threads(threads)
                times.append(median_time(lambda x=x, out=out: sm.softmax(x, axis=-1, out=out)))
            cells.append(f"{x.size:>8}: x{times[0] / times[1]:.2f}")
    finally:
        sm.set_num_threads(initial)
    print("  ".join(cells))


if __name__ == "__main__":
    main()

"""What bounds softmax over the strided view ``x[:, ::2]`` of a (4096, 2000) float32 array.

The view uses every other element, but every cache line of the 32 MB base holds some of its
elements, so any implementation reads all 32 MB and writes the 16 MB result. This probe times,
on one thread, side by side (median of interleaved rounds):

* smoothmax's softmax of the view into a preallocated ``out``, and of a contiguous copy of it;
* NumPy copying the view into the same ``out`` (the memory traffic alone, no arithmetic);
* NumPy copying the contiguous copy (16 MB read, 16 MB written);
* PyTorch's softmax of the view (``torch.set_num_threads(1)``), when PyTorch is installed.

The README's "where smoothmax loses" cites these figures. Not part of the library or its tests.

    SMOOTHMAX_NUM_THREADS=1 python benches/probes/strided_limit.py
"""

from __future__ import annotations

import time

import numpy as np

import smoothmax

ROUNDS = 9
CALLS = 15


def best_of(f) -> float:
    samples = []
    for _ in range(CALLS):
        start = time.perf_counter()
        f()
        samples.append(time.perf_counter() - start)
    return min(samples)


def main() -> None:
    rng = np.random.default_rng(0)
    base = (rng.standard_normal((4096, 2000)) * 10).astype(np.float32)
    view = base[:, ::2]
    dense = np.ascontiguousarray(view)
    out = np.empty(view.shape, np.float32)
    cases = {
        "smoothmax softmax, view, out=": lambda: smoothmax.softmax(view, axis=1, out=out),
        "smoothmax softmax, contiguous copy, out=": lambda: smoothmax.softmax(
            dense, axis=1, out=out
        ),
        "numpy copy of the view": lambda: np.copyto(out, view),
        "numpy copy of the contiguous copy": lambda: np.copyto(out, dense),
    }
    try:
        import torch

        torch.set_num_threads(1)
        t_view = torch.from_numpy(base)[:, ::2]
        cases["torch softmax, view"] = lambda: torch.softmax(t_view, dim=1)
    except ImportError:
        pass
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, f in cases.items():
            times[name].append(best_of(f))
    for name, samples in times.items():
        print(f"{name:42s} {np.median(samples) * 1e3:7.2f} ms")


if __name__ == "__main__":
    main()

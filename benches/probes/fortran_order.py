"""softmax, log_softmax and logsumexp along the last axis of Fortran-ordered float32 arrays
(the layout of ``x.T`` for a C-ordered ``x``), against the same call on a C-ordered copy and
PyTorch's on the Fortran-ordered tensor (one thread, best of 15 calls, median of 7
interleaved rounds, ms). Their rows lie one element apart, so smoothmax takes them as a
reduction along axis 0 (the column kernels), and returns Fortran-ordered results as SciPy
does. Not part of the library or its tests.

    SMOOTHMAX_NUM_THREADS=1 python benches/probes/fortran_order.py
"""

from __future__ import annotations

import numpy as np
from strided_limit import best_of  # this directory's probe: the same timing

import smoothmax

ROUNDS = 7
SHAPES = [(4096, 1000), (64, 32000), (1000, 10)]


def main() -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        dense = (rng.standard_normal(shape) * 10).astype(np.float32)
        fortran = np.asfortranarray(dense)
        cases = {}
        for name in ("softmax", "log_softmax", "logsumexp"):
            fn = getattr(smoothmax, name)
            cases[f"{name} F"] = lambda fn=fn, x=fortran: fn(x, axis=1)
            cases[f"{name} C"] = lambda fn=fn, x=dense: fn(x, axis=1)
            if torch is not None:
                t = torch.from_numpy(fortran)
                op = {"softmax": torch.softmax, "log_softmax": torch.log_softmax}.get(
                    name, torch.logsumexp
                )
                cases[f"{name} torch F"] = lambda op=op, t=t: op(t, 1)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(ROUNDS):
            for name, f in cases.items():
                times[name].append(best_of(f))
        print(shape, "  ".join(f"{k} {np.median(v) * 1e3:.3f}" for k, v in times.items()))


if __name__ == "__main__":
    main()

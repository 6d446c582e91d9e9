"""Two builds of smoothmax side by side in one process: the A/B behind the speed-ups quoted for
kernel changes (separate runs on a shared VM differ by more than most changes).

Run: ``python benches/ab_builds.py OLD.so NEW.so [--dtype float64] [--axis 0] [--scale S] [--sort]
[--out] [--stride K] [ROWSxN ...]``, where each ``.so`` is a built ``smoothmax/_core.abi3.so`` (copy
it out of ``python/smoothmax`` after ``pip install -e .`` at each commit). Each build is loaded as
its own copy of the package; the two are called in interleaved rounds (median of 40 calls per round,
the first build alternating) on ``N(0, 1)·scale`` inputs (scale 10 unless ``--scale``; ``--sort``
sorts them along the axis; ``--stride K`` passes the view ``base[..., ::K]`` of a base K times as
wide, as the benchmark's strided case does; ``--out`` has softmax and log_softmax write into a
preallocated array, as the benchmark's ``out=`` cases do, so that no page faults of a fresh output
are timed), and their outputs must agree bit for bit (an AssertionError says where not). Prints the
old and new median times and the median over rounds of their ratio per function and shape. Run
both orders (``OLD NEW`` and ``NEW OLD``) and quote the range: order effects of several percent
have been seen on the shared VM.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "smoothmax"
FUNCTIONS = ("softmax", "log_softmax", "logsumexp")


def load_build(so: Path, name: str, root: Path):
    """The package at ``PACKAGE`` with its extension replaced by ``so``, imported as ``name``."""
    target = root / name
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("_core*.so", "__pycache__"))
    shutil.copy(so, target / "_core.abi3.so")
    return importlib.import_module(name)


def median_call(f, x, axis: int, out: np.ndarray | None, calls: int = 40) -> float:
    kwargs = {} if out is None else {"out": out}
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        f(x, axis=axis, **kwargs)
        samples.append(time.perf_counter() - start)
    return float(np.median(samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("shapes", nargs="*", default=["1000x10", "1000x20", "4096x32"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--axis", type=int, default=-1, help="0 times the axis-0 kernels")
    parser.add_argument("--scale", type=float, default=10.0, help="inputs are N(0, 1)·scale")
    parser.add_argument("--sort", action="store_true", help="sort each input along the axis")
    parser.add_argument(
        "--stride", type=int, default=1, help="K > 1 passes the view base[..., ::K] of a wider base"
    )
    parser.add_argument(
        "--out", action="store_true", help="softmax and log_softmax into a preallocated out="
    )
    parser.add_argument(
        "--ulps",
        type=int,
        default=0,
        help="let results differ by up to this many ULP (default 0: bit-identical)",
    )
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, tmp)
        builds = {
            "old": load_build(args.old, "smoothmax_old", Path(tmp)),
            "new": load_build(args.new, "smoothmax_new", Path(tmp)),
        }
        for text in args.shapes:
            shape = tuple(int(d) for d in text.split("x"))
            x = rng.standard_normal(shape) * args.scale
            if args.sort:
                x = np.sort(x, axis=args.axis)
            x = x.astype(args.dtype)
            if args.stride > 1:
                base = np.repeat(x, args.stride, axis=-1)
                x = base[..., :: args.stride]
            for fn in FUNCTIONS:
                old, new = (getattr(builds[k], fn) for k in ("old", "new"))
                a, b = old(x, axis=args.axis), new(x, axis=args.axis)
                # One preallocated output, shared (touched once, so page faults stay out, and
                # in the same pages for both builds).
                shared = np.full_like(a, np.nan) if args.out and fn != "logsumexp" else None
                if args.ulps:
                    np.testing.assert_array_max_ulp(a, b, maxulp=args.ulps)
                else:
                    np.testing.assert_array_equal(a, b, err_msg=fn)
                rounds: dict[str, list[float]] = {"old": [], "new": []}
                for r in range(args.rounds):
                    # Alternate which build goes first: the first of a round finds the caches
                    # as the other round's last calls left them.
                    order = ("old", "new") if r % 2 == 0 else ("new", "old")
                    for k in order:
                        f = old if k == "old" else new
                        rounds[k].append(median_call(f, x, args.axis, shared))
                if shared is not None:
                    np.testing.assert_array_equal(shared, b, err_msg=f"{fn} out=")
                t_old, t_new = (float(np.median(rounds[k])) * 1e6 for k in ("old", "new"))
                paired = float(np.median(np.divide(rounds["old"], rounds["new"])))
                print(
                    f"{text:>10} {fn:12} old {t_old:8.1f} µs  new {t_new:8.1f} µs"
                    f"  speed-up {paired:.2f}"
                )


if __name__ == "__main__":
    main()

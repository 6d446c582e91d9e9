"""smoothmax: accurate, fast softmax-family numerics for NumPy, with a Rust core.

``logsumexp``, ``softmax`` and ``log_softmax`` are drop-in replacements for their
``scipy.special`` namesakes (same signatures and defaults), more accurate (see README) and
multi-threaded, with ``where=`` masks, ``temperature=`` and ``out=``.
"""

from __future__ import annotations

from . import _core
from ._api import log_softmax, logsumexp, softmax

__version__: str = _core.__version__

__all__ = [
    "__version__",
    "get_num_threads",
    "log_softmax",
    "logsumexp",
    "set_num_threads",
    "simd_level",
    "softmax",
]


def simd_level() -> str:
    """The SIMD path the kernels run on: ``"scalar"``, ``"avx2"`` or ``"avx512"``.

    Chosen at import from the CPU, or forced with the environment variable
    ``SMOOTHMAX_SIMD=scalar|avx2|avx512`` (a ``RuntimeError`` if the CPU lacks it).
    """
    return _core.simd_level()


def set_num_threads(n: int) -> None:
    """Set the number of threads the kernels use (``n >= 1``).

    The default is the number of available cores, or ``SMOOTHMAX_NUM_THREADS`` when set.
    Results are bit-identical for any thread count.
    """
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads the kernels use."""
    return _core.get_num_threads()


# Fail at import, with the reason, when SMOOTHMAX_SIMD names a path this CPU cannot run.
simd_level()

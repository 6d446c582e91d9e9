"""smoothmax: accurate, fast softmax-family numerics for NumPy, with a Rust core.

``logsumexp``, ``softmax`` and ``log_softmax`` are drop-in replacements for their
``scipy.special`` namesakes (same signatures and defaults), more accurate (see README) and
multi-threaded, with ``where=`` masks, ``temperature=`` and ``out=``.
``smoothmax.linear_model.ClosedFormLogisticRegression`` (needs scikit-learn) fits logistic and
softmax regression in closed form from one pass of per-class statistics.

Semantics, next to SciPy's and PyTorch's:

=====================  ==================================  ===================  ===========
case                   smoothmax                           SciPy 1.17           PyTorch
=====================  ==================================  ===================  ===========
ints, bools, lists     float64                             float64              softmax: error
float16, bfloat16      computed in float32, input dtype    f16 kept; bf16→f64   float32 math
complex                ``TypeError``                       supported            some ops
NaN in a row           that row NaN, no other              same                 same
``+inf`` entries       lse ``+inf``; softmax shares the    softmax NaN          NaN
                       mass among them; log_softmax
                       ``-log(count)`` there
all ``-inf`` / masked  lse ``-inf``; softmax 0;            NaN + warning        NaN
                       log_softmax ``-inf``; no warning
empty reduction        lse ``-inf``; softmax: empty        softmax raises       ``-inf``
``where=``             left out (0 / ``-inf`` / ignored)   none (``b=0``)       none
``temperature=T``      ``softmax(x / T)``, exact division  none                 none
``out=``               shape and dtype checked; may be x   none                 lse only
threads                bit-identical for any count         one thread           OpenMP
=====================  ==================================  ===================  ===========
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

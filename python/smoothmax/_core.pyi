"""Type stubs for the compiled module ``smoothmax._core`` (private; use ``smoothmax``)."""

import numpy as np
import numpy.typing as npt

__all__ = [
    "__version__",
    "build_profile",
    "class_stats",
    "exp_1d",
    "force_simd",
    "get_num_threads",
    "logsumexp_3d",
    "logsumexp_axis",
    "logsumexp_weighted_3d",
    "merge_class_stats",
    "set_num_threads",
    "simd_level",
    "softmax_3d",
    "softmax_axis",
    "standardized_fourth_moments",
    "supported_simd",
]
__version__: str
build_profile: str

def logsumexp_3d(x: npt.NDArray[np.floating], out: npt.NDArray[np.floating]) -> None:
    """``out[o, j] = logsumexp(x[o, :, j])``; float32/float64, ``out`` of shape (outer, inner)."""

def logsumexp_weighted_3d(
    x: npt.NDArray[np.floating],
    b: npt.NDArray[np.floating],
    out: npt.NDArray[np.floating],
    sign: npt.NDArray[np.floating],
) -> None:
    """``out = log|sum(b * exp(x))|`` and its ``sign`` along axis 1 (entries to drop are -inf)."""

def softmax_3d(
    x: npt.NDArray[np.floating] | None,
    out: npt.NDArray[np.floating],
    temperature: float,
    log: bool,
) -> None:
    """softmax (or log_softmax) of ``x`` along axis 1 into ``out``; ``x=None`` works in place."""

def softmax_axis(
    x: object, axis: int, log: bool, out: object | None = None
) -> npt.NDArray[np.floating] | None:
    """softmax (or log_softmax) of a native float32/float64 array along ``axis``, into ``out``
    when given (it may be ``x``) or a new array (Fortran-ordered for a Fortran-ordered ``x``),
    or ``None`` when the call needs the general path (other dtypes, strides that do not
    merge, an ``out`` that does not fit)."""

def logsumexp_axis(x: object, axis: int) -> npt.NDArray[np.floating] | None:
    """logsumexp of a native float32/float64 array along ``axis`` (removed; ordered as for
    ``softmax_axis``), or ``None`` when the call needs the general path."""

def exp_1d(x: npt.NDArray[np.floating], out: npt.NDArray[np.floating]) -> None:
    """The vector exp kernel on contiguous 1-D arrays (for accuracy tests)."""

def simd_level() -> str:
    """The SIMD path in use."""

def supported_simd() -> list[str]:
    """Every SIMD path this CPU supports, slowest first."""

def force_simd(name: str) -> None:
    """Select the SIMD path for later calls."""

def set_num_threads(n: int) -> None:
    """Set the number of threads kernels use."""

def get_num_threads() -> int:
    """The number of threads kernels use."""

def class_stats(
    x: npt.NDArray[np.floating],
    classes: npt.NDArray[np.int64],
    n_classes: int,
    sample_weight: npt.NDArray[np.float64] | None = None,
    per_class: bool = False,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-class ``(weight (K,), mean (K, d), scatter (d, d) or (K, d, d))`` of ``x`` in one
    pass (float64 accumulation, GIL released)."""

def merge_class_stats(
    weight_a: npt.NDArray[np.float64],
    mean_a: npt.NDArray[np.float64],
    scatter_a: npt.NDArray[np.float64],
    weight_b: npt.NDArray[np.float64],
    mean_b: npt.NDArray[np.float64],
    scatter_b: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The statistics of the union of two samples (Chan et al.'s pairwise update)."""

def standardized_fourth_moments(
    x: npt.NDArray[np.floating],
    groups: npt.NDArray[np.int64] | None,
    centre: npt.NDArray[np.float64],
    inv_scale: npt.NDArray[np.float64],
    sample_weight: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]:
    """Per group ``Σ w (Σ_j ((x_j − centre_gj)·inv_scale_gj)²)²`` (for Ledoit–Wolf)."""

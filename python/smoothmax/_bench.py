"""``python -m smoothmax bench``: speed and accuracy against NumPy, SciPy, PyTorch, ORT, JAX.

Every implementation runs the same case (function, dtype, shape, axis) on the same input,
``rng.standard_normal(shape) * 10`` with a fixed seed. Times are medians of at least five samples,
each sample an inner loop long enough (>= 2 ms) to be measured well. Accuracy is the maximum
error in ULPs of the result dtype against a reference computed in ``np.longdouble`` (80-bit
extended precision on x86), on the first rows of big inputs.

The reference and ULP helpers (:func:`reference_softmax`, :func:`reference_log_softmax`,
:func:`reference_logsumexp`, :func:`max_ulp_error`) are importable for tests.

Optional peers (PyTorch, ONNX Runtime, JAX) are used only when importable; a peer that fails to
import or to run a case shows ``n/a`` instead of stopping the run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import gc
import importlib
import importlib.metadata
import importlib.util
import itertools
import math
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import smoothmax

__all__ = [
    "FUNCTIONS",
    "Case",
    "Result",
    "add_arguments",
    "main",
    "max_ulp_error",
    "reference",
    "reference_log_softmax",
    "reference_logsumexp",
    "reference_softmax",
    "run",
]

FUNCTIONS: tuple[str, ...] = ("softmax", "log_softmax", "logsumexp")
#: Documented accuracy of smoothmax (docstrings of ``_api``), in ULPs of the result dtype.
ULP_BOUND: dict[tuple[str, str], float] = {
    ("softmax", "float32"): 4.0,
    ("softmax", "float64"): 4.0,
    ("log_softmax", "float32"): 4.0,
    ("log_softmax", "float64"): 4.0,
    ("logsumexp", "float32"): 1.0,
    ("logsumexp", "float64"): 2.0,
}

_SEED = 20240611
_MIN_SAMPLE_NS = 2_000_000  # each timed sample runs at least this long (adaptive inner loop)
_REF_ELEMENTS = 1 << 21  # accuracy is checked on at most about this many input elements
_REF_ROWS = 64


# --------------------------------------------------------------------------- reference & ULPs


def _shifted(x: Any, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(m, d, e, s)`` in longdouble with ``axis`` moved last.

    ``m`` is the row maximum (keepdims), ``d = x - m``, ``e = exp(d)`` and ``s`` the sum of
    ``e`` without one maximal entry (keepdims), so that ``sum(e) == 1 + s``.
    """
    xl = np.moveaxis(np.asarray(x).astype(np.longdouble), axis, -1)
    if xl.shape[-1] == 0:
        raise ValueError("the reference needs a non-empty axis")
    m = xl.max(axis=-1, keepdims=True)
    d = xl - m
    e = np.exp(d)
    others = e.copy()
    np.put_along_axis(others, np.argmax(xl, axis=-1)[..., None], np.longdouble(0), axis=-1)
    s = others.sum(axis=-1, keepdims=True)
    return m, d, e, s


def reference_softmax(x: Any, axis: int = -1) -> np.ndarray:
    """High-precision softmax of finite ``x`` along one axis, as ``np.longdouble``.

    ``m``, ``x - m``, ``exp`` and the sums are all computed in longdouble; the result keeps
    the shape of ``x``.
    """
    _, _, e, s = _shifted(x, axis)
    return np.moveaxis(e / (np.longdouble(1) + s), -1, axis)


def reference_log_softmax(x: Any, axis: int = -1) -> np.ndarray:
    """High-precision log_softmax of finite ``x`` along one axis: ``(x - m) - log1p(s)``."""
    _, d, _, s = _shifted(x, axis)
    return np.moveaxis(d - np.log1p(s), -1, axis)


def reference_logsumexp(x: Any, axis: int = -1) -> np.ndarray:
    """High-precision logsumexp of finite ``x`` along one axis: ``m + log1p(s)`` (axis removed)."""
    m, _, _, s = _shifted(x, axis)
    return (m + np.log1p(s))[..., 0]


def reference(func: str, x: Any, axis: int = -1) -> np.ndarray:
    """The longdouble reference of ``func`` (one of :data:`FUNCTIONS`)."""
    refs: dict[str, Callable[[Any, int], np.ndarray]] = {
        "softmax": reference_softmax,
        "log_softmax": reference_log_softmax,
        "logsumexp": reference_logsumexp,
    }
    return refs[func](x, axis)


def max_ulp_error(got: Any, ref: Any, dtype: Any = None) -> float:
    """Maximum of ``|got - ref| / ulp(ref rounded to dtype)`` over all elements.

    ``dtype`` defaults to the dtype of ``got``; the ULP is ``np.spacing`` of the rounded
    reference in that dtype. Equal values (including equal infinities and NaN against NaN)
    count as 0; a NaN or infinity against a finite reference counts as ``inf``. An empty
    input gives 0.
    """
    g = np.asarray(got)
    dt = np.dtype(dtype) if dtype is not None else g.dtype
    if dt.kind != "f":
        raise TypeError(f"max_ulp_error needs a floating-point dtype, got {dt}")
    r = np.asarray(ref).astype(np.longdouble)
    gl = g.astype(np.longdouble)
    if gl.shape != r.shape:
        raise ValueError(f"shapes differ: got {gl.shape}, reference {r.shape}")
    if gl.size == 0:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        ulp = np.spacing(np.abs(r.astype(dt))).astype(np.longdouble)
        err = np.abs(gl - r) / ulp
    same = (gl == r) | (np.isnan(gl) & np.isnan(r))
    err = np.where(same, np.longdouble(0), err)
    err = np.where(np.isnan(err), np.longdouble(np.inf), err)
    return float(err.max())


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One benchmarked operation: ``func`` of an input of ``shape`` and ``dtype`` along ``axis``.

    With ``strided``, the input is the view ``base[:, ::2]`` of a C-contiguous ``base`` whose
    last dimension is twice ``shape[-1]``. ``with_out`` adds a ``smoothmax (out=)`` row.
    """

    func: str
    dtype: str
    shape: tuple[int, ...]
    axis: int = -1
    strided: bool = False
    with_out: bool = False

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def out_size(self) -> int:
        if self.func == "logsumexp":
            return self.size // self.shape[self.axis]
        return self.size

    @property
    def nbytes(self) -> int:
        """Bytes read plus bytes written."""
        return (self.size + self.out_size) * np.dtype(self.dtype).itemsize

    @property
    def last_axis(self) -> bool:
        return self.axis in (-1, len(self.shape) - 1)

    def shape_label(self) -> str:
        label = "x".join(str(s) for s in self.shape)
        if self.strided:
            label += f" (x[:, ::2] of {self.shape[0]}x{2 * self.shape[1]})"
        if not self.last_axis:
            label += f", axis={self.axis}"
        return label


@dataclass
class Result:
    """One table row."""

    case: Case
    threads: int
    impl: str
    time_ns: float | None = None
    ulp: float | None = None
    error: str | None = None
    #: GB/s of a plain copy of the input on the same threads (see :func:`copy_gbps`).
    copy_gbps: float | None = None

    @property
    def ok(self) -> bool:
        return self.time_ns is not None


@dataclass(frozen=True)
class _Input:
    shape: tuple[int, ...]
    dtype: str
    axis: int = -1
    strided: bool = False
    with_out: bool = False

    def make(self) -> np.ndarray:
        rng = np.random.default_rng(_SEED)
        dt = np.dtype(self.dtype)
        if self.strided:
            base_shape = (*self.shape[:-1], 2 * self.shape[-1])
            base = rng.standard_normal(base_shape, dtype=dt) * dt.type(10)
            return base[..., ::2]
        return rng.standard_normal(self.shape, dtype=dt) * dt.type(10)


def _inputs(full: bool) -> list[_Input]:
    quick = [(1, 1000), (1000, 10), (4096, 1000), (64, 32000), (1, 100000)]
    # Large outputs also get a row with out= preallocated: a fresh multi-MB result costs page
    # faults on first touch (allocator-dependent), which hides the kernel's own speed.
    specs = [
        _Input(s, dt, with_out=full or s[0] * s[1] >= 1_000_000)
        for s in quick
        for dt in ("float32", "float64")
    ]
    if full:
        # Medium rows: batches of them go through the 16-row tiles, single ones the row kernel.
        specs += [_Input(s, dt) for s in ((2000, 50), (2000, 100)) for dt in ("float32", "float64")]
        specs.append(_Input((256, 128256), "float32", with_out=True))
        specs += [_Input((1000, 4096), dt, axis=0, with_out=True) for dt in ("float32", "float64")]
        specs += [
            _Input((4096, 1000), dt, strided=True, with_out=True) for dt in ("float32", "float64")
        ]
    return specs


def _subset(arr: np.ndarray, case: Case, reduced: bool = False) -> np.ndarray:
    """The leading rows (last-axis cases) or columns (axis-0 cases) checked for accuracy."""
    n = case.shape[case.axis]
    keep = max(1, min(_REF_ROWS, _REF_ELEMENTS // max(n, 1)))
    if case.last_axis:
        return arr[:keep]
    if reduced:  # axis 0 reduced away: the remaining axis indexes the columns
        return arr[:keep]
    return arr[:, :keep]


# --------------------------------------------------------------------------- implementations


Runner = Callable[[], Any]


class Impl:
    """A benchmarked implementation; ``prepare`` returns a zero-argument callable for a case."""

    name = "?"
    error: str | None = None  # set when the implementation cannot be used at all

    def set_threads(self, n: int) -> None:
        pass

    def prepare(self, case: Case, x: np.ndarray) -> Runner:
        raise NotImplementedError

    def to_numpy(self, res: Any) -> np.ndarray:
        return np.asarray(res)


class SmoothmaxImpl(Impl):
    def __init__(self, use_out: bool = False) -> None:
        self.use_out = use_out
        self.name = "smoothmax (out=)" if use_out else "smoothmax"

    def set_threads(self, n: int) -> None:
        smoothmax.set_num_threads(n)

    def prepare(self, case: Case, x: np.ndarray) -> Runner:
        axis = case.axis
        if case.func == "logsumexp":
            if self.use_out:
                raise ValueError("logsumexp has no out=")
            return lambda: smoothmax.logsumexp(x, axis=axis)
        fn = smoothmax.softmax if case.func == "softmax" else smoothmax.log_softmax
        if self.use_out:
            out = np.empty(x.shape, dtype=x.dtype)
            return lambda: fn(x, axis=axis, out=out)
        return lambda: fn(x, axis=axis)


def _np_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=axis, keepdims=True)


def _np_log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    d = x - m
    return d - np.log(np.exp(d).sum(axis=axis, keepdims=True))


def _np_logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return np.squeeze(m, axis=axis) + np.log(np.exp(x - m).sum(axis=axis))


class NumpyImpl(Impl):
    name = "numpy"
    _fns: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {  # noqa: RUF012
        "softmax": _np_softmax,
        "log_softmax": _np_log_softmax,
        "logsumexp": _np_logsumexp,
    }

    def prepare(self, case: Case, x: np.ndarray) -> Runner:
        fn, axis = self._fns[case.func], case.axis
        return lambda: fn(x, axis)


class ScipyImpl(Impl):
    name = "scipy"

    def __init__(self) -> None:
        self.special: Any = importlib.import_module("scipy.special")

    def prepare(self, case: Case, x: np.ndarray) -> Runner:
        fn, axis = getattr(self.special, case.func), case.axis
        return lambda: fn(x, axis=axis)


class TorchImpl(Impl):
    name = "torch"

    def __init__(self) -> None:
        self.torch: Any = importlib.import_module("torch")

    def set_threads(self, n: int) -> None:
        self.torch.set_num_threads(n)

    def prepare(self, case: Case, x: np.ndarray) -> Runner:
        torch, axis = self.torch, case.axis
        t = torch.from_numpy(x)
        fn = {"softmax": torch.softmax, "log_softmax": torch.log_softmax}.get(case.func)
        if fn is None:
            return lambda: torch.logsumexp(t, dim=axis)
        return lambda: fn(t, dim=axis)

    def to_numpy(self, res: Any) -> np.ndarray:
        return np.asarray(res.numpy())


class OnnxRuntimeImpl(Impl):
    name = "onnxruntime"

    def __init__(self) -> None:
        self.ort: Any = importlib.import_module("onnxruntime")
        self.onnx: Any = importlib.import_module("onnx")
        self.threads = 1
        self.sessions: dict[tuple[str, str, int, int, int], Any] = {}

    def set_threads(self, n: int) -> None:
        self.threads = n

    def _model(self, func: str, dtype: str, axis: int, ndim: int) -> bytes:
        helper, tp = self.onnx.helper, self.onnx.TensorProto
        elem = tp.FLOAT if dtype == "float32" else tp.DOUBLE
        x = helper.make_tensor_value_info("x", elem, [f"d{i}" for i in range(ndim)])
        out_dims = [f"d{i}" for i in range(ndim) if func != "logsumexp" or i != axis]
        y = helper.make_tensor_value_info("y", elem, out_dims)
        if func == "logsumexp":
            node = helper.make_node("ReduceLogSumExp", ["x"], ["y"], axes=[axis], keepdims=0)
        else:
            op = "Softmax" if func == "softmax" else "LogSoftmax"
            node = helper.make_node(op, ["x"], ["y"], axis=axis)
        graph = helper.make_graph([node], f"smoothmax_bench_{func}", [x], [y])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 7  # opset 13's IR version: loadable by any ORT that has opset 13
        self.onnx.checker.check_model(model)
        return bytes(model.SerializeToString())

    def _session(self, case: Case) -> Any:
        ndim = len(case.shape)
        axis = case.axis % ndim
        key = (case.func, case.dtype, axis, ndim, self.threads)
        if key not in self.sessions:
            so = self.ort.SessionOptions()
            so.intra_op_num_threads = self.threads
            so.inter_op_num_threads = 1
            so.log_severity_level = 3
            self.sessions[key] = self.ort.InferenceSession(
                self._model(case.func, case.dtype, axis, ndim),
                sess_options=so,
                providers=["CPUExecutionProvider"],
            )
        return self.sessions[key]

    def prepare(self, case: Case, x: np.ndarray) -> Runner:
        sess = self._session(case)
        feed = {"x": x}
        return lambda: sess.run(None, feed)[0]


class JaxImpl(Impl):
    name = "jax"

    def __init__(self) -> None:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        self.jax: Any = importlib.import_module("jax")
        self.jax.config.update("jax_enable_x64", True)  # float64 stays float64
        self.lse: Any = importlib.import_module("jax.scipy.special").logsumexp
        self.cpu: Any = self.jax.devices("cpu")[0]
        self.jitted: dict[tuple[str, int], Any] = {}

    def _fn(self, func: str, axis: int) -> Any:
        key = (func, axis)
        if key not in self.jitted:
            jax = self.jax
            if func == "softmax":
                self.jitted[key] = jax.jit(lambda a: jax.nn.softmax(a, axis=axis))
            elif func == "log_softmax":
                self.jitted[key] = jax.jit(lambda a: jax.nn.log_softmax(a, axis=axis))
            else:
                lse = self.lse
                self.jitted[key] = jax.jit(lambda a: lse(a, axis=axis))
        return self.jitted[key]

    def prepare(self, case: Case, x: np.ndarray) -> Runner:
        fn = self._fn(case.func, case.axis)
        xj = self.jax.device_put(x, self.cpu)  # outside the timed region (a copy for views)
        return lambda: fn(xj).block_until_ready()


class _Unavailable(Impl):
    def __init__(self, name: str, error: str) -> None:
        self.name = name
        self.error = error

    def prepare(self, case: Case, x: np.ndarray) -> Runner:
        raise RuntimeError(self.error)


_PEERS: tuple[tuple[str, str, Callable[[], Impl]], ...] = (
    ("numpy", "numpy", NumpyImpl),
    ("scipy", "scipy", ScipyImpl),
    ("torch", "torch", TorchImpl),
    ("onnxruntime", "onnxruntime", OnnxRuntimeImpl),
    ("jax", "jax", JaxImpl),
)


def _load_peers() -> tuple[list[Impl], dict[str, str]]:
    """Usable peers (broken ones as ``_Unavailable``) and notes on the ones left out."""
    peers: list[Impl] = []
    notes: dict[str, str] = {}
    for name, module, factory in _PEERS:
        if importlib.util.find_spec(module) is None:
            notes[name] = "not installed"
            continue
        try:
            peers.append(factory())
        except Exception as exc:  # a broken install must not stop the run
            msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            peers.append(_Unavailable(name, msg))
            notes[name] = f"import failed ({msg})"
    return peers, notes


# --------------------------------------------------------------------------- timing


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


#: Pause before timing on several threads, longer than the thread pools of OpenMP, ONNX Runtime
#: and XLA keep spinning after a call.
_SPIN_PAUSE_S = 0.05


def time_call(
    fn: Runner, *, samples: int = 5, min_sample_ns: int = _MIN_SAMPLE_NS
) -> tuple[float, Any]:
    """``(median ns per call, first result)`` of ``fn``.

    One warm-up call (its result is returned), one calibration call, then ``samples`` samples
    of an inner loop sized so that a sample lasts at least ``min_sample_ns``.
    """
    first = fn()
    (ns,) = time_rounds([fn], samples=samples, min_sample_ns=min_sample_ns)
    return ns, first


def time_rounds(
    fns: Sequence[Runner], *, samples: int = 5, min_sample_ns: int = _MIN_SAMPLE_NS
) -> list[float]:
    """Median ns per call of each of ``fns`` (already warmed up), timed in interleaved rounds:
    each round takes one sample of every function, so a burst of load from other processes on
    a shared machine hits the same round of every function instead of all the samples of one
    (the ratios between them stay fair).

    Each function gets a calibration call, then ``samples`` samples of an inner loop sized so
    that a sample lasts at least ``min_sample_ns``. Each sample starts with one untimed call,
    and the rounds take the functions in a shuffled order (fixed seed): the function before
    another in a round has evicted some of its data from the caches (a peer that copies the
    input, such as JAX, the input itself), and the refill takes a few calls. In a fixed order
    that cost would fall on the same function in every round, and a function following one that
    reads the same input (smoothmax's ``out=`` after its plain call) would always find it warm.
    """
    clock = time.perf_counter_ns
    with _no_gc():
        inner = []
        for fn in fns:
            t0 = clock()
            fn()
            single = max(clock() - t0, 1)
            inner.append(max(1, math.ceil(min_sample_ns / single)))
        per_call: list[list[float]] = [[] for _ in fns]
        rng = np.random.default_rng(_SEED)
        for _ in range(max(samples, 1)):
            for k in rng.permutation(len(fns)):
                fn, reps = fns[k], inner[k]
                fn()
                t0 = clock()
                for _ in range(reps):
                    fn()
                per_call[k].append((clock() - t0) / reps)
    return [statistics.median(times) for times in per_call]


def copy_gbps(x: np.ndarray, threads: int, samples: int = 5) -> float:
    """GB/s (bytes read + bytes written per ns) of copying ``x`` into a preallocated array of
    its shape, split over ``threads`` threads along axis 0: the memory-bound reference the
    table's "of copy" column divides by. NumPy releases the GIL while it copies."""
    dst = np.empty(x.shape, dtype=x.dtype)
    dst.fill(0)  # first-touch page faults stay out of the timing
    if threads <= 1 or x.ndim == 0 or x.shape[0] < threads:

        def runner() -> None:
            np.copyto(dst, x)

        ns, _ = time_call(runner, samples=samples)
    else:
        bounds = np.linspace(0, x.shape[0], threads + 1).astype(int)
        parts = [(dst[a:b], x[a:b]) for a, b in itertools.pairwise(bounds)]
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:

            def runner() -> None:
                for f in [pool.submit(np.copyto, d, src) for d, src in parts]:
                    f.result()

            ns, _ = time_call(runner, samples=samples)
    return 2 * x.size * x.dtype.itemsize / ns


# --------------------------------------------------------------------------- running


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()
    return text[0][:200] if text else type(exc).__name__


def _progress(msg: str) -> None:
    if sys.stderr.isatty():
        print(f"\r\x1b[K{msg}", end="", file=sys.stderr, flush=True)


def default_threads(full: bool) -> list[int]:
    """One thread for every library (the conditions the targets are stated in); with
    ``full``, 1 and 2."""
    return [1, 2] if full else [1]


def run(
    *,
    full: bool = False,
    threads: Sequence[int] | None = None,
    samples: int = 5,
    peers: list[Impl] | None = None,
) -> list[Result]:
    """Run the benchmark; ``threads`` defaults to one thread for every library (quick; the
    conditions the performance targets are stated in) or 1 and 2 threads (``full``)."""
    initial_threads = smoothmax.get_num_threads()
    if threads is None:
        threads = default_threads(full)
    if peers is None:
        peers, _ = _load_peers()
    plain, with_out = SmoothmaxImpl(), SmoothmaxImpl(use_out=True)
    results: list[Result] = []
    specs = _inputs(full)
    try:
        for nt in threads:
            for impl in (plain, *peers):
                with contextlib.suppress(Exception):
                    impl.set_threads(nt)
            for k, spec in enumerate(specs, 1):
                x = spec.make()
                if nt > 1:
                    time.sleep(_SPIN_PAUSE_S)
                copy = copy_gbps(x, nt, samples)
                for func in FUNCTIONS:
                    case = Case(func, spec.dtype, x.shape, spec.axis, spec.strided, spec.with_out)
                    _progress(f"[threads={nt}] {k}/{len(specs)} {func} {case.shape_label()}")
                    impls: list[Impl] = [plain]
                    if case.with_out and func != "logsumexp":
                        impls.append(with_out)
                    impls += peers
                    rows = _run_case(case, nt, x, impls, samples)
                    for row in rows:
                        row.copy_gbps = copy
                    results += rows
                del x
                gc.collect()
    finally:
        smoothmax.set_num_threads(initial_threads)
        _progress("")
    return results


def _run_case(
    case: Case, nt: int, x: np.ndarray, impls: Sequence[Impl], samples: int
) -> list[Result]:
    ref: np.ndarray | None = None
    ref_error: str | None = None
    try:
        ref = reference(case.func, _subset(x, case), case.axis)
    except Exception as exc:
        ref_error = _error_text(exc)
    rows = [Result(case, nt, impl.name) for impl in impls]
    # Prepare and warm up every implementation first (a failing one shows n/a and never stops
    # the run), then time them: on one thread together, in interleaved rounds.
    runners: list[tuple[Result, Runner]] = []
    for impl, row in zip(impls, rows, strict=True):
        try:
            runner = impl.prepare(case, x)
            got = impl.to_numpy(runner())
            if ref is not None:
                sub = _subset(got, case, reduced=case.func == "logsumexp")
                row.ulp = max_ulp_error(sub, ref, case.dtype)
            elif ref_error is not None:
                row.error = f"reference: {ref_error}"
            del got
            runners.append((row, runner))
        except Exception as exc:
            row.error = _error_text(exc)
    fns = [runner for _, runner in runners]
    try:
        if nt == 1:
            times = time_rounds(fns, samples=samples)
        else:
            # Several threads: one implementation at a time, each after a pause, since a
            # peer's worker threads keep spinning for a while after its calls (the warm-ups
            # above included) and would take a core from the next.
            times = []
            for fn in fns:
                time.sleep(_SPIN_PAUSE_S)
                times.append(time_rounds([fn], samples=samples)[0])
        for (row, _), ns in zip(runners, times, strict=True):
            row.time_ns = ns
    except Exception as exc:  # a call that failed after its warm-up succeeded
        for row, _ in runners:
            row.error = row.error or _error_text(exc)
    return rows


# --------------------------------------------------------------------------- reporting


def _fmt_time(ns: float) -> str:
    if ns < 1e3:
        return f"{ns:.0f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.2f} µs"
    if ns < 1e9:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e9:.2f} s"


def _fmt_num(v: float) -> str:
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 0.01:
        return f"{v:.3f}"
    return f"{v:.2e}"


def _fmt_ulp(v: float | None) -> str:
    if v is None:
        return "n/a"
    if math.isinf(v):
        return "inf"
    if v < 100:
        return f"{v:.2f}"
    return f"{v:.3g}"


COLUMNS = (
    "function",
    "dtype",
    "shape",
    "impl",
    "median time",
    "elements/ns",
    "GB/s",
    "of copy",
    "ratio",
    "max ULP",
)


def table_rows(results: Sequence[Result]) -> list[list[str]]:
    """The table cells: ``ratio`` is (this implementation's time) / (smoothmax time)."""
    base: dict[tuple[Case, int], float] = {}
    for r in results:
        if r.impl == "smoothmax" and r.time_ns is not None:
            base[(r.case, r.threads)] = r.time_ns
    rows = []
    for r in results:
        c = r.case
        cells = [c.func, c.dtype, c.shape_label(), r.impl]
        if r.time_ns is None:
            cells += ["n/a"] * 5
        else:
            t = r.time_ns
            sm = base.get((c, r.threads))
            gbps = c.nbytes / t  # bytes per ns == GB/s
            cells += [
                _fmt_time(t),
                _fmt_num(c.size / t),
                _fmt_num(gbps),
                f"{100 * gbps / r.copy_gbps:.0f}%" if r.copy_gbps else "n/a",
                f"{t / sm:.2f}" if sm else "n/a",
            ]
        cells.append(_fmt_ulp(r.ulp) if r.time_ns is not None else "n/a")
        rows.append(cells)
    return rows


def markdown_table(results: Sequence[Result]) -> str:
    head = [
        *COLUMNS[:5],
        "elements/ns",
        "GB/s (read+write)",
        "of copy GB/s",
        "ratio (peer / smoothmax time)",
        "max ULP",
    ]
    body = table_rows(results)
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(head)]
    right = {4, 5, 6, 7, 8, 9}

    def line(cells: Sequence[str]) -> str:
        out = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(out) + " |"

    sep = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(head), sep, *(line(r) for r in body)])


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for ln in f:
                if ln.lower().startswith(("model name", "hardware", "cpu model")):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _build_profile() -> str:
    return str(getattr(smoothmax._core, "build_profile", "unknown"))


def header(threads: Sequence[int], notes: dict[str, str], command: str) -> str:
    try:
        avail = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        avail = os.cpu_count() or 1
    versions = ", ".join(
        f"{name} {notes.get(name) or _version(name)}"
        for name in ("numpy", "scipy", "torch", "onnxruntime", "jax")
    )
    lines = [
        "# smoothmax benchmark",
        "",
        f"- CPU: {_cpu_model()} ({os.cpu_count()} logical cores, {avail} available), "
        f"{platform.machine()}, Python {platform.python_version()}",
        f"- smoothmax {smoothmax.__version__} ({_build_profile()} build), "
        f"SIMD {smoothmax.simd_level()}, "
        f"threads {', '.join(map(str, threads))}",
        f"- {versions}",
        f"- command: `{command}`",
        "- time: median of >= 5 samples (each >= 2 ms, adaptive inner loop, after one untimed "
        "call); on one thread the implementations of a case are sampled in interleaved rounds, "
        "in a shuffled order, so load from other processes hits them alike and none always "
        "follows the same one (whose calls evict its data); on more threads one after another, "
        "each after a 50 ms pause (other libraries' worker threads spin on after their calls); "
        "elements/ns = input elements / time; GB/s = (input + output bytes) / time; "
        "of copy GB/s = that GB/s as a share of a NumPy copy of the input into a preallocated "
        "array (read + write) on the same number of threads, measured in the same run; "
        "ratio = peer time / smoothmax time (> 1: smoothmax faster); max ULP against a "
        f"np.longdouble reference ({np.finfo(np.longdouble).nmant + 1}-bit significand), "
        f"on up to {_REF_ROWS} "
        "leading rows (a subnormal result flushed to zero counts millions of ULPs).",
        "- input: `rng.standard_normal(shape) * 10`, fixed seed. numpy = the stable formula "
        "(subtract the max). Thread setting applies to smoothmax, torch (`set_num_threads`) "
        "and onnxruntime (`intra_op_num_threads`); numpy and scipy are single-threaded; JAX "
        "uses XLA's default CPU threading and its input is `device_put` outside the timed "
        "region.",
    ]
    return "\n".join(lines)


def _bound_notes(results: Sequence[Result]) -> list[str]:
    out = []
    for r in results:
        if r.impl.startswith("smoothmax") and r.ulp is not None:
            bound = ULP_BOUND.get((r.case.func, r.case.dtype))
            if bound is not None and r.ulp > bound:
                out.append(
                    f"- note: {r.impl} {r.case.func} {r.case.dtype} {r.case.shape_label()} "
                    f"(threads {r.threads}): max error {r.ulp:.3g} ULP exceeds the documented "
                    f"{bound:g} ULP"
                )
    return out


def _error_notes(results: Sequence[Result]) -> list[str]:
    seen: dict[tuple[str, str], int] = {}
    for r in results:
        if r.error:
            seen[(r.impl, r.error)] = seen.get((r.impl, r.error), 0) + 1
    return [f"- n/a: {impl} ({n} cells): {err}" for (impl, err), n in seen.items()]


def report(results: Sequence[Result], threads: Sequence[int], head: str) -> str:
    parts = [head, ""]
    for nt in threads:
        sel = [r for r in results if r.threads == nt]
        if len(threads) > 1:
            parts += [f"## threads = {nt}", ""]
        parts += [markdown_table(sel), ""]
    notes = _bound_notes(results) + _error_notes(results)
    if notes:
        parts += [*notes, ""]
    return "\n".join(parts)


def plot(results: Sequence[Result], path: Path) -> bool:
    """Elements/ns against elements, float32 last-axis cases, one panel per function.

    Returns ``False`` when matplotlib is not installed. Uses the largest thread count.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    nt = max(r.threads for r in results)
    sel = [
        r
        for r in results
        if r.threads == nt
        and r.ok
        and r.case.dtype == "float32"
        and r.case.last_axis
        and not r.case.strided
    ]
    impls = list(dict.fromkeys(r.impl for r in sel))
    colors = {impl: f"C{k % 10}" for k, impl in enumerate(impls)}  # same colour in every panel
    handles: dict[str, Any] = {}
    fig, axes = plt.subplots(1, len(FUNCTIONS), figsize=(5 * len(FUNCTIONS), 4.2), sharey=True)
    for ax, func in zip(axes, FUNCTIONS, strict=True):
        for impl in impls:
            pts = sorted(
                (r.case.size, r.case.size / r.time_ns)
                for r in sel
                if r.case.func == func and r.impl == impl and r.time_ns
            )
            if pts:
                xs, ys = zip(*pts, strict=True)
                style = "-o" if impl.startswith("smoothmax") else "--."
                (line,) = ax.plot(
                    xs,
                    ys,
                    style,
                    color=colors[impl],
                    label=impl,
                    linewidth=2 if impl == "smoothmax" else 1,
                )
                handles.setdefault(impl, line)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{func} (float32, last axis)")
        ax.set_xlabel("elements")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("elements / ns (higher is better)")
    axes[-1].legend(list(handles.values()), list(handles), fontsize="small")
    fig.suptitle(f"smoothmax {smoothmax.__version__} ({smoothmax.simd_level()}, {nt} threads)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--full",
        action="store_true",
        help="also long rows, a (256, 128256) vocabulary, axis 0, a strided view, out=, "
        "and 1 and 2 threads (takes several minutes)",
    )
    parser.add_argument(
        "--out", metavar="DIR", type=Path, help="also write DIR/bench.md and DIR/throughput.png"
    )
    parser.add_argument(
        "--threads",
        metavar="N",
        type=int,
        help="thread count for smoothmax, torch and onnxruntime "
        "(default: 1, the conditions of the targets; with --full: 1 and 2)",
    )


def main(args: argparse.Namespace | Sequence[str] | None = None) -> int:
    """Run the benchmark from parsed arguments (or an argv list); returns the exit code."""
    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(prog="python -m smoothmax bench")
        add_arguments(parser)
        args = parser.parse_args(args)
    if args.threads is not None and args.threads < 1:
        print("error: --threads must be >= 1", file=sys.stderr)
        return 2
    argv = getattr(sys, "orig_argv", None) or ["python", *sys.argv]
    command = shlex.join(["python", *argv[1:]])
    t0 = time.perf_counter()
    peers, notes = _load_peers()
    threads = [args.threads] if args.threads is not None else default_threads(args.full)
    results = run(full=args.full, threads=threads, peers=peers)
    text = report(results, threads, header(threads, notes, command))
    text += f"\nTotal run time: {time.perf_counter() - t0:.1f} s\n"
    print(text, end="")
    if args.out is not None:
        out_dir = Path(args.out)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "bench.md").write_text(text, encoding="utf-8")
        if plot(results, out_dir / "throughput.png"):
            print(f"wrote {out_dir / 'bench.md'} and {out_dir / 'throughput.png'}", file=sys.stderr)
        else:
            print(f"wrote {out_dir / 'bench.md'} (no matplotlib: no plot)", file=sys.stderr)
    return 0

"""Benchmark ``smoothmax.linear_model.ClosedFormLogisticRegression`` against scikit-learn's
``LinearDiscriminantAnalysis(solver="lsqr")`` (the same model) and ``LogisticRegression``
(maximum likelihood by L-BFGS).

Sections (``--section``, default ``all``):

* ``fit``: wall time of ``fit`` on 200,000 × 128 float32 rows, 10 classes, for two datasets
  (``make_classification(..., n_informative=64, random_state=0)`` and a Gaussian mixture with
  identity covariance and class means ``N(0, 0.5²)`` per coordinate, seed 0): closed form
  median of 5, LDA median of 3, LogisticRegression 1 run, each after an untimed warm-up fit on
  2,000 rows; every timed fit starts after a 0.5 s pause (OpenBLAS worker threads keep
  spinning for ~0.1 s after a BLAS call and, on 2 cores, slow down whatever runs next by up
  to 2-4x). Reports the closed form's speed-up over each peer (targets: ≥ 20× over
  LogisticRegression, ≥ 2× over LDA), training accuracy and the peak extra memory of one fit,
  measured in a fresh spawned process per (estimator, dataset): the RSS before ``fit`` (after
  a warm-up fit, so lazy imports and BLAS buffers are not counted) against the peak during
  ``fit``, both as the kernel's high-water mark (``VmHWM``, reset through
  ``/proc/self/clear_refs`` just before ``fit``) and as the maximum of an RSS poll every 1 ms
  from a background thread; the larger of the two is reported.
* ``cv``: accuracy on scikit-learn's bundled iris, wine, breast_cancer and digits, every model
  inside ``Pipeline(StandardScaler(), model)``: (a) 5-fold ``StratifiedKFold`` (shuffled,
  ``random_state=0``), mean ± std; (b) 10% stratified training split, 90% test, mean ±
  std of the test accuracy over seeds 0..9. A closed form without shrinkage whose covariance is
  singular raises ``ValueError``: such a cell reads "singular (needs shrinkage)" and says in how
  many folds / seeds it happened.
* ``refine``: on the ``make_classification`` data, ``LogisticRegression(C=1, max_iter=1000,
  tol=1e-6)`` (the reference optimum) and with its defaults (``tol=1e-4, max_iter=100``) against
  ``ClosedFormLogisticRegression(refine=k, l2=1.0)`` for k in 0, 1, 2, 3, 5, 8: time (closed
  form median of 3, LogisticRegression 1 run), the training objective ``Σ_i −log p(y_i|x_i) +
  ½/C·‖coef‖²`` (intercepts unpenalised; evaluated in float64 from ``predict_log_proba`` of the
  float64 data and ``coef_``), its relative gap to the reference, training accuracy and
  ``n_iter_``.

``--quick``: 20,000 rows instead of 200,000 in ``fit`` and ``refine``, no LogisticRegression on
the second ``fit`` dataset, seeds 0..2 in ``cv`` (b).

Run: ``python benches/linear_model.py [--quick] [--section fit|cv|refine|all]``; the full
``fit`` and ``refine`` sections take about a minute each on 2 cores. Prints Markdown tables.
Warnings (LogisticRegression's ConvergenceWarning, LDA's collinearity warning) are silenced.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import platform
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil
import sklearn
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_iris,
    load_wine,
    make_classification,
)
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import smoothmax
from smoothmax.linear_model import ClosedFormLogisticRegression

FULL_ROWS = 200_000
QUICK_ROWS = 20_000
N_FEATURES = 128
N_CLASSES = 10
WARMUP_ROWS = 2_000
MB = 1e6
# Seconds of rest before each timed fit: OpenBLAS worker threads spin for ~0.1 s after a BLAS
# call, and on 2 cores they halve the speed of whatever runs next (e.g. the next repeat).
PAUSE = 0.5

FIT_MODELS: dict[str, Callable[[], Any]] = {
    "ClosedFormLogisticRegression()": lambda: ClosedFormLogisticRegression(),
    'LDA(solver="lsqr")': lambda: LinearDiscriminantAnalysis(solver="lsqr"),
    "LogisticRegression()": lambda: LogisticRegression(),
}
FIT_REPEATS = {"ClosedFormLogisticRegression()": 5, 'LDA(solver="lsqr")': 3}

CV_MODELS: dict[str, Callable[[], Any]] = {
    "closed form": lambda: ClosedFormLogisticRegression(),
    'closed form, shrinkage="auto"': lambda: ClosedFormLogisticRegression(shrinkage="auto"),
    'LDA(solver="lsqr")': lambda: LinearDiscriminantAnalysis(solver="lsqr"),
    "LogisticRegression(max_iter=2000)": lambda: LogisticRegression(max_iter=2000),
}
CV_DATASETS: dict[str, Callable[..., Any]] = {
    "iris": load_iris,
    "wine": load_wine,
    "breast_cancer": load_breast_cancer,
    "digits": load_digits,
}

# ---------------------------------------------------------------------------- helpers


def processor_name() -> str:
    name = platform.processor()
    if name:
        return name
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def header() -> str:
    return (
        f"hardware: {processor_name()}, os.cpu_count()={os.cpu_count()} | "
        f"numpy {np.__version__} | scikit-learn {sklearn.__version__} | "
        f"smoothmax {smoothmax.__version__} | simd_level={smoothmax.simd_level()} | "
        f"smoothmax threads={smoothmax.get_num_threads()}"
    )


def make_dataset(name: str, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """``"classification"`` (make_classification) or ``"mixture"`` (shared identity
    covariance), float32 ``X`` of shape ``(n_rows, 128)`` and 10 classes."""
    if name == "classification":
        X, y = make_classification(
            n_samples=n_rows,
            n_features=N_FEATURES,
            n_informative=64,
            n_redundant=0,
            n_classes=N_CLASSES,
            n_clusters_per_class=1,
            random_state=0,
        )
        return X.astype(np.float32), y
    if name == "mixture":
        rng = np.random.default_rng(0)
        means = rng.normal(0.0, 0.5, size=(N_CLASSES, N_FEATURES))
        y = rng.integers(0, N_CLASSES, size=n_rows)
        X = rng.standard_normal((n_rows, N_FEATURES), dtype=np.float32)
        X += means[y].astype(np.float32)
        return X, y
    raise ValueError(f"unknown dataset {name!r}")


DATASET_LABELS = {
    "classification": "make_classification",
    "mixture": "Gaussian mixture, Σ = I",
}


def timed_fit(
    factory: Callable[[], Any], X: np.ndarray, y: np.ndarray, repeats: int
) -> tuple[float, Any]:
    """Median wall time of ``factory().fit(X, y)`` over ``repeats`` runs, after an untimed
    warm-up fit on the first rows and a pause of ``PAUSE`` s before each run; returns the time
    and the last fitted model."""
    factory().fit(X[:WARMUP_ROWS], y[:WARMUP_ROWS])
    samples = []
    model = None
    for _ in range(repeats):
        model = factory()
        time.sleep(PAUSE)
        t0 = time.perf_counter()
        model.fit(X, y)
        samples.append(time.perf_counter() - t0)
    return float(np.median(samples)), model


def n_iter(model: Any) -> str:
    it = getattr(model, "n_iter_", None)
    if it is None:
        return "—"
    return str(int(np.max(it)))


# ---------------------------------------------------------------------------- memory


def _read_hwm() -> int | None:
    """The kernel's peak RSS of this process (``VmHWM``) in bytes, or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_hwm() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ≥ 4.0); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


class PeakSampler:
    """Polls this process's RSS from a background thread and keeps the maximum."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.peak = 0
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self.peak = self._proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def _memory_child(model_name: str, dataset: str, n_rows: int) -> dict[str, float]:
    """Runs in a fresh spawned process: build X, warm up, then measure one fit."""
    warnings.simplefilter("ignore")
    X, y = make_dataset(dataset, n_rows)
    factory = FIT_MODELS[model_name]
    factory().fit(X[:WARMUP_ROWS], y[:WARMUP_ROWS])
    model = factory()
    gc.collect()
    proc = psutil.Process()
    hwm_ok = _reset_hwm()
    base = proc.memory_info().rss
    with PeakSampler() as sampler:
        model.fit(X, y)
    hwm = _read_hwm() if hwm_ok else None
    return {
        "x_mb": X.nbytes / MB,
        "poll_mb": (sampler.peak - base) / MB,
        "hwm_mb": float("nan") if hwm is None else (hwm - base) / MB,
    }


def measure_memory(model_name: str, dataset: str, n_rows: int) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes=1) as pool:
        return pool.apply(_memory_child, (model_name, dataset, n_rows))  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- sections


def section_fit(quick: bool) -> None:
    n_rows = QUICK_ROWS if quick else FULL_ROWS
    print(f"## fit: {n_rows:,} x {N_FEATURES} float32, {N_CLASSES} classes")
    print()
    print(header())
    print()
    rows = []
    targets = []
    for dataset in ("classification", "mixture"):
        X, y = make_dataset(dataset, n_rows)
        times: dict[str, float] = {}
        for name, factory in FIT_MODELS.items():
            if name == "LogisticRegression()" and quick and dataset == "mixture":
                continue
            repeats = FIT_REPEATS.get(name, 1)
            seconds, model = timed_fit(factory, X, y, repeats)
            times[name] = seconds
            accuracy = model.score(X, y)
            mem = measure_memory(name, dataset, n_rows)
            peak = np.nanmax([mem["poll_mb"], mem["hwm_mb"]])
            note = f"median of {repeats}" if repeats > 1 else "1 run"
            if name == "LogisticRegression()":
                note += f", n_iter_={n_iter(model)}"
            rows.append(
                (DATASET_LABELS[dataset], name, seconds, note, accuracy, peak, mem, mem["x_mb"])
            )
        cf = times["ClosedFormLogisticRegression()"]
        for i in range(len(rows) - len(times), len(rows)):
            label, name, seconds, *rest = rows[i]
            rows[i] = (label, name, seconds, seconds / cf, *rest)
        for peer, target in (('LDA(solver="lsqr")', 2.0), ("LogisticRegression()", 20.0)):
            if peer in times:
                ratio = times[peer] / cf
                verdict = "met" if ratio >= target else "NOT met"
                targets.append(
                    f"- {DATASET_LABELS[dataset]}: closed form vs {peer}: x{ratio:.1f} "
                    f"(target ≥ {target:g}x: {verdict})"
                )
        del X, y
        gc.collect()
    print(
        "| dataset | estimator | fit time (s) | time / closed form | timing | train accuracy "
        "| peak extra memory (MB) | (VmHWM / 1 ms poll) | X (MB) |"
    )
    print("|---|---|---:|---:|---|---:|---:|---|---:|")
    for label, name, seconds, ratio, note, accuracy, peak, mem, x_mb in rows:
        print(
            f"| {label} | {name} | {seconds:.3f} | x{ratio:.1f} | {note} | {accuracy:.4f} "
            f"| {peak:.1f} | {mem['hwm_mb']:.1f} / {mem['poll_mb']:.1f} | {x_mb:.1f} |"
        )
    print()
    print("Speed-up of the closed form (peer time / closed-form time):")
    print()
    for line in targets:
        print(line)
    print()


def _is_singular(exc: ValueError) -> bool:
    return "singular" in str(exc)


def _score_cell(scores: list[float], singular: int, total: int) -> str:
    cell = f"{np.mean(scores):.3f} ± {np.std(scores):.3f}" if scores else ""
    if singular:
        rest = f"; the other {len(scores)}: {cell}" if scores else ""
        return f"singular (needs shrinkage) in {singular}/{total}{rest}"
    return cell


def _fit_score(
    factory: Callable[[], Any], X_tr: np.ndarray, y_tr: np.ndarray, X_te: np.ndarray, y_te: Any
) -> float | None:
    """Test accuracy of ``StandardScaler → model``; None if the covariance is singular."""
    pipe = make_pipeline(StandardScaler(), factory())
    try:
        pipe.fit(X_tr, y_tr)
    except ValueError as exc:
        if _is_singular(exc):
            return None
        raise
    return float(pipe.score(X_te, y_te))


def section_cv(quick: bool) -> None:
    seeds = range(3) if quick else range(10)
    print("## cv: scikit-learn bundled datasets, Pipeline(StandardScaler(), model)")
    print()
    print(header())
    print()
    five_fold: dict[str, list[str]] = {}
    small: dict[str, list[str]] = {}
    shapes = {}
    for dname, loader in CV_DATASETS.items():
        X, y = loader(return_X_y=True)
        shapes[dname] = X.shape
        folds = list(StratifiedKFold(n_splits=5, shuffle=True, random_state=0).split(X, y))
        five_fold[dname] = []
        small[dname] = []
        for factory in CV_MODELS.values():
            scores, singular = [], 0
            for train, test in folds:
                s = _fit_score(factory, X[train], y[train], X[test], y[test])
                if s is None:
                    singular += 1
                else:
                    scores.append(s)
            five_fold[dname].append(_score_cell(scores, singular, len(folds)))
            scores, singular = [], 0
            for seed in seeds:
                X_tr, X_te, y_tr, y_te = train_test_split(
                    X, y, train_size=0.1, stratify=y, random_state=seed
                )
                s = _fit_score(factory, X_tr, y_tr, X_te, y_te)
                if s is None:
                    singular += 1
                else:
                    scores.append(s)
            small[dname].append(_score_cell(scores, singular, len(seeds)))
    names = list(CV_MODELS)
    for title, table in (
        ("(a) 5-fold stratified CV accuracy, mean ± std over folds", five_fold),
        (
            f"(b) 10% stratified training split, test accuracy on the other 90%, mean ± std "
            f"over seeds {seeds.start}..{seeds.stop - 1}",
            small,
        ),
    ):
        print(title)
        print()
        print("| dataset (n x d) | " + " | ".join(names) + " |")
        print("|---|" + "---:|" * len(names))
        for dname, cells in table.items():
            n, d = shapes[dname]
            print(f"| {dname} ({n} x {d}) | " + " | ".join(cells) + " |")
        print()


def objective(model: Any, X64: np.ndarray, codes: np.ndarray, C: float) -> float:
    """``Σ_i −log p(y_i|x_i) + ½/C·‖coef‖²`` in float64 (intercepts unpenalised)."""
    log_p = np.asarray(model.predict_log_proba(X64), dtype=np.float64)
    coef = np.asarray(model.coef_, dtype=np.float64)
    nll = -float(log_p[np.arange(len(codes)), codes].sum())
    return nll + 0.5 / C * float((coef * coef).sum())


def section_refine(quick: bool) -> None:
    n_rows = QUICK_ROWS if quick else FULL_ROWS
    C = 1.0
    print(
        f"## refine: make_classification {n_rows:,} x {N_FEATURES} float32, {N_CLASSES} "
        f"classes, C = {C:g} (l2 = 1/C)"
    )
    print()
    print(header())
    print()
    X, y = make_dataset("classification", n_rows)
    X64 = X.astype(np.float64)
    runs: list[tuple[str, Callable[[], Any], int]] = [
        (
            "LogisticRegression(C=1, max_iter=1000, tol=1e-6)",
            lambda: LogisticRegression(C=C, max_iter=1000, tol=1e-6),
            1,
        ),
        (
            "LogisticRegression(C=1) defaults (tol=1e-4, max_iter=100)",
            lambda: LogisticRegression(C=C),
            1,
        ),
    ]
    for k in (0, 1, 2, 3, 5, 8):
        runs.append(
            (
                f"ClosedFormLogisticRegression(refine={k}, l2=1.0)",
                lambda k=k: ClosedFormLogisticRegression(refine=k, l2=1.0 / C),
                3,
            )
        )
    results = []
    for name, factory, repeats in runs:
        seconds, model = timed_fit(factory, X, y, repeats)
        codes = np.searchsorted(model.classes_, y)
        results.append(
            (name, seconds, repeats, objective(model, X64, codes, C), model.score(X, y), model)
        )
    reference = results[0][3]
    print(
        "| estimator | fit time (s) | timing | objective | relative gap to LR(tol=1e-6) "
        "| train accuracy | n_iter_ |"
    )
    print("|---|---:|---|---:|---:|---:|---:|")
    for name, seconds, repeats, obj, accuracy, model in results:
        gap = (obj - reference) / abs(reference)
        timing = f"median of {repeats}" if repeats > 1 else "1 run"
        print(
            f"| {name} | {seconds:.3f} | {timing} | {obj:.6f} | {gap:+.2e} | {accuracy:.4f} "
            f"| {n_iter(model)} |"
        )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="20,000 rows, fewer runs (a smoke test)"
    )
    parser.add_argument(
        "--section", choices=["fit", "cv", "refine", "all"], default="all", help="what to run"
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.section in ("fit", "all"):
        section_fit(args.quick)
    if args.section in ("cv", "all"):
        section_cv(args.quick)
    if args.section in ("refine", "all"):
        section_refine(args.quick)


if __name__ == "__main__":
    main()

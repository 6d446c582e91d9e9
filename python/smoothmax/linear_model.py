"""Closed-form logistic regression: a scikit-learn classifier fitted without gradient descent.

Under the model that every class is Gaussian with its own mean and one shared covariance,
``x | y=k ~ N(μ_k, Σ)`` with prior ``p_k``, the class posterior is exactly a softmax of linear
logits (``seed-math.md`` §2)::

    w_k = Σ⁻¹ μ_k,    b_k = log p_k − ½ μ_k·w_k,    p(k | x) = softmax_k(x·w_k + b_k)

so logistic regression (two classes: the difference of the two rows) and softmax regression get
their weights from one pass of statistics and one ``d × d`` Cholesky solve. This is the model
of scikit-learn's ``LinearDiscriminantAnalysis(solver="lsqr")``; with the default settings the
two give the same coefficients (see :class:`ClosedFormLogisticRegression` for the mapping).

Requires scikit-learn (``pip install 'smoothmax[sklearn]'``).
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

try:
    import scipy.linalg
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "smoothmax.linear_model needs scikit-learn and SciPy: pip install 'smoothmax[sklearn]'"
    ) from exc

from . import _core
from ._api import log_softmax, softmax

__all__ = ["ClassStatistics", "ClosedFormLogisticRegression"]

_EPS = np.finfo(np.float64).eps


@dataclass(frozen=True)
class ClassStatistics:
    """Weighted per-class statistics of a labelled sample, mergeable across samples.

    ``weight[k] = Σ w`` over class ``k``, ``mean[k]`` its weighted mean and ``scatter`` the
    centred scatter ``Σ w (x − μ_y)(x − μ_y)ᵀ``: one ``(d, d)`` matrix pooled over the classes,
    or ``(K, d, d)``, one per class. All float64. :meth:`merge` gives the statistics of the
    union of two samples (Chan et al.'s pairwise update), which is how ``partial_fit``,
    threads and distributed fits (e.g. a Dask tree reduction) combine partial results.
    """

    weight: NDArray[np.float64]
    mean: NDArray[np.float64]
    scatter: NDArray[np.float64]

    @classmethod
    def from_data(
        cls,
        X: NDArray[np.floating[Any]],
        codes: NDArray[np.int64],
        n_classes: int,
        sample_weight: NDArray[np.float64] | None = None,
        *,
        per_class: bool = False,
    ) -> ClassStatistics:
        """One pass over ``X`` (float32/float64, any strides; never copied), GIL released.

        ``codes[i] ∈ [0, n_classes)`` is row ``i``'s class. Raises ``ValueError`` for NaN or
        infinity in ``X``, a code out of range, negative weights or mismatched lengths.
        """
        weight, mean, scatter = _core.class_stats(
            X, codes, n_classes, sample_weight, per_class=per_class
        )
        return cls(weight, mean, scatter)

    def merge(self, other: ClassStatistics) -> ClassStatistics:
        """The statistics of the union of the two samples."""
        return ClassStatistics(
            *_core.merge_class_stats(
                self.weight, self.mean, self.scatter, other.weight, other.mean, other.scatter
            )
        )

    @property
    def pooled_scatter(self) -> NDArray[np.float64]:
        """The within-class scatter pooled over the classes, ``(d, d)``."""
        return self.scatter.sum(axis=0) if self.scatter.ndim == 3 else self.scatter


class _Unsolvable(ValueError):
    """The statistics so far do not determine a model (one class, or a singular covariance)."""


def _ledoit_wolf_shrunk(
    scatter: NDArray[np.float64], weight: float, fourth: float, scale: NDArray[np.float64]
) -> tuple[NDArray[np.float64], float]:
    """The Ledoit–Wolf shrunk covariance of one group, computed as scikit-learn's LDA does
    (``shrinkage='auto'``): standardise the features, shrink the correlation matrix towards
    ``mean(diag)·I``, scale back. ``scale`` is the features' :func:`_standard_scale` and
    ``fourth`` is ``Σ w ‖z‖⁴`` of the rows standardised by it."""
    d = scatter.shape[0]
    cov = scatter / weight
    corr = cov / np.outer(scale, scale)
    if d == 1:
        return cov, 0.0
    trace = float(np.trace(corr))
    mu = trace / d
    delta_ = float(np.sum(corr * corr))
    beta = (fourth / weight - delta_) / (d * weight)
    delta = (delta_ - 2.0 * mu * trace + d * mu * mu) / d
    beta = min(beta, delta)
    alpha = 0.0 if beta == 0 else beta / delta
    shrunk = (1.0 - alpha) * cov
    shrunk[np.diag_indices(d)] += alpha * mu * scale * scale
    return shrunk, alpha


def _standard_scale(var: NDArray[np.float64], weight: float) -> NDArray[np.float64]:
    """Feature scales as ``StandardScaler`` sets them: the standard deviation, 1 when constant."""
    scale = np.sqrt(np.maximum(var, 0.0))
    constant = var <= weight * _EPS * var
    scale[constant | (scale == 0)] = 1.0
    return scale


class ClosedFormLogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic / softmax regression fitted in closed form from class means and a shared
    covariance: one pass over the data and one Cholesky solve, no gradient descent.

    The model assumes each class is Gaussian with its own mean and a covariance shared by all
    classes (LDA's model). Then the class posterior is exactly ``softmax(X @ coef_.T +
    intercept_)`` with ``coef_[k] = Σ⁻¹ μ_k`` and ``intercept_[k] = log p_k − ½ μ_k·coef_[k]``
    (two classes: one row, class 1 minus class 0, as scikit-learn's linear classifiers).
    Prefer it with little data (the Gaussian assumption acts as a prior), for streaming
    (``partial_fit`` merges exact statistics) and when one pass over the data is all you can
    afford; ``refine=k`` adds Newton steps towards the maximum-likelihood answer.

    Parameters
    ----------
    priors : array-like of shape (n_classes,), default=None
        Class priors ``p_k``. Default: the (weighted) class frequencies. Priors only shift the
        intercepts: the covariance weights the classes by their (weighted) counts.
    shrinkage : None, float in [0, 1] or "auto", default=None
        Shrink the covariance towards ``mean(diag(Σ))·I``: ``(1 − α)Σ + α·tr(Σ)/d·I``.
        ``"auto"`` picks ``α`` per class by Ledoit–Wolf on standardised features, exactly as
        ``LinearDiscriminantAnalysis(shrinkage="auto")``; it needs a second pass over the data
        and is not available with ``partial_fit``.
    covariance : {"within", "total"}, default="within"
        ``"within"``: the pooled within-class covariance ``Σ_k (w_k/W) Cov_k`` (divisor ``W =
        Σ w``), the estimator of the Gaussian model. ``"total"``: the covariance of all the data
        (the article's first variant), which adds the between-class spread.
    refine : int, default=0
        Newton steps on the (L2-penalised) multinomial log-likelihood after the closed form,
        computed with smoothmax's softmax kernels; ``fit`` only. Each step is a truncated
        Newton (conjugate-gradient) step with a backtracking line search.
    l2 : float, default=0.0
        L2 penalty of the refinement, ``Σ_i w_i·(−log p(y_i | x_i)) + l2/2·‖coef‖²``
        (intercepts unpenalised). ``l2 = 1/C`` gives ``LogisticRegression(C=C)``'s objective.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) for two classes, else (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    means_ : ndarray of shape (n_classes, n_features)
        Weighted class means (zero for a class with no weight).
    priors_ : ndarray of shape (n_classes,)
    covariance_ : ndarray of shape (n_features, n_features)
        The shared covariance after shrinkage.
    shrinkage_ : float or ndarray of shape (n_classes,)
        The shrinkage applied (per class with ``"auto"`` and ``covariance="within"``).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when ``X`` has feature names that are all strings.

    Notes
    -----
    Mapping to ``LinearDiscriminantAnalysis(solver="lsqr")``: with default priors the same
    ``coef_``, ``intercept_``, ``means_``, ``covariance_`` (biased per-class covariances,
    divisor ``n_k``), for ``shrinkage`` None, a float or ``"auto"``. Differences: here the
    covariance always weights classes by their counts, while LDA weights them by ``priors``
    (so they differ when you pass ``priors``); a singular covariance raises instead of taking
    a least-squares solution, except that features constant in every class get weight 0;
    ``predict_log_proba`` is an exact ``log_softmax`` (LDA clips at about −708); and this
    estimator takes ``sample_weight`` and ``partial_fit``.

    float32 ``X`` gives float32 ``coef_``, ``intercept_``, ``means_``, ``covariance_`` and
    float32 decision values and probabilities; statistics are always accumulated in float64.
    """

    def __init__(
        self,
        *,
        priors: ArrayLike | None = None,
        shrinkage: float | Literal["auto"] | None = None,
        covariance: Literal["within", "total"] = "within",
        refine: int = 0,
        l2: float = 0.0,
    ) -> None:
        self.priors = priors
        self.shrinkage = shrinkage
        self.covariance = covariance
        self.refine = refine
        self.l2 = l2

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.classifier_tags.multi_class = True
        return tags

    # ------------------------------------------------------------------ validation

    def _check_params(self) -> None:
        shrinkage = self.shrinkage
        if not (
            shrinkage is None
            or (isinstance(shrinkage, str) and shrinkage == "auto")
            or (
                isinstance(shrinkage, numbers.Real)
                and not isinstance(shrinkage, bool)
                and 0.0 <= float(shrinkage) <= 1.0
            )
        ):
            raise ValueError(
                f"shrinkage must be None, 'auto' or a float in [0, 1], got {shrinkage!r}"
            )
        if self.covariance not in ("within", "total"):
            raise ValueError(f"covariance must be 'within' or 'total', got {self.covariance!r}")
        if (
            not isinstance(self.refine, numbers.Integral)
            or isinstance(self.refine, bool)
            or self.refine < 0
        ):
            raise ValueError(f"refine must be an integer >= 0, got {self.refine!r}")
        if not (isinstance(self.l2, numbers.Real) and np.isfinite(self.l2) and self.l2 >= 0):
            raise ValueError(f"l2 must be a finite float >= 0, got {self.l2!r}")

    def _validate_X(self, X: ArrayLike, *, reset: bool) -> NDArray[np.floating[Any]]:
        # Finiteness is checked during the statistics pass (no extra pass over X).
        return validate_data(  # type: ignore[no-any-return]
            self,
            X,
            reset=reset,
            dtype=[np.float64, np.float32],
            ensure_all_finite=False,
        )

    def _codes(self, y: NDArray[Any]) -> NDArray[np.int64]:
        codes = np.searchsorted(self.classes_, y)
        codes = np.minimum(codes, len(self.classes_) - 1)
        unknown = self.classes_[codes] != y
        if np.any(unknown):
            raise ValueError(
                f"y contains labels not in classes_ {self.classes_.tolist()}: "
                f"{np.unique(y[unknown]).tolist()}"
            )
        return codes.astype(np.int64)

    def _sample_weight(
        self, sample_weight: ArrayLike | None, X: NDArray[Any]
    ) -> NDArray[np.float64] | None:
        if sample_weight is None:
            return None
        return _check_sample_weight(  # type: ignore[no-any-return]
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )

    # ------------------------------------------------------------------ fitting

    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> ClosedFormLogisticRegression:
        """Fit from one pass of per-class statistics (two with ``shrinkage="auto"``)."""
        self._check_params()
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, name)
        Xv, yv = validate_data(
            self,
            X,
            y,
            dtype=[np.float64, np.float32],
            ensure_all_finite=False,
            ensure_min_samples=1,
        )
        check_classification_targets(yv)
        self.classes_, codes = np.unique(yv, return_inverse=True)
        codes = codes.astype(np.int64).reshape(-1)
        sw = self._sample_weight(sample_weight, Xv)
        per_class = self.shrinkage == "auto" and self.covariance == "within"
        self._stats = ClassStatistics.from_data(
            Xv, codes, len(self.classes_), sw, per_class=per_class
        )
        try:
            self._solve(Xv.dtype, fourth=(Xv, codes, sw))
        except _Unsolvable as why:
            raise ValueError(str(why)) from None
        if self.refine:
            self._refine(Xv, codes, sw)
        return self

    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        classes: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> ClosedFormLogisticRegression:
        """Update the statistics with a batch and re-solve (exactly ``fit`` on all batches).

        ``classes`` (all the labels) must be given on the first call. While the batches seen
        so far do not determine a model (a single class, or a singular covariance without
        shrinkage) the statistics are kept and predicting raises ``NotFittedError`` saying why.
        """
        self._check_params()
        if self.shrinkage == "auto":
            raise ValueError(
                "shrinkage='auto' (Ledoit-Wolf) needs fourth moments around the final means, "
                "which cannot be updated batch by batch: use fit(), or a float shrinkage with "
                "partial_fit"
            )
        if self.refine:
            raise ValueError("refine needs all the data at once: use fit(), or refine=0")
        first = not hasattr(self, "classes_")
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            labels = np.asarray(classes)
            check_classification_targets(labels)
            self.classes_ = np.unique(labels)
            Xv, yv = validate_data(
                self, X, y, dtype=[np.float64, np.float32], ensure_all_finite=False, reset=True
            )
        else:
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(
                    f"classes {np.unique(classes).tolist()} differ from those of the first "
                    f"call to partial_fit {self.classes_.tolist()}"
                )
            Xv, yv = validate_data(
                self, X, y, dtype=[np.float64, np.float32], ensure_all_finite=False, reset=False
            )
        check_classification_targets(yv)
        codes = self._codes(np.asarray(yv).reshape(-1))
        sw = self._sample_weight(sample_weight, Xv)
        batch = ClassStatistics.from_data(Xv, codes, len(self.classes_), sw)
        self._stats = batch if first else self._stats.merge(batch)
        try:
            self._solve(Xv.dtype, fourth=None)
            self._unsolved = None
        except _Unsolvable as why:
            for name in ("coef_", "intercept_", "covariance_", "shrinkage_"):
                if hasattr(self, name):
                    delattr(self, name)
            self._unsolved = str(why)
        return self

    def _covariance(
        self, fourth: tuple[NDArray[Any], NDArray[np.int64], NDArray[np.float64] | None] | None
    ) -> tuple[NDArray[np.float64], float | NDArray[np.float64]]:
        st = self._stats
        total_weight = float(st.weight.sum())
        frac = st.weight / total_weight
        pooled = st.pooled_scatter
        d = pooled.shape[0]
        if self.shrinkage == "auto":
            assert fourth is not None
            X, codes, sw = fourth
            if self.covariance == "within":
                present = np.flatnonzero(st.weight > 0)
                centre = st.mean
                scale = np.ones_like(centre)
                for k in present:
                    scale[k] = _standard_scale(np.diag(st.scatter[k]) / st.weight[k], st.weight[k])
                inv_scale = 1.0 / scale
                moments = _core.standardized_fourth_moments(X, codes, centre, inv_scale, sw)
                cov = np.zeros((d, d))
                alphas = np.zeros(len(st.weight))
                for k in present:
                    shrunk, alphas[k] = _ledoit_wolf_shrunk(
                        st.scatter[k], st.weight[k], moments[k], scale[k]
                    )
                    cov += frac[k] * shrunk
                return cov, alphas
            total, grand = self._total_scatter(total_weight)
            scale = _standard_scale(np.diag(total) / total_weight, total_weight)
            moments = _core.standardized_fourth_moments(
                X, None, grand[None, :], (1.0 / scale)[None, :], sw
            )
            cov, alpha = _ledoit_wolf_shrunk(total, total_weight, moments[0], scale)
            return cov, alpha
        if self.covariance == "within":
            cov = pooled / total_weight
        else:
            cov = self._total_scatter(total_weight)[0] / total_weight
        alpha = 0.0 if self.shrinkage is None else float(self.shrinkage)
        if alpha:
            # Linear in the covariance: shrinking the pooled matrix equals LDA's prior-weighted
            # sum of shrunk per-class matrices.
            target = np.trace(cov) / d
            cov = (1.0 - alpha) * cov
            cov[np.diag_indices(d)] += alpha * target
        return cov, alpha

    def _total_scatter(
        self, total_weight: float
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Scatter of all the data around the grand mean (within-class plus between-class),
        and the grand mean."""
        st = self._stats
        grand = (st.weight @ st.mean) / total_weight
        dev = st.mean - grand
        return st.pooled_scatter + (dev * st.weight[:, None]).T @ dev, grand

    def _priors(self) -> NDArray[np.float64]:
        weight = self._stats.weight
        if self.priors is None:
            return weight / weight.sum()  # type: ignore[no-any-return]
        priors = np.asarray(self.priors, dtype=np.float64)
        if priors.shape != weight.shape:
            raise ValueError(
                f"priors must have one entry per class ({weight.shape[0]}), got shape "
                f"{priors.shape}"
            )
        if not np.all(np.isfinite(priors)) or np.any(priors < 0) or priors.sum() <= 0:
            raise ValueError("priors must be finite, non-negative and not all zero")
        if abs(priors.sum() - 1.0) > 1e-5:
            warnings.warn("The priors do not sum to 1. Renormalizing", UserWarning, stacklevel=3)
            priors = priors / priors.sum()
        return priors

    def _solve_weights(
        self, cov: NDArray[np.float64], means: NDArray[np.float64], present: NDArray[np.bool_]
    ) -> NDArray[np.float64]:
        """``Σ⁻¹ μ_k`` for every class by Cholesky; features constant in every class get 0."""
        kind = "within-class" if self.covariance == "within" else "total"
        k_classes, d = means.shape
        tol = 16 * d * _EPS
        magnitude = np.abs(means[present]).max(axis=0)
        diag = np.diag(cov)
        dead = diag <= (tol * magnitude) ** 2
        if np.any(dead):
            spread = np.ptp(means[present][:, dead], axis=0)
            separating = spread > tol * magnitude[dead]
            if np.any(separating):
                j = int(np.flatnonzero(dead)[np.argmax(separating)])
                raise _Unsolvable(
                    f"The {kind} covariance matrix is singular: feature {j} does not vary "
                    "within any class but differs between classes (it separates them "
                    "perfectly). Pass shrinkage='auto' or a float in (0, 1] to regularise it."
                )
        coef = np.zeros((k_classes, d))
        live = ~dead
        if not np.any(live):
            return coef
        sub = cov[np.ix_(live, live)]
        singular = _Unsolvable(
            f"The {kind} covariance matrix is singular (collinear or constant features, or "
            "fewer samples than features); the closed form needs it positive definite. Pass "
            "shrinkage='auto' or a float in (0, 1] to regularise it."
        )
        try:
            factor, lower = scipy.linalg.cho_factor(sub, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            raise singular from None
        # Each pivot is a feature's variance left after regressing out the features before it;
        # a relative pivot near rounding means the matrix is numerically singular.
        pivots = np.diag(factor) ** 2 / np.diag(sub)
        if not np.all(pivots > d * _EPS):
            raise singular
        coef[:, live] = scipy.linalg.cho_solve(
            (factor, lower), means[:, live].T, check_finite=False
        ).T
        return coef

    def _solve(
        self,
        dtype: np.dtype[Any],
        fourth: tuple[NDArray[Any], NDArray[np.int64], NDArray[np.float64] | None] | None,
    ) -> None:
        st = self._stats
        present = st.weight > 0
        if np.count_nonzero(present) < 2:
            raise _Unsolvable(
                f"{type(self).__name__} needs samples of at least 2 classes with positive "
                f"weight; got {np.count_nonzero(present)} class"
            )
        priors = self._priors()
        cov, alpha = self._covariance(fourth)
        coef = self._solve_weights(cov, st.mean, present)
        with np.errstate(divide="ignore"):
            log_priors = np.log(priors)
        # A class without samples has no mean: it is never predicted.
        log_priors[~present] = -np.inf
        intercept = log_priors - 0.5 * np.einsum("kj,kj->k", st.mean, coef)
        self._full_coef, self._full_intercept = coef, intercept
        self.priors_ = priors
        self.means_ = st.mean.astype(dtype)
        self.covariance_ = cov.astype(dtype)
        self.shrinkage_ = alpha
        self._set_linear(coef, intercept, dtype)

    def _set_linear(
        self, coef: NDArray[np.float64], intercept: NDArray[np.float64], dtype: np.dtype[Any]
    ) -> None:
        if coef.shape[0] == 2:
            coef = coef[1:] - coef[:1]
            intercept = intercept[1:] - intercept[:1]
        self.coef_ = coef.astype(dtype)
        self.intercept_ = intercept.astype(dtype)

    def _refine(
        self,
        X: NDArray[np.floating[Any]],
        codes: NDArray[np.int64],
        sample_weight: NDArray[np.float64] | None,
    ) -> None:
        """Newton steps on the penalised log-likelihood of the training data, from the closed
        form; custom priors are applied afterwards as the Bayes shift ``log(p_k / f_k)``."""
        st = self._stats
        present = np.flatnonzero(st.weight > 0)
        frac = st.weight / st.weight.sum()
        weight = np.ones(X.shape[0]) if sample_weight is None else sample_weight.copy()
        remap = np.full(len(self.classes_), -1)
        remap[present] = np.arange(len(present))
        local = remap[codes]
        weight[local < 0] = 0.0
        local[local < 0] = 0
        coef = self._full_coef[present]
        with np.errstate(divide="ignore"):
            intercept = np.log(frac[present]) - 0.5 * np.einsum("kj,kj->k", st.mean[present], coef)
        binary = len(self.classes_) == 2
        if binary:
            coef, intercept = coef[1:] - coef[:1], intercept[1:] - intercept[:1]
        else:
            # Softmax is unchanged by a common shift; the centred rows have the least penalty.
            coef = coef - coef.mean(axis=0)
            intercept = intercept - intercept.mean()
        coef, intercept, self.n_iter_ = _newton_refine(
            X, local, weight, coef, intercept, float(self.l2), int(self.refine), binary
        )
        with np.errstate(divide="ignore"):
            shift = np.log(self.priors_[present]) - np.log(frac[present])
        full_coef = np.zeros_like(self._full_coef)
        full_intercept = np.full(len(self.classes_), -np.inf)
        if binary:
            full_coef[1] = coef[0]
            full_intercept[:] = [0.0, intercept[0]]
        else:
            full_coef[present] = coef
            full_intercept[present] = intercept
        full_intercept[present] += shift
        self._full_coef, self._full_intercept = full_coef, full_intercept
        self._set_linear(full_coef, full_intercept, X.dtype)

    # ------------------------------------------------------------------ prediction

    def _check_fitted(self) -> None:
        check_is_fitted(self, "classes_")
        if not hasattr(self, "coef_"):
            raise NotFittedError(
                f"This {type(self).__name__} has statistics but no model yet: "
                f"{getattr(self, '_unsolved', 'not fitted')}"
            )

    def decision_function(self, X: ArrayLike) -> NDArray[np.floating[Any]]:
        """``X @ coef_.T + intercept_``: shape (n_samples,) for two classes (the log-odds of
        class 1), else (n_samples, n_classes)."""
        self._check_fitted()
        Xv = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        scores = Xv @ self.coef_.T.astype(Xv.dtype) + self.intercept_.astype(Xv.dtype)
        return scores.ravel() if scores.shape[1] == 1 else scores  # type: ignore[no-any-return]

    def _logits(self, X: ArrayLike) -> NDArray[np.floating[Any]]:
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return np.stack([np.zeros_like(scores), scores], axis=1)
        return scores

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """The class of highest posterior probability."""
        scores = self.decision_function(X)
        index = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[index]  # type: ignore[no-any-return]

    def predict_proba(self, X: ArrayLike) -> NDArray[np.floating[Any]]:
        """Class probabilities: smoothmax's ``softmax`` of the logits (≤ 4 ULP)."""
        return softmax(self._logits(X), axis=1)

    def predict_log_proba(self, X: ArrayLike) -> NDArray[np.floating[Any]]:
        """Log-probabilities by an exact ``log_softmax`` (not ``log(predict_proba)``): accurate
        far below ``log`` of the smallest float."""
        return log_softmax(self._logits(X), axis=1)


def _newton_refine(
    X: NDArray[np.floating[Any]],
    codes: NDArray[np.int64],
    weight: NDArray[np.float64],
    coef: NDArray[np.float64],
    intercept: NDArray[np.float64],
    l2: float,
    steps: int,
    binary: bool,
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """Truncated Newton (conjugate gradients on exact Hessian-vector products, backtracking
    line search) on ``Σ w_i·(−log p(y_i|x_i)) + l2/2·‖coef‖²``. ``binary``: one row of
    parameters for the log-odds of class 1 (logits ``[0, s]``); else one row per class."""
    n = X.shape[0]
    rows = np.arange(n)
    n_cols = 2 if binary else coef.shape[0]
    onehot = np.zeros((n, n_cols))
    onehot[rows, codes] = 1.0

    def scores(w: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
        return (X @ w.T.astype(X.dtype)).astype(np.float64) + b  # type: ignore[no-any-return]

    def logits(s: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.column_stack([np.zeros(n), s[:, 0]]) if binary else s

    def objective(
        w: NDArray[np.float64], b: NDArray[np.float64]
    ) -> tuple[float, NDArray[np.float64]]:
        log_p = log_softmax(logits(scores(w, b)), axis=1)
        return float(-(weight * log_p[rows, codes]).sum() + 0.5 * l2 * (w * w).sum()), log_p

    def back(m: NDArray[np.float64]) -> NDArray[np.float64]:
        return (m.T.astype(X.dtype) @ X).astype(np.float64)  # type: ignore[no-any-return]

    f, log_p = objective(coef, intercept)
    done = 0
    for _ in range(steps):
        prob = np.exp(log_p)
        resid = weight[:, None] * (prob - onehot)
        if binary:
            resid, prob = resid[:, 1:], prob[:, 1:]
        g_w, g_b = back(resid) + l2 * coef, resid.sum(axis=0)
        if not binary:
            # A common shift of the intercepts changes nothing (softmax): keep the steps in the
            # zero-sum subspace, where the Hessian is regular. Rounding in the probabilities
            # otherwise leaves a tiny gradient along the shift that CG divides by a tiny
            # curvature, and the intercepts drift by a constant.
            g_b = g_b - g_b.mean()
        g_norm = float(np.sqrt((g_w * g_w).sum() + (g_b * g_b).sum()))
        if not np.isfinite(g_norm) or g_norm == 0.0:
            break

        def hess(
            v_w: NDArray[np.float64],
            v_b: NDArray[np.float64],
            prob: NDArray[np.float64] = prob,
        ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
            a = scores(v_w, v_b)
            if binary:
                m = weight[:, None] * prob * (1.0 - prob) * a
            else:
                m = weight[:, None] * prob * (a - (prob * a).sum(axis=1, keepdims=True))
            h_b = m.sum(axis=0)
            return back(m) + l2 * v_w, h_b if binary else h_b - h_b.mean()

        s_w, s_b = np.zeros_like(coef), np.zeros_like(intercept)
        r_w, r_b = -g_w, -g_b
        p_w, p_b = r_w.copy(), r_b.copy()
        rr = g_norm**2
        tol = min(0.5, np.sqrt(g_norm)) * g_norm
        for _cg in range(max(10, min(200, coef.size + intercept.size))):
            h_w, h_b = hess(p_w, p_b)
            curvature = float((p_w * h_w).sum() + (p_b * h_b).sum())
            if curvature <= 0.0:
                break
            step = rr / curvature
            s_w, s_b = s_w + step * p_w, s_b + step * p_b
            r_w, r_b = r_w - step * h_w, r_b - step * h_b
            rr_new = float((r_w * r_w).sum() + (r_b * r_b).sum())
            if np.sqrt(rr_new) <= tol:
                break
            p_w, p_b = r_w + (rr_new / rr) * p_w, r_b + (rr_new / rr) * p_b
            rr = rr_new
        slope = float((g_w * s_w).sum() + (g_b * s_b).sum())
        if not slope < 0.0:
            break
        t = 1.0
        while t > 1e-10:
            f_new, log_p_new = objective(coef + t * s_w, intercept + t * s_b)
            if f_new <= f + 1e-4 * t * slope:
                break
            t *= 0.5
        else:
            break
        coef, intercept, f, log_p = coef + t * s_w, intercept + t * s_b, f_new, log_p_new
        done += 1
    if not binary:
        intercept = intercept - intercept.mean()
    return coef, intercept, done

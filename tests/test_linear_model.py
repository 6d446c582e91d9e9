"""ClosedFormLogisticRegression and its statistics kernel (seed-math §2, issue 4)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from scipy.special import expit
from sklearn import datasets
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import smoothmax
from smoothmax.linear_model import ClassStatistics, ClosedFormLogisticRegression

CF = ClosedFormLogisticRegression

# Checks that contradict a documented design choice, with the reason.
_SINGULAR = (
    "the check's data make the covariance singular (a feature constant within each class "
    "that separates them, or fewer samples than features): raising a ValueError that "
    "suggests shrinkage is this estimator's contract"
)
_EXACT_LOG = (
    "predict_log_proba is an exact float32 log_softmax; the check compares it with "
    "log(predict_proba), which is 0 wherever the float32 probability rounds to 1"
)
_NO_PARTIAL = "partial_fit refuses shrinkage='auto' and refine > 0 (they need all the data)"


def _expected_failures(estimator: CF) -> dict[str, str]:
    # Only the float32 variant of check_classifiers_train fails (hence xfail_strict=False).
    failures = {"check_classifiers_train": _EXACT_LOG}
    if estimator.shrinkage is None:
        failures |= {
            "check_sample_weights_shape": _SINGULAR,
            "check_sample_weights_not_overwritten": _SINGULAR,
            "check_sample_weight_equivalence_on_dense_data": _SINGULAR,
        }
    if estimator.shrinkage == "auto":
        failures |= {"check_sample_weights_shape": _SINGULAR}
    if estimator.shrinkage == "auto" or estimator.refine:
        failures |= {
            "check_fit_score_takes_y": _NO_PARTIAL,
            "check_n_features_in_after_fitting": _NO_PARTIAL,
            "check_estimators_partial_fit_n_features": _NO_PARTIAL,
        }
    return failures


@parametrize_with_checks(
    [
        CF(),
        CF(shrinkage="auto"),
        CF(shrinkage=0.2, covariance="total"),
        CF(shrinkage=0.3, refine=2, l2=1.0),
    ],
    expected_failed_checks=_expected_failures,
    xfail_strict=False,
)
def test_sklearn_contract(estimator, check):
    check(estimator)


# ---------------------------------------------------------------- reference implementation


def _closed_form_reference(X, y, shrinkage=None, covariance="within"):
    """Direct NumPy/LAPACK version of seed-math §2 (two-pass, float64)."""
    X = np.asarray(X, dtype=np.float64)
    classes, codes = np.unique(y, return_inverse=True)
    n, d = X.shape
    means = np.array([X[codes == k].mean(axis=0) for k in range(len(classes))])
    priors = np.bincount(codes) / n
    if covariance == "within":
        centred = X - means[codes]
    else:
        centred = X - X.mean(axis=0)
    cov = centred.T @ centred / n
    if shrinkage:
        cov = (1 - shrinkage) * cov + shrinkage * np.trace(cov) / d * np.eye(d)
    coef = np.linalg.solve(cov, means.T).T
    intercept = np.log(priors) - 0.5 * np.sum(means * coef, axis=1)
    return coef, intercept, means, cov


DATASETS = ["iris", "wine", "breast_cancer", "digits"]


def _load(name):
    return getattr(datasets, f"load_{name}")(return_X_y=True)


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("shrinkage", [None, 0.1, "auto"])
def test_equals_lda_lsqr_on_bundled_datasets(name, shrinkage):
    X, y = _load(name)
    ours = CF(shrinkage=shrinkage).fit(X, y)
    lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=shrinkage).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), lda.predict_proba(X), rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.means_, lda.means_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.priors_, lda.priors_, rtol=1e-15)
    np.testing.assert_allclose(
        ours.covariance_, lda.covariance_, rtol=1e-9, atol=1e-12 * np.abs(lda.covariance_).max()
    )
    scale = np.abs(lda.coef_).max()
    np.testing.assert_allclose(ours.coef_, lda.coef_, rtol=0, atol=1e-6 * scale)
    np.testing.assert_array_equal(ours.predict(X), lda.predict(X))


@pytest.mark.parametrize("covariance", ["within", "total"])
@pytest.mark.parametrize("shrinkage", [None, 0.25])
def test_matches_direct_numpy_reference(covariance, shrinkage):
    X, y = _load("wine")
    X = StandardScaler().fit_transform(X)
    y3 = y
    model = CF(covariance=covariance, shrinkage=shrinkage).fit(X, y3)
    coef, intercept, _, cov = _closed_form_reference(X, y3, shrinkage, covariance)
    np.testing.assert_allclose(model.coef_, coef, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.intercept_, intercept, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.covariance_, cov, rtol=1e-12, atol=1e-14)


def test_within_covariance_is_prior_weighted_class_covariance():
    """seed-math §2: Σ = Σ̃ + μ̃ᵀμ̃ − Σ p_i μ_iᵀμ_i equals Σ_i p_i Cov_i (divisor N_i)."""
    X, y = _load("iris")
    model = CF().fit(X, y)
    total = np.cov(X.T, bias=True)
    grand = X.mean(axis=0)
    moment = (
        total
        + np.outer(grand, grand)
        - sum(p * np.outer(m, m) for p, m in zip(model.priors_, model.means_, strict=True))
    )
    np.testing.assert_allclose(model.covariance_, moment, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- statistics and merging


def _blobs(n=600, d=5, k=3, seed=0, offset=0.0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    centres = rng.normal(size=(k, d)) * 2
    mixing = rng.normal(size=(d, d)) * 0.3 + np.eye(d)
    X = offset + centres[y] + rng.normal(size=(n, d)) @ mixing * 0.5
    return X.astype(dtype), y


def test_partial_fit_over_chunks_equals_fit():
    X, y = _blobs(n=2000, d=6, k=4, seed=1, offset=50.0)
    whole = CF().fit(X, y)
    streamed = CF()
    # The first chunk holds a single class: the model waits for more data.
    order = np.argsort(y, kind="stable")
    Xs, ys = X[order], y[order]
    chunks = [slice(0, 100), slice(100, 1000), slice(1000, 1001), slice(1001, 2000)]
    streamed.partial_fit(Xs[chunks[0]], ys[chunks[0]], classes=np.unique(y))
    with pytest.raises(NotFittedError, match="class"):
        streamed.predict(X[:3])
    for c in chunks[1:]:
        streamed.partial_fit(Xs[c], ys[c])
    for attr in ("coef_", "intercept_", "means_", "covariance_", "priors_"):
        np.testing.assert_allclose(
            getattr(streamed, attr), getattr(whole, attr), rtol=1e-9, atol=1e-12
        )


def test_partial_fit_validation():
    X, y = _blobs()
    with pytest.raises(ValueError, match="classes must be passed"):
        CF().partial_fit(X, y)
    model = CF().partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="not in classes_"):
        model.partial_fit(X, y + 5)
    with pytest.raises(ValueError, match="differ"):
        model.partial_fit(X, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="auto"):
        CF(shrinkage="auto").partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="refine"):
        CF(refine=1).partial_fit(X, y, classes=[0, 1, 2])


def test_statistics_merge_equals_union_any_layout_and_dtype():
    X, y = _blobs(n=3000, d=7, k=3, seed=2, offset=1e4)
    codes = y.astype(np.int64)
    whole = ClassStatistics.from_data(X, codes, 3)
    a = ClassStatistics.from_data(X[:1234], codes[:1234], 3)
    b = ClassStatistics.from_data(X[1234:], codes[1234:], 3)
    merged = a.merge(b)
    np.testing.assert_allclose(merged.weight, whole.weight, rtol=0)
    np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-14)
    np.testing.assert_allclose(merged.scatter, whole.scatter, rtol=1e-11)
    # Reference: two-pass centred scatter.
    means = np.array([X[y == k].mean(axis=0) for k in range(3)])
    e = X - means[y]
    np.testing.assert_allclose(whole.scatter, e.T @ e, rtol=1e-11)
    per_class = ClassStatistics.from_data(X, codes, 3, per_class=True)
    assert per_class.scatter.shape == (3, 7, 7)
    np.testing.assert_allclose(per_class.pooled_scatter, whole.scatter, rtol=1e-12)
    # Fortran order, negative strides, a strided view: same statistics, input untouched.
    before = X.copy()
    for view, cv in [
        (np.asfortranarray(X), codes),
        (X[::-1], codes[::-1]),
        (np.repeat(X, 2, axis=1)[:, ::2], codes),
    ]:
        got = ClassStatistics.from_data(view, np.ascontiguousarray(cv), 3)
        np.testing.assert_allclose(got.scatter, whole.scatter, rtol=1e-11)
    np.testing.assert_array_equal(X, before)
    # float32 data: exact widening, float64 accumulation.
    X32 = X.astype(np.float32)
    got32 = ClassStatistics.from_data(X32, codes, 3)
    ref32 = ClassStatistics.from_data(X32.astype(np.float64), codes, 3)
    np.testing.assert_allclose(got32.scatter, ref32.scatter, rtol=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
def test_statistics_threads_agree(threads):
    X, y = _blobs(n=40000, d=40, k=5, seed=3)
    codes = y.astype(np.int64)
    old = smoothmax.get_num_threads()
    try:
        smoothmax.set_num_threads(1)
        one = ClassStatistics.from_data(X, codes, 5)
        smoothmax.set_num_threads(threads)
        many = ClassStatistics.from_data(X, codes, 5)
    finally:
        smoothmax.set_num_threads(old)
    np.testing.assert_allclose(many.scatter, one.scatter, rtol=1e-13)
    np.testing.assert_allclose(many.mean, one.mean, rtol=1e-14)


def test_integer_sample_weight_equals_repeating_rows():
    X, y = _blobs(n=300, d=4, k=3, seed=4)
    sw = np.random.default_rng(4).integers(0, 4, len(y))
    weighted = CF().fit(X, y, sample_weight=sw)
    repeated = CF().fit(np.repeat(X, sw, axis=0), np.repeat(y, sw))
    for attr in ("coef_", "intercept_", "means_", "covariance_", "priors_"):
        np.testing.assert_allclose(
            getattr(weighted, attr), getattr(repeated, attr), rtol=1e-11, atol=1e-13
        )


def test_binary_weights_are_the_difference_of_the_two_rows():
    X, y = _blobs(n=500, d=5, k=2, seed=5)
    model = CF().fit(X, y)
    coef, intercept, _, _ = _closed_form_reference(X, y)
    assert model.coef_.shape == (1, 5) and model.intercept_.shape == (1,)
    np.testing.assert_allclose(model.coef_[0], coef[1] - coef[0], rtol=1e-11)
    np.testing.assert_allclose(model.intercept_[0], intercept[1] - intercept[0], rtol=1e-11)
    scores = model.decision_function(X)
    assert scores.shape == (500,)
    np.testing.assert_array_equal(model.predict(X), np.where(scores > 0, 1, 0))
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba[:, 1], expit(scores), rtol=1e-14)


def test_affine_invariance_of_logit_differences():
    """seed-math §2: x → xA + c (A invertible) leaves the logit differences unchanged."""
    X, y = _blobs(n=800, d=6, k=4, seed=6)
    rng = np.random.default_rng(6)
    A = rng.normal(size=(6, 6)) + 3 * np.eye(6)
    c = rng.normal(size=6) * 10
    base = CF().fit(X, y).decision_function(X)
    moved = CF().fit(X @ A + c, y).decision_function(X @ A + c)
    np.testing.assert_allclose(moved - moved[:, :1], base - base[:, :1], rtol=1e-9, atol=1e-9)


def test_posterior_approaches_bayes_posterior():
    """Data drawn exactly from a shared-covariance Gaussian mixture: the fitted posterior
    converges to the true one as N grows."""
    rng = np.random.default_rng(7)
    d, k = 3, 3
    mu = rng.normal(size=(k, d)) * 2
    L = rng.normal(size=(d, d)) * 0.5 + np.eye(d)
    cov = L @ L.T
    priors = np.array([0.5, 0.3, 0.2])
    x_test = rng.normal(size=(200, d)) * 2
    w = np.linalg.solve(cov, mu.T).T
    b = np.log(priors) - 0.5 * np.sum(mu * w, axis=1)
    true = smoothmax.softmax(x_test @ w.T + b, axis=1)
    errors = []
    for n in (1000, 100000):
        y = rng.choice(k, size=n, p=priors)
        X = mu[y] + rng.normal(size=(n, d)) @ L.T
        fitted = CF().fit(X, y).predict_proba(x_test)
        errors.append(np.abs(fitted - true).max())
    assert errors[1] < errors[0] / 3
    assert errors[1] < 0.02


# ---------------------------------------------------------------- dtypes and outputs


def test_float32_preserved_and_close_to_float64():
    X, y = _blobs(n=1000, d=8, k=3, seed=8)
    m32 = CF().fit(X.astype(np.float32), y)
    m64 = CF().fit(X, y)
    for attr in ("coef_", "intercept_", "means_", "covariance_"):
        assert getattr(m32, attr).dtype == np.float32
    X32 = X.astype(np.float32)
    for method in ("decision_function", "predict_proba", "predict_log_proba"):
        assert getattr(m32, method)(X32).dtype == np.float32
    np.testing.assert_allclose(m32.predict_proba(X32), m64.predict_proba(X), atol=1e-5)


def test_predict_log_proba_is_exact_far_from_the_data():
    X, y = _blobs(n=400, d=2, k=3, seed=9)
    model = CF().fit(X, y)
    far = np.array([[1e3, 1e3], [-1e3, 5e2]])
    logits = model.decision_function(far)
    want = logits - np.max(logits, axis=1, keepdims=True)
    want -= np.log(np.sum(np.exp(want), axis=1, keepdims=True))
    got = model.predict_log_proba(far)
    assert np.all(np.isfinite(got)) and got.min() < -800
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0, rtol=1e-14)


def test_custom_priors_shift_only_the_intercepts():
    X, y = _blobs(n=600, d=4, k=3, seed=10)
    base = CF().fit(X, y)
    priors = np.array([0.2, 0.3, 0.5])
    model = CF(priors=priors).fit(X, y)
    np.testing.assert_allclose(model.coef_, base.coef_, rtol=1e-15)
    np.testing.assert_allclose(
        model.intercept_ - base.intercept_, np.log(priors) - np.log(base.priors_), rtol=1e-12
    )
    with pytest.warns(UserWarning, match="Renormalizing"):
        CF(priors=[1, 1, 2]).fit(X, y)
    with pytest.raises(ValueError, match="priors"):
        CF(priors=[0.5, 0.5]).fit(X, y)
    with pytest.raises(ValueError, match="priors"):
        CF(priors=[-0.5, 1.0, 0.5]).fit(X, y)


def test_zero_weight_class_is_never_predicted():
    X, y = _blobs(n=300, d=3, k=3, seed=11)
    sw = np.where(y == 2, 0.0, 1.0)
    model = CF().fit(X, y, sample_weight=sw)
    assert model.intercept_[2] == -np.inf
    assert np.all(model.predict(X) != 2)
    np.testing.assert_array_equal(model.predict_proba(X)[:, 2], 0.0)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_rejects_non_finite_X(bad):
    X, y = _blobs()
    X[5, 2] = bad
    with pytest.raises(ValueError, match="NaN or infinity"):
        CF().fit(X, y)
    model = CF().fit(*_blobs())
    with pytest.raises(ValueError, match=r"NaN|infinity"):
        model.predict(X)


def test_input_errors_are_clear():
    X, y = _blobs()
    with pytest.raises(ValueError, match="class"):
        CF().fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        CF().fit(X, y[:-1])
    with pytest.raises(ValueError, match=r"sample_weight|Negative"):
        CF().fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="class"):
        CF().fit(X, y, sample_weight=(y == 1).astype(float))
    with pytest.raises(ValueError, match="shrinkage"):
        CF(shrinkage=1.5).fit(X, y)
    with pytest.raises(ValueError, match="covariance"):
        CF(covariance="full").fit(X, y)
    with pytest.raises(ValueError, match="refine"):
        CF(refine=-1).fit(X, y)
    with pytest.raises(ValueError, match="l2"):
        CF(l2=-1.0).fit(X, y)


def test_singular_covariance_suggests_shrinkage():
    X, y = _blobs(n=300, d=4, k=3)
    collinear = np.column_stack([X, X[:, 0] + 2 * X[:, 1]])
    with pytest.raises(ValueError, match=r"singular.*shrinkage"):
        CF().fit(collinear, y)
    few = np.random.default_rng(0).normal(size=(10, 20))
    with pytest.raises(ValueError, match="shrinkage"):
        CF().fit(few, np.arange(10) % 2)
    # With shrinkage both fit.
    CF(shrinkage="auto").fit(collinear, y)
    CF(shrinkage=0.1).fit(few, np.arange(10) % 2)
    # A feature constant everywhere carries no information: weight 0, no error.
    constant = np.column_stack([X, np.full(len(y), 3.0)])
    model = CF().fit(constant, y)
    np.testing.assert_array_equal(model.coef_[:, -1], 0.0)


# ---------------------------------------------------------------- refinement


def _penalised_nll(model, X, y, l2):
    log_p = model.predict_log_proba(X)
    return (
        -log_p[np.arange(len(y)), np.searchsorted(model.classes_, y)].sum()
        + 0.5 * l2 * (model.coef_**2).sum()
    )


@pytest.mark.parametrize("k", [2, 3])
def test_refine_reaches_the_maximum_likelihood_solution(k):
    X, y = datasets.make_classification(
        n_samples=800,
        n_features=6,
        n_informative=4,
        n_redundant=0,
        n_classes=k,
        n_clusters_per_class=1,
        random_state=k,
    )
    C = 1.0
    lr = LogisticRegression(C=C, tol=1e-10, max_iter=10000).fit(X, y)
    objectives = [
        _penalised_nll(CF(refine=steps, l2=1 / C).fit(X, y), X, y, 1 / C) for steps in (0, 1, 3)
    ]
    assert objectives[0] > objectives[1] > objectives[2] - 1e-9
    refined = CF(refine=20, l2=1 / C).fit(X, y)
    np.testing.assert_allclose(refined.coef_, lr.coef_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(refined.intercept_, lr.intercept_, rtol=1e-4, atol=1e-5)
    assert refined.n_iter_ >= 1


@pytest.mark.parametrize("k", [3, 5])
def test_refined_intercepts_stay_centred(k):
    """Softmax ignores a common shift of the intercepts, so the Newton steps must not drift
    along it: with the training priors the refined intercepts sum to 0, as the starting point
    (and scikit-learn's multinomial solution) do."""
    X, y = datasets.make_classification(
        n_samples=600, n_features=5, n_informative=4, n_redundant=0, n_classes=k, random_state=k
    )
    refined = CF(refine=30, l2=1.0).fit(X, y)
    assert abs(refined.intercept_.sum()) < 1e-9 * max(1.0, np.abs(refined.intercept_).max())


def test_pipeline_example():
    X, y = _load("iris")
    pipe = make_pipeline(StandardScaler(), CF(shrinkage="auto")).fit(X, y)
    assert pipe.score(X, y) > 0.95

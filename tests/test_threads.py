"""Results are bit-identical for any thread count; the thread API validates its argument."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import smoothmax

THREADS = [1, 2, 3]


def _bits(a):
    a = np.ascontiguousarray(np.asarray(a))
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def _compute(x, b, mask):
    r, s = smoothmax.logsumexp(x, axis=-1, b=b, return_sign=True)
    return {
        "lse": smoothmax.logsumexp(x, axis=-1),
        "lse axis0": smoothmax.logsumexp(x, axis=0),
        "lse all": smoothmax.logsumexp(x),
        "lse b": r,
        "lse sign": s,
        "softmax": smoothmax.softmax(x, axis=-1),
        "softmax T": smoothmax.softmax(x, axis=-1, temperature=0.6),
        "softmax axis0": smoothmax.softmax(x, axis=0),
        "softmax all": smoothmax.softmax(x),
        "log_softmax": smoothmax.log_softmax(x, axis=-1),
        "log_softmax where": smoothmax.log_softmax(x, axis=-1, where=mask),
        "log_softmax axis0": smoothmax.log_softmax(x, axis=0),
    }


# (2000, 50) float64 and (9000, 30) float32: batches of short rows in 16-row tiles, split over
# threads (float64 rows count three times a float32 row's work toward the threshold).
@pytest.mark.parametrize(
    "shape", [(300, 5000), (1, 200_000), (5000, 3), (2000, 50), (9000, 30)], ids=str
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_bit_identical_across_thread_counts(dtype, shape, restore_threads):
    rng = np.random.default_rng(list(shape))
    x = (rng.standard_normal(shape) * 10).astype(dtype)
    x[0, :: max(1, shape[1] // 7)] = -np.inf
    b = rng.uniform(-0.2, 1.0, size=shape[1]).astype(dtype)
    mask = rng.random(shape[1]) < 0.9
    results = {}
    for n in THREADS:
        smoothmax.set_num_threads(n)
        assert smoothmax.get_num_threads() == n
        results[n] = _compute(x, b, mask)
    for n in THREADS[1:]:
        for key, ref in results[1].items():
            assert np.array_equal(_bits(results[n][key]), _bits(ref)), f"{key}: {n} threads"


def test_threads_restored_by_fixture(restore_threads):
    smoothmax.set_num_threads(1)
    assert smoothmax.get_num_threads() == 1


@pytest.mark.parametrize("bad", [0, -1])
def test_set_num_threads_rejects_non_positive(bad, restore_threads):
    before = smoothmax.get_num_threads()
    with pytest.raises(ValueError, match="n"):
        smoothmax.set_num_threads(bad)
    assert smoothmax.get_num_threads() == before


@pytest.mark.parametrize("bad", [2.5, "2", None])
def test_set_num_threads_rejects_non_int(bad, restore_threads):
    with pytest.raises(TypeError):
        smoothmax.set_num_threads(bad)


def test_env_sets_default_thread_count():
    env = dict(os.environ, SMOOTHMAX_NUM_THREADS="3")
    code = "import smoothmax; print(smoothmax.get_num_threads())"
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "3"


def test_concurrent_python_threads_agree(restore_threads):
    """Calls from several Python threads at once give the single-threaded answer."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((64, 2000)) * 5 for _ in range(8)]
    smoothmax.set_num_threads(2)
    expected = [smoothmax.softmax(x, axis=1) for x in xs]
    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(lambda x: smoothmax.softmax(x, axis=1), xs))
    for g, e in zip(got, expected, strict=True):
        assert np.array_equal(g, e)


def test_concurrent_parallel_calls_and_idle_gaps_agree(restore_threads):
    """Calls large enough for the pool, from several Python threads at once and after idle
    gaps (helpers that wake late must not run a finished call's ranges), give the
    single-threaded answer."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(1)
    xs = [(rng.standard_normal((300, 1000 + 97 * k)) * 10).astype(np.float32) for k in range(6)]
    smoothmax.set_num_threads(1)
    expected = [(smoothmax.softmax(x, axis=1), smoothmax.logsumexp(x, axis=1)) for x in xs]
    smoothmax.set_num_threads(2)

    def run(x):
        time.sleep(0.002)
        return smoothmax.softmax(x, axis=1), smoothmax.logsumexp(x, axis=1)

    for _ in range(3):
        with ThreadPoolExecutor(3) as ex:
            got = list(ex.map(run, xs))
        got += [run(x) for x in xs]
        for (g_sm, g_lse), (e_sm, e_lse) in zip(got, expected + expected, strict=True):
            assert np.array_equal(_bits(g_sm), _bits(e_sm))
            assert np.array_equal(_bits(g_lse), _bits(e_lse))


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(1, 3_000_000), (3000, 2000), (2000, 1, 700)], ids=str)
def test_bit_identical_across_thread_counts_large(shape, restore_threads):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape) * 20
    results = []
    for n in (1, 2, 3, 4, 7):
        smoothmax.set_num_threads(n)
        results.append(
            [
                _bits(smoothmax.logsumexp(x, axis=-1)),
                _bits(smoothmax.softmax(x, axis=-1)),
                _bits(smoothmax.log_softmax(x, axis=0)),
                _bits(smoothmax.logsumexp(x, axis=(0, -1))),
            ]
        )
    for r in results[1:]:
        for a, b in zip(r, results[0], strict=True):
            assert np.array_equal(a, b)

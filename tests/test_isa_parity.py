"""Every SIMD path gives bit-identical results to the scalar path (a design guarantee: elements
go to 16 virtual lanes combined by a fixed tree whatever the vector width)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import smoothmax
from smoothmax import _core

LENGTHS = [0, 1, 3, 4, 7, 8, 15, 16, 17, 31, 33, 1023, 100_000]
DTYPES = [np.float32, np.float64]


def _bits(a) -> np.ndarray:
    a = np.ascontiguousarray(np.asarray(a))
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def _assert_bit_identical(got, ref, what):
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape and got.dtype == ref.dtype, what
    if not np.array_equal(_bits(got), _bits(ref)):
        diff = np.flatnonzero(_bits(got) != _bits(ref))
        i = diff[0]
        raise AssertionError(
            f"{what}: {diff.size} elements differ, first at {i}: "
            f"{got.ravel()[i]!r} vs scalar {ref.ravel()[i]!r}"
        )


def _inputs(dtype, n, rng):
    rows = 3 if n <= 1023 else 1
    x = (rng.standard_normal((rows, n)) * 10).astype(dtype)
    if n >= 4 and rows == 3:
        x[1, n // 3] = 200.0  # one dominant entry
        x[2, ::3] = -np.inf  # -inf mixed in
        x[2, n - 1] = x[2, 0] if np.isfinite(x[2, 0]) else 1.0
    b = rng.uniform(-0.5, 2.0, size=x.shape).astype(dtype)
    mask = rng.random(x.shape) < 0.8
    return x, b, mask


def _all_results(x, b, mask):
    """Everything the kernels compute for one input, as a dict of arrays."""
    out = {}
    for axis, data, bb, mm in (
        (1, x, b, mask),
        (0, np.ascontiguousarray(x.T), np.ascontiguousarray(b.T), np.ascontiguousarray(mask.T)),
    ):
        out[f"lse ax{axis}"] = smoothmax.logsumexp(data, axis=axis)
        r, s = smoothmax.logsumexp(data, axis=axis, b=bb, return_sign=True)
        out[f"lse b ax{axis}"], out[f"lse sign ax{axis}"] = r, s
        out[f"lse where ax{axis}"] = smoothmax.logsumexp(data, axis=axis, where=mm)
        for t in (1.0, 0.37, 3.0):
            out[f"softmax T={t} ax{axis}"] = smoothmax.softmax(data, axis=axis, temperature=t)
            out[f"log_softmax T={t} ax{axis}"] = smoothmax.log_softmax(
                data, axis=axis, temperature=t
            )
        out[f"softmax where ax{axis}"] = smoothmax.softmax(data, axis=axis, where=mm)
        out[f"log_softmax where ax{axis}"] = smoothmax.log_softmax(data, axis=axis, where=mm)
    if x.size:  # (empty in-place: known bug, test_special_values.test_empty_in_place)
        inplace = x.copy()
        smoothmax.softmax(inplace, axis=1, out=inplace)
        out["softmax in place"] = inplace
    return out


def _under(isa: str, fn):
    previous = _core.simd_level()
    _core.force_simd(isa)
    try:
        return fn()
    finally:
        _core.force_simd(previous)


def test_supported_paths_listed():
    paths = _core.supported_simd()
    assert paths[0] == "scalar"
    assert set(paths) <= {"scalar", "avx2", "avx512"}
    assert smoothmax.simd_level() in paths


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_bit_identical_to_scalar(isa, dtype, n):
    rng = np.random.default_rng([n, np.dtype(dtype).itemsize])
    x, b, mask = _inputs(dtype, n, rng)
    ref = _under("scalar", lambda: _all_results(x, b, mask))
    got = _all_results(x, b, mask)  # on the path the fixture forced
    assert smoothmax.simd_level() == isa
    for key in ref:
        _assert_bit_identical(got[key], ref[key], f"{isa} {np.dtype(dtype).name} n={n} {key}")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_special_values_bit_identical(isa, dtype):
    rows = [
        [np.nan, 1.0, 2.0],
        [np.inf, 1.0, np.inf],
        [-np.inf, -np.inf, -np.inf],
        [np.finfo(dtype).max, np.finfo(dtype).max, 0.0],
        [0.0, -745.5, -744.0, -800.0],
        [0.0, -40.0] + [-np.inf] * 14 + [-30.0],
    ]
    for row in rows:
        x = np.array(row, dtype=dtype)
        for fn in (smoothmax.softmax, smoothmax.log_softmax, smoothmax.logsumexp):
            ref = _under("scalar", lambda fn=fn, x=x: fn(x))
            _assert_bit_identical(fn(x), ref, f"{isa} {fn.__name__} {row}")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_exp_kernel_bit_identical(isa, dtype):
    rng = np.random.default_rng(5)
    for n in (0, 1, 3, 7, 15, 16, 17, 1000):
        x = rng.uniform(-800, 720, size=n).astype(dtype)
        ref = np.empty_like(x)
        _under("scalar", lambda x=x, ref=ref: _core.exp_1d(x, ref))
        out = np.empty_like(x)
        _core.exp_1d(x, out)
        _assert_bit_identical(out, ref, f"{isa} exp n={n}")


def test_force_simd_rejects_unknown_path():
    before = _core.simd_level()
    with pytest.raises((ValueError, RuntimeError)):
        _core.force_simd("bogus")
    assert _core.simd_level() == before


def _run(code: str, **env):
    e = dict(os.environ)
    e.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], env=e, capture_output=True, text=True, timeout=120
    )


def test_env_forces_scalar():
    r = _run("import smoothmax; print(smoothmax.simd_level())", SMOOTHMAX_SIMD="scalar")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "scalar"


def test_env_bogus_fails_at_import():
    r = _run("import smoothmax", SMOOTHMAX_SIMD="bogus")
    assert r.returncode != 0
    assert "RuntimeError" in r.stderr
    assert "bogus" in r.stderr and "SMOOTHMAX_SIMD" in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_bit_identical_random_lengths(isa, dtype):
    rng = np.random.default_rng(11)
    lengths = [*list(rng.integers(1, 5000, size=40)), 65537, 1000000]
    for n in lengths:
        x, b, mask = _inputs(dtype, int(n), rng)
        ref = _under("scalar", lambda x=x, b=b, mask=mask: _all_results(x, b, mask))
        got = _all_results(x, b, mask)
        for key in ref:
            _assert_bit_identical(got[key], ref[key], f"{isa} n={n} {key}")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(33, 80), (1000, 80), (1536, 2048), (2, 1539, 2048)], ids=str)
def test_axis0_strips_bit_identical(isa, dtype, shape):
    """Along the second-last axis over adjacent columns (the strip kernels; float32 (1536,
    2048) and (2, 1539, 2048) take the narrow strips, whose softmax on AVX-512 leaves its
    writes to one pass over whole rows, per `outer` index) on every path."""
    n = shape[-2]
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(shape) * 10).astype(dtype)
    x[..., ::5, 7] = -np.inf
    x[..., n // 2, 9] = 90.0
    axis = len(shape) - 2

    def results():
        return {
            "lse": smoothmax.logsumexp(x, axis=axis),
            "softmax": smoothmax.softmax(x, axis=axis),
            "log_softmax": smoothmax.log_softmax(x, axis=axis),
        }

    ref = _under("scalar", results)
    got = results()
    for key in ref:
        _assert_bit_identical(got[key], ref[key], f"{isa} strips {shape} {key}")

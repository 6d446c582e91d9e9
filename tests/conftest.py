"""Shared test configuration: hypothesis profiles, the ``slow`` marker, SIMD/thread fixtures and
the accuracy contract (one tolerance table)."""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import smoothmax
from smoothmax import _core

# --------------------------------------------------------------------------- hypothesis profiles

settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# --------------------------------------------------------------------------- slow marker

RUN_SLOW = os.environ.get("SMOOTHMAX_SLOW", "") == "1"


def pytest_configure(config):
    # Hypothesis' failure reporting can import a deprecated helper; with filterwarnings=error
    # that turns a falsifying example into an INTERNALERROR.
    config.addinivalue_line(
        "filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
    )


def pytest_collection_modifyitems(config, items):
    if RUN_SLOW:
        return
    skip = pytest.mark.skip(reason="slow test: set SMOOTHMAX_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the largest ULP errors the accuracy tests measured."""
    import sys

    ref = sys.modules.get("reference")
    measured = getattr(ref, "MEASURED", None)
    if not measured:
        return
    terminalreporter.section("smoothmax accuracy (max ULP measured, active SIMD path)")
    for known_bug, title in (
        (False, "tests within the contract"),
        (True, "tests of known bugs (xfail)"),
    ):
        rows = sorted((k, v) for k, v in measured.items() if k[2] == known_bug)
        if not rows:
            continue
        terminalreporter.write_line(f"-- {title}")
        for (name, dt, _), (value, label) in rows:
            tol = TOLERANCE_ULP.get((name, np.dtype(dt)))
            terminalreporter.write_line(
                f"{name:<12} {dt:<8} {value:12.3f} ulp  (contract {tol}; worst: {label})"
            )


# --------------------------------------------------------------------------- the contract

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)

#: Maximum error in ULP of the correctly rounded exact value, per (function, dtype).
TOLERANCE_ULP: dict[tuple[str, np.dtype], float] = {
    # float32 softmax rounds y = 2^k (1 + t) to f32 before dividing by S (the bound,
    # 4 ULP; derived worst case 3.9, measured 2.7). log_softmax rounds (x - c_hi) - c_lo;
    # float32 lines far from 0 sum their terms in pairs (rows32::paired_log_softmax: derived
    # worst case 3.6, the exact sums elsewhere 2).
    ("softmax", F32): 4.0,
    ("softmax", F64): 4.0,
    ("log_softmax", F32): 4.0,
    ("log_softmax", F64): 4.0,
    ("logsumexp", F32): 1.0,
    ("logsumexp", F64): 2.0,
    ("exp", F32): 1.0,
    ("exp", F64): 1.0,
}


@pytest.fixture(scope="session")
def tolerance():
    """The tolerance table, ``tolerance[(function_name, np.dtype)]`` in ULP."""
    return TOLERANCE_ULP


# --------------------------------------------------------------------------- SIMD / threads

SUPPORTED_SIMD = list(_core.supported_simd())


@pytest.fixture(params=SUPPORTED_SIMD)
def isa(request):
    """Force each SIMD path this CPU supports; restores the previous path afterwards."""
    previous = _core.simd_level()
    _core.force_simd(request.param)
    try:
        assert smoothmax.simd_level() == request.param
        yield request.param
    finally:
        _core.force_simd(previous)


@pytest.fixture
def restore_threads():
    """Restore the thread count after a test that changes it."""
    previous = smoothmax.get_num_threads()
    yield previous
    smoothmax.set_num_threads(previous)


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name, so every test is reproducible on its own."""
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)

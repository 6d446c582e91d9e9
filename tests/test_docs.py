"""The examples in the docstrings run and print what they claim."""

from __future__ import annotations

import doctest

import numpy as np

import smoothmax
import smoothmax._api


def test_api_doctests():
    result = doctest.testmod(
        smoothmax._api, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples failed"


def test_package_doctests():
    result = doctest.testmod(smoothmax, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_public_api():
    assert set(smoothmax.__all__) == {
        "__version__",
        "get_num_threads",
        "log_softmax",
        "logsumexp",
        "set_num_threads",
        "simd_level",
        "softmax",
    }
    assert isinstance(smoothmax.__version__, str) and smoothmax.__version__
    for name in (
        "logsumexp",
        "softmax",
        "log_softmax",
        "simd_level",
        "set_num_threads",
        "get_num_threads",
    ):
        assert getattr(smoothmax, name).__doc__


def test_readme_examples():
    """The README's Python examples run and print what they claim."""
    from pathlib import Path

    readme = Path(__file__).resolve().parent.parent / "README.md"
    parser = doctest.DocTestParser()
    test = parser.get_doctest(readme.read_text(), {}, "README.md", str(readme), 0)
    assert test.examples, "no examples found in README.md"
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0, f"{runner.failures} README examples failed"


def test_bench_flags_results_against_the_tested_contract(tolerance):
    """The benchmark's "exceeds the documented bound" notes use the contract the accuracy
    tests enforce (one table drifting from the other once hid nothing and flagged noise)."""
    from smoothmax._bench import ULP_BOUND

    for (func, dtype), bound in ULP_BOUND.items():
        assert tolerance[(func, np.dtype(dtype))] == bound, (func, dtype)

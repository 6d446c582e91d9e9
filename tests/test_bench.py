"""The benchmark harness's own arithmetic (the timings themselves are not tested)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from smoothmax import _bench


@pytest.mark.parametrize("threads", [1, 2])
def test_copy_gbps_copies_and_reports_bytes_per_ns(threads):
    x = np.arange(64 * 1000, dtype=np.float32).reshape(64, 1000)
    gbps = _bench.copy_gbps(x, threads, samples=1)
    assert math.isfinite(gbps) and gbps > 0


def test_table_reports_share_of_copy_bandwidth_and_ratio():
    case = _bench.Case("softmax", "float32", (1000, 1000))  # 8 MB read + written
    rows = _bench.table_rows(
        [
            _bench.Result(case, 1, "smoothmax", time_ns=1e6, ulp=1.0, copy_gbps=16.0),
            _bench.Result(case, 1, "peer", time_ns=2e6, ulp=3.0, copy_gbps=16.0),
            _bench.Result(case, 1, "broken", error="RuntimeError: no"),
        ]
    )
    cols = {name: i for i, name in enumerate(_bench.COLUMNS)}
    assert rows[0][cols["GB/s"]] == "8.000" and rows[0][cols["of copy"]] == "50%"
    assert rows[1][cols["of copy"]] == "25%" and rows[1][cols["ratio"]] == "2.00"
    assert rows[2][cols["of copy"]] == "n/a" and len(rows[2]) == len(_bench.COLUMNS)


def test_time_rounds_interleaves_functions_and_warms_each_sample():
    calls: list[str] = []

    def quick() -> None:
        calls.append("quick")

    def slow() -> None:  # longer than a sample on its own: one call per sample
        calls.append("slow")
        _busy_ns(2_000_000)

    times = _bench.time_rounds([quick, slow], samples=4, min_sample_ns=1_000_000)
    assert len(times) == 2 and 0 < times[0] < times[1]
    assert calls[:2] == ["quick", "slow"]  # one calibration call each
    # Each of the 4 samples: one untimed call, then the timed one(s).
    timed = "".join("q" if c == "quick" else "s" for c in calls[2:])
    assert timed.count("s") == 4 * 2
    # Samples of one function never run back to back within a round: `slow`'s come in pairs
    # (untimed call, timed call) split by runs of `quick` samples, save where a round ending
    # with `slow` meets one starting with it.
    runs = [r for r in timed.split("q") if r]
    assert all(len(r) in (2, 4) for r in runs) and 2 <= len(runs) <= 4
    assert timed.strip("s").count("s") >= 2  # some `slow` sample falls between `quick` ones


def test_run_case_reports_a_failing_implementation_and_times_the_others():
    class Broken:
        name = "broken"

        def prepare(self, case, x):
            raise RuntimeError("no kernel")

    case = _bench.Case("softmax", "float32", (4, 8))
    x = _bench._Input((4, 8), "float32").make()
    rows = _bench._run_case(case, 1, x, [_bench.SmoothmaxImpl(), Broken()], samples=2)
    assert rows[0].time_ns is not None and rows[0].time_ns > 0 and rows[0].error is None
    assert rows[0].ulp is not None and rows[0].ulp <= 4
    assert rows[1].time_ns is None and "no kernel" in rows[1].error


def _busy_ns(ns: int) -> None:
    import time

    end = time.perf_counter_ns() + ns
    while time.perf_counter_ns() < end:
        pass

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

"""Smoke test of the index benchmark (the full run uses n = 1,000,000)."""

from __future__ import annotations

from pathlib import Path

from dir_net.data.bench import run_index_benchmark


def test_index_benchmark_smoke(tmp_path: Path) -> None:
    result = run_index_benchmark(20_000, tmp_path, probe=2_000)
    index, plain = result["index"], result["plain"]
    assert result["samples"] == 20_000
    assert 0 < result["index_mb"] < result["json_mb"]
    assert index["open_seconds"] >= 0 and index["worker_rss_mb"] > 0  # timings: docs/BENCHMARKS.md, not here
    assert index["convert_peak_rss_mb"] > 0 and plain["peak_rss_mb"] > 0
    # the index worker holds almost nothing privately; the plain one holds every sample's objects
    assert plain["worker_rss_anon_mb"] > 3 * index["worker_rss_anon_mb"]
    assert set(result["targets"]) >= {"open_under_1s", "worker_rss_under_300mb"}

"""Index benchmark: `dir_net.data.bench.run_index_benchmark` (columnar index against json.load +
one dict per sample), as a table and a benchmark JSON. n = 1,000,000 takes ~80 s for the index
and ~150 s and ~10 GB of RAM for the plain approach (`--no-plain` skips it)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dir_net.bench.report import make_result
from dir_net.errors import DirNetError

COLUMNS = ("approach", "samples", "build_s", "build_peak_rss_mb", "open_s", "worker_rss_mb", "worker_rss_anon_mb")


@dataclass
class IndexOptions:
    n: int = 1_000_000
    probe: int = 10_000  # random rows read by the probed worker
    no_plain: bool = False  # skip the plain approach
    workdir: str | None = None  # kept when given; None -> a temporary folder, removed afterwards
    seed: int = 0


def index_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    idx = result["index"]
    rows = [{"approach": "columnar index", "samples": result["samples"], "build_s": idx["convert_seconds"],
             "build_peak_rss_mb": idx["convert_peak_rss_mb"], "open_s": idx["open_seconds"],
             "worker_rss_mb": idx["worker_rss_mb"], "worker_rss_anon_mb": idx["worker_rss_anon_mb"]}]
    if "plain" in result:
        plain = result["plain"]
        rows.append({"approach": "json.load + dict per sample", "samples": result["samples"],
                     "build_s": plain["load_seconds"], "build_peak_rss_mb": plain["peak_rss_mb"],
                     "open_s": plain["load_seconds"], "worker_rss_mb": plain["worker_rss_mb"],
                     "worker_rss_anon_mb": plain["worker_rss_anon_mb"]})
    return rows


def run(opts: IndexOptions) -> dict[str, Any]:
    from dir_net.data.bench import run_index_benchmark

    if opts.n < 1 or opts.probe < 1:
        raise DirNetError(f"--n {opts.n} / --probe {opts.probe}: both must be >= 1")
    workdir = Path(opts.workdir) if opts.workdir else Path(tempfile.mkdtemp(prefix="dirnet_bench_index_"))
    try:
        result = run_index_benchmark(opts.n, workdir, probe=opts.probe, plain=not opts.no_plain, seed=opts.seed)
    finally:
        if not opts.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return make_result("index", asdict(opts), index_rows(result), device="cpu", extra=result)

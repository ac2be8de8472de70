"""Benchmarks behind `dirnet bench` (docs/BENCHMARKS.md).

Modules: `infer` (images/s, latency, FLOP/s against a measured matmul peak), `train` (training
step images/s, peak memory), `loader` (DataLoader samples/s per worker, per-stage costs, JPEG
decoders), `index` (columnar index vs json.load), `evaluation` (eval.evaluate frames/s),
`profiling` (operator and per-module breakdown). Each `run(options)` returns a JSON-ready dict
(`report.make_result`: schema, bench, date, command, argv, settings, environment, rows, extra).
Shared pieces: `timing` (devices, autocast, timing loops, peaks, memory), `batch` (a fixed
synthetic batch of the data contract), `models` (building and FLOP counting), `report`.
"""

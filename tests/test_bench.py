"""`dirnet bench *` in tiny modes: each writes a JSON with the documented keys (no timing assertions)."""

from __future__ import annotations

import json
import shlex
from datetime import datetime

import pytest

from dir_net.bench.models import SMOKE_OVERRIDES, registered_models
from dir_net.bench.report import RESULT_KEYS
from dir_net.cli import build_parser, main

ENV_KEYS = ("device", "python", "torch", "numpy", "cpu_model", "torch_threads", "load_average")
MODEL_ARGS = ["--device", "cpu", "--threads", "1", "--batch", "2", "--iters", "2", "--warmup", "1", "--size", "64",
              "--peak-size", "128", *SMOKE_OVERRIDES]


def run_bench(tmp_path, *args: str) -> dict:
    out = tmp_path / f"{args[0]}.json"
    assert main(["bench", *args, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert tuple(result) == RESULT_KEYS
    assert result["bench"] == args[0]
    assert all(key in result["environment"] for key in ENV_KEYS)
    datetime.fromisoformat(result["date"])
    assert result["command"].startswith(f"dirnet bench {args[0]}")
    assert not list(tmp_path.glob(".*tmp*")), "temporary files left beside the JSON"
    return result


def reparsed(command: str):
    """The recorded command parsed again by the real CLI parser."""
    words = shlex.split(command)
    assert words[0] == "dirnet"
    return build_parser().parse_args(words[1:])


def test_infer_rows_cover_models_and_batch_sizes(tmp_path):
    result = run_bench(tmp_path, "infer", *MODEL_ARGS)
    rows = result["rows"]
    assert {(r["model"], r["batch"]) for r in rows} == {(m, b) for m in registered_models() for b in (1, 2)}
    for row in rows:
        assert row["images_per_s"] > 0
        assert row["latency_ms_p90"] >= row["latency_ms_median"] > 0
        assert row["gflops_per_image"] > 0
        assert row["fraction_of_peak"] == pytest.approx(
            row["achieved_tflops"] / result["extra"]["matmul_peak"]["fp32"]["tflops"])
        assert row["peak_mem_mb"] > 0
    assert set(result["extra"]["matmul_peak"]) == {"fp32"}  # bf16 only when a bf16 run is asked for
    args = reparsed(result["command"])
    assert (args.bench_command, args.batch, args.iters, args.size) == ("infer", 2, 2, 64)
    assert args.overrides == list(SMOKE_OVERRIDES)


def test_infer_rejects_cuda_graphs_on_cpu(tmp_path, capsys):
    assert main(["bench", "infer", "--device", "cpu", "--cuda-graphs", "--json", str(tmp_path / "x.json")]) == 2
    assert "--cuda-graphs needs --device cuda" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_train_step_rows(tmp_path):
    result = run_bench(tmp_path, "train", *MODEL_ARGS, "--models", "dir")
    (row,) = result["rows"]
    assert row["model"] == "dir" and row["batch"] == 2
    assert row["loss_finite"] is True
    assert row["images_per_s"] > 0 and row["peak_mem_mb"] > 0
    assert result["extra"]["models"]["dir"]["train_flops_per_image"] > 0


def test_data_rows_stages_and_decoders(tmp_path):
    result = run_bench(tmp_path, "data", "--workdir", str(tmp_path / "cache"), "--frames", "2", "--batch", "2",
                       "--batches", "2", "--samples", "2", "--epochs", "2", "--workers", "0,1", "--pipelines", "dir")
    rows = result["rows"]
    assert {r["workers"] for r in rows} == {0, 1} and {r["pipeline"] for r in rows} == {"dir"}
    assert all(r["samples_per_s"] > 0 for r in rows)
    assert [r["start"] for r in rows if r["workers"] == 1] == ["spawn"]  # the trainer's worker options
    stages = result["extra"]["stages"]["dir"]
    assert min(stages["gt_mano_ms"], stages["decode_ms"], stages["aux_maps_ms"]) > 0
    assert stages["image_bytes_float32"] == 4 * stages["image_bytes_uint8"]
    decoders = {d["decoder"]: d for d in result["extra"]["decoders"]}
    assert decoders["cv2.imdecode"]["ms_per_image"] > 0
    epochs = result["extra"]["epoch_startup"]["dir"]
    assert set(epochs) == {"workers", "epochs", "fork, respawned", "forkserver, respawned", "spawn, persistent"}
    assert set(result["extra"]["transfer"]) == {"float32_image", "uint8_image"}
    assert result["extra"]["workers_needed_for_target"]["dir"] >= 1
    assert (tmp_path / "cache" / "synth_train_f2_s0" / "READY").is_file()


def test_index_rows(tmp_path):
    result = run_bench(tmp_path, "index", "--n", "300", "--probe", "20", "--workdir", str(tmp_path / "idx"))
    approaches = [r["approach"] for r in result["rows"]]
    assert approaches == ["columnar index", "json.load + dict per sample"]
    assert result["rows"][0]["samples"] == 300
    assert "memory_ratio_worker" in result["extra"]


def test_eval_rows_with_and_without_iv(tmp_path):
    result = run_bench(tmp_path, "eval", "--frames", "48", "--iv-frames", "3", "--repeats", "1")
    plain, iv = result["rows"]
    assert (plain["iv"], plain["frames"], iv["iv"], iv["frames"]) == (False, 48, True, 3)
    assert plain["frames_per_s"] > 0 and iv["frames_per_s"] > 0
    from eval.protocols import PROTOCOLS

    assert set(plain["metrics"]) == set(PROTOCOLS)
    assert "iv" in iv["metrics"]["moon"] and "iv" not in plain["metrics"]["moon"]


def test_profile_modules_and_operators(tmp_path):
    result = run_bench(tmp_path, "profile", "--device", "cpu", "--threads", "1", "--batch", "2", "--size", "64",
                       "--iters", "1", *SMOKE_OVERRIDES)
    modules = {r["module"]: r for r in result["rows"]}
    assert "backbone" in modules and "hands (MANO layer)" in modules
    assert modules["hands (MANO layer)"]["calls"] == 3  # initial estimate + 2 refinement stages
    assert all(0 < r["percent"] <= 100.5 for r in result["rows"])
    assert any(op["op"] == "aten::mkldnn_convolution" or "conv" in op["op"] for op in result["extra"]["operators"])

"""Benchmark building blocks: statistics, tables, commands, memory peaks, the synthetic batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dir_net.bench.batch import synthetic_batch
from dir_net.bench.report import command_line, format_table
from dir_net.bench.timing import PeakMemory, matmul_peak, summarize_ms
from dir_net.cli import build_parser


def test_summarize_ms_median_and_p90():
    stats = summarize_ms([i / 1000 for i in range(1, 11)])  # 1..10 ms
    assert stats["latency_ms_median"] == pytest.approx(5.5)
    assert stats["latency_ms_p90"] == pytest.approx(9.1)
    assert stats["latency_ms_min"] == pytest.approx(1.0)


def test_format_table_aligns_and_marks_missing():
    text = format_table([{"model": "dir", "x": 1234.5}, {"model": "internet", "x": None}], ["model", "x"])
    lines = text.splitlines()
    assert lines[0].split() == ["model", "x"]
    assert lines[2].split() == ["dir", "1,234"] and lines[3].split() == ["internet", "-"]
    assert len({len(line) for line in lines}) == 1


def test_command_line_round_trips_through_the_parser():
    settings = {"n": 300, "probe": 20, "no_plain": True, "workdir": None, "seed": 3}
    args = build_parser().parse_args(command_line("index", settings).split()[1:])
    assert (args.n, args.probe, args.no_plain, args.workdir, args.seed) == (300, 20, True, None, 3)


def test_peak_memory_resets_between_sections():
    memory = PeakMemory(torch.device("cpu"))
    big = np.ones(40_000_000)  # 320 MB, touched
    del big
    before = memory.read()["rss_peak_mb"]
    memory.reset()
    if memory.scope != "section":
        pytest.skip("this kernel does not allow resetting the peak RSS")
    assert memory.read()["rss_peak_mb"] < before - 200


def test_matmul_peak_reports_positive_flops():
    peak = matmul_peak(torch.device("cpu"), "fp32", 64, min_seconds=0.01, rounds=1)
    assert peak["tflops"] == pytest.approx(2 * 64**3 / peak["seconds_per_matmul"] / 1e12)


def test_synthetic_batch_follows_the_data_contract():
    b = synthetic_batch(3, 64, aux_size=16)
    shapes = {"image": (3, 3, 64, 64), "joints_3d": (3, 2, 21, 3), "joints_2d": (3, 2, 21, 2),
              "verts_3d": (3, 2, 778, 3), "verts_2d": (3, 2, 778, 2), "mano_finger": (3, 2, 45),
              "seg": (3, 16, 16), "dense": (3, 3, 16, 16), "joints_25d": (3, 2, 21, 3), "rel_root_depth": (3, 1),
              "K_crop": (3, 3, 3), "crop_to_image": (3, 2, 3)}
    for key, shape in shapes.items():
        assert tuple(b[key].shape) == shape, key
    # the 2D joints are the projection of the 3D joints, and the hands lie inside the crop
    uvw = b["joints_3d"] @ b["K_crop"][:, None].transpose(-1, -2)
    assert torch.allclose(b["joints_2d"], uvw[..., :2] / uvw[..., 2:], atol=1e-3)
    assert ((b["joints_2d"] > 0) & (b["joints_2d"] < 64)).float().mean() > 0.9
    assert torch.allclose(b["joints_25d"][..., 2], b["joints_3d"][..., 2] - b["joints_3d"][:, :, :1, 2])
    assert torch.equal(synthetic_batch(3, 64, aux_size=16)["image"], b["image"])  # fixed by the seed


@pytest.mark.parametrize("name", ["dir", "internet"])
def test_fold_batchnorm_keeps_outputs(name):
    from dir_net.bench import models as bench_models
    from dir_net.bench.fold import fold_batchnorm
    from dir_net.bench.models import SMOKE_OVERRIDES

    torch.manual_seed(0)
    cfg = bench_models.model_config(name, None, SMOKE_OVERRIDES)
    model = bench_models.build(cfg, torch.device("cpu"), channels_last=False, train=True)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        model(images)  # training-mode pass: non-trivial running statistics
        model.eval()
        before = model(images)
        folded = fold_batchnorm(model)
        after = model(images)
    assert folded >= 3
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.layer1.modules())
    key = "joints" if name == "dir" else "heatmaps"
    assert torch.allclose(getattr(after, key), getattr(before, key), rtol=1e-3, atol=1e-4)
    with pytest.raises(ValueError, match="eval-mode"):
        fold_batchnorm(model.train())


def test_explicit_mfp_switch_keeps_outputs_and_costs_more_flops():
    from dir_net.bench import models as bench_models
    from dir_net.bench.models import SMOKE_OVERRIDES

    cfg = bench_models.model_config("dir", None, SMOKE_OVERRIDES)
    torch.manual_seed(0)
    model = bench_models.build(cfg, torch.device("cpu"), channels_last=False, train=False)
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        factorised = model(images).joints
        flops_factorised = bench_models.count_flops(lambda: model(images))
        assert bench_models.use_explicit_mfp(model) == 2  # one projection per refinement stage
        explicit = model(images).joints
        flops_explicit = bench_models.count_flops(lambda: model(images))
    assert torch.allclose(explicit, factorised, atol=1e-5)
    assert flops_explicit > flops_factorised

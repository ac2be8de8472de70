"""DIR model: backbone layout and weights, every config's forward/backward, ablation switches,
MFP / GCN behaviour, composed predictions, paper-size parameter and FLOP counts, `dirnet info`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dir_net.cli import main
from dir_net.commands.info import model_info
from dir_net.config import load_config
from dir_net.errors import ConfigError, DirNetError
from dir_net.models import MODELS, build_model
from dir_net.models.backbone import ResNet50
from dir_net.models.gcn import SemGraphConv, SkeletonGCN
from dir_net.models.mfp import BoneProjection, HeatmapProjection, bone_weights
from dir_net.models.transformer import JointTransformer
from test_losses_dir import make_batch

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
DIR_CONFIGS = sorted(CONFIG_DIR.glob("dir_*.yaml"))
DEFAULT = CONFIG_DIR / "dir_r50_interhand.yaml"
# Reduced widths (same structure) so every config runs in well under a second on a CPU.
SMALL = ["model.backbone.width=8", "model.dir.width=32", "model.dir.joint_dim=32", "model.dir.plane_dim=8",
         "model.dir.regressor_hidden=64"]
BONES = 20


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    yield


def small_model(path: Path = DEFAULT, *overrides: str):
    torch.manual_seed(0)
    return build_model(load_config(path, SMALL + list(overrides)))


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count(model: torch.nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


# --- backbone ----------------------------------------------------------------------------------


def test_backbone_has_torchvision_resnet50_layout():
    net = ResNet50()
    keys = net.state_dict().keys()
    # torchvision's resnet50 state_dict has 320 entries, 2 of them fc.weight / fc.bias.
    assert len(keys) == 318 and not any(k.startswith("fc.") for k in keys)
    for key in ("conv1.weight", "bn1.running_var", "layer1.0.downsample.0.weight",
                "layer1.0.downsample.1.num_batches_tracked", "layer3.5.bn2.bias", "layer4.2.conv3.weight"):
        assert key in keys
    assert n_params(net) == 25_557_032 - 2048 * 1000 - 1000  # torchvision total minus the classifier
    assert net.layer2[0].conv2.stride == (2, 2) and net.layer2[0].conv1.stride == (1, 1)  # v1.5 stride
    feats = net.eval()(torch.zeros(1, 3, 64, 64))
    assert {k: tuple(v.shape[1:]) for k, v in feats.items()} == {
        "c1": (256, 16, 16), "c2": (512, 8, 8), "c3": (1024, 4, 4), "c4": (2048, 2, 2)}


def test_backbone_weights_file_loads_and_errors_name_the_problem(tmp_path):
    source = ResNet50(width=8)
    for p in source.parameters():
        torch.nn.init.normal_(p)
    state = dict(source.state_dict())
    state["fc.weight"] = torch.zeros(1000, 256)  # a classifier in the file is ignored
    path = tmp_path / "r50.pth"
    torch.save(state, path)
    target = ResNet50(width=8)
    target.load_pretrained(path)
    assert all(torch.equal(target.state_dict()[k], v) for k, v in source.state_dict().items())

    with pytest.raises(DirNetError, match="missing.pth"):
        target.load_pretrained(tmp_path / "missing.pth")
    del state["layer2.1.conv1.weight"]
    torch.save(state, path)
    with pytest.raises(DirNetError, match=r"missing keys: layer2\.1\.conv1\.weight"):
        target.load_pretrained(path)
    with pytest.raises(DirNetError, match="wrong shape"):
        ResNet50(width=16).load_pretrained(path)


def test_frozen_bn_keeps_statistics_and_parameters_fixed():
    net = ResNet50(width=8, frozen_bn=True).train()
    bn = net.layer1[0].bn1
    before = bn.running_mean.clone()
    net(torch.randn(2, 3, 64, 64))
    assert not bn.training and not bn.weight.requires_grad
    assert torch.equal(bn.running_mean, before)
    assert all(p.requires_grad for p in net.layer1[0].conv1.parameters())


# --- every config ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", DIR_CONFIGS, ids=lambda p: p.stem)
def test_every_config_runs_forward_and_backward(path):
    cfg = load_config(path, SMALL)
    model = small_model(path)
    batch = make_batch(model.hands, batch=2, image_size=64, aux_size=16)
    out = model(batch["image"])
    refine = cfg.model.dir.refine
    assert len(out.stages) == 1 + (cfg.model.dir.stages if refine else 0)
    assert out.joints.shape == (2, 2, 21, 3) and out.vertices.shape == (2, 2, 778, 3)
    assert out.joints_2d.shape == (2, 2, 21, 2) and out.verts_2d.shape == (2, 2, 778, 2)
    if refine:
        assert out.aux["seg"].shape == (2, 3, 8, 8) and out.aux["dense"].shape == (2, 3, 8, 8)
    else:
        assert "seg" not in out.aux
    losses = model.losses(out, batch)
    assert all(torch.isfinite(v) for v in losses.values())
    losses["total"].backward()
    # Every module that is built is used: each parameter receives a finite gradient.
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, unused
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_any_input_multiple_of_32_and_clear_error_otherwise():
    model = small_model().eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 96, 128))
    assert out.aux["seg"].shape == (1, 3, 12, 16)
    assert out.verts_2d.shape == (1, 2, 778, 2)
    with pytest.raises(ConfigError, match="divisible by 32"):
        model(torch.zeros(1, 3, 100, 96))


# --- ablation switches (Table 1) -----------------------------------------------------------------


def test_ablation_switches_change_the_graph_as_the_paper_describes():
    full = small_model()
    assert len(full.decoder.stages) == 2
    assert count(full, SkeletonGCN) == 2 and count(full, JointTransformer) == 2
    assert [m.conv[0].in_channels for m in full.modules() if isinstance(m, BoneProjection)] == [2 * BONES * 8] * 2

    basic = small_model(CONFIG_DIR / "dir_ablation_id1_basic.yaml")
    assert basic.decoder is None and basic.aux is None and n_params(basic) < n_params(full)

    ir = small_model(CONFIG_DIR / "dir_ablation_id2_ir.yaml")
    assert count(ir, SkeletonGCN) == count(ir, JointTransformer) == count(ir, BoneProjection) == 0
    gcn = small_model(CONFIG_DIR / "dir_ablation_id3_ir_gcn.yaml")
    tf = small_model(CONFIG_DIR / "dir_ablation_id4_ir_tf.yaml")
    both = small_model(CONFIG_DIR / "dir_ablation_id5_ir_gcn_tf.yaml")
    gcn_params = sum(n_params(m) for m in gcn.modules() if isinstance(m, SkeletonGCN))
    tf_params = sum(n_params(m) for m in tf.modules() if isinstance(m, JointTransformer))
    assert n_params(gcn) == n_params(ir) + gcn_params and count(gcn, JointTransformer) == 0
    assert n_params(tf) == n_params(ir) + tf_params and count(tf, SkeletonGCN) == 0
    assert n_params(both) == n_params(ir) + gcn_params + tf_params

    # Projection none -> no projection conv and the refinement sees only the fused map.
    assert n_params(full) > n_params(both)
    assert count(both, BoneProjection) == count(both, HeatmapProjection) == 0
    assert both.decoder.stages[0].refine[0].body[0].num_features == 32
    sfp = small_model(CONFIG_DIR / "dir_ablation_id6_sfp.yaml")
    assert [m.conv[0].in_channels for m in sfp.modules() if isinstance(m, BoneProjection)] == [8, 8]
    assert not any(m.multi_plane for m in sfp.modules() if isinstance(m, BoneProjection))
    mhp = small_model(CONFIG_DIR / "dir_ablation_id7_mhp.yaml")
    assert [m.conv[0].in_channels for m in mhp.modules() if isinstance(m, HeatmapProjection)] == [42, 42]

    assert len(small_model(CONFIG_DIR / "dir_ablation_stages1.yaml").decoder.stages) == 1
    assert len(small_model(CONFIG_DIR / "dir_ablation_stages3.yaml").decoder.stages) == 3
    assert n_params(small_model(CONFIG_DIR / "dir_ablation_no_attention.yaml").attention) == 0


# --- components ----------------------------------------------------------------------------------


def test_bone_weights_blend_along_the_segment_within_the_radius():
    joints = torch.zeros(1, 2, 2, 2)
    joints[0, 0] = torch.tensor([[1.0, 1.0], [5.0, 1.0]])  # horizontal bone, map pixels
    w = bone_weights(joints, torch.tensor([[0, 1]]), 8, 8, radius=1.0)  # (1, 2, 1, 2, 64)
    at = lambda x, y: w[0, 0, 0, :, y * 8 + x].tolist()  # noqa: E731
    assert at(3, 1) == pytest.approx([0.5, 0.5])
    assert at(1, 1) == pytest.approx([1.0, 0.0]) and at(5, 2) == pytest.approx([0.0, 1.0])
    assert at(0, 1) == pytest.approx([1.0, 0.0])  # 1 px before the parent: clamped to it
    assert at(3, 3) == [0.0, 0.0] and at(7, 1) == [0.0, 0.0]


def test_multi_plane_projection_matches_a_per_bone_reference():
    torch.manual_seed(0)
    bones = [(0, 1), (1, 2), (0, 3)]
    proj = BoneProjection(4, 6, bones, multi_plane=True)
    feat = torch.randn(2, 2, 4, 4)
    uv = torch.rand(2, 2, 4, 2) * 1.6 - 0.8
    planes = proj.explicit_planes(feat, uv, (8, 8), 1.5).view(2, 2, 3, 4, 8, 8)
    px = (uv + 1) * 0.5 * 8 - 0.5
    for b in range(2):
        for h in range(2):
            for k, (i, j) in enumerate(bones):
                for y in range(8):
                    for x in range(8):
                        a, c, p = px[b, h, i], px[b, h, j], torch.tensor([x, y], dtype=torch.float32)
                        t = min(max(float((p - a) @ (c - a) / ((c - a) @ (c - a))), 0.0), 1.0)
                        d = (p - (a + t * (c - a))).norm()
                        expect = ((1 - t) * feat[b, h, i] + t * feat[b, h, j]) if d <= 1.5 else torch.zeros(4)
                        assert torch.allclose(planes[b, h, k, :, y, x], expect, atol=1e-5)


def test_factorised_mfp_equals_the_conv_of_the_explicit_planes():
    """The forward never builds the 2 x K x C planes; it must equal conv3x3 -> BN -> ReLU of them."""
    torch.manual_seed(0)
    bones = [(0, 1), (1, 2), (0, 3), (3, 2)]
    proj = BoneProjection(5, 7, bones, multi_plane=True).eval()
    proj.conv[1].running_mean.normal_()
    proj.conv[1].running_var.uniform_(0.5, 2.0)
    feat = torch.randn(3, 2, 4, 5)
    uv = torch.rand(3, 2, 4, 2) * 1.6 - 0.8
    expected = proj.conv(proj.explicit_planes(feat, uv, (12, 10), 1.5))
    torch.testing.assert_close(proj(feat, uv, (12, 10), 1.5), expected, atol=1e-5, rtol=1e-5)


def test_single_plane_averages_overlapping_bones_and_heatmaps_peak_at_joints():
    # Joints at map pixel centres (4, 4), (6, 4), (4, 6): uv = (px + 0.5) / 8 * 2 - 1.
    uv = ((torch.tensor([[4.0, 4.0], [6.0, 4.0], [4.0, 6.0]]) + 0.5) / 4 - 1).expand(1, 2, 3, 2)
    feat = torch.tensor([[1.0, 3.0, 5.0], [2.0, 6.0, 10.0]]).view(1, 2, 3, 1)  # hand 1 = 2 x hand 0
    sfp = BoneProjection(1, 1, [(0, 1), (0, 2)], multi_plane=False)
    captured = {}
    sfp.conv.register_forward_hook(lambda m, inp, out: captured.update(planes=inp[0]))
    sfp(feat, uv, (8, 8), 0.5)
    plane = captured["planes"][0, 0]  # (y, x)
    assert plane[4, 4].item() == pytest.approx((1 + 1 + 2 + 2) / 4)  # both bones, both hands
    assert plane[4, 5].item() == pytest.approx((2 + 4) / 2)  # middle of bone 0-1 only
    assert plane[5, 4].item() == pytest.approx((3 + 6) / 2)  # middle of bone 0-2 only
    assert plane[0, 0].item() == 0.0
    mhp = HeatmapProjection(1, joints=3)
    mhp.conv.register_forward_hook(lambda m, inp, out: captured.update(heat=inp[0]))
    mhp(feat, uv, (8, 8), 1.0)
    heat = captured["heat"][0, 1]  # hand 0, joint 1 at pixel (6, 4)
    assert heat.flatten().argmax().item() == 4 * 8 + 6 and heat[4, 6].item() == pytest.approx(1.0)


def test_gcn_only_mixes_skeleton_neighbours_and_learns_edge_weights():
    from mano.joints import SKELETON_PARENTS

    gcn = SkeletonGCN(8, 1, SKELETON_PARENTS)
    conv = gcn.convs[0]
    adj = conv.adjacency()
    assert conv.edge_logits.numel() == 21 + 2 * 20
    assert torch.allclose(adj.sum(-1), torch.ones(21))
    x = torch.randn(1, 2, 21, 8)
    y = x.clone()
    y[0, 0, 20] += 1.0  # pinky tip of the right hand
    changed = (gcn(y) - gcn(x)).abs().sum(-1)[0]  # (2, 21)
    assert set(changed[0].nonzero().flatten().tolist()) == {19, 20} and changed[1].abs().max() == 0
    assert isinstance(conv, SemGraphConv)


def test_prediction_places_left_hand_by_offset_and_2d_in_crop_pixels():
    model = small_model().eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    final = out.stages[-1]
    assert torch.allclose(out.joints[:, 0, 0], torch.zeros(2, 3), atol=1e-6)
    assert torch.allclose(out.joints[:, 1, 0], final.offset, atol=1e-6)
    assert torch.allclose(out.joints_2d, (final.joints_uv + 1) * 32)
    assert torch.allclose(final.joints_uv, final.cam[..., :1, None] * final.joints[..., :2] + final.cam[..., None, 1:])
    pred = model.predict(out, {})
    assert not pred.joints.requires_grad and pred.vertices.shape == (2, 2, 778, 3)


def test_mano_layer_is_not_part_of_the_state_dict_but_moves_with_the_model():
    model = small_model()
    assert not any("v_template" in k for k in model.state_dict())
    model.double()
    assert model.hands.v_template.dtype == torch.float64


def test_build_model_uses_the_registry(monkeypatch):
    cfg = load_config(DEFAULT, SMALL)
    monkeypatch.setitem(MODELS, "dir", lambda c: ("built", c.model.name))
    assert build_model(cfg) == ("built", "dir")
    monkeypatch.delitem(MODELS, "dir")
    with pytest.raises(ConfigError, match="no model registered as 'dir'"):
        build_model(cfg)


# --- sizes ---------------------------------------------------------------------------------------


def test_paper_sizes_official_and_light_heads():
    info = model_info(load_config(DEFAULT), 256)
    assert info["parameters"]["total"] == pytest.approx(90.4e6, rel=0.02)  # official code minus its defects
    assert info["gflops_reference"] == pytest.approx(36.8, rel=0.02)  # explicit MFP planes, as the paper
    assert info["gflops"] < 0.65 * info["gflops_reference"]  # as executed: factorised MFP, same output
    light = build_model(load_config(CONFIG_DIR / "dir_r50_interhand_light.yaml"))
    assert n_params(light) == pytest.approx(55.1e6, rel=0.05)  # the paper's figure


def test_info_command_prints_json(capsys):
    assert main(["info", "--config", str(DEFAULT), *SMALL, "--image-size", "64"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"]["total"] == n_params(small_model())
    assert info["outputs"]["joints"] == "1x2x21x3" and len(info["outputs"]["stages"]) == 3
    assert info["gflops"] > 0 and set(info["parameters"]["modules"]) >= {"backbone", "attention", "decoder"}

"""DIR model (the official structure, docs/DIR_OFFICIAL.md): backbone layout and weights, every
config's forward/backward, ablation switches, MFP / GCN / transformer behaviour, composed
predictions, official-size parameter and FLOP counts, `dirnet info`. Checkpoint-exact equivalence
with the official code is tests/test_reference_equivalence.py (dir_official)."""

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
from dir_net.models import mfp
from dir_net.models.backbone import PlainNet, ResNet50, build_backbone
from dir_net.models.decoder import Projector, Residual
from dir_net.models.gcn import HandGCN, PGraphConv, neighbour_pairs
from dir_net.models.transformer import JointTransformer
from mano.joints import BONES
from test_losses_dir import make_batch

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
DIR_CONFIGS = sorted(CONFIG_DIR.glob("dir_*.yaml"))
DEFAULT = CONFIG_DIR / "dir_r50_interhand.yaml"
# Reduced widths (same structure) so every config runs in well under a second on a CPU.
SMALL = ["model.backbone.width=8", "model.dir.width=32", "model.dir.joint_dim=32", "model.dir.plane_dim=8"]


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


def test_plain_backbone_gives_the_resnet_scales_and_drives_dir():
    """`model.backbone.name: plain` (the CPU learning benchmark's reduced models): c1..c4 at 1/4..1/32
    with width x 1, 2, 4, 8 channels, and DIR builds on it, trains and sends gradients through it."""
    feats = PlainNet(width=8)(torch.zeros(1, 3, 64, 64))
    assert {k: tuple(v.shape[1:]) for k, v in feats.items()} == {
        "c1": (8, 16, 16), "c2": (16, 8, 8), "c3": (32, 4, 4), "c4": (64, 2, 2)}
    model = small_model(CONFIG_DIR / "learn_dir_cpu.yaml", "model.backbone.name=plain")
    assert isinstance(model.backbone, PlainNet)
    batch = make_batch(model.hands, batch=2, image_size=64, aux_size=16)
    model.losses(model(batch["image"]), batch)["total"].backward()
    assert model.backbone.stem[0].weight.grad.abs().sum() > 0
    with pytest.raises(DirNetError, match="resnet50 only"):
        build_backbone({"name": "plain", "width": 8, "weights": "r50.pth", "frozen_bn": False})
    with pytest.raises(ConfigError, match="model.backbone.name"):
        load_config(DEFAULT, ["model.backbone.name=vgg"])


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
        side = 4 if cfg.model.dir.stages == 1 else 8  # the last stage's map: 1/16 or 1/8
        assert out.aux["seg"].shape == (2, 3, side, side) and out.aux["dense"].shape == (2, 3, side, side)
    else:
        assert "seg" not in out.aux
    losses = model.losses(out, batch)
    assert all(torch.isfinite(v) for v in losses.values())
    losses["total"].backward()
    # Every module that is built is used: each parameter receives a finite gradient (e_0 of the
    # graph convs gets an exact zero: the official self-loop softmax has one entry).
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


# --- structure and ablation switches (Table 1) -------------------------------------------------


def test_official_key_layout():
    keys = small_model().state_dict().keys()
    for key in ("init_regressor.attention_left.0.weight", "init_regressor.attention_right.3.bias",
                "init_regressor.offset.weight", "init_regressor.mano_left.weight",
                "decoder.skip_layer4.conv1.conv.weight", "decoder.fusion_layer3.skip_layer.conv.bias",
                "decoder.projecter_4.gcn_left.gconv_layers.3.gconv.e_1",
                "decoder.projecter_3.gcn_right.gconv_layers.0.bn.running_var",
                "decoder.projecter_4.img2joint_right.filters.3.weight", "decoder.projecter_3.pos_emb_left.1.weight",
                "decoder.projecter_4.global_pos_emb.0.weight", "decoder.projecter_4.interaction.spatial_pos_embed",
                "decoder.projecter_3.interaction.STEblocks.3.mlp.fc2.weight",
                "decoder.projecter_4.interaction.head.1.bias",
                "decoder.projecter_4.proj_feat_emb.3.weight", "decoder.projecter_3.fusion.3.weight",
                "decoder.projecter_4.regressor.offset.weight", "decoder.enhance_layer3.bn1.weight",
                "decoder.conv_final.1.running_mean", "decoder.seg.3.weight", "decoder.dense.0.bias"):
        assert key in keys, key
    assert not any(".STEblocks.0." in k or "fc." in k.split("backbone.")[-1][:3] or "mano_layer" in k for k in keys)
    assert "decoder.conv_final.0.bias" not in keys  # the official conv_final conv has no bias


def test_ablation_switches_change_the_graph_as_the_paper_describes():
    full = small_model()
    projectors = [m for m in full.modules() if isinstance(m, Projector)]
    assert [p.radius for p in projectors] == [1.0, 2.0]
    assert count(full, HandGCN) == 4 and count(full, JointTransformer) == 2  # per hand, per stage
    assert [p.fusion[0].in_channels for p in projectors] == [2 * len(BONES) * 8] * 2

    basic = small_model(CONFIG_DIR / "dir_ablation_id1_basic.yaml")
    assert basic.decoder is None and n_params(basic) < n_params(full)

    ir = small_model(CONFIG_DIR / "dir_ablation_id2_ir.yaml")
    assert count(ir, HandGCN) == count(ir, JointTransformer) == 0
    ir_projectors = [p for p in ir.modules() if isinstance(p, Projector)]
    assert not any(hasattr(p, "fusion") or hasattr(p, "proj_feat_emb") for p in ir_projectors)
    gcn = small_model(CONFIG_DIR / "dir_ablation_id3_ir_gcn.yaml")
    tf = small_model(CONFIG_DIR / "dir_ablation_id4_ir_tf.yaml")
    both = small_model(CONFIG_DIR / "dir_ablation_id5_ir_gcn_tf.yaml")
    gcn_params = sum(n_params(m) for m in gcn.modules() if isinstance(m, HandGCN))
    tf_extra = sum(n_params(m) - n_params(m.head) for m in tf.modules() if isinstance(m, JointTransformer))
    assert n_params(gcn) == n_params(ir) + gcn_params and count(gcn, JointTransformer) == 0
    assert n_params(tf) == n_params(ir) + tf_extra and count(tf, HandGCN) == 0
    assert n_params(both) == n_params(ir) + gcn_params + tf_extra

    # Projection none -> no projection and the enhance module sees only the fused map.
    assert n_params(full) > n_params(both)
    assert both.decoder.enhance_layer4.bn1.num_features == 32 and both.decoder.enhance_layer4.skip_layer is None
    assert full.decoder.enhance_layer4.bn1.num_features == 64
    sfp = small_model(CONFIG_DIR / "dir_ablation_id6_sfp.yaml")
    assert [p.fusion[0].in_channels for p in sfp.modules() if isinstance(p, Projector)] == [8, 8]
    mhp = small_model(CONFIG_DIR / "dir_ablation_id7_mhp.yaml")
    assert [p.fusion[0].in_channels for p in mhp.modules() if isinstance(p, Projector)] == [42, 42]
    assert not any(hasattr(p, "proj_feat_emb") for p in mhp.modules() if isinstance(p, Projector))

    assert small_model(CONFIG_DIR / "dir_ablation_stages1.yaml").decoder.levels == (4,)
    three = small_model(CONFIG_DIR / "dir_ablation_stages3.yaml")
    assert three.decoder.levels == (4, 3, 2) and three.decoder.skip_layer2.bn1.num_features == 8 * 4  # c1
    no_attention = small_model(CONFIG_DIR / "dir_ablation_no_attention.yaml")
    assert not hasattr(no_attention.init_regressor, "attention_left")
    paper = small_model(CONFIG_DIR / "dir_r50_interhand_paper.yaml")
    assert n_params(paper.init_regressor.attention_left) == 8 * 32 + 1  # one conv1x1 c4 -> 1


def test_regressors_are_absolute_and_start_as_a_pass_through():
    """The stage regressor maps [joint features, previous value] to the new value (nothing is added
    to the previous one); its initialisation puts an identity on the previous-value inputs."""
    model = small_model()
    reg = model.decoder.projecter_4.regressor
    tokens = torch.zeros(2, 42, 8)
    params = {"left": torch.randn(2, 64), "right": torch.randn(2, 64)}
    offset = torch.randn(2, 3)
    new_params, new_offset = reg(tokens, params, offset)
    torch.testing.assert_close(new_params["left"], params["left"])
    torch.testing.assert_close(new_offset, offset)
    with torch.no_grad():
        reg.mano_left.weight.zero_()
    assert torch.equal(reg(tokens, params, offset)[0]["left"], reg.mano_left.bias.expand(2, -1))


# --- components ----------------------------------------------------------------------------------


def _segment_reference(p, a, e, radius):
    """README section 6.8 of the reference fixture, one pixel, plain Python floats."""
    import math

    dx, dy = e[0] - a[0], e[1] - a[1]
    length = math.hypot(dx, dy)
    d = (dx / length, dy / length)
    s = (a[0] - p[0]) * d[0] + (a[1] - p[1]) * d[1]
    t = (p[0] - e[0]) * d[0] + (p[1] - e[1]) * d[1]
    h = max(s, t, 0.0)
    c = (p[0] - a[0]) * d[1] - (p[1] - a[1]) * d[0]
    inside = math.hypot(h, c) < radius
    da = math.hypot(p[0] - a[0] + 1e-6, p[1] - a[1] + 1e-6)
    de = math.hypot(p[0] - e[0] + 1e-6, p[1] - e[1] + 1e-6)
    return inside, (1 - da / (da + de)) if inside else 0.0, (1 - de / (da + de)) if inside else 0.0


def test_mfp_masks_and_weights_follow_the_official_definition():
    gen = torch.Generator().manual_seed(0)
    joints = torch.rand(2, 21, 2, generator=gen, dtype=torch.float64) * torch.tensor([12.0, 10.0], dtype=torch.float64)
    joints[1, 7] = joints[1, 6]  # a zero-length bone: masked out, no NaN
    parents, children = torch.tensor([p for p, _ in BONES]), torch.tensor([c for _, c in BONES])
    mask, wp, wc = mfp.bone_weights(joints, parents, children, 10, 12, 1.5)
    assert mask.shape == (2, 20, 120) and torch.isfinite(wp).all() and not mask[1, 6].any()
    for b in range(2):
        for k in (0, 5, 19):
            for pix in (0, 13, 57, 119):
                p = (pix % 12 + 0.5, pix // 12 + 0.5)
                a, e = joints[b, parents[k]].tolist(), joints[b, children[k]].tolist()
                inside, w_a, w_e = _segment_reference(p, a, e, 1.5)
                assert bool(mask[b, k, pix]) == inside
                assert wp[b, k, pix].item() == pytest.approx(w_a, abs=1e-12)
                assert wc[b, k, pix].item() == pytest.approx(w_e, abs=1e-12)
    grid = mfp.pixel_centres(2, 3, torch.zeros(()))
    assert grid.tolist() == [[0.5, 0.5], [1.5, 0.5], [2.5, 0.5], [0.5, 1.5], [1.5, 1.5], [2.5, 1.5]]


def test_factorised_mfp_equals_the_fusion_of_the_explicit_planes():
    """The forward never builds the 2 x 20 x C planes; it must equal Conv3x3 -> BN -> ReLU -> Conv1x1
    of them (the official `fusion`), and the planes are [left bones x C, right bones x C]."""
    model = small_model().eval()
    proj = model.decoder.projecter_3
    for m in proj.fusion.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    torch.manual_seed(1)
    tf_out = torch.randn(2, 42, 8)
    with torch.no_grad():
        stages, _ = model.run(torch.randn(2, 3, 64, 64))
    est = stages[-1]
    trace: dict = {}
    with torch.no_grad():
        fused = proj.project(tf_out, est, (8, 8), None, "")
        proj.factorised = False
        explicit = proj.project(tf_out, est, (8, 8), trace, "")
        proj.factorised = True
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)
    planes = trace["mfp_planes"]  # (2, 2 * 20 * 8, 8, 8)
    for i, hand in enumerate(("left", "right")):
        expected = mfp.explicit_planes(trace[f"mfp_joint_feat_{hand}"], proj.bone_parent, proj.bone_child,
                                       trace[f"mfp_w_parent_{hand}"].flatten(2),
                                       trace[f"mfp_w_child_{hand}"].flatten(2), 8, 8)
        torch.testing.assert_close(planes[:, i * 160:(i + 1) * 160], expected)
        assert trace[f"mfp_mask_{hand}"].any()


def test_single_plane_averages_covering_bones_and_heatmaps_peak_at_joints():
    feat = torch.zeros(1, 21, 1)
    feat[0, :, 0] = torch.arange(21.0)
    px = torch.zeros(1, 21, 2)
    px[0, :, 0] = torch.arange(21.0) * 0.0 + 4.5  # every joint on column 4 ...
    px[0, :, 1] = torch.arange(21.0) * 0.0 + 4.5  # ... row 4: all bones have zero length
    px[0, 1] = torch.tensor([6.5, 4.5])  # bone 0 (0 -> 1) is horizontal, 2 px long
    parents, children = torch.tensor([p for p, _ in BONES]), torch.tensor([c for _, c in BONES])
    w = mfp.bone_weights(px, parents, children, 8, 8, 0.5)
    plane = mfp.single_plane([feat, 2 * feat], [w, w], parents, children, 8, 8)
    # pixel (row 4, col 5): the middle of bones 0 (joints 0 -> 1) and 1 (joints 1 -> 2) of both hands
    # (hand 2 has twice the features): mean of 0.5, 1.5, 1.0 and 3.0
    assert plane[0, 0, 4, 5].item() == pytest.approx((0.5 + 1.5 + 1.0 + 3.0) / 4)
    assert plane[0, 0, 0, 0].item() == 0.0
    heat = mfp.joint_heatmaps(px, 8, 8, 1.0)
    assert heat[0, 1].flatten().argmax().item() == 4 * 8 + 6 and heat[0, 1, 4, 6].item() == pytest.approx(1.0)


def test_gcn_pairs_adjacency_and_per_hand_weights():
    pairs = neighbour_pairs(BONES)
    assert len(pairs) == 40 and pairs[:6] == [(0, 1), (0, 5), (0, 9), (0, 13), (0, 17), (1, 0)]
    assert pairs[19] == (9, 0) and pairs[39] == (20, 19)  # README section 6.8 numbering
    conv = PGraphConv(4, 4, 21, BONES)
    a0, a1 = conv.adjacency()
    assert torch.equal(a0, torch.eye(21)) and torch.allclose(a1.sum(-1), torch.ones(21))
    assert (a1.diagonal() == 0).all() and a1[0, 1] > 0 and a1[0, 2] == 0
    gcn = HandGCN(8, 1, BONES).eval()
    x = torch.randn(1, 21, 8)
    y = x.clone()
    y[0, 20] += 1.0  # pinky tip
    changed = (gcn(y) - gcn(x)).abs().sum(-1)[0]
    assert set(changed.nonzero().flatten().tolist()) == {19, 20}
    assert conv.W.shape == (2, 21, 4, 4)  # a separate matrix per joint


def test_transformer_runs_the_blocks_it_builds_with_the_official_names():
    tf = JointTransformer(16, 8, 3, 4, 2.0)
    assert list(tf.STEblocks) == ["1", "2", "3"]
    trace: dict = {}
    out = tf(torch.randn(2, 42, 16), trace, "s1/")
    assert out.shape == (2, 42, 8) and sorted(trace) == ["s1/tf_block1", "s1/tf_block2", "s1/tf_block3"]
    assert tf.spatial_norm.eps == 1e-6 and tf.head[0].eps == 1e-5 and tf.STEblocks["1"].norm1.eps == 1e-6


def test_residual_is_pre_activation_with_a_projection_only_when_needed():
    block = Residual(6, 4).eval()
    x = torch.randn(1, 6, 5, 5)
    hidden = block.conv2(torch.relu(block.bn2(block.conv1(torch.relu(block.bn1(x))))))
    manual = block.conv3(torch.relu(block.bn3(hidden)))
    torch.testing.assert_close(block(x), manual + block.skip_layer(x))
    assert Residual(4, 4).skip_layer is None


def test_prediction_places_left_hand_by_offset_and_2d_in_crop_pixels():
    model = small_model().eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
        stages, _ = model.run(torch.randn(2, 3, 64, 64) * 0)
    final = out.stages[-1]
    assert torch.allclose(out.joints[:, 0, 0], torch.zeros(2, 3), atol=1e-6)
    assert torch.allclose(out.joints[:, 1, 0], final.offset, atol=1e-6)
    assert torch.allclose(out.joints_2d, (final.joints_uv + 1) * 32)
    assert torch.allclose(final.joints_uv, final.cam[..., :1, None] * final.joints[..., :2] + final.cam[..., None, 1:])
    pred = model.predict(out, {})
    assert not pred.joints.requires_grad and pred.vertices.shape == (2, 2, 778, 3)
    # the boundary: official offset (right - left, units of 0.15 m) -> left - right in metres
    converted = model.to_stage_output(stages[-1])
    torch.testing.assert_close(converted.offset, -0.15 * stages[-1].offset)
    torch.testing.assert_close(converted.joints[:, 1], stages[-1].joints["left"])


def test_root_6d_output_is_the_rotation_actually_used():
    """The official robust 6D is not Gram-Schmidt; the StageOutput carries the columns of the
    matrix the layer used, so any consumer's Gram-Schmidt gives it back exactly."""
    from mano.rotations import rot6d_to_matrix

    model = small_model().eval()
    with torch.no_grad():
        stages, _ = model.run(torch.randn(1, 3, 64, 64))
        stages[0].params["left"][:, :6] = torch.tensor([1.0, 0.2, 0.0, 0.6, 1.0, 0.1])
        est = model.decode(stages[0].params, stages[0].offset)
    out = model.to_stage_output(est)
    torch.testing.assert_close(rot6d_to_matrix(out.root_6d[:, 1]), est.rotmat["left"], atol=1e-6, rtol=0)


def test_mano_layer_is_not_part_of_the_state_dict_but_moves_with_the_model():
    model = small_model()
    assert not any("v_template" in k for k in model.state_dict())
    model.double()
    assert model.hands.v_template.dtype == torch.float64
    assert model.hands.hand_tips[1][2] == 445 and model.hands.joints_from == "skeleton"


def test_mano_arrays_in_the_state_dict_when_asked(tmp_path):
    model = small_model(DEFAULT, "model.dir.mano_from_checkpoint=true")
    state = model.state_dict()
    assert state["mano_arrays.left_v_template"].shape == (778, 3)
    state["mano_arrays.left_v_template"] = state["mano_arrays.left_v_template"] + 0.01
    other = small_model(DEFAULT, "model.dir.mano_from_checkpoint=true")
    before = other.hands.v_template[1].clone()
    other.load_state_dict(state)
    torch.testing.assert_close(other.hands.v_template[1], before + 0.01)


def test_build_model_uses_the_registry(monkeypatch):
    cfg = load_config(DEFAULT, SMALL)
    monkeypatch.setitem(MODELS, "dir", lambda c: ("built", c.model.name))
    assert build_model(cfg) == ("built", "dir")
    monkeypatch.delitem(MODELS, "dir")
    with pytest.raises(ConfigError, match="no model registered as 'dir'"):
        build_model(cfg)


# --- sizes ---------------------------------------------------------------------------------------


def test_official_and_paper_sizes():
    info = model_info(load_config(DEFAULT), 256)
    assert info["parameters"]["total"] == info["parameters"]["used"] == 90_411_059  # official, used
    assert info["official_checkpoint"]["total"] == 92_725_019  # the official state_dict's parameters
    assert info["gflops_reference"] == pytest.approx(36.8, abs=0.1)  # explicit MFP planes, as the official code
    assert info["gflops"] < 0.65 * info["gflops_reference"]  # as executed: factorised MFP, same output
    paper = model_info(load_config(CONFIG_DIR / "dir_r50_interhand_paper.yaml"), 256)
    assert paper["parameters"]["total"] == pytest.approx(52.7e6, rel=0.002)
    assert paper["official_checkpoint"]["total"] == pytest.approx(55.0e6, rel=0.002)  # the paper: 55.1M
    assert paper["gflops_reference"] == pytest.approx(32.0, abs=0.1)  # the paper: 30.8G


def test_info_command_prints_json(capsys):
    assert main(["info", "--config", str(DEFAULT), *SMALL, "--image-size", "64"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"]["total"] == info["parameters"]["used"] == n_params(small_model())
    assert info["outputs"]["joints"] == "1x2x21x3" and len(info["outputs"]["stages"]) == 3
    assert info["gflops"] > 0 and set(info["parameters"]["modules"]) >= {"backbone", "init_regressor", "decoder"}
    assert info["official_checkpoint"]["unused"]["backbone.fc"] == 8 * 32 * 1000 + 1000

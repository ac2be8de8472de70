"""DIR loss: every term pinned to the official training's computation (docs/DIR_LOSSES.md).

Values are checked against hand-computed numbers and against an independent numpy transcription of
the official formulas (per-hand mean over elements, mean over images, hands summed, weights 10 / 1 /
0.1, torch-style Huber with delta 0.01), so a change of magnitude (divide by delta, mean instead of
sum over the hands, a dropped stage, another weight) fails a test.

`make_batch` (also used by the DIR model tests) builds a training batch with the batch contract of
docs/DESIGN.md from random MANO parameters of the synthetic hand, with 2D targets that are an
exact weak projection (uv = s * xy, s = CAM_S) of the camera-frame geometry.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import mano
from dir_net.config import load_config
from dir_net.losses import AUX_TERMS, STAGE_TERMS, DirLoss
from dir_net.losses.dir_loss import crop_px_to_uv
from dir_net.losses.terms import (
    batch_mean,
    hand_sum,
    huber,
    image_mean,
    item_means,
    lovasz_softmax,
    mesh_errors,
    mesh_targets,
    resize_dense,
    resize_labels,
    weighted_cross_entropy,
)
from dir_net.structures import Prediction, StageOutput

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: threads only contend on a loaded machine

CAM_S = 5.0  # weak-perspective scale of the synthetic batches: uv = CAM_S * (x, y) metres
WRISTS = ((-0.05, 0.0, 0.5), (0.05, 0.01, 0.52))  # right, left wrist positions, metres


@pytest.fixture(scope="module")
def hands():
    return mano.load_hands()


def make_batch(hands, batch: int = 2, image_size: int = 64, aux_size: int = 16, seed: int = 0) -> dict:
    """A batch dict (DESIGN.md keys) of two posed synthetic hands per image, random image."""
    g = torch.Generator().manual_seed(seed)
    root_aa = (torch.rand(batch, 2, 3, generator=g) - 0.5) * 1.0
    pca = torch.randn(batch, 2, 45, generator=g) * 0.5
    betas = torch.randn(batch, 2, 10, generator=g) * 0.5
    with torch.no_grad():
        out = hands(root_aa, pca, betas, pose_repr="pca")
        finger_aa = hands.pca_to_axis_angle(pca)
    wrist_pos = torch.tensor(WRISTS) + (torch.rand(batch, 2, 3, generator=g) - 0.5) * 0.04  # (B, 2, 3)
    shift = wrist_pos[:, :, None] - out.joints[:, :, :1]
    joints_3d, verts_3d = out.joints + shift, out.vertices + shift
    to_px = lambda p: (CAM_S * p[..., :2] + 1) * 0.5 * image_size  # noqa: E731
    seg, dense = _rasterise(to_px(verts_3d) / image_size * aux_size, aux_size)
    return {
        "image": torch.randn(batch, 3, image_size, image_size, generator=g),
        "joints_3d": joints_3d,
        "joint_valid": torch.ones(batch, 2, 21),
        "joints_2d": to_px(joints_3d),
        "mano_root": root_aa,
        "mano_finger": finger_aa,
        "mano_betas": betas,
        "mano_valid": torch.ones(batch, 2),
        "verts_3d": verts_3d,
        "verts_2d": to_px(verts_3d),
        "seg": seg,
        "dense": dense,
        "aux_valid": torch.ones(batch),
        "gt_pca": pca,  # not part of the contract: lets tests rebuild the GT meshes
    }


def _rasterise(verts_px: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Vertex splats (B, 2, V, 2) -> seg (B, A, A) labels (1 right, 2 left) and dense (B, 3, A, A)."""
    b, _, v, _ = verts_px.shape
    cols = verts_px.floor().long().clamp(0, size - 1)
    bi = torch.arange(b)[:, None, None].expand(b, 2, v)
    hi = torch.arange(2)[None, :, None].expand(b, 2, v)
    seg = torch.zeros(b, size, size, dtype=torch.long)
    seg[bi, cols[..., 1], cols[..., 0]] = hi + 1
    colour = torch.stack([torch.linspace(0, 1, v).expand(b, 2, v), hi.float(), torch.full((b, 2, v), 0.5)], dim=1)
    dense = torch.zeros(b, 3, size, size)
    dense[bi[:, None].expand(b, 3, 2, v), torch.arange(3)[None, :, None, None].expand(b, 3, 2, v),
          cols[..., 1][:, None].expand(b, 3, 2, v), cols[..., 0][:, None].expand(b, 3, 2, v)] = colour
    return seg, dense


def gt_stage(batch: dict, offset_error: float = 0.0) -> StageOutput:
    """A StageOutput that reproduces the batch's ground truth exactly (plus an optional offset error)."""
    wrist = batch["joints_3d"][:, :, :1]
    joints, verts = batch["joints_3d"] - wrist, batch["verts_3d"] - wrist
    t = CAM_S * wrist[..., :2]  # (B, 2, 1, 2)
    b = joints.shape[0]
    cam = torch.cat([torch.full((b, 2, 1), CAM_S), t[:, :, 0]], dim=-1)
    offset = batch["joints_3d"][:, 1, 0] - batch["joints_3d"][:, 0, 0] + offset_error
    return StageOutput(
        root_6d=torch.zeros(b, 2, 6), finger_pose=batch["gt_pca"], betas=batch["mano_betas"], cam=cam,
        offset=offset, vertices=verts, joints=joints,
        verts_uv=CAM_S * verts[..., :2] + t, joints_uv=CAM_S * joints[..., :2] + t,
    )


def prediction(stages: list[StageOutput], aux: dict | None = None) -> Prediction:
    return Prediction(joints=stages[-1].joints, offset=stages[-1].offset, stages=stages, aux=aux or {})


def perfect_aux(batch: dict, size: int) -> dict:
    seg = resize_labels(batch["seg"], (size, size))
    logits = torch.nn.functional.one_hot(seg, 3).permute(0, 3, 1, 2).float() * 50.0
    return {"seg": logits, "dense": resize_dense(batch["dense"], (size, size))}


@pytest.fixture(scope="module")
def criterion(hands):
    return DirLoss(load_config().loss.dir, hands.faces)


DELTA = 0.01  # official Huber threshold
UNIT = 0.15  # official 3D unit, metres
OFFICIAL_WEIGHTS = {"joints_2d": 10.0, "verts_2d": 10.0, "joints_3d": 10.0, "verts_3d": 10.0, "edge": 1.0,
                    "normal": 0.1, "offset": 10.0, "seg_ce": 0.1, "seg_lovasz": 0.1, "dense": 1.0}


# --- independent numpy transcription of the official formulas (every element valid) ----------


def np_huber(z: np.ndarray) -> np.ndarray:
    a = np.abs(z)
    return np.where(a < DELTA, 0.5 * z**2, DELTA * (a - 0.5 * DELTA))


def np_per_hand(values: np.ndarray) -> float:
    """values (B, 2, ...): per hand the mean over images of the per-image element mean, summed."""
    b = values.shape[0]
    return float(sum(values[:, h].reshape(b, -1).mean(axis=1).mean() for h in range(2)))


def np_unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def np_edge(pred: np.ndarray, gt: np.ndarray, faces: np.ndarray) -> float:
    """Official EdgeLengthLoss per hand (lengths of f0-f1, f0-f2, f1-f2), hands summed."""
    out = 0.0
    for h in range(2):
        f = faces[h]
        diffs = []
        for i, j in ((0, 1), (0, 2), (1, 2)):
            lp = np.sqrt(((pred[:, h][:, f[:, i]] - pred[:, h][:, f[:, j]]) ** 2).sum(-1) + 1e-12)
            lg = np.sqrt(((gt[:, h][:, f[:, i]] - gt[:, h][:, f[:, j]]) ** 2).sum(-1) + 1e-12)
            diffs.append(np.abs(lp - lg))
        out += np.concatenate(diffs, axis=1).mean()
    return out


def np_normal(pred: np.ndarray, gt: np.ndarray, faces: np.ndarray) -> float:
    """Official NormalVectorLoss per hand (edges f1-f0, f2-f0, f2-f1; GT normal from the unit GT
    edges at corner 0), hands summed."""
    out = 0.0
    for h in range(2):
        f = faces[h]
        p, g = pred[:, h], gt[:, h]
        normal = np_unit(np.cross(np_unit(g[:, f[:, 1]] - g[:, f[:, 0]]), np_unit(g[:, f[:, 2]] - g[:, f[:, 0]])))
        cos = [np.abs((np_unit(p[:, f[:, j]] - p[:, f[:, i]]) * normal).sum(-1)) for i, j in ((0, 1), (0, 2), (1, 2))]
        out += np.concatenate(cos, axis=1).mean()
    return out


def np_stage_terms(stage: StageOutput, batch: dict, faces: np.ndarray) -> dict[str, float]:
    """Weighted official stage terms; 3D targets about each wrist (the project's centring)."""
    n = lambda t: t.detach().double().numpy()  # noqa: E731
    size = batch["image"].shape[-1]
    joints = n(batch["joints_3d"])
    wrist = joints[:, :, :1]
    gt_j, gt_v = (joints - wrist) / UNIT, (n(batch["verts_3d"]) - wrist) / UNIT
    pv = n(stage.vertices) / UNIT
    values = {
        "joints_2d": np_per_hand(np_huber(n(stage.joints_uv) - (n(batch["joints_2d"]) / size * 2 - 1))),
        "verts_2d": np_per_hand(np_huber(n(stage.verts_uv) - (n(batch["verts_2d"]) / size * 2 - 1))),
        "joints_3d": np_per_hand(np_huber(n(stage.joints) / UNIT - gt_j)),
        "verts_3d": np_per_hand(np_huber(pv - gt_v)),
        "edge": np_edge(pv, gt_v, faces),
        "normal": np_normal(pv, gt_v, faces),
        "offset": float(np_huber(n(stage.offset) / UNIT - (joints[:, 1, 0] - joints[:, 0, 0]) / UNIT).mean()),
    }
    return {k: OFFICIAL_WEIGHTS[k] * v for k, v in values.items()}


def noisy_stage(batch: dict, seed: int, scale: float = 1.0) -> StageOutput:
    """The GT stage with noise whose residuals straddle the Huber threshold (uv ~ 0.01, 3D ~ 0.0015 m
    = 0.01 units) and a mesh that is no longer a scaled copy (edge and normal terms non-zero)."""
    g = torch.Generator().manual_seed(seed)
    s = gt_stage(batch)
    noise = lambda t, sd: t + torch.randn(t.shape, generator=g) * sd * scale  # noqa: E731
    return StageOutput(
        root_6d=s.root_6d, finger_pose=s.finger_pose, betas=s.betas, cam=s.cam,
        offset=noise(s.offset, 0.01), vertices=noise(s.vertices, 0.0015), joints=noise(s.joints, 0.0015),
        verts_uv=noise(s.verts_uv, 0.01), joints_uv=noise(s.joints_uv, 0.01),
    )


# --- elementary terms ------------------------------------------------------------------------


def test_config_weights_are_the_official_ones():
    cfg = load_config().loss.dir
    assert {k: cfg[k] for k in OFFICIAL_WEIGHTS} == OFFICIAL_WEIGHTS
    assert cfg.huber_delta == DELTA and cfg.coord_unit == UNIT
    assert list(cfg.seg_class_weights) == [0.1, 0.45, 0.45] and cfg.seg_lovasz_softmax is True


def test_huber_is_torch_style_not_divided_by_delta():
    residual = torch.tensor([0.005, -0.02, 0.1, 0.0])
    # 0.5 * 0.005^2; 0.01 * (0.02 - 0.005); 0.01 * (0.1 - 0.005); 0
    expected = [1.25e-5, 1.5e-4, 9.5e-4, 0.0]
    assert huber(residual, torch.zeros(4), 0.01).tolist() == pytest.approx(expected, rel=1e-5, abs=1e-12)


def test_hand_sum_is_per_hand_image_mean_summed_over_hands():
    values = torch.tensor([[[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]],
                           [[4.0, 5.0, 6.0], [40.0, 50.0, 60.0]]])  # (B=2, 2 hands, 3 elements)
    # right: images 2 and 5 -> 3.5; left: 20 and 50 -> 35; summed (not averaged) over the hands
    assert hand_sum(values, torch.ones(2, 2, 3)).item() == pytest.approx(38.5)
    # masks: image 0's left hand absent, image 1's right hand has only element 2 valid
    mask = torch.tensor([[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]])
    # right: (2 + 6) / 2 = 4 (each image weighs the same, whatever its count); left: 50 only
    assert hand_sum(values, mask).item() == pytest.approx(54.0)
    assert hand_sum(values, torch.zeros(2, 2)).item() == 0.0


def test_image_mean_and_item_means():
    values = torch.tensor([[1.0, 3.0], [5.0, 7.0], [100.0, 100.0]])
    assert image_mean(values, torch.tensor([1.0, 1.0, 0.0])).item() == pytest.approx(4.0)
    means, valid = item_means(values, torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]]), item_dims=1)
    assert means.tolist() == [1.0, 0.0, 100.0] and valid.tolist() == [True, False, True]
    out = batch_mean(torch.ones(2, requires_grad=True), torch.zeros(2))
    assert out.item() == 0.0 and out.requires_grad


def test_lovasz_softmax_on_a_2x2_image_by_hand():
    # pixels (row-major 2x2) labelled 0, 1, 2, 0; scores per class
    scores = torch.tensor([[0.7, 0.2, 0.1], [0.4, 0.6, 0.0], [0.25, 0.35, 0.4], [0.5, 0.5, 0.0]])
    labels = torch.tensor([0, 1, 2, 0])
    # class 0: errors sorted 0.5 (fg) 0.4 (bg) 0.3 (fg) 0.25 (bg); Jaccard 1/2, 2/3, 1, 1
    #   -> 0.5 * 1/2 + 0.4 * 1/6 + 0.3 * 1/3 = 5/12
    # class 1: 0.5 (bg) 0.4 (fg) 0.35 0.2 -> Jaccard 1/2, 1, 1, 1 -> 0.5 * 1/2 + 0.4 * 1/2 = 0.45
    # class 2: 0.6 (fg) first -> 0.6
    expected = (5 / 12 + 0.45 + 0.6) / 3
    assert lovasz_softmax(scores, labels).item() == pytest.approx(expected, rel=1e-6)
    # only the classes present count: drop pixel 2 (class 2) and class 2's 0.6 disappears
    keep = torch.tensor([0, 1, 3])
    assert lovasz_softmax(scores[keep], labels[keep]).item() < expected
    perfect = torch.nn.functional.one_hot(labels, 3).float()
    assert lovasz_softmax(perfect, labels).item() == pytest.approx(0.0, abs=1e-7)


def test_weighted_cross_entropy_by_hand():
    logits = torch.zeros(1, 3, 1, 2)
    logits[0, :, 0, 0] = torch.tensor([2.0, 0.0, 0.0])  # a background pixel, then a right-hand pixel
    target = torch.tensor([[[0, 1]]])
    weights = torch.tensor([0.1, 0.45, 0.45])
    nll_bg = -math.log(math.exp(2) / (math.exp(2) + 2))
    nll_right = -math.log(1 / 3)
    expected = (0.1 * nll_bg + 0.45 * nll_right) / (0.1 + 0.45)
    assert weighted_cross_entropy(logits, target, weights).item() == pytest.approx(expected, rel=1e-6)


def test_aux_targets_are_resized_as_officially():
    labels = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 0, 0], [2, 2, 0, 0]]])
    assert resize_labels(labels, (2, 2)).tolist() == [[[0, 1], [2, 0]]]
    # bilinear, align_corners False: output pixel i samples input 4 i + 1.5 -> mean of pixels 4i+1, 4i+2
    # (not the mean of the 4x4 block)
    dense = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    grid = dense[0, 0].numpy()
    expected = [float(grid[r:r + 2, c:c + 2].mean()) for r in (1, 5) for c in (1, 5)]
    assert resize_dense(dense, (2, 2)).flatten().tolist() == pytest.approx(expected)


def test_crop_px_to_uv():
    pts = torch.tensor([[0.0, 0.0], [64.0, 32.0], [32.0, 64.0]])
    assert crop_px_to_uv(pts, (64, 64)).tolist() == [[-1.0, -1.0], [1.0, 0.0], [0.0, 1.0]]


def test_mesh_terms_match_the_official_formulas(hands):
    batch = make_batch(hands, batch=1)
    gt = batch["verts_3d"] / UNIT
    faces = hands.faces
    pred = gt + torch.randn(gt.shape, generator=torch.Generator().manual_seed(1)) * 0.02
    f = faces.numpy()
    targets = mesh_targets(gt, faces)  # the GT side, shared by every stage
    edge_error, normal_error = mesh_errors(pred, faces, *targets)
    edge = hand_sum(edge_error, torch.ones(1, 2)).item()
    assert edge == pytest.approx(np_edge(pred.double().numpy(), gt.double().numpy(), f), rel=1e-4)
    normal = hand_sum(normal_error, torch.ones(1, 2)).item()
    assert normal == pytest.approx(np_normal(pred.double().numpy(), gt.double().numpy(), f), rel=1e-4)
    # scaling keeps edges in the GT face planes: no normal error, edge error = mean GT edge length
    edge_error, normal_error = mesh_errors(2 * gt, faces, *targets)
    assert hand_sum(normal_error, torch.ones(1, 2)).item() < 1e-4
    mean_len = sum(np_edge(np.zeros_like(gt.numpy()), gt.double().numpy(), f[[h, h]]) for h in range(2)) / 2
    assert hand_sum(edge_error, torch.ones(1, 2)).item() == pytest.approx(mean_len, rel=1e-4)


# --- the DIR objective -------------------------------------------------------------------------


def test_every_stage_term_equals_the_official_computation(hands, criterion):
    batch = make_batch(hands, batch=3)
    stages = [noisy_stage(batch, seed) for seed in range(3)]  # stage 0 and two refinement stages
    losses = criterion(prediction(stages), batch)
    faces = hands.faces.numpy()
    for i, stage in enumerate(stages):
        expected = np_stage_terms(stage, batch, faces)
        for name in STAGE_TERMS:
            assert losses[f"{name}/s{i}"].item() == pytest.approx(expected[name], rel=1e-4), (name, i)
    for name in STAGE_TERMS:  # every stage is supervised; the stages add up
        assert losses[name].item() == pytest.approx(sum(losses[f"{name}/s{i}"].item() for i in range(3)), rel=1e-6)


def test_official_magnitudes_on_a_known_error(hands, criterion):
    batch = make_batch(hands)
    stage = gt_stage(batch)
    stage.joints_uv += 0.1  # every coordinate of every joint of both hands off by 0.1
    stage.offset += 0.03  # 0.2 units on every axis
    losses = criterion(prediction([stage]), batch)
    # 10 (weight) x 2 hands x 0.01 * (0.1 - 0.005)
    assert losses["joints_2d"].item() == pytest.approx(10 * 2 * 0.01 * 0.095, rel=1e-4)
    # 10 (weight) x 0.01 * (0.2 - 0.005), once (not per hand)
    assert losses["offset"].item() == pytest.approx(10 * 0.01 * 0.195, rel=1e-4)


def test_map_terms_equal_the_official_computation(hands):
    cfg = load_config(None, ["loss.dir.seg_lovasz_softmax=false"]).loss.dir  # the official call
    criterion = DirLoss(cfg, hands.faces)
    batch = make_batch(hands, batch=1, aux_size=4)
    batch["seg"] = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 0, 0], [2, 2, 0, 0]]])
    batch["dense"] = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    # the 2x2 Lovasz example as the raw seg output: official passes the logits themselves
    scores = torch.tensor([[0.7, 0.2, 0.1], [0.4, 0.6, 0.0], [0.25, 0.35, 0.4], [0.5, 0.5, 0.0]])
    logits = scores.t().reshape(1, 3, 2, 2)  # pixel (r, c) = scores[2 r + c]
    dense = torch.full((1, 3, 2, 2), 0.5)
    losses = criterion(prediction([gt_stage(batch)], {"seg": logits, "dense": dense}), batch)
    assert losses["seg_lovasz"].item() == pytest.approx(0.1 * (5 / 12 + 0.45 + 0.6) / 3, rel=1e-6)
    lab = np.array([0, 1, 2, 0])
    logp = torch.log_softmax(scores.double(), dim=1).numpy()
    w = np.array([0.1, 0.45, 0.45])[lab]
    expected_ce = (w * -logp[np.arange(4), lab]).sum() / w.sum()
    assert losses["seg_ce"].item() == pytest.approx(0.1 * expected_ce, rel=1e-6)
    target = batch["dense"][0].numpy().reshape(3, 2, 2, 2, 2).mean(axis=(2, 4))  # 2x bilinear = 2x2 means
    assert losses["dense"].item() == pytest.approx(float(np_huber(0.5 - target).mean()), rel=1e-5)
    # the Berman form (softmax probabilities): the project default
    cfg_softmax = load_config().loss.dir
    soft = DirLoss(cfg_softmax, hands.faces)(prediction([gt_stage(batch)], {"seg": logits, "dense": dense}), batch)
    flat = logits.softmax(dim=1).permute(0, 2, 3, 1).reshape(-1, 3)
    assert soft["seg_lovasz"].item() == pytest.approx(0.1 * lovasz_softmax(flat, torch.as_tensor(lab)).item(), rel=1e-6)


def test_total_is_the_sum_of_the_weighted_terms(hands, criterion):
    batch = make_batch(hands)
    aux = {"seg": torch.zeros(2, 3, 8, 8), "dense": torch.zeros(2, 3, 8, 8)}
    losses = criterion(prediction([noisy_stage(batch, 0), noisy_stage(batch, 1)], aux), batch)
    assert set(STAGE_TERMS + AUX_TERMS) <= set(losses)
    expected = sum(losses[n].item() for n in STAGE_TERMS + AUX_TERMS)
    assert losses["total"].item() == pytest.approx(expected, rel=1e-6)


def test_perfect_prediction_has_zero_loss(hands, criterion):
    batch = make_batch(hands)
    stage = gt_stage(batch)
    seg = resize_labels(batch["seg"], (8, 8))
    one_hot = torch.nn.functional.one_hot(seg, 3).permute(0, 3, 1, 2).float()
    aux = {"seg": one_hot * 50.0, "dense": resize_dense(batch["dense"], (8, 8))}  # confident logits
    losses = criterion(prediction([stage, stage], aux), batch)
    for name in STAGE_TERMS + ("seg_ce", "seg_lovasz", "dense"):
        assert losses[name].item() < 1e-5, name


def test_targets_are_centred_on_each_wrist(hands, criterion):
    """The documented deviation: official targets are MCP-centred (joint 9); ours about the wrist."""
    batch = make_batch(hands)
    stage = gt_stage(batch)
    mcp = batch["joints_3d"][:, :, 9:10] - batch["joints_3d"][:, :, :1]  # (B, 2, 1, 3) wrist -> MCP
    stage.joints, stage.vertices = stage.joints - mcp, stage.vertices - mcp  # MCP-centred
    losses = criterion(prediction([stage]), batch)
    assert losses["joints_3d"].item() > 0.01 and losses["verts_3d"].item() > 0.01


def test_invalid_hands_and_joints_are_ignored(hands, criterion):
    batch = make_batch(hands)
    batch["mano_valid"][0, 1] = 0.0
    batch["joint_valid"][0, 1] = 0.0  # the whole left hand of image 0 is unannotated
    batch["joint_valid"][1, 0, 5] = 0.0  # one joint of image 1's right hand
    batch["aux_valid"][1] = 0.0
    stage = gt_stage(batch)
    aux = {"seg": torch.zeros(2, 3, 8, 8), "dense": torch.zeros(2, 3, 8, 8)}
    before = criterion(prediction([stage], aux), batch)
    stage.vertices[0, 1] += 0.1
    stage.verts_uv[0, 1] += 0.1
    stage.joints[0, 1] += 0.1
    stage.joints_uv[0, 1] += 0.1
    stage.joints[1, 0, 5] += 0.1
    stage.joints_uv[1, 0, 5] += 0.1
    stage.offset[0] += 0.1  # the offset of image 0 needs the (invalid) left wrist
    aux["seg"][1] = torch.randn(3, 8, 8)
    aux["dense"][1] += 0.5
    after = criterion(prediction([stage], aux), batch)
    for name in STAGE_TERMS + AUX_TERMS:
        assert after[name].item() == pytest.approx(before[name].item(), abs=1e-7), name
    stage.joints[1, 0, 6] += 0.1  # a valid joint does count
    assert criterion(prediction([stage], aux), batch)["joints_3d"].item() > before["joints_3d"].item() + 1e-3


def test_no_aux_maps_means_no_pixel_terms(hands, criterion):
    batch = make_batch(hands)
    losses = criterion(prediction([gt_stage(batch)]), batch)
    assert not set(AUX_TERMS) & set(losses)
    assert torch.isfinite(losses["total"])

"""DIR loss terms: hand-checkable values, masks, and the full objective on synthetic MANO hands.

`make_batch` (also used by the DIR model tests) builds a training batch with the batch contract of
docs/DESIGN.md from random MANO parameters of the synthetic hand, with 2D targets that are an
exact weak projection (uv = s * xy, s = CAM_S) of the camera-frame geometry.
"""

from __future__ import annotations

import math

import pytest
import torch

import mano
from dir_net.config import load_config
from dir_net.losses import AUX_TERMS, STAGE_TERMS, DirLoss
from dir_net.losses.dir_loss import crop_px_to_uv
from dir_net.losses.terms import (
    edge_length_loss,
    lovasz_softmax,
    masked_mean,
    normal_consistency_loss,
    resize_dense,
    resize_labels,
    segmentation_losses,
    smooth_l1,
)
from dir_net.structures import Prediction, StageOutput

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


# --- elementary terms ------------------------------------------------------------------------


def test_smooth_l1_values_match_hand_computation():
    pred = torch.tensor([[0.005, 0.0], [0.1, 0.0]])
    target = torch.zeros(2, 2)
    # 0.5 * 0.005^2 / 0.01 = 0.00125 (quadratic zone); 0.1 - 0.005 = 0.095 (linear zone); zeros.
    expected = (0.00125 + 0.095) / 4
    assert smooth_l1(pred, target, torch.ones(2), 0.01).item() == pytest.approx(expected, rel=1e-6)
    # Masking the second row leaves only the first row's two entries.
    assert smooth_l1(pred, target, torch.tensor([1.0, 0.0]), 0.01).item() == pytest.approx(0.00125 / 2, rel=1e-6)


def test_masked_mean_with_nothing_valid_is_zero_and_differentiable():
    values = torch.ones(3, 4, requires_grad=True)
    out = masked_mean(values, torch.zeros(3))
    out.backward()
    assert out.item() == 0.0 and values.grad is not None


def test_lovasz_softmax_perfect_is_zero_and_all_wrong_is_one():
    labels = torch.tensor([0, 1, 2, 2])
    perfect = torch.nn.functional.one_hot(labels, 3).float()
    assert lovasz_softmax(perfect, labels).item() == pytest.approx(0.0, abs=1e-7)
    wrong = torch.nn.functional.one_hot((labels + 1) % 3, 3).float()
    assert lovasz_softmax(wrong, labels).item() == pytest.approx(1.0, abs=1e-6)


def test_lovasz_softmax_half_right_binary_case():
    # Class 1 is the single positive pixel with probability 0.5 of the two pixels; class 0 the other.
    probs = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    labels = torch.tensor([1, 0])
    # class 0: errors (0.5 at pixel 0 [not fg], 0 at pixel 1 [fg]) -> 0.5 * (1 - 1/2) = 0.25
    # class 1: errors (0.5 fg, 0 bg) -> 0.5 * 1 = 0.5. Mean 0.375.
    assert lovasz_softmax(probs, labels).item() == pytest.approx(0.375, abs=1e-6)


def test_segmentation_ce_is_class_weighted_and_skips_invalid_images():
    logits = torch.zeros(2, 3, 1, 2)
    logits[0, :, 0, 0] = torch.tensor([2.0, 0.0, 0.0])  # background pixel, right
    target = torch.tensor([[[0, 1]], [[2, 2]]])
    weights = torch.tensor([0.1, 0.45, 0.45])
    ce, _ = segmentation_losses(logits, target, torch.tensor([1.0, 0.0]), weights)
    nll_bg = -math.log(math.exp(2) / (math.exp(2) + 2))
    nll_right = -math.log(1 / 3)
    expected = (0.1 * nll_bg + 0.45 * nll_right) / 0.55
    assert ce.item() == pytest.approx(expected, rel=1e-5)


def test_resizing_aux_targets():
    labels = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 0, 0], [2, 2, 0, 0]]])
    assert resize_labels(labels, (2, 2)).tolist() == [[[0, 1], [2, 0]]]
    dense = torch.arange(16.0).view(1, 1, 4, 4)
    assert resize_dense(dense, (2, 2)).flatten().tolist() == [2.5, 4.5, 10.5, 12.5]  # area means
    assert resize_dense(dense, (8, 8)).shape == (1, 1, 8, 8)


def test_crop_px_to_uv():
    pts = torch.tensor([[0.0, 0.0], [64.0, 32.0], [32.0, 64.0]])
    assert crop_px_to_uv(pts, (64, 64)).tolist() == [[-1.0, -1.0], [1.0, 0.0], [0.0, 1.0]]


def test_mesh_smoothness_terms(hands):
    batch = make_batch(hands, batch=1)
    gt = batch["verts_3d"]
    faces, valid = hands.faces, torch.ones(1, 2)
    assert edge_length_loss(gt + 0.3, gt, faces, valid).item() == pytest.approx(0.0, abs=1e-6)
    edges = gt[:, torch.arange(2)[:, None, None], faces]
    mean_len = (edges.roll(-1, dims=3) - edges).norm(dim=-1).mean().item()
    assert edge_length_loss(2 * gt, gt, faces, valid).item() == pytest.approx(mean_len, rel=1e-4)
    # Scaling keeps every edge in its face plane: no normal error; a 90 degree turn does not.
    assert normal_consistency_loss(2 * gt, gt, faces, valid).item() < 1e-4
    turned = torch.stack([gt[..., 0], gt[..., 2], -gt[..., 1]], dim=-1)
    assert normal_consistency_loss(turned, gt, faces, valid).item() > 0.1
    assert edge_length_loss(2 * gt, gt, faces, torch.zeros(1, 2)).item() == 0.0


# --- the DIR objective -------------------------------------------------------------------------


def test_perfect_prediction_has_zero_loss(hands, criterion):
    batch = make_batch(hands)
    stage = gt_stage(batch)
    losses = criterion(prediction([stage, stage], perfect_aux(batch, 8)), batch)
    for name in STAGE_TERMS:
        assert losses[name].item() < 1e-5, name
        assert set(losses) >= {f"{name}/s0", f"{name}/s1"}
    assert losses["seg_lovasz"].item() < 1e-5 and losses["seg_ce"].item() < 1e-5
    assert losses["dense"].item() < 1e-6
    assert losses["total"].item() < 1e-4


def test_total_is_weighted_sum_and_stages_add_up(hands, criterion):
    batch = make_batch(hands)
    good, bad = gt_stage(batch), gt_stage(batch, offset_error=0.05)
    aux = {"seg": torch.zeros(2, 3, 8, 8), "dense": torch.zeros(2, 3, 8, 8)}
    losses = criterion(prediction([bad, good], aux), batch)
    # offset error 0.05 m = 1/3 unit: smooth L1 = 1/3 - 0.005 on every axis.
    assert losses["offset/s0"].item() == pytest.approx(0.05 / 0.15 - 0.005, rel=1e-4)
    assert losses["offset/s1"].item() < 1e-6
    assert losses["offset"].item() == pytest.approx(losses["offset/s0"].item(), rel=1e-6)
    weights = load_config().loss.dir
    expected = sum(weights[n] * losses[n] for n in STAGE_TERMS + AUX_TERMS)
    assert losses["total"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_invalid_hands_and_joints_are_ignored(hands, criterion):
    batch = make_batch(hands)
    batch["mano_valid"][0, 1] = 0.0
    batch["joint_valid"][0, 1] = 0.0  # the whole left hand of image 0 is unannotated
    batch["joint_valid"][1, 0, 5] = 0.0  # one joint of image 1's right hand
    batch["aux_valid"][1] = 0.0
    stage = gt_stage(batch)
    aux = perfect_aux(batch, 8)
    before = criterion(prediction([stage], aux), batch)
    stage.vertices[0, 1] += 0.1
    stage.verts_uv[0, 1] += 0.1
    stage.joints[0, 1] += 0.1
    stage.joints_uv[0, 1] += 0.1
    stage.joints[1, 0, 5] += 0.1
    stage.joints_uv[1, 0, 5] += 0.1
    stage.offset[0] += 0.1  # the offset of image 0 needs the (invalid) left wrist
    aux["seg"][1] = -aux["seg"][1]
    aux["dense"][1] += 0.5
    after = criterion(prediction([stage], aux), batch)
    for name in STAGE_TERMS + AUX_TERMS:
        assert after[name].item() == pytest.approx(before[name].item(), abs=1e-6), name
    stage.joints[1, 0, 6] += 0.1  # a valid joint does count
    assert criterion(prediction([stage], aux), batch)["joints_3d"].item() > before["joints_3d"].item() + 1e-3


def test_no_aux_maps_means_no_pixel_terms(hands, criterion):
    batch = make_batch(hands)
    losses = criterion(prediction([gt_stage(batch)]), batch)
    assert not set(AUX_TERMS) & set(losses)
    assert torch.isfinite(losses["total"])

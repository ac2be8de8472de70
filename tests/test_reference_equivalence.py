"""Checkpoint-exact equivalence with the official code: each public format is regenerated from
its fixture, converted with the CLI's code path and run; outputs must match `outputs.npz`."""

# --- dir_official --------------------------------------------------------------------------
# The official DIR checkpoint format ({'net': sd}, and a DataParallel `module.` variant) is
# regenerated from its fixture, converted by the CLI's code path (convert_file / write_converted,
# config read back from the file as `dirnet eval` does), built with the fixture's hand model and run
# in eval mode, fp32, on `inputs.npz['images']`. Every array of outputs.npz is compared under the
# rules of the fixture's own compare_outputs.py; the project-convention outputs are checked too.

import importlib.util  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from dir_net.cli import main as dirnet_main  # noqa: E402
from dir_net.convert import convert_file, write_converted  # noqa: E402
from dir_net.engine.checkpoint import load_model_weights, read_checkpoint  # noqa: E402
from dir_net.engine.evaluation import config_from_checkpoint  # noqa: E402
from dir_net.models import build_model  # noqa: E402
from reference_fixtures import fixture_dir, make_state_dict  # noqa: E402

DIR_MAPS = ("c1", "c2", "c3", "c4", "up", "skip", "fused", "mfp_fused", "enhanced", "conv_final")


def _dir_official_rule():
    """`rule(name) -> (kind, tolerance)` of the fixture's compare_outputs.py (one source of truth)."""
    path = fixture_dir("dir_official") / "compare_outputs.py"
    spec = importlib.util.spec_from_file_location("dir_official_compare_outputs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.rule


def _dir_official_arrays(trace: dict) -> dict:
    """The model's trace under the names of outputs.npz (maps as .chmean / .pixmean fingerprints)."""
    out = {}
    for name, value in trace.items():
        value = value.detach()
        if name == "s2/proj_feat":
            name = "final/proj_feat"
        if value.dim() == 4 and name.split("/")[1] in DIR_MAPS:
            out[f"{name}.chmean"] = value.double().mean(dim=(2, 3)).float().numpy()
            out[f"{name}.pixmean"] = value.double().mean(dim=1).float().numpy()
        else:
            out[name] = value.numpy().astype(np.uint8) if value.dtype == torch.bool else value.float().numpy()
    return out


@pytest.fixture(scope="module")
def dir_official_run(tmp_path_factory):
    """Regenerated official checkpoints, the converted file and one traced forward pass."""
    fixture = fixture_dir("dir_official")
    tmp = tmp_path_factory.mktemp("dir_official")
    generator = fixture / "make_state_dict.py"
    src = make_state_dict(generator, tmp / "latest.pth", "--wrap", "net")
    converted = convert_file("dir-official", src)
    dst = write_converted(converted, tmp / "converted.pt", "dir-official", src)
    cfg = config_from_checkpoint(dst, [f"mano.model_dir={fixture / 'mano'}"])
    model = build_model(cfg)
    load_model_weights(dst, model)  # strict: names and shapes
    model.eval()
    images = torch.from_numpy(np.load(fixture / "inputs.npz")["images"])
    trace: dict = {}
    with torch.no_grad():
        pred = model(images, trace)
    return {"fixture": fixture, "tmp": tmp, "src": src, "converted": converted, "dst": dst, "model": model,
            "pred": pred, "mine": _dir_official_arrays(trace), "ref": np.load(fixture / "outputs.npz")}


def test_dir_official_fixture_matches_every_reference_array(dir_official_run):
    rule, ref, mine = _dir_official_rule(), dir_official_run["ref"], dir_official_run["mine"]
    assert sorted(set(ref.files) - set(mine)) == []  # all 166 arrays are produced
    failed = []
    for name in ref.files:
        want, got = ref[name].astype(np.float64), mine[name].astype(np.float64)
        assert got.shape == want.shape, name
        kind, tol = rule(name)
        worst = float(np.abs(got - want).max())
        limit = tol * float(np.abs(want).max()) if kind == "rel" else tol
        if not (np.isfinite(got).all() and worst <= limit):
            failed.append(f"{name}: max|diff| {worst:.3e} > {limit:.1e}")
    assert not failed, failed


def test_dir_official_prediction_follows_the_project_conventions(dir_official_run):
    """Hand 0 = right, offset = left - right wrist in metres, root_6d = the rotation's columns,
    seg (background, right, left) and dense (R, G, B): the converted heads' channel orders."""
    ref, pred = dir_official_run["ref"], dir_official_run["pred"]
    assert len(pred.stages) == 3
    for k, stage in enumerate(pred.stages):
        for h, hand in enumerate(("right", "left")):
            np.testing.assert_allclose(stage.joints[:, h], ref[f"s{k}/joints_{hand}"], atol=1e-5, rtol=0)
            np.testing.assert_allclose(stage.vertices[:, h], ref[f"s{k}/verts_{hand}"], atol=1e-5, rtol=0)
            np.testing.assert_allclose(stage.joints_uv[:, h], ref[f"s{k}/joint_uv_{hand}"], atol=1e-4, rtol=0)
            rot = ref[f"s{k}/root_rotmat_{hand}"]
            np.testing.assert_allclose(stage.root_6d[:, h], np.concatenate([rot[..., 0], rot[..., 1]], -1), atol=1e-4)
            np.testing.assert_allclose(stage.finger_pose[:, h], ref[f"s{k}/pca_{hand}"], atol=1e-4, rtol=0)
            np.testing.assert_allclose(stage.cam[:, h], ref[f"s{k}/cam_{hand}"], atol=1e-4, rtol=0)
        np.testing.assert_allclose(stage.offset, -ref[f"s{k}/offset_m"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(pred.joints[:, 1] - pred.joints[:, 1, :1], ref["s2/joints_left"], atol=1e-5)
    np.testing.assert_allclose(pred.joints[:, 1, 0], -ref["s2/offset_m"], atol=1e-4)
    np.testing.assert_allclose(pred.joints_2d[:, 0], (ref["s2/joint_uv_right"] + 1) * 128, atol=1e-2)
    seg, dense = ref["final/seg"], ref["final/dense"]
    tol = 1e-4 * max(np.abs(seg).max(), np.abs(dense).max())
    np.testing.assert_allclose(pred.aux["seg"], seg[:, [0, 2, 1]], atol=tol, rtol=0)
    np.testing.assert_allclose(pred.aux["dense"], dense[:, [2, 1, 0]], atol=tol, rtol=0)
    np.testing.assert_allclose(pred.aux["attention"][:, 0], ref["s0/attn_right"][:, 0], atol=1e-4, rtol=0)


def test_dir_official_converter_notes_and_config(dir_official_run):
    converted = dir_official_run["converted"]
    notes = " | ".join(converted.notes)
    for dropped in ("backbone.fc.*", "STEblocks.0.*", "seg_loss.weight", "img_gird", "60 MANO buffers"):
        assert dropped in notes, dropped
    assert converted.config["model"]["name"] == "dir" and converted.config["data"]["image_size"] == 256
    assert not converted.config["model"]["dir"]["mano_from_checkpoint"]
    assert len(converted.model_state) == 874  # 963 official tensors - 2 fc - 24 block 0 - 1 - 2 grids - 60 MANO
    ckpt = read_checkpoint(dir_official_run["dst"])
    assert ckpt["converted_from"]["source"] == "dir-official" and ckpt["config"] == converted.config


def test_dir_official_cli_round_trip_with_module_prefix(dir_official_run, capsys):
    """`dirnet convert` on the DataParallel-named variant gives the same tensors as the bare one."""
    tmp = dir_official_run["tmp"]
    src = make_state_dict(dir_official_run["fixture"] / "make_state_dict.py", tmp / "module.pth",
                          "--wrap", "net", "--prefix", "module.")
    dst = tmp / "cli.pt"
    assert dirnet_main(["convert", "--from", "dir-official", str(src), str(dst)]) == 0
    out = capsys.readouterr().out
    assert "note: dropped 2 tensors: backbone.fc.*" in out and f"wrote {dst}" in out
    src.unlink()  # 360 MB
    state = read_checkpoint(dst)["model"]
    expected = dir_official_run["converted"].model_state
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[k], v) for k, v in expected.items())


def _refused(tmp, capsys, name: str, obj=None, raw: bytes | None = None) -> str:
    src, dst = tmp / name, tmp / f"{name}.pt"
    if raw is not None:
        src.write_bytes(raw)
    else:
        torch.save(obj, src)
    assert dirnet_main(["convert", "--from", "dir-official", str(src), str(dst)]) == 2
    assert not dst.exists()
    captured = capsys.readouterr()
    message = (captured.err + captured.out).strip()
    assert len(message.splitlines()) == 1 and str(src) in message, message
    return message


def test_dir_official_refuses_broken_files(dir_official_run, tmp_path, capsys):
    with open(dir_official_run["src"], "rb") as f:
        head = f.read(4 << 20)
    assert "truncated" in _refused(tmp_path, capsys, "truncated.pth", raw=head)
    internet = {"module.backbone_net.resnet.conv1.weight": torch.zeros(64, 3, 7, 7),
                "module.pose_net.joint_deconv_1.deconv.0.weight": torch.zeros(2048, 256, 4, 4)}
    assert "'backbone_net.resnet.conv1.weight'" in _refused(tmp_path, capsys, "internet.pth", internet)
    wrong = {"net": {"backbone.conv1.weight": torch.zeros(64, 3, 5, 5)}}
    message = _refused(tmp_path, capsys, "wrong_shape.pth", wrong)
    assert "'backbone.conv1.weight'" in message and "[64, 3, 5, 5]" in message
    partial = {"net": {"backbone.conv1.weight": torch.zeros(64, 3, 7, 7)}}
    assert "missing, first 'backbone.bn1.weight'" in _refused(tmp_path, capsys, "partial.pth", partial)
    grid = {"net": {"decoder.projecter_4.img_gird": torch.zeros(64, 2)}}
    assert "another input size" in _refused(tmp_path, capsys, "grid.pth", grid)


def test_dir_official_mano_from_the_checkpoint(dir_official_run):
    """--option mano=checkpoint: the checkpoint's MANO arrays become model buffers and are used."""
    fixture = dir_official_run["fixture"]
    converted = convert_file("dir-official", dir_official_run["src"], {"mano": "checkpoint"})
    assert converted.config["model"]["dir"]["mano_from_checkpoint"]
    assert any("checkpoint's arrays" in n for n in converted.notes)
    cfg = dict(converted.config, mano=dict(converted.config["mano"], model_dir="synthetic"))
    model = build_model(cfg)
    model.load_state_dict(converted.model_state, strict=True)
    arrays = np.load(fixture / "mano" / "MANO_LEFT.npz")
    np.testing.assert_allclose(model.hands.v_template[1], arrays["v_template"], atol=1e-7)
    model.eval()
    image = torch.from_numpy(np.load(fixture / "inputs.npz")["images"][:1])
    with torch.no_grad():
        stages, _ = model.run(image)
    ref = dir_official_run["ref"]
    np.testing.assert_allclose(stages[0].verts["left"], ref["s0/verts_left"][:1], atol=1e-5, rtol=0)
    np.testing.assert_allclose(stages[-1].joints["right"], ref["s2/joints_right"][:1], atol=1e-5, rtol=0)
    with pytest.raises(Exception, match="choose files or checkpoint"):
        convert_file("dir-official", dir_official_run["src"], {"mano": "both"})


# --- internet_official, internet_mmpose, sb2d_mmpose ---------------------------------------
# Each fixture: regenerate the public checkpoint, convert it through the CLI's code path, read the
# config back from the converted file (what `dirnet eval` does without flags), run the project's
# own pipeline on the raw images + boxes + cameras and compare with the reference's outputs.npz.

import re

import numpy as np
import pytest
import torch

from dir_net.convert import convert_file, write_converted
from dir_net.data.camera import Camera
from dir_net.data.reader import Record
from dir_net.engine.checkpoint import load_model_weights
from dir_net.engine.evaluation import config_from_checkpoint
from dir_net.models import build_model
from dir_net.models.heatmap import apply_affine, depth_to_bins
from eval import Evaluator
from mano.joints import INTERHAND_TO_WRIST_FIRST, WRIST_FIRST_TO_INTERHAND
from reference_fixtures import fixture_dir, make_state_dict

HAND_CODES = {"right": 0, "left": 1, "interacting": 2}
CROP_LSB = 0.02  # one grey level after the ImageNet normalisation (mmpose's uint8 warp)


def _converted(tmp_path_factory, folder: str, source: str):
    """(fixture folder, config read back from the converted checkpoint, model with its weights, public file)."""
    fixture = fixture_dir(folder)
    tmp = tmp_path_factory.mktemp(folder)
    src = make_state_dict(fixture.parent / "make_state_dict.py", tmp / "public.pth",
                          "--keys", str(fixture / "keys.tsv"))
    dst = write_converted(convert_file(source, src), tmp / "converted.pt", source, src)
    cfg = config_from_checkpoint(dst, [])
    model = build_model(cfg)
    load_model_weights(dst, model)
    return fixture, cfg, model.eval(), src


def _to_wrist_first(x: np.ndarray) -> np.ndarray:
    """(..., 42, k) InterHand order, right then left -> (..., 2, 21, k) wrist-first."""
    x = np.asarray(x)
    return x.reshape(x.shape[:-2] + (2, 21, x.shape[-1]))[..., INTERHAND_TO_WRIST_FIRST, :]


def _to_interhand(x: np.ndarray) -> np.ndarray:
    """(..., 2, 21, k) wrist-first -> (..., 42, k) InterHand order."""
    x = np.asarray(x)[..., WRIST_FIRST_TO_INTERHAND, :]
    return x.reshape(x.shape[:-3] + (42, x.shape[-1]))


def _record(inputs, b: int) -> Record:
    """Frame b of a fixture's inputs.npz as the project's reader would give it (camera frame = world)."""
    joint_valid = _to_wrist_first(inputs["joint_valid"][b][:, None])[..., 0]
    return Record(
        ann_id=int(inputs["ann_id"][b]),
        image=np.ascontiguousarray(inputs[f"image_{b}"][..., ::-1]),  # RGB -> the reader's BGR
        camera=Camera(np.eye(3), np.zeros(3), inputs["focal"][b], inputs["princpt"][b]),
        joints_cam=_to_wrist_first(inputs["joints_cam_gt"][b]).astype(np.float64) / 1000.0,
        joint_valid=joint_valid.astype(np.float32),
        hand_type=HAND_CODES[str(inputs["hand_type"][b])],
        hand_type_valid=float(inputs["hand_type_valid"][b]),
        bbox=inputs["bbox_xywh"][b],
        mano=None,
        aux=None,
    )


def _assert_crop(got: np.ndarray, want: np.ndarray, lsb_allowed: bool) -> None:
    """Crop within 1e-3; with mmpose's uint8 warp < 0.01 % of values may be one grey level off."""
    diff = np.abs(got - want)
    off = diff > 1e-3
    if lsb_allowed:
        assert off.mean() < 1e-4 and diff.max() <= CROP_LSB, (off.sum(), diff.max())
    else:
        assert not off.any(), diff.max()


def _internet_run(tmp_path_factory, folder: str, source: str) -> dict:
    from dir_net.data.pipelines import build_pipeline

    fixture, cfg, model, src = _converted(tmp_path_factory, folder, source)
    inputs = np.load(fixture / "inputs.npz")
    pipeline = build_pipeline(cfg, train=False)
    samples = [pipeline(_record(inputs, b), np.random.default_rng(0)) for b in range(4)]
    batch = torch.utils.data.default_collate(samples)
    ref = np.load(fixture / "outputs.npz")
    with torch.no_grad():
        output = model(batch["image"])  # end to end, from the project's own crop
        pred = model.predict(output, batch)
        ref_crop = torch.as_tensor(ref["crop"])  # the network alone, from the reference's crop
        network = model(ref_crop)
        c4_gap = model.backbone(ref_crop)["c4"].mean((2, 3))
    return {"ref": ref, "inputs": inputs, "cfg": cfg, "model": model, "batch": batch, "output": output,
            "network": network, "c4_gap": c4_gap, "pred": pred, "src": src}


@pytest.fixture(scope="module")
def internet_official_run(tmp_path_factory):
    return _internet_run(tmp_path_factory, "internet_official", "internet-official")


@pytest.fixture(scope="module")
def internet_mmpose_run(tmp_path_factory):
    return _internet_run(tmp_path_factory, "internet_mmpose", "internet-mmpose")


def _check_internet(run: dict, lsb_allowed: bool) -> None:
    ref, model, batch, output, pred = run["ref"], run["model"], run["batch"], run["output"], run["pred"]
    # pre-processing: the project's crop of the raw image + box is the reference's network input
    _assert_crop(batch["image"].numpy(), ref["crop"], lsb_allowed)
    # network, from the reference crop (so that crop rounding cannot leak into it)
    network = run["network"]
    np.testing.assert_allclose(run["c4_gap"].numpy(), ref["c4_gap"], atol=1e-4)
    np.testing.assert_allclose(network.root_logits.numpy(), ref["root_logits"], atol=1e-4)
    np.testing.assert_allclose(network.hand_logits.numpy(), ref["hand_logits"], atol=1e-4)
    bins = depth_to_bins(network.rel_root_depth, model.root_depth_range, model.root_bins)
    np.testing.assert_allclose(bins.numpy(), ref["rel_root_bins"], atol=1e-4)
    peak = network.heatmaps.flatten(-3).max(-1).values  # (B, 2, 21)
    np.testing.assert_allclose(_to_interhand(peak[..., None].numpy())[..., 0], ref["hm_max"], atol=1e-4)
    # end to end from the project's crop: cells exact, then decoding (crop px, image px, depth)
    np.testing.assert_allclose(pred.hand_prob.numpy(), ref["hand_prob"], atol=1e-5)
    cells = model.heatmap_cells(output.heatmaps)[..., [2, 1, 0]]  # (B, 2, 21, 3) x, y, z
    np.testing.assert_array_equal(_to_interhand(cells.numpy()), ref["hm_argmax_xyz"])
    joints_25d = model.decode_heatmaps(output.heatmaps)
    np.testing.assert_allclose(_to_interhand(joints_25d[..., :2].numpy()), ref["joints_crop_px"], atol=1e-3)
    image_px = apply_affine(joints_25d[..., :2], batch["crop_to_image"])
    np.testing.assert_allclose(_to_interhand(image_px.numpy()), ref["joints_img_px"], atol=1e-3)
    np.testing.assert_allclose(_to_interhand(joints_25d[..., 2:].numpy() * 1000)[..., 0],
                               ref["joints_rel_depth_mm"], atol=1e-3)
    # camera mm with each hand at its own GT root depth (hands whose wrist is annotated; the
    # reference also back-projects the dummy absent hands, whose depth the project does not use)
    hand_ok = np.repeat(batch["joint_valid"][:, :, 0].numpy() > 0, 21, axis=1)  # (B, 42) right, left
    joints_mm = _to_interhand(pred.joints.numpy() * 1000)
    assert pred.absolute
    np.testing.assert_allclose(joints_mm[hand_ok], ref["joints_cam_mm"][hand_ok], atol=1e-3)
    rootrel = _to_interhand((pred.joints - pred.joints[:, :, :1]).numpy() * 1000)
    np.testing.assert_allclose(rootrel[hand_ok], ref["joints_cam_rootrel_mm"][hand_ok], atol=1e-3)
    # MRRPE: the left wrist at Z_right + predicted relative depth
    used = ref["mrrpe_used"]
    assert used.any()
    np.testing.assert_allclose(pred.offset.numpy()[used] * 1000, ref["mrrpe_rel_root_vec_mm"][used], atol=1e-3)
    np.testing.assert_array_equal(pred.hand_prob.numpy() > 0.5, ref.get("handedness_pred", ref.get("hand_type_pred")))


def _score(run: dict, protocol: str) -> dict:
    from dir_net.engine.groundtruth import annot_rows
    from dir_net.engine.inference import prediction_rows

    evaluator = Evaluator([protocol], iv=False)
    evaluator.update(prediction_rows(run["pred"], run["batch"]["id"]), annot_rows(run["batch"]))
    return evaluator.compute()[protocol]


def test_internet_official_fixture_end_to_end(internet_official_run) -> None:
    assert internet_official_run["cfg"].evaluation.protocols == ["moon"]
    _check_internet(internet_official_run, lsb_allowed=False)


def test_internet_official_fixture_moon_protocol_is_the_per_joint_mean(internet_official_run) -> None:
    """The official evaluate(): per-joint means of the valid errors, then their mean (wrist, error 0, included)."""
    ref = internet_official_run["ref"]
    err, valid = ref["joint_error_mm"].astype(np.float64), ref["eval_joint_valid"] > 0
    per_joint = [err[valid[:, j], j].mean() for j in range(42) if valid[:, j].any()]
    used = ref["mrrpe_used"]
    gt = internet_official_run["inputs"]["joints_cam_gt"]
    gt_vec = gt[:, 41] - gt[:, 20]
    scores = _score(internet_official_run, "moon")
    assert scores["mpjpe"] == pytest.approx(np.mean(per_joint), abs=1e-3)
    assert scores["mrrpe"] == pytest.approx(
        np.linalg.norm(ref["mrrpe_rel_root_vec_mm"][used] - gt_vec[used], axis=-1).mean(), abs=1e-3)


def test_internet_mmpose_fixture_end_to_end(internet_mmpose_run) -> None:
    assert internet_mmpose_run["cfg"].evaluation.protocols == ["mmpose"]
    _check_internet(internet_mmpose_run, lsb_allowed=True)


def test_internet_mmpose_fixture_metrics_under_the_mmpose_protocol(internet_mmpose_run) -> None:
    """mmpose's evaluate() on these 4 frames: MRRPE, MPJPE all / single / interacting (pooled joints)."""
    ref = internet_mmpose_run["ref"]
    want = dict(zip(ref["metrics_names"].tolist(), ref["metrics_values"].tolist()))
    scores = _score(internet_mmpose_run, "mmpose")
    assert scores["mrrpe"] == pytest.approx(want["MRRPE"], abs=1e-3)
    assert scores["mpjpe_all"] == pytest.approx(want["MPJPE_all"], abs=1e-3)
    assert scores["mpjpe_single"] == pytest.approx(want["MPJPE_single"], abs=1e-3)
    assert scores["mpjpe_interacting"] == pytest.approx(want["MPJPE_interacting"], abs=1e-3)
    assert scores["handedness_acc"] == pytest.approx(want["Handedness_acc"])
    # the per-joint (moon) mean of the same errors differs: the protocols are not interchangeable
    assert abs(_score(internet_mmpose_run, "moon")["mpjpe"] - want["MPJPE_all"]) > 0.1


def test_internet_mmpose_fixture_decode_cases(internet_mmpose_run) -> None:
    """Synthetic maps: non-positive maxima -> cell -1 (-206.25 mm), ties -> first in (z, y, x) order."""
    ref, model = internet_mmpose_run["ref"], internet_mmpose_run["model"]
    n = len(ref["decode_case_fill"])
    maps = torch.empty(n, 64, 64, 64)
    for i in range(n):
        maps[i] = float(ref["decode_case_fill"][i])
        for x, y, z, v in ref["decode_case_peaks_xyzv"][i]:
            if not np.isnan(x):
                maps[i, int(z), int(y), int(x)] = float(v)
    decoded = model.decode_heatmaps(maps)  # crop px = image px for these cases (centre 128, side 256)
    np.testing.assert_allclose(decoded[:, :2].numpy(), ref["decode_case_preds"][:, 0, :2], atol=1e-6)
    np.testing.assert_allclose(decoded[:, 2].numpy() * 1000, ref["decode_case_preds"][:, 0, 2], atol=1e-3)


# --- sb2d_mmpose


@pytest.fixture(scope="module")
def sb2d_mmpose_run(tmp_path_factory):
    from dir_net.data.pipeline_hand2d import Hand2DPipeline

    fixture, cfg, model, _ = _converted(tmp_path_factory, "sb2d_mmpose", "sb2d-mmpose")
    inputs = np.load(fixture / "inputs.npz")
    pipeline = Hand2DPipeline(cfg, train=False)
    records = [_record(inputs, b) for b in range(4)]
    samples = [pipeline.sample(records[b], int(h), np.random.default_rng(0))
               for b, h in zip(inputs["sample_image"], inputs["sample_hand"])]
    batch = torch.utils.data.default_collate(samples)
    ref = np.load(fixture / "outputs.npz")
    with torch.no_grad():
        flip = model(batch["image"])  # end to end, from the project's own crop
        network = model(torch.as_tensor(ref["crop"]))  # the network alone, from the reference crop
        model.flip_test = False
        single = model(batch["image"])
        model.flip_test = True
    return {"ref": ref, "inputs": inputs, "cfg": cfg, "model": model, "batch": batch, "flip": flip,
            "single": single, "network": network}


def _to_interhand_hand(x: np.ndarray) -> np.ndarray:
    """(..., 21, k) wrist-first -> InterHand order of one hand."""
    return np.asarray(x)[..., WRIST_FIRST_TO_INTERHAND, :]


def test_sb2d_mmpose_fixture_end_to_end(sb2d_mmpose_run) -> None:
    run = sb2d_mmpose_run
    ref, model, batch = run["ref"], run["model"], run["batch"]
    assert run["cfg"].evaluation.protocols == ["interhand2d"]
    _assert_crop(batch["image"].numpy(), ref["crop"], lsb_allowed=True)
    maps = run["network"].heatmaps[:, WRIST_FIRST_TO_INTERHAND].numpy()  # flip test with mmpose's shift
    np.testing.assert_allclose(maps, ref["heatmap_flipavg"], atol=1e-4)
    for mode in ("flip", "single"):
        output = run[mode]
        cells = model.keypoint_cells(output).numpy()
        np.testing.assert_array_equal(_to_interhand_hand(cells), ref[f"keypoints_cell_{mode}"])
        crop_px = model.keypoints(output)
        np.testing.assert_allclose(_to_interhand_hand(crop_px.numpy()), ref[f"keypoints_crop_px_{mode}"], atol=1e-3)
        image_px = apply_affine(crop_px, batch["crop_to_image"]).numpy()
        np.testing.assert_allclose(_to_interhand_hand(image_px), ref[f"keypoints_img_px_{mode}"], atol=1e-3)
    # the flip test moves keypoints on these random weights: a missing shift would show
    assert not np.array_equal(ref["keypoints_cell_flip"], ref["keypoints_cell_single"])


def test_sb2d_mmpose_fixture_decode_cases(sb2d_mmpose_run) -> None:
    """Synthetic maps: interior offsets, every border, non-positive maxima -> -1, ties."""
    from dir_net.models.simple_baseline import SimpleBaseline2DOutput

    ref, model = sb2d_mmpose_run["ref"], sb2d_mmpose_run["model"]
    maps = torch.as_tensor(ref["decode_case_heatmaps"])  # (12, 1, 64, 64): crop px = image px here
    crop_px = model.keypoints(SimpleBaseline2DOutput(maps))
    np.testing.assert_allclose(crop_px.numpy(), ref["decode_case_preds"], atol=1e-6)


# --- converter refusals (CLI: one line, exit 2, nothing written) and options


def _convert_cli(capsys, source: str, src, dst, *options: str) -> tuple[int, str]:
    from dir_net.cli import main

    argv = ["convert", "--from", source, str(src), str(dst)]
    for option in options:
        argv += ["--option", option]
    rc = main(argv)
    return rc, capsys.readouterr().err


def _save(path, obj):
    torch.save(obj, path)
    return path


REFUSALS = {
    "wrong_model": ({"network": {"module.encoder.conv1.weight": torch.zeros(64, 3, 7, 7)}}, "not part of"),
    "wrong_shape": ({"state_dict": {"backbone.conv1.weight": torch.zeros(64, 3, 3, 3)}}, r"shape \[64, 3, 3, 3\]"),
    "not_a_state_dict": ({"meta": {"epoch": 3}}, "expected a state_dict"),
}


@pytest.mark.parametrize("source", ["internet-official", "internet-mmpose", "sb2d-mmpose"])
@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_internet_official_internet_mmpose_sb2d_mmpose_refuse_wrong_files(tmp_path, capsys, source, case) -> None:
    obj, pattern = REFUSALS[case]
    if case == "wrong_model" and source != "internet-official":
        obj = {"state_dict": {"encoder.conv1.weight": torch.zeros(64, 3, 7, 7)}}
    if case == "wrong_shape" and source == "internet-official":
        obj = {"network": {"module.backbone_net.resnet.conv1.weight": torch.zeros(64, 3, 3, 3)}}
    src = _save(tmp_path / "public.pth", obj)
    rc, err = _convert_cli(capsys, source, src, tmp_path / "out.pt")
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "public.pth" in err
    assert re.search(pattern, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["public.pth"]  # no DST, no temporary file


@pytest.mark.parametrize("source", ["internet-official", "internet-mmpose", "sb2d-mmpose"])
def test_internet_official_internet_mmpose_sb2d_mmpose_refuse_truncated_and_incomplete_files(tmp_path, capsys,
                                                                                              source) -> None:
    prefix = {"internet-official": "module.backbone_net.resnet.", "internet-mmpose": "backbone.",
              "sb2d-mmpose": "backbone."}[source]
    container = "network" if source == "internet-official" else "state_dict"
    full = _save(tmp_path / "full.pth", {container: {prefix + "conv1.weight": torch.zeros(64, 3, 7, 7)}})
    data = full.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    rc, err = _convert_cli(capsys, source, tmp_path / "cut.pth", tmp_path / "out.pt")
    assert rc == 2 and "cut.pth" in err and "truncated" in err
    rc, err = _convert_cli(capsys, source, full, tmp_path / "out.pt")  # one right tensor, the rest missing
    assert rc == 2 and "missing" in err and "full.pth" in err
    assert not (tmp_path / "out.pt").exists()


def test_internet_official_options_are_checked(tmp_path, capsys) -> None:
    src = _save(tmp_path / "public.pth", {"network": {}})
    rc, err = _convert_cli(capsys, "internet-official", src, tmp_path / "out.pt", "dataset=coco")
    assert rc == 2 and "dataset='coco'" in err and "rhd" in err
    rc, err = _convert_cli(capsys, "internet-mmpose", src, tmp_path / "out.pt", "dataset=rhd")
    assert rc == 2 and "takes no --option" in err
    assert not (tmp_path / "out.pt").exists()


def test_internet_official_stb_rhd_option_swaps_heads_and_reorders_joints(internet_official_run) -> None:
    """dataset=rhd: the official STB/RHD loaders put the left hand in head 1 and use RHD's joint order."""
    from dir_net.convert.internet_official import ORDERS

    src = internet_official_run["src"]
    plain = convert_file("internet-official", src).model_state
    rhd = convert_file("internet-official", src, {"dataset": "rhd"}).model_state
    source = torch.load(src, weights_only=True)["network"]
    for slot, head in ((0, 2), (1, 1)):  # right <- head 2, left <- head 1
        torch.testing.assert_close(rhd[f"heads.{slot}.deconv.0.weight"],
                                   source[f"module.pose_net.joint_deconv_{head}.0.weight"])
        blocks = source[f"module.pose_net.joint_conv_{head}.0.bias"].reshape(21, 64)
        torch.testing.assert_close(rhd[f"heads.{slot}.final.bias"].reshape(21, 64), blocks[list(ORDERS["rhd"])])
    blocks = source["module.pose_net.joint_conv_1.0.bias"].reshape(21, 64)
    torch.testing.assert_close(plain["heads.0.final.bias"].reshape(21, 64), blocks[list(ORDERS["interhand"])])
    torch.testing.assert_close(rhd["root_head.0.weight"], plain["root_head.0.weight"])

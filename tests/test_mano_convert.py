"""The chumpy-free MANO .pkl -> .npz converter and `python -m mano` exit codes."""

import os
import pickle
import pickletools
import struct
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

from mano.__main__ import main
from mano.convert import FLOAT_KEYS, ModelFileError, load_model_arrays
from mano.synthetic import build_right_hand, mirror_to_left

REPO = Path(__file__).resolve().parents[1]


def _official_like(side: str = "right") -> dict:
    """Arrays with the real MANO shapes and dtypes (778 vertices, 1538 faces, uint32 tables)."""
    right = build_right_hand()
    hand = right if side == "right" else mirror_to_left(right)
    out = {k: np.array(hand[k]) for k in FLOAT_KEYS}
    out["f"] = hand["f"][:1538].astype(np.uint32)
    kintree = hand["kintree_table"].astype(np.int64)
    kintree[0, 0] = 2**32 - 1
    out["kintree_table"] = kintree.astype(np.uint32)
    return out


def _as_python2_strings(data: bytes) -> bytes:
    """A protocol-2 pickle with every text string stored as a Python 2 `str` (BINSTRING), as in
    the official files written by Python 2: keys, dtype codes and numpy's raw array bytes (which
    Python 3 pickles as _codecs.encode(text, 'latin1')) then only load with encoding='latin1'."""
    out, last = bytearray(), 0
    for op, arg, pos in pickletools.genops(data):
        if op.name not in ("BINUNICODE", "SHORT_BINUNICODE"):
            continue
        try:
            raw = arg.encode("latin1")
        except UnicodeEncodeError:
            continue
        end = pos + 1 + (4 if op.name == "BINUNICODE" else 1) + len(arg.encode("utf-8"))
        out += data[last:pos] + b"T" + struct.pack("<i", len(raw)) + raw
        last = end
    return bytes(out + data[last:])


def _write_chumpy_pickle(path: Path, arrays: dict) -> None:
    """Pickle like the official files: chumpy objects (value under 'x'), a sparse regressor and
    Python 2 strings (latin1).

    The fake `chumpy` module exists only while pickling and is removed before anything loads.
    """
    chumpy, chumpy_ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x
            self._dirty_vars = set()

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    chumpy_ch.Ch, chumpy.ch = Ch, chumpy_ch
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = chumpy, chumpy_ch
    try:
        data = dict(arrays)
        data["shapedirs"] = Ch(arrays["shapedirs"])
        data["v_template"] = Ch(arrays["v_template"])
        data["posedirs"], data["weights"] = Ch(arrays["posedirs"]), Ch(arrays["weights"])
        data["J"] = Ch(np.zeros((16, 3)))
        data["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
        data["bs_style"], data["bs_type"] = "lbs", "lrotmin"
        data["hands_coeffs"] = np.zeros((4, 45))
        path.write_bytes(_as_python2_strings(pickle.dumps(data, protocol=2)))
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    folder = tmp_path_factory.mktemp("official")
    arrays = {side: _official_like(side) for side in ("right", "left")}
    for side, data in arrays.items():
        _write_chumpy_pickle(folder / f"MANO_{side.upper()}.pkl", data)
    assert "chumpy" not in sys.modules
    return folder, arrays


def test_convert_recovers_arrays_exactly(official, tmp_path):
    folder, arrays = official
    dst = tmp_path / "MANO_RIGHT.npz"
    assert main(["convert", str(folder / "MANO_RIGHT.pkl"), str(dst)]) == 0
    with np.load(dst) as npz:
        for key in FLOAT_KEYS:
            assert npz[key].dtype == np.float64
            np.testing.assert_array_equal(npz[key], arrays["right"][key], err_msg=key)
        np.testing.assert_array_equal(npz["f"], arrays["right"]["f"].astype(np.int64))
        assert npz["kintree_table"][0, 0] == -1
        np.testing.assert_array_equal(npz["kintree_table"][:, 1:], arrays["right"]["kintree_table"][:, 1:])
        assert bool(npz["is_rhand"]) and str(npz["side"]) == "right"
        assert npz["J_regressor"].shape == (16, 778) and npz["f"].shape == (1538, 3)
    umask = os.umask(0)
    os.umask(umask)
    assert dst.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


def test_python2_strings_are_really_written(official):
    folder, _ = official
    ops = {op.name for op, _, _ in pickletools.genops((folder / "MANO_RIGHT.pkl").read_bytes())}
    assert "BINSTRING" in ops and not ops & {"BINUNICODE", "SHORT_BINUNICODE"}


@pytest.mark.parametrize("dtype, root_parent", [(np.int64, 2**32 - 1), (np.uint32, 2**32 - 1),
                                                (np.uint64, 2**32 - 1), (np.int64, -1)])
def test_official_root_parent_values_are_accepted(tmp_path, dtype, root_parent):
    """The official files store the root's parent as 4294967295 (2^32 - 1), in int64 or uint32;
    every MANO / SMPL loader reads it as -1, so any root parent is accepted."""
    arrays = _official_like("right")
    kintree = arrays["kintree_table"].astype(np.int64)
    kintree[0, 0] = root_parent
    arrays["kintree_table"] = kintree.astype(dtype)
    src, dst = tmp_path / "MANO_RIGHT.pkl", tmp_path / "MANO_RIGHT.npz"
    _write_chumpy_pickle(src, arrays)
    assert main(["convert", str(src), str(dst)]) == 0
    with np.load(dst) as npz:
        assert npz["kintree_table"].dtype == np.int64
        np.testing.assert_array_equal(npz["kintree_table"][0], [-1] + kintree[0, 1:].tolist())
        np.testing.assert_array_equal(npz["kintree_table"][1], np.arange(16))


def test_wrong_non_root_parent_is_rejected(tmp_path, capsys):
    arrays = _official_like("right")
    kintree = arrays["kintree_table"].astype(np.int64)
    kintree[0, 5] = 2  # index1's parent must be the wrist (0)
    arrays["kintree_table"] = kintree.astype(np.uint32)
    src = tmp_path / "MANO_RIGHT.pkl"
    _write_chumpy_pickle(src, arrays)
    assert main(["convert", str(src), str(tmp_path / "out.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert "kintree_table" in err and str(src) in err and len(err.splitlines()) == 1


def test_smplx_loads_converted_npz(official, tmp_path):
    import smplx
    import torch

    folder, arrays = official
    for side in ("right", "left"):
        name = f"MANO_{side.upper()}"
        assert main(["convert", str(folder / f"{name}.pkl"), str(tmp_path / f"{name}.npz")]) == 0
    layer = smplx.MANO(str(tmp_path), is_rhand=False, ext="npz", use_pca=False, flat_hand_mean=True)
    out = layer(betas=torch.zeros(1, 10), global_orient=torch.zeros(1, 3), hand_pose=torch.zeros(1, 45))
    np.testing.assert_allclose(out.vertices[0].detach().numpy(), arrays["left"]["v_template"], atol=1e-6)
    assert load_model_arrays(tmp_path / "MANO_LEFT.npz")["side"] == "left"


def test_side_conflict_and_fallbacks(official, tmp_path, capsys):
    folder, arrays = official
    renamed = tmp_path / "MANO_LEFT.pkl"  # right-hand data under a left-hand name
    renamed.write_bytes((folder / "MANO_RIGHT.pkl").read_bytes())
    assert main(["convert", str(renamed), str(tmp_path / "out.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert str(renamed) in err and "right hand" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out.npz").exists()

    flat = dict(arrays["left"], hands_mean=np.zeros(45))  # no flexion: data cannot tell the side
    anonymous = tmp_path / "hand.pkl"
    _write_chumpy_pickle(anonymous, flat)
    assert main(["convert", str(anonymous), str(tmp_path / "a.npz")]) == 2
    assert "--side" in capsys.readouterr().err
    assert main(["convert", str(anonymous), str(tmp_path / "a.npz"), "--side", "left"]) == 0
    assert load_model_arrays(tmp_path / "a.npz")["side"] == "left"


def _bad_files(official, tmp_path) -> dict[str, Path]:
    folder, arrays = official
    good = (folder / "MANO_RIGHT.pkl").read_bytes()
    files = {
        "truncated": good[: len(good) // 2],
        "text": b"this is not a model\n",
        "foreign": pickle.dumps({"cmd": os.system}, protocol=2),  # must never be resolved
        "no_fields": pickle.dumps({"v_template": np.zeros((778, 3))}, protocol=2),
    }
    wrong = dict(arrays["right"], v_template=np.zeros((700, 3)))
    paths = {}
    for name, data in files.items():
        paths[name] = tmp_path / f"MANO_RIGHT_{name}.pkl"
        paths[name].write_bytes(data)
    paths["wrong_shape"] = tmp_path / "MANO_RIGHT_wrong_shape.pkl"
    _write_chumpy_pickle(paths["wrong_shape"], wrong)
    nan = dict(arrays["right"], hands_mean=np.full(45, np.nan))
    paths["nan"] = tmp_path / "MANO_RIGHT_nan.pkl"
    _write_chumpy_pickle(paths["nan"], nan)
    return paths


def test_bad_files_give_one_line_error_and_no_output(official, tmp_path, capsys):
    expected = {"truncated": "truncated", "text": "not a readable MANO", "foreign": "unexpected object",
                "no_fields": "missing field", "wrong_shape": "'v_template' has shape (700, 3)",
                "nan": "NaN"}
    for name, path in _bad_files(official, tmp_path).items():
        dst = tmp_path / f"{name}.npz"
        assert main(["convert", str(path), str(dst)]) == 2, name
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(path) in err, err
        assert expected[name] in err, err
        assert not dst.exists()
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files


def test_cli_exit_code_in_subprocess(official, tmp_path):
    path = _bad_files(official, tmp_path)["truncated"]
    dst = tmp_path / "out.npz"
    result = subprocess.run([sys.executable, "-m", "mano", "convert", str(path), str(dst)],
                            capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2
    assert result.stderr.strip().startswith("mano: error:") and str(path) in result.stderr
    assert not dst.exists()


def test_info_and_synth(tmp_path, capsys):
    assert main(["synth", str(tmp_path)]) == 0
    assert main(["info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "right hand, 778 vertices" in out and "left hand, 778 vertices" in out
    with pytest.raises(ModelFileError, match="unknown model file type"):
        load_model_arrays(Path(__file__))
    cut = tmp_path / "cut" / "MANO_RIGHT.npz"
    cut.parent.mkdir()
    data = (tmp_path / "MANO_RIGHT.npz").read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    assert main(["info", str(cut)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(cut) in err and len(err.splitlines()) == 1


def test_layer_reads_official_pickles_in_memory(official):
    import mano
    import torch

    folder, arrays = official
    hands = mano.load_hands(folder)
    assert not hands.is_synthetic and hands.faces.shape == (2, 1538, 3)
    flat = hands(torch.zeros(1, 2, 3), -hands.hand_mean[None])
    np.testing.assert_allclose(flat.vertices[0, 1].numpy(), arrays["left"]["v_template"], atol=1e-6)

"""Ground-truth MANO meshes from NeuralAnnot fits, on the CPU inside dataloader workers."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from dir_net.data.camera import Camera, aa_to_matrix, matrix_to_aa


class GTHands:
    """Lazily loads `mano.load_hands` once per process (never pickled into workers)."""

    def __init__(self, model_dir: str | None = None, tips: str = "dir") -> None:
        self.model_dir = model_dir
        self.tips = tips
        self._layer: Any = None
        self._pid = -1
        self._fingerprint: str | None = None

    def __getstate__(self) -> dict:
        return {"model_dir": self.model_dir, "tips": self.tips, "_layer": None, "_pid": -1,
                "_fingerprint": self._fingerprint}

    def fingerprint(self) -> str:
        """sha256 of the hand model's arrays (both hands), read with numpy only: no torch work, so
        it is safe before forking render workers. Keys the prepared seg/dense maps."""
        if self._fingerprint is None:
            from mano.convert import model_fingerprint
            from mano.layer import load_arrays  # the model files load_hands would read

            models, _ = load_arrays(self.model_dir)
            self._fingerprint = model_fingerprint(models)
        return self._fingerprint

    @property
    def layer(self) -> Any:
        if self._layer is None or self._pid != os.getpid():
            import mano

            self._layer = mano.load_hands(self.model_dir, tips=self.tips, flat_hand_mean=False).eval()
            self._pid = os.getpid()
        return self._layer

    @property
    def faces(self) -> np.ndarray:
        """(2, F, 3) int64, per hand (left winding flipped)."""
        return np.asarray(self.layer.faces)

    def template(self) -> np.ndarray:
        """(V, 3) right-hand template vertices (zero shape, zero pose), metres."""
        return self.layer.v_template[0].numpy().astype(np.float64)

    def world(self, pose: np.ndarray, shape: np.ndarray, trans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """NeuralAnnot params (2, 48) / (2, 10) / (2, 3) -> world vertices (2, V, 3), joints (2, 21, 3) m."""
        pose = np.asarray(pose, np.float32)
        verts, joints = self.layer.forward_numpy(pose[:, :3], pose[:, 3:], shape, trans)
        return verts.astype(np.float64), joints.astype(np.float64)

    def rest_root_joint(self, betas: np.ndarray) -> np.ndarray:
        """(2, 3) root joint J0 of the un-posed, un-translated meshes (the centre MANO rotates about),
        metres: the wrist regressed from the flat hand (all joint rotations zero)."""
        flat = -self.layer.hand_mean.numpy()  # finger pose relative to the mean -> zero rotations
        _, joints = self.layer.forward_numpy(np.zeros((2, 3)), flat, betas)
        return joints[:, 0].astype(np.float64)

    def camera_frame(self, fit: dict[str, np.ndarray], camera: Camera) -> dict[str, np.ndarray]:
        """A NeuralAnnot fit moved to `camera`: vertices (2, V, 3) m, joints (2, 21, 3) m, root (2, 3) aa,
        finger (2, 45), betas (2, 10). Absent hands are computed too; mask them with fit['present']."""
        verts_w, joints_w = self.world(fit["pose"], fit["shape"], fit["trans"])
        to_cam = lambda x: (x * 1000.0 - camera.campos) @ camera.R.T / 1000.0  # noqa: E731
        root = matrix_to_aa(camera.R @ aa_to_matrix(np.asarray(fit["pose"], np.float64)[:, :3]))
        return {
            "vertices": to_cam(verts_w),
            "joints": to_cam(joints_w),
            "root": root,
            "finger": np.asarray(fit["pose"], np.float64)[:, 3:],
            "betas": np.asarray(fit["shape"], np.float64),
        }

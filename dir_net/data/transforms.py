"""Crop geometry and image operations shared by the sample pipelines.

A `CropView` is one affine image warp (crop + scale + rotation + flip in one `cv2.warpAffine`) and
the matching 3D transform of the camera frame, so that 2D targets, 3D targets and the image agree:

    X_aug = R X_cam                    R = Rz(rotation) @ (mirror x -> -x if flipped)
    crop px = K_crop X_aug / z         (z is unchanged by R)
    crop px = A @ [u, v, 1]            for the original image pixel (u, v) of X_cam

With D = diag(fx, fy) of the original camera, A's linear part is k D R2 D^-1 (k = out/side, R2 the
upper-left 2x2 of R), which is exact even when fx != fy.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dir_net.data.camera import MIRROR

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


@dataclass(frozen=True)
class CropView:
    A: np.ndarray  # (2, 3) original image px -> crop px
    K: np.ndarray  # (3, 3) intrinsics of the crop (for X_aug)
    R: np.ndarray  # (3, 3) camera frame -> augmented camera frame
    flip: bool
    size: int

    @property
    def crop_to_image(self) -> np.ndarray:
        return cv2.invertAffineTransform(self.A)

    def points(self, X: np.ndarray) -> np.ndarray:
        """(..., 3) camera frame -> augmented camera frame (same unit)."""
        return np.asarray(X, np.float64) @ self.R.T

    def project(self, X_aug: np.ndarray) -> np.ndarray:
        """(..., 3) augmented camera frame -> (..., 2) crop px."""
        p = np.asarray(X_aug, np.float64)
        return p[..., :2] / p[..., 2:3] @ self.K[:2, :2].T + self.K[:2, 2]

    def warp(self, image: np.ndarray, nearest: bool = False, size: int | None = None) -> np.ndarray:
        """Warp an original-resolution image (or label map) into the crop, optionally at another size
        (the same field of view; pixel centres at integer coordinates)."""
        out = size or self.size
        s = out / self.size
        A = self.A * s
        A[:, 2] += 0.5 * s - 0.5
        flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
        return cv2.warpAffine(image, A, (out, out), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def rotation_z(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


CROP_CENTERS = ("symmetric", "half_size")


def crop_mid(size: int, crop_center: str = "symmetric") -> float:
    """Crop pixel the box centre maps to: (S - 1) / 2 (`symmetric`: the crop is symmetric about
    the box centre, pixel centres at integers) or S / 2 (`half_size`: official InterNet, mmpose)."""
    if crop_center not in CROP_CENTERS:
        raise ValueError(f"crop centre convention must be one of {CROP_CENTERS}, got {crop_center!r}")
    return (size - 1) / 2.0 if crop_center == "symmetric" else size / 2.0


def make_view(K_img: np.ndarray, center: np.ndarray, side: float, size: int, rotation_deg: float = 0.0,
              flip: bool = False, crop_center: str = "symmetric") -> CropView:
    """The crop of `side` original pixels around `center`, rotated and optionally mirrored, at size x size.
    With the symmetric centre a flip mirrors the crop exactly (x -> size - 1 - x); the hands are
    swapped by the caller."""
    K_img = np.asarray(K_img, np.float64)
    R = rotation_z(rotation_deg) @ (MIRROR if flip else np.eye(3))
    D = np.diag([K_img[0, 0], K_img[1, 1]])
    k = size / float(side)
    M = k * D @ R[:2, :2] @ np.linalg.inv(D)
    c = np.asarray(center, np.float64)
    mid = crop_mid(size, crop_center)  # crop px of the box centre (pixel centres are integers)
    A = np.concatenate([M, (mid - M @ c)[:, None]], 1)
    pp = K_img[:2, 2]
    K = np.array([[k * D[0, 0], 0.0, 0.0], [0.0, k * D[1, 1], 0.0], [0.0, 0.0, 1.0]])
    K[:2, 2] = mid - M @ (c - pp)
    return CropView(A, K, R, bool(flip), int(size))


def box_of_points(uv: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (2,) and the larger side of the axis-aligned box of (N, 2) points."""
    lo, hi = uv.min(0), uv.max(0)
    return (lo + hi) / 2.0, float(max(hi - lo))


def box_of_xywh(bbox: np.ndarray) -> tuple[np.ndarray, float]:
    x, y, w, h = (float(v) for v in bbox)
    return np.array([x + w / 2.0, y + h / 2.0]), max(w, h)


def color_gain(image: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Per-channel multiplicative colour jitter, clipped to 0..255; keeps the dtype (uint8 or float32)."""
    return np.clip(image.astype(np.float32) * gains.astype(np.float32), 0, 255).astype(image.dtype)


def motion_blur(image: np.ndarray, length: int, angle_deg: float) -> np.ndarray:
    """Linear motion blur: a normalised line kernel of `length` px at `angle_deg`."""
    kernel = np.zeros((length, length), np.float32)
    c = (length - 1) / 2.0
    dx, dy = np.cos(np.deg2rad(angle_deg)) * c, np.sin(np.deg2rad(angle_deg)) * c
    cv2.line(kernel, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1)
    return cv2.filter2D(image, -1, kernel / kernel.sum())


NORMALIZATIONS = ("imagenet", "rgb01")


def to_tensor_image(image_rgb: np.ndarray, normalize: str = "imagenet") -> np.ndarray:
    """(S, S, 3) RGB, uint8 or float in 0..255 -> (3, S, S) float32: / 255, then the ImageNet
    mean/std (`imagenet`) or nothing more (`rgb01`, the official InterNet's input)."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"input normalisation must be one of {NORMALIZATIONS}, got {normalize!r}")
    x = image_rgb.astype(np.float32) / np.float32(255.0)
    if normalize == "imagenet":
        x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def swap_hands(x: np.ndarray) -> np.ndarray:
    """Swap the leading hand axis (right <-> left)."""
    return np.ascontiguousarray(np.asarray(x)[::-1])


def swap_seg_labels(seg: np.ndarray) -> np.ndarray:
    """Segmentation labels 1 (right) <-> 2 (left)."""
    lut = np.array([0, 2, 1] + list(range(3, 256)), np.uint8)
    return lut[seg]

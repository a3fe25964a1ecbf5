"""Random offline augmentation with OpenCV (used by the balance stage to oversample).

This is the RANDOM counterpart of the deterministic decoding in pipeline/core/images.py. The
transforms follow the chest X-ray paper: rotation uniform in +-rotate_deg (border reflect),
horizontal flip with p=0.5, a shift of +-shift_px_at_1024 scaled to the image size
(+-50 px at 1024 px is +-2.4 px at 50 px) and a Gaussian blur with a kernel drawn from
blur_kernels (k=1 means no blur). Every random number comes from the np.random.Generator
passed in, always drawn in the same order, so a seed fixes the output.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.config import AugmentConfig
from pipeline.core import images
from pipeline.core.errors import ConfigError, DataError

REFERENCE_SIDE = 1024  # shift_px_at_1024 is given for a 1024-pixel side


@dataclass(frozen=True)
class AugmentDraw:
    """One draw of the random transform parameters."""

    angle_deg: float
    hflip: bool
    shift_x: float
    shift_y: float
    blur_kernel: int


def check_config(cfg: AugmentConfig) -> None:
    """Reject augmentation params OpenCV cannot use (one-line ConfigError)."""
    if cfg.rotate_deg < 0 or cfg.shift_px_at_1024 < 0:
        raise ConfigError("params: balance.augment.rotate_deg and shift_px_at_1024 must be >= 0")
    if not cfg.blur_kernels or any(k < 1 or k % 2 == 0 for k in cfg.blur_kernels):
        raise ConfigError(
            f"params: balance.augment.blur_kernels is {list(cfg.blur_kernels)}; use odd sizes >= 1 (1 = no blur)"
        )


def draw(rng: np.random.Generator, cfg: AugmentConfig, height: int, width: int) -> AugmentDraw:
    """Draw the transform parameters for one image of the given size."""
    angle = float(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg))
    flip = bool(rng.random() < 0.5)
    max_dx = cfg.shift_px_at_1024 * width / REFERENCE_SIDE
    max_dy = cfg.shift_px_at_1024 * height / REFERENCE_SIDE
    shift_x = float(rng.uniform(-max_dx, max_dx))
    shift_y = float(rng.uniform(-max_dy, max_dy))
    kernel = int(rng.choice(np.asarray(cfg.blur_kernels)))
    return AugmentDraw(angle, flip and cfg.hflip, shift_x, shift_y, kernel)


def apply(img: np.ndarray, params: AugmentDraw) -> np.ndarray:
    """Apply one drawn transform; uint8/uint16 HxWxC in, same shape, dtype and channel order out."""
    if img.ndim != 3 or img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"augment expects a uint8 or uint16 HxWxC image, got {img.dtype} {img.shape}")
    height, width, channels = img.shape
    out = img
    if params.angle_deg != 0.0 or params.shift_x != 0.0 or params.shift_y != 0.0:
        matrix = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), params.angle_deg, 1.0)
        matrix[:, 2] += (params.shift_x, params.shift_y)
        out = cv2.warpAffine(
            out, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
    if params.hflip:
        out = cv2.flip(out, 1)
    if params.blur_kernel > 1:
        out = cv2.GaussianBlur(out, (params.blur_kernel, params.blur_kernel), 0)
    return out.reshape(height, width, channels)


def augment(img: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Draw a random transform from rng and apply it to img (uint8 HxWxC)."""
    return apply(img, draw(rng, cfg, img.shape[0], img.shape[1]))


def read_source(path: str | Path) -> np.ndarray:
    """Decode a source image to HxWxC keeping its channel count (gray stays gray, alpha dropped) and
    its bit depth: a 16-bit source gives a 16-bit copy, so the dataset's intensity window (validate's
    intensity.json) maps originals and augmented copies alike."""
    try:
        raw = images.decode_raw(Path(path).read_bytes())
    except (OSError, images.DecodeError) as exc:
        raise DataError(
            f"cannot read {path} to augment it ({exc}); re-run validate to quarantine it"
        ) from exc
    channels = 1 if raw.ndim == 2 or raw.shape[2] == 1 else 3
    if raw.dtype != np.uint16:
        raw = images.to_uint8(raw)
    return images.to_channels(raw, channels)


def write_png(img: np.ndarray, path: str | Path) -> tuple[int, str]:
    """Write an RGB or gray uint8/uint16 HxWxC image as PNG; returns (bytes, sha256) of the file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = img[:, :, 0] if img.shape[2] == 1 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), bgr):
        raise DataError(f"OpenCV could not write {path} as PNG; check the disk and the path")
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def augment_file(
    src: str | Path, dst: str | Path, rng: np.random.Generator, cfg: AugmentConfig
) -> tuple[int, str, tuple[int, ...]]:
    """Read src, augment it, write dst as PNG; returns (bytes, sha256, shape)."""
    img = augment(read_source(src), rng, cfg)
    size, digest = write_png(img, dst)
    return size, digest, img.shape

"""Painting of synthetic H&E-like 50x50 patches for the embedded sample dataset.

Negatives: pink stroma with sparse, small, often elongated pale nuclei (fibroblasts), sometimes
white fat/lumen holes or a cluster of small dark lymphocytes. Positives (IDC): denser, larger,
rounder and darker purple nuclei on a slightly purple background. Both classes overlap (sparse
tumour patches, lymphocyte-rich stroma), and every patient has its own stain colours, so the class
is learnable but not by a single threshold on colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_EOSIN = np.array([232.0, 158.0, 196.0])  # RGB stroma pink
_HEMATOXYLIN = np.array([78.0, 48.0, 128.0])  # RGB nucleus purple
_WHITE = np.array([243.0, 236.0, 242.0])


@dataclass(frozen=True)
class Stain:
    """Per-patient stain colours (RGB floats)."""

    eosin: np.ndarray
    hematoxylin: np.ndarray
    brightness: float


def patient_stain(rng: np.random.Generator) -> Stain:
    """Random stain jitter for one slide."""
    return Stain(
        eosin=np.clip(_EOSIN * rng.uniform(0.9, 1.06, 3), 0, 255),
        hematoxylin=np.clip(_HEMATOXYLIN * rng.uniform(0.8, 1.25, 3), 0, 255),
        brightness=float(rng.uniform(0.92, 1.05)),
    )


def _nuclei(rng, mask, count, radius, aspect, darkness) -> None:
    """Draw `count` filled ellipses into the float mask (radius/aspect/darkness are (lo, hi))."""
    size = mask.shape[0]
    for _ in range(count):
        r = rng.uniform(*radius) * size / 50
        centre = (int(rng.integers(0, size)), int(rng.integers(0, size)))
        axes = (max(1, round(r)), max(1, round(r * rng.uniform(*aspect))))
        angle = float(rng.uniform(0, 180))
        cv2.ellipse(mask, centre, axes, angle, 0, 360, float(rng.uniform(*darkness)), -1)


def paint_patch(rng: np.random.Generator, label: int, stain: Stain, size: int) -> np.ndarray:
    """One size x size patch as a BGR uint8 array (ready for cv2.imencode)."""
    low = rng.normal(0.0, 1.0, (6, 6)).astype(np.float32)
    mottle = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)[..., None]
    tint = 0.05 if label else 0.03
    base = stain.eosin * (1 - tint) + stain.hematoxylin * tint
    img = base * (1.0 + 0.05 * mottle) * stain.brightness
    holes = np.zeros((size, size), np.float32)
    nuclei = np.zeros((size, size), np.float32)
    scale = (size / 50) ** 2
    if label:
        sparse = rng.random() < 0.25
        count = rng.poisson((5 if sparse else 9) * scale)
        _nuclei(rng, nuclei, count, (2.6, 4.6), (0.6, 1.0), (0.4, 0.75))  # large, vesicular
        if rng.random() < 0.15:
            _nuclei(rng, holes, 1, (4, 9), (0.6, 1.0), (0.7, 1.0))
    else:
        count = rng.poisson(7 * scale)
        if rng.random() < 0.15:  # reactive stroma: larger, rounder nuclei (hard negatives)
            _nuclei(rng, nuclei, count, (2.2, 3.8), (0.6, 1.0), (0.5, 0.85))
        else:
            _nuclei(rng, nuclei, count, (1.6, 3.4), (0.3, 0.75), (0.5, 0.9))
        if rng.random() < 0.35:  # lymphocyte cluster: many small, very dark round nuclei
            _nuclei(rng, nuclei, rng.poisson(14 * scale), (1.3, 2.3), (0.85, 1.0), (0.8, 1.0))
        if rng.random() < 0.3:  # fat / lumen
            _nuclei(rng, holes, int(rng.integers(1, 3)), (5, 12), (0.6, 1.0), (0.8, 1.0))
    holes = cv2.GaussianBlur(holes, (5, 5), 1.2)[..., None]
    nuclei = np.clip(cv2.GaussianBlur(nuclei, (3, 3), 0.7), 0, 1)[..., None]
    img = img * (1 - holes) + _WHITE * holes
    img = img * (1 - nuclei) + stain.hematoxylin * nuclei
    img += rng.normal(0.0, 6.0, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)[:, :, ::-1]

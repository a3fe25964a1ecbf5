"""Prediction: class probabilities for uint8 images or image files, with test-time augmentation.

Batches come from `ArrayBatches` (unshuffled, gathered ahead); `tta=True` averages the softmax
over every symmetry the model was trained with (`symmetry.trained_views`).
"""

from __future__ import annotations

import logging

import keras
import numpy as np
import pandas as pd
from tqdm import tqdm

from pipeline.arrays.build import decode_all
from pipeline.core.errors import DataError
from pipeline.models import symmetry
from pipeline.training.data import ArrayBatches

log = logging.getLogger(__name__)
IDENTITY_VIEW: symmetry.View = (0, False, False)  # no quarter turn, no flips


def tta_views(model: keras.Model) -> list[symmetry.View]:
    """Views for test-time augmentation: every symmetry the model was trained with (its RandomFlip /
    RandomRot90 layers, inside ensemble members too); just the image when it has none."""
    views = symmetry.trained_views(model)
    if len(views) == 1:
        log.warning(
            "tta: %s was trained without flips or quarter turns; predicting the image only", model.name
        )
    return views


def predict_images(
    model: keras.Model, images: np.ndarray, batch_size: int = 64, tta: bool = False
) -> np.ndarray:
    """Class probabilities (N, n_classes) for uint8 images (N, S, S, C), in row order.

    tta=True averages the softmax over every view the model was trained to be invariant to
    (`tta_views`: flips and quarter turns, e.g. the 8 of D4 for histology, the mirror for X-rays).
    """
    views = tta_views(model) if tta else [IDENTITY_VIEW]
    ds = ArrayBatches(images, None, 0, batch_size)
    out = []
    try:
        for idx in tqdm(range(len(ds)), desc="predict", leave=False, disable=None):
            (x,) = ds[idx]  # the next batches are gathered meanwhile
            out.append(predict_batch(model, x, views))
    finally:
        ds.close()
    return np.concatenate(out).astype(np.float32)


def predict_batch(model: keras.Model, x: np.ndarray, views: list[symmetry.View]) -> np.ndarray:
    """Softmax of one uint8 batch averaged over `views` (from `tta_views`, or just IDENTITY_VIEW)."""
    xf = x.astype(np.float32)
    return np.mean([np.asarray(model.predict_on_batch(symmetry.apply(xf, v))) for v in views], axis=0)


def predict_proba(
    model: keras.Model,
    df: pd.DataFrame,
    image_size: int,
    channels: int,
    batch_size: int = 64,
    tta: bool = False,
    window: tuple[float, float] | None = None,
    chunk: int = 2048,
) -> np.ndarray:
    """`predict_images` for image files (the manifest's `path` column), decoded `chunk` at a time
    (for files outside the preprocessed arrays: a champion re-scored at its own image size)."""
    paths = df["path"].astype(str).tolist()
    if not paths:
        raise DataError("the manifest has no rows to predict on")
    parts = [
        predict_images(model, decode_all(paths[i : i + chunk], image_size, channels, window), batch_size, tta)
        for i in range(0, len(paths), chunk)
    ]
    return np.concatenate(parts)

"""Losses and class weights. Binary and multi-class share one path: one-hot labels + softmax."""

from __future__ import annotations

import logging
from pathlib import Path

import keras

from pipeline.core.errors import DataError
from pipeline.core.manifest import read_json

log = logging.getLogger(__name__)


def make_loss(name: str, label_smoothing: float = 0.0) -> keras.losses.Loss:
    """'crossentropy' -> CategoricalCrossentropy; 'focal' -> CategoricalFocalCrossentropy (gamma 2).

    label_smoothing > 0 mixes the one-hot targets with the uniform distribution (both losses).
    """
    if name == "focal":
        return keras.losses.CategoricalFocalCrossentropy(label_smoothing=label_smoothing, name="focal")
    return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing, name="crossentropy")


def load_class_weights(path: Path, n_classes: int) -> dict[int, float] | None:
    """Class weights from the balance stage's class_weights.json, or None when all are 1.

    The training batches carry them as per-sample weights (pipeline.training.data.ArrayBatches
    gathers them with the images, vectorised; Keras' own class_weight= maps them in a Python loop).
    """
    if not path.is_file():
        log.warning("%s not found; training without class weights", path)
        return None
    doc = read_json(path)
    raw = doc.get("weights")
    if not isinstance(raw, dict):
        raise DataError(f"{path} has no 'weights' mapping; re-run the balance stage")
    try:
        weights = {int(k): float(v) for k, v in raw.items()}
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: weights must map label index to a number ({exc})") from exc
    unknown = sorted(k for k in weights if not 0 <= k < n_classes)
    if unknown:
        raise DataError(f"{path} has weights for labels {unknown} outside 0..{n_classes - 1}")
    if any(w <= 0 for w in weights.values()):
        raise DataError(f"{path}: class weights must be positive, got {weights}")
    if all(abs(w - 1.0) < 1e-12 for w in weights.values()):
        return None
    log.info("class weights (%s): %s", doc.get("strategy", "?"), weights)
    return {k: weights.get(k, 1.0) for k in range(n_classes)}

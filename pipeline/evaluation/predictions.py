"""Model loading and per-split predictions: Task (class names + positive index), Predictions.

Importing this module registers medpipe's custom Keras layers, so `load_model` works in safe
mode in any process (the register stage's champion re-scoring included).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

import pipeline.models.layers  # noqa: F401  registers medpipe's custom layers for safe-mode loading
from pipeline.config import EvaluateConfig
from pipeline.core.errors import DataError
from pipeline.core.label_map import LabelMap
from pipeline.training.predict import predict_images, predict_proba


def load_model(path: Path) -> keras.Model:
    """Load a model.keras in Keras safe mode (medpipe's custom layers are registered by the import
    above); one-line DataError when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"model {path} not found; run the train stage (dvc repro train)")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - keras raises many types for a bad archive
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot load model {path}: {first}; re-run the train stage") from exc


@dataclass(frozen=True)
class Task:
    """Class names, and the positive class index for binary tasks (None = multi-class argmax)."""

    classes: list[str]
    positive: int | None

    @classmethod
    def from_label_map(cls, label_map: dict) -> Task:
        parsed = LabelMap.parse(label_map)
        return cls(parsed.classes, parsed.positive_index)


@dataclass(frozen=True)
class Predictions:
    """Labels, softmax outputs and patient ids of one split, row-aligned."""

    y: np.ndarray
    proba: np.ndarray
    patients: np.ndarray


def predict_split(
    model: keras.Model,
    label_map: dict,
    df: pd.DataFrame,
    cfg: EvaluateConfig,
    name: str,
    images: np.ndarray | None = None,
) -> Predictions:
    """Run the model on a split (TTA per cfg.tta) and check its output matches the labels.

    `images`: the split's preprocessed uint8 array, row-aligned with `df` (the evaluate stage);
    None decodes the manifest's files at the label map's size (a champion re-scored by register).
    """
    task = Task.from_label_map(label_map)
    if len(df) == 0:
        raise DataError(f"the {name} split is empty; enlarge split.{name}_fraction")
    y = df["label"].to_numpy(dtype=np.int64, na_value=-1)
    if y.min() < 0 or y.max() >= len(task.classes):
        raise DataError(
            f"the {name} split has labels outside 0..{len(task.classes) - 1}; re-run split and train"
        )
    if images is not None:
        proba = predict_images(model, images, tta=cfg.tta)
    else:
        size, channels, window = (
            int(label_map["image_size"]),
            int(label_map["channels"]),
            label_map.get("window"),
        )
        proba = predict_proba(
            model, df, size, channels, tta=cfg.tta, window=tuple(window) if window else None
        )
    if proba.shape != (len(df), len(task.classes)):
        raise DataError(
            f"model outputs {proba.shape[1:]} columns but label_map.json lists {len(task.classes)} classes; "
            "re-run the train stage"
        )
    rows = "row:" + df["path"].astype("string")  # an image without a patient id is its own patient
    patients = (
        df["patient_id"].astype("string").fillna(rows) if "patient_id" in df.columns else rows
    ).to_numpy()
    return Predictions(y, np.asarray(proba, dtype=np.float64), patients)

"""Scoring new images with a trained model: the one prediction path of `medpipe predict` and of the
MLflow pyfunc model (pipeline.serving.pyfunc_model).

Preprocessing is the pipeline's own: `images.preprocess(path, image_size, channels, window)` with the
values the model was trained with (label_map.json). Probabilities are the model's softmax, averaged
over the trained flips when the evaluate stage used TTA, so they match reports/eval/predictions.csv.
The label applies the operating threshold the evaluate stage chose on val (binary tasks: positive
when P(positive) >= threshold) or the argmax (multi-class tasks, or no threshold recorded).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from pipeline.core.errors import DataError
from pipeline.core.label_map import LabelMap

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom")
DEFAULT_BATCH = 64


@dataclass(frozen=True)
class ServingConfig:
    """Everything besides the weights that turns image files into the evaluate stage's numbers."""

    classes: list[str]
    positive: str | None  # the class scored as positive (binary tasks), else None
    threshold: float | None  # val-chosen operating threshold on P(positive); None = argmax
    image_size: int
    channels: int
    window: list[float] | None = None  # dataset intensity window for > 8-bit images
    tta: bool = False
    threshold_rule: str = ""

    @classmethod
    def from_label_map(cls, label_map: dict, metrics: dict | None = None) -> ServingConfig:
        """From models/label_map.json and (optionally) the evaluate stage's metrics.json."""
        metrics = metrics or {}
        parsed = LabelMap.parse(label_map)
        image_size, channels = parsed.geometry()
        threshold = metrics.get("threshold") if parsed.positive is not None else None
        return cls(
            classes=parsed.classes,
            positive=parsed.positive,
            threshold=float(threshold) if isinstance(threshold, int | float) else None,
            image_size=image_size,
            channels=channels,
            window=parsed.window,
            tta=bool(metrics.get("tta", False)),
            threshold_rule=str(metrics.get("threshold_rule", "")),
        )

    @classmethod
    def from_dict(cls, doc: dict) -> ServingConfig:
        return cls(**{k: doc[k] for k in cls.__dataclass_fields__ if k in doc})

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def columns(self) -> list[str]:
        return [f"p_{c}" for c in self.classes]

    def labels(self, proba: np.ndarray) -> list[str]:
        """Class name per row: thresholded P(positive) for binary tasks, argmax otherwise."""
        if self.positive is None or self.threshold is None:
            idx = proba.argmax(axis=1)
        else:
            pos = self.classes.index(self.positive)
            idx = np.where(proba[:, pos] >= self.threshold, pos, 1 - pos)
        return [self.classes[i] for i in idx]


def load_batch(paths: Sequence[str], cfg: ServingConfig) -> np.ndarray:
    """uint8 (N, S, S, C) via images.preprocess (arrays.build.decode_all, the evaluate stage's
    decoder); DataError naming the first unreadable file."""
    from pipeline.arrays.build import decode_all

    return decode_all(list(paths), cfg.image_size, cfg.channels, tuple(cfg.window) if cfg.window else None)


class Predictor:
    """A Keras model plus its ServingConfig: image paths -> DataFrame(p_<class>..., label)."""

    def __init__(self, model, cfg: ServingConfig):
        self.model = model
        self.cfg = cfg

    @classmethod
    def from_dir(cls, models_dir: Path, metrics: dict | None = None) -> Predictor:
        """From a train-stage models/ directory (model.keras + label_map.json)."""
        from pipeline.core import manifest
        from pipeline.evaluation.predictions import load_model

        label_map = manifest.read_json(Path(models_dir) / "label_map.json")
        return cls(
            load_model(Path(models_dir) / "model.keras"), ServingConfig.from_label_map(label_map, metrics)
        )

    def proba(self, paths: Sequence[str], batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        paths = [str(p) for p in paths]
        n_classes = len(self.cfg.classes)
        if not paths:
            return np.zeros((0, n_classes), np.float32)
        from pipeline.training.predict import IDENTITY_VIEW, predict_batch, tta_views

        # the same per-batch prediction (and TTA views) as the evaluate stage's predict_images
        views = tta_views(self.model) if self.cfg.tta else [IDENTITY_VIEW]
        out = []
        starts = range(0, len(paths), max(1, int(batch_size)))
        for start in tqdm(starts, desc="predict", unit="batch", disable=None, leave=False):
            out.append(
                predict_batch(self.model, load_batch(paths[start : start + batch_size], self.cfg), views)
            )
        proba = np.concatenate(out).astype(np.float32)
        if proba.shape[1] != n_classes:
            raise DataError(
                f"model outputs {proba.shape[1]} columns but its label map lists {n_classes} classes"
            )
        return proba

    def predict(self, paths: Sequence[str], batch_size: int = DEFAULT_BATCH) -> pd.DataFrame:
        proba = self.proba(paths, batch_size)
        frame = pd.DataFrame(proba.astype(np.float64), columns=self.cfg.columns)
        frame["label"] = self.cfg.labels(proba)
        return frame


def image_files(inputs: Sequence[str | Path]) -> list[Path]:
    """Files as given, directories expanded recursively to their image files (sorted)."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            hits = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not hits:
                log.warning("%s holds no image files (%s)", item, ", ".join(IMAGE_SUFFIXES))
            found += hits
        elif item.is_file():
            found.append(item)
        else:
            raise DataError(f"{item} is neither an image file nor a directory")
    return found

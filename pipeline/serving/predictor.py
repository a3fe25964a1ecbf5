"""Scoring new images with a trained model: the one prediction path of `medpipe predict` and of the
MLflow pyfunc model (pipeline.serving.pyfunc_model). It takes encoded image bytes, never paths: the
pyfunc gets them from the request (pipeline.serving.contract), `medpipe predict` from the files it
was given.

Preprocessing is the pipeline's own: `images.preprocess_bytes(data, image_size, channels, window,
voi)` (what the preprocess stage runs on files) with the values the model was trained with
(label_map.json; voi=False for a model trained with data.dicom.voi: dataset, whose training films
were VOI-less copies). Probabilities are the model's softmax, averaged
over the trained flips when the evaluate stage used TTA, so they match reports/eval/predictions.csv.
The label applies the operating threshold the evaluate stage chose on val (binary tasks: positive
when P(positive) >= threshold) or the argmax (multi-class tasks, or no threshold recorded).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
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
    dicom_voi: str = "header"  # data.dicom.voi of training: "dataset" = ignore a DICOM's own VOI
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
            dicom_voi=parsed.dicom_voi,
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


def load_batch(data: Sequence[bytes], cfg: ServingConfig, names: Sequence[str]) -> np.ndarray:
    """uint8 (N, S, S, C) through images.preprocess_bytes (the preprocess stage's decode + resize);
    DataError naming the first undecodable image."""
    from pipeline.core import images

    window = tuple(cfg.window) if cfg.window else None
    voi = cfg.dicom_voi != "dataset"
    out = np.empty((len(data), cfg.image_size, cfg.image_size, cfg.channels), np.uint8)
    for i, (blob, name) in enumerate(zip(data, names, strict=True)):
        try:
            out[i] = images.preprocess_bytes(blob, cfg.image_size, cfg.channels, window, voi=voi)
        except (ValueError, OSError, cv2.error) as exc:  # DecodeError is a ValueError
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise DataError(f"{name}: not a decodable image ({reason})") from exc
    return out


class Predictor:
    """A Keras model plus its ServingConfig: encoded images -> DataFrame(p_<class>..., label)."""

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

    def proba(
        self, data: Sequence[bytes], batch_size: int = DEFAULT_BATCH, names: Sequence[str] | None = None
    ) -> np.ndarray:
        """Softmax per image. `data` may be lazy (sliced one batch at a time); `names` label errors
        (default "row <i>")."""
        n_classes = len(self.cfg.classes)
        names = list(names) if names is not None else [f"row {i}" for i in range(len(data))]
        if not len(data):
            return np.zeros((0, n_classes), np.float32)
        from pipeline.training.predict import IDENTITY_VIEW, predict_batch, tta_views

        # the same per-batch prediction (and TTA views) as the evaluate stage's predict_images
        views = tta_views(self.model) if self.cfg.tta else [IDENTITY_VIEW]
        out = []
        batch_size = max(1, int(batch_size))
        for start in tqdm(
            range(0, len(data), batch_size), desc="predict", unit="batch", disable=None, leave=False
        ):
            stop = start + batch_size
            batch = load_batch(data[start:stop], self.cfg, names[start:stop])
            out.append(predict_batch(self.model, batch, views))
        proba = np.concatenate(out).astype(np.float32)
        if proba.shape[1] != n_classes:
            raise DataError(
                f"model outputs {proba.shape[1]} columns but its label map lists {n_classes} classes"
            )
        return proba

    def predict(
        self, data: Sequence[bytes], batch_size: int = DEFAULT_BATCH, names: Sequence[str] | None = None
    ) -> pd.DataFrame:
        proba = self.proba(data, batch_size, names)
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

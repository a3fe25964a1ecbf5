"""Streaming input pipeline: manifest rows -> uint8 image batches for Keras.

`ManifestDataset` is a keras.utils.PyDataset: it decodes with pipeline.images.preprocess in
worker threads (OpenCV releases the GIL), keeps batches uint8 (the model rescales), shuffles
with a seed per epoch (`set_epoch`, driven by `EpochShuffle`), and optionally keeps the decoded
uint8 images in RAM when they fit `cache_bytes` (never a float copy of the set).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
import pandas as pd
from tqdm import tqdm

from pipeline import images
from pipeline.errors import DataError
from pipeline.models import symmetry

log = logging.getLogger(__name__)
STREAM_WORKERS = 2  # decode threads while streaming (measured best on 2-4 cores: benchmarks/input.py)


class ManifestDataset(keras.utils.PyDataset):
    """Batches (x uint8 [B, S, S, C], y one-hot float32 [B, n_classes]) from image paths."""

    def __init__(
        self,
        paths: Sequence[str],
        labels: Sequence[int] | None,
        n_classes: int,
        image_size: int,
        channels: int,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        cache_bytes: int = 0,
        workers: int = STREAM_WORKERS,
    ):
        self.paths = [str(p) for p in paths]
        if not self.paths:
            raise DataError("the manifest has no rows to train or predict on")
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.n_classes = n_classes
        self.image_size = image_size
        self.channels = channels
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.order = np.arange(len(self.paths))
        self.set_epoch(0)
        self.cache = self._fill_cache(cache_bytes)
        super().__init__(workers=1 if self.cache is not None else workers, use_multiprocessing=False)

    @classmethod
    def from_manifest(cls, df: pd.DataFrame, n_classes: int, **kwargs) -> ManifestDataset:
        labels = df["label"].to_numpy(dtype=np.int64) if "label" in df.columns else None
        return cls(df["path"].tolist(), labels, n_classes, **kwargs)

    @property
    def image_nbytes(self) -> int:
        return self.image_size * self.image_size * self.channels

    def _fill_cache(self, cache_bytes: int) -> np.ndarray | None:
        total = len(self.paths) * self.image_nbytes
        if total > cache_bytes:
            return None
        cache = np.empty((len(self.paths), self.image_size, self.image_size, self.channels), np.uint8)
        with ThreadPoolExecutor(max_workers=STREAM_WORKERS) as pool:
            decoded = pool.map(self.load, range(len(self.paths)))
            for i, img in enumerate(
                tqdm(decoded, total=len(self.paths), desc="cache", leave=False, disable=None)
            ):
                cache[i] = img
        log.info("cached %d images in RAM (%.1f MiB uint8)", len(self.paths), total / 2**20)
        return cache

    def set_epoch(self, epoch: int) -> None:
        """Fix the sample order of `epoch` (same seed + epoch -> same order, also after a resume)."""
        if self.shuffle:
            self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.paths))

    def load(self, i: int) -> np.ndarray:
        path = self.paths[i]
        try:
            return images.preprocess(path, self.image_size, self.channels)
        except (OSError, images.DecodeError) as exc:
            raise DataError(f"cannot read image {path} ({exc}); re-run the validate stage") from exc

    def __len__(self) -> int:
        return math.ceil(len(self.paths) / self.batch_size)

    def batch_indices(self, idx: int) -> np.ndarray:
        return self.order[idx * self.batch_size : (idx + 1) * self.batch_size]

    def __getitem__(self, idx: int):
        ids = self.batch_indices(idx)
        x = self.cache[ids] if self.cache is not None else np.stack([self.load(i) for i in ids])
        if self.labels is None:
            return (x,)
        y = keras.utils.to_categorical(self.labels[ids], self.n_classes).astype(np.float32)
        return x, y


class EpochShuffle(keras.callbacks.Callback):
    """Tell the training dataset which epoch starts (called before Keras fetches its batches)."""

    def __init__(self, dataset: ManifestDataset):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset.set_epoch(epoch)


def tta_views(model: keras.Model) -> list[symmetry.View]:
    """Views for test-time augmentation: every symmetry the model was trained with (its RandomFlip /
    RandomRot90 layers, inside ensemble members too); just the image when it has none."""
    views = symmetry.trained_views(model)
    if len(views) == 1:
        log.warning(
            "tta: %s was trained without flips or quarter turns; predicting the image only", model.name
        )
    return views


def predict_proba(
    model: keras.Model,
    df: pd.DataFrame,
    image_size: int,
    channels: int,
    batch_size: int = 64,
    tta: bool = False,
) -> np.ndarray:
    """Class probabilities (N, n_classes) for the manifest rows, in row order.

    tta=True averages the softmax over every view the model was trained to be invariant to
    (`tta_views`: flips and quarter turns, e.g. the 8 of D4 for histology, the mirror for X-rays).
    """
    views = tta_views(model) if tta else [(0, False, False)]
    ds = ManifestDataset(df["path"].tolist(), None, 0, image_size, channels, batch_size)
    with ThreadPoolExecutor(max_workers=1) as prefetch:  # decode batch i+1 while predicting batch i
        future = prefetch.submit(ds.__getitem__, 0)
        out = []
        for idx in tqdm(range(len(ds)), desc="predict", leave=False, disable=None):
            (x,) = future.result()
            if idx + 1 < len(ds):
                future = prefetch.submit(ds.__getitem__, idx + 1)
            xf = x.astype(np.float32)
            probs = [np.asarray(model.predict_on_batch(symmetry.apply(xf, v))) for v in views]
            out.append(np.mean(probs, axis=0))
    return np.concatenate(out).astype(np.float32)

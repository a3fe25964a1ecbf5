"""Input pipeline: preprocessed uint8 arrays (memory-mapped) -> Keras batches, no per-image Python.

`ArrayBatches` is a keras.utils.PyDataset over an (N, S, S, C) uint8 array (the preprocess
stage's memmap): a batch is ONE vectorised fancy-index gather `images[ids]` (+ one-hot labels
and class-weight sample weights by the same gather), kept uint8 (the model rescales). The order
of an epoch is a permutation seeded by (seed, epoch) (`set_epoch`, driven by `EpochShuffle`), so
a resumed run sees the same batches. One background thread gathers the next batches while the
current step runs (`prefetch`); the OS page cache, not a RAM budget, keeps hot arrays in memory.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import keras
import numpy as np
import pandas as pd
from tqdm import tqdm

from pipeline.arrays.build import decode_all
from pipeline.errors import DataError
from pipeline.models import symmetry

log = logging.getLogger(__name__)
PREFETCH = 2  # batches gathered ahead of the step that consumes them


class ArrayBatches(keras.utils.PyDataset):
    """Batches (x uint8 [B, S, S, C], y one-hot float32 [B, K][, sample weight float32 [B]])."""

    def __init__(
        self,
        images: np.ndarray,
        labels: Sequence[int] | None,
        n_classes: int,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        class_weight: dict[int, float] | None = None,
        prefetch: int = PREFETCH,
    ):
        super().__init__(workers=1, use_multiprocessing=False)  # Keras' own enqueuer off: we prefetch
        if len(images) == 0:
            raise DataError("the split has no rows to train or predict on")
        self.images = images
        self.n = len(images)
        self.n_classes = n_classes
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.onehot = self.weights = None
        if labels is not None:
            labels = np.asarray(labels, dtype=np.int64)
            if len(labels) != self.n:
                raise DataError(f"{len(labels)} labels for {self.n} images")
            self.onehot = np.eye(n_classes, dtype=np.float32)[labels]
            if class_weight:
                table = np.array([class_weight.get(c, 1.0) for c in range(n_classes)], np.float32)
                self.weights = table[labels]
        self.prefetch = prefetch
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="batches") if prefetch > 0 else None
        self._ahead: dict[int, Future] = {}
        self.order = np.arange(self.n)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Fix the sample order of `epoch` (same seed + epoch -> same order, also after a resume)."""
        self._drop_ahead()
        if self.shuffle:
            self.order = np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def batch_indices(self, idx: int) -> np.ndarray:
        return self.order[idx * self.batch_size : (idx + 1) * self.batch_size]

    def gather(self, idx: int) -> tuple[np.ndarray, ...]:
        """Batch `idx` of the current order: one fancy-index gather per array."""
        ids = self.batch_indices(idx)
        x = self.images[ids]
        if self.onehot is None:
            return (x,)
        if self.weights is None:
            return x, self.onehot[ids]
        return x, self.onehot[ids], self.weights[ids]

    def __getitem__(self, idx: int):
        if idx >= len(self):
            raise IndexError(idx)
        future = self._ahead.pop(idx, None)
        batch = future.result() if future is not None else self.gather(idx)
        if self._pool is not None:  # keep the next `prefetch` batches in flight
            for nxt in range(idx + 1, min(idx + 1 + self.prefetch, len(self))):
                if nxt not in self._ahead:
                    self._ahead[nxt] = self._pool.submit(self.gather, nxt)
            for stale in [k for k in self._ahead if k <= idx]:
                self._ahead.pop(stale).cancel()
        return batch

    def _drop_ahead(self) -> None:
        for future in self._ahead.values():
            future.cancel()
        for future in self._ahead.values():
            if not future.cancelled():
                future.result()
        self._ahead.clear()

    def on_epoch_end(self) -> None:
        self._drop_ahead()

    def close(self) -> None:
        self._drop_ahead()
        if self._pool is not None:
            self._pool.shutdown(wait=True)


class EpochShuffle(keras.callbacks.Callback):
    """Tell the training dataset which epoch starts (called before Keras fetches its batches)."""

    def __init__(self, dataset: ArrayBatches):
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


def predict_images(
    model: keras.Model, images: np.ndarray, batch_size: int = 64, tta: bool = False
) -> np.ndarray:
    """Class probabilities (N, n_classes) for uint8 images (N, S, S, C), in row order.

    tta=True averages the softmax over every view the model was trained to be invariant to
    (`tta_views`: flips and quarter turns, e.g. the 8 of D4 for histology, the mirror for X-rays).
    """
    views = tta_views(model) if tta else [(0, False, False)]
    ds = ArrayBatches(images, None, 0, batch_size)
    out = []
    try:
        for idx in tqdm(range(len(ds)), desc="predict", leave=False, disable=None):
            (x,) = ds[idx]  # the next batches are gathered meanwhile
            xf = x.astype(np.float32)
            probs = [np.asarray(model.predict_on_batch(symmetry.apply(xf, v))) for v in views]
            out.append(np.mean(probs, axis=0))
    finally:
        ds.close()
    return np.concatenate(out).astype(np.float32)


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

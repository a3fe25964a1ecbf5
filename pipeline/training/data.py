"""Input pipeline: preprocessed uint8 arrays (memory-mapped) -> Keras batches, no per-image Python.

`ArrayBatches` is a keras.utils.PyDataset over an (N, S, S, C) uint8 array (the preprocess
stage's memmap): a batch is ONE vectorised fancy-index gather `images[ids]` (+ one-hot labels
and class-weight sample weights by the same gather), kept uint8 (the model rescales). The order
of an epoch is a permutation seeded by (seed, epoch) (`set_epoch`, driven by `EpochShuffle`), so
a resumed run sees the same batches. A shuffled (training) set never ends an epoch on a short
batch: the last one is filled up with the epoch's first images (see `batch_indices`). One
background thread gathers the next batches while the current step runs (`prefetch`); the OS
page cache, not a RAM budget, keeps hot arrays in memory.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import keras
import numpy as np

from pipeline.core.errors import DataError

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
        # Keras' TF trainer builds the next epoch's tf.data iterator at the end of an epoch, so a
        # second generator thread may call __getitem__ while EpochShuffle switches the order: every
        # batch gathered ahead is keyed by (epoch, idx) and gathered with the order it was asked under
        self._lock = threading.Lock()
        self._ahead: dict[tuple[int, int], Future] = {}
        self.epoch = 0
        self.order = np.arange(self.n)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Fix the sample order of `epoch` (same seed + epoch -> same order, also after a resume)."""
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n) if self.shuffle else self.order
        with self._lock:
            stale = self._take_ahead(lambda key: True)
            self.epoch, self.order = epoch, order
        _settle(stale)

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def batch_indices(self, idx: int, order: np.ndarray | None = None) -> np.ndarray:
        """Rows of batch `idx`. A shuffled (training) set fills its last batch up with the epoch's
        first rows: a 2-image last batch (BreastMNIST's 546 at batch 32) moved every BatchNorm
        moving average 10 % towards two images' statistics right before validation. Unshuffled sets
        (val, test, predict) keep their rows."""
        order = self.order if order is None else order
        start = idx * self.batch_size
        ids = order[start : start + self.batch_size]
        short = self.batch_size - len(ids)
        if self.shuffle and short > 0 and self.n >= self.batch_size:
            ids = np.concatenate([ids, order[:short]])
        return ids

    def gather(self, idx: int, order: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """Batch `idx` of `order` (default: the current epoch's): one fancy-index gather per array."""
        ids = self.batch_indices(idx, order)
        x = self.images[ids]
        if self.onehot is None:
            return (x,)
        if self.weights is None:
            return x, self.onehot[ids]
        return x, self.onehot[ids], self.weights[ids]

    def __getitem__(self, idx: int):
        if idx >= len(self):
            raise IndexError(idx)
        with self._lock:
            epoch, order = self.epoch, self.order
            future = self._ahead.pop((epoch, idx), None)
            if self._pool is not None:  # keep the next `prefetch` batches of this epoch in flight
                for nxt in range(idx + 1, min(idx + 1 + self.prefetch, len(self))):
                    if (epoch, nxt) not in self._ahead:
                        self._ahead[(epoch, nxt)] = self._pool.submit(self.gather, nxt, order)
            stale = self._take_ahead(lambda key: key[0] != epoch or key[1] <= idx)
        _settle(stale)
        return future.result() if future is not None else self.gather(idx, order)

    def _take_ahead(self, which) -> list[Future]:
        """Remove (under the lock) and return the batches gathered ahead whose key matches."""
        keys = [key for key in self._ahead if which(key)]
        return [self._ahead.pop(key) for key in keys]

    def on_epoch_end(self) -> None:
        with self._lock:
            stale = self._take_ahead(lambda key: True)
        _settle(stale)

    def close(self) -> None:
        self.on_epoch_end()
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def _settle(futures: list[Future]) -> None:
    """Cancel batches nobody will read; wait for those already being gathered (outside the lock)."""
    for future in futures:
        future.cancel()
    for future in futures:
        if not future.cancelled():
            future.exception()


class EpochShuffle(keras.callbacks.Callback):
    """Tell the training dataset which epoch starts (called before Keras fetches its batches)."""

    def __init__(self, dataset: ArrayBatches):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset.set_epoch(epoch)

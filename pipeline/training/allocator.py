"""glibc malloc settings for training: a step's large tensors reuse freed memory, not fresh pages.

TensorFlow's generator dataset (the path Keras' TF trainer takes for a PyDataset, so every
training run here; prediction calls predict_on_batch and never builds one) calls
`mallopt(M_TRIM_THRESHOLD, 128 KiB)` once per process, at the first batch ("Memory patch applied"
in the log). Setting any threshold turns glibc's dynamic mmap
threshold off, so from then on every buffer of 128 KiB or more (a conv activation at 224 px is
megabytes) is mmapped fresh and unmapped again when freed: each step page-faults its activations
anew. On the breakhis preset (224 px, batch 16, 2 cores) that was ~116k minor faults and ~320 ms
of kernel time in a ~800 ms step; with `keep_freed_memory()` re-applied after TF's patch, ~24k
and ~90 ms, and the step ~22 % faster. Whole epochs: kermany-3class (128 px) 28.9 -> 62.1 img/s
in one sitting, and its kermany-dev training 932 -> 462 s with the same model to four places
(benchmarks/results/epoch_profile.md, runs.md session 9).

The cost: freed memory up to KEEP_BYTES stays in the process for reuse instead of going back to
the OS (peak use is unchanged: the same tensors are live at the peak). Other C libraries (musl,
macOS) have no such patch to undo; there it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import platform

import keras

log = logging.getLogger(__name__)
M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
M_MMAP_THRESHOLD = -3
KEEP_BYTES = 256 * 1024 * 1024  # buffers below this come from (and return to) the heap


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") else None
    except OSError:
        return None


def keep_freed_memory() -> bool:
    """Serve buffers below KEEP_BYTES from the heap and keep up to KEEP_BYTES of freed heap for
    reuse. True when glibc took both settings; False (nothing changed) on other C libraries."""
    libc = _glibc()
    if libc is None:
        return False
    mmap_ok = libc.mallopt(M_MMAP_THRESHOLD, KEEP_BYTES) == 1
    trim_ok = libc.mallopt(M_TRIM_THRESHOLD, KEEP_BYTES) == 1
    return mmap_ok and trim_ok


class KeepFreedMemory(keras.callbacks.Callback):
    """`keep_freed_memory()` at the start of training and again after the first batch of every
    fit, once TensorFlow's generator dataset has applied its own threshold."""

    async_safe = True  # reads no step result: Keras need not sync the step for this hook

    def __init__(self):
        super().__init__()
        self._after_first_batch = False

    def on_train_begin(self, logs=None):
        self._after_first_batch = False
        if not keep_freed_memory():
            log.debug("malloc thresholds unchanged (not glibc)")

    def on_train_batch_end(self, batch, logs=None):
        if not self._after_first_batch:
            self._after_first_batch = True
            keep_freed_memory()

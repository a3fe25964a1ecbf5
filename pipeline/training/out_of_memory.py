"""An out-of-memory failure inside fit, as one line that names the way out."""

from __future__ import annotations

import contextlib

from pipeline.config import TrainConfig
from pipeline.core.errors import ResourceError
from pipeline.training.runtime import Runtime

OOM_MARKERS = ("RESOURCE_EXHAUSTED", "Out of memory", "OOM when allocating", "out of memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """An accelerator (or host) allocation failure as XLA/JAX, TensorFlow or the CUDA runtime report it."""
    text = f"{type(exc).__name__}: {exc}"
    return isinstance(exc, MemoryError) or any(marker in text for marker in OOM_MARKERS)


@contextlib.contextmanager
def out_of_memory_as_one_line(cfg: TrainConfig, train_ds, runtime: Runtime):
    """Turn an out-of-memory failure inside fit into one ResourceError line naming the way out
    (the CLI then removes the outputs this run created: nothing half-written in models/)."""
    try:
        yield
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        shape = "x".join(str(d) for d in train_ds.images.shape[1:])
        raise ResourceError(
            f"out of memory training {cfg.model} on {', '.join(runtime.devices)} ({runtime.precision}) "
            f"at train.batch_size {cfg.batch_size}, images {shape}; lower train.batch_size "
            f"(e.g. {max(1, cfg.batch_size // 2)}) or preprocess.image_size"
        ) from None

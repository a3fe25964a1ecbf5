"""Where and how training runs: seeds, op determinism, GPUs, mixed precision, distribution.

Everything backend-specific lives here; the model code only uses keras / keras.ops.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

import keras

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    backend: str
    devices: list[str]
    gpus: int
    precision: str
    strategy: object | None = field(default=None, repr=False)

    def scope(self):
        """Context in which to build and compile the model (the distribution strategy's scope)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    @property
    def replicas(self) -> int:
        return getattr(self.strategy, "num_replicas_in_sync", 1)

    def summary(self) -> dict:
        return {
            "backend": self.backend,
            "devices": self.devices,
            "precision": self.precision,
            "replicas": self.replicas,
        }


def _tf_runtime() -> Runtime:
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return Runtime("tensorflow", ["CPU"], 0, "float32")
    for gpu in gpus:
        with contextlib.suppress(RuntimeError):  # already initialised
            tf.config.experimental.set_memory_growth(gpu, True)
    keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = tf.distribute.MirroredStrategy()
    names = [g.name for g in gpus]
    log.info("training on %d GPU(s) with MirroredStrategy, mixed_float16", len(gpus))
    return Runtime("tensorflow", names, len(gpus), "mixed_float16", strategy)


def configure(seed: int) -> Runtime:
    """Seed every RNG, make ops deterministic (TF), pick mixed precision + MirroredStrategy on GPUs."""
    keras.utils.set_random_seed(seed)
    keras.mixed_precision.set_global_policy("float32")
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tf_runtime()
    devices = [str(d) for d in _jax_devices()] if backend == "jax" else ["default"]
    return Runtime(backend, devices, 0, "float32")


def _jax_devices() -> list:
    try:
        import jax

        return jax.devices()
    except ImportError:  # pragma: no cover - jax is optional
        return []

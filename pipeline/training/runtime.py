"""Where and how training runs: seeds, op determinism, devices, mixed precision, distribution.

Everything backend-specific lives here; the model code only uses keras / keras.ops.
`plan()` is the pure decision (backend + devices -> precision and distribution), `configure()`
applies it: TensorFlow uses tf.distribute.MirroredStrategy over >1 GPU, JAX uses the Keras 3
distribution API (keras.distribution.DataParallel) over >1 device; GPUs train in mixed_float16.
Under data parallelism every batch is split evenly over the replicas, so train.batch_size must be
a multiple of the replica count (else ConfigError) and a short last batch is padded
(`Runtime.shardable`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import keras
import numpy as np

from pipeline.core.errors import ConfigError
from pipeline.models.symmetry import walk_layers

log = logging.getLogger(__name__)
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# image layers whose JAX path is keras.ops, though they declare supports_jit = False for TF's kernels
JIT_SAFE_UNDER_JAX = (keras.layers.RandomRotation, keras.layers.RandomTranslation)


@dataclass(frozen=True)
class Plan:
    """What to run on: `devices` as 'platform:id' (keras.distribution.list_devices' form)."""

    precision: str  # float32 | mixed_float16 | mixed_bfloat16
    distribution: str  # none | mirrored (TF) | data_parallel (JAX)
    devices: tuple[str, ...]

    @property
    def replicas(self) -> int:
        return len(self.devices) if self.distribution != "none" else 1


def _platform(device: str) -> str:
    return device.split(":")[0].lower()


def plan(backend: str, devices: Sequence[str], precision: str | None = None) -> Plan:
    """Pick precision and distribution for `backend` on `devices` (pure; no device is touched).

    Accelerators win over CPUs; GPUs -> mixed_float16, TPUs -> mixed_bfloat16, CPUs -> float32
    (unless `precision` overrides). >1 device: MirroredStrategy (TF, GPUs only), DataParallel (JAX).
    """
    accelerators = [d for d in devices if _platform(d) in ("gpu", "cuda", "tpu")]
    used = tuple(accelerators or devices)
    if precision is None:
        platforms = {_platform(d) for d in accelerators}
        precision = "mixed_bfloat16" if "tpu" in platforms else "mixed_float16" if platforms else "float32"
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} is unknown; expected one of {', '.join(PRECISIONS)}")
    distribution = "none"
    if len(used) > 1 and backend == "jax":
        distribution = "data_parallel"
    elif len(used) > 1 and backend == "tensorflow" and accelerators:
        distribution = "mirrored"
    elif len(used) > 1:
        log.warning("%s backend: training on %s only (no distribution support here)", backend, used[0])
        used = used[:1]
    return Plan(precision, distribution, used)


@dataclass
class Runtime:
    backend: str
    plan: Plan
    distribution: object | None = field(default=None, repr=False)  # tf strategy | keras Distribution

    @property
    def devices(self) -> list[str]:
        return list(self.plan.devices)

    @property
    def precision(self) -> str:
        return self.plan.precision

    @property
    def replicas(self) -> int:
        return self.plan.replicas

    def jit_compile(self, model: keras.Model) -> bool | str:
        """What model.compile gets: True under JAX, else Keras' "auto".

        Keras jits nothing when one layer says `supports_jit = False`. RandomRotation and
        RandomTranslation always do (their TensorFlow kernels are not XLA), though under JAX they
        are keras.ops and trace fine; the Kermany presets' train step then ran op by op, 4-18x
        below a plain jitted loop of the same model on CPU (benchmarks/results/epoch_profile.md).
        Under JAX those two are marked jit-safe here. TensorFlow keeps "auto" (op determinism
        turns XLA off there anyway)."""
        if self.backend != "jax":
            return "auto"
        layers = list(walk_layers(model))
        for layer in layers:
            if isinstance(layer, JIT_SAFE_UNDER_JAX):
                layer.supports_jit = True
        return True if all(layer.supports_jit for layer in layers) else "auto"

    def scope(self):
        """Context in which to build, compile and fit the model (the distribution's scope)."""
        return self.distribution.scope() if self.distribution is not None else contextlib.nullcontext()

    def shardable(self, dataset: keras.utils.PyDataset) -> keras.utils.PyDataset:
        """`dataset` as model.fit should get it: under JAX data parallelism every batch must split
        evenly over the replicas (ConfigError for a batch size that cannot; the last batch padded)."""
        if self.plan.distribution != "data_parallel":
            return dataset
        batch_size = dataset.batch_size
        if batch_size % self.replicas:
            raise ConfigError(
                f"train.batch_size {batch_size} must be a multiple of the {self.replicas} devices "
                f"data-parallel training splits each batch over; use {batch_size + self.replicas - batch_size % self.replicas}"
            )
        return PaddedBatches(dataset, self.replicas)

    def summary(self) -> dict:
        return {
            "backend": self.backend,
            "devices": self.devices,
            "precision": self.precision,
            "distribution": self.plan.distribution,
            "replicas": self.replicas,
        }


class PaddedBatches(keras.utils.PyDataset):
    """Pads a short batch to a multiple of `multiple` by repeating its first samples (as
    torch's DistributedSampler pads an epoch): at most multiple-1 samples count twice per epoch."""

    def __init__(self, dataset: keras.utils.PyDataset, multiple: int):
        super().__init__(workers=dataset.workers, use_multiprocessing=False)
        self.dataset = dataset
        self.multiple = multiple

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int):
        batch = self.dataset[idx]
        short = -len(batch[0]) % self.multiple
        if not short:
            return batch
        return tuple(np.concatenate([a, np.resize(a, (short, *a.shape[1:]))]) for a in batch)

    def on_epoch_begin(self):
        self.dataset.on_epoch_begin()

    def on_epoch_end(self):
        self.dataset.on_epoch_end()


def _tf_devices() -> list[str]:
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        with contextlib.suppress(RuntimeError):  # already initialised
            tf.config.experimental.set_memory_growth(gpu, True)
    return [f"gpu:{i}" for i in range(len(gpus))] or ["cpu:0"]


def _distribution(backend: str, chosen: Plan) -> object | None:
    if chosen.distribution == "mirrored":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy([f"/gpu:{d.split(':')[1]}" for d in chosen.devices])
    if chosen.distribution == "data_parallel":
        return keras.distribution.DataParallel(devices=list(chosen.devices))
    return None


def configure(seed: int, precision: str | None = None) -> Runtime:
    """Seed every RNG, make ops deterministic (TF), then apply `plan()` on the visible devices:
    the global dtype policy and a distribution whose `scope()` the model is built and fit in."""
    keras.utils.set_random_seed(seed)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        devices = _tf_devices()
    elif backend == "jax":
        devices = keras.distribution.list_devices()
    else:
        devices = ["cpu:0"]
    chosen = plan(backend, devices, precision)
    keras.mixed_precision.set_global_policy(chosen.precision)
    runtime = Runtime(backend, chosen, _distribution(backend, chosen))
    log.info(
        "training with %s on %s, %s, %s (%d replica(s))",
        backend,
        ", ".join(chosen.devices),
        chosen.precision,
        chosen.distribution,
        chosen.replicas,
    )
    return runtime

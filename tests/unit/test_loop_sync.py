"""The train loop never waits on a step's results for a callback: every batch-end hook fit installs
is async-safe, so Keras (JAX) dispatches the next step while one runs (benchmarks/epoch_profile.py)."""

from __future__ import annotations

import keras
import numpy as np

from pipeline.config import TrainConfig
from pipeline.training import fit as fit_mod
from pipeline.training.budget import StepBudget
from pipeline.training.checkpoints import CheckpointDir
from pipeline.training.data import ArrayBatches
from pipeline.training.epoch_log import EpochLog

SYNC_HOOKS = ("on_batch_end", "on_train_batch_end")


def blocking(callback: keras.callbacks.Callback) -> list[str]:
    """The batch-end hooks that make Keras sync each step (as CallbackList decides it)."""
    if getattr(callback, "async_safe", False):
        return []
    base = keras.callbacks.Callback
    return [hook for hook in SYNC_HOOKS if getattr(type(callback), hook) is not getattr(base, hook)]


def test_no_callback_of_fit_syncs_each_step(tmp_path):
    cfg = TrainConfig(precise_bn_batches=2, lr_schedule="plateau")
    ds = ArrayBatches(np.zeros((8, 4, 4, 1), np.uint8), np.arange(8) % 2, 2, batch_size=4)
    phase = fit_mod.Phase("train", 0, 2, cfg.learning_rate, None)
    try:
        callbacks = fit_mod._callbacks(cfg, phase, CheckpointDir(tmp_path), ds, ds, EpochLog(8))
    finally:
        ds.close()
    callbacks.append(StepBudget(3, 2))
    assert {type(c).__name__ for c in callbacks} >= {"WarmupCheckpoint", "ResumableBackup", "EpochLog"}
    assert {type(c).__name__: blocking(c) for c in callbacks if blocking(c)} == {}
    # the check itself sees a hook that would sync (keras' own ModelCheckpoint has one)
    assert blocking(keras.callbacks.ModelCheckpoint(str(tmp_path / "w.weights.h5"))) == ["on_train_batch_end"]

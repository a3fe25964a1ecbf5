"""Optimizer and learning-rate schedule from TrainConfig (train.optimizer, train.lr_schedule).

plateau: a constant learning rate that ReduceLROnPlateau lowers when val_loss stalls (fit.py adds
the callback). cosine: keras.optimizers.schedules.CosineDecay per step over the phase, after
`warmup_epochs` of linear warm-up from 0; no ReduceLROnPlateau (it cannot change a schedule).
The schedule reads optimizer.iterations, which BackupAndRestore restores, so a resumed run
continues the same curve.
"""

from __future__ import annotations

import keras

from pipeline.config import TrainConfig
from pipeline.core.errors import ConfigError


def check_options(cfg: TrainConfig, phase_epochs: int) -> None:
    """One-line ConfigError for optimizer/schedule/loss values that cannot work together."""
    if cfg.weight_decay < 0:
        raise ConfigError(f"train.weight_decay is {cfg.weight_decay}; it must be >= 0")
    if cfg.weight_decay > 0 and cfg.optimizer != "adamw":
        raise ConfigError("train.weight_decay is only used by train.optimizer: adamw; set it to 0 for adam")
    if not 0 <= cfg.label_smoothing < 1:
        raise ConfigError(f"train.label_smoothing is {cfg.label_smoothing}; expected 0 <= value < 1")
    if cfg.warmup_epochs < 0:
        raise ConfigError(f"train.warmup_epochs is {cfg.warmup_epochs}; it must be >= 0")
    if cfg.warmup_epochs and cfg.lr_schedule != "cosine":
        raise ConfigError("train.warmup_epochs is only used by train.lr_schedule: cosine; set it to 0")
    if cfg.lr_schedule == "cosine" and cfg.warmup_epochs >= phase_epochs:
        raise ConfigError(
            f"train.warmup_epochs ({cfg.warmup_epochs}) must be below the epochs of a phase ({phase_epochs})"
        )


def learning_rate(cfg: TrainConfig, peak: float, phase_epochs: int, steps_per_epoch: int, budget=None):
    """A float (plateau) or a CosineDecay schedule spanning `phase_epochs` epochs (cosine), or
    exactly the steps of `budget` (a pipeline.training.budget.Budget) with its warm-up steps."""
    if cfg.lr_schedule != "cosine":
        return peak
    if budget is not None:
        warmup, decay = budget.warmup_steps, max(1, budget.steps - budget.warmup_steps)
    else:
        warmup = cfg.warmup_epochs * steps_per_epoch
        decay = max(1, (phase_epochs - cfg.warmup_epochs) * steps_per_epoch)
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(peak, decay_steps=decay)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=decay, warmup_target=peak, warmup_steps=warmup
    )


def make_optimizer(cfg: TrainConfig, peak: float, phase_epochs: int, steps_per_epoch: int, budget=None):
    """Adam or AdamW (decoupled weight decay) at `peak` learning rate, with cfg.lr_schedule."""
    check_options(cfg, phase_epochs)
    lr = learning_rate(cfg, peak, phase_epochs, steps_per_epoch, budget)
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=cfg.weight_decay)
    return keras.optimizers.Adam(lr)

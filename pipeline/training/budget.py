"""Training length as a budget of image-steps (train.budget_images) instead of epochs.

A budget of N images is ceil(N / batch_size) optimizer steps whatever the size of the training
split, so the same recipe trains as long on 3,000 films as on 5,000 and its wall time per night is
N x (s/image). The run is cut into epochs of ceil(n_train / batch_size) steps; the last epoch is
cut short after exactly the budget's steps (`StepBudget`), so it is deterministic and validated
like any other. The cosine schedule and its warm-up (train.warmup_images) are laid out in steps over
the budget, not over whole epochs. Budgets cover phase 'train' only: with a budget,
fine_tune_epochs must be 0 (refused at load, pipeline.config.train_checks).
"""

from __future__ import annotations

import dataclasses
import math

import keras

from pipeline.config import TrainConfig
from pipeline.core.errors import ConfigError


def _steps(images: int, batch_size: int) -> int:
    return math.ceil(images / batch_size)


@dataclasses.dataclass(frozen=True)
class Budget:
    """The step plan of `images` image-steps at `batch_size` over `n_train` training images."""

    images: int
    batch_size: int
    n_train: int
    warmup_images: int = 0

    @property
    def steps(self) -> int:
        return _steps(self.images, self.batch_size)

    @property
    def steps_per_epoch(self) -> int:
        return _steps(self.n_train, self.batch_size)

    @property
    def epochs(self) -> int:
        """Epochs started: the last one may be partial (`last_epoch_steps`)."""
        return math.ceil(self.steps / self.steps_per_epoch)

    @property
    def last_epoch_steps(self) -> int:
        return self.steps - (self.epochs - 1) * self.steps_per_epoch

    @property
    def warmup_steps(self) -> int:
        return _steps(self.warmup_images, self.batch_size)

    @property
    def warmup_epochs(self) -> int:
        """Whole epochs inside the warm-up: the checkpoint is not selected from them."""
        return self.warmup_steps // self.steps_per_epoch

    def record(self) -> dict:
        """What train_summary.json (and so the MLflow run) records of the plan."""
        return {
            "budget_images": self.images,
            "warmup_images": self.warmup_images,
            "steps": self.steps,
            "warmup_steps": self.warmup_steps,
            "steps_per_epoch": self.steps_per_epoch,
            "epochs": self.epochs,
            "last_epoch_steps": self.last_epoch_steps,
            "epochs_equivalent": round(self.steps * self.batch_size / self.n_train, 3),
        }


def plan(cfg: TrainConfig, n_train: int) -> Budget | None:
    """The Budget of cfg on `n_train` training images (None: cfg counts epochs). One-line
    ConfigError before training starts for a budget that cannot fit the data."""
    if cfg.budget_images is None:
        return None
    if n_train < 1:
        raise ConfigError("train.budget_images is set but the train split is empty; re-run the split stage")
    if cfg.budget_images < cfg.batch_size:
        raise ConfigError(
            f"train.budget_images ({cfg.budget_images}) is below one batch (train.batch_size {cfg.batch_size})"
        )
    if cfg.budget_images < n_train:
        raise ConfigError(
            f"train.budget_images ({cfg.budget_images:,}) does not cover one pass over the {n_train:,} "
            f"training images; raise it to at least {n_train:,} (or train on a subset)"
        )
    budget = Budget(cfg.budget_images, cfg.batch_size, n_train, cfg.warmup_images)
    if budget.warmup_steps and budget.warmup_steps >= budget.steps:
        raise ConfigError(
            f"train.warmup_images ({cfg.warmup_images}) leaves no step of train.budget_images after it"
        )
    if budget.epochs > 100_000:
        raise ConfigError(
            f"train.budget_images ({cfg.budget_images:,}) is over 100,000 epochs of {n_train} images"
        )
    return budget


def resolve(cfg: TrainConfig, budget: Budget | None) -> TrainConfig:
    """cfg with the budget's epochs (and whole warm-up epochs, for selection) filled in, so the
    code that counts epochs (phases, selection, ETA) reads plain numbers."""
    if budget is None:
        return cfg
    return dataclasses.replace(cfg, epochs=budget.epochs, warmup_epochs=budget.warmup_epochs)


class StepBudget(keras.callbacks.Callback):
    """Stop the phase after `steps` optimizer steps, counted from epoch and batch indices (no device
    sync; a resume at an epoch boundary counts the same). Keras ends the epoch there, then validates,
    checkpoints and logs it like a whole one. With steps_per_execution k the stop can come up to
    k - 1 steps late.

    It flags the stop as the last step BEGINS (Keras checks the flag after that step): a batch-end
    hook would make Keras sync on every step's results (pipeline.training.fit)."""

    def __init__(self, steps: int, steps_per_epoch: int, initial_epoch: int = 0):
        super().__init__()
        self.steps, self.steps_per_epoch, self.initial_epoch = steps, steps_per_epoch, initial_epoch
        self._epoch = initial_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        done = (self._epoch - self.initial_epoch) * self.steps_per_epoch + batch + 1
        if done >= self.steps:
            self.model.stop_training = True

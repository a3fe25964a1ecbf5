"""Checks of train.* values that only fail together with other keys: each returns a one-line message
or None. They run at every load (pipeline.config.checks.CROSS_CHECKS), so a recipe that cannot
train stops before ingest rather than after two stages and an MLflow run; the train code keeps its
own guards for callers that build a TrainConfig directly."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.config.schema import Config

FROM_SCRATCH = ("baseline_cnn", "small_resnet")  # the rest are keras.applications backbones
MIN_APPLICATION_SIDE = 32  # keras.applications refuse smaller inputs
MIN_RESNET_WIDTH = 4


def _pretrained(weights: str) -> bool:
    return weights.lower() != "none"


def fine_tune_needs_frozen_backbone(cfg: Config) -> str | None:
    """Phase 2 unfreezes a pretrained backbone's top; without one there is nothing to unfreeze."""
    t = cfg.train
    if t.fine_tune_epochs == 0 or (t.model not in FROM_SCRATCH and _pretrained(t.weights)):
        return None
    why = f"{t.model} has no backbone" if t.model in FROM_SCRATCH else "train.weights is none"
    return (
        f"params: train.fine_tune_epochs is {t.fine_tune_epochs} but nothing is frozen ({why}); add those "
        "epochs to train.epochs and set train.fine_tune_epochs: 0, or use pretrained train.weights"
    )


def weights_fit_model(cfg: Config) -> str | None:
    t = cfg.train
    if t.model in FROM_SCRATCH and _pretrained(t.weights):
        return (
            f"params: train.weights is {t.weights!r} but train.model {t.model} trains from scratch; "
            "set train.weights: none or pick densenet201 | mobilenetv2 | efficientnetb0"
        )
    return None


def model_size(cfg: Config) -> str | None:
    t, side = cfg.train, cfg.preprocess.image_size
    if t.model not in FROM_SCRATCH and side < MIN_APPLICATION_SIDE:
        return f"params: preprocess.image_size is {side}; train.model {t.model} needs at least {MIN_APPLICATION_SIDE} px"
    if t.model == "small_resnet" and t.width < MIN_RESNET_WIDTH:
        return f"params: train.width is {t.width}; small_resnet needs at least {MIN_RESNET_WIDTH} filters"
    return None


def optimizer_options(cfg: Config) -> str | None:
    """The pairs pipeline.training.optim.check_options refuses, known from params alone."""
    t = cfg.train
    if t.weight_decay > 0 and t.optimizer != "adamw":
        return f"params: train.weight_decay is {t.weight_decay} but only train.optimizer: adamw uses it; set it to 0"
    if t.warmup_epochs and t.lr_schedule != "cosine":
        return "params: train.warmup_epochs is only used by train.lr_schedule: cosine; set it to 0"
    phases = [t.epochs or 0] + ([t.fine_tune_epochs] if t.fine_tune_epochs else [])
    if t.lr_schedule == "cosine" and t.budget_images is None and t.warmup_epochs >= min(phases):
        return (
            f"params: train.warmup_epochs ({t.warmup_epochs}) must be below the epochs of each phase "
            f"(train.epochs {t.epochs}"
            + (f", train.fine_tune_epochs {t.fine_tune_epochs})" if t.fine_tune_epochs else ")")
        )
    return None


def budget_options(cfg: Config) -> str | None:
    """train.budget_images (pipeline.training.budget) replaces train.epochs; what cannot go with it.
    A budget below one pass over the data is refused when the train split is known (train start)."""
    t = cfg.train
    if t.budget_images is None:
        if t.epochs is None:
            return "params: train.epochs is null; set train.epochs or train.budget_images (image-steps)"
        if t.warmup_images:
            return (
                "params: train.warmup_images is only used with train.budget_images; use train.warmup_epochs"
            )
        return None
    if t.epochs is not None:
        return (
            f"params: train.budget_images is {t.budget_images} and train.epochs is {t.epochs}; set "
            "train.epochs: null (the budget sets the length: epochs = budget_images / n_train)"
        )
    if t.budget_images < t.batch_size:
        return f"params: train.budget_images ({t.budget_images}) is below one batch (train.batch_size {t.batch_size})"
    if t.fine_tune_epochs:
        return (
            "params: train.budget_images covers one phase; set train.fine_tune_epochs: 0 or use train.epochs"
        )
    if t.warmup_epochs:
        return (
            "params: with train.budget_images the warm-up is train.warmup_images; set train.warmup_epochs: 0"
        )
    if t.warmup_images and t.lr_schedule != "cosine":
        return "params: train.warmup_images is only used by train.lr_schedule: cosine; set it to 0"
    if t.warmup_images >= t.budget_images:
        return f"params: train.warmup_images ({t.warmup_images}) must be below train.budget_images ({t.budget_images})"
    return None


def augment_limits(cfg: Config) -> str | None:
    """Limits of the augmentation layers beyond the per-key ranges (build_model checks the same)."""
    aug = cfg.train.augment
    for key, value, limit in (("rotate_deg", aug.rotate_deg, 180.0), ("translate", aug.translate, 0.5)):
        if not value < limit:
            return f"params: train.augment.{key} is {value}; expected 0 <= {key} < {limit:g} (0 = off)"
    return None


TRAIN_CHECKS = (
    fine_tune_needs_frozen_backbone,
    weights_fit_model,
    model_size,
    optimizer_options,
    budget_options,
    augment_limits,
)

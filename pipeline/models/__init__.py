"""Model zoo: `build_model(cfg, input_shape, n_classes)` -> an uncompiled keras.Model.

Every model takes uint8-range float images (N, H, W, C) and returns softmax probabilities
(float32, also under mixed precision). Train-time augmentation and input scaling are layers
inside the model, so a saved model.keras needs no separate preprocessing code.
"""

from __future__ import annotations

import keras
from keras import layers as kl

from pipeline.config import TrainConfig
from pipeline.core.errors import ConfigError
from pipeline.models import applications, cnn
from pipeline.models.layers import RandomRot90, augmentation_layers, flip_axes
from pipeline.models.seeding import default_seeds

__all__ = ["MODELS", "RandomRot90", "build_model", "flip_axes"]

FROM_SCRATCH = ("baseline_cnn", "small_resnet")
MODELS = (*FROM_SCRATCH, *applications.APPLICATIONS)


def _features(cfg: TrainConfig, x, channels: int, image_size: int):
    if cfg.model in FROM_SCRATCH:
        if applications.is_pretrained(cfg.weights):
            raise ConfigError(
                f"train.weights is {cfg.weights!r} but {cfg.model} trains from scratch; "
                "set train.weights: none or pick densenet201 | mobilenetv2 | efficientnetb0"
            )
        x = cnn.rescale_unit()(x)
        if cfg.model == "baseline_cnn":
            x = cnn.baseline_cnn_features(x)
            return kl.Dense(128, activation="relu", name="fc")(x)
        if cfg.width < 4:
            raise ConfigError(f"train.width is {cfg.width}; small_resnet needs at least 4 filters")
        widths = (cfg.width, 2 * cfg.width, 4 * cfg.width)
        return cnn.small_resnet_features(x, widths=widths, stem_stride=cfg.stem_stride)
    if channels == 1:  # applications are 3-channel networks
        x = kl.Concatenate(name="gray_to_rgb")([x, x, x])
    for layer in applications.input_scaling(cfg.model):
        x = layer(x)
    backbone = applications.build_backbone(cfg.model, image_size, cfg.weights)
    backbone.trainable = not applications.is_pretrained(cfg.weights)
    # a pretrained backbone's BatchNorm stays in inference mode (also when fine-tuning); one trained
    # from scratch (weights none) needs batch statistics, else its activations vanish (~1e-13)
    x = backbone(x, training=False) if applications.is_pretrained(cfg.weights) else backbone(x)
    return kl.GlobalAveragePooling2D(name="gap")(x)


def build_model(cfg: TrainConfig, input_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
    """Build cfg.model for square `input_shape` (H, W, C) and `n_classes` softmax outputs.

    Pure apart from reading backbone weights (cfg.weights: imagenet | none | .weights.h5 path):
    the initial weights follow cfg.seed alone (`seeding.default_seeds`), whatever else draws from
    Python's `random`. Pretrained backbones start frozen (phase 1); see set_backbone_trainable.
    """
    if cfg.model not in MODELS:
        raise ConfigError(f"train.model {cfg.model!r} is unknown; choose one of {', '.join(MODELS)}")
    height, width = input_shape[:2]
    if height != width:
        raise ConfigError(f"input shape {input_shape} must be square (preprocess.image_size)")
    if n_classes < 2:
        raise ConfigError(f"need at least 2 classes to train, got {n_classes}")
    aug = cfg.augment
    for key, value, limit in (
        ("zoom", aug.zoom, 1.0),
        ("rotate_deg", aug.rotate_deg, 180.0),
        ("translate", aug.translate, 0.5),
    ):
        if not 0 <= value < limit:
            raise ConfigError(f"train.augment.{key} is {value}; expected 0 <= {key} < {limit:g} (0 = off)")
    with default_seeds(cfg.seed):
        return _build(cfg, input_shape, n_classes)


def _build(cfg: TrainConfig, input_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
    height, _, channels = input_shape
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    for layer in augmentation_layers(cfg.augment, seed=cfg.seed):
        x = layer(x)
    x = _features(cfg, x, channels, height)
    x = kl.Dropout(cfg.dropout, seed=cfg.seed, name="dropout")(x)
    outputs = kl.Dense(n_classes, activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, outputs, name=f"medpipe_{cfg.model}")

"""keras.applications backbones (DenseNet201, MobileNetV2, EfficientNetB0) for transfer learning.

Each application expects its own input scaling; the matching layers are put inside the model
so every medpipe model takes the same uint8-range float input.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from pipeline.errors import ConfigError

APPLICATIONS = {
    "densenet201": keras.applications.DenseNet201,
    "mobilenetv2": keras.applications.MobileNetV2,
    "efficientnetb0": keras.applications.EfficientNetB0,
}
BACKBONE = "backbone"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FINE_TUNE_FRACTION = 0.25  # share of the backbone's layers unfrozen in phase 2


def input_scaling(name: str) -> list[keras.layers.Layer]:
    """Layers mapping [0, 255] to what the application was trained on."""
    if name == "mobilenetv2":  # 'tf' mode: [-1, 1]
        return [layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")]
    if name == "densenet201":  # 'torch' mode: [0, 1] then ImageNet mean/std
        return [
            layers.Rescaling(1.0 / 255, name="rescale"),
            layers.Normalization(
                mean=list(IMAGENET_MEAN), variance=[s * s for s in IMAGENET_STD], name="imagenet_norm"
            ),
        ]
    return []  # EfficientNet rescales and normalizes inside the application itself


def resolve_weights(weights: str) -> str | None:
    """'imagenet' | 'none' | path -> the `weights=` argument for the application constructor."""
    if weights == "imagenet":
        return "imagenet"
    if weights.lower() == "none":
        return None
    path = Path(weights)
    if not path.is_file():
        raise ConfigError(
            f"train.weights: backbone weights file {path} not found; "
            "use imagenet, none, or the path of a saved .weights.h5"
        )
    if not path.name.endswith(".weights.h5"):
        raise ConfigError(f"train.weights: {path} must be a Keras '.weights.h5' file")
    return None


def build_backbone(name: str, image_size: int, weights: str) -> keras.Model:
    """The application without its top (3-channel input), weights loaded from imagenet or a file."""
    if image_size < 32:
        raise ConfigError(f"preprocess.image_size is {image_size}; {name} needs at least 32 px")
    constructor = APPLICATIONS[name]
    backbone = constructor(
        include_top=False,
        weights=resolve_weights(weights),
        input_shape=(image_size, image_size, 3),
        name=BACKBONE,
    )
    if weights not in ("imagenet", "none", "None"):
        try:
            backbone.load_weights(weights)
        except ValueError as exc:
            raise ConfigError(
                f"train.weights: {weights} does not fit a {name} backbone at {image_size}px: "
                f"{str(exc).splitlines()[0]}"
            ) from exc
    return backbone


def is_pretrained(weights: str) -> bool:
    return weights.lower() != "none"


def set_backbone_trainable(model: keras.Model, phase: str) -> None:
    """phase 'frozen': backbone frozen; 'fine_tune': its top FINE_TUNE_FRACTION trainable (BN stays frozen).

    The caller must recompile afterwards for the change to take effect.
    """
    backbone = model.get_layer(BACKBONE)
    if phase == "frozen":
        backbone.trainable = False
        return
    backbone.trainable = True
    cut = int(len(backbone.layers) * (1.0 - FINE_TUNE_FRACTION))
    for i, layer in enumerate(backbone.layers):
        layer.trainable = i >= cut and not isinstance(layer, layers.BatchNormalization)


def has_backbone(model: keras.Model) -> bool:
    return any(layer.name == BACKBONE for layer in model.layers)

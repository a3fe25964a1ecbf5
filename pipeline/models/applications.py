"""keras.applications backbones (DenseNet201, MobileNetV2, EfficientNetB0) for transfer learning.

Each application expects its own input scaling; the matching layers are put inside the model
so every medpipe model takes the same uint8-range float input.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from pathlib import Path

import keras
from keras import layers

from pipeline.core.errors import ConfigError

APPLICATIONS = {
    "densenet201": keras.applications.DenseNet201,
    "mobilenetv2": keras.applications.MobileNetV2,
    "efficientnetb0": keras.applications.EfficientNetB0,
}
BACKBONE = "backbone"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FINE_TUNE_FRACTION = 0.25  # share of the backbone's layers unfrozen in phase 2
BACKBONES_DIR = Path("backbones")  # weights files here are a DVC dependency of train (dvc.yaml)
KERAS_FILES = {  # what keras.applications downloads for weights="imagenet", include_top=False
    "densenet201": "densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "efficientnetb0": "efficientnetb0_notop.h5",
}


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


def keras_weights_file(name: str, image_size: int) -> str:
    """The file name Keras downloads for `weights: imagenet` (no top) and caches in ~/.keras/models/."""
    if name == "mobilenetv2":  # one file per input size; Keras falls back to 224 for other sizes
        rows = image_size if image_size in (96, 128, 160, 192, 224) else 224
        return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"
    return KERAS_FILES[name]


def keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def resolve_weights(weights: str, name: str = "densenet201", image_size: int = 224) -> str | Path | None:
    """train.weights -> what to load: 'imagenet' (Keras' cached download), a Path, or None.

    imagenet: backbones/<Keras file name> (a DVC dependency of train) when present, else Keras'
    cache ~/.keras/models/ (downloaded when online). A path may be a Keras 3 '.weights.h5' or a
    Keras-published legacy '*.h5' (e.g. densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5).
    """
    if weights.lower() == "none":
        return None
    if weights == "imagenet":
        local = BACKBONES_DIR / keras_weights_file(name, image_size)
        return local if local.is_file() else "imagenet"
    path = Path(weights)
    if not path.is_file():
        raise ConfigError(
            f"train.weights: backbone weights file {path} not found; "
            f"use imagenet, none, or the path of a .weights.h5 / Keras *_notop.h5 file (e.g. in {BACKBONES_DIR}/)"
        )
    if path.suffix.lower() != ".h5":
        raise ConfigError(f"train.weights: {path} must be a Keras '.weights.h5' or '*_notop.h5' file")
    return path


def weights_record(cfg_weights: str, name: str, image_size: int) -> dict | None:
    """{'path', 'sha256'} of the weights file a backbone loads (lineage; None: none / Keras cache)."""
    if name not in APPLICATIONS:
        return None
    source = resolve_weights(cfg_weights, name, image_size)
    if not isinstance(source, Path):
        return {"path": str(cfg_weights), "sha256": None} if source else None
    digest = hashlib.sha256()
    with source.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"path": source.as_posix(), "sha256": digest.hexdigest()}


def _offline_imagenet(name: str, image_size: int) -> ConfigError:
    file = keras_weights_file(name, image_size)
    return ConfigError(
        f"train.weights: imagenet could not be downloaded (no network?); Keras looks for {keras_cache_dir() / file}: "
        f"copy {file} there, or into {BACKBONES_DIR}/ and set train.weights: {BACKBONES_DIR}/{file}"
    )


def _load_file(backbone: keras.Model, path: Path, name: str, image_size: int) -> None:
    """Load a weights file into the backbone; one-line ConfigError when it is another architecture."""
    with warnings.catch_warnings():  # Keras warns once per layer that does not match
        warnings.simplefilter("ignore")
        try:
            backbone.load_weights(path)
        except (ValueError, KeyError, OSError) as exc:
            text = str(exc)
            count = re.search(r"A total of (\d+) objects could not be loaded", text)
            why = f"{count[1]} layers did not match" if count else text.splitlines()[0].rstrip(":")
            raise ConfigError(
                f"train.weights: {path} does not fit a {name} backbone at {image_size} px ({why}); "
                f"was it saved from another architecture or size?"
            ) from None


def build_backbone(name: str, image_size: int, weights: str) -> keras.Model:
    """The application without its top (3-channel input), weights loaded from imagenet or a file."""
    if image_size < 32:
        raise ConfigError(f"preprocess.image_size is {image_size}; {name} needs at least 32 px")
    source = resolve_weights(weights, name, image_size)
    kwargs = dict(include_top=False, input_shape=(image_size, image_size, 3), name=BACKBONE)
    if source == "imagenet":
        try:
            return APPLICATIONS[name](weights="imagenet", **kwargs)
        except Exception as exc:  # noqa: BLE001 - keras.utils.get_file raises a bare Exception offline
            raise _offline_imagenet(name, image_size) from exc
    backbone = APPLICATIONS[name](weights=None, **kwargs)
    if source is not None:
        _load_file(backbone, Path(source), name, image_size)
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

"""Custom Keras layers used inside medpipe models (registered so safe-mode loading works).

Only `keras` / `keras.ops` here: the layers run on any Keras backend.
"""

from __future__ import annotations

import keras
from keras import ops

from pipeline.config import TrainAugmentConfig


@keras.saving.register_keras_serializable(package="medpipe")
class RandomRot90(keras.layers.Layer):
    """Rotate each image by a random multiple of 90 degrees (training only; square images).

    Exact (no interpolation): a quarter turn is a transpose plus a flip, chosen per sample.
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=None):
        if not training:
            return inputs
        batch = ops.shape(inputs)[0]
        k = keras.random.randint((batch,), 0, 4, seed=self.seed_generator)
        k = ops.reshape(k, (-1, 1, 1, 1))
        # np.rot90(m, k) on (H, W): k=1 flip(transpose, rows), k=2 flip both, k=3 flip(transpose, cols)
        x = ops.where(k % 2 == 1, ops.transpose(inputs, (0, 2, 1, 3)), inputs)
        x = ops.where((k == 1) | (k == 2), ops.flip(x, axis=1), x)
        return ops.where((k == 2) | (k == 3), ops.flip(x, axis=2), x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}


def _reflect(index, n: int):
    """Half-sample symmetric reflection into 0..n-1 (... 1 0 | 0 1 .. n-1 | n-1 n-2 ...)."""
    index = ops.mod(index, 2 * n)
    return ops.where(index >= n, 2 * n - 1 - index, index)


def resample_matrices(scale, n: int):
    """(B, n, n) bilinear resampling matrices: output pixel o reads source position
    c + (o - c) * scale[b] (c = the centre), reflected at the borders."""
    centre = (n - 1) / 2.0
    out = ops.arange(n, dtype="float32")
    src = centre + (out[None, :] - centre) * ops.reshape(scale, (-1, 1))
    lo = ops.floor(src)
    frac = ops.expand_dims(src - lo, -1)
    lo = ops.cast(lo, "int32")
    a = ops.one_hot(_reflect(lo, n), n, dtype="float32")
    b = ops.one_hot(_reflect(lo + 1, n), n, dtype="float32")
    return a * (1.0 - frac) + b * frac


def zoom_by_matmul(x, scale):
    """Zoom each NHWC image b about its centre by scale[b] (source = c + (out - c) * scale):
    bilinear, half-sample symmetric reflect, as two batched matmuls (rows, then columns)."""
    rows = ops.cast(resample_matrices(scale, x.shape[1]), x.dtype)
    cols = ops.cast(resample_matrices(scale, x.shape[2]), x.dtype)
    x = ops.einsum("bij,bjwc->biwc", rows, x)
    return ops.einsum("bkw,biwc->bikc", cols, x)


def zoom_transforms(scale, height: int, width: int):
    """(B, 8) projective transforms (output -> source coordinates) of the same zoom about the centre."""
    scale = ops.cast(scale, "float32")
    zero = ops.zeros_like(scale)
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    return ops.stack([scale, zero, cx * (1.0 - scale), zero, scale, cy * (1.0 - scale), zero, zero], axis=1)


def zoom_by_affine(x, scale):
    """zoom_by_matmul's zoom through keras.ops.image.affine_transform (bilinear, reflect: TF's
    REFLECT is the same half-sample symmetric fill, and a source within a pixel of the border
    reads the border pixel in both)."""
    transforms = zoom_transforms(scale, x.shape[1], x.shape[2])
    out = ops.image.affine_transform(
        x, transforms, interpolation="bilinear", fill_mode="reflect", data_format="channels_last"
    )
    return ops.cast(out, x.dtype)


@keras.saving.register_keras_serializable(package="medpipe")
class RandomAxisZoom(keras.layers.Layer):
    """Random zoom in or out by a factor in [1 - factor, 1 + factor] per image (both axes alike),
    bilinear, reflect fill (training only).

    Zoom is separable, so it runs as two small batched matrix products (rows, then columns)
    instead of keras.layers.RandomZoom's generic affine warp, which the JAX backend evaluates as
    a per-pixel 3-D gather (jax.scipy.ndimage.map_coordinates): slow on CPU, worse on a GPU.
    Under TensorFlow the same zoom (same random scales, same sampling law) runs as one
    keras.ops.image.affine_transform, i.e. TF's native ImageProjectiveTransformV3 kernel, which
    is faster there than the matmuls (benchmarks/loop_profile.py; results in benchmarks/results/cpu.md).
    """

    # backends whose affine_transform is a native resampling kernel (JAX's is the gather above)
    AFFINE_BACKENDS: tuple[str, ...] = ("tensorflow",)

    def __init__(self, factor: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.factor = float(factor)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.factor == 0:
            return inputs
        x = ops.cast(inputs, self.compute_dtype)
        scale = keras.random.uniform(
            (ops.shape(x)[0],), 1.0 - self.factor, 1.0 + self.factor, seed=self.seed_generator
        )
        if keras.backend.backend() in self.AFFINE_BACKENDS:
            return zoom_by_affine(x, scale)
        return zoom_by_matmul(x, scale)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": self.factor, "seed": self.seed}


def _flip_mode(horizontal: bool, vertical: bool) -> str | None:
    if horizontal and vertical:
        return "horizontal_and_vertical"
    return "horizontal" if horizontal else "vertical" if vertical else None


def augmentation_layers(aug: TrainAugmentConfig, seed: int) -> list[keras.layers.Layer]:
    """Train-time augmentation as Keras layers (identity at inference), float32 for mixed precision.

    Order: flips, quarter turns, small rotation, translation, zoom (each only when enabled).
    """
    layers: list[keras.layers.Layer] = []
    mode = _flip_mode(aug.flip, aug.vflip)
    if mode:
        layers.append(keras.layers.RandomFlip(mode, seed=seed, dtype="float32"))
    if aug.rot90:
        layers.append(RandomRot90(seed=seed + 1, dtype="float32", name="random_rot90"))
    if aug.rotate_deg > 0:
        layers.append(
            keras.layers.RandomRotation(
                aug.rotate_deg / 360.0, fill_mode="reflect", seed=seed + 3, dtype="float32"
            )
        )
    if aug.translate > 0:
        shift = (-aug.translate, aug.translate)
        layers.append(
            keras.layers.RandomTranslation(shift, shift, fill_mode="reflect", seed=seed + 4, dtype="float32")
        )
    if aug.zoom > 0:
        layers.append(RandomAxisZoom(aug.zoom, seed=seed + 2, dtype="float32", name="random_zoom"))
    return layers


def flip_axes(model: keras.Model) -> tuple[int, ...]:
    """Image axes (of an NHWC batch) the model was trained to be flip-invariant on: 2 = horizontal, 1 = vertical."""
    axes: list[int] = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.RandomFlip):
            axes += [2] if layer.mode in ("horizontal", "horizontal_and_vertical") else []
            axes += [1] if layer.mode in ("vertical", "horizontal_and_vertical") else []
    return tuple(sorted(set(axes), reverse=True))

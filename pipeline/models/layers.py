"""Custom Keras layers used inside medpipe models (registered so safe-mode loading works).

Only `keras` / `keras.ops` here: the layers run on any Keras backend.
"""

from __future__ import annotations

import keras
from keras import ops


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


def augmentation_layers(flip: bool, rot90: bool, zoom: float, seed: int) -> list[keras.layers.Layer]:
    """Train-time augmentation as Keras layers (identity at inference), float32 for mixed precision."""
    layers: list[keras.layers.Layer] = []
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal_and_vertical", seed=seed, dtype="float32"))
    if rot90:
        layers.append(RandomRot90(seed=seed + 1, dtype="float32", name="random_rot90"))
    if zoom > 0:
        layers.append(
            keras.layers.RandomZoom((-zoom, zoom), fill_mode="reflect", seed=seed + 2, dtype="float32")
        )
    return layers

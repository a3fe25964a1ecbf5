"""Runtime.jit_compile: JAX jits the train step also for models with rotation/translation layers."""

from __future__ import annotations

import keras

from pipeline.training.runtime import Runtime, plan


def _model(*augment):
    inputs = keras.Input((8, 8, 1))
    x = inputs
    for layer in augment:
        x = layer(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def test_jax_marks_rotation_and_translation_jit_safe_and_jits():
    model = _model(keras.layers.RandomRotation(0.05), keras.layers.RandomTranslation(0.1, 0.1))
    assert not all(layer.supports_jit for layer in model.layers)  # Keras' own "auto" would not jit
    assert Runtime("jax", plan("jax", ["cpu:0"])).jit_compile(model) is True
    assert all(layer.supports_jit for layer in model.layers)


def test_tensorflow_keeps_auto_and_touches_nothing():
    model = _model(keras.layers.RandomRotation(0.05))
    assert Runtime("tensorflow", plan("tensorflow", ["cpu:0"])).jit_compile(model) == "auto"
    assert model.get_layer(index=1).supports_jit is False


class _Opaque(keras.layers.Layer):
    def __init__(self):
        super().__init__()
        self.supports_jit = False

    def call(self, x):
        return x


def test_jax_leaves_auto_when_another_layer_cannot_jit():
    model = _model(keras.layers.RandomRotation(0.05), _Opaque())
    assert Runtime("jax", plan("jax", ["cpu:0"])).jit_compile(model) == "auto"

"""training_forward: the compiled training-mode pass updates the model's state as the eager call does."""

from __future__ import annotations

import keras
import numpy as np

from pipeline.training.compiled import training_forward


def _model():
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.RandomFlip("horizontal", seed=3)(inputs)
    x = keras.layers.BatchNormalization(momentum=0.5, name="bn")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def _state(model):
    return [keras.ops.convert_to_numpy(v).copy() for v in model.non_trainable_variables]


def test_compiled_pass_moves_batchnorm_and_seed_state_like_the_eager_call():
    batches = [np.random.default_rng(k).normal(k, 1 + k, (8, 6, 6, 1)).astype(np.float32) for k in range(3)]
    eager, compiled = _model(), _model()
    compiled.set_weights(eager.get_weights())
    before = _state(compiled)
    forward = training_forward(compiled)
    for x in batches:
        eager(x, training=True)
        forward(x)
    after = _state(compiled)
    assert all(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))  # stats and seed moved
    for want, got in zip(_state(eager), after, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

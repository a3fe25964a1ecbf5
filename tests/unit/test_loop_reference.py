"""benchmarks/loop_reference.py: the plain loop of the session's backend trains and keeps its state."""

from __future__ import annotations

import keras
import numpy as np
from helpers.script_module import load_script


def _module():
    return load_script("benchmarks/loop_reference.py")


def _tiny_model() -> keras.Model:
    """BatchNorm statistics and two SeedGenerators (flip, dropout): the state a loop must carry.

    No keras.utils.set_random_seed: it imports TensorFlow (~8 s here) also under JAX.
    """
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.RandomFlip("horizontal", seed=1)(x)
    x = keras.layers.Conv2D(4, 3, padding="same")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2, seed=2)(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def test_plain_loop_trains_and_writes_state_back():
    ref = _module()
    model = _tiny_model()
    x, y = ref.learnable_images(64, 8)
    before = [np.array(v) for v in model.variables]
    out = ref.plain_img_s(model, x, y, 16, 2, 1e-2, keras.losses.CategoricalCrossentropy())
    backend = keras.backend.backend()
    assert out["backend"] == backend
    assert out["path"] == {"tensorflow": "tf_fit", "jax": "jax_jit"}[backend]
    assert out["img_s"] > 0 and len(out["epoch_seconds"]) == 2 and len(out["loss"]) == 2
    changed = {
        v.path: not np.array_equal(b, np.array(v)) for v, b in zip(model.variables, before, strict=True)
    }
    assert all(changed[v.path] for v in model.trainable_variables), changed
    assert changed["bn/moving_mean"], changed  # BatchNorm statistics came back
    # each SeedGenerator state is [seed, counter] and one draw adds 1 to the counter: 2 epochs x 4 steps
    # give +8 only when every step gets the state the step before returned (a loop reusing the first
    # state each step would show +1)
    # (the flip's and the dropout's; their names count up with every model built before in the process)
    counters = [int(np.array(v)[1]) for v in model.non_trainable_variables if "seed_generator" in v.path]
    assert counters == [8, 8], counters

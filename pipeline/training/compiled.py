"""The training-mode forward pass, compiled once per model (PreciseBN's statistics pass).

Called eagerly, `model(x, training=True)` dispatches every op from Python: 16 such batches of a
small ResNet at 28 px took a fifth of each epoch on 2 CPU cores (benchmarks/results/
epoch_profile_tensorflow.json). `training_forward(model)` runs the same call compiled (tf.function
under TensorFlow; jax.jit over `stateless_call` under JAX, the new values written back) and, like
the eager call, updates the model's non-trainable variables: BatchNorm statistics and the random
layers' seed states. Python attributes read in the call (a BatchNorm's momentum) are fixed at the
first call (the trace).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np


def training_forward(model: keras.Model) -> Callable[[np.ndarray], None]:
    """A function x -> None that runs model(x, training=True) compiled, updating its state."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        call = tf.function(lambda x: model(x, training=True), reduce_retracing=True)

        def run_tf(x: np.ndarray) -> None:
            call(x)

        return run_tf
    if backend == "jax":
        import jax

        @jax.jit
        def state_after(trainable, non_trainable, x):
            return model.stateless_call(trainable, non_trainable, x, training=True)[1]

        def run_jax(x: np.ndarray) -> None:
            variables = model.non_trainable_variables
            new = state_after([v.value for v in model.trainable_variables], [v.value for v in variables], x)
            for variable, value in zip(variables, new, strict=True):
                variable.assign(value)

        return run_jax
    return lambda x: model(x, training=True)  # other backends: eager

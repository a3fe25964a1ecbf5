"""Plain-loop reference (not a test): medpipe's model trained by the framework's plainest fast path.

    KERAS_BACKEND=jax uv run --frozen python benchmarks/loop_reference.py --model baseline_cnn --size 50
    KERAS_BACKEND=tensorflow uv run --frozen python benchmarks/loop_reference.py --model small_resnet --size 28

`plain_img_s` trains a given Keras model on in-memory arrays with no medpipe machinery around it,
so a profile of the train stage (benchmarks/epoch_profile.py) has a ceiling to compare with:
  tensorflow  model.compile(Adam, loss, ["accuracy"]) + model.fit(x, y, shuffle=True) on numpy
  jax         the Keras-documented custom loop: model.stateless_call inside jax.value_and_grad,
              optimizer.stateless_apply, the whole step under jax.jit with the state donated;
              numpy batches from a per-epoch permutation (full batches only).
Steady-state img/s leaves out the first epoch (compilation). The CLI builds the model with
build_model (weights none, default augmentation) on synthetic images whose class is learnable
(brighter than mid-grey or not) and logs img/s and the loss per epoch.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import keras
import numpy as np

log = logging.getLogger("benchmarks.loop_reference")


def _steady(epoch_seconds: list[float], images_per_epoch: int) -> float:
    timed = epoch_seconds[1:] or epoch_seconds  # one epoch only: compilation included
    return images_per_epoch * len(timed) / sum(timed)


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _tf_fit(model, x, y, batch_size, epochs, learning_rate, loss, seed) -> dict:
    keras.utils.set_random_seed(seed)  # fit's shuffle; note: also seeds Python's and numpy's globals
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=["accuracy"])
    timer = _EpochTimer()
    hist = model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=[timer])
    rate = _steady(timer.seconds, len(x))  # jit_compile: Keras' "auto" is False on a CPU-only TF
    return {
        "img_s": rate,
        "epoch_seconds": timer.seconds,
        "loss": hist.history["loss"],
        "path": "tf_fit",
        "jit_compile": bool(model.jit_compile),
    }


def _jax_jit(model, x, y, batch_size, epochs, learning_rate, loss, seed) -> dict:
    import jax

    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(model.trainable_variables)

    def compute_loss(trainable, non_trainable, xb, yb):
        # non_trainable holds BatchNorm statistics AND every SeedGenerator state (augmentation,
        # dropout): stateless_call returns their updated values, which the next step must get
        y_pred, non_trainable = model.stateless_call(trainable, non_trainable, xb, training=True)
        return loss(yb, y_pred), non_trainable

    grad_fn = jax.value_and_grad(compute_loss, has_aux=True)

    def train_step(state, xb, yb):
        trainable, non_trainable, opt_vars = state
        (value, non_trainable), grads = grad_fn(trainable, non_trainable, xb.astype("float32"), yb)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        return (trainable, non_trainable, opt_vars), value

    step = jax.jit(train_step, donate_argnums=0)  # the state's buffers are reused in place
    state = (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in optimizer.variables],
    )
    rng = np.random.default_rng(seed)
    n_batches = len(x) // batch_size
    seconds, losses = [], []
    for _ in range(epochs):
        start = time.perf_counter()
        order = rng.permutation(len(x))
        total = 0.0
        for b in range(n_batches):
            idx = np.sort(order[b * batch_size : (b + 1) * batch_size])  # sorted: faster gather
            state, value = step(state, x[idx], y[idx])
            total = total + value  # stays on the device: no sync per step
        jax.block_until_ready((state, total))
        seconds.append(time.perf_counter() - start)
        losses.append(float(total) / n_batches)
    owners = (model.trainable_variables, model.non_trainable_variables, optimizer.variables)
    for variables, values in zip(owners, state, strict=True):
        for v, value in zip(variables, values, strict=True):
            v.assign(value)
    rate = _steady(seconds, n_batches * batch_size)
    return {"img_s": rate, "epoch_seconds": seconds, "loss": losses, "path": "jax_jit"}


def plain_img_s(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    epochs: int,
    learning_rate: float,
    loss: keras.losses.Loss,
    seed: int = 0,
) -> dict:
    """Train `model` (uncompiled) `epochs` epochs on x (uint8 N,S,S,C) and one-hot y (float32 N,K).

    Returns {"img_s": steady-state img/s (epochs after the first), "epoch_seconds": [...],
    "loss": [mean training loss per epoch], "backend": ..., "path": "tf_fit" | "jax_jit"}.
    The model keeps the trained weights. No loss scaling: meant for float32 models (mixed_float16
    under JAX would need a LossScaleOptimizer, which TF's compile adds by itself).
    """
    backend = keras.backend.backend()
    loop = {"tensorflow": _tf_fit, "jax": _jax_jit}.get(backend)
    if loop is None:
        raise ValueError(f"no plain loop for the {backend} backend")
    return {**loop(model, x, y, batch_size, epochs, learning_rate, loss, seed), "backend": backend}


def learnable_images(n: int, size: int, channels: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 noise whose class is 'brighter than mid-grey' (one-hot float32 labels, 2 classes)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    base = np.where(labels == 1, 150, 60)[:, None, None, None]
    x = (base + rng.integers(0, 50, (n, size, size, channels))).astype(np.uint8)
    return x, np.eye(2, dtype=np.float32)[labels]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="baseline_cnn")
    parser.add_argument("--size", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=3, help="the first is warm-up (compilation)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from pipeline.config import TrainConfig
    from pipeline.models import build_model
    from pipeline.training.losses import make_loss

    cfg = TrainConfig(model=args.model, weights="none", batch_size=args.batch_size, epochs=args.epochs)
    model = build_model(cfg, (args.size, args.size, 3), 2)
    x, y = learnable_images(args.n, args.size)
    loss = make_loss(cfg.loss, cfg.label_smoothing)
    out = plain_img_s(model, x, y, args.batch_size, args.epochs, cfg.learning_rate, loss, seed=cfg.seed)
    x_val, y_val = learnable_images(512, args.size, seed=1)  # inference mode: BatchNorm's moving stats
    val_acc = float(np.mean(model.predict(x_val, batch_size=128, verbose=0).argmax(1) == y_val.argmax(1)))
    secs, losses = [round(s, 2) for s in out["epoch_seconds"]], [round(v, 4) for v in out["loss"]]
    log.info(
        "%s %s %dpx batch %d n %d: %.1f img/s (epochs %s s, loss %s, held-out accuracy %.3f)",
        *(out["path"], args.model, args.size, args.batch_size, args.n, out["img_s"], secs, losses, val_acc),
    )


if __name__ == "__main__":
    main()

"""PreciseBN: BatchNorm statistics re-estimated as the plain average over training batches."""

from __future__ import annotations

import keras
import numpy as np

from pipeline.config import TrainConfig
from pipeline.training import fit as fit_mod
from pipeline.training.checkpoints import CheckpointDir
from pipeline.training.data import ArrayBatches
from pipeline.training.precise_bn import PreciseBatchNorm, reestimate
from pipeline.training.selection import ValMetrics


def _bn_model(momentum=0.9):
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.BatchNormalization(momentum=momentum, name="bn")(inputs)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def test_statistics_become_the_mean_over_batches_and_momentum_is_kept():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 4, 4, 2)).astype(np.uint8)
    ds = ArrayBatches(images, np.arange(40) % 2, 2, batch_size=8, shuffle=True, seed=3)
    model = _bn_model()
    assert reestimate(model, ds, batches=3) == 3
    batches = [images[ds.batch_indices(k)].astype(np.float64) for k in range(3)]
    bn = model.get_layer("bn")
    want_mean = np.mean([b.mean(axis=(0, 1, 2)) for b in batches], axis=0)
    want_var = np.mean([b.var(axis=(0, 1, 2)) for b in batches], axis=0)
    np.testing.assert_allclose(bn.moving_mean.numpy(), want_mean, rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), want_var, rtol=1e-4)
    assert bn.momentum == 0.9
    # Keras' own moving average after the same 3 batches is far from it (starts at 0 / 1)
    other = _bn_model()
    for b in batches:
        other(b.astype(np.float32), training=True)
    assert not np.allclose(other.get_layer("bn").moving_mean.numpy(), want_mean, rtol=0.1)
    ds.close()


def test_fit_runs_it_before_validation_only_when_asked(tmp_path):
    def kinds(cfg):
        ds = ArrayBatches(np.zeros((8, 4, 4, 1), np.uint8), np.arange(8) % 2, 2, batch_size=4)
        phase = fit_mod.Phase("train", 0, cfg.epochs, cfg.learning_rate, None)
        try:
            return [type(c) for c in fit_mod._callbacks(cfg, phase, CheckpointDir(tmp_path), ds, ds, None)]
        finally:
            ds.close()

    assert PreciseBatchNorm not in kinds(TrainConfig())
    assert kinds(TrainConfig(precise_bn_batches=4))[0] is PreciseBatchNorm


def test_the_validation_pass_of_fit_uses_the_reestimated_statistics():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (64, 8, 8, 1)).astype(np.uint8), np.arange(64) % 2
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, use_bias=False)(keras.layers.Rescaling(1 / 255)(inputs))
    h = keras.layers.ReLU()(keras.layers.BatchNormalization(momentum=0.9, name="bn")(h))
    model = keras.Model(
        inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(h))
    )
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    train, val = ArrayBatches(x, y, 2, 16, shuffle=True, seed=1), ArrayBatches(x[:24], y[:24], 2, 16)
    # fit's order: PreciseBN, then the one validation pass (ValMetrics), both at the epoch's end
    callbacks = [PreciseBatchNorm(train, 2), ValMetrics(val, keras.losses.CategoricalCrossentropy())]
    history = model.fit(train, epochs=2, verbose=0, callbacks=callbacks)
    stats = model.get_layer("bn").moving_mean.numpy().copy()
    reestimate(model, train, 2)  # same weights, same batches: the same statistics again
    np.testing.assert_allclose(model.get_layer("bn").moving_mean.numpy(), stats, rtol=1e-5)
    # ValMetrics' one pass reports what Keras' own validation pass (evaluate) gives: a short last batch
    loss, accuracy = model.evaluate(val, verbose=0)
    assert np.isclose(history.history["val_loss"][-1], loss, rtol=1e-5)
    assert np.isclose(history.history["val_accuracy"][-1], accuracy)
    train.close()
    val.close()

"""PreciseBN: BatchNorm statistics re-estimated under the weights that are about to be validated.

A BatchNorm layer's moving mean/variance are an exponential average over the last ~10 training
steps (momentum 0.9), each taken under different weights. At a high learning rate that lag makes
the inference-mode network a different function from the one being trained, so val metrics swing
from one epoch to the next while training accuracy is steady (figures in
benchmarks/results/figures.md). Before each validation pass of `fit` this callback sets every
trainable BatchNorm layer's statistics to the plain average of the batch statistics of `batches`
training batches under the current weights (Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm",
PreciseBN). The checkpoint saved after that validation carries the statistics it was validated with.
"""

from __future__ import annotations

import keras

from pipeline.models.symmetry import walk_layers
from pipeline.training.data import ArrayBatches


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    return [
        layer
        for layer in walk_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    ]


def reestimate(model: keras.Model, train_ds: ArrayBatches, batches: int) -> int:
    """Average the batch statistics of the first `batches` batches of train_ds's current epoch into
    every trainable BatchNorm layer (moving = mean over batches). Returns the batches used."""
    layers = batchnorm_layers(model)
    n = min(batches, len(train_ds))
    if not layers or n == 0:
        return 0
    momenta = [layer.momentum for layer in layers]
    order = train_ds.order.copy()
    try:
        for k in range(n):
            for layer in layers:  # moving = moving * k/(k+1) + batch / (k+1): the running mean
                layer.momentum = k / (k + 1)
            model(train_ds.gather(k, order)[0], training=True)
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
    return n


class PreciseBatchNorm(keras.callbacks.Callback):
    """Re-estimate BatchNorm statistics before every validation pass of fit (on_test_begin)."""

    def __init__(self, train_ds: ArrayBatches, batches: int):
        super().__init__()
        self.train_ds = train_ds
        self.batches = batches

    def on_test_begin(self, logs=None):
        reestimate(self.model, self.train_ds, self.batches)

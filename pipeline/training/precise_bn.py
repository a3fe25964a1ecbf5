"""PreciseBN: BatchNorm statistics re-estimated under the weights that are about to be validated.

A BatchNorm layer's moving mean/variance are an exponential average over the last ~10 training
steps (momentum 0.9), each taken under different weights. At a high learning rate that lag makes
the inference-mode network a different function from the one being trained, so val metrics swing
from one epoch to the next while training accuracy is steady (figures in
benchmarks/results/figures.md). Before each validation pass of `fit` this callback sets every
trainable BatchNorm layer's statistics to the plain average of the batch statistics of `batches`
training batches under the current weights (Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm",
PreciseBN). The checkpoint saved after that validation carries the statistics it was validated with.

Each batch runs the training-mode forward pass compiled (pipeline.training.compiled) with momentum
0, so the layer holds that batch's statistics; their plain mean is written back at the end.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from pipeline.models.symmetry import walk_layers
from pipeline.training.compiled import training_forward
from pipeline.training.data import ArrayBatches


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    return [
        layer
        for layer in walk_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    ]


def reestimate(
    model: keras.Model, train_ds: ArrayBatches, batches: int, forward: Callable | None = None
) -> int:
    """Set every trainable BatchNorm layer's statistics to the mean of the batch statistics of the
    first `batches` batches of train_ds's current epoch. `forward` is `training_forward(model)`
    traced with momentum 0 (made here when None). Returns the batches used."""
    layers = batchnorm_layers(model)
    n = min(batches, len(train_ds))
    if not layers or n == 0:
        return 0
    momenta = [layer.momentum for layer in layers]
    order = train_ds.order.copy()
    sums = [np.zeros((2, *layer.moving_mean.shape), np.float64) for layer in layers]
    try:
        for layer in layers:  # moving = batch statistics: the pass leaves each batch's own
            layer.momentum = 0.0
        forward = forward or training_forward(model)
        for k in range(n):
            forward(train_ds.gather(k, order)[0])
            for total, layer in zip(sums, layers, strict=True):
                total[0] += keras.ops.convert_to_numpy(layer.moving_mean)
                total[1] += keras.ops.convert_to_numpy(layer.moving_variance)
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
    for total, layer in zip(sums, layers, strict=True):
        layer.moving_mean.assign(total[0] / n)
        layer.moving_variance.assign(total[1] / n)
    return n


class PreciseBatchNorm(keras.callbacks.Callback):
    """Re-estimate BatchNorm statistics at each epoch end, before ValMetrics validates (so it must
    come before ValMetrics in the callback list). fit builds one per phase, and so one compiled
    pass per phase: which layers train (a frozen backbone's do not) is fixed when it is traced."""

    def __init__(self, train_ds: ArrayBatches, batches: int):
        super().__init__()
        self.train_ds = train_ds
        self.batches = batches
        self._forward: Callable | None = None

    def on_epoch_end(self, epoch, logs=None):
        if self._forward is None:
            self._forward = training_forward(self.model)
        reestimate(self.model, self.train_ds, self.batches, self._forward)

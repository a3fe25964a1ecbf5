"""From-scratch CNNs for small images: the TB document's tuned baseline and a small ResNet.

Both take the backbone input already rescaled to [0, 1] and return pooled features;
`pipeline.models.build_model` adds input, augmentation, rescaling and the softmax head.
"""

from __future__ import annotations

import keras
from keras import layers

# Batch-norm moving averages at PyTorch's rate (0.1 per step). Keras' default 0.99 needs ~500
# steps to forget its initial statistics; a 1,000-image set at batch 32 trains 30 steps an epoch,
# so val/test would run on stale statistics (figures: benchmarks/results/figures.md).
BN_MOMENTUM = 0.9


def baseline_cnn_features(x):
    """3 conv blocks (Conv2D + BatchNorm + ReLU + MaxPool; 32/64/128 filters), global average pooling.

    BatchNorm is what lets the defaults learn low-contrast histology at all: without it the sample's
    default `dvc repro` (Adam 1e-3, flips + quarter turns + zoom, class weights) keeps a constant
    prediction; with it the default model learns the sample from its first epoch (figures in
    benchmarks/results/figures.md; test_default_learns.py guards this).
    """
    for i, filters in enumerate((32, 64, 128), start=1):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{i}_conv")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"block{i}_bn")(x)
        x = layers.ReLU(name=f"block{i}_relu")(x)
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    return layers.GlobalAveragePooling2D(name="gap")(x)


def _residual_block(x, filters: int, stride: int, name: str):
    shortcut = x
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn2")(y)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_proj_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_out")(y)


def small_resnet_features(
    x, widths: tuple[int, ...] = (32, 64, 128), blocks_per_stage: int = 2, stem_stride: int = 1
):
    """ResNet-style CNN for 28-128 px inputs: BN stem, 3 stages of basic blocks, GAP.

    stem_stride 2 runs every stage at half the input's side: ~4x fewer FLOPs, so a 128 px film costs
    about what a 64 px one does at stride 1 (throughput in benchmarks/results/figures.md).
    """
    x = layers.Conv2D(widths[0], 3, strides=stem_stride, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for s, filters in enumerate(widths, start=1):
        for b in range(blocks_per_stage):
            stride = 2 if (s > 1 and b == 0) else 1
            x = _residual_block(x, filters, stride, name=f"stage{s}_block{b + 1}")
    return layers.GlobalAveragePooling2D(name="gap")(x)


def rescale_unit() -> keras.layers.Layer:
    """uint8-range input -> [0, 1]."""
    return layers.Rescaling(1.0 / 255, name="rescale")

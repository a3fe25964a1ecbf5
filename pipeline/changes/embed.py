"""The champion's penultimate-layer embeddings: what its classifier head sees of an image.

A Keras sub-model from the champion's inputs to the input of its last layer (the classifier head;
for a Sequential model the output of the layer before it). Augmentation layers are inactive at
inference, so the embedding of an image is deterministic. Batched, with a progress bar.
"""

from __future__ import annotations

import logging

import keras
import numpy as np
from tqdm import tqdm

log = logging.getLogger(__name__)


def penultimate(model: keras.Model) -> keras.Model:
    """The sub-model up to the layer before the classifier head (an ensemble: its members' average
    is the head, so the features feeding it are concatenated)."""
    head = model.layers[-1]
    features = head.input
    if isinstance(features, list | tuple):
        features = keras.layers.Concatenate()(list(features))
    return keras.Model(model.inputs, features, name=f"{model.name}_embedding")


def embed(sub: keras.Model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Float32 (N, D) embeddings of uint8 images (N, S, S, C), flattened per image."""
    parts = []
    for start in tqdm(range(0, len(images), batch_size), desc="embed", leave=False, disable=None):
        batch = np.asarray(images[start : start + batch_size], np.float32)
        parts.append(np.asarray(sub.predict_on_batch(batch), np.float32).reshape(len(batch), -1))
    if not parts:
        return np.zeros((0, int(np.prod(sub.output.shape[1:]))), np.float32)
    return np.concatenate(parts)

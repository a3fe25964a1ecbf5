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


def with_output(model: keras.Model) -> keras.Model:
    """One pass, two outputs: the embedding and the model's own softmax (scoring without TTA is
    `predict_images`' single view: the same float32 batch through the same network)."""
    sub = penultimate(model)
    head = model.layers[-1].output  # a loaded Sequential has no model.output until called
    return keras.Model(model.inputs, [sub.outputs[0], head], name=f"{model.name}_embedding_and_output")


def _batches(images: np.ndarray, batch_size: int):
    """float32 batches of a fixed shape (the last one padded), so the predict function traces once."""
    for start in tqdm(range(0, len(images), batch_size), desc="embed", leave=False, disable=None):
        batch = np.asarray(images[start : start + batch_size], np.float32)
        n = len(batch)
        if n < batch_size and len(images) > batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - n, *batch.shape[1:]), np.float32)])
        yield n, batch


def embed(
    sub: keras.Model, images: np.ndarray, batch_size: int = 256
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Float32 (N, D) embeddings of uint8 images (N, S, S, C), flattened per image; for a
    `with_output` model, (embeddings, probabilities (N, K) float64)."""
    feats, probs = [], []
    for n, batch in _batches(images, batch_size):
        out = sub.predict_on_batch(batch)
        if isinstance(out, list | tuple):
            probs.append(np.asarray(out[1], np.float64)[:n])
            out = out[0]
        feats.append(np.asarray(out, np.float32)[:n].reshape(n, -1))
    width = int(np.prod(sub.outputs[0].shape[1:]))
    emb = np.concatenate(feats) if feats else np.zeros((0, width), np.float32)
    if len(sub.outputs) == 1:
        return emb
    k = int(sub.outputs[1].shape[-1])
    return emb, (np.concatenate(probs) if probs else np.zeros((0, k)))

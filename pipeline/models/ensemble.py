"""Seed ensembles (train.ensemble: N): one keras.Model whose output is the mean of N members.

The members keep their own layers (augmentation included, inactive at inference), so the saved
model.keras is one file that predicts like the average of the N trained models; TTA looks inside
the members for the symmetries they were trained with (pipeline.models.symmetry).
"""

from __future__ import annotations

import keras


def average(members: list[keras.Model], name: str) -> keras.Model:
    """One model: image -> mean of the members' softmax outputs (a single member is returned as is)."""
    if len(members) == 1:
        return members[0]
    inputs = keras.Input(shape=members[0].input_shape[1:], name="image")
    for i, member in enumerate(members, start=1):
        member.name = f"member{i}"  # unique names inside the saved model
    outputs = keras.layers.Average(name="ensemble_mean", dtype="float32")([m(inputs) for m in members])
    return keras.Model(inputs, outputs, name=name)


def members(model: keras.Model) -> list[keras.Model]:
    """The sub-models of an ensemble built by `average` (the model itself otherwise)."""
    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return inner if any(layer.name == "ensemble_mean" for layer in model.layers) else [model]

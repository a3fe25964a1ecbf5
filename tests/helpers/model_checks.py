"""A model from the zoo builds without weights and returns softmax rows on a random uint8 batch."""

from __future__ import annotations

import numpy as np

from pipeline.config import TrainConfig
from pipeline.models import build_model


def assert_builds_and_predicts(name: str, side: int = 32) -> None:
    model = build_model(TrainConfig(model=name, weights="none"), (side, side, 3), 2)
    batch = np.random.default_rng(0).integers(0, 256, (3, side, side, 3)).astype(np.float32)
    probs = model.predict_on_batch(batch)
    assert probs.shape == (3, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)

"""Real champion re-scoring: a tiny Keras model round-trips through MLflow and score_model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from helpers.register_inputs import INPUTS, OUTPUTS, cfg, metrics, write_register_inputs


def _write_split(root: Path, split: str, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        path = f"data/raw/{split}{seed}/img{i}.png"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / path), rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
        digest = hashlib.sha256((root / path).read_bytes()).hexdigest()
        rows.append({"path": path, "sha256": digest, "label": i % 2, "patient_id": f"p{i}"})
    pd.DataFrame(rows).to_csv(root / "data/splits" / f"{split}.csv", index=False)


def test_champion_is_rescored_with_the_real_scorer(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    from pipeline.stages import register

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{in_tmp / 'mlflow.db'}")
    monkeypatch.delenv("MEDPIPE_LINEAGE_DB", raising=False)
    write_register_inputs(in_tmp, metrics(0.65))  # above the gate floor (roc_auc > 0.6)
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2, "softmax")]
    )
    model.save(in_tmp / "models" / "model.keras")
    label_map = {
        "classes": ["neg", "pos"],
        "positive": "pos",
        "image_size": 8,
        "channels": 3,
        "format": "idc",
    }
    (in_tmp / "models" / "label_map.json").write_text(json.dumps(label_map))
    for split, seed in (("val", 1), ("test", 2)):
        _write_split(in_tmp, split, 8, seed)
    assert register.run(cfg(), INPUTS, OUTPUTS)["gate"]["promote"]

    _write_split(in_tmp, "test", 10, 3)  # a new frozen test manifest: the champion must be re-scored
    rec = register.run(cfg(), INPUTS, OUTPUTS)
    gate = rec["gate"]
    assert gate["champion_rescored"] and gate["champion_version"] == "1"
    assert gate["champion_metrics"]["n_test"] == 10
    assert 0.0 <= gate["champion_metrics"]["roc_auc"] <= 1.0

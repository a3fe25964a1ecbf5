"""Shared helpers (not tests) for test_register*, test_lineage*, test_gate*: a tiny fake project, no TensorFlow."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import yaml

from pipeline import config
from pipeline.config import Config

INPUTS = {
    "model": Path("models"),
    "metrics": Path("reports/metrics.json"),
    "splits": Path("data/splits"),
}
OUTPUTS = {"record": Path("reports/registered.json"), "page": Path("reports/registered.html")}
# files under a registered version's model/artifacts/ (the pyfunc model's artifacts)
MODEL_ARTIFACTS = {"model.keras", "label_map.json", "train_summary.json", "serving.json"}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def write_register_inputs(
    root: Path, metrics: dict, test_images: int = 4, model_bytes: bytes | None = None
) -> None:
    """models/, reports/metrics.json, data/splits/*.csv and a dvc.lock under root. The fake model's
    bytes follow the metrics unless given: other metrics, other model (an equal one is a twin)."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    fake = b"fake-keras " + json.dumps(metrics, sort_keys=True).encode()
    (root / "models" / "model.keras").write_bytes(fake if model_bytes is None else model_bytes)
    (root / "models" / "label_map.json").write_text(
        json.dumps({"classes": ["neg", "pos"], "positive": "pos", "image_size": 8, "channels": 3})
    )
    (root / "models" / "train_summary.json").write_text(json.dumps({"epochs": 1}))
    splits = root / "data" / "splits"
    splits.mkdir(parents=True, exist_ok=True)
    sizes = {"train": 6, "val": 3, "test": test_images}
    for split, n in sizes.items():
        paths = [f"data/raw/{split}/img{i}.png" for i in range(n)]
        df = pd.DataFrame(
            {"path": paths, "sha256": [sha(p) for p in paths], "label": [i % 2 for i in range(n)]}
        )
        df.to_csv(splits / f"{split}.csv", index=False)
    (root / "reports").mkdir(exist_ok=True)
    (root / "reports" / "metrics.json").write_text(json.dumps(metrics))
    lock = {
        "schema": "2.0",
        "stages": {
            "ingest": {
                "cmd": "medpipe stage ingest",
                "outs": [{"path": "data/raw", "hash": "md5", "md5": "a" * 32 + ".dir"}],
            },
            "split": {
                "cmd": "medpipe stage split",
                "deps": [{"path": "data/interim/validated.csv", "md5": "b" * 32}],
                "outs": [{"path": "data/splits", "md5": "c" * 32 + ".dir"}],
            },
        },
    }
    (root / "dvc.lock").write_text(yaml.safe_dump(lock))


def metrics(roc_auc: float, sensitivity: float = 0.8) -> dict:
    return {
        "accuracy": 0.8,
        "balanced_accuracy": 0.75,
        "roc_auc": roc_auc,
        "sensitivity": sensitivity,
        "specificity": 0.7,
        "n_test": 4,
        "roc_auc_ci_lo": 0.1,
        "roc_auc_ci_hi": 0.9,
    }


def cfg(**registry) -> Config:
    return config.from_dict({"registry": {"model_name": "m", **registry}})

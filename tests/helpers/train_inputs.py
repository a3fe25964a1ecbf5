"""Train-stage inputs: tiny synthetic images, balanced/split manifests, class weights and labels,
preprocessed into data/preprocessed by the real preprocess stage; the stage's output paths; a tiny config."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from pipeline import config


def write_images(root: Path, n: int, n_classes: int = 2, size: int = 24, seed: int = 0, split: str = "train"):
    """Class c: noisy background + a bright square whose position depends on c (learnable)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = i % n_classes
        img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        q = size // 3
        r0, c0 = (label * q) % (size - q), (label * 2 * q) % (size - q)
        img[r0 : r0 + q, c0 : c0 + q] = 200 + rng.integers(0, 55)
        path = root / f"{split}_{i:04d}_c{label}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), img)
        rows.append(
            {"path": path.as_posix(), "label": label, "class_name": f"c{label}", "patient_id": f"p{i}"}
        )
    return pd.DataFrame(rows)


def preprocess(root: Path, image_size: int = 24, channels: int = 3) -> Path:
    """Run the preprocess stage on root's data/balanced + data/splits -> root/data/preprocessed."""
    from pipeline.stages import preprocess as stage

    cfg = config.from_dict({"preprocess": {"image_size": image_size, "channels": channels}})
    out = root / "data/preprocessed"
    stage.run(
        cfg, {"balanced": root / "data/balanced", "splits": root / "data/splits"}, {"preprocessed": out}
    )
    return out


def write_train_inputs(
    root: Path,
    n_train: int = 32,
    n_val: int = 12,
    n_classes: int = 2,
    weights: dict | None = None,
    image_size: int = 24,
) -> dict[str, Path]:
    """data/balanced/{train.csv,class_weights.json}, data/splits/{val,test}.csv, labels.json under
    cwd, preprocessed at `image_size` into data/preprocessed; returns the train stage's inputs."""
    (root / "data/balanced").mkdir(parents=True)
    (root / "data/splits").mkdir(parents=True)
    write_images(Path("data/img"), n_train, n_classes, seed=1).to_csv(
        root / "data/balanced/train.csv", index=False
    )
    write_images(Path("data/img"), n_val, n_classes, seed=2, split="val").to_csv(
        root / "data/splits/val.csv", index=False
    )
    write_images(Path("data/img"), 6, n_classes, seed=3, split="test").to_csv(
        root / "data/splits/test.csv", index=False
    )
    w = weights or {str(c): 1.0 for c in range(n_classes)}
    (root / "data/balanced/class_weights.json").write_text(json.dumps({"strategy": "none", "weights": w}))
    labels = {"format": "idc", "classes": [f"c{c}" for c in range(n_classes)], "positive": "c1"}
    (root / "data/labels.json").write_text(json.dumps(labels))
    preprocess(root, image_size)
    return {
        "preprocessed": Path("data/preprocessed"),
        "balanced": Path("data/balanced"),
        "splits": Path("data/splits"),  # not read by train; tests compare predictions on val.csv
        "labels": Path("data/labels.json"),
    }


def outputs_in(root: Path, tag: str = "") -> dict[str, Path]:
    return {
        "model": root / f"models{tag}",
        "history": root / f"reports{tag}/train/history.csv",
        "checkpoints": root / f"checkpoints{tag}",
    }


def tiny_cfg(image_size: int = 24, **train) -> config.Config:
    raw = {
        "preprocess": {"image_size": image_size, "channels": 3},
        "train": {"epochs": 2, "batch_size": 8, "early_stopping_patience": 5, **train},
    }
    return config.from_dict(raw)

"""Evaluate-stage inputs: a tiny hand-set Keras model that scores brightness, synthetic PNG patches in
train/val/test manifests, preprocessed arrays, models/ and a history, under the working directory."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd

from pipeline import config
from pipeline.stages import preprocess

SIZE = 8


def brightness_model(n_classes: int = 2, k: float = 6.0) -> keras.Model:
    """P(class 1) = sigmoid(2k (mean intensity - 0.5)) for 2 classes; argmax of channel means for 3."""
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(n_classes, activation="softmax"),
        ]
    )
    if n_classes == 2:
        weights = np.array([[-k / 3, k / 3]] * 3, np.float32)
        bias = np.array([k / 2, -k / 2], np.float32)
    else:
        weights, bias = np.eye(3, dtype=np.float32) * 2 * k, np.zeros(3, np.float32)
    model.layers[-1].set_weights([weights, bias])
    return model


def write_split(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def write_evaluate_inputs(root: Path, n_classes: int = 2, seed: int = 0) -> tuple[dict, dict]:
    """Images, split manifests, models/ and history under root (the cwd); returns inputs, outputs."""
    rng = np.random.default_rng(seed)
    classes = ["non_idc", "idc"] if n_classes == 2 else ["normal", "bacteria", "virus"]
    plan = {"train": (4, 6), "val": (6, 6), "test": (6, 8)}
    for split, (n_patients, per_patient) in plan.items():
        rows = []
        for p in range(n_patients):
            pid = f"{split}{p}"
            for j in range(per_patient):
                if n_classes == 2:
                    label = 0 if p < 2 else int(rng.random() < 0.5)  # two all-negative patients
                    img = rng.normal(100 + 50 * label + rng.normal(0, 30), 20, (SIZE, SIZE, 3))
                else:
                    label = int((p + j) % 3)
                    img = rng.normal(60, 15, (SIZE, SIZE, 3))
                    img[..., label] += rng.normal(70, 30)
                path = Path("images") / f"{pid}_{j}.png"
                path.parent.mkdir(exist_ok=True)
                cv2.imwrite(str(path), np.clip(img, 0, 255).astype(np.uint8)[..., ::-1])
                rows.append(
                    {
                        "path": str(path),
                        "label": label,
                        "class_name": classes[label],
                        "patient_id": pid,
                        "x": 50 * (j % 4) + 1,
                        "y": 50 * (j // 4) + 1,
                        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                        "split": split,
                    }
                )
        write_split(rows, root / "data" / "splits" / f"{split}.csv")
    splits = root / "data" / "splits"
    pre_cfg = config.from_dict({"preprocess": {"image_size": SIZE, "channels": 3}})
    preprocess.run(
        pre_cfg, {"balanced": splits, "splits": splits}, {"preprocessed": root / "data/preprocessed"}
    )
    models = root / "models"
    models.mkdir()
    brightness_model(n_classes).save(models / "model.keras")
    label_map = {
        "classes": classes,
        "positive": "idc" if n_classes == 2 else None,
        "image_size": SIZE,
        "channels": 3,
        "format": "idc" if n_classes == 2 else "chest_xray",
    }
    (models / "label_map.json").write_text(json.dumps(label_map))
    summary = {
        "epochs_run": 2,
        "best_epoch": 2,
        "n_train": 24,
        "params": {"train": {"model": "baseline_cnn"}},
    }
    (models / "train_summary.json").write_text(json.dumps(summary))
    history = root / "reports" / "train" / "history.csv"
    history.parent.mkdir(parents=True)
    pd.DataFrame(
        {
            "epoch": [1, 2],
            "loss": [0.7, 0.5],
            "val_loss": [0.72, 0.6],
            "accuracy": [0.55, 0.7],
            "val_accuracy": [0.5, 0.66],
        }
    ).to_csv(history, index=False)
    inputs = {
        "model": Path("models"),
        "preprocessed": Path("data/preprocessed"),
        "history": Path("reports/train/history.csv"),
    }
    outputs = {
        "metrics": Path("reports/metrics.json"),
        "diagnostics": Path("reports/diagnostics.json"),
        "plots": Path("reports/eval"),
        "report": Path("reports/report.html"),
    }
    return inputs, outputs


def small_cfg(**evaluate_params) -> config.Config:
    return config.from_dict({"evaluate": {"bootstrap": 20, **evaluate_params}})

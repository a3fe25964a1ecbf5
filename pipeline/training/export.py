"""Write the train stage's outputs atomically: models/ (model.keras, label_map.json,
train_summary.json) and the history CSV (epoch, loss, val_loss, accuracy, val_accuracy, learning_rate).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import keras
import pandas as pd

from pipeline.core.manifest import write, write_json

HISTORY_COLUMNS = [
    "epoch", "loss", "val_loss", "accuracy", "val_accuracy", "val_auc", "val_balanced_accuracy", "learning_rate",
]  # fmt: skip
MODEL_FILE = "model.keras"
LABEL_MAP_FILE = "label_map.json"
SUMMARY_FILE = "train_summary.json"


def history_table(raw: pd.DataFrame) -> pd.DataFrame:
    """CSVLogger rows (0-based epoch) -> the DVC plot table with 1-based epochs."""
    df = raw.copy()
    df["epoch"] = df["epoch"].astype(int) + 1
    if "learning_rate" not in df.columns and "lr" in df.columns:
        df["learning_rate"] = df["lr"]
    for col in HISTORY_COLUMNS:
        if col not in df.columns:
            df[col] = float("nan")
    return df[HISTORY_COLUMNS]


def as_float32(model: keras.Model, rebuild: Callable[[], keras.Model]) -> keras.Model:
    """The model as it should be saved: float32 compute everywhere.

    A GPU run trains under mixed_float16 and its layers record that policy in model.keras, so a CPU
    evaluate/serve would compute in float16. `rebuild` is the pure model builder (same architecture);
    the clone is built under float32 and takes the trained weights (float32 variables either way).
    """
    if model.dtype_policy.name == "float32":
        return model
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        clone = rebuild()
    finally:
        keras.mixed_precision.set_global_policy(previous)
    clone.set_weights(model.get_weights())
    return clone


def write_model_dir(model: keras.Model, label_map: dict, summary: dict, out_dir: Path) -> Path:
    """Build the model directory beside its target, then swap it in (no partial models/)."""
    out_dir = Path(out_dir)
    staging = out_dir.with_name(out_dir.name + ".tmp")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        model.save(staging / MODEL_FILE)
        write_json(label_map, staging / LABEL_MAP_FILE)
        write_json(summary, staging / SUMMARY_FILE)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out_dir


def write_history(history: pd.DataFrame, path: Path) -> Path:
    return write(history_table(history), path)

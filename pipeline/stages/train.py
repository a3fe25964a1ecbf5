"""train stage: balanced train manifest + val split -> models/ (model.keras, label_map.json,
train_summary.json), reports/train/history.csv; resumable through checkpoints/.

Inputs: balanced (dir with train.csv, class_weights.json), splits (dir with val.csv), labels.json.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import pandas as pd

from pipeline import manifest
from pipeline.config import Config
from pipeline.errors import DataError
from pipeline.models import build_model
from pipeline.training import checkpoints, export
from pipeline.training.data import ManifestDataset
from pipeline.training.fit import fit
from pipeline.training.losses import load_class_weights
from pipeline.training.runtime import configure

log = logging.getLogger(__name__)


def _read_split(path: Path, n_classes: int) -> pd.DataFrame:
    df = manifest.read(path, required=["path", "label"])
    if df.empty:
        raise DataError(f"{path} has no rows; check the split/balance stages")
    if df["label"].isna().any() or not df["label"].between(0, n_classes - 1).all():
        raise DataError(f"{path} has labels outside 0..{n_classes - 1} (labels.json lists {n_classes})")
    missing = [p for p in df["path"] if not Path(p).is_file()]
    if missing:
        raise DataError(
            f"{path}: {len(missing)} image(s) missing, e.g. {missing[0]}; run from the project root "
            "or re-run the stages that write them"
        )
    return df


def _labels(path: Path) -> dict:
    doc = manifest.read_json(path)
    classes = doc.get("classes")
    if not isinstance(classes, list) or len(classes) < 2:
        raise DataError(f"{path} must list at least 2 'classes'; re-run the regroup stage")
    return doc


def _datasets(cfg: Config, train_df: pd.DataFrame, val_df: pd.DataFrame, n_classes: int):
    size, channels = cfg.preprocess.image_size, cfg.preprocess.channels
    budget = cfg.train.cache_mb * 2**20
    common = dict(image_size=size, channels=channels, batch_size=cfg.train.batch_size)
    train_ds = ManifestDataset.from_manifest(
        train_df, n_classes, shuffle=True, seed=cfg.train.seed, cache_bytes=budget, **common
    )
    used = 0 if train_ds.cache is None else train_ds.cache.nbytes
    val_ds = ManifestDataset.from_manifest(val_df, n_classes, cache_bytes=budget - used, **common)
    return train_ds, val_ds


def train(cfg: Config, inputs: dict[str, Path], outputs: dict[str, Path], callbacks: tuple = ()) -> dict:
    """The stage body; `callbacks` are extra Keras callbacks (tests use them to simulate a kill)."""
    started = time.perf_counter()
    labels = _labels(inputs["labels"])
    n_classes = len(labels["classes"])
    train_csv, val_csv = Path(inputs["balanced"]) / "train.csv", Path(inputs["splits"]) / "val.csv"
    weights_json = Path(inputs["balanced"]) / "class_weights.json"
    train_df, val_df = _read_split(train_csv, n_classes), _read_split(val_csv, n_classes)
    class_weight = load_class_weights(weights_json, n_classes)

    runtime = configure(cfg.train.seed)
    params = {"train": dataclasses.asdict(cfg.train), "preprocess": dataclasses.asdict(cfg.preprocess)}
    ckpt = checkpoints.CheckpointDir(outputs["checkpoints"])
    resumed = ckpt.prepare(
        checkpoints.fingerprint(params, [train_csv, val_csv, weights_json, inputs["labels"]])
    )

    train_ds, val_ds = _datasets(cfg, train_df, val_df, n_classes)
    shape = (cfg.preprocess.image_size, cfg.preprocess.image_size, cfg.preprocess.channels)
    with runtime.scope():
        model = build_model(cfg.train, shape, n_classes)
    timer = fit(model, train_ds, val_ds, cfg.train, ckpt, runtime, class_weight, callbacks)

    history = ckpt.read_history()
    table = export.history_table(history)
    best = table.loc[table["val_loss"].idxmin()] if table["val_loss"].notna().any() else table.iloc[-1]
    img_s = timer.images_per_second()
    summary = {
        "epochs_run": int(table["epoch"].max()),
        "epochs_this_run": timer.epochs,
        "resumed": resumed,
        "best_epoch": int(best["epoch"]),
        "best_val_loss": float(best["val_loss"]),
        "best_val_accuracy": float(best["val_accuracy"]),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "train_images_per_second": round(img_s, 1) if img_s else None,
        "n_train": len(train_df),
        "n_val": len(val_df),
        "class_weight": class_weight,
        "cached_in_ram": train_ds.cache is not None,
        **runtime.summary(),
        "params": params,
    }
    label_map = {
        "classes": labels["classes"],
        "positive": labels.get("positive"),
        "format": labels.get("format"),
        "image_size": cfg.preprocess.image_size,
        "channels": cfg.preprocess.channels,
    }
    model = export.as_float32(model, lambda: build_model(cfg.train, shape, n_classes))
    export.write_model_dir(model, label_map, summary, outputs["model"])
    export.write_history(history, outputs["history"])
    ckpt.clear()  # finished: the next run trains afresh
    log.info(
        "trained %s: best epoch %d val_loss %.4f val_acc %.3f (%s img/s)",
        cfg.train.model,
        summary["best_epoch"],
        summary["best_val_loss"],
        summary["best_val_accuracy"],
        summary["train_images_per_second"],
    )
    return {k: summary[k] for k in ("epochs_run", "best_epoch", "best_val_loss", "train_images_per_second")}


def run(cfg: Config, inputs: dict[str, Path], outputs: dict[str, Path]) -> dict:
    return train(cfg, inputs, outputs)

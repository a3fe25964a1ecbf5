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

from pipeline import manifest, tracking
from pipeline.config import Config
from pipeline.errors import ConfigError, DataError
from pipeline.models import applications, build_model, ensemble
from pipeline.training import checkpoints, export
from pipeline.training.data import ManifestDataset
from pipeline.training.fit import fit
from pipeline.training.losses import load_class_weights
from pipeline.training.runtime import configure
from pipeline.training.selection import best_row, monitor_of, selection_start

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


def resume_exact(members: list[dict]) -> bool | None:
    """None: nothing resumed; False: some member resumed without its RNG state; True: exact."""
    flags = [m["resume_exact"] for m in members if m["resumed"]]
    return all(flags) if flags else None


def train(cfg: Config, inputs: dict[str, Path], outputs: dict[str, Path], callbacks: tuple = ()) -> dict:
    """The stage body; `callbacks` are extra Keras callbacks (tests use them to simulate a kill)."""
    started = time.perf_counter()
    labels = _labels(inputs["labels"])
    n_classes = len(labels["classes"])
    train_csv, val_csv = Path(inputs["balanced"]) / "train.csv", Path(inputs["splits"]) / "val.csv"
    weights_json = Path(inputs["balanced"]) / "class_weights.json"
    train_df, val_df = _read_split(train_csv, n_classes), _read_split(val_csv, n_classes)
    class_weight = load_class_weights(weights_json, n_classes)

    params = {"train": dataclasses.asdict(cfg.train), "preprocess": dataclasses.asdict(cfg.preprocess)}
    fp_files = [train_csv, val_csv, weights_json, inputs["labels"]]
    train_ds, val_ds = _datasets(cfg, train_df, val_df, n_classes)
    shape = (cfg.preprocess.image_size, cfg.preprocess.image_size, cfg.preprocess.channels)
    monitor, mode = monitor_of(cfg.train, n_classes)
    n_members = cfg.train.ensemble
    if n_members < 1:
        raise ConfigError(f"train.ensemble is {n_members}; use 1 (one model) or N > 1 seeds to average")
    models, members, histories = [], [], []
    for k in range(n_members):  # member k trains with seed + k; each resumes from its own checkpoints
        tcfg = dataclasses.replace(cfg.train, seed=cfg.train.seed + k)
        root = Path(outputs["checkpoints"]) / (f"member{k + 1}" if n_members > 1 else "")
        ckpt = checkpoints.CheckpointDir(root)
        resumed = ckpt.prepare(checkpoints.fingerprint({**params, "member_seed": tcfg.seed}, fp_files))
        runtime = configure(tcfg.seed)
        train_ds.seed = tcfg.seed
        with runtime.scope():
            model = build_model(tcfg, shape, n_classes)
        timer = fit(model, train_ds, val_ds, tcfg, ckpt, runtime, class_weight, callbacks)
        history = ckpt.read_history()
        table = export.history_table(history)
        best = best_row(table, monitor, mode, selection_start(tcfg))
        members.append(
            {
                "seed": tcfg.seed,
                "resumed": resumed,
                "resume_exact": all(timer.resumes.values()) if resumed else None,
                "epochs_run": int(table["epoch"].max()),
                "best_epoch": int(best["epoch"]),
                f"best_{monitor}": float(best[monitor]),
                "images_per_second": timer.images_per_second(),
            }
        )
        models.append(export.as_float32(model, lambda c=tcfg: build_model(c, shape, n_classes)))
        histories.append((ckpt, history))
    model = ensemble.average(models, name=f"medpipe_{cfg.train.model}_x{n_members}")
    first, img_s = members[0], members[0]["images_per_second"]
    best = best_row(export.history_table(histories[0][1]), monitor, mode, selection_start(cfg.train))
    summary = {
        "epochs_run": first["epochs_run"],
        "epochs_this_run": timer.epochs,
        "resumed": any(m["resumed"] for m in members),
        # resumed with RNG, callback and data-order state restored: the same model as one run;
        # False = not reproducible: the register gate will not promote it (train afresh)
        "resume_exact": resume_exact(members),
        "monitor": monitor,
        "best_epoch": first["best_epoch"],
        f"best_{monitor}": first[f"best_{monitor}"],
        "best_val_loss": float(best["val_loss"]),
        "best_val_accuracy": float(best["val_accuracy"]),
        "ensemble": members if n_members > 1 else None,
        "wall_seconds": round(time.perf_counter() - started, 2),
        "train_images_per_second": round(img_s, 1) if img_s else None,
        "n_train": len(train_df),
        "n_val": len(val_df),
        "class_weight": class_weight,
        "cached_in_ram": train_ds.cache is not None,
        **runtime.summary(),
        "params": params,
        "backbone_weights": applications.weights_record(
            cfg.train.weights, cfg.train.model, cfg.preprocess.image_size
        ),
    }
    label_map = {
        "classes": labels["classes"],
        "positive": labels.get("positive"),
        "format": labels.get("format"),
        "image_size": cfg.preprocess.image_size,
        "channels": cfg.preprocess.channels,
    }
    export.write_model_dir(model, label_map, summary, outputs["model"])
    export.write_history(histories[0][1], outputs["history"])  # member 1's curves (all: summary)
    checkpoints.CheckpointDir(outputs["checkpoints"]).clear()  # finished: the next run trains afresh
    log.info(
        "trained %s x%d: best epoch %d %s %.4f val_loss %.4f (%s img/s)",
        cfg.train.model,
        n_members,
        summary["best_epoch"],
        monitor,
        summary[f"best_{monitor}"],
        summary["best_val_loss"],
        summary["train_images_per_second"],
    )
    return {k: summary[k] for k in ("epochs_run", "best_epoch", "best_val_loss", "train_images_per_second")}


def run(cfg: Config, inputs: dict[str, Path], outputs: dict[str, Path]) -> dict:
    """train() inside an MLflow run when MLflow is available (pipeline.tracking; optional)."""
    tracked = tracking.TrainingRun.start(cfg)
    try:
        result = train(cfg, inputs, outputs, callbacks=tracked.callbacks() if tracked else ())
    except BaseException as exc:
        if tracked:
            tracked.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    if tracked:
        tracked.finish(outputs["model"])
    return result

"""train stage: preprocessed train/val arrays -> models/ (model.keras, label_map.json,
train_summary.json), reports/train/history.csv; resumable through checkpoints/.

Inputs: preprocessed (the preprocess stage's dir: train/val .npy + .csv + meta.json; the only
image input), balanced (dir with class_weights.json), labels.json. Image size, channels and the
intensity window come from meta.json and travel to models/label_map.json.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from pipeline import arrays
from pipeline.config import Config
from pipeline.core import manifest
from pipeline.core.errors import DataError
from pipeline.models import applications, ensemble
from pipeline.tracking import train_run as tracking
from pipeline.training import checkpoints, export
from pipeline.training.data import ArrayBatches
from pipeline.training.losses import load_class_weights
from pipeline.training.members import Fitted, fit_members, resume_exact
from pipeline.training.selection import best_row, selection_start

log = logging.getLogger(__name__)


def _check_labels(split: arrays.Split, n_classes: int) -> None:
    """DataError when a split holds a label that labels.json does not list (stale arrays)."""
    labels = split.labels
    if labels.min() < 0 or labels.max() >= n_classes:
        raise DataError(
            f"the {split.name} split has labels outside 0..{n_classes - 1} (labels.json lists {n_classes}); "
            "re-run the split/balance/preprocess stages"
        )


def _labels(path: Path) -> dict:
    """labels.json, which must list at least 2 classes."""
    doc = manifest.read_json(path)
    classes = doc.get("classes")
    if not isinstance(classes, list) or len(classes) < 2:
        raise DataError(f"{path} must list at least 2 'classes'; re-run the regroup stage")
    return doc


@dataclasses.dataclass
class _Inputs:
    """What the stage reads, checked; `params` is what the summary records and checkpoints match."""

    labels: dict
    meta: dict
    train: arrays.Split
    val: arrays.Split
    class_weight: dict
    fp_files: list[Path]  # class_weights.json, labels.json: a change to either trains afresh
    params: dict


def _load_inputs(cfg: Config, inputs: dict[str, Path]) -> _Inputs:
    """Read labels.json, meta.json, the train/val arrays and the class weights, and check the labels
    against labels.json, so that inconsistent inputs fail before any model is built."""
    labels = _labels(inputs["labels"])
    n_classes = len(labels["classes"])
    data_dir = Path(inputs["preprocessed"])
    meta = arrays.read_meta(data_dir)
    train_split, val_split = (arrays.load_split(data_dir, name, meta) for name in ("train", "val"))
    for split in (train_split, val_split):
        _check_labels(split, n_classes)
    weights_json = Path(inputs["balanced"]) / "class_weights.json"
    class_weight = load_class_weights(weights_json, n_classes)
    preprocess = {k: meta[k] for k in ("image_size", "channels", "window")}  # what the arrays hold
    params = {"train": dataclasses.asdict(cfg.train), "preprocess": preprocess}
    return _Inputs(
        labels, meta, train_split, val_split, class_weight, [weights_json, inputs["labels"]], params
    )


def _fit(cfg: Config, data: _Inputs, outputs: dict[str, Path], callbacks: tuple) -> Fitted:
    """Fit the ensemble members on batches of the arrays (train: shuffled, class-weighted); the
    checkpoints match on params, the arrays' rows + sha256 and the input files."""
    n_classes, bs = len(data.labels["classes"]), cfg.train.batch_size
    train_ds = ArrayBatches(
        data.train.images, data.train.labels, n_classes, bs, shuffle=True, class_weight=data.class_weight
    )
    val_ds = ArrayBatches(data.val.images, data.val.labels, n_classes, bs)
    arrays_id = {name: data.meta["splits"][name] for name in ("train", "val")}  # rows + sha256 of the arrays
    fingerprint = {**data.params, "arrays": arrays_id}
    root = Path(outputs["checkpoints"])
    return fit_members(cfg.train, (train_ds, val_ds), root, fingerprint, data.fp_files, callbacks)


def _summary(cfg: Config, data: _Inputs, fitted: Fitted, started: float) -> dict:
    """train_summary.json: member 1's selection (every member listed when N > 1), resume state,
    throughput, runtime and params; the register gate and the report read it."""
    members, first, monitor = fitted.members, fitted.members[0], fitted.monitor
    img_s = first["images_per_second"]
    best = best_row(
        export.history_table(fitted.histories[0][1]), monitor, fitted.mode, selection_start(fitted.tcfg)
    )
    return {
        "epochs_run": first["epochs_run"],
        "epochs_this_run": fitted.timer.epochs,
        # train.budget_images as run: steps, epochs (the last may be partial); None = train.epochs
        "budget": fitted.budget.record() if fitted.budget else None,
        "resumed": any(m["resumed"] for m in members),
        # resumed with RNG, callback and data-order state restored: the same model as one run;
        # False = not reproducible: the register gate will not promote it (train afresh)
        "resume_exact": resume_exact(members),
        "monitor": monitor,
        "best_epoch": first["best_epoch"],
        f"best_{monitor}": first[f"best_{monitor}"],
        "best_val_loss": float(best["val_loss"]),
        "best_val_accuracy": float(best["val_accuracy"]),
        "ensemble": members if cfg.train.ensemble > 1 else None,
        "wall_seconds": round(time.perf_counter() - started, 2),
        "train_images_per_second": round(img_s, 1) if img_s else None,
        "n_train": len(data.train.rows),
        "n_val": len(data.val.rows),
        "class_weight": data.class_weight,
        **fitted.runtime.summary(),
        "params": data.params,
        "backbone_weights": applications.weights_record(
            cfg.train.weights, cfg.train.model, int(data.meta["image_size"])
        ),
    }


def _label_map(data: _Inputs) -> dict:
    """models/label_map.json: the classes and the image geometry that serving must reproduce."""
    return {
        "classes": data.labels["classes"],
        "positive": data.labels.get("positive"),
        "format": data.labels.get("format"),
        "image_size": int(data.meta["image_size"]),
        "channels": int(data.meta["channels"]),
        "window": data.meta.get("window"),
        **({"dicom_voi": data.labels["dicom_voi"]} if data.labels.get("dicom_voi") else {}),
    }


def _export(model, label_map: dict, summary: dict, fitted: Fitted, outputs: dict[str, Path]) -> None:
    """Write models/ and member 1's history.csv (every member's: the summary), then clear
    checkpoints/: the stage finished, so the next run trains afresh."""
    export.write_model_dir(model, label_map, summary, outputs["model"])
    export.write_history(fitted.histories[0][1], outputs["history"])
    checkpoints.CheckpointDir(outputs["checkpoints"]).clear()


def train(cfg: Config, inputs: dict[str, Path], outputs: dict[str, Path], callbacks: tuple = ()) -> dict:
    """The stage body; `callbacks` are extra Keras callbacks (tests use them to simulate a kill)."""
    started = time.perf_counter()
    data = _load_inputs(cfg, inputs)
    fitted = _fit(cfg, data, outputs, callbacks)
    model = ensemble.average(fitted.models, name=f"medpipe_{cfg.train.model}_x{cfg.train.ensemble}")
    summary = _summary(cfg, data, fitted, started)
    _export(model, _label_map(data), summary, fitted, outputs)
    log.info(
        "trained %s x%d: best epoch %d %s %.4f val_loss %.4f (%s img/s)",
        cfg.train.model,
        cfg.train.ensemble,
        summary["best_epoch"],
        fitted.monitor,
        summary[f"best_{fitted.monitor}"],
        summary["best_val_loss"],
        summary["train_images_per_second"],
    )
    return {k: summary[k] for k in ("epochs_run", "best_epoch", "best_val_loss", "train_images_per_second")}


def run(cfg: Config, inputs: dict[str, Path], outputs: dict[str, Path]) -> dict:
    """train() inside an MLflow run when MLflow is available (pipeline.tracking.train_run; optional)."""
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

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
from pipeline.core.errors import ConfigError, DataError
from pipeline.models import applications, build_model, ensemble
from pipeline.tracking import train_run as tracking
from pipeline.training import checkpoints, export
from pipeline.training.data import ArrayBatches
from pipeline.training.fit import fit
from pipeline.training.losses import load_class_weights
from pipeline.training.runtime import configure
from pipeline.training.selection import best_row, monitor_of, selection_start

log = logging.getLogger(__name__)


def _check_labels(split: arrays.Split, n_classes: int) -> None:
    labels = split.labels
    if labels.min() < 0 or labels.max() >= n_classes:
        raise DataError(
            f"the {split.name} split has labels outside 0..{n_classes - 1} (labels.json lists {n_classes}); "
            "re-run the split/balance/preprocess stages"
        )


def _labels(path: Path) -> dict:
    doc = manifest.read_json(path)
    classes = doc.get("classes")
    if not isinstance(classes, list) or len(classes) < 2:
        raise DataError(f"{path} must list at least 2 'classes'; re-run the regroup stage")
    return doc


def resume_exact(members: list[dict]) -> bool | None:
    """None: nothing resumed; False: some member resumed without its RNG state; True: exact."""
    flags = [m["resume_exact"] for m in members if m["resumed"]]
    return all(flags) if flags else None


def train(cfg: Config, inputs: dict[str, Path], outputs: dict[str, Path], callbacks: tuple = ()) -> dict:
    """The stage body; `callbacks` are extra Keras callbacks (tests use them to simulate a kill)."""
    started = time.perf_counter()
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
    arrays_id = {name: meta["splits"][name] for name in ("train", "val")}  # rows + sha256 of the arrays
    fp_files = [weights_json, inputs["labels"]]
    bs = cfg.train.batch_size
    train_ds = ArrayBatches(
        train_split.images, train_split.labels, n_classes, bs, shuffle=True, class_weight=class_weight
    )
    val_ds = ArrayBatches(val_split.images, val_split.labels, n_classes, bs)
    shape = tuple(int(d) for d in train_split.images.shape[1:])
    monitor, mode = monitor_of(cfg.train, n_classes)
    n_members = cfg.train.ensemble
    if n_members < 1:
        raise ConfigError(f"train.ensemble is {n_members}; use 1 (one model) or N > 1 seeds to average")
    models, members, histories = [], [], []
    for k in range(n_members):  # member k trains with seed + k; each resumes from its own checkpoints
        tcfg = dataclasses.replace(cfg.train, seed=cfg.train.seed + k)
        root = Path(outputs["checkpoints"]) / (f"member{k + 1}" if n_members > 1 else "")
        ckpt = checkpoints.CheckpointDir(root)
        fingerprint = {**params, "arrays": arrays_id, "member_seed": tcfg.seed}
        resumed = ckpt.prepare(checkpoints.fingerprint(fingerprint, fp_files))
        runtime = configure(tcfg.seed)
        train_ds.seed = tcfg.seed
        with runtime.scope():
            model = build_model(tcfg, shape, n_classes)
        try:
            timer = fit(model, train_ds, val_ds, tcfg, ckpt, runtime, callbacks)
        except BaseException:
            train_ds.close()
            val_ds.close()
            raise
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
    train_ds.close()
    val_ds.close()
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
        "n_train": len(train_split.rows),
        "n_val": len(val_split.rows),
        "class_weight": class_weight,
        **runtime.summary(),
        "params": params,
        "backbone_weights": applications.weights_record(
            cfg.train.weights, cfg.train.model, int(meta["image_size"])
        ),
    }
    label_map = {
        "classes": labels["classes"],
        "positive": labels.get("positive"),
        "format": labels.get("format"),
        "image_size": int(meta["image_size"]),
        "channels": int(meta["channels"]),
        "window": meta.get("window"),
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

"""Everything the HTML report shows, assembled from the evaluation result and the inputs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import Config, registered_name
from pipeline.config.split_level import image_level_warning
from pipeline.evaluation import figures, gallery, heatmap, model_card, report_header
from pipeline.evaluation.scoring import Predictions, Task
from pipeline.splitting.report import fraction_warnings

log = logging.getLogger(__name__)


def read_history(path: Path | None) -> pd.DataFrame | None:
    """The training history table if it exists and has an epoch column, else None."""
    if path is None or not Path(path).is_file():
        return None
    history = pd.read_csv(path)
    if "epoch" not in history.columns or history.empty:
        log.warning("training history %s has no epoch rows; the report leaves curves out", path)
        return None
    return history


def report_figures(
    task: Task,
    result: dict,
    test: Predictions,
    test_df: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    history: pd.DataFrame | None,
    channels: int,
    images: np.ndarray | None = None,
) -> dict:
    """{name: base64 PNG or None} plus the heat-map patient."""
    label = task.classes[task.positive] if task.positive is not None else "micro-average one-vs-rest"
    if task.positive is not None:
        prevalence = float(np.mean(test.y == task.positive))
    else:
        prevalence = 1.0 / len(task.classes)
    errors = gallery.confident_errors(
        test_df, test.y, test.proba, task.classes, task.positive, result["threshold"]
    )
    out = {
        "roc": figures.roc_figure(tables["roc.csv"], result["roc_auc"], label),
        "pr": figures.pr_figure(tables["pr.csv"], result["pr_auc"], prevalence, label),
        "confusion": figures.confusion_figure(result["confusion_matrix"]["matrix"], task.classes),
        "calibration": figures.calibration_figure(tables["calibration.csv"], result["ece"], label),
        "history": figures.history_figure(history) if history is not None else None,
        "errors": gallery.errors_figure(errors, channels, images),
        "heatmap": None,
    }
    patient = None
    if task.positive is not None:
        drawn = heatmap.heatmap_figure(test_df, test.proba[:, task.positive], test.y == task.positive)
        if drawn is not None:
            patient, out["heatmap"] = drawn
    return {"figures": out, "heatmap_patient": patient}


def split_fraction_notes(facts: list[dict], cfg: Config) -> list[str]:
    """The split stage's > 5-point fraction warning, repeated in the report (not for source splits)."""
    total = sum(f["images"] for f in facts)
    if cfg.split.respect_source_split or not total:
        return []
    return fraction_warnings({f["split"]: f["images"] / total for f in facts}, cfg.split)


def report_context(
    cfg: Config,
    task: Task,
    label_map: dict,
    train_summary: dict,
    result: dict,
    splits_dir: Path,
    figs: dict,
) -> dict:
    """The template context (see report_template.TEMPLATE)."""
    headline = {k: v for k, v in result.items() if not isinstance(v, dict | list)}
    facts = model_card.split_facts(splits_dir, task.classes)
    multi = "multi-class (argmax, macro averages)"
    return {
        "model_name": registered_name(cfg),
        "header": report_header.evaluate_header(cfg, train_summary),
        "task_kind": "binary" if task.positive is not None else multi,
        "classes": task.classes,
        "positive": task.classes[task.positive] if task.positive is not None else None,
        "headline": headline,
        "ci": result["ci"],
        "bootstrap": cfg.evaluate.bootstrap,
        "threshold_rule": result["threshold_rule"],
        "test_sha256": result["test_manifest_sha256"],
        "per_class": result["per_class"],
        "patient": result["patient_level"],
        "curve_note": (
            "Binary: curve of P(positive)."
            if task.positive is not None
            else "Multi-class: micro-averaged one-vs-rest curve; ROC AUC in the table is the macro one-vs-rest AUC."
        ),
        "intended_use": model_card.INTENDED_USE,
        "train_facts": model_card.train_facts(train_summary),
        "image_size": label_map.get("image_size"),
        "channels": label_map.get("channels"),
        "tta": cfg.evaluate.tta,
        "data": facts,
        "image_level_warning": image_level_warning(cfg),
        "limitations": model_card.limitations(
            cfg, label_map, result["n_test_patients"], result["patient_level"].get("mode")
        )
        + split_fraction_notes(facts, cfg),
        **figs,
    }

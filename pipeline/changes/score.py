"""The champion on the new data: every NEW labelled image (added or changed since the champion, in
the current manifest) scored by the champion as its evaluate stage scored (same predict path, TTA
as recorded), at the threshold it was registered with; metrics with patient-bootstrap 95 % CIs.

reports/changes/champion_predictions.csv: path, sha256, patient_id, label (the champion's class
index), class_name, split, p_<class>... — one row per scored image, header only when none. A row
whose class the champion does not know (a new class) or that has no label is not scored.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from pipeline.config import EvaluateConfig
from pipeline.evaluation import metrics
from pipeline.evaluation.bootstrap import cluster_bootstrap_ci
from pipeline.evaluation.predictions import Predictions, Task, predict_split

log = logging.getLogger(__name__)
FILE_NAME = "champion_predictions.csv"
ID_COLUMNS = ["path", "sha256", "patient_id", "label", "class_name", "split"]


def columns(classes: list[str]) -> list[str]:
    return [*ID_COLUMNS, *(f"p_{c}" for c in classes)]


def scorable(new: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """New rows with a class the champion knows, `label` re-indexed to the champion's classes."""
    index = {c: i for i, c in enumerate(classes)}
    names = new["class_name"].astype("string")
    rows = new[names.isin(list(index)).fillna(False).to_numpy(bool)].copy()
    rows["label"] = rows["class_name"].astype(str).map(index).astype(np.int64)
    return rows.reset_index(drop=True)


def predictions_table(rows: pd.DataFrame, proba: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """The champion_predictions.csv frame (rows as given, probabilities per class)."""
    out = pd.DataFrame({c: rows[c] if c in rows.columns else pd.NA for c in ID_COLUMNS}, columns=ID_COLUMNS)
    for i, name in enumerate(classes):
        out[f"p_{name}"] = proba[:, i] if len(rows) else []
    return out.reset_index(drop=True)


def champion_on_new(
    model,
    label_map: dict,
    rows: pd.DataFrame,
    images: np.ndarray,
    threshold,
    tta: bool,
    bootstrap: int,
    seed: int,
) -> tuple[pd.DataFrame, dict | None]:
    """(predictions table, the champion_on_new block or None when nothing is scorable)."""
    task = Task.from_label_map(label_map)
    if len(rows) == 0:
        return predictions_table(rows, np.zeros((0, len(task.classes))), task.classes), None
    cfg = EvaluateConfig(tta=tta, bootstrap=bootstrap, seed=seed)
    pred = predict_split(model, label_map, rows, cfg, "new", images)
    return predictions_table(rows, pred.proba, task.classes), summarise(
        task, pred, threshold, bootstrap, seed
    )


def summarise(task: Task, pred: Predictions, threshold, bootstrap: int, seed: int) -> dict:
    """{n, n_patients, threshold, per_class counts, metrics: {name: {value, ci}}} (None = undefined)."""
    threshold = threshold if task.positive is not None else None
    values = metrics.headline_metrics(pred.y, pred.proba, task.positive, threshold)
    ci = cluster_bootstrap_ci(
        lambda r: metrics.headline_metrics(pred.y[r], pred.proba[r], task.positive, threshold),
        pred.patients,
        bootstrap,
        seed,
        desc="bootstrap new patients",
    )
    return {
        "n": int(len(pred.y)),
        "n_patients": int(len(set(pred.patients))),
        "threshold": threshold,
        "per_class": {c: int((pred.y == i).sum()) for i, c in enumerate(task.classes)},
        "metrics": {k: {"value": v, "ci": ci.get(k)} for k, v in values.items()},
    }

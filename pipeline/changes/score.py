"""The champion on the new data: every NEW labelled image (added or changed since the champion, in
the current manifest) scored by the champion as its evaluate stage scored (same predict path, TTA
as recorded), at the threshold it was registered with; metrics with patient-bootstrap 95 % CIs.

reports/changes/champion_predictions.csv: path, sha256, patient_id, label (the champion's class
index), class_name, split, p_<class>... — one row per scored image, header only when none. A row
whose class the champion does not know (a new class) or that has no label is not scored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

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


@dataclass(frozen=True)
class Scoring:
    """How the champion scores: its registered threshold, TTA as recorded, bootstrap rounds and seed;
    `proba`: probabilities already computed in the embedding pass (single view), else None."""

    threshold: float | None
    tta: bool
    bootstrap: int
    seed: int
    proba: np.ndarray | None = None


def champion_on_new(
    model, label_map: dict, rows: pd.DataFrame, images: np.ndarray, how: Scoring
) -> tuple[pd.DataFrame, dict | None]:
    """(predictions table, the champion_on_new block or None when nothing is scorable)."""
    task = Task.from_label_map(label_map)
    if len(rows) == 0:
        return predictions_table(rows, np.zeros((0, len(task.classes))), task.classes), None
    cfg = EvaluateConfig(tta=how.tta, bootstrap=how.bootstrap, seed=how.seed)
    if how.proba is None or how.tta:
        pred = predict_split(model, label_map, rows, cfg, "new", images)
    else:
        y = rows["label"].to_numpy(np.int64)
        patients = rows["patient_id"].astype("string").fillna("row:" + rows["path"].astype("string"))
        pred = Predictions(y, np.asarray(how.proba, np.float64), patients.to_numpy())
    block = summarise(task, pred, how.threshold, how.bootstrap, how.seed)
    return predictions_table(rows, pred.proba, task.classes), block


def summarise(task: Task, pred: Predictions, threshold, bootstrap: int, seed: int) -> dict:
    """{n, n_patients, threshold, per_class counts, metrics: {name: {value, ci}}} (None = undefined).

    Point values are pipeline.evaluation.metrics' headline; for binary tasks the patient-bootstrap
    CIs are of the confusion-count metrics and ROC AUC (rank formula: ~100x faster than sklearn per
    round, what keeps 10,000 new images in budget), multi-class CIs of every headline metric."""
    threshold = threshold if task.positive is not None else None
    values = metrics.headline_metrics(pred.y, pred.proba, task.positive, threshold)
    if task.positive is not None:
        pos = pred.y == task.positive
        hit = (
            pred.proba[:, task.positive] >= threshold
            if threshold is not None
            else pred.proba.argmax(1) == task.positive
        )
        fn = lambda r: binary_metrics(pos[r], hit[r], rankdata(pred.proba[r, task.positive]))  # noqa: E731
    else:
        fn = lambda r: metrics.headline_metrics(pred.y[r], pred.proba[r], None, None)  # noqa: E731
    ci = cluster_bootstrap_ci(fn, pred.patients, bootstrap, seed, desc="bootstrap new patients")
    return {
        "n": int(len(pred.y)),
        "n_patients": int(len(set(pred.patients))),
        "threshold": threshold,
        "per_class": {c: int((pred.y == i).sum()) for i, c in enumerate(task.classes)},
        "metrics": {k: {"value": v, "ci": ci.get(k)} for k, v in values.items()},
    }


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def binary_metrics(pos: np.ndarray, hit: np.ndarray, ranks: np.ndarray) -> dict[str, float | None]:
    """Sensitivity, specificity, PPV, NPV, F1, accuracy, balanced accuracy and ROC AUC (Mann-Whitney
    from `ranks` of P(positive), ties averaged) of one bootstrap draw; None where undefined."""
    tp, fn = float(np.sum(pos & hit)), float(np.sum(pos & ~hit))
    fp, tn = float(np.sum(~pos & hit)), float(np.sum(~pos & ~hit))
    sens, spec = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    n_pos, n_neg = tp + fn, tn + fp
    auc = (ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg) if n_pos and n_neg else None
    return {
        "sensitivity": sens,
        "specificity": spec,
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "accuracy": _ratio(tp + tn, len(pos)),
        "balanced_accuracy": None if sens is None or spec is None else (sens + spec) / 2,
        "roc_auc": None if auc is None else float(auc),
    }

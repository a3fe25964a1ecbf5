"""Tables behind the DVC plots (reports/eval/*.csv) and the report figures.

roc.csv (fpr, tpr) and pr.csv (recall, precision): binary tasks on P(positive); multi-class
tasks micro-averaged one-vs-rest (every image x class pair is one binary decision).
confusion.csv (actual, predicted): one row per test image, class names.
calibration.csv (mean_predicted, fraction_positive, count): the reliability curve.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve
from sklearn.preprocessing import label_binarize

from pipeline.evaluation.calibration import calibration_target, reliability_curve
from pipeline.evaluation.metrics import predict_labels


def _binary_view(y: np.ndarray, proba: np.ndarray, positive: int | None) -> tuple[np.ndarray, np.ndarray]:
    if positive is not None:
        return (y == positive).astype(int), proba[:, positive]
    onehot = label_binarize(y, classes=list(range(proba.shape[1])))
    return onehot.ravel(), proba.ravel()


def roc_table(y: np.ndarray, proba: np.ndarray, positive: int | None) -> pd.DataFrame:
    truth, score = _binary_view(y, proba, positive)
    if truth.min() == truth.max():
        return pd.DataFrame(columns=["fpr", "tpr"])
    fpr, tpr, _ = roc_curve(truth, score)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr})


def pr_table(y: np.ndarray, proba: np.ndarray, positive: int | None) -> pd.DataFrame:
    truth, score = _binary_view(y, proba, positive)
    if not truth.any():
        return pd.DataFrame(columns=["recall", "precision"])
    precision, recall, _ = precision_recall_curve(truth, score)
    return pd.DataFrame({"recall": recall, "precision": precision})


def confusion_table(
    y: np.ndarray, proba: np.ndarray, classes: list[str], positive: int | None, threshold: float | None
) -> pd.DataFrame:
    names = np.asarray(classes, dtype=object)
    y_pred = predict_labels(proba, positive, threshold)
    return pd.DataFrame({"actual": names[y], "predicted": names[y_pred]})


def calibration_table(y: np.ndarray, proba: np.ndarray, positive: int | None) -> pd.DataFrame:
    mean_predicted, fraction_positive, count = reliability_curve(*calibration_target(y, proba, positive))
    return pd.DataFrame(
        {"mean_predicted": mean_predicted, "fraction_positive": fraction_positive, "count": count}
    )


def plot_tables(
    y: np.ndarray, proba: np.ndarray, classes: list[str], positive: int | None, threshold: float | None
) -> dict[str, pd.DataFrame]:
    """{file name: table} for the reports/eval directory."""
    return {
        "roc.csv": roc_table(y, proba, positive),
        "pr.csv": pr_table(y, proba, positive),
        "confusion.csv": confusion_table(y, proba, classes, positive, threshold),
        "calibration.csv": calibration_table(y, proba, positive),
    }


def write_tables(tables: dict[str, pd.DataFrame], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.to_csv(out_dir / name, index=False, float_format="%.6g")

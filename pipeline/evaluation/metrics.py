"""Classification metrics on arrays (labels y: int class indices, proba: (N, K) softmax).

Binary tasks (K = 2 with a positive class index) use P(positive) >= threshold; multi-class tasks use
argmax and report macro averages. Every ratio whose denominator is zero is None, not a crash.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)
from sklearn.preprocessing import label_binarize

from pipeline.evaluation.calibration import calibration_target, expected_calibration_error

HEADLINE = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "ppv", "npv", "f1")
HEADLINE += ("roc_auc", "pr_auc", "ece")
CLASS_METRICS = ("sensitivity", "specificity", "ppv", "npv", "f1")


def clean(value: float | np.floating | None) -> float | None:
    """float, with NaN/inf (undefined) as None."""
    if value is None or not np.isfinite(value):
        return None
    return float(value)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def predict_labels(proba: np.ndarray, positive: int | None, threshold: float | None) -> np.ndarray:
    """Class index per row: thresholded P(positive) for binary tasks (K=2), argmax otherwise."""
    if positive is None or threshold is None:
        return proba.argmax(axis=1)
    return np.where(proba[:, positive] >= threshold, positive, 1 - positive)


def class_table(y: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """One-vs-rest sensitivity, specificity, PPV, NPV, F1 and support per class (NaN = undefined)."""
    labels = list(range(n_classes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        ppv, sens, f1, support = precision_recall_fscore_support(
            y, y_pred, labels=labels, zero_division=np.nan
        )
    mcm = multilabel_confusion_matrix(y, y_pred, labels=labels)  # per class [[tn, fp], [fn, tp]]
    tn, fp, fn = mcm[:, 0, 0], mcm[:, 0, 1], mcm[:, 1, 0]
    spec, npv = _ratio(tn, tn + fp), _ratio(tn, tn + fn)
    return {"sensitivity": sens, "specificity": spec, "ppv": ppv, "npv": npv, "f1": f1, "support": support}


def _auc_metrics(y: np.ndarray, proba: np.ndarray, positive: int | None) -> tuple[float | None, float | None]:
    """(ROC AUC, PR AUC = average precision); None where a needed class is absent."""
    if positive is not None:
        is_pos = y == positive
        if is_pos.all() or not is_pos.any():
            return None, None
        p = proba[:, positive]
        return clean(roc_auc_score(is_pos, p)), clean(average_precision_score(is_pos, p))
    n_classes = proba.shape[1]
    onehot = label_binarize(y, classes=list(range(n_classes)))
    present = onehot.sum(axis=0) > 0
    if not present.any():
        return None, None
    pr_auc = average_precision_score(onehot[:, present], proba[:, present], average="macro")
    if not present.all():
        return None, clean(pr_auc)
    proba = proba / proba.sum(axis=1, keepdims=True)
    roc = roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=list(range(n_classes)))
    return clean(roc), clean(pr_auc)


def headline_metrics(
    y: np.ndarray, proba: np.ndarray, positive: int | None, threshold: float | None
) -> dict[str, float | None]:
    """The flat headline dict (HEADLINE keys); multi-class values are macro averages."""
    y = np.asarray(y, dtype=int)
    proba = np.asarray(proba, dtype=np.float64)
    y_pred = predict_labels(proba, positive, threshold)
    table = class_table(y, y_pred, proba.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # y_pred holds a class absent from y
        balanced = balanced_accuracy_score(y, y_pred)
    out: dict[str, float | None] = {
        "accuracy": clean(accuracy_score(y, y_pred)),
        "balanced_accuracy": clean(balanced),
    }
    if positive is not None:
        out |= {k: clean(table[k][positive]) for k in CLASS_METRICS}
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # mean of all-NaN
            out |= {k: clean(np.nanmean(table[k])) for k in CLASS_METRICS}
    out["roc_auc"], out["pr_auc"] = _auc_metrics(y, proba, positive)
    out["ece"] = expected_calibration_error(*calibration_target(y, proba, positive))
    return {k: out[k] for k in HEADLINE}


def per_class_metrics(
    y: np.ndarray, proba: np.ndarray, classes: list[str], positive: int | None, threshold: float | None
) -> dict[str, dict[str, float | int | None]]:
    """{class name: one-vs-rest sensitivity, specificity, PPV, NPV, F1, support}."""
    y_pred = predict_labels(np.asarray(proba, dtype=np.float64), positive, threshold)
    table = class_table(np.asarray(y, dtype=int), y_pred, len(classes))
    return {
        name: {**{k: clean(table[k][i]) for k in CLASS_METRICS}, "support": int(table["support"][i])}
        for i, name in enumerate(classes)
    }


def confusion(y: np.ndarray, y_pred: np.ndarray, n_classes: int) -> list[list[int]]:
    """Confusion matrix, rows = actual, columns = predicted, in class-index order."""
    return confusion_matrix(y, y_pred, labels=list(range(n_classes))).tolist()

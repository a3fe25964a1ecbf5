"""The most confident errors: thumbnails of misclassified test images, most confident first."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from pipeline.core import images as images_io
from pipeline.evaluation.figures import plt, to_base64
from pipeline.evaluation.metrics import predict_labels

log = logging.getLogger(__name__)
N_ERRORS = 12
COLUMNS = 6


def confident_errors(
    test_df: pd.DataFrame,
    y: np.ndarray,
    proba: np.ndarray,
    classes: list[str],
    positive: int | None,
    threshold: float | None,
    limit: int = N_ERRORS,
) -> pd.DataFrame:
    """Misclassified rows sorted by the probability given to the (wrong) predicted class, each with
    the caption its thumbnail gets (binary tasks: P(positive) against the decision threshold)."""
    y_pred = predict_labels(proba, positive, threshold)
    wrong = np.flatnonzero(y_pred != y)
    confidence = proba[wrong, y_pred[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")][:limit]
    names = np.asarray(classes, dtype=object)
    return pd.DataFrame(
        {
            "row": order,
            "path": test_df["path"].to_numpy()[order],
            "patient_id": test_df["patient_id"].to_numpy()[order],
            "true": names[y[order]],
            "predicted": names[y_pred[order]],
            "probability": proba[order, y_pred[order]],
            "caption": [
                caption(names[y[i]], names[y_pred[i]], proba[i], classes, positive, threshold) for i in order
            ],
        }
    )


def caption(
    true: str,
    predicted: str,
    proba: np.ndarray,
    classes: list[str],
    positive: int | None,
    threshold: float | None,
) -> str:
    """What a thumbnail says: the true and predicted class and why it was predicted. A binary
    prediction is P(positive) against the threshold (a predicted negative can have p < 0.5 of its
    own class), otherwise the argmax class and its probability."""
    if positive is None or threshold is None:
        return f"true {true}\npred {predicted} p={proba.max():.2f}"
    p_pos = float(proba[positive])
    side = ">=" if p_pos >= threshold else "<"
    return f"true {true}\npred {predicted}\np({classes[positive]})={p_pos:.2f} {side} thr {threshold:.2f}"


def _thumbnail(err, channels: int, images: np.ndarray | None) -> np.ndarray | None:
    """The image the model saw (row of the preprocessed array), else the file decoded."""
    if images is not None:
        return np.asarray(images[int(err.row)])
    try:
        return images_io.read(err.path, channels)
    except (OSError, images_io.DecodeError) as exc:
        log.warning("confident errors: cannot read %s (%s)", err.path, exc)
        return None


def errors_figure(errors: pd.DataFrame, channels: int, images: np.ndarray | None = None) -> str | None:
    """A grid of thumbnails titled by their caption; None when there are no errors.

    `images`: the test split's preprocessed array (rows as in `errors.row`); None reads the files.
    """
    if errors.empty:
        return None
    rows = int(np.ceil(len(errors) / COLUMNS))
    fig, axes = plt.subplots(rows, COLUMNS, figsize=(COLUMNS * 1.9, rows * 2.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, err in zip(axes.ravel(), errors.itertuples(), strict=False):
        img = _thumbnail(err, channels, images)
        if img is None:
            continue
        ax.imshow(img[:, :, 0] if img.shape[2] == 1 else img, cmap="gray" if img.shape[2] == 1 else None)
        ax.set_title(err.caption, fontsize=7)
    return to_base64(fig)

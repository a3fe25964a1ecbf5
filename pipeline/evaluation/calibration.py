"""Calibration: reliability curve (sklearn.calibration.calibration_curve) and ECE over 10 bins.

Binary tasks are calibrated on P(positive) against "is positive"; multi-class tasks on the
top-label confidence (max softmax) against "argmax is correct".
"""

from __future__ import annotations

import numpy as np
from sklearn.calibration import calibration_curve

N_BINS = 10


def calibration_target(
    y: np.ndarray, proba: np.ndarray, positive: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(hits 0/1, predicted probability of a hit) for the binary or top-label view."""
    if positive is not None:
        return (y == positive).astype(int), proba[:, positive]
    return (proba.argmax(axis=1) == y).astype(int), proba.max(axis=1)


def bin_counts(prob: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Images per non-empty uniform bin, binned exactly as calibration_curve bins them."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], prob), minlength=n_bins)
    return counts[counts > 0]


def reliability_curve(
    hits: np.ndarray, prob: np.ndarray, n_bins: int = N_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean predicted probability, observed fraction positive, count) per non-empty bin."""
    prob = np.clip(np.asarray(prob, dtype=np.float64), 0.0, 1.0)
    fraction_positive, mean_predicted = calibration_curve(
        np.asarray(hits, dtype=int), prob, n_bins=n_bins, strategy="uniform", pos_label=1
    )
    return mean_predicted, fraction_positive, bin_counts(prob, n_bins)


def expected_calibration_error(hits: np.ndarray, prob: np.ndarray, n_bins: int = N_BINS) -> float | None:
    """ECE = sum over bins of (bin share) * |observed fraction - mean predicted|; None when empty."""
    if len(hits) == 0:
        return None
    mean_predicted, fraction_positive, counts = reliability_curve(hits, prob, n_bins)
    return float(np.sum(counts / counts.sum() * np.abs(fraction_positive - mean_predicted)))

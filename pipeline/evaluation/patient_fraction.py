"""Patient level for data whose patients are slides/cases holding BOTH classes (IDC).

Rule (decided from the TEST data, per binary task; `patient_mode`): patient-level CLASSIFICATION
("patient positive if any image is") is kept unless patients are mostly slides/cases with both
classes: FRACTION when at least half of the test patients hold images of both classes, or when
some do and "any positive" leaves one patient class only (then specificity/NPV or sensitivity
are undefined by construction). IDC is the case: every slide holds IDC and non-IDC patches, so
"any positive" makes every patient positive. In FRACTION mode each patient is scored by the
agreement of its PREDICTED share of positive images (P(positive) >= the val-chosen image
threshold) with its TRUE share: mean absolute error and Pearson r over patients, with
patient-bootstrap 95 % CIs. The champion re-score (score_model) applies the same rule to the same
test manifest, so champion and challenger carry the same keys.
Multi-class tasks always use classification (most frequent image label).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.evaluation.bootstrap import cluster_bootstrap_ci
from pipeline.evaluation.metrics import clean

CLASSIFICATION, FRACTION = "classification", "fraction"
FRACTION_KEYS = ("fraction_mae", "fraction_pearson")
FRACTION_RULE = (
    "patients hold images of both classes (slides/cases), so 'patient positive if any image is' "
    "cannot separate patients; per patient: predicted share of positive images (at the image "
    "threshold) against the true share, as mean absolute error and Pearson r over patients"
)


def _keys(patients: np.ndarray) -> np.ndarray:
    return pd.Series(np.asarray(patients)).astype("string").fillna("<missing>").to_numpy()


def patient_mode(y: np.ndarray, patients: np.ndarray, positive: int | None) -> str:
    """CLASSIFICATION or FRACTION for these (test) labels and patient ids (see module doc)."""
    if positive is None:
        return CLASSIFICATION
    is_pos = pd.Series(np.asarray(y) == positive)
    per_patient = is_pos.groupby(_keys(patients), sort=True).agg(["any", "all"])
    mixed = per_patient["any"] & ~per_patient["all"]
    if len(per_patient) < 2 or not mixed.any():
        return CLASSIFICATION
    one_class = per_patient["any"].all() or not per_patient["any"].any()
    return FRACTION if one_class or mixed.mean() >= 0.5 else CLASSIFICATION


def positive_fractions(
    y: np.ndarray, proba: np.ndarray, patients: np.ndarray, positive: int, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true share, predicted share, patient ids) per patient, sorted by patient id."""
    frame = pd.DataFrame(
        {
            "true": np.asarray(y) == positive,
            "pred": np.asarray(proba, dtype=np.float64)[:, positive] >= threshold,
        }
    )
    shares = frame.groupby(_keys(patients), sort=True)[["true", "pred"]].mean()
    return shares["true"].to_numpy(float), shares["pred"].to_numpy(float), shares.index.to_numpy()


def fraction_agreement(true: np.ndarray, pred: np.ndarray) -> dict[str, float | None]:
    """{fraction_mae, fraction_pearson}; Pearson is None when either share is constant."""
    if len(true) == 0:
        return dict.fromkeys(FRACTION_KEYS)
    mae = clean(np.abs(pred - true).mean())
    if len(true) < 2 or np.ptp(true) == 0 or np.ptp(pred) == 0:
        return {"fraction_mae": mae, "fraction_pearson": None}
    return {"fraction_mae": mae, "fraction_pearson": clean(np.corrcoef(true, pred)[0, 1])}


def fraction_level(
    y: np.ndarray,
    proba: np.ndarray,
    patients: np.ndarray,
    positive: int,
    threshold: float,
    rounds: int,
    seed: int,
) -> dict:
    """The patient_level block in FRACTION mode (diagnostics.json, report)."""
    true, pred, ids = positive_fractions(y, proba, patients, positive, threshold)
    ci = cluster_bootstrap_ci(
        lambda rows: fraction_agreement(true[rows], pred[rows]),
        ids,
        rounds,
        seed,
        desc="bootstrap patients",
    )
    return {
        "mode": FRACTION,
        **fraction_agreement(true, pred),
        "threshold": threshold,
        "threshold_rule": "the image-level threshold (chosen on val images)",
        "rule": FRACTION_RULE,
        "n_patients": len(ids),
        "mean_true_fraction": clean(true.mean()) if len(true) else None,
        "mean_predicted_fraction": clean(pred.mean()) if len(pred) else None,
        "ci": ci,
    }

"""Patient-level evaluation: image probabilities averaged per patient.

Patient label rule (documented in the report):
- binary tasks: a patient is positive when ANY of their images is positive. Not used where
  patients are slides holding both classes (IDC: every slide has IDC and non-IDC patches, so every
  patient would be positive): pipeline.evaluation.patient_fraction decides that from the test data
  and scores positive-share agreement instead. BreakHis: every image of a patient
  carries the patient's tumour label, so "any" = "all"; chest X-ray/TB: a patient with any
  abnormal film is abnormal.
- multi-class tasks: the patient's most frequent image label (lowest class index on ties).
Patient probability = mean of the patient's image softmax vectors; the patient threshold is
chosen on VALIDATION patients with the same rule as images.
Caveat: mean probability dilutes patients with few positive images, and a small test set has few patients, so patient-level CIs are wide.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PATIENT_RULE = (
    "patient probability = mean of image probabilities; binary: patient positive if any image is "
    "positive; multi-class: most frequent image label"
)


def aggregate_by_patient(
    y: np.ndarray, proba: np.ndarray, patients: np.ndarray, positive: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(patient labels, mean probabilities (P, K), patient ids) sorted by patient id."""
    keys = pd.Series(np.asarray(patients)).astype("string").fillna("<missing>").to_numpy()
    frame = pd.DataFrame(np.asarray(proba, dtype=np.float64))
    mean_proba = frame.groupby(keys, sort=True).mean()
    labels = pd.Series(np.asarray(y, dtype=int))
    if positive is not None:
        any_positive = (labels == positive).groupby(keys, sort=True).any()
        y_patient = np.where(any_positive.to_numpy(), positive, 1 - positive)
    else:
        y_patient = labels.groupby(keys, sort=True).agg(lambda s: s.value_counts().sort_index().idxmax())
        y_patient = y_patient.to_numpy()
    return y_patient.astype(int), mean_proba.to_numpy(), mean_proba.index.to_numpy()

"""Evaluation rules specific to a source system (diagnostics beside the headline metrics).

- BreakHis: every headline metric per magnification (40X/100X/200X/400X): the documents report
  them per zoom level, and a model can be good at 40X and poor at 400X.
- IDC: every slide (patient) holds both IDC and non-IDC patches, so "patient positive if any
  patch is" makes every patient positive. The rule here is slide-level positive-fraction
  agreement: per slide, the share of patches predicted IDC (at the val threshold) against the
  true share; reported as mean absolute error and Pearson / Spearman correlation over slides.
- Chest X-ray (Kermany): a patient can carry bacteria AND virus films. Patient level is scored
  as normal vs pneumonia (any pneumonia film -> pneumonia; P = mean of 1 - P(NORMAL)), and in
  three-class mode a patient counts as correct when the argmax of their mean probabilities is
  any of their films' labels; the number of patients with both kinds is reported.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from pipeline.evaluation import metrics, patient_fraction
from pipeline.evaluation.predictions import Predictions, Task


def per_magnification(task: Task, test: Predictions, test_df: pd.DataFrame, threshold: float | None) -> dict:
    """{'40': headline metrics, ...} for the magnifications present (BreakHis)."""
    if "magnification" not in test_df.columns:
        return {}
    mags = pd.to_numeric(test_df["magnification"], errors="coerce").to_numpy()
    out = {}
    for mag in sorted(set(mags[~np.isnan(mags)])):
        rows = mags == mag
        if len(set(test.y[rows])) < 2:
            out[str(int(mag))] = {"n_test": int(rows.sum()), "note": "one class only"}
            continue
        block = metrics.headline_metrics(test.y[rows], test.proba[rows], task.positive, threshold)
        out[str(int(mag))] = {**block, "n_test": int(rows.sum())}
    return out


def slide_positive_fraction(task: Task, test: Predictions, threshold: float) -> dict:
    """IDC: per-slide predicted vs true share of positive patches (the shares and their MAE /
    Pearson r are pipeline.evaluation.patient_fraction's, the headline's FRACTION mode; Spearman
    is added here)."""
    true, pred, _ = patient_fraction.positive_fractions(
        test.y, test.proba, test.patients, task.positive, threshold
    )
    if len(true) < 3:
        return {"n_slides": len(true), "note": "fewer than 3 slides"}
    agree = patient_fraction.fraction_agreement(true, pred)
    pearson = agree["fraction_pearson"]  # None when either share is constant
    return {
        "rule": "per slide: share of patches predicted IDC vs true share of IDC patches",
        "n_slides": len(true),
        "mean_abs_error": round(agree["fraction_mae"], 4),
        "pearson": None if pearson is None else round(pearson, 4),
        "spearman": None if pearson is None else round(float(spearmanr(true, pred)[0]), 4),
    }


def chest_patients(task: Task, test: Predictions) -> dict:
    """Kermany: patient-level normal vs pneumonia, and mixed-label-aware 3-class accuracy."""
    if "NORMAL" not in task.classes:
        return {}
    normal = task.classes.index("NORMAL")
    frame = pd.DataFrame(test.proba).assign(patient=test.patients, y=test.y)
    grouped = frame.groupby("patient")
    mean = grouped[list(range(len(task.classes)))].mean()
    labels = grouped["y"].agg(lambda s: frozenset(s))
    sick = labels.map(lambda s: any(c != normal for c in s)).to_numpy()
    out: dict = {
        "rule": "patient with any pneumonia film = pneumonia; P(pneumonia) = mean of 1 - P(NORMAL)",
        "n_patients": len(mean),
    }
    if 0 < sick.sum() < len(sick):
        out["pneumonia_roc_auc"] = round(float(roc_auc_score(sick, 1 - mean[normal].to_numpy())), 4)
    if len(task.classes) > 2:
        pred = mean.to_numpy().argmax(1)
        hit = [p in s for p, s in zip(pred, labels, strict=True)]
        out["accuracy_any_label"] = round(float(np.mean(hit)), 4)
        out["patients_with_bacteria_and_virus"] = int(labels.map(lambda s: len(s - {normal}) > 1).sum())
    return out


def source_specific(
    fmt: str | None, task: Task, test: Predictions, test_df: pd.DataFrame, threshold: float | None
) -> dict:
    """The rules above that apply to `fmt` ({} for the others)."""
    if fmt == "breakhis":
        return {"per_magnification": per_magnification(task, test, test_df, threshold)}
    if fmt == "idc" and task.positive is not None and threshold is not None:
        return {"slide_positive_fraction": slide_positive_fraction(task, test, threshold)}
    if fmt == "chest_xray":
        return {"chest_xray_patients": chest_patients(task, test)}
    return {}

"""Scoring a model on the frozen val/test manifests.

`score_model` is the one entry point the register stage's champion gate uses to re-score the
current champion on the same test manifest: threshold from val, metrics on test, flat dict.
The evaluate stage calls `predict_split` + `evaluate_predictions` (same numbers, plus CIs,
per-class and patient-level blocks) so that each image is predicted once. score_model returns the
keys of reports/metrics.json except the CI bounds (image level + patient_<metric>, or
patient_fraction_* where patients hold both classes: pipeline.evaluation.patient_fraction).
"""

from __future__ import annotations

import logging

import keras
import numpy as np
import pandas as pd

from pipeline.config import EvaluateConfig
from pipeline.core.errors import DataError
from pipeline.evaluation import metrics
from pipeline.evaluation import patient_fraction as fraction
from pipeline.evaluation.bootstrap import cluster_bootstrap_ci
from pipeline.evaluation.metrics_file import patient_headline
from pipeline.evaluation.patients import PATIENT_RULE, aggregate_by_patient
from pipeline.evaluation.predictions import Predictions, Task, load_model, predict_split
from pipeline.evaluation.threshold import ThresholdChoice, argmax_choice, check_config, choose_threshold

log = logging.getLogger(__name__)


def operating_threshold(
    task: Task, val_y: np.ndarray, val_proba: np.ndarray, cfg: EvaluateConfig, what: str
) -> ThresholdChoice:
    """ThresholdChoice from VALIDATION labels and probabilities only."""
    if task.positive is None:
        return argmax_choice()
    return choose_threshold(val_y == task.positive, val_proba[:, task.positive], cfg, what)


def headline(task: Task, pred: Predictions, choice: ThresholdChoice) -> dict:
    """Flat headline metrics + threshold + test counts."""
    out: dict = metrics.headline_metrics(pred.y, pred.proba, task.positive, choice.value)
    out |= {
        "threshold": choice.value,
        "n_test": int(len(pred.y)),
        "n_test_patients": int(len(set(pred.patients))),
    }
    return out


def score_model(
    model: keras.Model, label_map: dict, val_df: pd.DataFrame, test_df: pd.DataFrame, cfg: EvaluateConfig
) -> dict:
    """Thresholds chosen on val_df, flat metrics on test_df (the champion gate's view).

    The keys of reports/metrics.json without the CI bounds: image-level headline + patient_<metric>.
    """
    check_config(cfg)
    task = Task.from_label_map(label_map)
    val = predict_split(model, label_map, val_df, cfg, "val")
    test = predict_split(model, label_map, test_df, cfg, "test")
    choice = operating_threshold(task, val.y, val.proba, cfg, "val images")
    if fraction.patient_mode(test.y, test.patients, task.positive) == fraction.FRACTION:
        true, pred, _ = fraction.positive_fractions(
            test.y, test.proba, test.patients, task.positive, choice.value
        )
        agreement = {"mode": fraction.FRACTION, **fraction.fraction_agreement(true, pred)}
        return headline(task, test, choice) | patient_headline(agreement)
    pat, pchoice = _patient_predictions(task, val, test, choice, cfg)
    patient = metrics.headline_metrics(pat.y, pat.proba, task.positive, pchoice.value)
    return headline(task, test, choice) | patient_headline({**patient, "threshold": pchoice.value})


def _patient_predictions(
    task: Task, val: Predictions, test: Predictions, image_choice: ThresholdChoice, cfg: EvaluateConfig
) -> tuple[Predictions, ThresholdChoice]:
    """Test patients (labels, mean probabilities, ids) and the threshold chosen on val patients."""
    vy, vp, _ = aggregate_by_patient(val.y, val.proba, val.patients, task.positive)
    ty, tp, ids = aggregate_by_patient(test.y, test.proba, test.patients, task.positive)
    try:
        choice = operating_threshold(task, vy, vp, cfg, "val patients")
    except DataError as exc:
        log.warning("patient level: %s; using the image-level threshold", exc)
        choice = ThresholdChoice(image_choice.value, f"image-level threshold (val patients: {exc})")
    return Predictions(ty, tp, ids), choice


def _patient_level(
    task: Task, val: Predictions, test: Predictions, image_choice: ThresholdChoice, cfg: EvaluateConfig
) -> dict:
    """The patient_level block: classification of patients, or positive-share agreement (FRACTION)."""
    if fraction.patient_mode(test.y, test.patients, task.positive) == fraction.FRACTION:
        args = (test.y, test.proba, test.patients, task.positive, image_choice.value)
        return fraction.fraction_level(*args, cfg.bootstrap, cfg.seed + 1)
    pat, choice = _patient_predictions(task, val, test, image_choice, cfg)
    ty, tp, ids = pat.y, pat.proba, pat.patients
    out = metrics.headline_metrics(ty, tp, task.positive, choice.value)
    ci = cluster_bootstrap_ci(
        lambda rows: metrics.headline_metrics(ty[rows], tp[rows], task.positive, choice.value),
        ids,
        cfg.bootstrap,
        cfg.seed + 1,
        desc="bootstrap patients",
    )
    counts = {name: int((ty == i).sum()) for i, name in enumerate(task.classes)}
    return {
        "mode": "classification",
        **out,
        "threshold": choice.value,
        "threshold_rule": choice.rule,
        "rule": PATIENT_RULE,
        "n_patients": len(ids),
        "patients_per_class": counts,
        "ci": ci,
        "per_class": metrics.per_class_metrics(pat.y, pat.proba, task.classes, task.positive, choice.value),
    }


def evaluate_predictions(task: Task, val: Predictions, test: Predictions, cfg: EvaluateConfig) -> dict:
    """The full result (diagnostics.json; metrics_file.headline picks metrics.json from it): headline,
    ci, per_class, confusion_matrix, patient_level, threshold_rule."""
    check_config(cfg)
    choice = operating_threshold(task, val.y, val.proba, cfg, "val images")
    out = headline(task, test, choice)
    out["threshold_rule"] = choice.rule
    out["ci"] = cluster_bootstrap_ci(
        lambda rows: metrics.headline_metrics(test.y[rows], test.proba[rows], task.positive, choice.value),
        test.patients,
        cfg.bootstrap,
        cfg.seed,
    )
    out["per_class"] = metrics.per_class_metrics(
        test.y, test.proba, task.classes, task.positive, choice.value
    )
    y_pred = metrics.predict_labels(test.proba, task.positive, choice.value)
    out["confusion_matrix"] = {
        "labels": task.classes,
        "matrix": metrics.confusion(test.y, y_pred, len(task.classes)),
    }
    out["patient_level"] = _patient_level(task, val, test, choice, cfg)
    return out


__all__ = ["Predictions", "Task", "evaluate_predictions", "load_model", "predict_split", "score_model"]

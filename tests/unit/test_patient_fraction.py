"""Patient level where patients are slides holding both classes (IDC): mode rule, positive-share
agreement, metrics.json without degenerate patient_* keys, report, and the gate line."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import config
from pipeline.core.errors import ConfigError
from pipeline.evaluation import metrics_file, model_card, report
from pipeline.evaluation.patient_fraction import (
    CLASSIFICATION,
    FRACTION,
    fraction_agreement,
    patient_mode,
    positive_fractions,
)
from pipeline.evaluation.predictions import Predictions, Task
from pipeline.evaluation.scoring import evaluate_predictions


def _slides(rng, n_patients: int, per: int, mixed: bool) -> Predictions:
    """Each patient a slide with its own true IDC share; P(IDC) follows the label with noise."""
    ys, ps, ids = [], [], []
    for p in range(n_patients):
        share = rng.uniform(0.1, 0.9) if mixed else float(p % 2)
        y = (rng.random(per) < share).astype(int)
        ys.append(y)
        ps.append(np.clip(0.25 + 0.5 * y + rng.normal(0, 0.15, per), 0.01, 0.99))
        ids += [f"s{p}"] * per
    p1 = np.concatenate(ps)
    return Predictions(np.concatenate(ys), np.stack([1 - p1, p1], 1), np.array(ids))


def test_mode_follows_the_data():
    ids = np.array(["a", "a", "b", "b", "c", "c"])
    assert patient_mode(np.array([0, 1, 0, 1, 0, 1]), ids, 1) == FRACTION  # every slide mixed
    assert patient_mode(np.array([0, 0, 1, 1, 0, 0]), ids, 1) == CLASSIFICATION  # one class each
    assert patient_mode(np.array([0, 1, 0, 1, 0, 0]), ids, 1) == FRACTION  # 2 of 3 mixed
    assert patient_mode(np.array([0, 1, 1, 1, 1, 1]), ids, 1) == FRACTION  # 'any' -> all positive
    four = np.array(["a", "a", "b", "b", "c", "c", "d", "d"])
    assert patient_mode(np.array([0, 1, 1, 1, 0, 0, 0, 0]), four, 1) == CLASSIFICATION  # 1 of 4 mixed
    assert patient_mode(np.array([0, 1, 2, 0, 1, 2]), ids, None) == CLASSIFICATION  # multi-class


def test_positive_shares_and_agreement_by_hand():
    y = np.array([1, 0, 0, 0, 1, 1, 0, 1])
    p1 = np.array([0.9, 0.8, 0.1, 0.2, 0.7, 0.6, 0.1, 0.4])
    ids = np.array(["b", "b", "b", "b", "a", "a", "a", "a"])
    true, pred, order = positive_fractions(y, np.stack([1 - p1, p1], 1), ids, 1, 0.5)
    assert list(order) == ["a", "b"] and list(true) == [0.75, 0.25] and list(pred) == [0.5, 0.5]
    assert fraction_agreement(true, pred) == {"fraction_mae": 0.25, "fraction_pearson": None}
    out = fraction_agreement(np.array([0.1, 0.5, 0.9]), np.array([0.2, 0.5, 0.8]))
    assert out["fraction_mae"] == pytest.approx(0.2 / 3) and out["fraction_pearson"] == pytest.approx(1.0)


def test_idc_like_metrics_json_has_share_agreement_and_no_degenerate_patient_keys():
    rng = np.random.default_rng(0)
    val, test = _slides(rng, 8, 30, True), _slides(rng, 10, 40, True)
    cfg = config.from_dict({"evaluate": {"bootstrap": 50}}).evaluate
    result = evaluate_predictions(Task(["non_idc", "idc"], 1), val, test, cfg)
    patient = result["patient_level"]
    assert patient["mode"] == FRACTION and patient["n_patients"] == 10
    assert patient["fraction_pearson"] > 0.8 and patient["fraction_mae"] < 0.15
    lo, hi = patient["ci"]["fraction_pearson"]
    assert lo <= patient["fraction_pearson"] <= hi
    flat = metrics_file.headline(result, "roc_auc")
    patient_keys = {k for k in flat if k.startswith("patient_")}
    assert patient_keys == {"patient_fraction_mae", "patient_fraction_pearson"}
    assert flat["patient_fraction_mae"] == patient["fraction_mae"] and "roc_auc_ci_lo" in flat
    html_rows = report.metric_rows(patient, patient["ci"], False)
    assert [r["key"] for r in html_rows] == ["fraction_mae", "fraction_pearson"] and html_rows[1]["ci"]
    notes = model_card.limitations(config.from_dict({}), {"format": "idc"}, 10, FRACTION)
    assert any("share of positive images" in n for n in notes)


def test_one_class_per_patient_keeps_patient_classification():
    rng = np.random.default_rng(1)
    val, test = _slides(rng, 8, 10, False), _slides(rng, 10, 10, False)
    cfg = config.from_dict({"evaluate": {"bootstrap": 0}}).evaluate
    result = evaluate_predictions(Task(["benign", "malignant"], 1), val, test, cfg)
    assert result["patient_level"]["mode"] == CLASSIFICATION
    flat = metrics_file.headline(result, "patient_roc_auc")
    assert {"patient_specificity", "patient_npv", "patient_threshold"} <= set(flat)
    assert not {k for k in flat if "fraction" in k}
    metrics_file.check_gate_keys(flat, "patient_roc_auc", ("patient_sensitivity",), {"roc_auc": 0.6})


def test_gate_on_a_patient_key_the_data_lacks_is_one_clear_line():
    flat = {"roc_auc": 0.9, "patient_fraction_mae": 0.1, "patient_fraction_pearson": 0.8}
    with pytest.raises(ConfigError, match="patient_roc_auc.*does not carry.*roc_auc") as err:
        metrics_file.check_gate_keys(flat, "patient_roc_auc", ("sensitivity",), {})
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="patient_specificity"):
        metrics_file.check_gate_keys(flat, "roc_auc", (), {"patient_specificity": 0.0})
    with pytest.raises(ConfigError, match="reported, not gated"):
        metrics_file.check_gate_keys(flat, "patient_fraction_mae", (), {})
    metrics_file.check_gate_keys(flat, "roc_auc", ("sensitivity",), {"roc_auc": 0.6})


def test_an_unknown_patient_key_is_not_blamed_on_slides():
    flat = {"roc_auc": 0.9, "patient_roc_auc": 0.8, "patient_threshold": 0.4}
    with pytest.raises(ConfigError, match="patient_rocauc.*its patient-level keys are: patient_roc_auc"):
        metrics_file.check_gate_keys(flat, "patient_rocauc", (), {})

"""Evaluation maths on hand-computable cases: metrics, threshold rules, calibration, bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import EvaluateConfig
from pipeline.core.errors import ConfigError, DataError
from pipeline.evaluation import metrics
from pipeline.evaluation.bootstrap import cluster_bootstrap_ci, patient_members
from pipeline.evaluation.calibration import expected_calibration_error, reliability_curve
from pipeline.evaluation.patients import aggregate_by_patient
from pipeline.evaluation.threshold import check_config, choose_threshold


def binary_proba(p_pos) -> np.ndarray:
    p = np.asarray(p_pos, dtype=float)
    return np.stack([1 - p, p], axis=1)


def test_perfect_binary_classifier_scores_one_everywhere():
    y = np.array([0, 0, 1, 1])
    out = metrics.headline_metrics(y, binary_proba([0.1, 0.2, 0.8, 0.9]), positive=1, threshold=0.5)
    for key in ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "ppv", "npv", "f1"):
        assert out[key] == pytest.approx(1.0), key
    assert out["roc_auc"] == pytest.approx(1.0)
    assert out["pr_auc"] == pytest.approx(1.0)


def test_known_confusion_matrix_gives_textbook_ratios():
    # 4 positives: 3 caught (TP=3, FN=1); 6 negatives: 2 false alarms (FP=2, TN=4)
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    p = [0.9, 0.8, 0.7, 0.2, 0.6, 0.55, 0.3, 0.2, 0.1, 0.05]
    out = metrics.headline_metrics(y, binary_proba(p), positive=1, threshold=0.5)
    assert out["accuracy"] == pytest.approx(0.7)
    assert out["sensitivity"] == pytest.approx(0.75)
    assert out["specificity"] == pytest.approx(4 / 6)
    assert out["ppv"] == pytest.approx(3 / 5)
    assert out["npv"] == pytest.approx(4 / 5)
    assert out["f1"] == pytest.approx(2 * 0.6 * 0.75 / (0.6 + 0.75))
    assert out["balanced_accuracy"] == pytest.approx((0.75 + 4 / 6) / 2)
    y_pred = metrics.predict_labels(binary_proba(p), 1, 0.5)
    assert metrics.confusion(y, y_pred, 2) == [[4, 2], [1, 3]]


def test_positive_class_index_zero_is_respected():
    y = np.array([0, 0, 1, 1, 1])  # class 0 is the positive one here
    proba = binary_proba([0.2, 0.6, 0.9, 0.8, 0.3])[:, ::-1]  # column 0 = P(class 0)
    out = metrics.headline_metrics(y, proba, positive=0, threshold=0.5)
    assert out["sensitivity"] == pytest.approx(0.5)  # P(class 0) of the positives = .2, .6
    assert out["specificity"] == pytest.approx(1 / 3)  # P(class 0) of the negatives = .9, .8, .3


def test_division_by_zero_gives_none_not_a_crash():
    y = np.array([0, 0, 0, 0])  # no positives at all
    out = metrics.headline_metrics(y, binary_proba([0.1, 0.2, 0.3, 0.4]), positive=1, threshold=0.5)
    assert out["sensitivity"] is None
    assert out["ppv"] is None  # nothing predicted positive
    assert out["roc_auc"] is None and out["pr_auc"] is None
    assert out["specificity"] == pytest.approx(1.0)


def test_multiclass_uses_argmax_and_macro_averages():
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    proba = np.full((6, 3), 0.1)
    proba[np.arange(6), pred] = 0.8
    out = metrics.headline_metrics(y, proba, positive=None, threshold=None)
    assert out["accuracy"] == pytest.approx(4 / 6)
    assert out["sensitivity"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert out["specificity"] == pytest.approx((0.75 + 0.75 + 1.0) / 3)
    per_class = metrics.per_class_metrics(y, proba, ["a", "b", "c"], None, None)
    assert per_class["b"]["sensitivity"] == pytest.approx(1.0)
    assert per_class["b"]["ppv"] == pytest.approx(2 / 3)
    assert per_class["c"]["specificity"] == pytest.approx(1.0)
    assert per_class["a"]["support"] == 2


def test_multiclass_perfect_probabilities_give_auc_one_and_missing_class_none():
    y = np.array([0, 1, 2, 0, 1, 2])
    proba = np.eye(3)[y] * 0.7 + 0.1
    out = metrics.headline_metrics(y, proba, positive=None, threshold=None)
    assert out["roc_auc"] == pytest.approx(1.0)
    assert out["pr_auc"] == pytest.approx(1.0)
    partial = metrics.headline_metrics(np.array([0, 1, 0, 1]), proba[:4], positive=None, threshold=None)
    assert partial["roc_auc"] is None  # one-vs-rest AUC of the absent class is undefined


def test_ece_on_hand_computed_bins():
    hits = np.array([1] * 5 + [0] * 5)
    assert expected_calibration_error(hits, np.full(10, 0.8)) == pytest.approx(0.3)
    calibrated = np.array([0.25] * 4 + [0.75] * 4)
    hits = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    assert expected_calibration_error(hits, calibrated) == pytest.approx(0.0)
    mean_pred, frac, count = reliability_curve(hits, calibrated)
    assert list(count) == [4, 4]
    assert frac == pytest.approx([0.25, 0.75])


def test_youden_threshold_maximises_j_on_validation():
    y = np.array([0, 0, 0, 1, 1, 1], dtype=bool)
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.7, 0.9])
    choice = choose_threshold(y, p, EvaluateConfig(threshold="youden"))
    assert choice.value == pytest.approx(0.4)
    assert "Youden" in choice.rule


def test_sensitivity_rule_takes_highest_threshold_reaching_target():
    y = np.array([0, 0, 0, 1, 1, 1], dtype=bool)
    p = np.array([0.1, 0.5, 0.8, 0.4, 0.7, 0.9])
    choice = choose_threshold(y, p, EvaluateConfig(threshold="sensitivity", target_sensitivity=0.6))
    assert choice.value == pytest.approx(0.7)  # sens 2/3; at 0.8 it is only 1/3
    full = choose_threshold(y, p, EvaluateConfig(threshold="sensitivity", target_sensitivity=1.0))
    assert full.value == pytest.approx(0.4)


def test_fixed_threshold_and_config_checks():
    choice = choose_threshold(
        np.array([True]), np.array([0.3]), EvaluateConfig(threshold="fixed", fixed_threshold=0.3)
    )
    assert choice.value == pytest.approx(0.3)
    with pytest.raises(ConfigError, match="target_sensitivity"):
        check_config(EvaluateConfig(target_sensitivity=1.5))
    with pytest.raises(ConfigError, match="bootstrap"):
        check_config(EvaluateConfig(bootstrap=-1))


def test_single_class_validation_is_a_clear_error():
    with pytest.raises(DataError, match="needs both classes"):
        choose_threshold(np.zeros(5, bool), np.linspace(0, 1, 5), EvaluateConfig(threshold="youden"))


def _noisy_binary(n: int, n_patients: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.35 * y + rng.normal(0.33, 0.2, n), 0.001, 0.999)
    groups = np.array([f"p{i % n_patients}" for i in range(n)])
    return y, binary_proba(p), groups


def test_bootstrap_ci_contains_point_estimate_and_is_seeded():
    y, proba, groups = _noisy_binary(400, 20)

    def fn(rows):
        return metrics.headline_metrics(y[rows], proba[rows], 1, 0.5)

    point = fn(np.arange(len(y)))
    ci = cluster_bootstrap_ci(fn, groups, rounds=60, seed=5)
    for key in ("accuracy", "sensitivity", "specificity", "roc_auc"):
        lo, hi = ci[key]
        assert lo <= point[key] <= hi, key
        assert hi - lo > 0, key
    assert cluster_bootstrap_ci(fn, groups, rounds=60, seed=5) == ci
    assert cluster_bootstrap_ci(fn, groups, rounds=60, seed=6) != ci
    assert cluster_bootstrap_ci(fn, groups, rounds=0, seed=5) == {}


def test_bootstrap_resamples_whole_patients():
    groups = np.array(["a"] * 3 + ["b"] * 5 + ["c"] * 7)
    seen = []

    def fn(rows):
        seen.append(rows)
        return {"n": float(len(rows))}

    cluster_bootstrap_ci(fn, groups, rounds=30, seed=1)
    sizes = {"a": 3, "b": 5, "c": 7}
    for rows in seen:
        counts = {g: int((groups[rows] == g).sum()) for g in sizes}
        assert all(counts[g] % sizes[g] == 0 for g in sizes)  # all images of a drawn patient
    assert [len(m) for m in patient_members(groups)] == [3, 5, 7]


def test_patient_aggregation_any_positive_and_mean_probability():
    y = np.array([0, 1, 0, 0, 0])
    proba = binary_proba([0.2, 0.8, 0.1, 0.3, 0.5])
    patients = np.array(["p1", "p1", "p2", "p2", "p2"])
    y_pat, proba_pat, ids = aggregate_by_patient(y, proba, patients, positive=1)
    assert list(ids) == ["p1", "p2"]
    assert list(y_pat) == [1, 0]
    assert proba_pat[:, 1] == pytest.approx([0.5, 0.3])
    y_multi, _, _ = aggregate_by_patient(np.array([2, 2, 1, 0, 0]), np.full((5, 3), 1 / 3), patients, None)
    assert list(y_multi) == [2, 0]

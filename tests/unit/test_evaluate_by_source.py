"""Source-system evaluation rules: BreakHis per magnification, IDC slide positive fraction,
Kermany patients with bacteria and virus films; the split's > 5-point fraction warning."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from pipeline.config import SplitConfig
from pipeline.evaluation.by_source import source_specific
from pipeline.evaluation.predictions import Predictions, Task
from pipeline.splitting.report import fraction_warnings


def _binary(p1):
    p1 = np.asarray(p1, float)
    return np.stack([1 - p1, p1], axis=1)


def test_breakhis_metrics_per_magnification():
    task = Task(["benign", "malignant"], 1)
    y = np.array([0, 1, 0, 1, 0, 1])
    proba = _binary([0.1, 0.9, 0.2, 0.8, 0.9, 0.1])  # 40X perfect, 400X inverted
    df = pd.DataFrame({"magnification": [40, 40, 40, 40, 400, 400]})
    out = source_specific("breakhis", task, Predictions(y, proba, np.array(["a"] * 6)), df, 0.5)
    per = out["per_magnification"]
    assert set(per) == {"40", "400"} and per["40"]["n_test"] == 4
    assert per["40"]["roc_auc"] == 1.0 and per["400"]["roc_auc"] == 0.0 and per["400"]["accuracy"] == 0.0


def test_idc_slide_positive_fraction_agreement():
    task = Task(["0", "1"], 1)
    slides = np.repeat(["s1", "s2", "s3"], 4)
    y = np.array([1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0])  # true shares .25 .5 .75
    proba = _binary([0.9, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.1, 0.9, 0.9, 0.9, 0.9])  # predicted .25 .75 1
    out = source_specific("idc", task, Predictions(y, proba, slides), pd.DataFrame(index=range(12)), 0.5)
    block = out["slide_positive_fraction"]
    assert block["n_slides"] == 3
    assert block["mean_abs_error"] == round((0 + 0.25 + 0.25) / 3, 4)
    assert block["spearman"] == 1.0


def test_kermany_patient_with_bacteria_and_virus_films():
    task = Task(["NORMAL", "BACTERIA", "VIRUS"], None)
    patients = np.array(["n1", "p1", "p1", "p2"])
    y = np.array([0, 1, 2, 2])
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.1, 0.2, 0.7], [0.1, 0.6, 0.3]])
    block = source_specific("chest_xray", task, Predictions(y, proba, patients), pd.DataFrame(), None)[
        "chest_xray_patients"
    ]
    assert block["patients_with_bacteria_and_virus"] == 1
    assert block["accuracy_any_label"] == round(2 / 3, 4)  # p1 predicted VIRUS: one of its labels
    assert block["pneumonia_roc_auc"] == 1.0


def test_split_fraction_miss_over_five_points_warns():
    cfg = SplitConfig(val_fraction=0.15, test_fraction=0.15)
    assert fraction_warnings({"train": 0.70, "val": 0.16, "test": 0.14}, cfg) == []
    lines = fraction_warnings({"train": 0.62, "val": 0.27, "test": 0.11}, cfg)
    assert len(lines) == 2 and lines[0].startswith("split train holds 62.0% of the images, requested 70.0%")
    assert fraction_warnings({"train": 0.62, "val": 0.27, "test": 0.11}, cfg, ("train", "val")) == []


def test_split_report_carries_the_warning(caplog):
    from pipeline.splitting.report import build

    df = pd.DataFrame(
        {
            "split": ["train"] * 5 + ["val"] * 4 + ["test"],
            "label": [0, 1] * 5,
            "patient_id": [f"p{i}" for i in range(10)],
            "sha256": [f"h{i}" for i in range(10)],
            "path": [f"i{i}.png" for i in range(10)],
        }
    )
    with caplog.at_level(logging.WARNING):
        report = build(df, {"respected": 0}, SplitConfig())
    assert len(report["fraction_warnings"]) == 2 and "split val holds 40.0%" in caplog.text

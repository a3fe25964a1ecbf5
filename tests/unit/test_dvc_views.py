"""What DVC shows by default: `dvc metrics show` is the headline file alone, the plots page has
titled plots with integer epochs and a confusion matrix as report.html draws it, with counts; the
error gallery states the threshold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from dvc_render.vega_templates import get_template

from pipeline.core import dvc_files
from pipeline.evaluation import gallery

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
TEMPLATES = ROOT / ".dvc" / "plots"


def _entries(section: str) -> dict[str, dict]:
    out = {}
    for body in SPEC["stages"].values():
        for entry in body.get(section) or []:
            options = next(iter(entry.values())) if isinstance(entry, dict) else {}
            out[dvc_files.entry_path(entry).as_posix()] = options or {}
    return out


def test_metrics_show_prints_the_headline_files_alone():
    # evaluate's headline; the changes stage's headline is an out (`dvc metrics show <file>`, docs/changes.md)
    assert list(_entries("metrics")) == ["reports/headline.json"]
    outs = _entries("outs")
    for path in (
        "reports/metrics.json",
        "reports/validation/metrics.json",
        "reports/split.json",
        "reports/balance.json",
    ):
        assert outs[path].get("cache") is False  # still written and tracked, not a DVC metric


def test_plots_are_titled_and_none_is_a_whole_csv_titled_by_its_path():
    assert _entries("plots") == {}  # a stage-level plot draws every column under the file's path
    plots = {name: body for plot in SPEC["plots"] for name, body in plot.items()}
    assert set(plots) == {"Loss", "Learning rate", "ROC", "Precision-Recall", "Confusion", "Calibration"}
    for name in ("Loss", "Learning rate"):
        assert plots[name]["template"] == "epochs" and plots[name]["x"] == "epoch"
    assert plots["Learning rate"]["y"] == {"reports/train/history.csv": "learning_rate"}


def test_epoch_axis_is_integer():
    template = get_template("epochs", str(TEMPLATES))  # loads and checks DVC's anchors
    axis = template.content["encoding"]["x"]["axis"]
    assert axis["format"] == "d" and axis["tickMinStep"] == 1


def test_confusion_is_oriented_as_report_html_and_shows_counts():
    confusion = next(p["Confusion"] for p in SPEC["plots"] if "Confusion" in p)
    # report.html (pipeline/evaluation/figures.confusion_figure): predicted across, actual down
    assert confusion["x"] == "predicted" and confusion["y"] == {"reports/eval/confusion.csv": "actual"}
    assert (confusion["x_label"], confusion["y_label"]) == ("Predicted", "Actual")
    template = get_template(confusion["template"], str(TEMPLATES))
    show_values = next(p for p in template.content["params"] if p["name"] == "showValues")
    assert show_values["value"] is True
    text = json.dumps(template.content)
    assert '"mark": "text"' in text and '"field": "xy_count"' in text


def test_gallery_caption_states_positive_probability_against_the_threshold():
    classes = ["non_idc", "idc"]
    test_df = pd.DataFrame({"path": ["a.png", "b.png", "c.png"], "patient_id": ["p1", "p2", "p3"]})
    y = np.array([1, 0, 1])
    proba = np.array([[0.53, 0.47], [0.40, 0.60], [0.1, 0.9]])
    errors = gallery.confident_errors(test_df, y, proba, classes, positive=1, threshold=0.52)
    assert errors["caption"].tolist() == [
        "true non_idc\npred idc\np(idc)=0.60 >= thr 0.52",
        "true idc\npred non_idc\np(idc)=0.47 < thr 0.52",
    ]


def test_gallery_caption_without_a_threshold_is_the_argmax_probability():
    classes = ["a", "b", "c"]
    test_df = pd.DataFrame({"path": ["x.png"], "patient_id": ["p1"]})
    errors = gallery.confident_errors(
        test_df, np.array([0]), np.array([[0.2, 0.5, 0.3]]), classes, None, None
    )
    assert errors["caption"].tolist() == ["true a\npred b p=0.50"]


def test_the_dvc_headline_is_a_few_named_numbers_and_the_gate_metric():
    from pipeline.evaluation.metrics_file import DVC_KEYS, dvc_headline

    metrics = {key: 0.5 for key in (*DVC_KEYS, "ppv", "patient_roc_auc", "roc_auc_ci_lo")}
    assert list(dvc_headline(metrics, "roc_auc")) == list(DVC_KEYS)
    with_gate = dvc_headline(metrics, "patient_roc_auc")
    assert list(with_gate) == [*DVC_KEYS, "patient_roc_auc"] and with_gate["patient_roc_auc"] == 0.5
    # DVC prints a column per key, as wide as its name or value (at least 7): one line of <= 200
    width = len("reports/headline.json") + sum(max(len(k), 7) + 2 for k in with_gate)
    assert width <= 200

"""evaluate stage end to end on a tiny Keras model and tiny synthetic PNG patches."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from helpers.evaluate_inputs import SIZE, brightness_model, small_cfg, write_evaluate_inputs

from pipeline import config
from pipeline.cli import commands as cli
from pipeline.core.errors import ConfigError, DataError
from pipeline.evaluation import predictions, scoring
from pipeline.stages import evaluate

HEADLINE_KEYS = {"accuracy", "balanced_accuracy", "sensitivity", "specificity", "ppv", "npv", "f1"}
HEADLINE_KEYS |= {"roc_auc", "pr_auc", "ece", "threshold", "n_test", "n_test_patients"}
# the helper's test patients are IDC-like slides (4 of 6 hold both classes): patient level is
# positive-share agreement, with no patient_<headline> key (pipeline.evaluation.patient_fraction)
PATIENT_KEYS = {"patient_fraction_mae", "patient_fraction_pearson"}
CI_KEYS = {"roc_auc_ci_lo", "roc_auc_ci_hi"}


def test_run_writes_flat_metrics_diagnostics_plots_and_report(in_tmp):
    inputs, outputs = write_evaluate_inputs(in_tmp)
    summary = evaluate.run(small_cfg(), inputs, outputs)
    metrics = json.loads(outputs["metrics"].read_text())
    diag = json.loads(outputs["diagnostics"].read_text())
    # metrics.json: what `dvc metrics show` prints -- <= 30 flat numbers, no prose, no nesting
    assert set(metrics) == HEADLINE_KEYS | PATIENT_KEYS | CI_KEYS and len(metrics) <= 30
    assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in metrics.values())
    assert metrics["n_test"] == 48 and metrics["n_test_patients"] == 6
    assert 0.0 < metrics["threshold"] < 1.0
    assert metrics["roc_auc"] > 0.7  # brightness separates the classes, with overlap
    assert [metrics["roc_auc_ci_lo"], metrics["roc_auc_ci_hi"]] == diag["ci"]["roc_auc"]
    assert metrics["roc_auc_ci_lo"] <= metrics["roc_auc"] <= metrics["roc_auc_ci_hi"]
    assert diag["patient_level"]["mode"] == "fraction" and "patient_specificity" not in metrics
    assert metrics["patient_fraction_mae"] == diag["patient_level"]["fraction_mae"]
    assert metrics["patient_fraction_pearson"] == diag["patient_level"]["fraction_pearson"]
    assert diag["patient_level"]["threshold"] == metrics["threshold"]  # the image threshold
    lo, hi = diag["patient_level"]["ci"]["fraction_mae"]
    assert lo <= metrics["patient_fraction_mae"] <= hi
    # diagnostics.json: the full result
    assert (
        diag["test_manifest_sha256"] == hashlib.sha256(Path("data/splits/test.csv").read_bytes()).hexdigest()
    )
    for key in HEADLINE_KEYS - {"threshold", "n_test", "n_test_patients"}:
        lo, hi = diag["ci"][key]
        assert lo <= hi
        assert diag[key] == metrics[key]
    assert set(diag["per_class"]) == {"non_idc", "idc"}
    assert diag["patient_level"]["n_patients"] == 6
    assert "Youden" in diag["threshold_rule"] and diag["gate_metric"] == "roc_auc"
    assert summary["n_test"] == 48

    tables = {
        name: pd.read_csv(outputs["plots"] / name)
        for name in ("roc.csv", "pr.csv", "confusion.csv", "calibration.csv")
    }
    assert list(tables["roc.csv"].columns) == ["fpr", "tpr"]
    assert list(tables["pr.csv"].columns) == ["recall", "precision"]
    assert (
        list(tables["confusion.csv"].columns) == ["actual", "predicted"]
        and len(tables["confusion.csv"]) == 48
    )
    assert {"mean_predicted", "fraction_positive"} <= set(tables["calibration.csv"].columns)
    confusion = pd.crosstab(tables["confusion.csv"]["actual"], tables["confusion.csv"]["predicted"])
    assert int(confusion.loc["idc", "idc"]) == diag["confusion_matrix"]["matrix"][1][1]

    html = outputs["report"].read_text()
    assert (
        html.count('<img alt="') == html.count('src="data:image/png;base64,') >= 7
    )  # + history, errors, heat map
    for section in (
        "Headline metrics",
        "ROC",
        "Confusion matrix",
        "Reliability diagram",
        "Training curves",
        "Most confident errors",
        "Slide heat map",
        "Patient-level metrics",
        "Model card",
        "not a diagnostic device",
        diag["test_manifest_sha256"],
    ):
        assert section in html, section


def test_score_model_matches_metrics_json(in_tmp):
    inputs, outputs = write_evaluate_inputs(in_tmp)
    evaluate.run(small_cfg(), inputs, outputs)
    stored = json.loads(outputs["metrics"].read_text())
    model = keras.saving.load_model("models/model.keras", safe_mode=True)
    label_map = json.loads(Path("models/label_map.json").read_text())
    val_df, test_df = pd.read_csv("data/splits/val.csv"), pd.read_csv("data/splits/test.csv")
    scored = scoring.score_model(model, label_map, val_df, test_df, small_cfg().evaluate)
    assert set(scored) == set(stored) - CI_KEYS  # the champion gate sees what metrics.json holds
    for key in scored:
        assert scored[key] == pytest.approx(stored[key]), key


def test_metrics_json_carries_the_ci_of_the_gate_metric(in_tmp):
    inputs, outputs = write_evaluate_inputs(in_tmp)
    cfg = config.from_dict({"evaluate": {"bootstrap": 20}, "gate": {"metric": "patient_sensitivity"}})
    with pytest.raises(ConfigError, match="patient_sensitivity, which this data's"):  # slides: no such key
        evaluate.run(cfg, inputs, outputs)
    assert not outputs["metrics"].exists()
    cfg = config.from_dict({"evaluate": {"bootstrap": 20}, "gate": {"metric": "sensitivity"}})
    evaluate.run(cfg, inputs, outputs)
    metrics = json.loads(outputs["metrics"].read_text())
    diag = json.loads(outputs["diagnostics"].read_text())
    assert {"sensitivity_ci_lo", "sensitivity_ci_hi"} <= set(metrics) and len(metrics) <= 30
    assert not {k for k in metrics if k.startswith("roc_auc_ci")}
    assert metrics["sensitivity_ci_hi"] == diag["ci"]["sensitivity"][1]


def test_threshold_is_chosen_on_validation_only(in_tmp, monkeypatch):
    inputs, outputs = write_evaluate_inputs(in_tmp)
    val_labels = pd.read_csv("data/splits/val.csv")["label"].to_numpy() == 1
    seen = []
    real = scoring.choose_threshold

    def spy(is_pos, p_pos, cfg, what="val images"):
        seen.append((np.asarray(is_pos).copy(), what))
        return real(is_pos, p_pos, cfg, what)

    monkeypatch.setattr(scoring, "choose_threshold", spy)
    evaluate.run(small_cfg(), inputs, outputs)
    first = json.loads(outputs["metrics"].read_text())
    image_calls = [labels for labels, what in seen if what == "val images"]
    assert image_calls and all(np.array_equal(labels, val_labels) for labels in image_calls)
    # slides with both classes: the patient level uses the image threshold, none is chosen on patients
    assert {what for _, what in seen} == {"val images"}
    assert all(len(labels) == 36 for labels, _ in seen)  # the 36 val images, never test

    test_csv = Path("data/preprocessed/test.csv")  # relabelling test must not move the threshold
    df = pd.read_csv(test_csv)
    df["label"] = 1 - df["label"]
    df.to_csv(test_csv, index=False)
    evaluate.run(small_cfg(), inputs, outputs)
    second = json.loads(outputs["metrics"].read_text())
    assert second["threshold"] == pytest.approx(first["threshold"])
    assert second["roc_auc"] == pytest.approx(1 - first["roc_auc"])


def test_tta_option_is_passed_to_predict_images(in_tmp, monkeypatch):
    inputs, outputs = write_evaluate_inputs(in_tmp)
    calls = []
    real = predictions.predict_images

    def spy(*args, **kwargs):
        calls.append(kwargs.get("tta"))
        return real(*args, **kwargs)

    monkeypatch.setattr(predictions, "predict_images", spy)
    evaluate.run(small_cfg(tta=False), inputs, outputs)
    plain = json.loads(outputs["metrics"].read_text())
    evaluate.run(small_cfg(tta=True), inputs, outputs)
    flipped = json.loads(outputs["metrics"].read_text())
    assert calls == [False, False, True, True]
    assert json.loads(outputs["diagnostics"].read_text())["tta"] is True
    # global-average-pooled brightness is flip invariant: TTA must give the same scores
    assert flipped["roc_auc"] == pytest.approx(plain["roc_auc"], abs=1e-6)


def test_multiclass_run_uses_argmax_and_macro_metrics(in_tmp):
    inputs, outputs = write_evaluate_inputs(in_tmp, n_classes=3)
    evaluate.run(small_cfg(), inputs, outputs)
    metrics = json.loads(outputs["metrics"].read_text())
    diag = json.loads(outputs["diagnostics"].read_text())
    assert len(metrics) <= 30 and metrics["threshold"] is None and metrics["patient_threshold"] is None
    assert "argmax" in diag["threshold_rule"]
    assert set(diag["per_class"]) == {"normal", "bacteria", "virus"}
    assert metrics["roc_auc"] > 0.8
    assert metrics["sensitivity"] == pytest.approx(
        np.mean([m["sensitivity"] for m in diag["per_class"].values()])
    )
    html = outputs["report"].read_text()
    assert "macro" in html and "Slide heat map" not in html
    assert len(pd.read_csv(outputs["plots"] / "confusion.csv")) == 48


def test_bad_inputs_are_one_line_errors_and_leave_no_outputs(in_tmp):
    inputs, outputs = write_evaluate_inputs(in_tmp)
    label_map = json.loads(Path("models/label_map.json").read_text())
    label_map["classes"] = ["a", "b", "c"]
    label_map["positive"] = None
    Path("models/label_map.json").write_text(json.dumps(label_map))
    with pytest.raises(DataError, match="model outputs") as err:
        evaluate.run(small_cfg(), inputs, outputs)
    assert "\n" not in str(err.value)
    assert not any(path.exists() for path in outputs.values())
    Path("models/model.keras").unlink()
    with pytest.raises(DataError, match="not found"):
        evaluate.run(small_cfg(), inputs, outputs)


def test_arrays_of_another_size_than_the_model_are_refused(in_tmp):
    inputs, outputs = write_evaluate_inputs(in_tmp)
    label_map = json.loads(Path("models/label_map.json").read_text())
    Path("models/label_map.json").write_text(json.dumps({**label_map, "image_size": SIZE * 2}))
    with pytest.raises(DataError, match="trained on .* but the preprocessed arrays hold"):
        evaluate.run(small_cfg(), inputs, outputs)
    assert not any(path.exists() for path in outputs.values())


def _cli_args(inputs: dict, outputs: dict) -> list[str]:
    flags = [f"-i{k}={v}" for k, v in inputs.items()] + [f"-o{k}={v}" for k, v in outputs.items()]
    return ["stage", "evaluate", *flags]


def test_cli_reports_bad_label_map_in_one_line_and_writes_nothing(in_tmp, capsys):
    inputs, outputs = write_evaluate_inputs(in_tmp)
    Path("params.yaml").write_text("evaluate:\n  bootstrap: 10\n")
    label_map = json.loads(Path("models/label_map.json").read_text())
    Path("models/label_map.json").write_text(json.dumps({**label_map, "positive": "tumour"}))
    assert cli.main(_cli_args(inputs, outputs)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("medpipe: error: label_map.json: positive class 'tumour'")
    assert not any(path.exists() for path in outputs.values())


def test_cli_loads_a_model_with_medpipe_custom_layers_in_a_fresh_process(in_tmp):
    """`medpipe stage evaluate` in a new interpreter: safe-mode loading must find RandomRot90."""
    from pipeline.models.layers import RandomRot90

    inputs, outputs = write_evaluate_inputs(in_tmp)
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), RandomRot90(seed=1), brightness_model()])
    model.save("models/model.keras")
    Path("params.yaml").write_text("evaluate:\n  bootstrap: 10\n")
    cmd = [sys.executable, "-m", "pipeline.cli", *_cli_args(inputs, outputs)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(outputs["metrics"].read_text())["n_test"] == 48

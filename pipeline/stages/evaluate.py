"""evaluate stage: models/ + data/preprocessed -> reports/metrics.json, reports/diagnostics.json,
reports/eval/*.csv (curves and predictions.csv: path, split, label, p_<class>..., predicted),
reports/report.html.

The operating threshold is chosen on the val split and applied to test (pipeline.evaluation.
threshold); test metrics get 95 % CIs by patient (cluster) bootstrap. metrics.json holds at most
30 FLAT numbers (image- and patient-level headline, CIs of gate.metric; the register gate reads
metrics[gate.metric]); diagnostics.json holds the full result: CIs of every metric, per_class,
confusion_matrix, patient_level, threshold_rule, test_manifest_sha256 (pipeline.evaluation.metrics_file).
Images come only from the preprocess stage's arrays (input `preprocessed`: val/test .npy + the
row-aligned manifests); their size, channels and window must match the model's label_map.json.
Optional input `history` (reports/train/history.csv) adds training curves to the report.
All outputs are computed in memory first and written at the end (no partial outputs).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from pipeline import arrays
from pipeline.config import Config
from pipeline.core import manifest
from pipeline.core.errors import DataError
from pipeline.evaluation import curves, metrics_file, report
from pipeline.evaluation.by_source import source_specific
from pipeline.evaluation.model_card import file_sha256
from pipeline.evaluation.prediction_table import FILE_NAME as PREDICTIONS_FILE
from pipeline.evaluation.prediction_table import prediction_table
from pipeline.evaluation.report_context import read_history, report_context, report_figures
from pipeline.evaluation.scoring import Task, evaluate_predictions, load_model, predict_split
from pipeline.evaluation.threshold import check_config

log = logging.getLogger(__name__)
REQUIRED_COLUMNS = ["path", "label", "patient_id"]


def _write_dir(tables: dict, out_dir: Path) -> None:
    staging = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    curves.write_tables(tables, staging)
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)


def _write_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _check_geometry(meta: dict, label_map: dict) -> None:
    """The arrays must be what the model was trained on (size, channels, intensity window)."""
    want = {k: label_map.get(k) for k in ("image_size", "channels", "window")}
    have = {k: meta.get(k) for k in want}
    if "window" not in label_map:
        want["window"] = have["window"]  # a label map from before windows were recorded
    if want != have:
        raise DataError(
            f"the model was trained on {want} but the preprocessed arrays hold {have}; "
            "re-run the stages after preprocess (dvc repro)"
        )


def run(cfg: Config, inputs: dict[str, Path], outputs: dict[str, Path]) -> dict:
    ecfg = cfg.evaluate
    check_config(ecfg)
    model_dir, splits_dir = Path(inputs["model"]), Path(inputs["preprocessed"])
    label_map = manifest.read_json(model_dir / "label_map.json")
    summary_path = model_dir / "train_summary.json"
    train_summary = manifest.read_json(summary_path) if summary_path.is_file() else {}
    task = Task.from_label_map(label_map)
    model = load_model(model_dir / "model.keras")
    meta = arrays.read_meta(splits_dir)
    _check_geometry(meta, label_map)
    val_split, test_split = (
        arrays.load_split(splits_dir, n, meta, REQUIRED_COLUMNS) for n in ("val", "test")
    )
    val_df, test_df = val_split.rows, test_split.rows

    val = predict_split(model, label_map, val_df, ecfg, "val", val_split.images)
    test = predict_split(model, label_map, test_df, ecfg, "test", test_split.images)
    result = evaluate_predictions(task, val, test, ecfg)
    result["test_manifest_sha256"] = file_sha256(splits_dir / "test.csv")
    result["classes"] = task.classes
    result["positive_class"] = label_map.get("positive") if task.positive is not None else None
    result["tta"] = ecfg.tta
    gate = cfg.gate
    metrics = metrics_file.headline(result, gate.metric)
    metrics_file.check_gate_keys(metrics, gate.metric, gate.guard_metrics, gate.min)
    result["by_source"] = source_specific(label_map.get("format"), task, test, test_df, result["threshold"])

    tables = curves.plot_tables(test.y, test.proba, task.classes, task.positive, result["threshold"])
    history = read_history(inputs.get("history"))
    channels = int(label_map["channels"])
    figs = report_figures(task, result, test, test_df, tables, history, channels, test_split.images)
    html = report.render(report_context(cfg, task, label_map, train_summary, result, splits_dir, figs))
    parts = [("val", val_df, val), ("test", test_df, test)]
    tables[PREDICTIONS_FILE] = prediction_table(task, parts, result["threshold"])

    _write_dir(tables, Path(outputs["plots"]))
    _write_text(html, Path(outputs["report"]))
    diagnostics = outputs.get("diagnostics") or Path(outputs["metrics"]).with_name("diagnostics.json")
    manifest.write_json(metrics_file.diagnostics(result, cfg.gate.metric), diagnostics)
    manifest.write_json(metrics, outputs["metrics"])
    if outputs.get("headline"):
        manifest.write_json(metrics_file.dvc_headline(metrics, cfg.gate.metric), outputs["headline"])
    log.info(
        "evaluate: %d test images / %d patients; roc_auc %s, sensitivity %s, specificity %s at threshold %s",
        result["n_test"],
        result["n_test_patients"],
        result["roc_auc"],
        result["sensitivity"],
        result["specificity"],
        result["threshold"],
    )
    keys = ("roc_auc", "balanced_accuracy", "sensitivity", "specificity", "threshold", "n_test")
    return {k: result[k] for k in keys}

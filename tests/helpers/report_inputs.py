"""A report rendered from synthetic predictions (patients, images, history) in the working directory."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from pipeline import config
from pipeline.evaluation import curves, report
from pipeline.evaluation.report_context import report_context, report_figures
from pipeline.evaluation.scoring import Predictions, Task, evaluate_predictions


def synthetic_predictions(
    rng, n_patients: int, per_patient: int, prefix: str
) -> tuple[Predictions, pd.DataFrame]:
    rows, ys, ps = [], [], []
    Path("img").mkdir(exist_ok=True)
    for p in range(n_patients):
        for j in range(per_patient):
            y = 0 if p == 0 else int(rng.random() < 0.4)
            prob = float(np.clip(0.3 * y + rng.normal(0.35, 0.2), 0.01, 0.99))
            path = f"img/{prefix}{p}_{j}.png"
            cv2.imwrite(path, np.full((12, 12, 3), int(80 + 120 * prob), np.uint8))
            rows.append(
                {
                    "path": path,
                    "label": y,
                    "patient_id": f"{prefix}{p}",
                    "x": 50 * (j % 5),
                    "y": 50 * (j // 5),
                }
            )
            ys.append(y)
            ps.append(prob)
    df = pd.DataFrame(rows)
    p = np.array(ps)
    return Predictions(np.array(ys), np.stack([1 - p, p], 1), df["patient_id"].to_numpy()), df


def render_synthetic(
    root: Path, classes=("benign", "malignant"), history: bool = True, params: dict | None = None
) -> tuple[str, dict]:
    """A full report from synthetic predictions (no model), written under root (the cwd); `params`
    sections are added to the params it is rendered with."""
    rng = np.random.default_rng(3)
    cfg = config.from_dict({"evaluate": {"bootstrap": 30}, **(params or {})})
    task = Task(list(classes), 1)
    val, _ = synthetic_predictions(rng, 5, 20, "v")
    test, test_df = synthetic_predictions(rng, 5, 25, "t")
    splits = root / "splits"
    splits.mkdir()
    test_df.to_csv(splits / "test.csv", index=False)
    result = evaluate_predictions(task, val, test, cfg.evaluate)
    result["test_manifest_sha256"] = "ab" * 32
    tables = curves.plot_tables(test.y, test.proba, task.classes, 1, result["threshold"])
    hist = pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "loss": [0.9, 0.6, 0.5],
            "val_loss": [0.95, 0.7, 0.65],
            "accuracy": [0.5, 0.7, 0.8],
            "val_accuracy": [0.5, 0.65, 0.7],
        }
    )
    figs = report_figures(task, result, test, test_df, tables, hist if history else None, 3)
    label_map = {
        "classes": list(classes),
        "positive": classes[1],
        "image_size": 12,
        "channels": 3,
        "format": "idc",
    }
    context = report_context(cfg, task, label_map, {"epochs_run": 3}, result, splits, figs)
    return report.render(context), result

"""reports/eval/predictions.csv: one row per val/test image with its class probabilities.

Columns: path, split, label (true class name), p_<class> per class, predicted (class name at the
val-chosen threshold; argmax for multi-class). The same numbers the MLflow pyfunc model and
`medpipe predict` return for these files (within float formatting).
"""

from __future__ import annotations

import pandas as pd

from pipeline.evaluation.metrics import predict_labels
from pipeline.evaluation.predictions import Predictions, Task

FILE_NAME = "predictions.csv"


def prediction_table(
    task: Task, parts: list[tuple[str, pd.DataFrame, Predictions]], threshold
) -> pd.DataFrame:
    """Rows of every (split name, manifest, predictions) part, in manifest order."""
    frames = []
    for split, df, pred in parts:
        frame = pd.DataFrame({"path": df["path"].astype(str).to_numpy(), "split": split})
        frame["label"] = [task.classes[i] for i in pred.y]
        for i, name in enumerate(task.classes):
            frame[f"p_{name}"] = pred.proba[:, i]
        frame["predicted"] = [task.classes[i] for i in predict_labels(pred.proba, task.positive, threshold)]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)

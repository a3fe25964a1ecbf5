"""The gate's second comparison: champion and challenger on the images added since the champion.

The fair subset (design of issue #19) is the images added or changed since the champion that are
in the CURRENT TEST split: the champion never saw them, the challenger did not train on them. The
`changes` stage scores the champion on every new labelled image (reports/changes/
champion_predictions.csv: path, sha256, patient_id, label, class_name, split, p_<class>...); the
challenger's probabilities are its evaluate stage's reports/eval/predictions.csv. `compare` computes
gate.metric for both on exactly the paths in both tables and passes when
challenger >= champion - gate.new_data_margin. Fewer than gate.new_data_min_images images, a single
class, or a metric that is undefined there: "not applicable", which never blocks a promotion.

The result is a plain dict (it goes into registered.json as gate.new_data):
{"applicable", "n", "n_patients", "metric", "champion", "challenger", "margin", "pass", "reason"};
"pass" is true whenever the check does not block (not applicable included).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pipeline.evaluation.metrics import headline_metrics
from pipeline.evaluation.metrics_file import PATIENT
from pipeline.evaluation.patients import aggregate_by_patient

_EPS = 1e-12  # float noise, as in pipeline.registry.gate


def not_applicable(reason: str, metric: str, margin: float, n: int = 0) -> dict:
    """The check that does not block: why it could not compare."""
    return {
        "applicable": False,
        "n": n,
        "n_patients": None,
        "metric": metric,
        "champion": None,
        "challenger": None,
        "margin": margin,
        "pass": True,
        "reason": f"not applicable (n={n}): {reason}",
    }


def _proba(rows: pd.DataFrame, classes: list[str]) -> np.ndarray | None:
    columns = [f"p_{c}" for c in classes]
    if any(c not in rows.columns for c in columns):
        return None
    return rows[columns].to_numpy(dtype=np.float64)


def metric_value(
    metric: str,
    y: np.ndarray,
    proba: np.ndarray,
    patients: np.ndarray,
    positive: int | None,
    threshold: float | None,
) -> float | None:
    """gate.metric on these rows; patient_<m>: on patient means (pipeline.evaluation.patients)."""
    if metric.startswith(PATIENT):
        y, proba, _ = aggregate_by_patient(y, proba, patients, positive)
        metric = metric.removeprefix(PATIENT)
    value = headline_metrics(y, proba, positive, threshold).get(metric)
    return value if value is not None and math.isfinite(value) else None


def compare(
    champion_rows: pd.DataFrame,
    challenger_rows: pd.DataFrame,
    *,
    metric: str,
    classes: list[str],
    positive: str | None,
    champion_threshold: float | None,
    challenger_threshold: float | None,
    margin: float,
    min_images: int,
) -> dict:
    """gate.metric of both models on the paths present in both tables (champion rows: the new
    test images; the truth is their class_name). Pure: no I/O."""
    champ = champion_rows.drop_duplicates("path").set_index("path")
    chall = challenger_rows.drop_duplicates("path").set_index("path")
    common = champ.index.intersection(chall.index)
    champ, chall = champ.loc[common], chall.loc[common]
    known = champ["class_name"].astype(str).isin(classes).to_numpy()
    champ, chall = champ[known], chall[known]
    n = len(champ)
    if n < min_images:
        return not_applicable(
            f"{n} new test images < gate.new_data_min_images {min_images}", metric, margin, n
        )
    y = np.array([classes.index(c) for c in champ["class_name"].astype(str)], dtype=int)
    if len(np.unique(y)) < 2:
        return not_applicable(f"the new test images hold one class only ({classes[y[0]]})", metric, margin, n)
    p_champ, p_chall = _proba(champ, classes), _proba(chall, classes)
    if p_champ is None or p_chall is None:
        missing = "champion" if p_champ is None else "challenger"
        return not_applicable(
            f"the {missing} predictions lack a p_<class> column of {classes}", metric, margin, n
        )
    patients = champ["patient_id"].to_numpy() if "patient_id" in champ.columns else common.to_numpy()
    pos = classes.index(positive) if positive in classes and len(classes) == 2 else None
    old = metric_value(metric, y, p_champ, patients, pos, champion_threshold)
    new = metric_value(metric, y, p_chall, patients, pos, challenger_threshold)
    if old is None or new is None:
        return not_applicable(f"{metric} is undefined on the new test images", metric, margin, n)
    passed = new + _EPS >= old - margin
    delta = new - old
    verdict = "within" if passed else "worse than"
    reason = (
        f"on {n} new test images {metric} {new:.4f} vs the champion's {old:.4f} "
        f"({delta:+.4f}, {verdict} the margin {margin:.4f})"
    )
    return {
        "applicable": True,
        "n": n,
        "n_patients": int(pd.Series(patients).nunique()),
        "metric": metric,
        "champion": old,
        "challenger": new,
        "margin": margin,
        "pass": bool(passed),
        "reason": reason,
    }

"""gate.min: the floor a model must pass before it may hold an alias, whether or not there is a
champion. Semantics: every named metric must be STRICTLY above its floor (`sensitivity: 0` means
sensitivity > 0); a missing or undefined value fails. The floor "chance" is the chance level of
the metric: 0.5 for ROC AUC, 1 / number of classes for balanced accuracy.

Only metrics where higher is better can have a floor: the image- and patient-level headline keys
of reports/metrics.json (pipeline.evaluation.metrics_file) minus ece, threshold and counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.config.schema import Config

_IMAGE = (
    "accuracy",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "f1",
    "roc_auc",
    "pr_auc",
)
FLOOR_METRICS = (*_IMAGE, *(f"patient_{m}" for m in _IMAGE))
CHANCE = "chance"
CHANCE_METRICS = ("roc_auc", "balanced_accuracy", "patient_roc_auc", "patient_balanced_accuracy")


def chance_level(metric: str, n_classes: int) -> float:
    """The value a classifier that guesses reaches on `metric` (a CHANCE_METRICS name)."""
    if metric.removeprefix("patient_") == "roc_auc":
        return 0.5
    return 1.0 / max(n_classes, 1)


def check_floors(cfg: Config) -> str | None:
    """Load-time check of gate.min: known metric names, "chance" only where it is defined."""
    for metric, floor in cfg.gate.min.items():
        if metric not in FLOOR_METRICS:
            return (
                f"params: 'gate.min' names metric {metric!r}, which reports/metrics.json does not carry "
                f"(or where lower is better); accepted: {', '.join(FLOOR_METRICS)}"
            )
        if floor == CHANCE and metric not in CHANCE_METRICS:
            return (
                f"params: 'gate.min.{metric}' is 'chance', which is defined only for "
                f"{', '.join(CHANCE_METRICS)}; give a number in [0, 1]"
            )
    return None

"""Render the self-contained HTML evaluation report (jinja2, autoescape on)."""

from __future__ import annotations

import jinja2

from pipeline.evaluation.metrics import HEADLINE
from pipeline.evaluation.patient_fraction import FRACTION, FRACTION_KEYS
from pipeline.evaluation.report_template import METRIC_TABLE_MACRO, TEMPLATE

LABELS = {
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "sensitivity": "Sensitivity (recall)",
    "specificity": "Specificity",
    "ppv": "PPV (precision)",
    "npv": "NPV",
    "f1": "F1",
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC (average precision)",
    "ece": "ECE (10 bins)",
    "fraction_mae": "Positive share: mean absolute error (predicted vs true, per patient)",
    "fraction_pearson": "Positive share: Pearson r over patients",
}
REQUIRED_FIGURES = ("roc", "pr", "confusion", "calibration")


def num(value: object) -> str:
    """Numbers to 3 decimals, None as n/a, anything else as text."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def metric_rows(values: dict, ci: dict, macro: bool) -> list[dict]:
    """Table rows (key, label, value, ci): the headline metrics, or the positive-share agreement
    of a patient_level block in FRACTION mode."""
    suffix = " (macro)" if macro else ""
    rows = []
    for key in FRACTION_KEYS if values.get("mode") == FRACTION else HEADLINE:
        label = LABELS[key] + (suffix if key in ("sensitivity", "specificity", "ppv", "npv", "f1") else "")
        rows.append({"key": key, "label": label, "value": values.get(key), "ci": ci.get(key)})
    return rows


def render(context: dict) -> str:
    """HTML text; context needs headline, ci, figures (base64 PNG strings) and the model-card facts."""
    missing = [name for name in REQUIRED_FIGURES if not context["figures"].get(name)]
    if missing:
        raise ValueError(f"report figures missing: {', '.join(missing)}")
    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["num"] = num
    template = env.from_string(METRIC_TABLE_MACRO + TEMPLATE)
    macro = context["positive"] is None
    context = {
        **context,
        "rows": metric_rows(context["headline"], context["ci"], macro),
        "patient_rows": metric_rows(context["patient"], context["patient"].get("ci", {}), macro),
    }
    return template.render(**context)

"""Render reports/changes.html from the changes.json document (jinja2, autoescape on)."""

from __future__ import annotations

import jinja2
import pandas as pd

from pipeline.changes import summary
from pipeline.changes.plots import property_figures
from pipeline.changes.report_template import TEMPLATE
from pipeline.evaluation.report import num

STATUS_WORDS = {"compared": "Compared", "baseline": "Baseline", "unavailable": "Comparison unavailable"}
COUNTS = (
    ("added", "added"),
    ("removed", "removed"),
    ("changed", "changed bytes"),
    ("relabelled", "relabelled"),
    ("new_patients", "new patients"),
    ("drift_flags", "drift flags"),
)


def render(doc: dict, properties: pd.DataFrame, gate_metric: str) -> str:
    """The page's HTML text (deterministic for a given document and property table)."""
    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["num"] = num
    flags = summary.flags(doc)
    values = {k: doc.get(k, 0) for k in ("added", "removed", "changed", "relabelled")}
    values["new_patients"] = (doc.get("patients") or {}).get("new", 0)
    values["drift_flags"] = len(flags)
    return env.from_string(TEMPLATE).render(
        doc=doc,
        status_word=STATUS_WORDS.get(doc["status"], doc["status"]),
        counts=COUNTS,
        values=values,
        flags=flags,
        scored=doc.get("champion_on_new"),
        gate_metric=gate_metric,
        figures=property_figures(properties),
    )

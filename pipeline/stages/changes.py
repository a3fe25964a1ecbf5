"""changes stage: what changed since the champion -> reports/changes.json, reports/changes.html,
reports/changes/ (champion_predictions.csv, properties.csv) and reports/changes_headline.json.

Runs after preprocess (its arrays are reused, nothing is re-decoded) and before train, on every
`dvc repro` (always_changed: the champion in the MLflow registry is an input DVC cannot hash).
Its outputs are byte-deterministic, so an unchanged night changes nothing downstream. No champion
(status "baseline") and a champion that cannot be compared (status "unavailable") are outcomes,
not errors: the stage succeeds and says so in one line (pipeline.changes.compute).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.changes.compute import Inputs, compute, write
from pipeline.config import Config

log = logging.getLogger(__name__)


def run(cfg: Config, inputs: dict[str, Path], outputs: dict[str, Path]) -> dict:
    result = compute(
        cfg,
        Inputs(
            validated=Path(inputs["validated"]),
            splits=Path(inputs["splits"]),
            preprocessed=Path(inputs["preprocessed"]) if inputs.get("preprocessed") else None,
            labels=Path(inputs["labels"]) if inputs.get("labels") else None,
        ),
    )
    write(result, cfg, outputs)
    doc = result.doc
    log.info(
        "changes: %s (%s); added %d, removed %d, changed %d, relabelled %d",
        doc["status"],
        doc["reason"],
        doc["added"],
        doc["removed"],
        doc["changed"],
        doc["relabelled"],
    )
    return {k: doc[k] for k in ("status", "added", "removed", "changed", "relabelled")}

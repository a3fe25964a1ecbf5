"""The whole `changes` computation, shared by the stage and `medpipe changes`: find the champion,
read its manifests, compare, render; then (the stage, or `medpipe changes --write`) write the outputs.

Statuses: "compared"; "baseline" (no champion yet, or changes.enabled false: the current profile
only); "unavailable" (the champion's record, data or class set cannot be compared: one line in
`reason`). Neither of the last two raises: a nightly run carries on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.exceptions import MlflowException

from pipeline.changes import champion as champions
from pipeline.changes import lineage, report, summary
from pipeline.changes.compare import Comparison, check_classes, compare
from pipeline.changes.score import FILE_NAME, columns
from pipeline.config import Config
from pipeline.core import manifest
from pipeline.core.errors import MedpipeError

log = logging.getLogger(__name__)
PROPERTIES_FILE = "properties.csv"


@dataclass(frozen=True)
class Inputs:
    validated: Path
    splits: Path
    preprocessed: Path | None = None
    labels: Path | None = None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _empty(doc: dict, classes: list[str]) -> Comparison:
    return Comparison(doc, pd.DataFrame(columns=columns(classes)))


def compute(cfg: Config, inputs: Inputs, since: str | None = None, root: Path = Path(".")) -> Comparison:
    """The night's Comparison (summary document, champion predictions, property table)."""
    now = lineage.read_now(inputs.validated, inputs.splits)
    labels = manifest.read_json(inputs.labels) if inputs.labels and Path(inputs.labels).is_file() else None
    classes = [
        str(c)
        for c in (labels or {}).get("classes") or sorted(now["class_name"].dropna().astype(str).unique())
    ]
    if not cfg.changes.enabled:
        return _empty(
            summary.document("baseline", "changes.enabled is false: the current profile only", now), classes
        )
    champ = None
    try:
        champ = champions.find(cfg, since, root)
        if champ is None:
            reason = "no champion yet: this night is the baseline profile, nothing to compare with"
            return _empty(summary.document("baseline", reason, now), classes)
        check_classes(champ, labels)
        then = lineage.read_then(root, champ.hashes)
        return compare(cfg, champ, then, now, inputs.preprocessed)
    except (lineage.Unavailable, MedpipeError, MlflowException, OSError, ValueError, KeyError) as exc:
        reason = _one_line(exc) if not isinstance(exc, KeyError) else f"the champion's record lacks {exc}"
        log.warning("changes: unavailable: %s", reason)
        log.debug("changes: unavailable", exc_info=True)
        record = champ.record() if champ else None
        return _empty(
            summary.document("unavailable", reason, now, record), champ.classes if champ else classes
        )


def write(result: Comparison, cfg: Config, outputs: dict[str, Path]) -> None:
    """changes.json, changes.html, reports/changes/ (predictions + property table), the headline."""
    doc = result.doc
    folder = Path(outputs["dir"])
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    result.predictions.to_csv(staging / FILE_NAME, index=False, float_format="%.6g")
    if len(result.properties):
        result.properties.to_csv(staging / PROPERTIES_FILE, index=False, float_format="%.6g")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    manifest.write_json(doc, outputs["summary"])
    html = report.render(doc, result.properties, cfg.gate.metric)
    Path(outputs["report"]).parent.mkdir(parents=True, exist_ok=True)
    Path(outputs["report"]).write_text(html, encoding="utf-8")
    if outputs.get("headline"):
        manifest.write_json(summary.headline(doc, cfg.gate.metric), outputs["headline"])
    if outputs.get("gate"):
        manifest.write_json(gate_document(doc, folder / FILE_NAME), outputs["gate"])


def gate_document(doc: dict, predictions: Path) -> dict:
    """reports/changes_gate.json, the register stage's one DVC dependency on this stage: only what
    the gate's new-data check reads. It is the same file whenever no new labelled image was scored
    (first night, nothing new, unavailable), so register does not rerun for a report-only change;
    with new images it names the champion and pins champion_predictions.csv by its sha256."""
    scored = doc.get("champion_on_new") or {}
    if doc.get("status") != "compared" or not scored.get("n"):
        return {"schema": 1, "comparable": False}
    return {
        "schema": 1,
        "comparable": True,
        "champion": doc.get("champion"),
        "n": int(scored["n"]),
        "predictions_sha256": hashlib.sha256(predictions.read_bytes()).hexdigest(),
    }


def dumps(doc: dict) -> str:
    """The summary as `medpipe changes --json` prints it."""
    return json.dumps(doc, indent=2, sort_keys=True, default=str)

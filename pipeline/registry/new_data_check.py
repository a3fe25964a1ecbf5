"""The new-data check of the register stage: read what the `changes` stage wrote, decide whether a
comparison is possible, compare (pipeline.registry.new_data), and fold the verdict into the gate.

Inputs (all optional, so a project without the `changes` stage still registers):
  reports/changes_gate.json                   comparable or not; the champion; the sha256 of:
  reports/changes/champion_predictions.csv    the champion on every new labelled image
  reports/eval/predictions.csv                the challenger (its evaluate stage)
Anything missing, nothing new scored by the champion, a predictions file other than the pinned one, a champion that is not the registry's champion
now, or another class set: "not applicable" with the reason, never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd

from pipeline.config import GateConfig
from pipeline.evaluation.metrics_file import PATIENT
from pipeline.registry import new_data
from pipeline.registry.gate import Decision

log = logging.getLogger(__name__)
CHAMPION_PREDICTIONS = "champion_predictions.csv"
CHALLENGER_PREDICTIONS = "predictions.csv"


def _read_json(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None
    return doc if isinstance(doc, dict) else None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _test_rows(path: Path) -> pd.DataFrame | None:
    """The split == test rows of a predictions table, or None when it is missing or unreadable."""
    try:
        table = pd.read_csv(path, dtype={"path": str, "split": str, "class_name": str, "patient_id": str})
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None
    if "path" not in table.columns or "split" not in table.columns:
        log.warning("%s has no path/split columns", path)
        return None
    return table[table["split"] == "test"]


def _thresholds(metric: str, champion: dict, metrics: dict) -> tuple[float | None, float | None]:
    key = "patient_threshold" if metric.startswith(PATIENT) else "threshold"
    champ = champion.get(key, champion.get("threshold"))
    chall = metrics.get(key)
    as_float = lambda v: float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None  # noqa: E731
    return as_float(champ), as_float(chall)


def check(
    inputs: dict[str, Path],
    champion_version: str | None,
    label_map: dict,
    metrics: dict,
    cfg: GateConfig,
) -> dict:
    """gate.new_data of registered.json (see pipeline.registry.new_data for its keys)."""
    metric, margin = cfg.metric, cfg.new_data_margin
    skip = lambda why, n=0: new_data.not_applicable(why, metric, margin, n)  # noqa: E731
    gate_file = inputs.get("changes_gate")
    if gate_file is None or not Path(gate_file).is_file():
        return skip("no reports/changes_gate.json (no changes stage in this project, or it did not run)")
    doc = _read_json(Path(gate_file))
    if doc is None:
        return skip(f"{gate_file} is not a readable JSON object")
    if not doc.get("comparable"):
        return skip("no new labelled image was scored by the champion (reports/changes.json says why)")
    champion = doc.get("champion") or {}
    if champion_version is None:
        return skip("no champion in the registry")
    if str(champion.get("version")) != str(champion_version):
        return skip(
            f"the changes stage compared with champion v{champion.get('version')}, the champion is v{champion_version}"
        )
    classes = [str(c) for c in label_map.get("classes") or []]
    if [str(c) for c in champion.get("classes") or []] != classes:
        return skip(f"the champion's classes {champion.get('classes')} are not the challenger's {classes}")
    champ_file = Path(inputs.get("changes_dir") or Path(gate_file).parent / "changes") / CHAMPION_PREDICTIONS
    if not champ_file.is_file() or _sha256(champ_file) != doc.get("predictions_sha256"):
        return skip(
            f"{champ_file} is missing or not the one changes_gate.json pins (rerun the changes stage)"
        )
    champ_rows = _test_rows(champ_file)
    if champ_rows is None:
        return skip(f"no readable {champ_file}")
    plots = inputs.get("plots")
    chall_rows = _test_rows(Path(plots) / CHALLENGER_PREDICTIONS) if plots else None
    if chall_rows is None:
        return skip("no readable challenger predictions (reports/eval/predictions.csv)")
    champ_threshold, chall_threshold = _thresholds(metric, champion, metrics)
    try:
        return new_data.compare(
            champ_rows,
            chall_rows,
            metric=metric,
            classes=classes,
            positive=label_map.get("positive"),
            champion_threshold=champ_threshold,
            challenger_threshold=chall_threshold,
            margin=margin,
            min_images=cfg.new_data_min_images,
        )
    except (KeyError, TypeError, ValueError) as exc:  # a malformed table must not block registration
        log.warning("new-data comparison failed: %s", exc)
        return skip(f"the prediction tables could not be compared ({type(exc).__name__}: {exc})")


def apply(decision: Decision, result: dict) -> Decision:
    """The decision with the new-data verdict: a frozen-test promotion is refused when the
    challenger is worse than the champion beyond the margin on the new test images."""
    decision = replace(decision, new_data=result)
    if not result.get("applicable"):
        return decision
    if decision.promote and not result["pass"]:
        reason = f"refused on new data: {result['reason']}; frozen test: {decision.reason}"
        return replace(decision, promote=False, reason=reason)
    return replace(decision, reason=f"{decision.reason}; new data: {result['reason']}")

"""Shared helpers (not tests): what the `changes` stage writes, in the documented format (design of
issue #19), and the challenger's reports/eval/predictions.csv, for tests of the gate's new-data check.

reports/changes.json                       {"schema": 1, "status", "reason", "champion", counts, ...}
reports/changes/champion_predictions.csv   path, sha256, patient_id, label, class_name, split, p_<class>...
reports/eval/predictions.csv               path, split, label (class name), p_<class>..., predicted
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.changes.compute import gate_document

CLASSES = ("neg", "pos")
CHAMPION_COLUMNS = ["path", "sha256", "patient_id", "label", "class_name", "split"]


def scored_rows(
    n_pos: int, n_neg: int, misranked: int = 0, split: str = "test", prefix: str = "data/raw/new"
) -> pd.DataFrame:
    """Binary rows in the champion_predictions.csv format. Positives score 0.6-0.9 and negatives
    0.1-0.4 (ROC AUC 1), except the first `misranked` positives, which score 0.01: below every
    negative, so ROC AUC = 1 - misranked / n_pos exactly."""
    p_pos = np.concatenate([np.linspace(0.6, 0.9, n_pos), np.linspace(0.1, 0.4, n_neg)])
    p_pos[:misranked] = 0.01
    names = ["pos"] * n_pos + ["neg"] * n_neg
    paths = [f"{prefix}/{name}/img{i}.png" for i, name in enumerate(names)]
    return pd.DataFrame(
        {
            "path": paths,
            "sha256": [hashlib.sha256(p.encode()).hexdigest() for p in paths],
            "patient_id": [f"p{i // 2}" for i in range(len(paths))],  # two images per patient
            "label": [CLASSES.index(n) for n in names],
            "class_name": names,
            "split": split,
            "p_neg": 1 - p_pos,
            "p_pos": p_pos,
        }
    )


def challenger_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The same images in the evaluate stage's predictions.csv format."""
    table = rows[["path", "split"]].copy()
    table["label"] = rows["class_name"]
    table["p_neg"], table["p_pos"] = rows["p_neg"], rows["p_pos"]
    table["predicted"] = np.where(rows["p_pos"] >= 0.5, "pos", "neg")
    return table


def changes_doc(
    status: str = "compared",
    champion_version: str | None = "1",
    classes: tuple[str, ...] = CLASSES,
    threshold: float | None = 0.5,
    added: int = 0,
) -> dict:
    """reports/changes.json (schema 1) with the counts zero unless given."""
    champion = (
        {
            "name": "m",
            "version": champion_version,
            "run_id": "r" * 32,
            "threshold": threshold,
            "classes": list(classes),
            "positive": classes[-1],
        }
        if champion_version is not None
        else None
    )
    reasons = {"baseline": "no champion yet", "unavailable": "the champion's manifests are gone"}
    return {
        "schema": 1,
        "status": status,
        "reason": reasons.get(status, f"{added} images added since the champion"),
        "champion": champion,
        "added": added,
        "removed": 0,
        "changed": 0,
        "relabelled": 0,
        "by_class": {},
        "by_split": {},
        "patients": {},
        "vanished_classes": [],
        "new_classes": [],
        "balance": {"then": {}, "now": {}},
        "drift": [],
        "embedding": None,
        "champion_on_new": None,
    }


def write_changes(root: Path, doc: dict, champion_rows: pd.DataFrame | None = None) -> None:
    """reports/changes.json, reports/changes.html, reports/changes/champion_predictions.csv
    (header only when no rows: nothing new) and reports/changes_gate.json."""
    reports = root / "reports"
    (reports / "changes").mkdir(parents=True, exist_ok=True)
    (reports / "changes.json").write_text(json.dumps(doc, indent=2))
    (reports / "changes.html").write_text(f"<html><body>changes: {doc['status']}</body></html>")
    columns = CHAMPION_COLUMNS + [f"p_{c}" for c in CLASSES]
    rows = champion_rows if champion_rows is not None else pd.DataFrame(columns=columns)
    rows.to_csv(reports / "changes" / "champion_predictions.csv", index=False)
    # changes_gate.json as the changes stage writes it (pipeline.changes.compute.gate_document)
    scored = doc.get("champion_on_new") or ({"n": len(rows)} if len(rows) else None)
    gate = gate_document({**doc, "champion_on_new": scored}, reports / "changes" / "champion_predictions.csv")
    (reports / "changes_gate.json").write_text(json.dumps(gate, indent=2))


def write_challenger_predictions(root: Path, rows: pd.DataFrame) -> None:
    """reports/eval/predictions.csv holding these rows (challenger probabilities)."""
    (root / "reports" / "eval").mkdir(parents=True, exist_ok=True)
    challenger_table(rows).to_csv(root / "reports" / "eval" / "predictions.csv", index=False)

"""reports/changes.json (schema 1, the contract the gate reads) and the DVC headline metrics.

Every document has the same keys whatever the status, so readers never test for presence: a
baseline or unavailable night has zero counts, empty lists and null blocks, plus the current
`profile` (images, patients and classes now). Plain JSON types only; no timestamps (the stage's
outputs are byte-deterministic, so nothing downstream reruns when nothing changed).
"""

from __future__ import annotations

import pandas as pd

SCHEMA = 1
COUNTS = ("added", "removed", "changed", "relabelled")


def profile(now: pd.DataFrame) -> dict:
    """The current data at a glance: images, patients, images per class and per split."""
    split = now["split"].astype("string").fillna("none")
    return {
        "images": int(len(now)),
        "patients": int(now["patient_id"].nunique(dropna=True)),
        "by_class": {
            str(k): int(v) for k, v in now["class_name"].astype(str).value_counts().sort_index().items()
        },
        "by_split": {str(k): int(v) for k, v in split.value_counts().sort_index().items()},
    }


def relabels(then: pd.DataFrame, now: pd.DataFrame) -> list[dict]:
    """Same path and bytes, other class: [{"from", "to", "n"}], largest batch first."""
    both = now[["path", "sha256", "class_name"]].merge(
        then[["path", "sha256", "class_name"]], on=["path", "sha256"], suffixes=("", "_then")
    )
    moved = both[both["class_name"].astype(str) != both["class_name_then"].astype(str)]
    pairs = moved.groupby(["class_name_then", "class_name"], observed=True).size()
    out = [{"from": str(a), "to": str(b), "n": int(n)} for (a, b), n in pairs.items()]
    return sorted(out, key=lambda r: (-r["n"], r["from"], r["to"]))


def document(status: str, reason: str, now: pd.DataFrame, champion: dict | None = None, **parts) -> dict:
    """The changes.json mapping; `parts` fill the comparison keys (diff counts, drift, ...)."""
    diff = parts.get("diff") or {}
    current = profile(now)
    return {
        "schema": SCHEMA,
        "status": status,
        "reason": reason,
        "champion": champion,
        **{k: int(diff.get(k, 0)) for k in COUNTS},
        "by_class": diff.get("by_class", {}),
        "by_split": diff.get("by_split", {}),
        "patients": diff.get("patients", {"now": current["patients"]}),
        "vanished_classes": list(diff.get("vanished_classes", [])),
        "new_classes": list(diff.get("new_classes", [])),
        "relabels": parts.get("relabels", []),
        "balance": {"then": parts.get("balance_then"), "now": current["by_class"]},
        "drift": parts.get("drift", []),
        "embedding": parts.get("embedding"),
        "champion_on_new": parts.get("champion_on_new"),
        "new_images": int(parts.get("new_images", 0)),
        "profile": current,
    }


def flags(doc: dict) -> list[str]:
    """One line per raised flag (the first screen, the Prefect artifact)."""
    lines = [
        f"{d.get('class') or 'unlabelled'}: {d.get('detail') or d['name']}"
        for d in doc["drift"]
        if d.get("flag")
    ]
    emb = doc.get("embedding")
    if emb and emb.get("flag"):
        lines.append(f"embedding drift: MMD p = {emb['p_value']:.3g} < alpha {emb['alpha']:g}")
    return lines


def headline(doc: dict, gate_metric: str) -> dict:
    """reports/changes_headline.json: at most 10 numbers (`dvc metrics diff` shows the trend)."""
    out = {k: doc[k] for k in COUNTS}
    out["new_patients"] = int((doc.get("patients") or {}).get("new", 0))
    out["drift_flags"] = len(flags(doc))
    emb = doc.get("embedding")
    if emb and emb.get("p_value") is not None:
        out["embedding_p"] = round(float(emb["p_value"]), 6)
    scored = doc.get("champion_on_new")
    if scored:
        out["champion_new_n"] = int(scored["n"])
        value = (scored["metrics"].get(gate_metric) or {}).get("value")
        if value is not None:
            out[f"champion_new_{gate_metric}"] = round(float(value), 6)
    return out

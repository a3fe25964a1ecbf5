"""The comparison of one night with the champion: diff, property drift, embedding test, champion
scored on the new images. Statistics are pipeline.drift's; this module picks rows and pixels.

Rows compared: the champion's manifest (then) against the current one (now); NEW rows are those
added or changed since (pipeline.drift.new_rows). Property drift compares the new rows with a
seeded sample of the champion's unchanged rows (reference); the embedding test compares the new
rows with a seeded sample of the champion's TRAINING rows (<= changes.max_reference). With no new
rows the model is never loaded (an empty night costs a manifest diff).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.changes import champion as champions
from pipeline.changes import summary
from pipeline.changes.embed import embed, penultimate, with_output
from pipeline.changes.images import ArrayIndex
from pipeline.changes.lineage import Unavailable
from pipeline.changes.score import Scoring, champion_on_new, predictions_table, scorable
from pipeline.config import Config
from pipeline.drift.diff import manifest_diff, new_rows
from pipeline.drift.mmd import mmd_test
from pipeline.drift.properties import image_properties, property_drift

log = logging.getLogger(__name__)
PROPERTY_REFERENCE = 5000  # champion rows whose properties are the reference (seeded sample)


@dataclass
class Comparison:
    doc: dict
    predictions: pd.DataFrame
    properties: pd.DataFrame = field(default_factory=pd.DataFrame)  # side, class_name, property columns


def sample(rows: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """At most n rows, seeded, in their original order (deterministic outputs)."""
    if len(rows) <= n:
        return rows
    pick = np.sort(np.random.default_rng(seed).choice(len(rows), size=n, replace=False))
    return rows.iloc[pick]


def class_matched_sample(train: pd.DataFrame, new: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """A seeded sample of the champion's training rows with the new batch's class mix, so the
    embedding test measures a change in the images, not in the class mix (balance reports that,
    and an embedding trained to separate the classes would flag any batch of mostly one class).
    New rows without a class the training rows know fall back to a plain sample."""
    names = new["class_name"].astype("string")
    known = set(train["class_name"].astype(str))
    if len(new) == 0 or names.isna().any() or not set(names.astype(str)) <= known:
        return sample(train, n, seed)
    size = min(n, len(train))
    parts = []
    for i, (name, share) in enumerate(names.astype(str).value_counts(normalize=True).sort_index().items()):
        pool = train[train["class_name"].astype(str) == name]
        parts.append(sample(pool, max(1, round(size * share)), seed + i))
    return pd.concat(parts).sort_index(kind="stable")


def check_classes(champ: champions.Champion, labels: dict | None) -> None:
    """Unavailable when the champion was trained on another format or on another class set (one is
    neither a subset nor a superset of the other: a vanished or a new class is a finding, not this)."""
    if not labels:
        return
    fmt, then_fmt = labels.get("format"), champ.label_map.get("format")
    if fmt and then_fmt and fmt != then_fmt:
        raise Unavailable(f"the champion was trained on data.format {then_fmt}, the data now is {fmt}")
    then, now = set(champ.classes), {str(c) for c in labels.get("classes") or []}
    if now and not (then <= now or now <= then):
        raise Unavailable(
            f"the champion was trained on classes {sorted(then)}, the data now has {sorted(now)}"
        )


def _pixels(index: ArrayIndex, rows: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    images, ok = index.gather(rows)
    return rows[ok].reset_index(drop=True), images[ok]


def compare(
    cfg: Config, champ: champions.Champion, then: pd.DataFrame, now: pd.DataFrame, preprocessed: Path | None
) -> Comparison:
    c = cfg.changes
    diff = manifest_diff(then, now)
    new = new_rows(then, now).reset_index(drop=True)
    parts = {
        "diff": diff,
        "relabels": summary.relabels(then, now),
        "balance_then": {
            str(k): int(v) for k, v in then["class_name"].astype(str).value_counts().sort_index().items()
        },
        "new_images": len(new),
    }
    empty = predictions_table(new.iloc[:0], np.zeros((0, len(champ.classes))), champ.classes)
    if len(new) == 0:
        log.info("changes: nothing new since %s v%s", champ.name, champ.version)
        return Comparison(
            summary.document("compared", "nothing new since the champion", now, champ.record(), **parts),
            empty,
        )
    index = ArrayIndex(preprocessed, champ.label_map)
    new, new_px = _pixels(index, new)
    unchanged = then.merge(now[["path", "sha256"]], on=["path", "sha256"])
    ref = sample(unchanged, PROPERTY_REFERENCE, c.seed)
    ref, ref_px = _pixels(index, ref)
    then_props = image_properties(ref, ref_px)
    new_props = image_properties(new, new_px)
    parts["drift"] = property_drift(then_props, new_props, alpha=c.alpha, min_effect=c.min_effect)
    props = pd.concat([then_props.assign(side="then"), new_props.assign(side="new")], ignore_index=True)

    model = champions.load_model(champ)
    labelled = scorable(new, champ.classes)
    keep = new["path"].isin(labelled["path"]).to_numpy()
    proba = None
    train = then[then["split"].astype("string") == "train"]
    train, train_px = _pixels(index, class_matched_sample(train, new, c.max_reference, c.seed + 1))
    if len(train) >= 2 and len(new) >= 2:
        ref_emb = embed(penultimate(model), train_px)
        if champ.tta:  # scored below with every trained view; the embedding is the plain image's
            new_emb = embed(penultimate(model), new_px)
        else:  # one pass gives both the embedding and the (single-view) probabilities
            new_emb, proba = embed(with_output(model), new_px)
        parts["embedding"] = mmd_test(
            ref_emb, new_emb, n_perm=c.n_perm, alpha=c.alpha, seed=c.seed, max_n=c.max_reference
        )
    ev = cfg.evaluate
    table, block = champion_on_new(
        model,
        champ.label_map,
        labelled,
        new_px[keep],
        Scoring(
            champ.threshold, champ.tta, ev.bootstrap, ev.seed, proba[keep] if proba is not None else None
        ),
    )
    parts["champion_on_new"] = block
    doc = summary.document(
        "compared", f"compared with {champ.name} v{champ.version}", now, champ.record(), **parts
    )
    return Comparison(doc, table, props)

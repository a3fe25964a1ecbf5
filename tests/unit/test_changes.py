"""pipeline.changes, the pure parts: the champion's hashes from dvc.lock / lineage.json, manifests
read back from a DVC cache, the changes.json document and headline, class-set checks, the
champion-on-new table, the page's first screen, `medpipe changes` paths and the params check."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import config
from pipeline.changes import compare, lineage, report, score, summary
from pipeline.changes.champion import Champion
from pipeline.cli.changes import stage_paths
from pipeline.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def frame(rows: list[tuple]) -> pd.DataFrame:
    cols = ["path", "sha256", "class_name", "patient_id", "split"]
    return pd.DataFrame(rows, columns=cols).astype("string")


THEN = frame(
    [
        ("a.png", "h1", "benign", "p1", "train"),
        ("b.png", "h2", "benign", "p1", "train"),
        ("c.png", "h3", "malignant", "p2", "test"),
        ("d.png", "h4", "malignant", "p2", "val"),
    ]
)
NOW = frame(
    [
        ("a.png", "h1", "malignant", "p1", "train"),  # relabelled
        ("b.png", "h2", "malignant", "p1", "train"),  # relabelled
        ("c.png", "h3x", "malignant", "p2", "test"),  # changed bytes
        ("e.png", "h5", "benign", "p3", "test"),  # added, new patient
    ]
)


def champion(classes=("benign", "malignant"), fmt="breakhis") -> Champion:
    label_map = {
        "classes": list(classes),
        "positive": classes[-1],
        "format": fmt,
        "image_size": 8,
        "channels": 3,
    }
    return Champion("m", "3", "run1", "models:/x", 0.4, False, label_map)


def test_hashes_come_from_the_lock_or_the_lineage_document():
    lock = {
        "stages": {
            "validate": {"outs": [{"path": "data/interim/validated.csv", "md5": "aa11"}]},
            "split": {
                "outs": [
                    {"path": "data/splits", "md5": "bb22.dir"},
                    {"path": "reports/split.json", "md5": "x"},
                ]
            },
        }
    }
    assert lineage.hashes_from_lock(lock) == {"validated": "aa11", "splits": "bb22.dir"}
    doc = {
        "dvc": {
            "validate": {"out.data/interim/validated.csv": "aa11"},
            "split": {"out.data/splits": "bb22.dir"},
        }
    }
    assert lineage.hashes_from_lineage(doc) == {"validated": "aa11", "splits": "bb22.dir"}
    assert lineage.hashes_from_lock({}) == {}


def _put(cache: Path, data: bytes, suffix: str = "") -> str:
    md5 = hashlib.md5(data).hexdigest()
    path = cache / "files" / "md5" / md5[:2] / (md5[2:] + suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return md5 + suffix


def test_the_champions_manifests_are_read_back_from_the_dvc_cache_with_their_split(tmp_path):
    cache = tmp_path / ".dvc" / "cache"
    validated = THEN.drop(columns="split").to_csv(index=False).encode()
    entries = [
        {"md5": _put(cache, THEN[THEN.split == s].to_csv(index=False).encode()), "relpath": f"{s}.csv"}
        for s in ("train", "val", "test")
    ]
    hashes = {
        "validated": _put(cache, validated),
        "splits": _put(cache, json.dumps(entries).encode(), ".dir"),
    }
    then = lineage.read_then(tmp_path, hashes)
    assert then[["path", "split"]].astype(str).values.tolist() == [
        ["a.png", "train"],
        ["b.png", "train"],
        ["c.png", "test"],
        ["d.png", "val"],
    ]
    gone = dict(hashes, validated="0" * 32)
    with pytest.raises(lineage.Unavailable, match="not in the local DVC cache"):
        lineage.read_then(tmp_path, gone)
    with pytest.raises(lineage.Unavailable, match="names no"):
        lineage.read_then(tmp_path, {})


def test_relabelled_batches_are_named_from_and_to():
    assert summary.relabels(THEN, NOW) == [{"from": "benign", "to": "malignant", "n": 2}]


def test_the_document_keeps_every_key_whatever_the_status_and_the_headline_stays_small():
    base = summary.document("baseline", "no champion yet", NOW)
    full = summary.document(
        "compared",
        "x",
        NOW,
        champion().record(),
        diff={"added": 1, "removed": 1, "changed": 1, "relabelled": 2, "patients": {"new": 1}},
        drift=[{"name": "intensity_mean", "class": "benign", "flag": True, "detail": "median 90 -> 140"}],
        embedding={"p_value": 0.004, "alpha": 0.05, "flag": True},
        champion_on_new={"n": 3, "metrics": {"roc_auc": {"value": 0.75, "ci": [0.5, 1.0]}}},
    )
    assert set(base) == set(full)
    assert base["profile"] == {
        "images": 4,
        "patients": 3,
        "by_class": {"benign": 1, "malignant": 3},
        "by_split": {"test": 2, "train": 2},
    }
    assert summary.flags(full) == ["benign: median 90 -> 140", "embedding drift: MMD p = 0.004 < alpha 0.05"]
    head = summary.headline(full, "roc_auc")
    assert head == {
        "added": 1,
        "removed": 1,
        "changed": 1,
        "relabelled": 2,
        "new_patients": 1,
        "drift_flags": 2,
        "embedding_p": 0.004,
        "champion_new_n": 3,
        "champion_new_roc_auc": 0.75,
    }
    assert len(head) <= 10 and len(summary.headline(base, "roc_auc")) <= 10
    json.dumps(full)  # plain JSON types only


def test_another_format_or_class_set_is_unavailable_but_a_vanished_class_is_not():
    labels = {"format": "breakhis", "classes": ["benign", "malignant"]}
    compare.check_classes(champion(), labels)
    compare.check_classes(champion(), {"format": "breakhis", "classes": ["benign"]})  # vanished class
    with pytest.raises(lineage.Unavailable, match="data.format breakhis"):
        compare.check_classes(champion(), {"format": "idc", "classes": ["benign", "malignant"]})
    with pytest.raises(lineage.Unavailable, match="classes"):
        compare.check_classes(champion(("NORMAL", "PNEUMONIA")), {"classes": ["NORMAL", "BACTERIA", "VIRUS"]})


def test_the_reference_sample_is_seeded_and_keeps_row_order():
    rows = pd.DataFrame({"i": range(100)})
    a, b = compare.sample(rows, 10, 0), compare.sample(rows, 10, 0)
    assert a["i"].tolist() == b["i"].tolist() == sorted(a["i"])
    assert len(a) == 10 and compare.sample(rows, 200, 0) is rows


def test_only_rows_of_a_known_class_are_scored_with_the_champions_class_index():
    new = frame([("e.png", "h5", "malignant", "p3", "test"), ("f.png", "h6", "other", "p4", "test")])
    new.loc[2] = ["g.png", "h7", pd.NA, "p4", pd.NA]
    rows = score.scorable(new, ["benign", "malignant"])
    assert rows["path"].tolist() == ["e.png"] and rows["label"].tolist() == [1]
    table = score.predictions_table(rows, np.array([[0.3, 0.7]]), ["benign", "malignant"])
    assert list(table.columns) == score.columns(["benign", "malignant"])
    assert table["p_malignant"].tolist() == [0.7]
    empty = score.predictions_table(rows.iloc[:0], np.zeros((0, 2)), ["benign", "malignant"])
    assert list(empty.columns) == score.columns(["benign", "malignant"]) and len(empty) == 0


def test_the_first_screen_says_baseline_or_names_the_relabelled_batch_and_vanished_class():
    base = report.render(summary.document("baseline", "no champion yet", NOW), pd.DataFrame(), "roc_auc")
    first = base.split('id="classes"')[0]
    assert "Baseline" in first and "no champion yet" in first
    doc = summary.document(
        "compared",
        "compared with m v3",
        NOW,
        champion().record(),
        diff={"relabelled": 2, "vanished_classes": ["lymphoma"]},
        relabels=summary.relabels(THEN, NOW),
        balance_then={"lymphoma": 7},
    )
    first = report.render(doc, pd.DataFrame(), "roc_auc").split('id="classes"')[0]
    assert "Relabelled batch" in first and "<b>2</b> image(s)" in first
    assert "Vanished class: <b>lymphoma</b>" in first and "it had 7" in first
    assert "http" not in report.render(doc, pd.DataFrame(), "roc_auc").replace("http-equiv", "")


def test_medpipe_changes_reads_the_stage_paths_from_dvc_yaml():
    inputs, outputs = stage_paths(ROOT / "dvc.yaml")
    assert inputs["validated"] == Path("data/interim/validated.csv")
    assert set(outputs) == {"summary", "report", "dir", "headline", "gate"}


def test_n_perm_too_small_for_alpha_is_refused_at_load():
    with pytest.raises(ConfigError, match="changes.n_perm"):
        config.from_dict({"changes": {"n_perm": 10, "alpha": 0.05}})
    assert config.from_dict({"changes": {"n_perm": 20, "alpha": 0.05}}).changes.n_perm == 20


def test_the_fast_bootstrap_metrics_equal_the_evaluation_metrics():
    from scipy.stats import rankdata

    from pipeline.evaluation import metrics

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    p1 = np.clip(0.3 * y + rng.random(300) * 0.7, 0, 1).round(2)  # ties on purpose
    proba = np.c_[1 - p1, p1]
    want = metrics.headline_metrics(y, proba, 1, 0.5)
    got = score.binary_metrics(y == 1, p1 >= 0.5, rankdata(p1))
    for key, value in got.items():
        assert value == pytest.approx(want[key], abs=1e-12), key
    assert score.binary_metrics(np.ones(3, bool), np.ones(3, bool), np.arange(3.0))["roc_auc"] is None


def test_the_champion_on_new_block_has_patient_bootstrap_cis_binary_and_multiclass():
    from pipeline.evaluation.predictions import Predictions, Task

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    proba = rng.dirichlet(np.ones(3), 60) * 0.5 + np.eye(3)[y] * 0.5
    patients = np.array([f"p{i // 3}" for i in range(60)])
    multi = score.summarise(Task(["a", "b", "c"], None), Predictions(y, proba, patients), 0.4, 30, 1)
    assert multi["threshold"] is None and multi["n_patients"] == 20
    assert multi["per_class"] == {"a": 20, "b": 20, "c": 20}
    lo, hi = multi["metrics"]["roc_auc"]["ci"]
    assert lo <= multi["metrics"]["roc_auc"]["value"] <= hi
    yb = (y > 0).astype(int)
    pb = np.c_[proba[:, 0], proba[:, 1:].sum(1)]
    binary = score.summarise(Task(["neg", "pos"], 1), Predictions(yb, pb, patients), 0.5, 30, 1)
    assert binary["threshold"] == 0.5
    assert binary["metrics"]["sensitivity"]["ci"] is not None and binary["metrics"]["pr_auc"]["ci"] is None


def test_embedding_reference_follows_the_new_batch_class_mix():
    from pipeline.changes.compare import class_matched_sample

    train = pd.DataFrame({"path": [f"t{i}" for i in range(400)], "class_name": ["A"] * 300 + ["B"] * 100})
    new = pd.DataFrame({"path": [f"n{i}" for i in range(40)], "class_name": ["B"] * 30 + ["A"] * 10})
    ref = class_matched_sample(train, new, 80, seed=3)
    assert ref["class_name"].value_counts().to_dict() == {"B": 60, "A": 20}
    assert ref.equals(class_matched_sample(train, new, 80, seed=3))  # seeded: byte-identical outputs
    unlabelled = new.assign(class_name=pd.NA)
    plain = class_matched_sample(train, unlabelled, 80, seed=3)
    assert len(plain) == 80 and plain["class_name"].value_counts()["A"] > 40  # the training mix

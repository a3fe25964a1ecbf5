"""The gate's new-data check: champion vs challenger on the test images new since the champion."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from helpers.changes_inputs import changes_doc, scored_rows, write_challenger_predictions, write_changes

from pipeline.config import GateConfig
from pipeline.registry import gate_record, new_data, new_data_check
from pipeline.registry.gate import Decision, decide

GATE = GateConfig(metric="roc_auc", new_data_margin=0.02, new_data_min_images=50)
LABEL_MAP = {"classes": ["neg", "pos"], "positive": "pos"}
METRICS = {"roc_auc": 0.9, "sensitivity": 0.8, "threshold": 0.5}


def _compare(champ: pd.DataFrame, chall: pd.DataFrame, **kw) -> dict:
    args = {
        "metric": "roc_auc",
        "classes": ["neg", "pos"],
        "positive": "pos",
        "champion_threshold": 0.5,
        "challenger_threshold": 0.5,
        "margin": 0.02,
        "min_images": 50,
    } | kw
    return new_data.compare(champ, chall, **args)


def test_challenger_within_the_margin_passes() -> None:
    # 100 positives, 2 scored below every negative: ROC AUC 0.98 vs the champion's 1.0
    result = _compare(scored_rows(100, 30), scored_rows(100, 30, misranked=2))
    assert result["applicable"] and result["pass"]
    assert result["n"] == 130 and result["n_patients"] == 65
    assert result["champion"] == pytest.approx(1.0) and result["challenger"] == pytest.approx(0.98)
    assert "within the margin" in result["reason"]


def test_challenger_worse_beyond_the_margin_fails() -> None:
    result = _compare(scored_rows(100, 30), scored_rows(100, 30, misranked=3))  # 0.97 < 1.0 - 0.02
    assert result["applicable"] and not result["pass"]
    assert result["challenger"] == pytest.approx(0.97)
    assert (
        "-0.0300, worse than the margin 0.0200" in result["reason"]
        and "130 new test images" in result["reason"]
    )


def test_only_paths_in_both_tables_count() -> None:
    champ = scored_rows(40, 20)
    chall = scored_rows(40, 20, misranked=10).iloc[5:]  # five positives unknown to the challenger
    result = _compare(champ, chall)
    assert result["n"] == 55 and result["challenger"] == pytest.approx(1 - 5 / 35)


def test_too_few_new_images_is_not_applicable_and_does_not_block() -> None:
    result = _compare(scored_rows(30, 19), scored_rows(30, 19, misranked=30))
    assert not result["applicable"] and result["pass"]
    assert (
        result["reason"].startswith("not applicable (n=49)") and "new_data_min_images 50" in result["reason"]
    )


def test_one_class_only_is_not_applicable() -> None:
    result = _compare(scored_rows(60, 0), scored_rows(60, 0, misranked=60))
    assert not result["applicable"] and result["pass"] and "one class only (pos)" in result["reason"]


def test_patient_level_metric_is_computed_on_patient_means() -> None:
    # two images per patient; one image of patient p0 below some negatives, its mean above them all
    champ, chall = scored_rows(60, 40), scored_rows(60, 40)
    chall.loc[1, ["p_pos", "p_neg"]] = [0.35, 0.65]  # p0 (images 0, 1): mean (0.6 + 0.35) / 2 > 0.4
    result = _compare(champ, chall, metric="patient_roc_auc")
    assert result["applicable"] and result["challenger"] == pytest.approx(1.0)
    image = _compare(champ, chall)
    assert image["challenger"] < 1.0


def _write(root: Path, doc: dict, champ: pd.DataFrame | None, chall: pd.DataFrame | None) -> dict:
    write_changes(root, doc, champ)
    if chall is not None:
        write_challenger_predictions(root, chall)
    return {
        "changes_gate": root / "reports/changes_gate.json",
        "changes_dir": root / "reports/changes",
        "plots": root / "reports/eval",
    }


def test_check_reads_the_documented_files(tmp_path: Path) -> None:
    rows = pd.concat([scored_rows(60, 40), scored_rows(10, 10, split="train", prefix="data/raw/x")])
    inputs = _write(tmp_path, changes_doc(added=120), rows, scored_rows(60, 40, misranked=6))
    result = new_data_check.check(inputs, "1", LABEL_MAP, METRICS, GATE)
    assert result["applicable"] and result["n"] == 100 and not result["pass"]  # train rows left out


@pytest.mark.parametrize(
    ("doc", "version", "label_map", "words"),
    [
        (changes_doc("baseline", None), None, LABEL_MAP, "no new labelled image was scored"),
        (changes_doc("unavailable"), "1", LABEL_MAP, "no new labelled image was scored"),
        (changes_doc(), "2", LABEL_MAP, "compared with champion v1, the champion is v2"),
        (changes_doc(), "1", {"classes": ["a", "b", "c"]}, "are not the challenger's"),
    ],
)
def test_check_is_not_applicable_without_a_comparison(tmp_path, doc, version, label_map, words) -> None:
    inputs = _write(tmp_path, doc, scored_rows(60, 40), scored_rows(60, 40, misranked=60))
    result = new_data_check.check(inputs, version, label_map, METRICS, GATE)
    assert not result["applicable"] and result["pass"] and words in result["reason"]


def test_check_without_a_changes_file_or_predictions(tmp_path: Path) -> None:
    missing = new_data_check.check({}, "1", LABEL_MAP, METRICS, GATE)
    assert not missing["applicable"] and "no reports/changes_gate.json" in missing["reason"]
    inputs = _write(tmp_path, changes_doc(), scored_rows(60, 40), None)
    no_eval = new_data_check.check(inputs, "1", LABEL_MAP, METRICS, GATE)
    assert not no_eval["applicable"] and "no readable challenger predictions" in no_eval["reason"]
    nothing_new = _write(tmp_path, changes_doc(), None, scored_rows(60, 40))  # header-only csv
    empty = new_data_check.check(nothing_new, "1", LABEL_MAP, METRICS, GATE)
    assert not empty["applicable"] and empty["n"] == 0


def _frozen_promotes() -> Decision:
    return decide({"roc_auc": 0.9, "sensitivity": 0.8}, {"roc_auc": 0.8, "sensitivity": 0.8}, GATE)


def test_failed_new_data_check_refuses_a_frozen_test_promotion() -> None:
    failed = _compare(scored_rows(100, 30), scored_rows(100, 30, misranked=3))
    d = new_data_check.apply(_frozen_promotes(), failed)
    assert not d.promote and d.reason.startswith("refused on new data: on 130 new test images")
    assert "frozen test: roc_auc improved by +0.1000" in d.reason and d.new_data is failed


def test_passed_or_inapplicable_check_keeps_the_frozen_decision() -> None:
    passed = new_data_check.apply(_frozen_promotes(), _compare(scored_rows(100, 30), scored_rows(100, 30)))
    assert passed.promote and "; new data: on 130 new test images" in passed.reason
    skipped = new_data.not_applicable("no reports/changes.json", "roc_auc", 0.02)
    kept = new_data_check.apply(_frozen_promotes(), skipped)
    assert kept.promote and kept.reason == _frozen_promotes().reason and kept.new_data == skipped
    worse = decide({"roc_auc": 0.7, "sensitivity": 0.8}, {"roc_auc": 0.8, "sensitivity": 0.8}, GATE)
    good_new = _compare(scored_rows(100, 30), scored_rows(100, 30))
    assert not new_data_check.apply(worse, good_new).promote  # both rules must pass


def test_tags_and_description_line_name_both_outcomes() -> None:
    failed = _compare(scored_rows(100, 30), scored_rows(100, 30, misranked=3))
    tags = gate_record.new_data_tags(failed)
    assert tags["gate.new_data"] == "applied" and tags["gate.new_data.pass"] == "false"
    assert float(tags["gate.new_data.challenger"]) == pytest.approx(0.97) and tags["gate.new_data.n"] == "130"
    assert "FAILS: on 130 new test images" in gate_record.new_data_line(failed)
    skipped = new_data.not_applicable("too few", "roc_auc", 0.02, 3)
    assert gate_record.new_data_tags(skipped)["gate.new_data"] == "not_applicable"
    assert "not applicable (n=3): too few" in gate_record.new_data_line(skipped)


def test_check_refuses_predictions_the_gate_file_does_not_pin(tmp_path: Path) -> None:
    inputs = _write(tmp_path, changes_doc(added=100), scored_rows(60, 40), scored_rows(60, 40))
    assert new_data_check.check(inputs, "1", LABEL_MAP, METRICS, GATE)["applicable"]
    stale = tmp_path / "reports/changes/champion_predictions.csv"
    stale.write_text(stale.read_text().replace("0.", "0.0", 1))  # edited after the stage ran
    result = new_data_check.check(inputs, "1", LABEL_MAP, METRICS, GATE)
    assert not result["applicable"] and "not the one changes_gate.json pins" in result["reason"]


def test_gate_file_is_the_same_for_every_night_without_new_scored_images(tmp_path: Path) -> None:
    from pipeline.changes.compute import gate_document

    csv = tmp_path / "p.csv"
    csv.write_text("path\n")
    nights = [changes_doc("baseline", None), changes_doc(), changes_doc("unavailable")]
    assert {json.dumps(gate_document(d, csv)) for d in nights} == {'{"schema": 1, "comparable": false}'}
